//! Deciding which decoded events go on, and counting why the rest did not.
//!
//! Two parts: [`classify`] is pure and per object, so it runs beside
//! decoding on all cores; [`Filter`] sees objects in archive order and holds
//! the only cross-object state, the delivery ids already seen.
//!
//! The order of the checks matters: time range first (a duplicate outside the
//! range must not hide its twin inside it), then duplicates, then selection
//! and privacy (duplicates share their payload, so these agree on both).

pub mod privacy;

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};

use crate::archive::CompactId;
use crate::decode::{DecodedObject, Event};
use crate::model::{Dedupe, Selection};

/// What the pure checks say of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub in_range: bool,
    pub selected: bool,
    pub public: bool,
}

/// The time an event is placed at: its own receive time where the record
/// keeps one, else its object's (Firehose names an object near its records).
#[must_use]
pub fn event_time(event: &Event, object_time: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    event.received_at.or(object_time)
}

/// The pure checks for every event of an object.
#[must_use]
pub fn classify(obj: &DecodedObject, sel: &Selection) -> Vec<Verdict> {
    obj.events
        .iter()
        .map(|e| Verdict {
            in_range: event_time(e, obj.object_time).is_none_or(|t| sel.time.contains(t)),
            selected: selected(e, sel),
            public: privacy::event_is_public(e),
        })
        .collect()
}

fn selected(e: &Event, sel: &Selection) -> bool {
    (sel.events.is_empty() || sel.events.contains(&e.event))
        && (sel.actions.is_empty() || e.action.as_ref().is_some_and(|a| sel.actions.contains(a)))
        && (sel.repos.is_empty()
            || e.repository
                .as_ref()
                .is_some_and(|r| sel.repos.iter().any(|x| x.eq_ignore_ascii_case(r))))
}

/// Why an event was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    TimeRange,
    Duplicate,
    Selection,
    Private,
}

/// Counts of what the filter saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FilterCounts {
    pub read: u64,
    pub kept: u64,
    pub outside_range: u64,
    pub duplicate: u64,
    pub selection: u64,
    pub private: u64,
    /// Kept events that had no delivery id, so could not be deduplicated.
    pub without_delivery_id: u64,
}

/// Delivery ids seen within the dedupe window of archive time.
///
/// Firehose redelivers within its retry period (hours, at most a day), so ids
/// older than the window are forgotten, hour by hour: memory follows the event
/// rate, not the archive's size. Without a window every id is kept.
#[derive(Debug, Default)]
struct Seen {
    window_hours: Option<i64>,
    set: HashSet<CompactId>,
    /// Ids by the hour they were first seen, oldest first (windowed only).
    generations: VecDeque<(i64, Vec<CompactId>)>,
}

impl Seen {
    /// True the first time an id is seen within the window; `hour` is the
    /// event's time in hours since the epoch.
    fn insert(&mut self, id: &str, hour: Option<i64>) -> bool {
        let id = CompactId::new(id);
        let (Some(window), Some(hour)) = (self.window_hours, hour) else {
            return self.set.insert(id);
        };
        while let Some((oldest, _)) = self.generations.front() {
            if *oldest >= hour - window {
                break;
            }
            if let Some((_, ids)) = self.generations.pop_front() {
                for old in ids {
                    self.set.remove(&old);
                }
            }
        }
        if !self.set.insert(id.clone()) {
            return false;
        }
        match self.generations.back_mut() {
            Some((newest, ids)) if *newest >= hour => ids.push(id),
            _ => self.generations.push_back((hour, vec![id])),
        }
        true
    }
}

/// The sequential part of filtering.
#[derive(Debug)]
pub struct Filter {
    public_only: bool,
    seen: Option<Seen>,
    pub counts: FilterCounts,
}

impl Filter {
    #[must_use]
    pub fn new(public_only: bool, dedupe: Dedupe) -> Self {
        Self {
            public_only,
            seen: match dedupe {
                Dedupe::Off => None,
                Dedupe::All => Some(Seen::default()),
                Dedupe::Window(w) => Some(Seen {
                    window_hours: Some(w.num_hours().max(1)),
                    ..Seen::default()
                }),
            },
            counts: FilterCounts::default(),
        }
    }

    /// Decides one event, in archive order, and counts the decision; `time`
    /// is the event's time (see [`event_time`]).
    pub fn decide(
        &mut self,
        e: &Event,
        v: Verdict,
        time: Option<DateTime<Utc>>,
    ) -> Result<(), DropReason> {
        self.counts.read += 1;
        let reason = if !v.in_range {
            Some(DropReason::TimeRange)
        } else if let (Some(seen), Some(id)) = (self.seen.as_mut(), e.delivery_id.as_deref()) {
            let hour = time.map(|t| t.timestamp().div_euclid(3600));
            (!seen.insert(id, hour)).then_some(DropReason::Duplicate)
        } else {
            None
        }
        .or(if !v.selected {
            Some(DropReason::Selection)
        } else if self.public_only && !v.public {
            Some(DropReason::Private)
        } else {
            None
        });
        match reason {
            None => {
                self.counts.kept += 1;
                if e.delivery_id.is_none() {
                    self.counts.without_delivery_id += 1;
                }
                Ok(())
            }
            Some(r) => {
                let c = &mut self.counts;
                *match r {
                    DropReason::TimeRange => &mut c.outside_range,
                    DropReason::Duplicate => &mut c.duplicate,
                    DropReason::Selection => &mut c.selection,
                    DropReason::Private => &mut c.private,
                } += 1;
                Err(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Shape;
    use crate::model::{Private, Span};

    fn event(id: Option<&str>, name: &str, repo: &str) -> Event {
        Event {
            index: 0,
            offset: 0,
            record: 0..0,
            shape: Shape::Mozilla,
            delivery_id: id.map(str::to_owned),
            event: name.into(),
            action: Some("opened".into()),
            repository: Some(repo.into()),
            repository_object: true,
            private: Private::Bool(false),
            sender: None,
            received_at: None,
            payload: Span::Range(0..0),
            payload_line_breaks: false,
            raw_body: None,
            headers: None,
        }
    }

    const ALL: Verdict = Verdict {
        in_range: true,
        selected: true,
        public: true,
    };

    #[test]
    fn duplicates_are_dropped_and_counted_once_each() {
        let mut f = Filter::new(false, Dedupe::All);
        let id = "3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b";
        assert_eq!(f.decide(&event(Some(id), "push", "o/r"), ALL, None), Ok(()));
        assert_eq!(
            f.decide(&event(Some(id), "push", "o/r"), ALL, None),
            Err(DropReason::Duplicate)
        );
        assert_eq!(
            f.decide(&event(Some("x"), "push", "o/r"), ALL, None),
            Ok(())
        );
        assert_eq!(
            f.decide(&event(Some("x"), "push", "o/r"), ALL, None),
            Err(DropReason::Duplicate)
        );
        assert_eq!(f.decide(&event(None, "push", "o/r"), ALL, None), Ok(()));
        assert_eq!(f.decide(&event(None, "push", "o/r"), ALL, None), Ok(()));
        assert_eq!(
            (
                f.counts.kept,
                f.counts.duplicate,
                f.counts.without_delivery_id
            ),
            (4, 2, 2)
        );
    }

    #[test]
    fn an_out_of_range_copy_does_not_hide_its_twin() {
        let mut f = Filter::new(false, Dedupe::All);
        let e = event(Some("d"), "push", "o/r");
        let out = Verdict {
            in_range: false,
            ..ALL
        };
        assert_eq!(f.decide(&e, out, None), Err(DropReason::TimeRange));
        assert_eq!(f.decide(&e, ALL, None), Ok(()));
    }

    #[test]
    fn the_window_forgets_ids_older_than_it_and_only_those() {
        let mut f = Filter::new(false, Dedupe::Window(chrono::Duration::hours(48)));
        let at = |h: i64| DateTime::from_timestamp(h * 3600, 0);
        let a = event(Some("3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b"), "push", "o/r");
        let b = event(Some("b"), "push", "o/r");
        assert_eq!(f.decide(&a, ALL, at(100)), Ok(()));
        assert_eq!(f.decide(&b, ALL, at(120)), Ok(()));
        assert_eq!(
            f.decide(&a, ALL, at(148)),
            Err(DropReason::Duplicate),
            "48 h later: in the window"
        );
        assert_eq!(
            f.decide(&a, ALL, at(149)),
            Ok(()),
            "49 h later: forgotten, kept again"
        );
        assert_eq!(f.decide(&b, ALL, at(150)), Err(DropReason::Duplicate));
        let seen = f.seen.as_ref().unwrap();
        assert_eq!(seen.set.len(), 2);
        assert!(seen.generations.iter().all(|(h, _)| *h >= 149 - 48));
    }

    #[test]
    fn keep_duplicates_when_asked_and_privacy_only_when_asked() {
        let mut f = Filter::new(true, Dedupe::Off);
        let e = event(Some("d"), "push", "o/r");
        assert_eq!(f.decide(&e, ALL, None), Ok(()));
        assert_eq!(f.decide(&e, ALL, None), Ok(()));
        assert_eq!(
            f.decide(
                &e,
                Verdict {
                    public: false,
                    ..ALL
                },
                None
            ),
            Err(DropReason::Private)
        );
    }

    #[test]
    fn selection_matches_event_action_and_repo_case_insensitively() {
        let sel = Selection {
            events: vec!["pull_request".into()],
            actions: vec!["opened".into()],
            repos: vec!["octo/hello".into()],
            ..Selection::default()
        };
        assert!(selected(&event(None, "pull_request", "Octo/Hello"), &sel));
        assert!(!selected(&event(None, "push", "Octo/Hello"), &sel));
        assert!(!selected(&event(None, "pull_request", "octo/other"), &sel));
        let mut no_action = event(None, "pull_request", "octo/hello");
        no_action.action = None;
        assert!(!selected(&no_action, &sel));
    }
}
