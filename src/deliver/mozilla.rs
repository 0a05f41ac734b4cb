//! Mozilla's string form of a delivery (formats.md section 2): what its
//! receiver wrote to Firehose and published to SNS, byte for byte:
//! Python's `json.dumps({"body": payload, "event": ..., "request_id": ...},
//! sort_keys=True)`, so existing SNS subscribers parse it unchanged.

use std::io;

use serde::Serialize as _;
use serde_json::ser::Formatter;
use serde_json::Value;

use crate::decode::{DecodedObject, Event};
use crate::model::Shape;

/// Python `json.dumps` defaults: `", "` and `": "` separators, and
/// `ensure_ascii`: every non-ASCII character as `\uXXXX` (UTF-16 units).
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// The string form of `e`. A Mozilla-shape record already is it; other
/// shapes are rendered from the parsed payload (keys sorted, as Python does).
pub fn string_form(obj: &DecodedObject, e: &Event) -> Result<Vec<u8>, serde_json::Error> {
    if e.shape == Shape::Mozilla {
        return Ok(obj.data[e.record.clone()].to_vec());
    }
    // serde_json's Map is a BTreeMap: keys come out sorted, like sort_keys.
    let payload: Value = serde_json::from_str(obj.payload(e))?;
    let record = serde_json::json!({
        "body": payload,
        "event": e.event,
        "request_id": e.delivery_id,
    });
    let mut out = Vec::with_capacity(obj.bytes(&e.payload).len() + 128);
    record.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        PythonFormatter,
    ))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_object, DecodeOptions};

    #[test]
    fn raw_payloads_render_as_python_would() {
        let raw = r#"{"zeta":1,"alpha":{"b":[1,2],"a":"caf\u00e9 ☃ 😀"},"action":null}"#;
        let obj = decode_object(
            "k".into(),
            None,
            raw.as_bytes().to_vec(),
            &DecodeOptions::default(),
        );
        let text = String::from_utf8(string_form(&obj, &obj.events[0]).unwrap()).unwrap();
        // json.dumps({"body": ..., "event": "unknown", "request_id": None}, sort_keys=True)
        assert_eq!(
            text,
            r#"{"body": {"action": null, "alpha": {"a": "caf\u00e9 \u2603 \ud83d\ude00", "b": [1, 2]}, "zeta": 1}, "event": "unknown", "request_id": null}"#
        );
    }

    #[test]
    fn a_float_parses_and_renders_back_exactly() {
        // The shortest case a property test found one ulp off before
        // serde_json's float_roundtrip was on.
        let raw = r#"{"":{"":-1.8329565542307634e-79}}"#;
        let obj = decode_object(
            "k".into(),
            None,
            raw.as_bytes().to_vec(),
            &DecodeOptions::default(),
        );
        let text = String::from_utf8(string_form(&obj, &obj.events[0]).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"body": {"": {"": -1.8329565542307634e-79}}, "event": "unknown", "request_id": null}"#
        );
    }

    proptest::proptest! {
        /// Whatever the payload, its string form is ASCII, in Python's
        /// layout, and parses back to the same JSON.
        #[test]
        fn any_payload_renders_to_text_that_parses_back_the_same(
            payload in crate::fuzzing::strategies::json_object(),
        ) {
            // A raw (cztack) record: the payload alone.
            let obj = decode_object(
                "k".into(),
                None,
                serde_json::to_vec(&payload).unwrap(),
                &DecodeOptions::default(),
            );
            proptest::prop_assert!(obj.problems.is_empty(), "{:?}", obj.problems);
            let e = &obj.events[0];
            let text = String::from_utf8(string_form(&obj, e).unwrap()).unwrap();
            proptest::prop_assert!(text.is_ascii(), "ensure_ascii: {}", text);
            let back: Value = serde_json::from_str(&text).unwrap();
            let want = serde_json::json!({
                "body": payload,
                "event": e.event,
                "request_id": Value::Null,
            });
            proptest::prop_assert_eq!(&back, &want);
            proptest::prop_assert!(text.starts_with("{\"body\": "), "{}", text);
        }
    }

    #[test]
    fn a_mozilla_record_is_its_own_string_form() {
        let rec = r#"{"body": {"zen": "z", "hook_id": 1}, "event": "ping", "request_id": "r1"}"#;
        let data = format!("{rec}{rec}");
        let obj = decode_object(
            "k".into(),
            None,
            data.into_bytes(),
            &DecodeOptions::default(),
        );
        assert_eq!(string_form(&obj, &obj.events[1]).unwrap(), rec.as_bytes());
    }
}
