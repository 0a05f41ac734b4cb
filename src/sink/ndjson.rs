//! One JSON object per event, one per line: `ghreplay cat`'s output. The
//! payload goes out as the bytes it was archived as, never re-serialised.
//!
//! Nor copied: an object's lines are written together (one `writev` per
//! thousand pieces) when the pipeline is done with the object, each line's
//! fields from a small buffer and its payload straight from the object's
//! decompressed bytes. Only a payload that must change (line breaks) or is
//! too small to be worth a piece of its own is copied.

use std::io::{self, IoSlice, Write};
use std::ops::Range;

use chrono::SecondsFormat;

use super::{Sink, SinkError};
use crate::decode::{DecodedObject, Event};
use crate::model::Span;

/// Payloads smaller than this are copied: an `iovec` costs about as much.
const COPY_BELOW: usize = 1024;

/// A sink that needs [`Sink::end_object`] after each object's events, as
/// the read pipeline calls it.
pub struct NdjsonSink<W: Write + Send> {
    out: W,
    /// The current object's lines, but for the payloads written in place.
    text: Vec<u8>,
    /// Where `text` not yet listed in `pieces` starts.
    mark: usize,
    /// The current object's output in order.
    pieces: Vec<Piece>,
}

enum Piece {
    Text(Range<usize>),
    /// A payload, in the object's decompressed bytes.
    Payload(Range<usize>),
}

impl<W: Write + Send> NdjsonSink<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            text: Vec::with_capacity(256 * 1024),
            mark: 0,
            pieces: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.text.clear();
        self.pieces.clear();
        self.mark = 0;
    }
}

/// `write_all` for a list of slices (`Write::write_all_vectored` is not
/// stable yet).
fn write_all_vectored(out: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !bufs.is_empty() {
        match out.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends a JSON string, or `null`.
fn push_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        // Writing a &str into a Vec cannot fail.
        Some(s) => serde_json::to_writer(&mut *buf, s).unwrap_or_default(),
        None => buf.extend_from_slice(b"null"),
    }
}

/// Appends JSON text on one line. A body kept byte for byte may be pretty
/// printed; JSON allows no raw line breaks inside strings, so each one is
/// whitespace between tokens and becomes a space.
fn push_one_line(buf: &mut Vec<u8>, json: &[u8]) {
    if memchr::memchr2(b'\n', b'\r', json).is_none() {
        buf.extend_from_slice(json);
        return;
    }
    buf.extend(
        json.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
}

/// Renders one event as a line of NDJSON.
pub fn render(buf: &mut Vec<u8>, obj: &DecodedObject, e: &Event, public: bool) {
    render_fields(buf, obj, e, public);
    push_one_line(buf, obj.bytes(&e.payload));
    buf.extend_from_slice(b"}\n");
}

/// A line up to its payload.
fn render_fields(buf: &mut Vec<u8>, obj: &DecodedObject, e: &Event, public: bool) {
    buf.extend_from_slice(b"{\"delivery_id\":");
    push_str(buf, e.delivery_id.as_deref());
    buf.extend_from_slice(b",\"event\":");
    push_str(buf, Some(&e.event));
    buf.extend_from_slice(b",\"action\":");
    push_str(buf, e.action.as_deref());
    buf.extend_from_slice(b",\"repository\":");
    push_str(buf, e.repository.as_deref());
    buf.extend_from_slice(b",\"private\":");
    buf.extend_from_slice(match e.private_flag() {
        Some(true) => b"true",
        Some(false) => b"false",
        None => b"null",
    });
    buf.extend_from_slice(if public {
        b",\"public\":true"
    } else {
        b",\"public\":false"
    });
    buf.extend_from_slice(b",\"sender\":");
    push_str(buf, e.sender.as_deref());
    buf.extend_from_slice(b",\"received_at\":");
    let received = e
        .received_at
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    push_str(buf, received.as_deref());
    buf.extend_from_slice(b",\"shape\":");
    push_str(buf, Some(e.shape.as_str()));
    buf.extend_from_slice(b",\"object\":");
    push_str(buf, Some(&obj.key));
    buf.extend_from_slice(b",\"offset\":");
    buf.extend_from_slice(itoa::Buffer::new().format(e.offset).as_bytes());
    buf.extend_from_slice(b",\"payload\":");
}

impl<W: Write + Send> Sink for NdjsonSink<W> {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        match &e.payload {
            Span::Range(r) if !e.payload_line_breaks && r.len() >= COPY_BELOW => {
                render_fields(&mut self.text, obj, e, public);
                self.pieces.push(Piece::Text(self.mark..self.text.len()));
                self.pieces.push(Piece::Payload(r.clone()));
                self.mark = self.text.len();
                self.text.extend_from_slice(b"}\n");
            }
            _ => render(&mut self.text, obj, e, public),
        }
        Ok(())
    }

    fn end_object(&mut self, obj: &DecodedObject) -> Result<(), SinkError> {
        self.pieces.push(Piece::Text(self.mark..self.text.len()));
        let mut slices: Vec<IoSlice<'_>> = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Text(r) => IoSlice::new(&self.text[r.clone()]),
                Piece::Payload(r) => IoSlice::new(&obj.data[r.clone()]),
            })
            .filter(|s| !s.is_empty())
            .collect();
        let written = write_all_vectored(&mut self.out, &mut slices);
        drop(slices);
        self.clear();
        written.map_err(SinkError::from_write)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        debug_assert!(self.pieces.is_empty(), "end_object was not called");
        self.clear();
        self.out.flush().map_err(SinkError::from_write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_object, DecodeOptions};

    /// A writer that takes a few bytes per call, as a pipe may.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_written_in_place_are_the_lines_rendered_one_by_one() {
        let big = format!(r#"{{"zen": "{}", "hook_id": 1}}"#, "z".repeat(2000));
        let record = |payload: &str| {
            format!(r#"{{"body": {payload}, "event": "ping", "request_id": "id"}}"#)
        };
        let objects: Vec<DecodedObject> = [
            // Large payloads (in place), a small one (copied), a large
            // pretty-printed one (copied, made one line).
            format!(
                "{}{}{}",
                record(&big),
                record(r#"{"zen": "small"}"#),
                record(&big)
            ),
            format!("{}\n", record(&big.replace(", ", ",\n  "))),
            String::new(),
            record(&big),
        ]
        .into_iter()
        .map(|text| {
            decode_object(
                "k".into(),
                None,
                text.into_bytes(),
                &DecodeOptions::default(),
            )
        })
        .collect();
        let mut expected = Vec::new();
        for obj in &objects {
            for e in &obj.events {
                render(&mut expected, obj, e, true);
            }
        }
        assert_eq!(memchr::memchr_iter(b'\n', &expected).count(), 5);

        let mut whole = NdjsonSink::new(Vec::new());
        let mut trickle = NdjsonSink::new(Trickle(Vec::new()));
        for obj in &objects {
            for e in &obj.events {
                whole.accept(obj, e, true).unwrap();
                trickle.accept(obj, e, true).unwrap();
            }
            whole.end_object(obj).unwrap();
            trickle.end_object(obj).unwrap();
        }
        whole.finish().unwrap();
        trickle.finish().unwrap();
        assert!(
            whole.out == expected,
            "{}",
            String::from_utf8_lossy(&whole.out)
        );
        assert!(trickle.out.0 == expected);
    }

    #[test]
    fn a_pretty_printed_payload_still_makes_one_line() {
        let raw = b"{\"zen\": \"a\\nb\",\r\n  \"hook_id\": 1,\n  \"repository\": {\"full_name\": \"o/r\"}\n}";
        let obj = decode_object("k".into(), None, raw.to_vec(), &DecodeOptions::default());
        let mut line = Vec::new();
        render(&mut line, &obj, &obj.events[0], false);
        assert_eq!(
            memchr::memchr_iter(b'\n', &line).count(),
            1,
            "{}",
            String::from_utf8_lossy(&line)
        );
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            v["payload"]["zen"], "a\nb",
            "escaped newlines inside strings are kept"
        );
    }
}
