//! Listing and fetching archived objects, local or on S3. Knows key layout
//! and time ranges; knows nothing of what the bytes hold.
//!
//! Listing walks `<prefix>YYYY/MM/DD/HH/` with a delimiter and prunes every
//! level by the time range, so a narrow range never lists the whole bucket;
//! a subtree wholly inside the range is listed in one recursive pass
//! (1 request per 1,000 objects on S3), so a wide range costs few requests.

mod local;
mod s3;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Months, NaiveDate, TimeZone, Utc};
use futures::{StreamExt as _, TryStreamExt as _};

use crate::archive::{parse_object_name, ObjectName};
use crate::model::ArchiveLocation;
use crate::model::TimeRange;
pub use local::{LocalStore, STATE_DIR};
pub use s3::S3Store;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("no archive at {0}: check --archive (a directory, or s3://bucket/prefix)")]
    NoArchive(String),
    #[error("cannot reach S3 at {endpoint}: {message}. Check --endpoint-url, the network and AWS_REGION")]
    Unreachable { endpoint: String, message: String },
    #[error("{what}: {message}")]
    S3 { what: String, message: String },
    /// The key is not there (S3's `NoSuchKey`).
    #[error("{what}: {message}")]
    NoSuchKey { what: String, message: String },
    /// May pass: a transfer that broke off part way, a garbled answer,
    /// throttling that outlasted the SDK's own retries. Retried with the
    /// project's [`crate::retry::RetryPolicy`], then reported.
    #[error("{what}: {message}")]
    Transient { what: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl SourceError {
    /// Whether trying again may succeed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Transient { .. })
    }
}

/// One listed object (also what `export`'s manifests record a partition
/// was built from).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

/// One level of a delimiter listing.
#[derive(Debug, Default)]
pub struct Listing {
    pub prefixes: Vec<String>,
    pub objects: Vec<ObjectMeta>,
}

impl Listing {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.objects.is_empty()
    }
}

/// Where objects come from.
#[derive(Debug, Clone)]
pub enum Backend {
    Local(LocalStore),
    S3(S3Store),
}

/// `--read-memory`'s default: 256 MiB of fetched objects waiting to be
/// decoded (a thousand of Firehose's usual quarter-megabyte objects).
pub const DEFAULT_READ_MEMORY: u64 = 256 << 20;

/// An archive: a backend, the key prefix Firehose writes under, a count
/// of list requests (what a wide or narrow range costs), and the quickest
/// of them (the round trip to S3, which sets how many fetches to keep in
/// flight).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    root: String,
    list_requests: Arc<AtomicU64>,
    /// Nanoseconds; `u64::MAX` until an S3 listing has answered.
    quickest_list: Arc<AtomicU64>,
}

impl Store {
    pub async fn open(
        location: &ArchiveLocation,
        endpoint_url: Option<&str>,
    ) -> Result<Self, SourceError> {
        let (backend, root) = match location {
            ArchiveLocation::Local { dir, prefix } => {
                let store = LocalStore::new(dir.clone())?;
                // A path that is not a directory names a key prefix in its
                // parent (`./archive/kinesis` for `kinesis2026/...`); if
                // nothing there starts with it, it is a typo, not an empty
                // range. (A prefix ending in `/` is a folder that may
                // rightly be empty: a new spool.)
                if !prefix.is_empty()
                    && !prefix.ends_with('/')
                    && store.list_dir(prefix)?.is_empty()
                {
                    return Err(SourceError::NoArchive(location.to_string()));
                }
                (Backend::Local(store), prefix.clone())
            }
            ArchiveLocation::S3 { bucket, prefix } => (
                Backend::S3(S3Store::connect(bucket.clone(), endpoint_url).await),
                prefix.clone(),
            ),
        };
        Ok(Self {
            backend,
            root,
            list_requests: Arc::default(),
            quickest_list: Arc::new(AtomicU64::new(u64::MAX)),
        })
    }

    /// The S3 backend, when the archive is on S3.
    #[must_use]
    pub fn s3(&self) -> Option<&S3Store> {
        match &self.backend {
            Backend::S3(s) => Some(s),
            Backend::Local(_) => None,
        }
    }

    /// List requests made so far.
    #[must_use]
    pub fn list_requests(&self) -> u64 {
        self.list_requests.load(Ordering::Relaxed)
    }

    /// The round trip to S3, as the quickest listing measured it; `None`
    /// for a local archive or before any listing.
    #[must_use]
    pub fn round_trip(&self) -> Option<std::time::Duration> {
        match self.quickest_list.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => Some(std::time::Duration::from_nanos(ns)),
        }
    }

    fn timed(&self, started: std::time::Instant) {
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.quickest_list.fetch_min(ns, Ordering::Relaxed);
    }

    async fn list_dir(&self, prefix: String) -> Result<Listing, SourceError> {
        self.list_requests.fetch_add(1, Ordering::Relaxed);
        match &self.backend {
            Backend::Local(l) => {
                let l = l.clone();
                blocking(move || l.list_dir(&prefix)).await
            }
            Backend::S3(s) => {
                let started = std::time::Instant::now();
                let listing = s.list_dir(&prefix).await;
                self.timed(started);
                listing
            }
        }
    }

    async fn list_all(&self, prefix: String) -> Result<Vec<ObjectMeta>, SourceError> {
        self.list_requests.fetch_add(1, Ordering::Relaxed);
        match &self.backend {
            Backend::Local(l) => {
                let l = l.clone();
                blocking(move || l.list_all(&prefix)).await
            }
            Backend::S3(s) => {
                let started = std::time::Instant::now();
                let listing = s.list_all(&prefix).await;
                self.timed(started);
                listing
            }
        }
    }

    /// The object's bytes as stored.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        match &self.backend {
            Backend::Local(l) => {
                let (l, key) = (l.clone(), key.to_owned());
                blocking(move || l.get(&key)).await
            }
            Backend::S3(s) => s.get(key).await,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(SourceError::Io {
            path: String::new(),
            message: e.to_string(),
        })
    })
}

/// An object of the archive, named as Firehose names them.
#[derive(Debug, Clone)]
pub struct ArchiveObject {
    pub key: String,
    pub size: u64,
    pub name: ObjectName,
    /// The hour of the prefix it is under.
    pub hour: DateTime<Utc>,
}

/// A key or prefix passed over, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub key: String,
    pub reason: String,
}

/// What a time range covers in the archive.
#[derive(Debug, Default)]
pub struct Plan {
    /// In key order.
    pub objects: Vec<ArchiveObject>,
    pub skipped: Vec<Skipped>,
}

/// A node of the `YYYY/MM/DD/HH/` tree: its key prefix and date parts.
#[derive(Debug, Clone)]
struct Node {
    prefix: String,
    parts: Vec<u32>,
}

const LEVELS: [&str; 4] = ["YYYY", "MM", "DD", "HH"];

impl Node {
    /// The time interval the node spans; `None` for the root (all time).
    fn interval(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let p = &self.parts;
        let y = i32::try_from(*p.first()?).ok()?;
        let date = NaiveDate::from_ymd_opt(y, *p.get(1).unwrap_or(&1), *p.get(2).unwrap_or(&1))?;
        let start = Utc.from_utc_datetime(&date.and_hms_opt(*p.get(3).unwrap_or(&0), 0, 0)?);
        let end = match p.len() {
            1 => start.checked_add_months(Months::new(12))?,
            2 => start.checked_add_months(Months::new(1))?,
            3 => start + Duration::days(1),
            _ => start + Duration::hours(1),
        };
        Some((start, end))
    }
}

/// Parses one path component as the date part of `level`, checking ranges.
fn date_part(level: usize, s: &str) -> Option<u32> {
    let width = LEVELS[level].len();
    if s.len() != width || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = s.parse().ok()?;
    let ok = match level {
        0 => v >= 1970,
        1 => (1..=12).contains(&v),
        2 => (1..=31).contains(&v),
        _ => v <= 23,
    };
    ok.then_some(v)
}

/// How many list requests run at once.
const LIST_CONCURRENCY: usize = 16;

/// Lists the objects whose records may fall in `range`, in key order.
pub async fn plan(store: &Store, range: &TimeRange) -> Result<Plan, SourceError> {
    let mut walk = Walk {
        store,
        listing: range.listing(),
        plan: Plan::default(),
        found: Vec::new(),
    };
    let mut frontier = vec![Node {
        prefix: store.root.clone(),
        parts: vec![],
    }];
    for level in 0..=LEVELS.len() {
        // Hours are always listed whole: `listing` is in whole hours.
        let (covered, partial): (Vec<Node>, Vec<Node>) =
            frontier.into_iter().partition(|n| match n.interval() {
                _ if level == LEVELS.len() => true,
                Some((from, to)) => walk.listing.covers(from, to),
                None => walk.listing.since.is_none() && walk.listing.until.is_none(),
            });
        walk.list_whole(level, covered).await?;
        if level == LEVELS.len() {
            break;
        }
        frontier = walk.descend(level, partial).await?;
    }
    Ok(walk.finish(&range.objects()))
}

/// The state of one listing walk.
struct Walk<'a> {
    store: &'a Store,
    listing: TimeRange,
    plan: Plan,
    /// Objects under a full date path, with its parts.
    found: Vec<(ObjectMeta, Vec<u32>)>,
}

impl Walk<'_> {
    /// Nodes wholly inside the range: one recursive listing each.
    async fn list_whole(&mut self, level: usize, nodes: Vec<Node>) -> Result<(), SourceError> {
        let store = self.store;
        let listed: Vec<_> = futures::stream::iter(nodes)
            .map(|n| async move {
                let objects = store.list_all(n.prefix.clone()).await?;
                Ok::<_, SourceError>((n, objects))
            })
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        let mut bad_prefixes = std::collections::BTreeSet::new();
        for (node, objects) in listed {
            for o in objects {
                match parse_path(level, &o.key[node.prefix.len()..]) {
                    Ok(mut parts) => {
                        let mut all = node.parts.clone();
                        all.append(&mut parts);
                        self.found.push((o, all));
                    }
                    // A stray directory is named once, as a delimiter listing would.
                    Err(Some((depth, end))) => {
                        let prefix = o.key[..node.prefix.len() + end].to_owned();
                        if bad_prefixes.insert(prefix.clone()) {
                            self.skip(prefix, bad_prefix_reason(depth));
                        }
                    }
                    Err(None) => self.skip(o.key, NOT_UNDER_HOUR.into()),
                }
            }
        }
        Ok(())
    }

    /// Nodes partly inside the range: list one level with the delimiter and
    /// keep the children that overlap the range.
    async fn descend(&mut self, level: usize, nodes: Vec<Node>) -> Result<Vec<Node>, SourceError> {
        let store = self.store;
        let listed: Vec<_> = futures::stream::iter(nodes)
            .map(|n| async move {
                let l = store.list_dir(n.prefix.clone()).await?;
                Ok::<_, SourceError>((n, l))
            })
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        let mut children = Vec::new();
        for (node, l) in listed {
            for o in l.objects {
                self.skip(o.key, NOT_UNDER_HOUR.into());
            }
            for p in l.prefixes {
                let component = p[node.prefix.len()..].trim_end_matches('/');
                let Some(v) = date_part(level, component) else {
                    self.skip(p, bad_prefix_reason(level));
                    continue;
                };
                let mut parts = node.parts.clone();
                parts.push(v);
                let child = Node { prefix: p, parts };
                match child.interval() {
                    Some((from, to)) if self.listing.overlaps(from, to) => children.push(child),
                    Some(_) => {}
                    None => self.skip(child.prefix, "not a valid date".into()),
                }
            }
        }
        Ok(children)
    }

    fn skip(&mut self, key: String, reason: String) {
        self.plan.skipped.push(Skipped { key, reason });
    }

    /// Names the objects found, keeps those named within `window`.
    fn finish(mut self, window: &TimeRange) -> Plan {
        for (meta, parts) in std::mem::take(&mut self.found) {
            let file = meta.key.rsplit('/').next().unwrap_or_default();
            let hour = Node {
                prefix: String::new(),
                parts,
            }
            .interval();
            match (parse_object_name(file), hour) {
                (Some(name), Some((hour, _))) => {
                    if window.contains(name.written_at) {
                        self.plan.objects.push(ArchiveObject {
                            key: meta.key,
                            size: meta.size,
                            name,
                            hour,
                        });
                    }
                }
                (None, _) => self.skip(
                    meta.key,
                    "name does not follow Firehose naming (<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>)".into(),
                ),
                (_, None) => self.skip(meta.key, "not a valid date".into()),
            }
        }
        self.plan.objects.sort_by(|a, b| a.key.cmp(&b.key));
        self.plan.skipped.sort_by(|a, b| a.key.cmp(&b.key));
        self.plan
    }
}

const NOT_UNDER_HOUR: &str = "not under a YYYY/MM/DD/HH/ prefix";

fn bad_prefix_reason(level: usize) -> String {
    format!(
        "not a {}/ prefix, so not read{}",
        LEVELS[level],
        if level == 0 {
            "; if the archive is below it, name it in --archive"
        } else {
            ""
        }
    )
}

/// Parses `rest` (the key below a node at `level`) as the remaining date
/// parts and a file name: `DD/HH/name` below a month node, say.
///
/// On failure, where the path has a directory that is not a date part:
/// its level and the end of it (with its `/`) in `rest`; `None` when the
/// key is a file where a date directory should be.
fn parse_path(level: usize, rest: &str) -> Result<Vec<u32>, Option<(usize, usize)>> {
    let mut parts = Vec::new();
    let mut at = 0;
    for l in level..LEVELS.len() {
        let Some(slash) = rest[at..].find('/') else {
            return Err(None);
        };
        let component = &rest[at..at + slash];
        at += slash + 1;
        match date_part(l, component) {
            Some(v) => parts.push(v),
            None => return Err(Some((l, at))),
        }
    }
    let file = &rest[at..];
    if file.is_empty() || file.contains('/') {
        return Err(None);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_a_node_must_have_the_remaining_date_levels() {
        assert_eq!(parse_path(0, "2026/01/15/10/f"), Ok(vec![2026, 1, 15, 10]));
        assert_eq!(parse_path(2, "15/10/f"), Ok(vec![15, 10]));
        assert_eq!(parse_path(4, "f"), Ok(vec![]));
        assert_eq!(parse_path(4, "sub/f"), Err(None));
        assert_eq!(parse_path(0, "2026/13/15/10/f"), Err(Some((1, 8))));
        assert_eq!(parse_path(0, "kinesis/2026/01/15/10/f"), Err(Some((0, 8))));
        assert_eq!(parse_path(0, "notes.txt"), Err(None));
        assert_eq!(parse_path(2, "15/10/"), Err(None));
    }

    #[test]
    fn node_intervals_follow_the_calendar() {
        let n = Node {
            prefix: String::new(),
            parts: vec![2024, 2],
        };
        let (from, to) = n.interval().unwrap();
        assert_eq!(to - from, Duration::days(29));
        let bad = Node {
            prefix: String::new(),
            parts: vec![2026, 2, 30],
        };
        assert!(bad.interval().is_none());
    }
}
