//! Mozilla's string form (`deliver::mozilla::string_form`, what `republish`
//! sends to Pulse and SNS for raw and ghreplay-shape records), held by a
//! property: whatever the payload, the text parses back to the same JSON,
//! in Python's `json.dumps(sort_keys=True)` layout.

use ghreplay::decode::{decode_object, DecodeOptions};
use ghreplay::deliver::mozilla::string_form;
use proptest::prelude::*;
use serde_json::Value;

/// JSON values a few levels deep, with strings from all of Unicode (astral
/// characters too: Python writes them as surrogate pairs).
fn json_value() -> impl Strategy<Value = Value> {
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

proptest! {
    #[test]
    fn any_payload_renders_to_text_that_parses_back_the_same(
        payload in prop::collection::btree_map(any::<String>(), json_value(), 0..8)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ) {
        // A raw (cztack) record: the payload alone.
        let obj = decode_object(
            "k".into(),
            None,
            serde_json::to_vec(&payload).unwrap(),
            &DecodeOptions::default(),
        );
        prop_assert!(obj.problems.is_empty(), "{:?}", obj.problems);
        let e = &obj.events[0];
        let text = String::from_utf8(string_form(&obj, e).unwrap()).unwrap();
        prop_assert!(text.is_ascii(), "ensure_ascii: {text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        let want = serde_json::json!({
            "body": payload,
            "event": e.event,
            "request_id": Value::Null,
        });
        prop_assert_eq!(&back, &want);
        prop_assert!(text.starts_with("{\"body\": "), "{}", text);
    }
}
