//! Everything ghreplay prints: data to stdout, and progress and summaries
//! for people to stderr. Nothing else in the crate writes to either.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::audit::redeliver::Redelivery;
use crate::audit::{Counts, Delivery, Judged, Verdict};
#[cfg(feature = "duckdb")]
use crate::db::catalog::Canned;
use crate::deliver::{DeliveryCounts, Refused};
use crate::pipeline::Summary;
use crate::sink::count::CountSink;
#[cfg(feature = "duckdb")]
use crate::sink::database::LoadCounts;
use crate::source::{Plan, Skipped};

/// Buffered, locked stdout for data.
#[must_use]
pub fn stdout() -> impl Write + Send {
    io::BufWriter::with_capacity(1 << 20, io::stdout())
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
#[derive(Clone)]
pub struct Progress(ProgressBar);

impl Progress {
    /// Progress over bytes of objects, whose total grows as listing
    /// streams ahead of reading (until the first object is listed the bar
    /// is empty, not a full bar of zero bytes).
    #[must_use]
    pub fn bytes(quiet: bool) -> Self {
        if quiet {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(bar)
    }

    /// A spinner for work of unknown size (listing).
    #[must_use]
    pub fn spinner(message: &'static str, quiet: bool) -> Self {
        if quiet {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(bar)
    }

    /// Replaces a spinner's message (what it is doing, and how far).
    pub fn message(&self, message: String) {
        self.0.set_message(message);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl crate::pipeline::Progress for Progress {
    fn listed(&self, bytes: u64) {
        self.0.set_length(bytes);
    }

    fn advance(&self, bytes: u64, kept: u64) {
        self.0.inc(bytes);
        self.0.set_message(format!("{kept} events kept"));
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How many problem lines the summary prints before it only counts them.
const PROBLEM_LINES: usize = 20;

/// The end-of-run summary on stderr.
pub fn summary(command: &str, s: &Summary) {
    let mut err = io::stderr().lock();
    let e = &s.events;
    let mut text = format!(
        "ghreplay {command}: {} ({}, {} decompressed): {} read, {} kept\n",
        plural(s.objects, "object", "objects"),
        HumanBytes(s.bytes),
        HumanBytes(s.decompressed_bytes),
        plural(e.read, "event", "events"),
        e.kept,
    );
    let dropped = [
        (e.private, "private"),
        (e.selection, "not selected"),
        (e.duplicate, "duplicate delivery id"),
        (e.outside_range, "outside the time range"),
    ];
    if dropped.iter().any(|(n, _)| *n > 0) {
        let parts: Vec<String> = dropped
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, why)| format!("{n} {why}"))
            .collect();
        let _ = writeln!(text, "  dropped: {}", parts.join(", "));
    }
    if e.without_delivery_id > 0 {
        let _ = writeln!(
            text,
            "  {} had no delivery id, so could not be deduplicated",
            plural(e.without_delivery_id, "kept event", "kept events")
        );
    }
    if s.empty_objects > 0 {
        let _ = writeln!(
            text,
            "  {} held nothing",
            plural(s.empty_objects, "object", "objects")
        );
    }
    if s.input_skipped() {
        let _ = writeln!(
            text,
            "  SKIPPED: {}, {}, {} outside Firehose naming",
            plural(s.corrupt_objects, "corrupt object", "corrupt objects"),
            plural(s.corrupt_records, "corrupt record", "corrupt records"),
            plural(s.skipped_keys.len() as u64, "key", "keys"),
        );
        let lines = s
            .problems
            .iter()
            .map(|p| format!("    {}: {}\n", p.key, p.error))
            .chain(skipped_lines(&s.skipped_keys));
        let total = s.problems.len() + s.skipped_keys.len();
        for line in lines.take(PROBLEM_LINES) {
            text += &line;
        }
        if total > PROBLEM_LINES {
            let _ = writeln!(
                text,
                "    ... and {} more (-v logs every one)",
                total - PROBLEM_LINES
            );
        }
    }
    if s.output_closed {
        text += "  output closed early; stopped reading\n";
    }
    let _ = err.write_all(text.as_bytes());
}

fn skipped_lines(skipped: &[Skipped]) -> impl Iterator<Item = String> + '_ {
    skipped
        .iter()
        .map(|k| format!("    {}: {}\n", k.key, k.reason))
}

/// One hour's line of `ghreplay list`.
#[derive(Debug, serde::Serialize)]
pub struct HourRow {
    pub hour: String,
    pub objects: u64,
    pub bytes: u64,
}

/// `ghreplay list` as a table for people.
pub fn list_table(
    out: &mut impl Write,
    archive: &str,
    plan: &Plan,
    hours: &[HourRow],
    show_objects: bool,
) -> io::Result<()> {
    writeln!(out, "{:<20} {:>8} {:>12}", "HOUR (UTC)", "OBJECTS", "BYTES")?;
    for h in hours {
        writeln!(
            out,
            "{:<20} {:>8} {:>12}",
            h.hour,
            h.objects,
            HumanBytes(h.bytes).to_string()
        )?;
        if show_objects {
            for o in plan
                .objects
                .iter()
                .filter(|o| o.hour.format("%Y-%m-%dT%H:00Z").to_string() == h.hour)
            {
                writeln!(out, "  {}  {}", o.key, HumanBytes(o.size))?;
            }
        }
    }
    let bytes: u64 = plan.objects.iter().map(|o| o.size).sum();
    writeln!(
        out,
        "{}, {}, {} in {archive}",
        plural(hours.len() as u64, "hour", "hours"),
        plural(plan.objects.len() as u64, "object", "objects"),
        HumanBytes(bytes)
    )?;
    if !plan.skipped.is_empty() {
        writeln!(
            out,
            "skipped {} (not read by cat):",
            plural(plan.skipped.len() as u64, "key", "keys")
        )?;
        for line in skipped_lines(&plan.skipped) {
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// `republish --dry-run`: what would go where.
pub fn dry_run(out: &mut impl Write, target: &str, c: &CountSink) -> io::Result<()> {
    writeln!(
        out,
        "would send {} to {target}",
        plural(c.total, "event", "events")
    )?;
    if c.private > 0 {
        writeln!(out, "  of which {} PRIVATE (--include-private)", c.private)?;
    }
    for (title, counts) in [("EVENT", &c.by_event), ("REPOSITORY", &c.by_repository)] {
        writeln!(out, "\n{title:<40} {:>8}", "EVENTS")?;
        let mut rows: Vec<_> = counts.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (name, n) in rows {
            writeln!(out, "{name:<40} {n:>8}")?;
        }
    }
    Ok(())
}

/// `republish`'s delivery summary on stderr.
pub fn delivery(target: &str, c: &DeliveryCounts, refused: &[Refused], include_private: bool) {
    let mut text = format!("  to {target}: {} sent, {} confirmed", c.sent, c.confirmed);
    if c.already_sent > 0 {
        let _ = write!(
            text,
            ", {} already sent by an earlier run (checkpoint)",
            c.already_sent
        );
    }
    text.push('\n');
    if c.resumed_bound > 0 {
        let _ = writeln!(
            text,
            "  resumed from a checkpoint: the stopped run may already have delivered up to {} of the events sent first; they may arrive twice",
            c.resumed_bound
        );
    }
    if c.resent > 0 {
        let _ = writeln!(
            text,
            "  {} sent again after reconnecting: their first copy may also have arrived",
            plural(c.resent, "message was", "messages were")
        );
    }
    if include_private {
        let _ = writeln!(
            text,
            "  WARNING: --include-private: {} the privacy filter holds back {} sent",
            plural(c.private, "event", "events"),
            if c.private == 1 { "was" } else { "were" }
        );
    }
    // Grouped by reason, in the order each reason first came up.
    let mut reasons: Vec<&str> = Vec::new();
    for r in refused {
        if !reasons.contains(&r.reason.as_str()) {
            reasons.push(&r.reason);
        }
    }
    for reason in reasons {
        let these: Vec<&Refused> = refused.iter().filter(|r| r.reason == reason).collect();
        let _ = writeln!(
            text,
            "  SKIPPED: {} {reason}, not sent:",
            plural(these.len() as u64, "event", "events")
        );
        for r in these.iter().take(PROBLEM_LINES) {
            let _ = writeln!(
                text,
                "    {} at byte {}: {} {} ({})",
                r.object,
                r.offset,
                r.event,
                r.delivery_id.as_deref().unwrap_or("(no delivery id)"),
                r.detail
            );
        }
    }
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// What `load` did, after the read summary.
#[cfg(feature = "duckdb")]
pub fn loaded(db: &str, c: LoadCounts) {
    let _ = writeln!(
        io::stderr().lock(),
        "ghreplay load: {} added to {db}, {} already there",
        plural(c.added, "row", "rows"),
        plural(c.already_loaded, "event was", "events were"),
    );
}

/// `export`'s account of the partitions.
pub fn exported(location: &str, c: &crate::export::ExportCounts) {
    let mut text = format!(
        "ghreplay export: {} written to {location} ({}), {} with no row, {} already up to date\n",
        plural(c.written, "partition", "partitions"),
        plural(c.rows, "row", "rows"),
        c.empty,
        c.up_to_date,
    );
    if c.duplicates > 0 {
        let _ = writeln!(
            text,
            "  {} of a delivery id in the same hour not written",
            plural(c.duplicates, "repeat", "repeats")
        );
    }
    for p in &c.unfinished {
        let _ = writeln!(
            text,
            "  {p}: an object could not be read; written without it, and built again next run"
        );
    }
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// `query --list`: each canned query and what it answers.
#[cfg(feature = "duckdb")]
pub fn canned_list(out: &mut impl Write, canned: &[Canned]) -> io::Result<()> {
    let width = canned.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in canned {
        writeln!(out, "{:width$}  {}", c.name, c.description())?;
    }
    out.flush()
}

/// Everything `audit` prints.
pub struct AuditReport<'a> {
    pub hooks: Vec<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub settled_before: DateTime<Utc>,
    pub judged: &'a Judged,
    /// Requests sent to GitHub's API, and seconds spent waiting out its
    /// rate limits.
    pub requests: u64,
    pub rate_limited_secs: u64,
    pub redelivery: Option<&'a Redelivery>,
}

/// How many missing deliveries the table lists one by one.
const MISSING_LINES: usize = 20;
/// How many lost ones: more, as each calls for a look.
const LOST_LINES: usize = 100;

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `audit` for people: counts by hour and event, every lost delivery, the
/// first missing ones, and what was asked.
pub fn audit_table(out: &mut impl Write, r: &AuditReport<'_>) -> io::Result<()> {
    writeln!(
        out,
        "{:<18} {:<28} {:>7} {:>5} {:>8} {:>5} {:>8}",
        "HOUR (UTC)", "EVENT", "OK", "LATE", "MISSING", "LOST", "PENDING"
    )?;
    // An hour where every delivery is ok is one line; in any other hour
    // each event with a delivery that is not ok has its own line, and the
    // events that are all ok share one.
    let line = |out: &mut dyn Write, hour: &DateTime<Utc>, event: &str, c: &Counts| {
        writeln!(
            out,
            "{:<18} {:<28} {:>7} {:>5} {:>8} {:>5} {:>8}",
            hour.format("%Y-%m-%dT%H:00Z"),
            event,
            c.ok,
            c.late,
            c.missing,
            c.lost,
            c.pending
        )
    };
    let rows = r.judged.by_hour_and_event();
    let mut rows = rows.iter().peekable();
    while let Some(((hour, _), _)) = rows.peek() {
        let hour = *hour;
        let (mut fine, mut fine_counts) = (Vec::new(), Counts::default());
        let mut troubled = Vec::new();
        while let Some(((_, event), c)) = rows.next_if(|((h, _), _)| *h == hour) {
            if c.all_ok() {
                fine.push(event.as_str());
                fine_counts.merge(c);
            } else {
                troubled.push((event, c));
            }
        }
        for (event, c) in &troubled {
            line(out, &hour, event, c)?;
        }
        let label = match (fine.len(), troubled.is_empty()) {
            (0, _) => continue,
            (1, _) => fine[0].to_owned(),
            (n, true) => format!("({n} events, all ok)"),
            (n, false) => format!("({n} other events, all ok)"),
        };
        line(out, &hour, &label, &fine_counts)?;
    }
    let t = r.judged.totals();
    writeln!(
        out,
        "{} from {} to {} ({}): {} ok, {} late, {} missing{}, {} lost, {} pending (attempted after {})",
        plural(r.judged.all.len() as u64, "delivery", "deliveries"),
        utc(r.since),
        utc(r.until),
        r.hooks.join(", "),
        t.ok,
        t.late,
        t.missing,
        if t.futile > 0 {
            format!(" ({} futile)", t.futile)
        } else {
            String::new()
        },
        t.lost,
        t.pending,
        utc(r.settled_before),
    )?;
    writeln!(
        out,
        "GitHub: {}{}",
        plural(r.requests, "API request", "API requests"),
        if r.rate_limited_secs > 0 {
            format!(", {} s waiting out rate limits", r.rate_limited_secs)
        } else {
            String::new()
        }
    )?;
    deliveries(out, r.judged)?;
    match r.redelivery {
        Some(x) => {
            writeln!(
                out,
                "\nredelivery: asked for {}; {} still in flight from an earlier run; {} futile, not asked{}; state in {}",
                x.asked.len(),
                x.in_flight.len(),
                x.futile.len(),
                if x.futile.is_empty() { "" } else { " (--include-futile once the cause is fixed)" },
                x.state.display()
            )?;
            for (guid, why) in &x.failed {
                writeln!(out, "  not asked for {guid}: {why}")?;
            }
        }
        None if t.missing > t.futile => {
            writeln!(
                out,
                "\n--redeliver asks GitHub to send the missing ones again."
            )?;
        }
        None => {}
    }
    Ok(())
}

/// Every lost delivery, and the first missing ones.
fn deliveries(out: &mut dyn Write, judged: &Judged) -> io::Result<()> {
    let t = judged.totals();
    let line = |d: &Delivery| {
        format!(
            "  {}  {}{}  {}  first {}, {}: {}",
            d.guid,
            d.event,
            d.action
                .as_deref()
                .map(|a| format!(".{a}"))
                .unwrap_or_default(),
            d.hook,
            utc(d.first_at),
            plural(u64::from(d.attempts()), "attempt", "attempts"),
            d.failure(),
        )
    };
    let list = |out: &mut dyn Write, verdict, total: u64, most: usize| -> io::Result<()> {
        for d in judged.with(verdict).take(most) {
            writeln!(out, "{}", line(d))?;
            if let Some(why) = d.futile().filter(|_| verdict == Verdict::Missing) {
                writeln!(out, "      futile: {why}")?;
            }
        }
        if total > most as u64 {
            writeln!(
                out,
                "  ... and {} more (--json lists every one)",
                total - most as u64
            )?;
        }
        Ok(())
    };
    if t.lost > 0 {
        writeln!(
            out,
            "\nLOST: acknowledged by the receiver, but not in the archive:"
        )?;
        list(out, Verdict::Lost, t.lost, LOST_LINES)?;
    }
    if t.missing > 0 {
        writeln!(out, "\nmissing: never acknowledged, not in the archive:")?;
        list(out, Verdict::Missing, t.missing, MISSING_LINES)?;
    }
    Ok(())
}

/// `audit --json`: the counts, and every delivery that is not ok.
pub fn audit_json(out: &mut impl Write, r: &AuditReport<'_>) -> io::Result<()> {
    let deliveries: Vec<serde_json::Value> = r
        .judged
        .all
        .iter()
        .filter(|(v, _)| *v != Verdict::Ok)
        .map(|(v, d)| {
            let mut j = serde_json::to_value(d).unwrap_or_default();
            j["verdict"] = v.as_str().into();
            j["failure"] = d.failure().into();
            j["futile"] = d.futile().into();
            j
        })
        .collect();
    let by_hour: Vec<serde_json::Value> = r
        .judged
        .by_hour_and_event()
        .into_iter()
        .map(|((hour, event), c)| {
            let mut j = serde_json::to_value(c).unwrap_or_default();
            j["hour"] = utc(hour).into();
            j["event"] = event.into();
            j
        })
        .collect();
    let doc = serde_json::json!({
        "hooks": r.hooks,
        "since": utc(r.since),
        "until": utc(r.until),
        "settled_before": utc(r.settled_before),
        "counts": r.judged.totals(),
        "by_hour": by_hour,
        "github_requests": r.requests,
        "rate_limited_secs": r.rate_limited_secs,
        "redelivery": r.redelivery,
        "deliveries": deliveries,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Log;
    use crate::github::Attempt;
    use chrono::TimeZone as _;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, hour, 5, 0).unwrap()
    }

    fn attempt(id: u64, hour: u32, event: &str, code: u16) -> Attempt {
        Attempt {
            id,
            guid: format!("g{id}"),
            delivered_at: at(hour),
            redelivery: false,
            duration: None,
            status: if code == 200 {
                "OK".into()
            } else {
                format!("Invalid HTTP Response: {code}")
            },
            status_code: code,
            event: event.into(),
            action: None,
            installation_id: None,
            repository_id: None,
        }
    }

    #[test]
    fn the_audit_table_gives_an_all_ok_hour_one_line_and_splits_an_hour_with_trouble() {
        let mut log = Log::default();
        let attempts = [
            attempt(1, 10, "push", 200),
            attempt(2, 10, "release", 200),
            attempt(3, 11, "push", 200),
            attempt(4, 11, "issues", 200),
            attempt(5, 11, "release", 503),
            attempt(6, 12, "push", 200),
        ];
        for a in &attempts {
            log.add("org:o:1", a);
            if a.status_code == 200 {
                log.mark_archived(&a.guid, "2026/12/01/10/x.gz");
            }
        }
        let judged = log.judge(at(23));
        let report = AuditReport {
            hooks: vec!["org:o:1".into()],
            since: at(0),
            until: at(23),
            settled_before: at(23),
            judged: &judged,
            requests: 1,
            rate_limited_secs: 0,
            redelivery: None,
        };
        let mut out = Vec::new();
        audit_table(&mut out, &report).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("2026-"))
            .map(|l| l.split_whitespace().collect())
            .collect();
        let want: [&[&str]; 4] = [
            &[
                "2026-12-01T10:00Z",
                "(2",
                "events,",
                "all",
                "ok)",
                "2",
                "0",
                "0",
                "0",
                "0",
            ],
            &["2026-12-01T11:00Z", "release", "0", "0", "1", "0", "0"],
            &[
                "2026-12-01T11:00Z",
                "(2",
                "other",
                "events,",
                "all",
                "ok)",
                "2",
                "0",
                "0",
                "0",
                "0",
            ],
            &["2026-12-01T12:00Z", "push", "1", "0", "0", "0", "0"],
        ];
        assert_eq!(rows, want, "{text}");
        assert!(text.contains("503 (Invalid HTTP Response: 503)"), "{text}");
    }
}
