//! What `audit --redeliver` asked GitHub for, kept across runs, so that a
//! delivery whose redelivery is in flight is never asked for twice: an hourly
//! audit must not pile a redelivery on one GitHub has not attempted yet.
//!
//! A request is in flight from when it was asked until GitHub's log shows a
//! newer attempt of that delivery than the one it was asked on (then that
//! attempt's outcome is the verdict: acknowledged, or failed again and
//! redeliverable again), or until [`IN_FLIGHT_FOR`] has passed without one.
//! Attempt ids, not clocks, tell "newer": ours and GitHub's may differ.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Delivery;

/// How long an asked redelivery that never shows in GitHub's log blocks
/// asking again. GitHub attempts a redelivery within seconds.
pub const IN_FLIGHT_FOR: Duration = Duration::hours(1);

/// Entries older than this are dropped: GitHub keeps deliveries 3 days, so
/// nothing older can be asked for again anyway.
const KEEP_FOR: Duration = Duration::days(8);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading the audit state {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit state {path} is not ghreplay's: {source}; move it away to start afresh")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing the audit state {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One redelivery asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    pub hook: String,
    pub at: DateTime<Utc>,
    /// The attempt the redelivery was asked on.
    pub attempt: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    version: u32,
    /// By guid.
    asked: BTreeMap<String, Asked>,
}

/// The state file, loaded.
#[derive(Debug)]
pub struct AuditState {
    path: PathBuf,
    stored: Stored,
}

impl AuditState {
    /// Loads `path`; a file that does not exist yet is an empty state.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let stored = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
                path: path.to_owned(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored {
                version: 1,
                ..Stored::default()
            },
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Ok(Self {
            path: path.to_owned(),
            stored,
        })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The redelivery asked for `d` that GitHub has not attempted yet.
    #[must_use]
    pub fn in_flight(&self, d: &Delivery, now: DateTime<Utc>) -> Option<&Asked> {
        self.stored
            .asked
            .get(&d.guid)
            .filter(|a| a.attempt == d.last_id && now - a.at < IN_FLIGHT_FOR)
    }

    /// Records a redelivery asked for `d` at `now`.
    pub fn asked(&mut self, d: &Delivery, now: DateTime<Utc>) {
        self.stored.asked.insert(
            d.guid.clone(),
            Asked {
                hook: d.hook.to_string(),
                at: now,
                attempt: d.last_id,
            },
        );
    }

    /// Forgets what no audit can act on any more, and saves atomically.
    pub fn save(&mut self, now: DateTime<Utc>) -> Result<(), StateError> {
        self.stored.asked.retain(|_, a| now - a.at < KEEP_FOR);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Write {
                path: self.path.clone(),
                source,
            })?;
        }
        crate::checkpoint::replace_json(&self.path, &self.stored).map_err(|source| {
            StateError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn delivery(last_at: DateTime<Utc>, last_id: u64) -> Delivery {
        Delivery {
            guid: "g".into(),
            hook: "app".into(),
            event: "push".into(),
            action: None,
            first_at: last_at,
            last_at,
            attempt_ids: vec![last_id],
            acknowledged: false,
            last_id,
            last_status: "timed out".into(),
            last_status_code: 0,
            archived: None,
        }
    }

    #[test]
    fn asked_is_in_flight_until_github_attempts_or_an_hour_passes_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let mut s = AuditState::load(&path).unwrap();
        let d = delivery(t0, 9);
        assert!(s.in_flight(&d, t0).is_none());
        s.asked(&d, t0 + Duration::minutes(5));
        s.save(t0 + Duration::minutes(5)).unwrap();

        let s = AuditState::load(&path).unwrap();
        let later = t0 + Duration::minutes(10);
        assert_eq!(s.in_flight(&d, later).map(|a| a.attempt), Some(9));
        // GitHub's log shows the redelivery's attempt: no longer in flight.
        assert!(s
            .in_flight(&delivery(t0 + Duration::minutes(5), 10), later)
            .is_none());
        // Never attempted, and an hour has passed: may be asked again.
        assert!(s.in_flight(&d, t0 + Duration::minutes(66)).is_none());
    }

    #[test]
    fn a_file_that_is_not_state_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "not json").unwrap();
        let e = AuditState::load(&path).unwrap_err().to_string();
        assert!(e.contains("move it away"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not json");
    }

    #[test]
    fn old_entries_are_pruned_on_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let mut s = AuditState::load(&path).unwrap();
        s.asked(&delivery(t0, 9), t0);
        s.save(t0 + Duration::days(9)).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("\"g\""));
    }
}
