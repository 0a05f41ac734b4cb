//! `--dry-run`: counts what would be sent, by event and by repository, and
//! sends nothing.

use std::collections::BTreeMap;

use super::{Sink, SinkError};
use crate::decode::{DecodedObject, Event};

#[derive(Debug, Default, serde::Serialize)]
pub struct CountSink {
    pub total: u64,
    pub private: u64,
    pub by_event: BTreeMap<String, u64>,
    pub by_repository: BTreeMap<String, u64>,
}

impl Sink for CountSink {
    fn accept(&mut self, _obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        self.total += 1;
        self.private += u64::from(!public);
        *self.by_event.entry(e.event.clone()).or_default() += 1;
        let repo = e.repository.clone().unwrap_or_else(|| "(none)".into());
        *self.by_repository.entry(repo).or_default() += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
