//! One row of the `deliveries` table (`queries/schema.sql`), as `load`
//! appends it to DuckDB and `export` writes it to Parquet: the columns are
//! derived from a kept event here, once, so the two cannot disagree.

use crate::decode::{DecodedObject, Event};
use crate::filter;

/// A kept event's columns, borrowed from its decoded object.
#[derive(Debug, Clone)]
pub struct RowView<'a> {
    /// The delivery id, or `<object key>#<record index>` without one.
    pub key: String,
    pub delivery_id: Option<&'a str>,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub repository: Option<&'a str>,
    /// The owner part of `repository`.
    pub owner: Option<&'a str>,
    pub private: Option<bool>,
    /// The privacy filter's verdict.
    pub public: bool,
    pub sender: Option<&'a str>,
    /// Microseconds since the epoch: when received, else the object's time.
    pub received_at: Option<i64>,
    pub object_time: Option<i64>,
    pub object_key: &'a str,
    pub record_index: u32,
    pub shape: &'static str,
    /// The GitHub payload, JSON text as archived.
    pub payload: &'a str,
    /// Ghreplay's records: the kept request headers, a JSON object.
    pub headers: Option<&'a str>,
    /// The body as received, only where it is not the payload's bytes (a
    /// form-encoded body): the signature is over these bytes.
    pub raw_body: Option<&'a [u8]>,
}

impl<'a> RowView<'a> {
    #[must_use]
    pub fn new(obj: &'a DecodedObject, e: &'a Event, public: bool) -> Self {
        let payload = obj.payload(e);
        let raw_body = e
            .raw_body
            .as_ref()
            .map(|b| obj.bytes(b))
            .filter(|b| *b != payload.as_bytes());
        let repository = e.repository.as_deref();
        Self {
            key: row_key(obj, e),
            delivery_id: e.delivery_id.as_deref(),
            event: &e.event,
            action: e.action.as_deref(),
            repository,
            owner: repository
                .and_then(|full| full.split_once('/'))
                .map(|(owner, _)| owner),
            private: e.private_flag(),
            public,
            sender: e.sender.as_deref(),
            received_at: filter::event_time(e, obj.object_time).map(|t| t.timestamp_micros()),
            object_time: obj.object_time.map(|t| t.timestamp_micros()),
            object_key: &obj.key,
            record_index: e.index,
            shape: e.shape.as_str(),
            payload,
            headers: e.headers.as_deref(),
            raw_body,
        }
    }

    /// What it weighs in a batch: its payload and body.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.payload.len() + self.raw_body.map_or(0, <[u8]>::len)
    }
}

/// The key a record is loaded under: its delivery id, or where it is in the
/// archive when it has none (stable across loads).
#[must_use]
pub fn row_key(obj: &DecodedObject, e: &Event) -> String {
    match &e.delivery_id {
        Some(id) => id.clone(),
        None => format!("{}#{}", obj.key, e.index),
    }
}
