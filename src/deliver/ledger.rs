//! The ledger of a delivering run: where it resumes, pacing, the
//! checkpoint's save policy, interruption, and the counts of what was sent.
//!
//! The engine reports each event's fate in archive order ([`Ledger::done`]);
//! the ledger turns that into a durable watermark.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::CheckpointFile;
use crate::decode::{DecodedObject, Event};
use crate::model::Position;

use crate::sink::SinkError;

/// Counts of what a delivering sink did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryCounts {
    /// Messages handed to the target, re-sends included.
    pub sent: u64,
    /// Events the target confirmed.
    pub confirmed: u64,
    /// Events at or before the checkpoint: confirmed by an earlier run.
    pub already_sent: u64,
    /// Messages sent again after a reconnect: their first copy may have
    /// arrived too.
    pub resent: u64,
    /// Events not sent because the transport cannot encode them (too large,
    /// no event name) or the target refused them for good: listed.
    pub refused: u64,
    /// Events sent that the privacy filter would have held back
    /// (`--include-private`).
    pub private: u64,
    /// Resuming: at most this many events just past the checkpoint may
    /// already have been delivered by the stopped run, and are sent again.
    pub resumed_bound: u64,
}

/// Sends at most `rate` messages per second, without dropping any.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
        self.next = self.next.max(now) + self.interval;
    }
}

/// Saves the checkpoint at least this often while events are confirmed.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The ledger of one delivering run.
#[derive(Debug)]
pub struct Ledger {
    checkpoint: Option<CheckpointFile>,
    resume_after: Option<Position>,
    pacer: Option<Pacer>,
    stop: Arc<AtomicBool>,
    /// Confirmed but not yet saved; saved when this reaches `save_after`.
    unsaved: u64,
    save_after: u64,
    last_save: Instant,
    pub counts: DeliveryCounts,
}

/// How many windows of messages may wait, confirmed, behind the oldest
/// unconfirmed batch (the engine stops starting new ones past it).
pub const SETTLE_SLACK: usize = 2;

/// The most events a run killed at any moment has sent past its saved
/// checkpoint, which a resumed run sends again: those not yet settled
/// ([`SETTLE_SLACK`] windows) and up to a window settled but not yet saved.
#[must_use]
pub const fn resend_bound(window: usize) -> u64 {
    let window = if window == 0 { 1 } else { window };
    ((SETTLE_SLACK + 1) * window) as u64
}

impl Ledger {
    /// `window`: how many messages may be on the wire at once; the
    /// checkpoint is saved at least every `window` confirmations, so a run
    /// killed at any moment re-sends at most [`resend_bound`] events.
    #[must_use]
    pub fn new(
        checkpoint: Option<CheckpointFile>,
        rate: Option<f64>,
        window: usize,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let resume_after = checkpoint
            .as_ref()
            .and_then(|c| c.state.confirmed_through.clone());
        // The bound the stopped run recorded ([`resend_bound`] of its window);
        // this run records its own.
        let mut checkpoint = checkpoint;
        let resumed_bound = checkpoint
            .as_ref()
            .filter(|c| c.state.confirmed_through.is_some() || c.state.confirmed > 0)
            .map_or(0, |c| c.state.unconfirmed_bound);
        if let Some(c) = checkpoint.as_mut() {
            c.state.unconfirmed_bound = resend_bound(window);
        }
        Self {
            checkpoint,
            resume_after,
            pacer: rate.filter(|r| *r > 0.0).map(|r| Pacer {
                interval: Duration::from_secs_f64(1.0 / r),
                next: Instant::now(),
            }),
            stop,
            unsaved: 0,
            save_after: window.max(1) as u64,
            last_save: Instant::now(),
            counts: DeliveryCounts {
                resumed_bound,
                ..DeliveryCounts::default()
            },
        }
    }

    /// Attaches a checkpoint created after the target's healthcheck.
    pub fn attach(&mut self, checkpoint: CheckpointFile) {
        self.checkpoint = Some(checkpoint);
    }

    /// Counts an event about to be sent that is not public.
    pub fn note_private(&mut self, public: bool) {
        self.counts.private += u64::from(!public);
    }

    /// The event's position, or `None` when an earlier run already
    /// delivered it (at or before the checkpoint).
    pub fn claim(&mut self, obj: &DecodedObject, e: &Event) -> Option<Position> {
        let pos = Position {
            object: obj.key.clone(),
            index: e.index,
        };
        (!self.already_sent(&pos)).then_some(pos)
    }

    /// Whether an earlier run already delivered the event at `pos`.
    pub fn already_sent(&mut self, pos: &Position) -> bool {
        let done = self.resume_after.as_ref().is_some_and(|r| pos <= r);
        if done {
            self.counts.already_sent += 1;
        }
        done
    }

    /// Waits for the pace, and says whether the run was asked to stop.
    pub fn before_send(&mut self) -> Result<(), SinkError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(SinkError::Interrupted);
        }
        if let Some(p) = self.pacer.as_mut() {
            p.wait();
        }
        Ok(())
    }

    /// Records that every event up to and including `pos` is settled
    /// (confirmed, or passed over and reported).
    pub fn done(&mut self, pos: Position, confirmed: bool) -> Result<(), SinkError> {
        if confirmed {
            self.counts.confirmed += 1;
        }
        if let Some(cp) = self.checkpoint.as_mut() {
            cp.state.confirmed_through = Some(pos);
            cp.state.confirmed += u64::from(confirmed);
            self.unsaved += 1;
            if self.unsaved >= self.save_after || self.last_save.elapsed() >= SAVE_EVERY {
                self.save(false)?;
            }
        }
        Ok(())
    }

    /// Saves the checkpoint now; `complete` marks the run finished.
    pub fn save(&mut self, complete: bool) -> Result<(), SinkError> {
        if let Some(cp) = self.checkpoint.as_mut() {
            cp.state.complete = complete;
            cp.save()?;
            self.unsaved = 0;
            self.last_save = Instant::now();
        }
        Ok(())
    }

    /// Saves the checkpoint and describes a run that stops part way.
    pub fn stopped(&mut self, message: String) -> SinkError {
        match self.save(false) {
            Ok(()) => SinkError::Stopped {
                message,
                checkpoint: self.checkpoint_path(),
            },
            Err(e) => e,
        }
    }

    /// The checkpoint file, to name in messages.
    #[must_use]
    pub fn checkpoint_path(&self) -> Option<String> {
        self.checkpoint
            .as_ref()
            .map(|c| c.path().display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::RunIdentity;

    #[test]
    fn resume_point_and_saves_follow_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let run = RunIdentity::for_tests();
        let cp = CheckpointFile::create(&path, run.clone(), 2).unwrap();
        let mut d = Ledger::new(Some(cp), None, 2, Arc::default());
        let pos = |i| Position {
            object: "k".into(),
            index: i,
        };
        d.done(pos(0), true).unwrap();
        let on_disk = |p: &std::path::Path| CheckpointFile::load(p).unwrap().confirmed_through;
        assert_eq!(on_disk(&path), None, "not saved before the window fills");
        d.done(pos(1), true).unwrap();
        assert_eq!(on_disk(&path), Some(pos(1)));

        let cp = CheckpointFile::resume(&path, &run).unwrap();
        let mut d = Ledger::new(Some(cp), None, 2, Arc::default());
        assert!(d.already_sent(&pos(1)));
        assert!(!d.already_sent(&pos(2)));
        assert_eq!(d.counts.already_sent, 1);
    }

    #[test]
    fn pacing_spaces_sends_and_drops_none() {
        let mut d = Ledger::new(None, Some(200.0), 10, Arc::default());
        let start = Instant::now();
        for _ in 0..21 {
            d.before_send().unwrap();
        }
        // 21 sends at 200/s: 20 intervals of 5 ms at the least.
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_stop_request_interrupts_before_the_next_send() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut d = Ledger::new(None, Some(1000.0), 10, stop.clone());
        assert!(d.before_send().is_ok());
        stop.store(true, Ordering::Relaxed);
        assert!(matches!(d.before_send(), Err(SinkError::Interrupted)));
    }
}
