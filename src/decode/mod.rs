//! CPU-only decoding of one archived object: decompress (gzip, multi-member,
//! with a size cap), split back-to-back JSON documents, and read each record
//! of any shape into an [`Event`] whose payload stays as raw bytes.
//!
//! The fast path, taken by every well-formed object: one whole-buffer gunzip
//! (libdeflate), one UTF-8 check of the result (SIMD), and one pass over each
//! record's bytes ([`scan`]) that checks it is JSON, finds its end, and picks
//! out the envelope and the payload facts together. Whatever the fast path
//! cannot vouch for (several gzip members, a cut or corrupt stream, a size
//! past the cap) is read by streaming, which keeps every record before the
//! fault.
//!
//! Bad input is data: a corrupt stream or record becomes a [`DecodeError`] in
//! [`DecodedObject::problems`], and decoding goes on past it, so that no good
//! record is lost to a bad neighbour.

pub mod infer;
mod inflate;
mod scan;

use std::borrow::Cow;
use std::ops::Range;

use chrono::{DateTime, Utc};

use crate::archive;
use crate::model::Shape;
pub use crate::model::{Event, Private, Span};
use scan::ScanError;

/// What an object's bytes could not give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("gzip stream ends early or is corrupt after {decompressed} decompressed bytes ({message}); the records before it were read")]
    Gzip { decompressed: u64, message: String },
    #[error("{0} compression is not supported (only gzip or uncompressed objects are read)")]
    UnsupportedCompression(&'static str),
    #[error("decompresses to more than {limit} bytes; only the first {limit} were read (raise --max-object-bytes)")]
    TooLarge { limit: u64 },
    #[error("record at byte {offset}: {message} (skipped {skipped} bytes)")]
    Record {
        offset: u64,
        skipped: u64,
        message: String,
    },
    #[error("could not be fetched: {0}")]
    Fetch(String),
    /// A bug met on these bytes; the object is reported, the run goes on.
    #[error("decoding failed on an internal error ({0}); please report it with this object")]
    Panic(String),
}

/// Why one record, read as JSON, is not a delivery.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("payload is not a JSON object ({0})")]
    Payload(#[source] ScanError),
    #[error("ghreplay record format version {0} is not one this build reads (1 to {max})", max = archive::RECORD_VERSION)]
    Version(String),
    #[error("ghreplay record without `{0}`")]
    Missing(String),
    #[error("bad `{field}` (not an unsigned integer)", field = archive::field::BODY_CRC32)]
    Crc32,
    #[error("bad `{field}` {0:?} ({1})", field = archive::field::RECEIVED_AT)]
    ReceivedAt(String, #[source] chrono::ParseError),
    #[error("bad `{field}` ({0})", field = archive::field::BODY_BASE64)]
    Base64(#[source] base64::DecodeError),
    #[error(
        "ghreplay record needs exactly one of `{}` and `{}`",
        archive::field::BODY,
        archive::field::BODY_BASE64
    )]
    Body,
    #[error("body checksum mismatch: a torn or altered record")]
    Checksum,
    #[error("body is neither JSON nor a form with a `payload` field")]
    NoPayload,
    #[error("not UTF-8 text")]
    NotUtf8,
}

impl DecodeError {
    /// Whether the problem concerns the whole object rather than one record.
    #[must_use]
    pub fn is_object_level(&self) -> bool {
        !matches!(self, DecodeError::Record { .. })
    }
}

/// Limits that protect memory from hostile or broken objects.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Largest decompressed object read; the rest is reported, not read.
    pub max_object_bytes: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_object_bytes: 1 << 30,
        }
    }
}

/// An object after decoding: its bytes, the events in them, what went wrong.
#[derive(Debug)]
pub struct DecodedObject {
    pub key: String,
    /// The time in the object's name.
    pub object_time: Option<DateTime<Utc>>,
    pub compressed_bytes: u64,
    /// The decompressed bytes, shared: an HTTP message holds a slice of
    /// them (no copy), and the buffer is reused once the object and every
    /// such slice are gone.
    pub data: bytes::Bytes,
    pub events: Vec<Event>,
    pub problems: Vec<DecodeError>,
}

impl DecodedObject {
    /// An object that could not be read at all.
    #[must_use]
    pub fn failed(key: String, object_time: Option<DateTime<Utc>>, error: DecodeError) -> Self {
        Self {
            key,
            object_time,
            compressed_bytes: 0,
            data: bytes::Bytes::new(),
            events: Vec::new(),
            problems: vec![error],
        }
    }

    #[must_use]
    pub fn bytes<'a>(&'a self, span: &'a Span) -> &'a [u8] {
        span.of(&self.data)
    }

    /// The same bytes as [`DecodedObject::bytes`], as a handle that can
    /// outlive the object: a slice of its buffer when the span points into
    /// it (no copy), else a copy.
    #[must_use]
    pub fn shared_bytes(&self, span: &Span) -> bytes::Bytes {
        match span {
            Span::Range(r) => self.data.slice(r.clone()),
            Span::Owned(b) => bytes::Bytes::copy_from_slice(b),
        }
    }

    /// The payload as JSON text. Every payload was parsed as JSON from UTF-8
    /// input, so the conversion cannot fail for events made by this module.
    #[must_use]
    pub fn payload<'a>(&'a self, event: &'a Event) -> &'a str {
        std::str::from_utf8(self.bytes(&event.payload)).unwrap_or("null")
    }
}

/// Decodes one object's bytes as fetched.
#[must_use]
pub fn decode_object(
    key: String,
    object_time: Option<DateTime<Utc>>,
    raw: Vec<u8>,
    opts: &DecodeOptions,
) -> DecodedObject {
    let compressed_bytes = raw.len() as u64;
    let mut problems = Vec::new();
    let data = match inflate::decompress(raw, opts.max_object_bytes) {
        Ok(data) => data,
        Err((data, e)) => {
            problems.push(e);
            data
        }
    };
    let mut events = Vec::new();
    split_records(&data, &mut events, &mut problems);
    DecodedObject {
        key,
        object_time,
        compressed_bytes,
        data: inflate::shared(data),
        events,
        problems,
    }
}

/// The deepest nesting of arrays and objects `serve` takes in a delivery.
/// GitHub's payloads nest about 10 deep; `serde_json`'s own limit for what it
/// parses into types is 128.
pub const MAX_NESTING: usize = 128;

/// Whether `line`, one record as `serve` archives it
/// ([`crate::archive::Record::to_json_line`]), reads back as one good
/// delivery: the receiver acknowledges by this, so that whatever it
/// acknowledges, the read path returns. Stricter than the reader in one
/// way: nesting past [`MAX_NESTING`] is refused (the reader skips what it
/// does not need without limit, but DuckDB and consumers may not).
pub fn check_record(line: &[u8]) -> Result<(), String> {
    let mut events = Vec::new();
    let mut problems = Vec::new();
    split_records(line, &mut events, &mut problems);
    if let Some(p) = problems.first() {
        return Err(match p {
            DecodeError::Record { message, .. } => message.clone(),
            other => other.to_string(),
        });
    }
    let [event] = &events[..] else {
        return Err(format!("it reads back as {} records", events.len()));
    };
    match nesting(event.payload.of(line)) {
        d if d > MAX_NESTING => Err(format!("nested {d} deep (at most {MAX_NESTING})")),
        _ => Ok(()),
    }
}

/// The deepest nesting of `[` and `{` in JSON text, strings skipped. Most
/// of a payload's bytes are in strings, and this runs on every delivery
/// `serve` takes: a string is crossed by `memchr2` to its next `"` or `\`.
fn nesting(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(&b) = text.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                let rest = text.get(i..).unwrap_or_default();
                match memchr::memchr2(b'"', b'\\', rest) {
                    // An escape: the byte after the backslash is passed over.
                    Some(k) if rest[k] == b'\\' => i += k + 2,
                    Some(k) => {
                        i += k + 1;
                        break;
                    }
                    // Unterminated: nothing after it counts.
                    None => return deepest,
                }
            },
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn skip_whitespace(data: &[u8], mut pos: usize) -> usize {
    while pos < data.len() && matches!(data[pos], b' ' | b'\n' | b'\r' | b'\t') {
        pos += 1;
    }
    pos
}

/// Splits `data` into JSON documents (back to back, newline-delimited, or
/// both) and turns each into an event; bad stretches become problems.
fn split_records(data: &[u8], events: &mut Vec<Event>, problems: &mut Vec<DecodeError>) {
    let mut pos = skip_whitespace(data, 0);
    while pos < data.len() {
        let start = pos;
        match scan::record(data, start) {
            Ok(record) => {
                let end = record.end;
                let index = events.len() as u32;
                // A record is printed and sent as text, so it must be UTF-8
                // throughout, fields nobody reads included. (Found by
                // fuzzing: a good-looking record whose skipped field held
                // bytes that are not UTF-8.)
                let built = match record.not_utf8 {
                    None => build_event(record, start..end, data, index),
                    Some(_) => Err(RecordError::NotUtf8),
                };
                match built {
                    Ok(event) => events.push(event),
                    Err(reason) => problems.push(DecodeError::Record {
                        offset: start as u64,
                        skipped: (end - start) as u64,
                        message: reason.to_string(),
                    }),
                }
                pos = skip_whitespace(data, end);
            }
            Err(e) => {
                let next = resync(data, start);
                let message = if e.is_eof() && next == data.len() {
                    "incomplete record at the end of the object".to_owned()
                } else {
                    format!("not a JSON record ({e})")
                };
                problems.push(DecodeError::Record {
                    offset: start as u64,
                    skipped: (next - start) as u64,
                    message,
                });
                pos = next;
            }
        }
    }
}

/// The next place after a bad document `from` where a record starts: a `{`
/// right after a `}` or a newline (where documents meet; compact JSON has
/// neither inside a value outside strings) that reads as a record.
fn resync(data: &[u8], from: usize) -> usize {
    for at in memchr::memchr_iter(b'{', &data[from + 1..]).map(|i| from + 1 + i) {
        if !matches!(data[at - 1], b'}' | b'\n' | b'\r') {
            continue;
        }
        if scan::record(data, at).is_ok() {
            return at;
        }
    }
    data.len()
}

/// Payload facts, read from the payload object itself.
struct Facts {
    action: Option<String>,
    repository: Option<String>,
    repository_object: bool,
    private: Private,
    sender: Option<String>,
    /// What tells the event of a raw payload, which names none.
    keys: infer::KeySet,
    alert: infer::AlertKind,
}

impl Facts {
    fn from_scan(f: scan::Facts<'_>) -> Self {
        Facts {
            keys: f.keys,
            alert: f.alert,
            action: f.action.map(Cow::into_owned),
            repository: f.repository.full_name.map(Cow::into_owned),
            repository_object: f.repository.is_object,
            private: f.repository.private,
            sender: f.sender.map(Cow::into_owned),
        }
    }

    fn of_payload(text: &[u8]) -> Result<Self, RecordError> {
        scan::payload(text)
            .map(Facts::from_scan)
            .map_err(RecordError::Payload)
    }

    /// The facts of a `body` read in the record's pass: an object's, or the
    /// reason it has none.
    fn of_body(body: &Range<usize>, facts: Option<scan::Facts<'_>>) -> Result<Self, RecordError> {
        facts
            .map(Facts::from_scan)
            .ok_or(RecordError::Payload(ScanError {
                at: body.start,
                kind: scan::ErrorKind::Expected("a JSON object"),
            }))
    }
}

fn build_event(
    r: scan::Record<'_>,
    doc: Range<usize>,
    data: &[u8],
    index: u32,
) -> Result<Event, RecordError> {
    let mut event = Event {
        index,
        offset: doc.start as u64,
        record: doc.clone(),
        shape: Shape::Raw,
        delivery_id: None,
        event: String::new(),
        action: None,
        repository: None,
        repository_object: false,
        private: Private::Absent,
        sender: None,
        received_at: None,
        payload: Span::Range(doc.clone()),
        payload_line_breaks: r.line_breaks,
        raw_body: None,
        headers: None,
    };
    let facts = if r.version.is_some() {
        event.shape = Shape::Ghreplay;
        own_record(r, data, &mut event)?
    } else if let (Some((body, facts)), Some(name)) = (r.body, &r.event) {
        event.shape = Shape::Mozilla;
        name.as_ref().clone_into(&mut event.event);
        event.delivery_id = r.request_id.map(Cow::into_owned);
        let facts = Facts::of_body(&body, facts)?;
        event.payload = Span::Range(body);
        facts
    } else {
        Facts::from_scan(r.facts)
    };
    if event.shape == Shape::Raw {
        infer::infer_event(facts.keys, facts.action.as_deref(), facts.alert)
            .clone_into(&mut event.event);
    }
    event.action = facts.action;
    event.repository = facts.repository;
    event.repository_object = facts.repository_object;
    event.private = facts.private;
    event.sender = facts.sender;
    Ok(event)
}

/// Reads ghreplay's own record (see `archive::Record`), checking its version
/// and body checksum so that a torn or altered record is never taken as good.
fn own_record(r: scan::Record<'_>, data: &[u8], event: &mut Event) -> Result<Facts, RecordError> {
    use archive::field;
    let version = r.version.unwrap_or_default();
    if !matches!(version.parse::<u64>(), Ok(v) if (1..=archive::RECORD_VERSION).contains(&v)) {
        return Err(RecordError::Version(version.to_owned()));
    }
    let required = |v: Option<Cow<'_, str>>, name: &str| {
        v.map(Cow::into_owned)
            .ok_or_else(|| RecordError::Missing(name.to_owned()))
    };
    event.delivery_id = Some(required(r.delivery_id, field::DELIVERY_ID)?);
    event.event = required(r.event, field::EVENT)?;
    let received_at = required(r.received_at, field::RECEIVED_AT)?;
    event.received_at = Some(
        DateTime::parse_from_rfc3339(&received_at)
            .map_err(|e| RecordError::ReceivedAt(received_at.clone(), e))?
            .with_timezone(&Utc),
    );
    event.headers = r.headers.map(str::to_owned);
    let crc = match r.body_crc32 {
        scan::Crc::Value(crc) => crc,
        scan::Crc::Absent => return Err(RecordError::Missing(field::BODY_CRC32.to_owned())),
        scan::Crc::Bad => return Err(RecordError::Crc32),
    };

    match (r.body, r.body_base64) {
        // The body as received was JSON, embedded byte for byte: it is the
        // payload, and the record's pass has read its facts.
        (Some((range, facts)), None) => {
            if u64::from(crc32fast::hash(&data[range.clone()])) != crc {
                return Err(RecordError::Checksum);
            }
            let facts = Facts::of_body(&range, facts)?;
            event.payload = Span::Range(range.clone());
            event.raw_body = Some(Span::Range(range));
            Ok(facts)
        }
        (None, Some(b64)) => {
            let bytes = archive::decode_body_base64(&b64).map_err(RecordError::Base64)?;
            if u64::from(crc32fast::hash(&bytes)) != crc {
                return Err(RecordError::Checksum);
            }
            let payload = payload_of_body(&bytes)?;
            let facts = Facts::of_payload(&payload)?;
            event.payload_line_breaks = memchr::memchr2(b'\n', b'\r', &payload).is_some();
            event.payload = Span::Owned(payload.into_boxed_slice());
            event.raw_body = Some(Span::Owned(bytes.into_boxed_slice()));
            Ok(facts)
        }
        _ => Err(RecordError::Body),
    }
}

/// The JSON payload inside a body that could not be embedded: the `payload`
/// field of a form-encoded body, or JSON with space around it.
fn payload_of_body(body: &[u8]) -> Result<Vec<u8>, RecordError> {
    let trimmed = body.trim_ascii();
    if trimmed.starts_with(b"{") {
        return Ok(trimmed.to_vec());
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned().into_bytes())
        .ok_or(RecordError::NoPayload)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use chrono::TimeZone;
    use flate2::write::GzEncoder;

    use super::*;

    pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn decode(raw: &[u8]) -> DecodedObject {
        decode_object("k".into(), None, raw.to_vec(), &DecodeOptions::default())
    }

    const PUSH: &str = r#"{"ref":"refs/heads/main","before":"a","after":"b","commits":[],"pusher":{"name":"o"},"repository":{"full_name":"o/r","private":false},"sender":{"login":"o"}}"#;
    const MOZ: &str = r#"{"body": {"action": "published", "release": {"tag_name": "v1"}, "repository": {"full_name": "o/r", "private": true}}, "event": "release", "request_id": "3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b"}"#;

    #[test]
    fn splits_concatenated_newline_and_mixed_documents() {
        let text = format!("{PUSH}{MOZ}\n{PUSH}\n\n{MOZ}");
        for raw in [text.as_bytes().to_vec(), gzip(text.as_bytes())] {
            let obj = decode(&raw);
            assert!(obj.problems.is_empty(), "{:?}", obj.problems);
            let shapes: Vec<_> = obj
                .events
                .iter()
                .map(|e| (e.shape, e.event.as_str()))
                .collect();
            assert_eq!(
                shapes,
                [
                    (Shape::Raw, "push"),
                    (Shape::Mozilla, "release"),
                    (Shape::Raw, "push"),
                    (Shape::Mozilla, "release")
                ]
            );
            assert_eq!(obj.payload(&obj.events[0]), PUSH);
            assert!(obj
                .payload(&obj.events[1])
                .starts_with(r#"{"action": "published""#));
            assert_eq!(obj.events[1].private, Private::Bool(true));
            assert_eq!(
                obj.events[1].delivery_id.as_deref(),
                Some("3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b")
            );
        }
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        let mut raw = gzip(PUSH.as_bytes());
        raw.extend(gzip(MOZ.as_bytes()));
        let obj = decode(&raw);
        assert_eq!(obj.events.len(), 2);
        assert!(obj.problems.is_empty());
    }

    #[test]
    fn junk_between_records_is_reported_and_skipped() {
        let text = format!(
            "{PUSH}this is not json\n{MOZ}{{\"event\": \"push\", \"payload\": {{\"ref\": \n{PUSH}"
        );
        let obj = decode(text.as_bytes());
        assert_eq!(obj.events.len(), 3, "{:?}", obj.problems);
        assert_eq!(obj.problems.len(), 2, "{:?}", obj.problems);
        let DecodeError::Record {
            offset, skipped, ..
        } = &obj.problems[0]
        else {
            panic!("{:?}", obj.problems)
        };
        assert_eq!(
            (*offset, *skipped),
            (PUSH.len() as u64, "this is not json\n".len() as u64)
        );
    }

    #[test]
    fn truncated_gzip_keeps_the_records_before_the_cut() {
        let text = format!("{PUSH}{MOZ}").repeat(200);
        let full = gzip(text.as_bytes());
        let obj = decode(&full[..full.len() * 2 / 3]);
        assert!(!obj.events.is_empty() && obj.events.len() < 400);
        assert!(
            matches!(obj.problems[0], DecodeError::Gzip { .. }),
            "{:?}",
            obj.problems
        );
        assert!(
            obj.problems
                .iter()
                .any(|p| p.to_string().contains("incomplete record")),
            "{:?}",
            obj.problems
        );
    }

    #[test]
    fn non_objects_and_unsupported_compression_are_problems_not_events() {
        let obj = decode(format!("[1,2]\n{PUSH}").as_bytes());
        assert_eq!(obj.events.len(), 1);
        assert_eq!(obj.problems.len(), 1);
        let obj = decode(b"PK\x03\x04rest");
        assert_eq!(obj.problems, [DecodeError::UnsupportedCompression("zip")]);
        assert!(decode(b"").problems.is_empty());
    }

    #[test]
    fn size_cap_stops_decompression() {
        let raw = gzip(PUSH.repeat(100).as_bytes());
        let obj = decode_object(
            "k".into(),
            None,
            raw,
            &DecodeOptions {
                max_object_bytes: 1000,
            },
        );
        assert!(obj
            .problems
            .iter()
            .any(|p| matches!(p, DecodeError::TooLarge { limit: 1000 })));
        assert_eq!(obj.data.len(), 1000);
    }

    fn record(body: &[u8], content_type: &str) -> archive::Record {
        archive::Record {
            delivery_id: "3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b".into(),
            event: "push".into(),
            received_at: Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 1).unwrap(),
            headers: BTreeMap::from([
                ("content-type".into(), content_type.into()),
                ("x-hub-signature-256".into(), "sha256=00".into()),
            ]),
            body: body.to_vec(),
        }
    }

    #[test]
    fn own_record_round_trips_through_the_decoder_byte_for_byte() {
        let form = format!(
            "payload={}",
            form_urlencoded::byte_serialize(PUSH.as_bytes()).collect::<String>()
        );
        for (body, ct) in [
            (PUSH.as_bytes().to_vec(), "application/json"),
            (form.into_bytes(), "application/x-www-form-urlencoded"),
            (format!(" {PUSH}\n").into_bytes(), "application/json"),
        ] {
            let rec = record(&body, ct);
            let obj = decode(&gzip(&rec.to_json_line()));
            assert!(obj.problems.is_empty(), "{:?}", obj.problems);
            let ev = &obj.events[0];
            assert_eq!(ev.shape, Shape::Ghreplay);
            assert_eq!(obj.bytes(ev.raw_body.as_ref().unwrap()), &body[..]);
            assert_eq!(obj.payload(ev), PUSH);
            assert_eq!(ev.received_at, Some(rec.received_at));
            assert_eq!(ev.delivery_id.as_deref(), Some(rec.delivery_id.as_str()));
            assert_eq!(ev.repository.as_deref(), Some("o/r"));
            let headers: BTreeMap<String, String> =
                serde_json::from_str(ev.headers.as_deref().unwrap()).unwrap();
            assert_eq!(headers, rec.headers);
        }
    }

    #[test]
    fn a_torn_or_altered_own_record_is_never_taken_as_good() {
        let line = record(PUSH.as_bytes(), "application/json").to_json_line();
        let torn = &line[..line.len() - 10];
        let obj = decode(torn);
        assert!(obj.events.is_empty());
        assert_eq!(obj.problems.len(), 1);

        let altered = String::from_utf8(line)
            .unwrap()
            .replace("refs/heads/main", "refs/heads/evil");
        let obj = decode(altered.as_bytes());
        assert!(obj.events.is_empty());
        assert!(
            obj.problems[0].to_string().contains("checksum"),
            "{:?}",
            obj.problems
        );
    }

    /// A payload object as a body, in one of the ways it reaches `serve`.
    fn body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        (crate::fuzzing::strategies::json_object(), 0..4u8).prop_map(|(v, how)| match how {
            0 => serde_json::to_vec(&v).unwrap(),
            1 => serde_json::to_vec_pretty(&v).unwrap(),
            2 => format!(" {v}\n").into_bytes(),
            _ => form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &v.to_string())
                .finish()
                .into_bytes(),
        })
    }

    proptest::proptest! {
        /// Whatever `serve` would acknowledge (by [`check_record`]) reads
        /// back with the body, headers, event and id it was given; and a
        /// payload object in any of GitHub's encodings is acknowledged.
        #[test]
        fn whatever_serve_acknowledges_reads_back_byte_exact(
            body in body(),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            headers in proptest::collection::btree_map("[a-z-]{1,16}", "[ -~]{0,40}", 0..4),
            event in "[a-z][a-z0-9_]{0,23}",
            id in "[0-9a-f-]{1,36}",
        ) {
            for (body, must_pass) in [(body, true), (noise, false)] {
                let record = archive::Record {
                    delivery_id: id.clone(),
                    event: event.clone(),
                    received_at: chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
                    headers: headers.clone(),
                    body,
                };
                let line = record.to_json_line();
                if must_pass {
                    let checked = check_record(&line);
                    proptest::prop_assert!(checked.is_ok(), "{:?}: {}", checked, String::from_utf8_lossy(&record.body));
                }
                // The fuzz harness's check: what is taken reads back whole.
                crate::fuzzing::round_trip(&record, &line);
            }
        }
    }

    #[test]
    fn a_record_that_is_not_utf8_is_reported_and_its_neighbours_read() {
        let mut data = MOZ.as_bytes().to_vec();
        let bad = MOZ.replace("\"event\"", "\"skipped\": \"\u{1}\", \"event\"");
        let mut bad = bad.into_bytes();
        let at = bad.iter().position(|b| *b == 1).unwrap();
        bad[at] = 0xC8; // a lone lead byte, in a field serde_json skips
        data.extend_from_slice(&bad);
        data.extend_from_slice(MOZ.as_bytes());
        let obj = decode(&data);
        assert_eq!(obj.events.len(), 2, "{:?}", obj.problems);
        assert!(
            obj.problems[0].to_string().contains("not UTF-8"),
            "{:?}",
            obj.problems
        );
    }

    #[test]
    fn a_body_kept_as_base64_must_still_be_utf8_text_to_be_taken() {
        let record = |body: &[u8]| archive::Record {
            delivery_id: "d".into(),
            event: "push".into(),
            received_at: chrono::Utc::now(),
            headers: BTreeMap::new(),
            body: body.to_vec(),
        };
        // Not UTF-8, so not embedded: the record keeps it as base64, and the
        // payload read from it would print as text that is not text.
        let line = record(b"{\"a\": \"\xff\"}").to_json_line();
        assert!(line.windows(11).any(|w| w == b"body_base64"));
        let why = check_record(&line).unwrap_err();
        assert!(why.contains("not UTF-8 text at byte 7"), "{why}");
        // Padded with spaces, it is kept as base64 too, and taken.
        let line = record(b" {\"a\": \"\xc3\xa9\"}\n").to_json_line();
        assert!(line.windows(11).any(|w| w == b"body_base64"));
        assert_eq!(check_record(&line), Ok(()));
    }

    /// [`nesting`] as it was first written, a byte at a time.
    fn nesting_bytewise(text: &[u8]) -> usize {
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
        for &b in text {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        deepest
    }

    proptest::proptest! {
        /// Crossing strings by `memchr2` counts what the byte-at-a-time
        /// walk counts, escapes, cut strings and stray brackets included.
        #[test]
        fn nesting_agrees_with_a_walk_a_byte_at_a_time(text in r#"[\[\]{}"\\a]{0,64}"#) {
            proptest::prop_assert_eq!(nesting(text.as_bytes()), nesting_bytewise(text.as_bytes()));
        }
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_only() {
        assert_eq!(nesting(br#"{"a":[1,{"b":"[[[{{"}]}"#), 3);
        assert_eq!(nesting(br#"{"a":"\\\"[["}"#), 1);
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let r = archive::Record {
            delivery_id: "d".into(),
            event: "push".into(),
            received_at: chrono::Utc::now(),
            headers: BTreeMap::new(),
            body: deep.into_bytes(),
        };
        let why = check_record(&r.to_json_line()).unwrap_err();
        assert!(why.contains("nested 201 deep"), "{why}");
    }
}
