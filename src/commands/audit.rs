//! `ghreplay audit`: GitHub's delivery log against the archive, and
//! `--redeliver` for what never arrived. GitHub first (so the archive is
//! read only as far as the log reaches), then the archive, then the asks.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use chrono::Utc;

use super::Outcome;
use crate::audit::redeliver::Redelivery;
use crate::audit::redeliver::{redeliver, Asking};
use crate::audit::state::AuditState;
use crate::audit::{Judged, Log, Matcher, ARCHIVE_MARGIN};
use crate::cli::{AuditArgs, GithubArgs, GlobalArgs};
use crate::config::{self, ReadConfig};
use crate::decode::DecodeOptions;
use crate::github::{AppKey, Client, Credentials, Hook};
use crate::model::{ArchiveLocation, Dedupe, Selection, TimeRange};
use crate::output::{self, AuditReport, Progress};
use crate::pipeline::Summary;
use crate::source::Store;

pub async fn run(global: &GlobalArgs, args: &AuditArgs) -> anyhow::Result<Outcome> {
    let now = Utc::now();
    let hooks = hooks(&args.hooks)?;
    let since = config::parse_time(&args.since, now)?;
    let until = match &args.until {
        Some(u) => config::parse_time(u, now)?,
        None => now,
    };
    if since >= until {
        bail!("--since {since} is not before --until {until}");
    }
    let settle = config::parse_span(&args.settle)
        .with_context(|| format!("--settle {:?}: expected a span (0s, 15m, 1h)", args.settle))?;
    let rate = config::request_rate("--rate", args.rate)?;
    let client = client(&args.github, &hooks)?;
    let archive = ArchiveLocation::parse(global.archive())?;
    let endpoint_url = global.endpoint_url.clone().filter(|u| !u.is_empty());
    // A missing archive is an error before any request is spent on GitHub.
    Store::open(&archive, endpoint_url.as_deref())
        .await
        .with_context(|| format!("opening {archive}"))?;

    let mut log = read_log(&client, &hooks, since, args, global.quiet).await?;
    log.retain_first_within(since, until);

    let (summary, log) = match_archive(global, args, archive, endpoint_url, since, log).await?;
    let settled_before = now - settle;
    let judged = log.judge(settled_before);

    let redelivery = if args.redeliver {
        let path = match &args.state {
            Some(p) => p.clone(),
            None => default_state_path()?,
        };
        let mut state = AuditState::load(&path)?;
        Some(
            redeliver(
                &client,
                &hooks,
                &judged,
                &mut state,
                &Asking {
                    include_futile: args.include_futile,
                    rate,
                },
            )
            .await?,
        )
    } else {
        None
    };

    let report = AuditReport {
        hooks: hooks.iter().map(ToString::to_string).collect(),
        since,
        until,
        settled_before,
        judged: &judged,
        requests: client.requests(),
        rate_limited_secs: client.rate_limited_secs(),
        redelivery: redelivery.as_ref(),
    };
    if args.json {
        output::audit_json(&mut output::stdout(), &report)?;
    } else {
        output::audit_table(&mut output::stdout(), &report)?;
    }
    if !global.quiet {
        output::summary("audit", &summary);
    }

    Ok(outcome(
        &judged,
        redelivery.as_ref(),
        &summary,
        args.read.allow_skipped,
    ))
}

/// GitHub's log of every hook, back to `since`, folded by guid.
async fn read_log(
    client: &Client,
    hooks: &[Hook],
    since: chrono::DateTime<Utc>,
    args: &AuditArgs,
    quiet: bool,
) -> anyhow::Result<Log> {
    let mut log = Log::default();
    let spinner = Progress::spinner("reading GitHub's delivery log", quiet);
    for hook in hooks {
        let label = hook.to_string();
        let mut listed = 0u64;
        client
            .deliveries(hook, since, |page| {
                listed += page.len() as u64;
                spinner.message(format!("reading {label}'s delivery log: {listed} attempts"));
                for a in page
                    .iter()
                    .filter(|a| selected(args, &a.event, a.action.as_deref()))
                {
                    log.add(&label, a);
                }
            })
            .await?;
    }
    spinner.finish();
    Ok(log)
}

/// Reads the archive around the range into the log: from an hour before its
/// start to an hour past the last attempt listed (a redelivery lands when it
/// is made), marking what it holds.
async fn match_archive(
    global: &GlobalArgs,
    args: &AuditArgs,
    archive: ArchiveLocation,
    endpoint_url: Option<String>,
    since: chrono::DateTime<Utc>,
    log: Log,
) -> anyhow::Result<(Summary, Log)> {
    let read_until = log
        .last_attempt()
        .map(|t| t + ARCHIVE_MARGIN)
        .filter(|t| *t < Utc::now());
    let cfg = ReadConfig {
        archive,
        endpoint_url,
        selection: Selection {
            time: TimeRange::new(Some(since - ARCHIVE_MARGIN), read_until)?,
            ..Selection::default()
        },
        dedupe: Dedupe::Off,
        fetch_jobs: args.read.fetch_jobs,
        read_memory: args.read.read_memory,
        part_size: args.read.fetch_part_size,
        decode: DecodeOptions {
            max_object_bytes: args.read.max_object_bytes,
        },
    };
    let (summary, matcher, result) = super::read_into(global, &cfg, Matcher::new(log)).await?;
    result?;
    if matcher.without_id > 0 {
        bail!(
            "{} of the {} archived records read have no delivery id (cztack's raw shape keeps none), \
             so the archive cannot say which deliveries it holds: audit needs Mozilla's or ghreplay's record shape",
            matcher.without_id,
            matcher.records
        );
    }
    Ok((summary, matcher.log))
}

/// The exit status: lost first, then missing (not asked for), then
/// skipped input.
fn outcome(
    judged: &Judged,
    redelivery: Option<&Redelivery>,
    summary: &Summary,
    allow_skipped: bool,
) -> Outcome {
    let totals = judged.totals();
    let unhandled = match redelivery {
        Some(r) => totals
            .missing
            .saturating_sub(r.asked.len() as u64 + r.in_flight.len() as u64),
        None => totals.missing,
    };
    if totals.lost > 0 {
        Outcome::Lost
    } else if unhandled > 0 {
        Outcome::Missing
    } else if summary.input_skipped() && !allow_skipped {
        Outcome::InputSkipped
    } else {
        Outcome::Done
    }
}

fn selected(args: &AuditArgs, event: &str, action: Option<&str>) -> bool {
    (args.events.is_empty() || args.events.iter().any(|e| e == event))
        && (args.actions.is_empty() || action.is_some_and(|a| args.actions.iter().any(|x| x == a)))
}

/// The hooks as typed, each once.
pub(super) fn hooks(typed: &[String]) -> anyhow::Result<Vec<Hook>> {
    let mut hooks: Vec<Hook> = Vec::new();
    for h in typed {
        let hook = Hook::parse(h)?;
        if !hooks.contains(&hook) {
            hooks.push(hook);
        }
    }
    Ok(hooks)
}

/// The API client, with the credentials the hooks need.
pub(super) fn client(g: &GithubArgs, hooks: &[Hook]) -> anyhow::Result<Client> {
    let token = match &g.github_token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading --github-token-file {}", f.display()))?
                .trim()
                .to_owned(),
        ),
        None => g.github_token.clone().filter(|t| !t.is_empty()),
    };
    let app = match (&g.github_app_id, &g.github_private_key) {
        (Some(id), Some(key)) => {
            let pem = std::fs::read(key)
                .with_context(|| format!("reading --github-private-key {}", key.display()))?;
            let key = AppKey::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--github-private-key {}: {e}", key.display()))?;
            Some((id.clone(), key))
        }
        _ => None,
    };
    let credentials = match (token, app) {
        (Some(token), Some((id, key))) => Credentials::Both { token, id, key },
        (Some(token), None) => Credentials::Token(token),
        (None, Some((id, key))) => Credentials::App { id, key },
        (None, None) => bail!(
            "no GitHub credentials: give --github-token-file FILE (or GITHUB_TOKEN) for repository and \
             organization hooks, --github-app-id and --github-private-key for the app hook"
        ),
    };
    // Say which credentials are missing before any request.
    for hook in hooks {
        let has = match &credentials {
            Credentials::Both { .. } => true,
            Credentials::Token(_) => !hook.is_app(),
            Credentials::App { .. } => hook.is_app(),
        };
        if !has {
            bail!(
                "--hook {hook}: {}",
                if hook.is_app() {
                    "the app hook needs --github-app-id and --github-private-key"
                } else {
                    "a repository or organization hook needs --github-token-file (or GITHUB_TOKEN)"
                }
            );
        }
    }
    let ca = super::read_ca_file(g.github_ca_file.as_deref())?;
    Ok(Client::new(&g.github_api_url, credentials, ca.as_deref())?)
}

/// `$XDG_STATE_HOME/ghreplay/audit.json`, or under `~/.local/state`.
fn default_state_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/state"),
            None => bail!("--redeliver needs --state FILE: neither XDG_STATE_HOME nor HOME is set"),
        },
    };
    Ok(base.join("ghreplay/audit.json"))
}
