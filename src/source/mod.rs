//! Listing and fetching archived objects, local or on S3. Knows key layout
//! and time ranges; knows nothing of what the bytes hold.
//!
//! Listing walks `<prefix>YYYY/MM/DD/HH/` with a delimiter and prunes every
//! level by the time range, so a narrow range never lists the whole bucket;
//! a subtree wholly inside the range is listed in one recursive pass
//! (1 request per 1,000 objects on S3), so a wide range costs few requests.
//!
//! The listing is a stream ([`list`]): pieces of the plan in key order, as
//! the requests answer, so the read path fetches the first objects while
//! the rest is still being listed. Subtrees are listed concurrently ahead of
//! the reader (each into a small bounded queue), pages of one recursive
//! listing as they come. On S3, where each level of the date tree costs a
//! round trip, the children of a node the range cuts through are listed as
//! soon as the calendar names them, alongside the delimiter listing of the
//! node, which stays the authority on what exists (and what to report as
//! skipped): a narrow range reaches its first hour in one round trip (two
//! when it is open at one end: the root's years are not the calendar's to
//! name), not five.

mod local;
mod s3;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Datelike as _, Duration, Months, NaiveDate, TimeZone, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};

use crate::archive::{parse_object_name, ObjectName};
use crate::model::ArchiveLocation;
use crate::model::TimeRange;
pub use local::{LocalStore, STATE_DIR};
pub use s3::{S3Store, DEFAULT_PART_SIZE};

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
    /// List requests in flight, across the whole walk.
    list_permits: Arc<tokio::sync::Semaphore>,
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
            list_permits: Arc::new(tokio::sync::Semaphore::new(LIST_CONCURRENCY)),
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

    /// One level under `prefix` (S3's delimiter listing), every page of it.
    async fn list_dir(&self, prefix: String) -> Result<Listing, SourceError> {
        self.pages(prefix, true)
            .try_fold(Listing::default(), |mut all, page| async move {
                all.prefixes.extend(page.prefixes);
                all.objects.extend(page.objects);
                Ok(all)
            })
            .await
    }

    /// Every object under `prefix`, in key order, a page at a time.
    fn list_pages(
        &self,
        prefix: String,
    ) -> BoxStream<'static, Result<Vec<ObjectMeta>, SourceError>> {
        self.pages(prefix, false)
            .map_ok(|page| page.objects)
            .boxed()
    }

    /// The listing under `prefix`, one level (`one_level`) or all of it, as
    /// pages in key order (one page locally), each requested when the last
    /// one is taken, under a list permit; an S3 page's round trip is timed.
    /// One list request, however many pages.
    fn pages(
        &self,
        prefix: String,
        one_level: bool,
    ) -> BoxStream<'static, Result<Listing, SourceError>> {
        self.list_requests.fetch_add(1, Ordering::Relaxed);
        let store = self.clone();
        match &self.backend {
            Backend::Local(l) => {
                let l = l.clone();
                futures::stream::once(async move {
                    let _permit = store.list_permits.acquire().await;
                    blocking(move || {
                        if one_level {
                            l.list_dir(&prefix)
                        } else {
                            Ok(Listing {
                                prefixes: Vec::new(),
                                objects: l.list_all(&prefix)?,
                            })
                        }
                    })
                    .await
                })
                .boxed()
            }
            Backend::S3(s) => {
                let s = s.clone();
                let delimiter = one_level.then_some("/");
                // `None`: done; `Some(None)`: the first page; else the token.
                futures::stream::try_unfold(Some(None), move |token: Option<Option<String>>| {
                    let (store, s, prefix) = (store.clone(), s.clone(), prefix.clone());
                    async move {
                        let Some(token) = token else {
                            return Ok(None);
                        };
                        let permit = store.list_permits.acquire().await;
                        let started = std::time::Instant::now();
                        let page = s.page(&prefix, delimiter, token).await;
                        store.timed(started);
                        drop(permit);
                        let page = page?;
                        Ok(Some((page.listing, page.next.map(Some))))
                    }
                })
                .boxed()
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

    /// A listed object's bytes: from S3, above `part_size` in ranged parts
    /// fetched at once.
    pub async fn fetch(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
    ) -> Result<Vec<u8>, SourceError> {
        match &self.backend {
            Backend::S3(s) => s.get_sized(key, size, part_size).await,
            Backend::Local(_) => self.get(key).await,
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

/// What a time range covers in the archive, or a piece of it as the
/// listing streams it.
#[derive(Debug, Default)]
pub struct Plan {
    /// In key order.
    pub objects: Vec<ArchiveObject>,
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// A listed plan as a stream of one piece (what `export` reads after
    /// planning its hours from the whole listing).
    #[must_use]
    pub fn into_listed(self) -> Listed {
        futures::stream::once(async { Ok(self) }).boxed()
    }

    fn skip(&mut self, key: String, reason: String) {
        self.skipped.push(Skipped { key, reason });
    }
}

/// The listing as it answers: pieces of the plan, their objects in key
/// order across pieces; it ends at the first error.
pub type Listed = BoxStream<'static, Result<Plan, SourceError>>;

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

/// How many list requests run at once, over the whole walk.
const LIST_CONCURRENCY: usize = 32;
/// Subtrees of a node listed ahead of the one being read.
const SUBTREES_AHEAD: usize = 16;
/// Pieces one subtree lists before the reader takes them (each up to a
/// page, 1,000 objects).
const PIECES_AHEAD: usize = 4;

/// Lists the objects whose records may fall in `range`, whole, in key order.
pub async fn plan(store: &Store, range: &TimeRange) -> Result<Plan, SourceError> {
    collect(list(store, range)).await
}

/// The whole plan a listing streams.
pub async fn collect(mut listed: Listed) -> Result<Plan, SourceError> {
    let mut plan = Plan::default();
    while let Some(mut piece) = listed.try_next().await? {
        plan.objects.append(&mut piece.objects);
        plan.skipped.append(&mut piece.skipped);
    }
    debug_assert!(
        plan.objects.windows(2).all(|w| w[0].key < w[1].key),
        "the listing streams objects in key order"
    );
    plan.skipped.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(plan)
}

/// Lists the objects whose records may fall in `range`, as a stream of
/// pieces in key order (see the module's doc).
#[must_use]
pub fn list(store: &Store, range: &TimeRange) -> Listed {
    let walk = Arc::new(Walk {
        store: store.clone(),
        listing: range.listing(),
        window: range.objects(),
        speculate: store.s3().is_some(),
    });
    let root = Node {
        prefix: store.root.clone(),
        parts: vec![],
    };
    ahead(walk.node(root, 0))
}

/// Drives `listed` in a task of its own, up to [`PIECES_AHEAD`] pieces
/// ahead of the reader; it stops when the reader drops the stream.
fn ahead(mut listed: Listed) -> Listed {
    let (tx, mut rx) = tokio::sync::mpsc::channel(PIECES_AHEAD);
    tokio::spawn(async move {
        while let Some(piece) = listed.next().await {
            let failed = piece.is_err();
            if tx.send(piece).await.is_err() || failed {
                break;
            }
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// What one listing walk knows.
struct Walk {
    store: Store,
    /// The range in whole hours, an hour wider each side: which prefixes
    /// to list.
    listing: TimeRange,
    /// Which objects to keep, by the time in their name.
    window: TimeRange,
    /// List the calendar's children of a cut node before the node's own
    /// listing answers (S3, where every level costs a round trip).
    speculate: bool,
}

impl Walk {
    /// The objects under `node`, a node at `level`, in key order.
    fn node(self: &Arc<Self>, node: Node, level: usize) -> Listed {
        let covered = level == LEVELS.len()
            || match node.interval() {
                Some((from, to)) => self.listing.covers(from, to),
                None => self.listing.since.is_none() && self.listing.until.is_none(),
            };
        if covered {
            self.whole(node, level)
        } else {
            self.descend(node, level)
        }
    }

    /// A node wholly inside the range: one recursive listing, a piece per
    /// page.
    fn whole(self: &Arc<Self>, node: Node, level: usize) -> Listed {
        let walk = self.clone();
        // A stray directory is named once, as a delimiter listing would.
        let mut bad_prefixes = std::collections::BTreeSet::new();
        self.store
            .list_pages(node.prefix.clone())
            .map_ok(move |page| {
                let mut piece = Plan::default();
                for o in page {
                    match parse_path(level, &o.key[node.prefix.len()..]) {
                        Ok(mut parts) => {
                            let mut all = node.parts.clone();
                            all.append(&mut parts);
                            walk.keep(&mut piece, o, all);
                        }
                        Err(Some((depth, end))) => {
                            let prefix = o.key[..node.prefix.len() + end].to_owned();
                            if bad_prefixes.insert(prefix.clone()) {
                                piece.skip(prefix, bad_prefix_reason(depth));
                            }
                        }
                        Err(None) => piece.skip(o.key, NOT_UNDER_HOUR.into()),
                    }
                }
                piece
            })
            .boxed()
    }

    /// A node the range cuts through: list one level with the delimiter,
    /// then the children that overlap the range, in order, several ahead.
    fn descend(self: &Arc<Self>, node: Node, level: usize) -> Listed {
        let walk = self.clone();
        futures::stream::once(async move {
            let mut early: std::collections::BTreeMap<String, Listed> = if walk.speculate {
                calendar(&node, level, &walk.listing)
                    .into_iter()
                    .map(|c| (c.prefix.clone(), ahead(walk.node(c, level + 1))))
                    .collect()
            } else {
                std::collections::BTreeMap::new()
            };
            let l = walk.store.list_dir(node.prefix.clone()).await?;
            let mut piece = Plan::default();
            let mut children = Vec::new();
            for o in l.objects {
                piece.skip(o.key, NOT_UNDER_HOUR.into());
            }
            for p in l.prefixes {
                let component = p[node.prefix.len()..].trim_end_matches('/');
                let Some(v) = date_part(level, component) else {
                    piece.skip(p, bad_prefix_reason(level));
                    continue;
                };
                let mut parts = node.parts.clone();
                parts.push(v);
                let child = Node { prefix: p, parts };
                match child.interval() {
                    Some((from, to)) if walk.listing.overlaps(from, to) => children.push(child),
                    Some(_) => {}
                    None => piece.skip(child.prefix, "not a valid date".into()),
                }
            }
            let rest = futures::stream::iter(children)
                .map(move |child| {
                    let listed = early
                        .remove(&child.prefix)
                        .unwrap_or_else(|| ahead(walk.node(child, level + 1)));
                    async move { listed }
                })
                .buffered(SUBTREES_AHEAD)
                .flatten();
            Ok::<_, SourceError>(futures::stream::once(async move { Ok(piece) }).chain(rest))
        })
        .try_flatten()
        .boxed()
    }

    /// Names a found object, and keeps it if its name is within the window.
    fn keep(&self, piece: &mut Plan, meta: ObjectMeta, parts: Vec<u32>) {
        let file = meta.key.rsplit('/').next().unwrap_or_default();
        let hour = Node {
            prefix: String::new(),
            parts,
        }
        .interval();
        match (parse_object_name(file), hour) {
            (Some(name), Some((hour, _))) => {
                if self.window.contains(name.written_at) {
                    piece.objects.push(ArchiveObject {
                        key: meta.key,
                        size: meta.size,
                        name,
                        hour,
                    });
                }
            }
            (None, _) => piece.skip(
                meta.key,
                "name does not follow Firehose naming (<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>)".into(),
            ),
            (_, None) => piece.skip(meta.key, "not a valid date".into()),
        }
    }
}

/// The children the calendar gives a node at `level` within `range`: the
/// root's years (when the range is bounded both ways, over at most
/// [`CALENDAR_YEARS`]), a year's months, a month's days, a day's hours.
/// Invalid dates (30 February) have no interval and are left out.
fn calendar(node: &Node, level: usize, range: &TimeRange) -> Vec<Node> {
    let values: Vec<u32> = match level {
        0 => match (range.since, range.until) {
            (Some(since), Some(until)) => {
                let (from, to) = (since.year(), (until - Duration::seconds(1)).year());
                if to - from >= CALENDAR_YEARS {
                    return Vec::new();
                }
                (from..=to).filter_map(|y| u32::try_from(y).ok()).collect()
            }
            _ => return Vec::new(),
        },
        1 => (1..=12).collect(),
        2 => (1..=31).collect(),
        3 => (0..=23).collect(),
        _ => return Vec::new(),
    };
    let width = LEVELS[level].len();
    values
        .into_iter()
        .map(|v| {
            let mut parts = node.parts.clone();
            parts.push(v);
            Node {
                prefix: format!("{}{v:0width$}/", node.prefix),
                parts,
            }
        })
        .filter(|c| c.interval().is_some_and(|(f, t)| range.overlaps(f, t)))
        .collect()
}

/// The most years of a bounded range whose year prefixes are listed before
/// the root's listing names them.
const CALENDAR_YEARS: i32 = 16;

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
    fn the_calendar_names_the_children_a_range_cuts_through() {
        let t = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        let range = TimeRange {
            since: t("2024-02-28T22:00:00Z"),
            until: t("2024-03-01T02:00:00Z"),
        };
        let node = |prefix: &str, parts: Vec<u32>| Node {
            prefix: prefix.to_owned(),
            parts,
        };
        let prefixes = |n: &Node, level| -> Vec<String> {
            calendar(n, level, &range)
                .into_iter()
                .map(|c| c.prefix)
                .collect()
        };
        // The root's years only for a range bounded both ways.
        assert_eq!(prefixes(&node("k/", vec![]), 0), ["k/2024/"]);
        let open = TimeRange {
            until: None,
            ..range
        };
        assert!(calendar(&node("", vec![]), 0, &open).is_empty());
        assert_eq!(
            prefixes(&node("2024/", vec![2024]), 1),
            ["2024/02/", "2024/03/"]
        );
        // A leap year's February ends on the 29th; no 30th or 31st.
        assert_eq!(
            prefixes(&node("2024/02/", vec![2024, 2]), 2),
            ["2024/02/28/", "2024/02/29/"]
        );
        assert_eq!(
            prefixes(&node("2024/02/28/", vec![2024, 2, 28]), 3),
            ["2024/02/28/22/", "2024/02/28/23/"]
        );
        assert_eq!(
            prefixes(&node("2024/03/01/", vec![2024, 3, 1]), 3),
            ["2024/03/01/00/", "2024/03/01/01/"]
        );
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
