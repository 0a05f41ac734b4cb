//! One JSON object per event, one per line: `ghreplay cat`'s output. The
//! payload goes out as the bytes it was archived as, never re-serialised.

use std::io::Write;

use chrono::SecondsFormat;

use super::{Sink, SinkError};
use crate::decode::{DecodedObject, Event};

pub struct NdjsonSink<W: Write + Send> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write + Send> NdjsonSink<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::with_capacity(64 * 1024),
        }
    }
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
    buf.extend_from_slice(format!(",\"offset\":{},\"payload\":", e.offset).as_bytes());
    push_one_line(buf, obj.bytes(&e.payload));
    buf.extend_from_slice(b"}\n");
}

impl<W: Write + Send> Sink for NdjsonSink<W> {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        self.line.clear();
        render(&mut self.line, obj, e, public);
        self.out
            .write_all(&self.line)
            .map_err(SinkError::from_write)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(SinkError::from_write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_object, DecodeOptions};

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
