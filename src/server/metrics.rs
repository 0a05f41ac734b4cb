//! Prometheus text metrics for `/metrics`: counters and the archive flush
//! latency histogram.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the flush latency buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Reasons a delivery is rejected; each has its own counter.
pub const REJECT_REASONS: [&str; 10] = [
    "signature_missing",
    "signature_sha1_only",
    "signature_malformed",
    "signature_mismatch",
    "missing_headers",
    "bad_event",
    "content_type",
    "bad_body",
    "too_large",
    "body_timeout",
];

/// One `--forward` target's position behind the archive.
#[derive(Debug, Default, Clone, Copy)]
pub struct ForwardGauges {
    /// Archived deliveries not yet confirmed by the target.
    pub backlog: u64,
    /// Age of the oldest of them, in seconds (0 when caught up).
    pub lag_seconds: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// Per `--forward` target (its shown name), set by its follower.
    pub forward: std::sync::Mutex<std::collections::BTreeMap<String, ForwardGauges>>,
    pub received: AtomicU64,
    pub archived: AtomicU64,
    pub duplicates: AtomicU64,
    pub archive_failures: AtomicU64,
    pub forwarded: AtomicU64,
    pub forward_failures: AtomicU64,
    pub forward_held_private: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    /// Connections cut to make room for a new client (`--max-connections`).
    pub connections_shed: AtomicU64,
    /// Connections closed for sending no complete request head in time.
    pub connection_timeouts: AtomicU64,
    /// S3 archives: upload attempts that failed (each is retried).
    pub upload_failures: AtomicU64,
    /// S3 archives: completed spool objects not uploaded yet.
    pub upload_backlog: AtomicU64,
    /// `--reconcile`: passes done and failed, deliveries found missing
    /// (each once), redeliveries asked, lost deliveries found (each once),
    /// and missing deliveries not healed yet.
    pub reconcile_passes: AtomicU64,
    pub reconcile_failures: AtomicU64,
    pub reconcile_missing_found: AtomicU64,
    pub reconcile_redeliveries_asked: AtomicU64,
    pub reconcile_lost: AtomicU64,
    pub reconcile_missing_open: AtomicU64,
    /// When the newest delivery archived was received (microseconds since
    /// the epoch; 0 for none yet): the freshness gauge.
    last_delivery_micros: AtomicI64,
    rejected: [AtomicU64; REJECT_REASONS.len()],
    flush_buckets: [AtomicU64; BUCKETS.len()],
    flush_count: AtomicU64,
    flush_micros: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reject(&self, reason: &str) {
        if let Some(i) = REJECT_REASONS.iter().position(|r| *r == reason) {
            Self::inc(&self.rejected[i]);
        }
    }

    /// A delivery received at `t` was archived (or found archived at start).
    pub fn delivered_at(&self, t: chrono::DateTime<chrono::Utc>) {
        self.last_delivery_micros
            .fetch_max(t.timestamp_micros(), Ordering::Relaxed);
    }

    /// Seconds since the newest archived delivery was received, if any.
    #[must_use]
    pub fn seconds_since_last_delivery(&self) -> Option<f64> {
        let at = self.last_delivery_micros.load(Ordering::Relaxed);
        (at > 0).then(|| (chrono::Utc::now().timestamp_micros() - at).max(0) as f64 / 1e6)
    }

    /// Rejected requests by reason, since the start.
    #[must_use]
    pub fn rejected(&self) -> Vec<(&'static str, u64)> {
        REJECT_REASONS
            .iter()
            .zip(&self.rejected)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn observe_flush(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.flush_buckets) {
            if secs <= *bound {
                Self::inc(bucket);
            }
        }
        Self::inc(&self.flush_count);
        self.flush_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Every plain counter: its name, its help text, and its value.
    fn counters(&self) -> [(&'static str, &'static str, &AtomicU64); 16] {
        [
            (
                "ghreplay_reconcile_passes_total",
                "--reconcile: audits of GitHub's delivery log against the archive completed.",
                &self.reconcile_passes,
            ),
            (
                "ghreplay_reconcile_failures_total",
                "--reconcile: audit passes that failed (GitHub unreachable or refusing; logged).",
                &self.reconcile_failures,
            ),
            (
                "ghreplay_reconcile_missing_total",
                "--reconcile: deliveries GitHub failed to deliver and the archive lacks, each counted once when found.",
                &self.reconcile_missing_found,
            ),
            (
                "ghreplay_reconcile_redeliveries_total",
                "--reconcile: redeliveries asked of GitHub.",
                &self.reconcile_redeliveries_asked,
            ),
            (
                "ghreplay_reconcile_lost_total",
                "--reconcile: deliveries GitHub saw acknowledged that the archive lacks (lost after the 2xx), each counted once.",
                &self.reconcile_lost,
            ),
            (
                "ghreplay_upload_failures_total",
                "S3 archives: object uploads that failed (each is retried; the object stays in the spool).",
                &self.upload_failures,
            ),
            (
                "ghreplay_received_total",
                "Webhook requests received.",
                &self.received,
            ),
            (
                "ghreplay_archived_total",
                "Deliveries archived durably.",
                &self.archived,
            ),
            (
                "ghreplay_duplicates_total",
                "Redeliveries of an archived delivery id, answered 2xx and not archived again.",
                &self.duplicates,
            ),
            (
                "ghreplay_archive_failures_total",
                "Deliveries answered 503 because the archive write failed.",
                &self.archive_failures,
            ),
            (
                "ghreplay_forwarded_total",
                "Deliveries handed to the --forward target.",
                &self.forwarded,
            ),
            (
                "ghreplay_forward_failures_total",
                "Forward attempts that stopped (target down past its retry time); the deliveries stay in the archive and are forwarded when it is back.",
                &self.forward_failures,
            ),
            (
                "ghreplay_forward_held_private_total",
                "Deliveries the privacy filter kept from the --forward target.",
                &self.forward_held_private,
            ),
            (
                "ghreplay_connections_total",
                "Client connections accepted.",
                &self.connections_opened,
            ),
            (
                "ghreplay_connections_shed_total",
                "Connections cut at --max-connections to make room for a new client: the one sending slowest.",
                &self.connections_shed,
            ),
            (
                "ghreplay_header_timeouts_total",
                "Connections closed for sending no complete request head within --header-timeout (idle keep-alive included).",
                &self.connection_timeouts,
            ),
        ]
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        for (name, help, c) in self.counters() {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# HELP ghreplay_rejected_total Requests rejected, by reason.\n# TYPE ghreplay_rejected_total counter");
        for (reason, c) in REJECT_REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "ghreplay_rejected_total{{reason=\"{reason}\"}} {}",
                get(c)
            );
        }
        let open = get(&self.connections_opened).saturating_sub(get(&self.connections_closed));
        let _ = writeln!(
            out,
            "# HELP ghreplay_connections_open Client connections open now.\n# TYPE ghreplay_connections_open gauge\nghreplay_connections_open {open}"
        );
        let _ = writeln!(
            out,
            "# HELP ghreplay_upload_backlog S3 archives: completed spool objects not uploaded yet.\n# TYPE ghreplay_upload_backlog gauge\nghreplay_upload_backlog {}",
            get(&self.upload_backlog)
        );
        let _ = writeln!(
            out,
            "# HELP ghreplay_reconcile_missing_open --reconcile: deliveries found missing and not archived yet (redelivery asked, futile, or failing again).\n# TYPE ghreplay_reconcile_missing_open gauge\nghreplay_reconcile_missing_open {}",
            get(&self.reconcile_missing_open)
        );
        if let Some(age) = self.seconds_since_last_delivery() {
            let _ = writeln!(
                out,
                "# HELP ghreplay_seconds_since_last_delivery Seconds since the newest archived delivery was received: alert when it grows past your quietest hour.\n# TYPE ghreplay_seconds_since_last_delivery gauge\nghreplay_seconds_since_last_delivery {age:.3}"
            );
        }
        let forward = self
            .forward
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if !forward.is_empty() {
            let _ = writeln!(out, "# HELP ghreplay_forward_backlog Archived deliveries a --forward target has not confirmed yet.\n# TYPE ghreplay_forward_backlog gauge");
            for (target, g) in &forward {
                let _ = writeln!(
                    out,
                    "ghreplay_forward_backlog{{target=\"{}\"}} {}",
                    label(target),
                    g.backlog
                );
            }
            let _ = writeln!(out, "# HELP ghreplay_forward_lag_seconds Age of the oldest archived delivery a --forward target has not confirmed (0 when caught up).\n# TYPE ghreplay_forward_lag_seconds gauge");
            for (target, g) in &forward {
                let _ = writeln!(
                    out,
                    "ghreplay_forward_lag_seconds{{target=\"{}\"}} {:.3}",
                    label(target),
                    g.lag_seconds
                );
            }
        }
        let name = "ghreplay_archive_flush_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to write and fsync one group of records.\n# TYPE {name} histogram"
        );
        for (bound, c) in BUCKETS.iter().zip(&self.flush_buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", get(c));
        }
        let count = get(&self.flush_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", get(&self.flush_micros) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
