//! Which delivery ids are archived, so that a redelivery (same
//! `X-GitHub-Delivery`) gets its 2xx without being archived twice.
//!
//! A delivery being written is `Pending`: a second request for it waits for
//! the first's outcome rather than answering 2xx for something not yet
//! durable. The index is rebuilt from the archive itself at startup
//! (`serve` reads the last dedupe window), so it survives a restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::archive::guid_bits;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Guid(u128),
    Other(Box<str>),
}

fn key(id: &str) -> Key {
    guid_bits(id).map_or_else(|| Key::Other(id.into()), Key::Guid)
}

enum State {
    Durable,
    /// Being written; the value becomes `Some(archived)`.
    Pending(watch::Receiver<Option<bool>>),
}

/// What a request may do with its delivery id.
pub enum Claim {
    /// First sighting: write it, then call [`Writing::finish`].
    New(Writing),
    /// Already archived.
    Durable,
    /// Being written by another request: wait for it.
    Pending(watch::Receiver<Option<bool>>),
}

/// A claimed id, being written.
pub struct Writing {
    key: Key,
    tx: watch::Sender<Option<bool>>,
}

/// A pending claim whose writer is gone without saying how it ended.
fn abandoned(rx: &watch::Receiver<Option<bool>>) -> bool {
    rx.has_changed().is_err() && rx.borrow().is_none()
}

#[derive(Default)]
pub struct DeliveryIndex {
    entries: Mutex<HashMap<Key, (Instant, State)>>,
}

impl DeliveryIndex {
    /// Records ids already in the archive.
    pub fn extend_durable<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut map = self.lock();
        let now = Instant::now();
        for id in ids {
            map.insert(key(id), (now, State::Durable));
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (Instant, State)>> {
        // A poisoned lock means a panic elsewhere mid-update of a plain map;
        // its data is still consistent, so keep serving.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn claim(&self, id: &str) -> Claim {
        let k = key(id);
        let mut map = self.lock();
        match map.get(&k) {
            Some((_, State::Durable)) => Claim::Durable,
            // A claim whose writer went away without an outcome (it cannot
            // happen while writes run on their own task; a panic would do
            // it) is abandoned: the next copy takes it over.
            Some((_, State::Pending(rx)))
                if !(rx.has_changed().is_err() && rx.borrow().is_none()) =>
            {
                Claim::Pending(rx.clone())
            }
            _ => {
                let (tx, rx) = watch::channel(None);
                map.insert(k.clone(), (Instant::now(), State::Pending(rx)));
                Claim::New(Writing { key: k, tx })
            }
        }
    }

    /// Ends a claim: archived (`true`) or not, in which case the id is free
    /// for the next attempt.
    pub fn finish(&self, w: Writing, archived: bool) {
        let mut map = self.lock();
        if archived {
            map.insert(w.key, (Instant::now(), State::Durable));
        } else {
            map.remove(&w.key);
        }
        let _ = w.tx.send(Some(archived));
    }

    /// Whether `id` is archived durably (as far back as the window).
    #[must_use]
    pub fn is_durable(&self, id: &str) -> bool {
        matches!(self.lock().get(&key(id)), Some((_, State::Durable)))
    }

    /// Forgets durable ids older than `window` (GitHub redelivers for 3 days).
    pub fn prune(&self, window: Duration) {
        self.lock().retain(|_, (at, state)| match state {
            State::Pending(rx) => !abandoned(rx),
            State::Durable => at.elapsed() < window,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_waits_for_the_first_and_a_failed_write_frees_the_id() {
        let index = DeliveryIndex::default();
        let Claim::New(w) = index.claim("3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b") else {
            panic!("first claim")
        };
        let Claim::Pending(rx) = index.claim("3F2B8C1E-9A4D-4E2F-8B1A-0C9D8E7F6A5B") else {
            panic!("second claim waits")
        };
        index.finish(w, false);
        assert_eq!(*rx.borrow(), Some(false));
        let Claim::New(w) = index.claim("3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b") else {
            panic!("free again after a failed write")
        };
        index.finish(w, true);
        assert!(matches!(
            index.claim("3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b"),
            Claim::Durable
        ));
        index.extend_durable(["other-id"]);
        assert!(matches!(index.claim("other-id"), Claim::Durable));
        index.prune(Duration::ZERO);
        assert!(index.is_empty());
    }

    #[test]
    fn a_claim_whose_writer_vanished_is_taken_over() {
        let index = DeliveryIndex::default();
        let Claim::New(w) = index.claim("lost") else {
            panic!("first claim")
        };
        drop(w);
        let Claim::New(w) = index.claim("lost") else {
            panic!("taken over, not waited on forever")
        };
        drop(w);
        index.prune(Duration::from_secs(3600));
        assert!(index.is_empty(), "an abandoned claim is pruned");
    }
}
