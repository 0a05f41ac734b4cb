//! Delivering kept events to a target: one engine, several wires.
//!
//! A [`Transport`] knows only its wire: how a kept event is encoded, how a
//! batch is sent, what counts as a confirm, which failures may pass and which
//! are final, and its healthcheck (done where it is built, in
//! [`target::connect`]). The [`engine::Engine`] owns everything else, for
//! every transport, in `republish` and in `serve --forward` alike: where the
//! run resumes, pacing, the in-flight window, settling in archive order, the
//! checkpoint, Ctrl-C, and the one retry policy ([`engine::RetryPolicy`]).
//!
//! ```text
//! Sink::accept -> ledger (resume? pace, Ctrl-C) -> Transport::encode
//!   -> batch -> Transport::start (in archive order) -> task: confirm, retry
//!   -> settle the oldest task first -> ledger (checkpoint watermark)
//! ```

pub mod engine;
pub mod http;
pub mod ledger;
pub mod mozilla;
pub mod pulse;
pub mod sns;
pub mod target;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::decode::{DecodedObject, Event};
use crate::sink::Sink;

pub use engine::{Engine, RetryPolicy};
pub use ledger::{DeliveryCounts, Ledger};
pub use target::{connect, Target, TargetError};

/// Why a message was not confirmed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// May pass (a lost connection, a timeout, a 503): sent again with
    /// backoff until the retry time runs out, then the run stops, resumable.
    #[error("{source}")]
    Passing {
        source: Arc<dyn std::error::Error + Send + Sync>,
        /// The target asked to wait this long (HTTP `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// This message will never be taken (a 4xx): listed as refused, and
    /// the run goes on.
    #[error("{0}")]
    Refused(String),
    /// Nothing more can be sent (an unroutable message under
    /// `--mandatory`, a message SNS calls the sender's fault): the run
    /// stops, resumable.
    #[error("{0}")]
    Fatal(String),
}

impl SendError {
    /// A passing failure with no wait asked for.
    pub fn passing<E: std::error::Error + Send + Sync + 'static>(source: E) -> Self {
        SendError::Passing {
            source: Arc::new(source),
            retry_after: None,
        }
    }

    /// A passing failure described in words.
    #[must_use]
    pub fn passing_msg(message: impl Into<String>) -> Self {
        Self::passing(Message(message.into()))
    }
}

/// A plain message as an error source.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Message(pub String);

/// The target's verdict on each message of a batch, in the batch's order.
pub type Verdicts = Vec<Result<(), SendError>>;

/// A batch on its way: resolves once the target has answered for each
/// message. Owns what it needs, so the engine can run it on its own task.
pub type Pending = Pin<Box<dyn Future<Output = Verdicts> + Send + 'static>>;

/// An event a transport will not send (too large, no event name), or a
/// message the target refused: listed in the summary and in
/// `--refused-list`, never dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub object: String,
    pub offset: u64,
    pub delivery_id: Option<String>,
    pub event: String,
    /// The encoded message's size, when it was encoded.
    pub bytes: usize,
    /// The kind of refusal, as the summary groups them ("over SNS's 256 KiB
    /// limit", "refused by the receiver").
    pub reason: String,
    /// What the target or the transport said about this one.
    pub detail: String,
}

/// What [`Transport::encode`] makes of an event it will not send.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub reason: &'static str,
    pub detail: String,
    pub bytes: usize,
}

/// How many messages go in one send.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub messages: usize,
    /// The encoded messages of one batch together, at most.
    pub bytes: usize,
}

impl BatchLimits {
    /// One message per send.
    pub const ONE: BatchLimits = BatchLimits {
        messages: 1,
        bytes: usize::MAX,
    };
}

/// A target's wire. See the module documentation for what it does not do.
pub trait Transport: Send + Sync + 'static {
    /// One kept event as it goes on the wire.
    type Message: Send + Sync + 'static;

    /// Whether batches must go on the wire in archive order (AMQP: one
    /// channel, one stream for consumers). A transport whose messages race
    /// anyway once several are in flight (concurrent HTTP requests) says
    /// no: its batches then wait for room, and start, on their own tasks
    /// ([`engine`]'s module documentation says why that is faster).
    const IN_ORDER: bool = true;

    /// The target as it may be shown and recorded (no credentials).
    fn describe(&self) -> String;

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::ONE
    }

    /// Encodes one kept event, or says why it will not be sent.
    fn encode(&self, obj: &DecodedObject, e: &Event) -> Result<Self::Message, Refusal>;

    /// The encoded size of a message, for [`BatchLimits::bytes`].
    fn size(&self, m: &Self::Message) -> usize;

    /// Sends a batch. For an [`IN_ORDER`](Self::IN_ORDER) transport the
    /// engine calls this in archive order and awaits it before the next
    /// call, so that what goes on the wire keeps that order; otherwise each
    /// batch's task calls it once the window has room. The returned
    /// [`Pending`] then waits for the target's answers on that task. A
    /// transport that cannot send at all (its connection is gone) returns a
    /// `Pending` that says so for every message.
    fn start(&self, batch: Vec<Arc<Self::Message>>) -> impl Future<Output = Pending> + Send;

    /// The message that stops a run after passing failures outlasted the
    /// retry time.
    fn gave_up(&self, last: &SendError, messages: usize, retry_for: Duration) -> String {
        format!(
            "{} did not take {messages} messages for {} s: {last}",
            self.describe(),
            retry_for.as_secs()
        )
    }

    /// Closes the connection at the end of a run.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A delivering sink whatever its transport: what commands hold.
pub trait Delivering: Sink {
    fn counts(&self) -> &DeliveryCounts;
    fn refused(&self) -> &[Refused];
    fn describe(&self) -> String;
    /// Attaches a checkpoint created after the healthcheck passed.
    fn attach(&mut self, checkpoint: crate::checkpoint::CheckpointFile);
}

impl Sink for Box<dyn Delivering> {
    fn accept(
        &mut self,
        object: &DecodedObject,
        event: &Event,
        public: bool,
    ) -> Result<(), crate::sink::SinkError> {
        (**self).accept(object, event, public)
    }
    fn finish(&mut self) -> Result<(), crate::sink::SinkError> {
        (**self).finish()
    }
    fn flush(&mut self) -> Result<(), crate::sink::SinkError> {
        (**self).flush()
    }
}
