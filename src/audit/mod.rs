//! `audit`: GitHub's delivery log held against the archive. Attempts are
//! folded into one [`Delivery`] per guid (the `X-GitHub-Delivery` id, which
//! a redelivery keeps), the archive marks the ones it holds, and each gets a
//! [`Verdict`]. No I/O in this file: `commands/audit.rs` lists and reads
//! (and `server/reconcile.rs` in the background); `redeliver.rs` asks
//! GitHub; `state.rs` remembers what was asked across runs.

pub mod redeliver;
pub mod state;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound as _, Utc};
use serde::{Deserialize, Serialize};

use crate::decode::{DecodedObject, Event};
use crate::github::Attempt;
use crate::sink::{Sink, SinkError};

/// How far around the audited range the archive is read: Firehose names an
/// object for the time its buffer opened (at most 15 minutes before its
/// records), and GitHub's clock and the receiver's differ a little.
pub const ARCHIVE_MARGIN: Duration = Duration::hours(1);

/// What GitHub's log and the archive say of one delivery, together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Acknowledged (2xx) and archived.
    Ok,
    /// Archived, though GitHub recorded no 2xx (a slow acknowledgement): a
    /// redelivery would only be a duplicate.
    Late,
    /// No attempt got a 2xx and the archive lacks it: the receiver was down
    /// or refused it. Redeliverable (unless futile).
    Missing,
    /// An attempt got a 2xx and the archive lacks it: lost after it was
    /// acknowledged.
    Lost,
    /// Not archived, but its last attempt is newer than `--settle`: the
    /// archive may not show it yet, so it is not judged.
    Pending,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Ok,
        Verdict::Late,
        Verdict::Missing,
        Verdict::Lost,
        Verdict::Pending,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Late => "late",
            Verdict::Missing => "missing",
            Verdict::Lost => "lost",
            Verdict::Pending => "pending",
        }
    }
}

/// Every attempt GitHub lists for one delivery, folded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub guid: String,
    /// The hook it was listed under, as typed (`repo:OWNER/NAME:ID`).
    pub hook: Name,
    pub event: Name,
    pub action: Option<Name>,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The ids of its attempts listed, oldest first (a page seen twice
    /// counts each once).
    pub attempt_ids: Vec<u64>,
    /// Some attempt got a 2xx.
    pub acknowledged: bool,
    /// The latest attempt: its id (what a redelivery is asked on), and
    /// GitHub's account of it (status code 0: no HTTP answer at all).
    pub last_id: u64,
    pub last_status: Name,
    pub last_status_code: u16,
    /// The archive object that holds it, once the archive was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<Name>,
}

/// A string that many deliveries share (a hook, an event, an action,
/// GitHub's status words, an archive object), held once: 300,000
/// deliveries of a few dozen events cost one copy of each name.
pub type Name = Arc<str>;

/// The one copy of each [`Name`].
#[derive(Debug, Default)]
struct Names(HashSet<Name>);

impl Names {
    fn get(&mut self, s: &str) -> Name {
        if let Some(n) = self.0.get(s) {
            return n.clone();
        }
        let n: Name = s.into();
        self.0.insert(n.clone());
        n
    }
}

impl Delivery {
    fn new(hook: Name, a: &Attempt, names: &mut Names) -> Self {
        Self {
            guid: a.guid.clone(),
            hook,
            event: names.get(&a.event),
            action: a.action.as_deref().map(|x| names.get(x)),
            first_at: a.delivered_at,
            last_at: a.delivered_at,
            attempt_ids: vec![a.id],
            acknowledged: a.is_success(),
            last_id: a.id,
            last_status: names.get(&a.status),
            last_status_code: a.status_code,
            archived: None,
        }
    }

    /// Adds one more attempt of the same guid, in any order, once.
    fn add(&mut self, a: &Attempt, names: &mut Names) {
        if self.attempt_ids.contains(&a.id) {
            return;
        }
        self.attempt_ids.push(a.id);
        self.attempt_ids.sort_unstable();
        self.acknowledged |= a.is_success();
        self.first_at = self.first_at.min(a.delivered_at);
        if (a.delivered_at, a.id) >= (self.last_at, self.last_id) {
            self.last_at = a.delivered_at;
            self.last_id = a.id;
            self.last_status = names.get(&a.status);
            self.last_status_code = a.status_code;
        }
    }

    /// Folds in what an earlier pass knew of the same guid.
    fn merge(&mut self, other: Delivery) {
        for id in other.attempt_ids {
            if !self.attempt_ids.contains(&id) {
                self.attempt_ids.push(id);
            }
        }
        self.attempt_ids.sort_unstable();
        self.acknowledged |= other.acknowledged;
        self.first_at = self.first_at.min(other.first_at);
        if (other.last_at, other.last_id) > (self.last_at, self.last_id) {
            self.last_at = other.last_at;
            self.last_id = other.last_id;
            self.last_status = other.last_status;
            self.last_status_code = other.last_status_code;
        }
    }

    /// Attempts listed.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempt_ids.len() as u32
    }

    /// The verdict, given the time before which a last attempt is settled.
    #[must_use]
    pub fn verdict(&self, settled_before: DateTime<Utc>) -> Verdict {
        match (self.archived.is_some(), self.acknowledged) {
            (true, true) => Verdict::Ok,
            (true, false) => Verdict::Late,
            (false, _) if self.last_at >= settled_before => Verdict::Pending,
            (false, true) => Verdict::Lost,
            (false, false) => Verdict::Missing,
        }
    }

    /// Why a redelivery would be refused again, when the last attempt's
    /// answer says so: a 4xx other than 408 (timeout) and 429 (slow down).
    /// The receiver's verdict on these bytes will not change until its
    /// configuration does (a secret, a size limit, a URL).
    #[must_use]
    pub fn futile(&self) -> Option<String> {
        let code = self.last_status_code;
        if !(400..500).contains(&code) || code == 408 || code == 429 {
            return None;
        }
        Some(match code {
            401 | 403 => format!("refused with {code}: the signature did not verify; check the hook's secret against the receiver's"),
            413 => "refused with 413: larger than the receiver accepts; raise its body limit".to_owned(),
            404 | 405 => format!("refused with {code}: the hook's URL is not the receiver's webhook path"),
            _ => format!("refused with {code}: the receiver will refuse it again until its cause is fixed"),
        })
    }

    /// Why its attempts failed, in a few words, from GitHub's record.
    #[must_use]
    pub fn failure(&self) -> String {
        if self.last_status_code == 0 {
            format!("no answer ({})", self.last_status)
        } else {
            format!("{} ({})", self.last_status_code, self.last_status)
        }
    }
}

/// GitHub's log for the audited range, folded by guid.
#[derive(Debug, Default)]
pub struct Log {
    deliveries: HashMap<String, Delivery>,
    names: Names,
}

impl Log {
    /// Folds one listed attempt in.
    pub fn add(&mut self, hook: &str, a: &Attempt) {
        if let Some(d) = self.deliveries.get_mut(&a.guid) {
            d.add(a, &mut self.names);
        } else {
            let hook = self.names.get(hook);
            let d = Delivery::new(hook, a, &mut self.names);
            self.deliveries.insert(a.guid.clone(), d);
        }
    }

    /// Folds in a delivery an earlier pass judged (a background audit lists
    /// only what is new, and carries what is not settled).
    pub fn carry(&mut self, d: Delivery) {
        match self.deliveries.get_mut(&d.guid) {
            Some(known) => known.merge(d),
            None => {
                self.deliveries.insert(d.guid.clone(), d);
            }
        }
    }

    /// Keeps only deliveries first attempted in `[since, until)` (a delivery
    /// first sent later belongs to a later audit; a later attempt of an
    /// earlier delivery still counts).
    pub fn retain_first_within(&mut self, since: DateTime<Utc>, until: DateTime<Utc>) {
        self.deliveries
            .retain(|_, d| since <= d.first_at && d.first_at < until);
    }

    /// Marks every delivery `archived` says is archived, as found in `place`.
    pub fn mark_archived_where(&mut self, archived: impl Fn(&str) -> bool, place: &str) {
        let place = self.names.get(place);
        for d in self.deliveries.values_mut() {
            if d.archived.is_none() && archived(&d.guid) {
                d.archived = Some(place.clone());
            }
        }
    }

    /// The archive holds this delivery id, in `object`.
    pub fn mark_archived(&mut self, guid: &str, object: &str) {
        if let Some(d) = self.deliveries.get_mut(guid) {
            if d.archived.is_none() {
                d.archived = Some(self.names.get(object));
            }
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.deliveries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }

    /// The latest attempt listed, which bounds the archive's read.
    #[must_use]
    pub fn last_attempt(&self) -> Option<DateTime<Utc>> {
        self.deliveries.values().map(|d| d.last_at).max()
    }

    /// Every delivery with its verdict, oldest first.
    #[must_use]
    pub fn judge(self, settled_before: DateTime<Utc>) -> Judged {
        let mut all: Vec<(Verdict, Delivery)> = self
            .deliveries
            .into_values()
            .map(|d| (d.verdict(settled_before), d))
            .collect();
        all.sort_by(|a, b| (a.1.first_at, &a.1.guid).cmp(&(b.1.first_at, &b.1.guid)));
        Judged { all }
    }
}

/// The sink the archive is read into: marks each delivery of the log that
/// the archive holds, and counts records that cannot be matched at all.
#[derive(Debug)]
pub struct Matcher {
    pub log: Log,
    /// Records with no delivery id (cztack's raw shape keeps none).
    pub without_id: u64,
    pub records: u64,
}

impl Matcher {
    #[must_use]
    pub fn new(log: Log) -> Self {
        Self {
            log,
            without_id: 0,
            records: 0,
        }
    }
}

impl Sink for Matcher {
    fn accept(
        &mut self,
        object: &DecodedObject,
        event: &Event,
        _public: bool,
    ) -> Result<(), SinkError> {
        self.records += 1;
        match &event.delivery_id {
            Some(id) => self.log.mark_archived(id, &object.key),
            None => self.without_id += 1,
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// The verdicts of an audit.
#[derive(Debug)]
pub struct Judged {
    pub all: Vec<(Verdict, Delivery)>,
}

/// One line of the table: an hour (of the first attempt) and an event.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ok: u64,
    pub late: u64,
    pub missing: u64,
    /// Of `missing`: those a redelivery would not cure.
    pub futile: u64,
    pub lost: u64,
    pub pending: u64,
}

impl Counts {
    /// Every delivery counted is `ok`.
    #[must_use]
    pub fn all_ok(&self) -> bool {
        self.late + self.missing + self.lost + self.pending == 0
    }

    /// Adds another line's counts to these.
    pub fn merge(&mut self, o: &Counts) {
        self.ok += o.ok;
        self.late += o.late;
        self.missing += o.missing;
        self.futile += o.futile;
        self.lost += o.lost;
        self.pending += o.pending;
    }

    fn add(&mut self, v: Verdict, d: &Delivery) {
        match v {
            Verdict::Ok => self.ok += 1,
            Verdict::Late => self.late += 1,
            Verdict::Missing => {
                self.missing += 1;
                if d.futile().is_some() {
                    self.futile += 1;
                }
            }
            Verdict::Lost => self.lost += 1,
            Verdict::Pending => self.pending += 1,
        }
    }
}

impl Judged {
    /// Counts by verdict over everything.
    #[must_use]
    pub fn totals(&self) -> Counts {
        let mut c = Counts::default();
        for (v, d) in &self.all {
            c.add(*v, d);
        }
        c
    }

    /// Counts by hour of the first attempt (UTC) and event, in order.
    #[must_use]
    pub fn by_hour_and_event(&self) -> BTreeMap<(DateTime<Utc>, String), Counts> {
        let mut rows: BTreeMap<(DateTime<Utc>, String), Counts> = BTreeMap::new();
        for (v, d) in &self.all {
            let hour = d
                .first_at
                .duration_trunc(Duration::hours(1))
                .unwrap_or(d.first_at);
            rows.entry((hour, d.event.to_string()))
                .or_default()
                .add(*v, d);
        }
        rows
    }

    /// Deliveries with this verdict.
    pub fn with(&self, verdict: Verdict) -> impl Iterator<Item = &Delivery> {
        self.all
            .iter()
            .filter(move |(v, _)| *v == verdict)
            .map(|(_, d)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn attempt(id: u64, guid: &str, minute: i64, code: u16) -> Attempt {
        Attempt {
            id,
            guid: guid.into(),
            delivered_at: at(minute),
            redelivery: id > 100,
            duration: Some(0.1),
            status: match code {
                0 => "timed out".into(),
                200..=299 => "OK".into(),
                c => format!("Invalid HTTP Response: {c}"),
            },
            status_code: code,
            event: "push".into(),
            action: None,
            installation_id: None,
            repository_id: Some(1),
        }
    }

    fn judged(
        attempts: &[Attempt],
        archived: &[&str],
        settled_before: i64,
    ) -> Vec<(String, Verdict)> {
        let mut log = Log::default();
        for a in attempts {
            log.add("repo:o/r:1", a);
        }
        for g in archived {
            log.mark_archived(g, "2026/12/01/10/obj");
        }
        let mut v: Vec<_> = log
            .judge(at(settled_before))
            .all
            .into_iter()
            .map(|(v, d)| (d.guid, v))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn four_verdicts_and_pending() {
        let got = judged(
            &[
                attempt(1, "ok", 0, 200),
                attempt(2, "late", 1, 0),
                attempt(3, "missing", 2, 502),
                attempt(4, "lost", 3, 202),
                attempt(5, "pending", 50, 0),
                attempt(6, "archived-recently", 55, 0),
            ],
            &["ok", "late", "archived-recently"],
            45,
        );
        assert_eq!(
            got,
            [
                ("archived-recently".into(), Verdict::Late),
                ("late".into(), Verdict::Late),
                ("lost".into(), Verdict::Lost),
                ("missing".into(), Verdict::Missing),
                ("ok".into(), Verdict::Ok),
                ("pending".into(), Verdict::Pending),
            ]
        );
    }

    #[test]
    fn attempts_of_a_guid_fold_in_any_order() {
        // A failure, then a redelivery that succeeded: acknowledged, and the
        // last attempt is the redelivery, whichever way the pages came.
        for order in [[0, 1], [1, 0]] {
            let a = [attempt(7, "g", 0, 0), attempt(107, "g", 30, 200)];
            let mut log = Log::default();
            for i in order {
                log.add("app", &a[i]);
            }
            let (v, d) = &log.judge(at(60)).all[0];
            assert_eq!(*v, Verdict::Lost);
            assert_eq!((d.attempts(), d.last_id, d.first_at), (2, 107, at(0)));
            assert!(d.acknowledged);
        }
    }

    #[test]
    fn a_page_seen_twice_and_a_carried_delivery_count_each_attempt_once() {
        let mut earlier = Log::default();
        earlier.add("app", &attempt(1, "g", 0, 0));
        let carried = earlier.judge(at(60)).all.remove(0).1;
        let mut log = Log::default();
        log.add("app", &attempt(1, "g", 0, 0));
        log.add("app", &attempt(101, "g", 30, 200));
        log.add("app", &attempt(101, "g", 30, 200));
        log.carry(carried);
        let (v, d) = &log.judge(at(60)).all[0];
        assert_eq!(
            (*v, d.attempt_ids.as_slice(), d.last_id),
            (Verdict::Lost, &[1, 101][..], 101)
        );
    }

    #[test]
    fn a_redelivery_that_failed_again_leaves_it_missing() {
        let got = judged(
            &[attempt(1, "g", 0, 0), attempt(101, "g", 20, 503)],
            &[],
            60,
        );
        assert_eq!(got, [("g".into(), Verdict::Missing)]);
    }

    #[test]
    fn refusals_that_would_repeat_are_futile() {
        let mut log = Log::default();
        for (i, code) in [401, 413, 400, 408, 429, 500, 0].into_iter().enumerate() {
            log.add("app", &attempt(i as u64, &format!("g{code}"), 0, code));
        }
        let judged = log.judge(at(60));
        let futile: Vec<u16> = judged
            .with(Verdict::Missing)
            .filter(|d| d.futile().is_some())
            .map(|d| d.last_status_code)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(futile, [400, 401, 413]);
        assert_eq!(judged.totals().futile, 3);
        assert_eq!(judged.totals().missing, 7);
    }

    #[test]
    fn first_attempt_places_a_delivery_in_the_range() {
        let mut log = Log::default();
        log.add("app", &attempt(1, "before", 10, 0));
        log.add("app", &attempt(101, "before", 70, 0));
        log.add("app", &attempt(2, "after", 65, 0));
        log.retain_first_within(at(0), at(60));
        assert_eq!(log.len(), 1);
        assert_eq!(log.last_attempt(), Some(at(70)));
    }

    #[test]
    fn table_rows_by_hour_and_event() {
        let mut log = Log::default();
        log.add("app", &attempt(1, "a", 5, 200));
        log.add("app", &attempt(2, "b", 65, 0));
        log.mark_archived("a", "k");
        let rows = log.judge(at(120)).by_hour_and_event();
        let keys: Vec<_> = rows.keys().map(|(h, e)| (*h, e.as_str())).collect();
        assert_eq!(keys, [(at(0), "push"), (at(60), "push")]);
        assert_eq!(
            rows.values().map(|c| (c.ok, c.missing)).collect::<Vec<_>>(),
            [(1, 0), (0, 1)]
        );
    }
}
