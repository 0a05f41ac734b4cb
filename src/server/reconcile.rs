//! `serve --reconcile HOOK`: the audit of `ghreplay audit`, in the
//! background, over the server's own archive, and redelivery of what never
//! arrived, with no command typed.
//!
//! The server's delivery index is the archive's side: it holds every id
//! archived (or spooled, for an S3 archive) within the dedupe window, so a
//! pass reads no archive objects, and audits only deliveries first
//! attempted inside that window (less an hour), at most GitHub's 3 days.
//!
//! Incremental: each pass lists a hook's log only back to the newest
//! attempt the previous pass saw, less [`OVERLAP`] (GitHub's log can take a
//! few minutes to show an attempt), and carries the deliveries it could not
//! close (missing, pending) to the next pass in its state file; so 300,000
//! deliveries over 3 days cost ~3,000 list requests once, then a few an
//! hour. A lost delivery is logged as an error once.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::metrics::Metrics;
use super::DeliveryIndex;
use crate::audit::redeliver::{redeliver, Asking};
use crate::audit::state::AuditState;
use crate::audit::{Delivery, Log, Verdict};
use crate::github::{Client, Hook};

/// How far back past the newest attempt seen a pass lists again.
pub const OVERLAP: chrono::Duration = chrono::Duration::minutes(15);

/// GitHub keeps deliveries this long (github.com; Enterprise Server longer,
/// but nothing older can be in the index anyway).
pub const GITHUB_KEEPS: chrono::Duration = chrono::Duration::days(3);

/// What a background audit needs.
pub struct ReconcileConfig {
    pub hooks: Vec<Hook>,
    pub every: Duration,
    pub settle: chrono::Duration,
    /// How far back the index answers: the dedupe window.
    pub index_covers: chrono::Duration,
    /// `<archive or spool>/.ghreplay`.
    pub state_dir: PathBuf,
    pub asking: Asking,
}

/// Carried from pass to pass, on disk.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Carried {
    version: u32,
    /// Per hook: the newest attempt listed.
    listed_through: BTreeMap<String, DateTime<Utc>>,
    /// Deliveries not closed yet: missing or pending.
    open: Vec<Delivery>,
    /// Lost deliveries already reported, and when first.
    reported_lost: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Github(#[from] crate::github::GithubError),
    #[error(transparent)]
    State(#[from] crate::audit::state::StateError),
    #[error("the reconcile state {path}")]
    Carried {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The background audit: a pass at start, then every `every`, until the
/// server stops.
pub struct Reconciler {
    cfg: ReconcileConfig,
    client: Client,
    metrics: Arc<Metrics>,
    carried: Carried,
    asked: AuditState,
}

impl Reconciler {
    /// Loads the state of earlier passes (a file that cannot be read stops
    /// the start: it would otherwise be overwritten).
    pub fn new(
        cfg: ReconcileConfig,
        client: Client,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ReconcileError> {
        let path = cfg.state_dir.join("reconcile.json");
        let carried = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ReconcileError::Carried {
                path: path.clone(),
                source: e.into(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Carried {
                version: 1,
                ..Carried::default()
            },
            Err(source) => return Err(ReconcileError::Carried { path, source }),
        };
        let asked = AuditState::load(&cfg.state_dir.join("reconcile-asked.json"))?;
        Ok(Self {
            cfg,
            client,
            metrics,
            carried,
            asked,
        })
    }

    /// Runs passes until the task is aborted (the server stops); a pass cut
    /// short loses nothing: what was asked is saved as it is asked, and the
    /// next start lists again from the last pass that completed.
    pub async fn run(mut self, server: Arc<super::AppState>) {
        loop {
            match self.pass(&server.index).await {
                Ok(()) => Metrics::inc(&self.metrics.reconcile_passes),
                Err(e) => {
                    Metrics::inc(&self.metrics.reconcile_failures);
                    tracing::error!(
                        "reconcile: {e:#}; trying again in {} s",
                        self.cfg.every.as_secs()
                    );
                }
            }
            tokio::time::sleep(self.cfg.every).await;
        }
    }

    /// One pass: list what is new, judge against the index, ask for what
    /// is missing, save.
    async fn pass(&mut self, index: &DeliveryIndex) -> Result<(), ReconcileError> {
        let now = Utc::now();
        let horizon = now - GITHUB_KEEPS.min(self.cfg.index_covers - chrono::Duration::hours(1));
        let was_missing: HashSet<String> = self
            .carried
            .open
            .iter()
            .filter(|d| d.verdict(now - self.cfg.settle) == Verdict::Missing)
            .map(|d| d.guid.clone())
            .collect();
        let mut log = Log::default();
        for d in self.carried.open.drain(..) {
            log.carry(d);
        }
        for hook in &self.cfg.hooks {
            let label = hook.to_string();
            let since = self
                .carried
                .listed_through
                .get(&label)
                .map_or(horizon, |t| (*t - OVERLAP).max(horizon));
            let mut newest: Option<DateTime<Utc>> = None;
            self.client
                .deliveries(hook, since, |page| {
                    for a in &page {
                        newest = newest.max(Some(a.delivered_at));
                        log.add(&label, a);
                    }
                })
                .await?;
            if let Some(t) = newest {
                self.carried.listed_through.insert(label, t);
            }
        }
        log.retain_first_within(horizon, now + chrono::Duration::days(1));
        log.mark_archived_where(|guid| index.is_durable(guid), "(the server's index)");
        let judged = log.judge(now - self.cfg.settle);

        for d in judged.with(Verdict::Lost) {
            if self
                .carried
                .reported_lost
                .insert(d.guid.clone(), now)
                .is_none()
            {
                Metrics::inc(&self.metrics.reconcile_lost);
                tracing::error!(
                    guid = %d.guid, event = %d.event, hook = %d.hook, first_attempt = %d.first_at,
                    "reconcile: a delivery GitHub saw acknowledged is not in the archive (lost)"
                );
            }
        }
        let missing: Vec<&Delivery> = judged.with(Verdict::Missing).collect();
        let new_missing = missing
            .iter()
            .filter(|d| !was_missing.contains(&d.guid))
            .count();
        self.metrics
            .reconcile_missing_found
            .fetch_add(new_missing as u64, std::sync::atomic::Ordering::Relaxed);
        self.metrics
            .reconcile_missing_open
            .store(missing.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if !missing.is_empty() {
            tracing::warn!(
                missing = missing.len(),
                new = new_missing,
                "reconcile: deliveries GitHub could not deliver; asking for them again"
            );
        }
        let asked = redeliver(
            &self.client,
            &self.cfg.hooks,
            &judged,
            &mut self.asked,
            &self.cfg.asking,
        )
        .await?;
        self.metrics.reconcile_redeliveries_asked.fetch_add(
            asked.asked.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );

        self.carried.open = judged
            .all
            .into_iter()
            .filter(|(v, _)| matches!(v, Verdict::Missing | Verdict::Pending))
            .map(|(_, d)| d)
            .collect();
        self.carried.reported_lost.retain(|_, at| *at >= horizon);
        self.save()
    }

    fn save(&self) -> Result<(), ReconcileError> {
        let path = self.cfg.state_dir.join("reconcile.json");
        let err = |source| ReconcileError::Carried {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.cfg.state_dir).map_err(err)?;
        crate::checkpoint::replace_json(&path, &self.carried).map_err(err)
    }
}

/// Where a server keeps its reconcile state: beside the forward
/// checkpoints.
#[must_use]
pub fn state_dir(dir: &Path) -> PathBuf {
    dir.join(crate::source::STATE_DIR)
}
