//! Live forwarding (`serve --forward`): each delivery, once archived, is
//! sent on to Pulse or SNS through the same privacy filter as `republish`,
//! by the same sinks. Forwarding never decides a delivery's fate: it is in
//! the archive before it is offered here, a full queue or a failed send is
//! only counted, and `republish` can send it later.

use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::metrics::Metrics;
use crate::archive::Record;
use crate::decode::{decode_object, DecodeOptions};
use crate::filter::privacy;
use crate::sink::Sink;

/// Deliveries waiting to be forwarded before new ones count as failures.
const QUEUE: usize = 10_000;
/// Idle time after which what was sent is settled (confirms, SNS batch).
const SETTLE_AFTER: Duration = Duration::from_millis(200);

pub struct Forwarder {
    tx: Mutex<Option<SyncSender<Record>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    /// Starts the forwarding thread around a connected sink.
    pub fn start<S: Sink + 'static>(
        mut sink: S,
        include_private: bool,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Record>(QUEUE);
        let m = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("forwarder".into())
            .spawn(move || {
                let mut unsettled = false;
                loop {
                    match rx.recv_timeout(SETTLE_AFTER) {
                        Ok(record) => {
                            forward(&mut sink, &record, include_private, &m);
                            unsettled = true;
                        }
                        Err(RecvTimeoutError::Timeout) if unsettled => {
                            if let Err(e) = sink.flush() {
                                tracing::warn!(error = %e, "forwarding failed");
                                Metrics::inc(&m.forward_failures);
                            }
                            unsettled = false;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                if let Err(e) = sink.finish() {
                    tracing::warn!(error = %e, "forwarding failed at shutdown");
                    Metrics::inc(&m.forward_failures);
                }
            })?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            metrics,
        })
    }

    /// Offers an archived delivery; never waits.
    pub fn offer(&self, record: Record) {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sent = tx.as_ref().map(|tx| tx.try_send(record));
        if !matches!(sent, Some(Ok(()))) {
            if matches!(sent, Some(Err(TrySendError::Full(_)))) {
                tracing::warn!("forward queue full; the delivery is archived but not forwarded");
            }
            Metrics::inc(&self.metrics.forward_failures);
        }
    }

    /// Forwards what is queued, settles it, and stops.
    pub async fn close(&self) {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        super::join(&self.thread).await;
    }
}

fn forward<S: Sink>(sink: &mut S, record: &Record, include_private: bool, m: &Metrics) {
    // The archived bytes, read back as every other command reads them.
    let key = format!("live/{}", record.delivery_id);
    let obj = decode_object(
        key,
        Some(record.received_at),
        record.to_json_line(),
        &DecodeOptions::default(),
    );
    for e in &obj.events {
        let public = privacy::event_is_public(e);
        if !public && !include_private {
            Metrics::inc(&m.forward_held_private);
            continue;
        }
        match sink.accept(&obj, e, public) {
            Ok(()) => Metrics::inc(&m.forwarded),
            Err(err) => {
                tracing::warn!(delivery = %record.delivery_id, error = %err, "forwarding failed; the delivery is archived");
                Metrics::inc(&m.forward_failures);
            }
        }
    }
    if !obj.problems.is_empty() {
        Metrics::inc(&m.forward_failures);
    }
}
