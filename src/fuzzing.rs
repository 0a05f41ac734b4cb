//! Fuzz harnesses: what each target of `fuzz/` runs on one input, with the
//! invariants it must keep (a broken one panics). Here rather than in the
//! fuzz crate so that the tests can replay the corpora and every crash
//! (`tests/it/fuzz_corpus.rs`) on the stable toolchain, without the fuzzer.
//!
//! Nothing else in the crate uses this module.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{TimeZone as _, Utc};

use crate::archive::Record;
use crate::decode::{self, DecodeOptions};
use crate::server::{self, Auth};
use crate::signature::{self, Secret};

/// One fuzz target's work on one input.
pub type Harness = fn(&[u8]);

/// The secret the `receiver` harness signs with.
const SECRET: &[u8] = b"fuzz-secret";

/// A password `target_url` puts in URLs; it must never be shown.
const PASSWORD: &str = "Pw0rdZq";

/// The fuzz targets by name, as `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/` call them.
pub const TARGETS: [(&str, Harness); 5] = [
    ("decode_object", decode_object),
    ("own_record", own_record),
    ("receiver", receiver),
    ("time_and_span", time_and_span),
    ("target_url", target_url),
];

/// Object decoding in every shape, compression and framing: never a panic,
/// every event's spans inside the object, every payload UTF-8 JSON text.
pub fn decode_object(data: &[u8]) {
    let opts = DecodeOptions {
        max_object_bytes: 4 << 20,
    };
    let obj = decode::decode_object("k".into(), None, data.to_vec(), &opts);
    let mut last = None;
    for e in &obj.events {
        assert!(last < Some(e.offset), "events out of order");
        last = Some(e.offset);
        assert!(e.record.end <= obj.data.len(), "record past the object");
        let payload = obj.bytes(&e.payload);
        assert!(std::str::from_utf8(payload).is_ok(), "payload not UTF-8");
        // The read path's own JSON pass must agree with serde_json's.
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok(),
            "payload not JSON"
        );
        if let Some(raw) = &e.raw_body {
            let _ = obj.bytes(raw);
        }
    }
}

/// ghreplay's own record: a body (and header values) made into a record;
/// if the receiver's check takes it, the reader returns it byte for byte.
/// Input: header value, a 0 byte, then the body (or the body alone).
pub fn own_record(data: &[u8]) {
    let (value, body) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let mut headers = BTreeMap::new();
    headers.insert(
        "x-github-hook-id".to_owned(),
        String::from_utf8_lossy(value).into_owned(),
    );
    let record = Record {
        delivery_id: "fuzz".into(),
        event: "push".into(),
        received_at: Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default(),
        headers,
        body: body.to_vec(),
    };
    round_trip(&record, &record.to_json_line());
}

/// The receiver's checks on a request whose body arrived: headers,
/// signature, content type, form encoding, body. Input: `Name: value`
/// lines, an empty line, then the body; the first byte's low bit says
/// whether the harness signs the body with the secret (so that what lies
/// past the signature check is reached too).
pub fn receiver(data: &[u8]) {
    let sign = data.first().is_some_and(|b| b & 1 == 1);
    let data = data.get(1..).unwrap_or_default();
    let (head, body) = match memchr::memmem::find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &b""[..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if sign {
        if let Ok(v) = HeaderValue::from_str(&signature::sign_sha256(SECRET, body)) {
            headers.insert("x-hub-signature-256", v);
        }
    }
    let auth = Auth::Secrets {
        secrets: vec![Secret::new(SECRET)],
        allow_sha1: true,
    };
    let now = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    match server::admit(&auth, &headers, body, now) {
        Ok((record, line)) => {
            assert_eq!(record.body, body, "the archived body is the body received");
            round_trip(&record, &line);
        }
        Err(r) => assert!(r.status.is_client_error(), "{r:?}"),
    }
}

/// `--since`/`--until` and span flags: never a panic; a parsed span is
/// not negative.
pub fn time_and_span(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let now = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    let _ = crate::config::parse_time(&text, now);
    if let Some(d) = crate::config::parse_span(&text) {
        assert!(d >= chrono::Duration::zero(), "negative span from {text:?}");
    }
}

/// Target URLs (`--to`, `--forward`) and their redaction: never a panic,
/// and a password given in the URL is never shown.
pub fn target_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::deliver::Target::parse(&text);
    let base = crate::deliver::target::TargetOptions {
        exchange: "x".into(),
        declare: false,
        mandatory: false,
        endpoint_url: None,
        sign_secret: None,
        timeout: std::time::Duration::from_secs(1),
        window: 1,
        retry: crate::deliver::RetryPolicy::new(std::time::Duration::from_secs(1)),
        ca_pem: None,
    };
    if let Ok(t) = server::forward::ForwardTarget::parse(&text, &base, false) {
        let _ = t.shown();
    }
    // The password must not show, unless the input itself wrote it
    // elsewhere in the URL (the host, a path): a fuzzer finds that at once.
    if text.contains(PASSWORD) {
        return;
    }
    for scheme in ["http://", "https://", "amqp://"] {
        let url = format!("{scheme}user:{PASSWORD}@{text}");
        let shown = crate::deliver::http::redact_url(&url);
        assert!(!shown.contains(PASSWORD), "{url:?} shown as {shown:?}");
    }
}

/// A record line the receiver took reads back as the record: its body byte
/// for byte, its id, event and headers.
pub(crate) fn round_trip(record: &Record, line: &[u8]) {
    if decode::check_record(line).is_err() {
        return;
    }
    let obj = decode::decode_object("k".into(), None, line.to_vec(), &DecodeOptions::default());
    assert!(obj.problems.is_empty(), "{:?}", obj.problems);
    let [e] = &obj.events[..] else {
        panic!("{} events from one record", obj.events.len())
    };
    let raw = e.raw_body.as_ref().map(|b| obj.bytes(b));
    assert_eq!(raw, Some(&record.body[..]), "body changed");
    assert_eq!(e.delivery_id.as_deref(), Some(&record.delivery_id[..]));
    assert_eq!(e.event, record.event);
    let headers = e
        .headers
        .as_deref()
        .expect("an own record keeps its headers");
    let kept: BTreeMap<String, String> =
        serde_json::from_str(headers).expect("kept headers are a JSON object of strings");
    assert_eq!(kept, record.headers, "headers changed");
}

/// Property-test inputs shared by the unit tests (`decode`,
/// `deliver::mozilla`).
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;
    use serde_json::Value;

    /// JSON values a few levels deep, with keys and strings from all of
    /// Unicode (characters that need escaping, astral ones too).
    pub fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A JSON object of such values: a payload.
    pub fn json_object() -> impl Strategy<Value = Value> {
        prop::collection::btree_map(any::<String>(), json_value(), 0..8)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }
}
