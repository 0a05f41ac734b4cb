//! One borrowing pass over a JSON object that picks out what ghreplay needs:
//! the envelope fields of every record shape, and the few payload facts the
//! filters and the event inference use. Everything else is skipped unparsed,
//! and the payload itself stays as raw bytes.

use crate::model::Private;
use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::infer::{AlertKind, Key, KeySet};

/// A string field that borrows from the input when it has no escapes.
/// Any non-string value reads as absent, so odd input never fails a record.
#[derive(Debug, Default)]
pub struct LooseStr<'a>(pub Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for LooseStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl LooseStr<'_> {
    pub fn into_string(self) -> Option<String> {
        self.0.map(Cow::into_owned)
    }
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// What the `repository` key held.
#[derive(Debug, Default)]
pub struct Repository<'a> {
    /// The value was an object (a repository the event is about).
    pub is_object: bool,
    pub full_name: LooseStr<'a>,
    pub private: Private,
}

impl<'de> Deserialize<'de> for Repository<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Repository<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a repository object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut repo = Repository {
                    is_object: true,
                    ..Repository::default()
                };
                while let Some(key) = map.next_key::<LooseStr<'de>>()? {
                    match key.as_deref() {
                        Some("full_name") => repo.full_name = map.next_value()?,
                        Some("private") => repo.private = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(repo)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Repository::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Repository::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Repository::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Repository::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Repository::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Repository::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Repository::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// `sender.login`, read from any value (absent unless an object with a string login).
#[derive(Debug, Default)]
pub struct Sender<'a>(pub LooseStr<'a>);

impl<'de> Deserialize<'de> for Sender<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let found = ObjectKeys::deserialize(d, |key| key == "login")?;
        Ok(Sender(LooseStr(found.and_then(|v| v.0))))
    }
}

/// Which alert event an `alert` object belongs to, told by its keys.
impl<'de> Deserialize<'de> for AlertKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AlertKind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an alert object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kind = AlertKind::Unknown;
                while let Some(key) = map.next_key::<LooseStr<'de>>()? {
                    let seen = match key.as_deref() {
                        Some("dependency" | "security_advisory") => AlertKind::Dependabot,
                        Some("secret_type") => AlertKind::SecretScanning,
                        Some("affected_package_name" | "external_identifier") => {
                            AlertKind::RepositoryVulnerability
                        }
                        _ => AlertKind::Unknown,
                    };
                    if kind == AlertKind::Unknown {
                        kind = seen;
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(kind)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(AlertKind::Unknown)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads an object and returns the string value of the first key matching
/// `wanted`, skipping everything else; any non-object yields `None`.
struct ObjectKeys;

impl ObjectKeys {
    fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
        wanted: fn(&str) -> bool,
    ) -> Result<Option<LooseStr<'de>>, D::Error> {
        struct V(fn(&str) -> bool);
        impl<'de> Visitor<'de> for V {
            type Value = Option<LooseStr<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<LooseStr<'de>>()? {
                    if found.is_none() && key.as_deref().is_some_and(self.0) {
                        found = Some(map.next_value::<LooseStr<'de>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(found)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V(wanted))
    }
}

/// Everything one pass over a top-level object (a record, or a payload) finds.
///
/// For a Mozilla or ghreplay record the envelope fields are set and the
/// payload facts come from a second pass over `body`; for a raw payload the
/// payload facts are read in this one pass.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    // Envelope (Mozilla and ghreplay shapes).
    /// The `ghreplay` format version, raw: its presence marks our shape.
    pub version: Option<&'a RawValue>,
    pub body: Option<&'a RawValue>,
    pub body_base64: LooseStr<'a>,
    pub body_crc32: Option<u64>,
    pub event: LooseStr<'a>,
    pub request_id: LooseStr<'a>,
    pub delivery_id: LooseStr<'a>,
    pub received_at: LooseStr<'a>,
    pub headers: Option<&'a RawValue>,
    // Payload facts.
    pub action: LooseStr<'a>,
    pub repository: Repository<'a>,
    pub sender: Sender<'a>,
    pub alert: AlertKind,
    pub keys: KeySet,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object (a webhook record or payload)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut f = Fields::default();
                while let Some(key) = map.next_key::<LooseStr<'de>>()? {
                    let key = key.0.unwrap_or_default();
                    if let Some(k) = Key::from_name(&key) {
                        f.keys.insert(k);
                    }
                    match &*key {
                        "ghreplay" => f.version = Some(map.next_value()?),
                        "body" => f.body = Some(map.next_value()?),
                        "body_base64" => f.body_base64 = map.next_value()?,
                        "body_crc32" => f.body_crc32 = map.next_value::<Option<u64>>()?,
                        "event" => f.event = map.next_value()?,
                        "request_id" => f.request_id = map.next_value()?,
                        "delivery_id" => f.delivery_id = map.next_value()?,
                        "received_at" => f.received_at = map.next_value()?,
                        "headers" => f.headers = Some(map.next_value()?),
                        "action" => f.action = map.next_value()?,
                        "repository" => f.repository = map.next_value()?,
                        "sender" => f.sender = map.next_value()?,
                        "alert" => f.alert = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(f)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Private;

    #[test]
    fn picks_envelope_and_payload_facts_borrowing_when_it_can() {
        let json = br#"{"action":"opened","repository":{"full_name":"o/r","private":false,"owner":{"login":"o"}},"sender":{"id":1,"login":"octocat"},"pull_request":{"body":"x"},"number":3}"#;
        let f: Fields = serde_json::from_slice(json).unwrap();
        assert_eq!(f.action.as_deref(), Some("opened"));
        assert!(matches!(f.action.0, Some(Cow::Borrowed(_))));
        assert!(f.repository.is_object);
        assert_eq!(f.repository.full_name.as_deref(), Some("o/r"));
        assert_eq!(f.repository.private, Private::Bool(false));
        assert_eq!(f.sender.0.as_deref(), Some("octocat"));
        assert!(f.keys.contains(Key::PullRequest));
        assert!(f.body.is_none());
    }

    #[test]
    fn odd_types_read_as_absent_or_other_never_as_an_error() {
        let json = br#"{"action":5,"repository":{"private":"yes"},"sender":null,"event":[1]}"#;
        let f: Fields = serde_json::from_slice(json).unwrap();
        assert_eq!(f.action.as_deref(), None);
        assert_eq!(f.event.as_deref(), None);
        assert_eq!(f.repository.private, Private::Other);
        let f: Fields = serde_json::from_slice(br#"{"repository":null}"#).unwrap();
        assert!(!f.repository.is_object);
    }

    #[test]
    fn body_is_kept_as_the_exact_bytes() {
        let json =
            br#"{"body": {"a": [1, 2],  "b": "\u00e9"}, "event": "push", "request_id": "x"}"#;
        let f: Fields = serde_json::from_slice(json).unwrap();
        assert_eq!(f.body.unwrap().get(), r#"{"a": [1, 2],  "b": "\u00e9"}"#);
    }
}
