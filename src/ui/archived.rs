//! A delivery's payload read back from the archive, for the rows that keep
//! it only there: the dashboard's database under `serve` keeps the payloads
//! of releases alone ([`super::index`]), so every other delivery's page
//! reads its record here, by the object key and record index of its row.
//!
//! Under `serve` the record may not be in the archive yet (an S3 archive
//! takes an object once it is complete, and the spool holds it until every
//! follower is past it), so the spool is asked first; then the archive,
//! under the key as written and under the key the uploader gives it in S3
//! (`.gz` appended).

use std::path::{Component, Path, PathBuf};

use tokio::sync::OnceCell;

use super::data::Body;
use crate::decode::{decode_object, DecodeOptions};
use crate::model::ArchiveLocation;
use crate::sink::row::RowView;
use crate::source::{SourceError, Store};

/// Where records are read back from.
pub struct Archived {
    location: ArchiveLocation,
    endpoint_url: Option<String>,
    /// `serve`'s spool, asked before the archive.
    spool: Option<PathBuf>,
    /// Opened at the first page that needs it.
    store: OnceCell<Store>,
}

impl Archived {
    #[must_use]
    pub fn new(
        location: ArchiveLocation,
        endpoint_url: Option<String>,
        spool: Option<PathBuf>,
    ) -> Self {
        Self {
            location,
            endpoint_url,
            spool,
            store: OnceCell::new(),
        }
    }

    /// The body of record `index` of object `key`, which must be the
    /// delivery `row_key` (an object rewritten since would otherwise show
    /// another delivery's payload). `Err` says, for the page, why not.
    pub async fn body(&self, key: &str, index: u32, row_key: &str) -> Result<Body, String> {
        if !is_relative_key(key) {
            return Err(format!("{key:?} is not an archive key"));
        }
        let bytes = self.object(key).await?;
        let (key, row_key) = (key.to_owned(), row_key.to_owned());
        tokio::task::spawn_blocking(move || record(key, bytes, index, &row_key))
            .await
            .map_err(|e| e.to_string())?
    }

    /// The object's bytes, from the spool or the archive.
    async fn object(&self, key: &str) -> Result<Vec<u8>, String> {
        let local = match &self.location {
            ArchiveLocation::Local { dir, .. } => Some(dir),
            ArchiveLocation::S3 { .. } => None,
        };
        for dir in self.spool.iter().chain(local) {
            let path = dir.join(key);
            match tokio::fs::read(&path).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            }
        }
        if local.is_none() {
            let store = self
                .store
                .get_or_try_init(|| Store::open(&self.location, self.endpoint_url.as_deref()))
                .await
                .map_err(|e| e.to_string())?;
            for key in [key.to_owned(), format!("{key}.gz")] {
                match store.get(&key).await {
                    Ok(bytes) => return Ok(bytes),
                    Err(SourceError::NoSuchKey { .. }) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Err(format!(
            "{key} is not in the archive {} (is it the one `serve` wrote? an object that expired from it is gone)",
            self.location
        ))
    }
}

/// A key names a place inside the archive: no `..`, not absolute.
fn is_relative_key(key: &str) -> bool {
    Path::new(key)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
}

/// Decodes the object and takes the record, as `load` would have.
fn record(key: String, bytes: Vec<u8>, index: u32, row_key: &str) -> Result<Body, String> {
    let obj = decode_object(key, None, bytes, &DecodeOptions::default());
    let event = obj
        .events
        .iter()
        .find(|e| e.index == index)
        .ok_or_else(|| format!("{} has no record {index} now", obj.key))?;
    let view = RowView::new(&obj, event, false);
    if view.key != row_key {
        return Err(format!(
            "record {index} of {} is now another delivery ({})",
            obj.key, view.key
        ));
    }
    Ok(Body {
        payload: view.payload.to_owned(),
        raw_body: view.raw_body.map(<[u8]>::to_vec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_archive() {
        assert!(is_relative_key(
            "hooks/2026/01/15/10/s-1-2026-01-15-10-00-00-x"
        ));
        assert!(!is_relative_key("../etc/passwd"));
        assert!(!is_relative_key("hooks/../../x"));
        assert!(!is_relative_key("/etc/passwd"));
    }

    #[test]
    fn a_record_is_taken_by_index_and_held_to_its_key() {
        let line =
            |id: &str| format!(r#"{{"body":{{"zen":"{id}"}},"event":"ping","request_id":"{id}"}}"#);
        let bytes = format!("{}{}", line("a"), line("b")).into_bytes();
        let body = record("k".into(), bytes.clone(), 1, "b").unwrap();
        assert_eq!(body.payload, r#"{"zen":"b"}"#);
        assert_eq!(body.raw_body, None);
        let err = record("k".into(), bytes.clone(), 1, "a").unwrap_err();
        assert!(err.contains("another delivery"), "{err}");
        let err = record("k".into(), bytes, 5, "a").unwrap_err();
        assert!(err.contains("no record 5"), "{err}");
    }
}
