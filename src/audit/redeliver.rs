//! Asking GitHub to redeliver the missing deliveries of an audit: paced,
//! never a futile one unless told, never one already in flight, and the
//! state saved after each ask (a run killed part way asks again for
//! nothing it already asked). `audit --redeliver` and `serve --reconcile`
//! both ask through here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::state::{AuditState, StateError};
use super::{Judged, Verdict};
use crate::github::{Client, GithubError, Hook};

/// How to ask.
#[derive(Debug, Clone, Copy)]
pub struct Asking {
    /// Also ask for deliveries the receiver refused with a 4xx it repeats.
    pub include_futile: bool,
    /// Requests per second.
    pub rate: f64,
}

/// What was asked, and what was not and why.
#[derive(Debug, Default, serde::Serialize)]
pub struct Redelivery {
    /// Where what was asked is remembered.
    pub state: PathBuf,
    /// Guids asked for now.
    pub asked: Vec<String>,
    /// Guids asked for earlier and not attempted by GitHub yet.
    pub in_flight: Vec<String>,
    /// Guids not asked for: the receiver would refuse them again.
    pub futile: Vec<String>,
    /// Guids whose ask failed, and why.
    pub failed: Vec<(String, String)>,
}

/// Asks for every missing delivery of `judged` that may be asked for.
pub async fn redeliver(
    client: &Client,
    hooks: &[Hook],
    judged: &Judged,
    state: &mut AuditState,
    how: &Asking,
) -> Result<Redelivery, StateError> {
    let by_label: HashMap<String, &Hook> = hooks.iter().map(|h| (h.to_string(), h)).collect();
    let mut r = Redelivery {
        state: state.path().to_owned(),
        ..Redelivery::default()
    };
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / how.rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop: Option<String> = None;
    for d in judged.with(Verdict::Missing) {
        if d.futile().is_some() && !how.include_futile {
            r.futile.push(d.guid.clone());
            continue;
        }
        if state.in_flight(d, Utc::now()).is_some() {
            r.in_flight.push(d.guid.clone());
            continue;
        }
        if let Some(why) = &stop {
            r.failed.push((d.guid.clone(), why.clone()));
            continue;
        }
        let Some(hook) = by_label.get(&*d.hook) else {
            continue;
        };
        pace.tick().await;
        match client.redeliver(hook, d.last_id).await {
            Ok(()) => {
                state.asked(d, Utc::now());
                state.save(Utc::now())?;
                r.asked.push(d.guid.clone());
            }
            Err(e) => {
                // Refused credentials or permissions refuse every ask alike.
                if matches!(
                    e,
                    GithubError::Refused {
                        status: 401 | 403 | 404,
                        ..
                    }
                ) {
                    stop = Some(e.to_string());
                }
                tracing::error!("{e}");
                r.failed.push((d.guid.clone(), e.to_string()));
            }
        }
    }
    state.save(Utc::now())?;
    Ok(r)
}
