//! The archive format, defined once: Firehose object naming and layout, and
//! ghreplay's own record shape.
//!
//! Three record shapes live in the wild and all are read (`decode` does the
//! reading, this module says what the bytes mean):
//!
//! - [`Shape::Mozilla`]: `{"body": <payload>, "event": "...", "request_id": "..."}`
//!   written by Mozilla's receiver (body re-serialised, no headers, no time).
//! - [`Shape::Raw`]: the request body alone, as cztack's lambda stores it; the
//!   event name must be inferred from the payload.
//! - [`Shape::Ghreplay`]: ours, written by `ghreplay serve`; see [`Record`].

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Serialize;

// ---------------------------------------------------------------------------
// Object naming: <prefix>YYYY/MM/DD/HH/<stream>-<ver>-YYYY-MM-DD-HH-MM-SS-<uuid>[.ext]
// ---------------------------------------------------------------------------

/// The parts of a Firehose object's file name (the last path segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub stream: String,
    pub version: u32,
    /// The time in the name: Firehose's stamp for the object, UTC.
    pub written_at: DateTime<Utc>,
    pub uuid: String,
    /// `gz`, `zip`, `snappy`... or `None`. Informative only: the decoder
    /// detects compression from the bytes.
    pub extension: Option<String>,
}

/// Extensions Firehose appends for its compression formats.
const KNOWN_EXTENSIONS: &[&str] = &["gz", "zip", "snappy", "parquet", "orc"];
const UUID_LEN: usize = 36;
const STAMP_LEN: usize = "YYYY-MM-DD-HH-MM-SS".len();

/// Parses a Firehose object file name, or `None` when it does not follow the
/// naming. Parsed from the right, since stream names may contain `-` and `.`.
#[must_use]
pub fn parse_object_name(name: &str) -> Option<ObjectName> {
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) if KNOWN_EXTENSIONS.contains(&ext) => (stem, Some(ext.to_owned())),
        _ => (name, None),
    };
    if !stem.is_ascii() || stem.len() < UUID_LEN + STAMP_LEN + 5 {
        return None;
    }
    let (rest, uuid) = stem.split_at(stem.len() - UUID_LEN);
    if !is_uuid(uuid) {
        return None;
    }
    let rest = rest.strip_suffix('-')?;
    let (rest, stamp) = rest.split_at(rest.len() - STAMP_LEN);
    let written_at = parse_stamp(stamp)?;
    let (stream, version) = rest.strip_suffix('-')?.rsplit_once('-')?;
    if stream.is_empty() || version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ObjectName {
        stream: stream.to_owned(),
        version: version.parse().ok()?,
        written_at,
        uuid: uuid.to_owned(),
        extension,
    })
}

/// The file name Firehose would give an object (used by `serve`'s writer).
#[must_use]
pub fn object_name(
    stream: &str,
    version: u32,
    written_at: DateTime<Utc>,
    uuid: &str,
    gzip: bool,
) -> String {
    let stamp = written_at.format("%Y-%m-%d-%H-%M-%S");
    let ext = if gzip { ".gz" } else { "" };
    format!("{stream}-{version}-{stamp}-{uuid}{ext}")
}

/// The hour prefix below the archive root: `YYYY/MM/DD/HH/`.
#[must_use]
pub fn hour_prefix(t: DateTime<Utc>) -> String {
    t.format("%Y/%m/%d/%H/").to_string()
}

fn parse_stamp(stamp: &str) -> Option<DateTime<Utc>> {
    let b = stamp.as_bytes();
    let dashes = [4, 7, 10, 13, 16];
    if b.len() != STAMP_LEN || dashes.iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let s = &stamp[from..to];
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)?;
    let time = date.and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)?;
    Some(Utc.from_utc_datetime(&time))
}

fn is_uuid(s: &str) -> bool {
    guid_bits(s).is_some()
}

/// A GitHub delivery id as a 128-bit number when it is a GUID, which it
/// always is from GitHub; used as an exact, compact dedupe key.
#[must_use]
pub fn guid_bits(id: &str) -> Option<u128> {
    if id.len() != UUID_LEN {
        return None;
    }
    // One pass that checks the layout and folds the digits, with no string
    // built: this runs for every event read (the dedupe set) and every
    // delivery taken (serve's index).
    id.bytes()
        .enumerate()
        .try_fold(0u128, |bits, (i, b)| match i {
            8 | 13 | 18 | 23 => (b == b'-').then_some(bits),
            _ => Some(bits << 4 | u128::from(char::from(b).to_digit(16)?)),
        })
}

/// A delivery id (or any other record key) held compactly for "seen it?"
/// sets: GUIDs, which GitHub's ids always are, as 16 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CompactId {
    Guid(u128),
    Other(Box<str>),
}

impl CompactId {
    #[must_use]
    pub fn new(id: &str) -> Self {
        guid_bits(id).map_or_else(|| Self::Other(id.into()), Self::Guid)
    }
}

// ---------------------------------------------------------------------------
// ghreplay's own record shape, version 1
// ---------------------------------------------------------------------------

/// Field names of the own record shape. The writer ([`Record::to_json_line`])
/// and the decoder both use these, so there is one definition of the format.
pub mod field {
    /// Format version; its presence marks a record as ours.
    pub const VERSION: &str = "ghreplay";
    pub const DELIVERY_ID: &str = "delivery_id";
    pub const EVENT: &str = "event";
    pub const RECEIVED_AT: &str = "received_at";
    pub const HEADERS: &str = "headers";
    /// CRC-32 (IEEE) of the raw body bytes: a torn or altered record fails it.
    pub const BODY_CRC32: &str = "body_crc32";
    /// The raw body embedded verbatim as a JSON value (when it is one).
    pub const BODY: &str = "body";
    /// The raw body as standard base64 (when it cannot be embedded verbatim).
    pub const BODY_BASE64: &str = "body_base64";
}

/// The version this build writes and the newest it reads.
pub const RECORD_VERSION: u64 = 1;

/// Request headers a record keeps (lower case): those that identify the hook
/// and let a replay re-verify the signature. `X-GitHub-Event` and
/// `X-GitHub-Delivery` are kept as the `event` and `delivery_id` fields.
pub const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
    "x-github-enterprise-host",
    "x-github-enterprise-version",
    "x-hub-signature",
    "x-hub-signature-256",
];

/// One delivery as ghreplay archives it: the body bytes exactly as received,
/// so that the signature can be re-verified from the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub delivery_id: String,
    pub event: String,
    pub received_at: DateTime<Utc>,
    /// Lower-case header names from [`KEPT_HEADERS`].
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Record {
    /// One JSON document followed by `\n`, fields in a fixed order with the
    /// body last, so that a torn write can never end in a complete record.
    ///
    /// The body is embedded verbatim when it is a UTF-8 JSON object or array
    /// with nothing around it (what GitHub sends as `application/json`);
    /// otherwise (form-encoded, or odd bytes) it is stored as base64.
    #[must_use]
    pub fn to_json_line(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Head<'a> {
            ghreplay: u64,
            delivery_id: &'a str,
            event: &'a str,
            received_at: String,
            headers: &'a BTreeMap<String, String>,
            body_crc32: u32,
        }
        let head = Head {
            ghreplay: RECORD_VERSION,
            delivery_id: &self.delivery_id,
            event: &self.event,
            received_at: self
                .received_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            headers: &self.headers,
            body_crc32: crc32fast::hash(&self.body),
        };
        let mut out = Vec::with_capacity(self.body.len() + 512);
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_writer(&mut out, &head).unwrap_or_default();
        out.pop(); // the closing brace; the body follows
        if embeddable(&self.body) {
            out.extend_from_slice(format!(",\"{}\":", field::BODY).as_bytes());
            out.extend_from_slice(&self.body);
        } else {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&self.body);
            out.extend_from_slice(format!(",\"{}\":\"{b64}\"", field::BODY_BASE64).as_bytes());
        }
        out.extend_from_slice(b"}\n");
        out
    }
}

/// Whether raw body bytes can stand in a record as a JSON value, byte for byte.
fn embeddable(body: &[u8]) -> bool {
    matches!(
        (body.first(), body.last()),
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))
    ) && std::str::from_utf8(body).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// Decodes a `body_base64` field.
pub fn decode_body_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_firehose_names_with_and_without_extension() {
        let n = parse_object_name(
            "github-webhooks-1-2026-01-15-10-05-00-3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b.gz",
        )
        .unwrap();
        assert_eq!(n.stream, "github-webhooks");
        assert_eq!(n.version, 1);
        assert_eq!(n.written_at.to_rfc3339(), "2026-01-15T10:05:00+00:00");
        assert_eq!(n.extension.as_deref(), Some("gz"));

        let plain = parse_object_name(
            "my.stream-name-12-2019-02-28-23-59-59-3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b",
        )
        .unwrap();
        assert_eq!(plain.stream, "my.stream-name");
        assert_eq!(plain.version, 12);
        assert_eq!(plain.extension, None);
    }

    #[test]
    fn rejects_names_that_do_not_follow_firehose_naming() {
        for bad in [
            "notes.txt",
            "github-webhooks-1-2026-01-15-10-05-00.gz",
            "github-webhooks-x-2026-01-15-10-05-00-3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b",
            "github-webhooks-1-2026-02-30-10-05-00-3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b",
            "-1-2026-01-15-10-05-00-3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b",
            "github-webhooks-1-2026-01-15-10-05-00-3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5z",
        ] {
            assert_eq!(parse_object_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn object_name_round_trips_through_the_parser() {
        let t = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
        let uuid = "3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b";
        let name = object_name("ghreplay", 1, t, uuid, true);
        let parsed = parse_object_name(&name).unwrap();
        assert_eq!((parsed.stream.as_str(), parsed.written_at), ("ghreplay", t));
        assert_eq!(hour_prefix(t), "2026/03/04/05/");
    }

    #[test]
    fn guid_bits_is_exact_for_guids_only() {
        let a = guid_bits("3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b").unwrap();
        let b = guid_bits("3F2B8C1E-9A4D-4E2F-8B1A-0C9D8E7F6A5B").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, 0x3f2b_8c1e_9a4d_4e2f_8b1a_0c9d_8e7f_6a5b);
        assert_eq!(guid_bits("delivery-7"), None);
        assert_eq!(guid_bits("3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5g"), None);
        assert_eq!(guid_bits("3f2b8c1e9-a4d-4e2f-8b1a-0c9d8e7f6a5b"), None);
    }

    #[test]
    fn record_embeds_json_bodies_verbatim_and_base64_for_the_rest() {
        let mut r = Record {
            delivery_id: "d1".into(),
            event: "push".into(),
            received_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            headers: BTreeMap::new(),
            body: br#"{"zen":"Keep it logically awesome.",  "hook_id":1}"#.to_vec(),
        };
        let line = String::from_utf8(r.to_json_line()).unwrap();
        assert!(
            line.ends_with("\"body\":{\"zen\":\"Keep it logically awesome.\",  \"hook_id\":1}}\n"),
            "{line}"
        );

        r.body = b"payload=%7B%7D".to_vec();
        let line = String::from_utf8(r.to_json_line()).unwrap();
        assert!(
            line.contains(r#""body_base64":"cGF5bG9hZD0lN0IlN0Q=""#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["body_crc32"], crc32fast::hash(b"payload=%7B%7D"));
    }
}
