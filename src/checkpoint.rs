//! Durable progress of a republish run, so that a run stopped at any moment
//! (Ctrl-C, `kill -9`, broker gone) resumes with no gap.
//!
//! Events are delivered in archive order and confirmed in that order, so
//! progress is one position: every kept event at or before
//! `confirmed_through` was confirmed by the target. The file is replaced
//! atomically (write, fsync, rename, fsync the directory), so it is always
//! either the old or the new state, never a torn one.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Position;

/// What makes two runs the same run: everything that decides which events,
/// in which order, go where. A checkpoint resumes only its own run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunIdentity {
    pub archive: String,
    /// The target without credentials.
    pub target: String,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub events: Vec<String>,
    pub actions: Vec<String>,
    pub repos: Vec<String>,
    pub public_only: bool,
    pub dedupe: String,
    /// `I/N` for one shard of a job; absent for the whole range (and in
    /// checkpoints written before shards existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl RunIdentity {
    /// A run for tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        RunIdentity {
            archive: "a".into(),
            target: "amqp://h".into(),
            since: None,
            until: None,
            events: vec![],
            actions: vec![],
            repos: vec![],
            public_only: true,
            dedupe: "48h".into(),
            shard: None,
        }
    }

    /// The fields that differ from `other`, for an error message.
    #[must_use]
    pub fn differences(&self, other: &RunIdentity) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(self).unwrap_or_default(),
            serde_json::to_value(other).unwrap_or_default(),
        );
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            return vec![];
        };
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}: checkpoint has {v}, this run has {}", b[k]))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version.
    pub ghreplay_checkpoint: u32,
    pub run: RunIdentity,
    /// Every kept event up to here is confirmed; `None`: none yet.
    pub confirmed_through: Option<Position>,
    /// Events confirmed over all runs of this checkpoint.
    pub confirmed: u64,
    /// At most this many events past `confirmed_through` may already have
    /// been delivered when a run was killed: they are sent again.
    pub unconfirmed_bound: u64,
    pub complete: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {0} already exists: pass --resume to continue that run, or remove the file to start over")]
    Exists(PathBuf),
    #[error("no checkpoint at {0} to resume")]
    Missing(PathBuf),
    #[error("checkpoint {path} is for a different run ({}); resume with the same archive, range, selection and target, or use another --checkpoint", .differences.join("; "))]
    OtherRun {
        path: PathBuf,
        differences: Vec<String>,
    },
    #[error("checkpoint {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("writing checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// A checkpoint and the file it lives in.
#[derive(Debug)]
pub struct CheckpointFile {
    path: PathBuf,
    pub state: Checkpoint,
}

impl CheckpointFile {
    /// Starts a new run's checkpoint; refuses to overwrite one.
    pub fn create(path: &Path, run: RunIdentity, bound: u64) -> Result<Self, CheckpointError> {
        if path.exists() {
            return Err(CheckpointError::Exists(path.to_owned()));
        }
        let mut file = Self {
            path: path.to_owned(),
            state: Checkpoint {
                ghreplay_checkpoint: 1,
                run,
                confirmed_through: None,
                confirmed: 0,
                unconfirmed_bound: bound,
                complete: false,
                updated_at: Utc::now(),
            },
        };
        file.save()?;
        Ok(file)
    }

    /// Reads a checkpoint without checking which run it is for.
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CheckpointError::Missing(path.to_owned()))
            }
            Err(e) => {
                return Err(CheckpointError::Unreadable {
                    path: path.to_owned(),
                    message: e.to_string(),
                })
            }
        };
        serde_json::from_slice(&text).map_err(|e| CheckpointError::Unreadable {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Opens an existing checkpoint to resume `run`.
    pub fn resume(path: &Path, run: &RunIdentity) -> Result<Self, CheckpointError> {
        let state = Self::load(path)?;
        if state.run != *run {
            return Err(CheckpointError::OtherRun {
                path: path.to_owned(),
                differences: state.run.differences(run),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            state,
        })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file atomically and durably.
    pub fn save(&mut self) -> Result<(), CheckpointError> {
        self.state.updated_at = Utc::now();
        let err = |source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        };
        replace_json(&self.path, &self.state).map_err(err)
    }
}

/// Writes `value` as pretty JSON and a newline through [`replace_file`]:
/// every state file ghreplay keeps (checkpoints, the audit's asks, the
/// reconcile state).
pub fn replace_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    replace_file(path, &text)
}

/// Replaces `path` with `bytes` atomically and durably: a temporary file
/// beside it, fsync'd, renamed over it, and the directory fsync'd. A crash
/// leaves the old file or the new one, never a mix.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunIdentity {
        RunIdentity::for_tests()
    }

    #[test]
    fn create_save_resume_round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let mut cp = CheckpointFile::create(&path, run(), 100).unwrap();
        cp.state.confirmed_through = Some(Position {
            object: "k".into(),
            index: 3,
        });
        cp.save().unwrap();
        assert!(matches!(
            CheckpointFile::create(&path, run(), 100),
            Err(CheckpointError::Exists(_))
        ));

        let back = CheckpointFile::resume(&path, &run()).unwrap();
        assert_eq!(back.state.confirmed_through, cp.state.confirmed_through);

        let other = RunIdentity {
            public_only: false,
            ..run()
        };
        let e = CheckpointFile::resume(&path, &other)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("public_only: checkpoint has true, this run has false"),
            "{e}"
        );
        assert!(matches!(
            CheckpointFile::resume(&dir.path().join("none"), &run()),
            Err(CheckpointError::Missing(_))
        ));
    }

    #[test]
    fn positions_order_as_the_archive_is_read() {
        let p = |o: &str, i| Position {
            object: o.into(),
            index: i,
        };
        assert!(p("2026/01/01/00/a", 9) < p("2026/01/01/00/b", 0));
        assert!(p("2026/01/01/00/a", 2) < p("2026/01/01/00/a", 10));
    }
}
