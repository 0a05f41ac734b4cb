//! The delivery engine: one [`Transport`] driven with a bounded in-flight
//! window, settled in archive order, retried with one policy.
//!
//! Each batch is started in archive order ([`Transport::start`]) and then
//! confirmed on a task of its own, which also retries the batch's messages
//! that failed for a passing reason ([`RetryPolicy`]). The engine settles
//! the oldest task first, so the [`Ledger`]'s checkpoint is one watermark:
//! every event at or before it was confirmed, refused and listed, or
//! confirmed by an earlier run.
//!
//! The window bounds the messages *on the wire*: a task gives its room back
//! as soon as its batch is confirmed, whatever older tasks are still doing,
//! so one slow answer does not idle the rest of the window. What is
//! confirmed but not yet settled (behind an older, slower batch) is bounded
//! separately, by [`SETTLE_SLACK`] windows.
//!
//! Who waits for room depends on the wire. For a transport whose wire keeps
//! archive order ([`Transport::IN_ORDER`], AMQP), the engine's own thread
//! waits, then starts the batch, so batches leave one after another. For one
//! whose messages race anyway (concurrent HTTP requests), the batch's task
//! waits for room and starts itself: room given back goes straight to a
//! waiting task on a running worker, instead of waking the engine's thread,
//! which on a busy machine leaves the window part empty until it is
//! scheduled. Either way, what waits counts as unsettled, so the same
//! [`SETTLE_SLACK`] bound holds.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use backon::Retryable as _;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::ledger::{DeliveryCounts, Ledger, SETTLE_SLACK};
use super::{Delivering, Refusal, Refused, SendError, Transport, Verdicts};
use crate::checkpoint::CheckpointFile;
use crate::decode::{DecodedObject, Event};
use crate::model::Position;
pub use crate::retry::RetryPolicy;
use crate::sink::{Sink, SinkError};

/// The wait a passing failure asked for (HTTP `Retry-After`).
fn asked(e: &SendError) -> Duration {
    match e {
        SendError::Passing {
            retry_after: Some(r),
            ..
        } => *r,
        _ => Duration::ZERO,
    }
}

/// Where an event came from, to list it if it is refused.
#[derive(Debug, Clone)]
struct About {
    pos: Position,
    offset: u64,
    delivery_id: Option<String>,
    event: String,
    bytes: usize,
}

impl About {
    fn refused(self, reason: &str, detail: String) -> Refused {
        Refused {
            object: self.pos.object,
            offset: self.offset,
            delivery_id: self.delivery_id,
            event: self.event,
            bytes: self.bytes,
            reason: reason.to_owned(),
            detail,
        }
    }
}

/// One event of a batch: encoded, or refused by the transport already.
enum Slot<M> {
    Message(About, Arc<M>),
    Refused(About, Refusal),
}

/// What a batch's task found, once every message is confirmed, refused or
/// given up on.
struct Outcome {
    /// One per encoded message, in the batch's order.
    verdicts: Verdicts,
    /// Messages sent again after a passing failure.
    resent: u64,
}

/// A started batch, settled in archive order.
struct Flight {
    slots: Vec<(About, Option<Refusal>)>,
    task: Option<JoinHandle<Outcome>>,
}

/// Waits for `want` messages' room in the window.
async fn take_room(room: Arc<Semaphore>, want: u32) -> OwnedSemaphorePermit {
    let Ok(permit) = room.acquire_many_owned(want).await else {
        unreachable!("the engine never closes its semaphore")
    };
    permit
}

/// Drives one transport for a run. A [`Sink`], fed in archive order.
pub struct Engine<T: Transport> {
    rt: Handle,
    transport: Arc<T>,
    policy: RetryPolicy,
    /// Messages on the wire (started, not yet confirmed), at most.
    window: usize,
    /// The window's room: a batch's task holds one permit per message.
    room: Arc<Semaphore>,
    batch: Vec<Slot<T::Message>>,
    batch_bytes: usize,
    in_flight: VecDeque<Flight>,
    unsettled: usize,
    ledger: Ledger,
    refused: Vec<Refused>,
}

impl<T: Transport> Engine<T> {
    /// Wraps a connected (healthchecked) transport. Must be called within
    /// the runtime; the engine is then driven from a blocking thread.
    #[must_use]
    pub fn new(transport: T, ledger: Ledger, window: usize, policy: RetryPolicy) -> Self {
        Self {
            rt: Handle::current(),
            transport: Arc::new(transport),
            policy,
            window: window.max(1),
            room: Arc::new(Semaphore::new(window.max(1))),
            batch: Vec::new(),
            batch_bytes: 0,
            in_flight: VecDeque::new(),
            unsettled: 0,
            ledger,
            refused: Vec::new(),
        }
    }

    /// Starts the waiting batch: once the window has room (waited for here
    /// for an in-order transport, on the batch's task otherwise), hands the
    /// batch to the transport, and its confirmation to that task.
    async fn start_batch(&mut self) -> Result<(), SinkError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let n = self.batch.len();
        while self.unsettled > 0 && self.unsettled + n > self.window * SETTLE_SLACK {
            self.settle_front().await?;
        }
        let mut slots = Vec::with_capacity(n);
        let mut messages = Vec::with_capacity(n);
        for slot in std::mem::take(&mut self.batch) {
            match slot {
                Slot::Message(about, m) => {
                    messages.push(m);
                    slots.push((about, None));
                }
                Slot::Refused(about, r) => slots.push((about, Some(r))),
            }
        }
        self.batch_bytes = 0;
        let task = if messages.is_empty() {
            None
        } else {
            // A batch larger than the window takes the whole window.
            let want = messages.len().min(self.window) as u32;
            self.ledger.counts.sent += messages.len() as u64;
            let (transport, policy, room) =
                (self.transport.clone(), self.policy, self.room.clone());
            // An in-order batch is started here, before the next one; any
            // other starts on its task once there is room.
            let started = if T::IN_ORDER {
                let permit = take_room(room.clone(), want).await;
                Some((permit, self.transport.start(messages.clone()).await))
            } else {
                None
            };
            Some(tokio::spawn(async move {
                let (permit, first) = if let Some(started) = started {
                    started
                } else {
                    let permit = take_room(room, want).await;
                    (permit, transport.start(messages.clone()).await)
                };
                let outcome = confirm(transport, first, messages, policy).await;
                drop(permit);
                outcome
            }))
        };
        self.unsettled += n;
        self.in_flight.push_back(Flight { slots, task });
        // Settle what has already finished, so the checkpoint keeps up.
        while self
            .in_flight
            .front()
            .is_some_and(|f| f.task.as_ref().is_none_or(JoinHandle::is_finished))
        {
            self.settle_front().await?;
        }
        Ok(())
    }

    /// Waits for the oldest batch and settles its events, in order.
    async fn settle_front(&mut self) -> Result<(), SinkError> {
        let Some(flight) = self.in_flight.pop_front() else {
            return Ok(());
        };
        self.unsettled -= flight.slots.len();
        let outcome = match flight.task {
            Some(task) => match task.await {
                Ok(o) => o,
                Err(e) => Outcome {
                    verdicts: vec![
                        Err(SendError::Fatal(format!("a delivery task failed: {e}")));
                        flight.slots.iter().filter(|(_, r)| r.is_none()).count()
                    ],
                    resent: 0,
                },
            },
            None => Outcome {
                verdicts: Vec::new(),
                resent: 0,
            },
        };
        self.ledger.counts.sent += outcome.resent;
        self.ledger.counts.resent += outcome.resent;
        let mut verdicts = outcome.verdicts.into_iter();
        let sent = flight.slots.iter().filter(|(_, r)| r.is_none()).count();
        for (about, refusal) in flight.slots {
            let pos = about.pos.clone();
            if let Some(r) = refusal {
                self.refuse(about, r.reason, r.detail)?;
                continue;
            }
            match verdicts.next() {
                Some(Ok(())) => self.ledger.done(pos, true)?,
                Some(Err(SendError::Refused(detail))) => {
                    self.refuse(about, "refused by the target", detail)?;
                }
                Some(Err(e @ SendError::Passing { .. })) => {
                    let message = self.transport.gave_up(&e, sent, self.policy.retry_for);
                    return Err(self.ledger.stopped(message));
                }
                Some(Err(SendError::Fatal(message))) => {
                    return Err(self.ledger.stopped(message));
                }
                None => {
                    return Err(self.ledger.stopped(format!(
                        "{} gave no answer for a message",
                        self.transport.describe()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Lists an event that will not be sent, and settles it.
    fn refuse(&mut self, about: About, reason: &str, detail: String) -> Result<(), SinkError> {
        let pos = about.pos.clone();
        self.refused.push(about.refused(reason, detail));
        self.ledger.counts.refused += 1;
        self.ledger.done(pos, false)
    }

    /// Starts what is batched and settles everything in flight.
    async fn drain(&mut self) -> Result<(), SinkError> {
        self.start_batch().await?;
        while !self.in_flight.is_empty() {
            self.settle_front().await?;
        }
        Ok(())
    }

    /// Settles what was sent, then describes the stop (Ctrl-C).
    fn interrupted(&mut self, err: SinkError) -> SinkError {
        let rt = self.rt.clone();
        if let Err(e) = rt.block_on(self.drain()) {
            return e;
        }
        match err {
            SinkError::Interrupted => self.ledger.stopped("interrupted".into()),
            other => other,
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the data is whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits for a started batch's verdicts and retries its passing failures
/// under the policy, until each message is settled or the time is up.
async fn confirm<T: Transport>(
    transport: Arc<T>,
    first: super::Pending,
    messages: Vec<Arc<T::Message>>,
    policy: RetryPolicy,
) -> Outcome {
    struct State {
        first: Option<super::Pending>,
        verdicts: Verdicts,
        resent: u64,
    }
    let n = messages.len();
    let state = Arc::new(Mutex::new(State {
        first: Some(first),
        verdicts: Vec::new(),
        resent: 0,
    }));

    let attempt = || {
        let (state, transport, messages) = (state.clone(), transport.clone(), messages.clone());
        async move {
            let first = lock(&state).first.take();
            if let Some(pending) = first {
                let mut v = pending.await;
                v.resize_with(n, || {
                    Err(SendError::Fatal("no answer for a message".into()))
                });
                lock(&state).verdicts = v;
            } else {
                let failing: Vec<usize> = lock(&state)
                    .verdicts
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| matches!(v, Err(SendError::Passing { .. })))
                    .map(|(i, _)| i)
                    .collect();
                let batch = failing.iter().map(|&i| messages[i].clone()).collect();
                let again = transport.start(batch).await.await;
                let mut s = lock(&state);
                s.resent += failing.len() as u64;
                for (k, &i) in failing.iter().enumerate() {
                    s.verdicts[i] = again
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| Err(SendError::Fatal("no answer for a message".into())));
                }
            }
            // The passing failure to wait on: the one asking the longest wait.
            let s = lock(&state);
            let worst = s
                .verdicts
                .iter()
                .filter_map(|v| v.as_ref().err())
                .filter(|e| matches!(e, SendError::Passing { .. }))
                .max_by_key(|e| match e {
                    SendError::Passing { retry_after, .. } => *retry_after,
                    _ => None,
                });
            match worst {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            }
        }
    };
    let deadline = Instant::now() + policy.retry_for;
    let _ = attempt
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(|e| matches!(e, SendError::Passing { .. }))
        .adjust(|e, backoff| policy.next_wait(asked(e), backoff, deadline))
        .notify(|e, wait| {
            tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "sending again");
        })
        .await;
    let s = std::mem::replace(
        &mut *lock(&state),
        State {
            first: None,
            verdicts: Vec::new(),
            resent: 0,
        },
    );
    Outcome {
        verdicts: s.verdicts,
        resent: s.resent,
    }
}

impl<T: Transport> Sink for Engine<T> {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        let Some(pos) = self.ledger.claim(obj, e) else {
            return Ok(());
        };
        if let Err(err) = self.ledger.before_send() {
            return Err(self.interrupted(err));
        }
        self.ledger.note_private(public);
        let mut about = About {
            pos,
            offset: e.offset,
            delivery_id: e.delivery_id.clone(),
            event: e.event.clone(),
            bytes: 0,
        };
        let limits = self.transport.batch_limits();
        let slot = match self.transport.encode(obj, e) {
            Ok(m) => {
                let size = self.transport.size(&m);
                about.bytes = size;
                if self.batch_bytes + size > limits.bytes {
                    let rt = self.rt.clone();
                    rt.block_on(self.start_batch())?;
                }
                self.batch_bytes += size;
                Slot::Message(about, Arc::new(m))
            }
            Err(r) => {
                about.bytes = r.bytes;
                Slot::Refused(about, r)
            }
        };
        self.batch.push(slot);
        if self.batch.len() >= limits.messages.max(1) {
            let rt = self.rt.clone();
            rt.block_on(self.start_batch())?;
        }
        Ok(())
    }

    /// Settles everything sent and saves the checkpoint: a follower that
    /// goes idle leaves nothing unconfirmed or unsaved.
    fn flush(&mut self) -> Result<(), SinkError> {
        let rt = self.rt.clone();
        rt.block_on(self.drain())?;
        self.ledger.save(false)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let rt = self.rt.clone();
        rt.block_on(async {
            self.drain().await?;
            self.ledger.save(true)?;
            self.transport.close().await;
            Ok(())
        })
    }
}

impl<T: Transport> Delivering for Engine<T> {
    fn counts(&self) -> &DeliveryCounts {
        &self.ledger.counts
    }
    fn refused(&self) -> &[Refused] {
        &self.refused
    }
    fn describe(&self) -> String {
        self.transport.describe()
    }
    fn attach(&mut self, checkpoint: CheckpointFile) {
        self.ledger.attach(checkpoint);
    }
}
