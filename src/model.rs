//! The vocabulary every stage speaks: an archived delivery ([`Event`]) and
//! its bytes ([`Span`]), where it lies ([`Position`]), where the archive is
//! ([`ArchiveLocation`]) and which deliveries a run takes ([`TimeRange`],
//! [`Selection`], [`Dedupe`]). Depends on nothing else in the crate, so any
//! module may use it without a cycle.

use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, DurationRound as _, Utc};

/// A model value that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("--since {since} is not before --until {until}")]
    EmptyRange {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    #[error("--repo {0:?}: expected owner/name")]
    Repo(String),
    #[error("--archive {0:?}: an S3 archive is written s3://bucket or s3://bucket/prefix")]
    S3Url(String),
    #[error("--shard {0:?}: expected I/N with 0 <= I < N (I counts from 0, as JOB_COMPLETION_INDEX and AWS_BATCH_JOB_ARRAY_INDEX do)")]
    Shard(String),
}

/// One worker's share of a job split across `count` machines: the archive
/// hours whose number since the epoch is `index` modulo `count`, whatever
/// the range, so the shards of one job neither overlap nor leave a gap.
/// An hour is an object's key hour (`YYYY/MM/DD/HH`), as listing reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N`.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::Shard(s.to_owned());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    /// Whether the hour starting at (or containing) `hour` is this shard's.
    #[must_use]
    pub fn owns(&self, hour: DateTime<Utc>) -> bool {
        hour.timestamp()
            .div_euclid(3600)
            .rem_euclid(i64::from(self.count))
            == i64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which envelope a record came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Mozilla,
    Raw,
    Ghreplay,
}

impl Shape {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Mozilla => "mozilla",
            Shape::Raw => "raw",
            Shape::Ghreplay => "ghreplay",
        }
    }
}

/// Bytes of an event: a range of the object's decompressed data, or bytes
/// that had to be decoded (base64, form encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    Range(Range<usize>),
    Owned(Box<[u8]>),
}

impl Span {
    /// The bytes, given the decompressed data a range points into.
    #[must_use]
    pub fn of<'a>(&'a self, data: &'a [u8]) -> &'a [u8] {
        match self {
            Span::Range(r) => &data[r.clone()],
            Span::Owned(b) => b,
        }
    }
}

/// One archived delivery, with the facts every stage after decoding needs.
#[derive(Debug, Clone)]
pub struct Event {
    /// Position of the record in its object: index and byte offset in the
    /// decompressed data.
    pub index: u32,
    pub offset: u64,
    /// The whole record in the object's decompressed data.
    pub record: Range<usize>,
    pub shape: Shape,
    pub delivery_id: Option<String>,
    /// From the envelope, or inferred for raw payloads (`unknown` when it
    /// cannot be told).
    pub event: String,
    pub action: Option<String>,
    /// `repository.full_name`.
    pub repository: Option<String>,
    /// Whether `repository` was an object.
    pub repository_object: bool,
    pub private: Private,
    pub sender: Option<String>,
    /// Only the ghreplay shape records it.
    pub received_at: Option<DateTime<Utc>>,
    /// The GitHub payload, a JSON object, as it was archived.
    pub payload: Span,
    /// Whether the payload may hold raw line breaks (between tokens, as
    /// pretty-printed JSON has); when false it prints on one line as it is.
    pub payload_line_breaks: bool,
    /// Ghreplay shape: the body bytes exactly as GitHub sent them, and the
    /// kept headers as a JSON object, for re-verifying the signature.
    pub raw_body: Option<Span>,
    pub headers: Option<String>,
}

impl Event {
    /// `repository.private` when it is a boolean.
    #[must_use]
    pub fn private_flag(&self) -> Option<bool> {
        match self.private {
            Private::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// `repository.private` as found: the privacy filter fails closed on anything
/// but a boolean or absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Private {
    #[default]
    Absent,
    Bool(bool),
    /// Present but not a boolean (null, a string...).
    Other,
}

/// Where an event stands in the archive: its object and record index.
/// Ordered as the read path delivers events.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub object: String,
    pub index: u32,
}

/// A half-open time range `[since, until)`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Firehose's largest buffering interval: no object holds a record further
/// than this from the time in its name.
pub const MAX_BUFFER_INTERVAL: Duration = Duration::seconds(900);

impl TimeRange {
    pub fn new(
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Self, ModelError> {
        if let (Some(since), Some(until)) = (since, until) {
            if since >= until {
                return Err(ModelError::EmptyRange { since, until });
            }
        }
        Ok(Self { since, until })
    }

    #[must_use]
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    /// The hour prefixes to list: one hour either side of the range, since
    /// an object under hour H may hold records of hour H+1 (and, named after
    /// its newest record, of hour H-1).
    #[must_use]
    pub fn listing(&self) -> TimeRange {
        let hours = self.whole_hours();
        TimeRange {
            since: hours.since.map(|t| t - Duration::hours(1)),
            until: hours.until.map(|t| t + Duration::hours(1)),
        }
    }

    /// The range rounded out to whole hours: the object hours `export`
    /// builds partitions of.
    #[must_use]
    pub fn whole_hours(&self) -> TimeRange {
        let floor = |t: DateTime<Utc>| t.duration_trunc(Duration::hours(1)).unwrap_or(t);
        TimeRange {
            since: self.since.map(floor),
            until: self.until.map(|t| {
                let h = floor(t);
                if h == t {
                    h
                } else {
                    h + Duration::hours(1)
                }
            }),
        }
    }

    /// The objects to read: those named within one buffering interval of
    /// the range, which are all that can hold its records.
    #[must_use]
    pub fn objects(&self) -> TimeRange {
        TimeRange {
            since: self.since.map(|t| t - MAX_BUFFER_INTERVAL),
            until: self.until.map(|t| t + MAX_BUFFER_INTERVAL),
        }
    }

    /// Whether `[from, to)` overlaps the range.
    #[must_use]
    pub fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| to > s) && self.until.is_none_or(|u| from < u)
    }

    /// Whether `[from, to)` lies wholly inside the range.
    #[must_use]
    pub fn covers(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| from >= s) && self.until.is_none_or(|u| to <= u)
    }
}

/// Which events to keep.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub time: TimeRange,
    /// Event names; empty keeps all.
    pub events: Vec<String>,
    /// Actions; empty keeps all. An event without an action matches none.
    pub actions: Vec<String>,
    /// Repositories `owner/name`, lower case (GitHub names are case-insensitive).
    pub repos: Vec<String>,
    /// Keep only what the privacy filter passes.
    pub public_only: bool,
    /// Read only this shard's hours.
    pub shard: Option<Shard>,
}

impl Selection {
    /// Validates `--repo` values and lower-cases them.
    pub fn with_repos(mut self, repos: &[String]) -> Result<Self, ModelError> {
        for r in repos {
            match r.split_once('/') {
                Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => {
                    self.repos.push(r.to_ascii_lowercase());
                }
                _ => return Err(ModelError::Repo(r.clone())),
            }
        }
        Ok(self)
    }
}

/// How repeated delivery ids are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedupe {
    /// Keep every copy.
    Off,
    /// Drop a repeat seen within this much archive time of the first copy.
    Window(chrono::Duration),
    /// Drop every repeat, remembering every id (memory grows with the archive).
    All,
}

/// Where an archive is: a local directory laid out like S3, or S3 itself.
/// In both, `prefix` is put before `YYYY/` exactly as Firehose does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveLocation {
    Local { dir: PathBuf, prefix: String },
    S3 { bucket: String, prefix: String },
}

impl ArchiveLocation {
    /// `s3://bucket/prefix` or a local path. A local path that is not a
    /// directory names a key prefix inside its parent (`./archive/kinesis`
    /// reads `./archive/kinesis2026/...`), as the same string would on S3.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ModelError::S3Url(s.to_owned()));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        let path = Path::new(s);
        if path.is_dir() || s.ends_with('/') {
            return Ok(Self::Local {
                dir: path.to_owned(),
                prefix: String::new(),
            });
        }
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => Ok(Self::Local {
                dir: if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_owned()
                },
                prefix: name.to_string_lossy().into_owned(),
            }),
            _ => Ok(Self::Local {
                dir: path.to_owned(),
                prefix: String::new(),
            }),
        }
    }
}

impl std::fmt::Display for ArchiveLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { dir, prefix } => write!(f, "{}", dir.join(prefix).display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn shards_parse_as_typed_and_refuse_what_is_not_one() {
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { index: 2, count: 5 });
        assert_eq!(Shard::parse("0/1").unwrap().to_string(), "0/1");
        for bad in ["3/3", "1", "-1/3", "a/3", "1/0", "1/3/4", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_hour_belongs_to_exactly_one_shard_whatever_the_range() {
        let start = Utc.with_ymd_and_hms(1969, 12, 31, 20, 0, 0).unwrap();
        for count in [1, 2, 3, 7] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            for h in 0..200 {
                let hour = start + Duration::hours(h) + Duration::minutes(59);
                let owners = shards.iter().filter(|s| s.owns(hour)).count();
                assert_eq!(owners, 1, "{hour} with {count} shards");
            }
            // Consecutive hours go round the shards in turn.
            let first = shards.iter().position(|s| s.owns(start)).unwrap();
            let next = shards
                .iter()
                .position(|s| s.owns(start + Duration::hours(1)))
                .unwrap();
            assert_eq!(next, (first + 1) % count as usize);
        }
    }
}
