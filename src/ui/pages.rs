//! All the dashboard's HTML (maud: every `(value)` is escaped, so text
//! from payloads shows as text), its stylesheet and its one script.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::data::{
    Activity, Body, DeliveryDetail, DeliveryRow, DeliverySearch, Release, ReleaseFilter,
};
use super::{pretty, Ui, ACTIVITY_HOURS, QUIET_WARNING};
use crate::signature::{self, Secret};

pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Releases,
    Activity,
    Deliveries,
    None,
}

fn page(ui: &Ui, title: &str, tab: Tab, body: &Markup) -> Markup {
    let nav = [
        (Tab::Releases, "/", "Releases"),
        (Tab::Activity, "/activity", "Activity"),
        (Tab::Deliveries, "/deliveries", "Deliveries"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ghreplay" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header {
                    span.brand { "ghreplay" }
                    nav {
                        @for (t, href, label) in nav {
                            a href=(href) class=[(t == tab).then_some("current")] { (label) }
                        }
                    }
                    span.source { (ui.source) @if ui.public_only { " · public events only" } }
                }
                main { (body) }
            }
        }
    }
}

fn ok(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// A time: UTC in the page (and on hover), local time once the script runs.
fn time(t: Option<DateTime<Utc>>) -> Markup {
    html! {
        @if let Some(t) = t {
            time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                title=(t.format("%Y-%m-%d %H:%M:%S UTC")) {
                (t.format("%Y-%m-%d %H:%M UTC"))
            }
        } @else {
            span.muted { "unknown" }
        }
    }
}

fn opt(s: Option<&str>) -> Markup {
    html! {
        @if let Some(s) = s { (s) } @else { span.muted { "—" } }
    }
}

fn private_badge(private: Option<bool>, public: bool) -> Markup {
    html! {
        @if private == Some(true) {
            " " span.badge.private title="A private repository's event" { "private" }
        } @else if !public {
            " " span.badge.held title="The privacy filter holds this event back from public targets" { "held" }
        }
    }
}

fn delivery_href(key: &str) -> String {
    format!(
        "/delivery?key={}",
        form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>()
    )
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.trim().is_empty() {
            q.append_pair(k, v.trim());
        }
    }
    q.finish()
}

/// One release as a table row: the page's rows and the live feed's.
pub fn release_row(r: &Release) -> Markup {
    // Only a web address is linked: a payload's `javascript:` stays text.
    let url = r.url.as_deref().filter(|u| u.starts_with("https://"));
    html! {
        tr {
            td { (time(r.received_at)) }
            td { (opt(r.repository.as_deref())) (private_badge(r.private, r.public)) }
            td.tag {
                @match (url, r.tag.as_deref()) {
                    (Some(u), Some(tag)) => { a href=(u) rel="noreferrer" { (tag) } }
                    (_, tag) => { (opt(tag)) }
                }
            }
            td { (opt(r.name.as_deref())) }
            td { (opt(r.action.as_deref())) }
            td {
                @if r.draft == Some(true) { span.badge { "draft" } " " }
                @if r.prerelease == Some(true) { span.badge { "pre-release" } }
            }
            td { (opt(r.sender.as_deref())) }
            td { a href=(delivery_href(&r.key)) { "delivery" } }
        }
    }
}

pub fn releases(ui: &Ui, filter: &ReleaseFilter, rows: &[Release]) -> Response {
    let feed = format!(
        "/live/releases?{}",
        query(&[("repo", &filter.repo), ("q", &filter.q)])
    );
    ok(page(
        ui,
        "Releases",
        Tab::Releases,
        &html! {
            h1 { "Releases" }
            form.filters method="get" action="/" {
                input type="text" name="repo" placeholder="owner/name" value=(filter.repo) aria-label="Repository";
                input type="search" name="q" placeholder="tag, name or repository" value=(filter.q) aria-label="Text";
                button type="submit" { "Filter" }
                @if !filter.repo.is_empty() || !filter.q.is_empty() { a href="/" { "clear" } }
            }
            p.note {
                "The " span #count { (rows.len()) } " newest release deliveries"
                @if rows.len() >= super::data::PAGE_ROWS { " (older ones: narrow the filter)" }
                "."
                @if ui.live.is_some() { " " span.live #live-status { "New releases appear here as they arrive." } }
            }
            table.releases {
                thead { tr { th { "Received" } th { "Repository" } th { "Tag" } th { "Release" } th { "Action" } th {} th { "By" } th {} } }
                tbody #releases data-live=[ui.live.is_some().then_some(feed)] {
                    @for r in rows { (release_row(r)) }
                    @if rows.is_empty() {
                        tr #empty { td colspan="8" { "No release deliveries" @if !filter.repo.is_empty() || !filter.q.is_empty() { " match this filter" } " yet." } }
                    }
                }
            }
        },
    ))
}

fn ago(secs: f64) -> String {
    let s = std::time::Duration::from_secs_f64(secs.max(0.0)).as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} days", s / 86_400),
    }
}

const PALETTE: [&str; 7] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
];

/// The chart's top: 1, or the next of 2, 4, 6, 8, 10, 20, 40... at or
/// above `n`, so that half of it is a whole number.
fn nice_ceiling(n: u64) -> u64 {
    if n <= 1 {
        return 1;
    }
    let mut step = 1;
    loop {
        for m in [2, 4, 6, 8, 10] {
            if m * step >= n {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// Deliveries per hour by event, stacked bars in SVG drawn here.
fn chart(a: &Activity, until: DateTime<Utc>) -> Markup {
    let start = until - chrono::TimeDelta::hours(ACTIVITY_HOURS);
    // The busiest events get a colour each; the rest are "other".
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for c in &a.hours {
        *totals.entry(c.event.as_str()).or_default() += c.count;
    }
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
    ranked.sort_by(|p, q| q.1.cmp(&p.1).then(p.0.cmp(q.0)));
    let named: Vec<&str> = ranked
        .iter()
        .take(PALETTE.len() - 1)
        .map(|(e, _)| *e)
        .collect();
    let series = |event: &str| {
        named
            .iter()
            .position(|e| *e == event)
            .unwrap_or(PALETTE.len() - 1)
    };
    let slots = ACTIVITY_HOURS as usize;
    let mut stacks = vec![[0u64; PALETTE.len()]; slots];
    for c in &a.hours {
        let slot = (c.hour - start).num_hours();
        if let Ok(slot) = usize::try_from(slot) {
            if slot < slots {
                stacks[slot][series(&c.event)] += c.count;
            }
        }
    }
    let max = nice_ceiling(
        stacks
            .iter()
            .map(|s| s.iter().sum::<u64>())
            .max()
            .unwrap_or(0),
    );
    // Room above for the top label and right of the last bar for its hour.
    let (width, height, left, right, top, bottom) = (960.0, 220.0, 48.0, 24.0, 10.0, 24.0);
    let bar = (width - left - right) / slots as f64;
    let y = |v: f64| top + (height - top - bottom) * (1.0 - v / max as f64);
    // Gridlines at 0, half way (when it is a whole number) and the top.
    let grid: Vec<u64> = if max.is_multiple_of(2) {
        vec![0, max / 2, max]
    } else {
        vec![0, max]
    };
    let has_other = ranked.len() > named.len();
    // Each bar's segments, and an hour label every six hours.
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, (hour, stack)) in (0i64..)
        .map(|i| start + chrono::TimeDelta::hours(i))
        .zip(&stacks)
        .enumerate()
    {
        let x = left + i as f64 * bar;
        let mut base = 0u64;
        for (k, n) in stack.iter().enumerate().filter(|(_, n)| **n > 0) {
            let label = named.get(k).copied().unwrap_or("other");
            bars.push((
                x + 1.0,
                y((base + n) as f64),
                y(base as f64) - y((base + n) as f64),
                PALETTE[k],
                format!("{} · {label}: {n}", hour.format("%Y-%m-%d %H:00 UTC")),
            ));
            base += n;
        }
        if chrono::Timelike::hour(&hour) % 6 == 0 {
            labels.push((x + bar / 2.0, hour.format("%H:00").to_string()));
        }
    }
    html! {
        svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(format!("Deliveries per hour by event over the {ACTIVITY_HOURS} hours to {}", until.format("%Y-%m-%d %H:00 UTC"))) {
            @for v in &grid {
                line x1=(left) x2=(width - right) y1=(y(*v as f64)) y2=(y(*v as f64)) stroke="#ddd" {}
                text x=(left - 6.0) y=(y(*v as f64) + 4.0) text-anchor="end" font-size="11" fill="#555" { (v) }
            }
            @for (x, top, tall, colour, title) in &bars {
                rect x=(x) width=(bar - 2.0) y=(top) height=(tall) fill=(colour) { title { (title) } }
            }
            @for (x, label) in &labels {
                text x=(x) y=(height - 6.0) text-anchor="middle" font-size="11" fill="#555" { (label) }
            }
        }
        ul.legend {
            @for (k, e) in named.iter().enumerate() {
                li { svg width="12" height="12" { rect width="12" height="12" fill=(PALETTE[k]) {} } " " (e) }
            }
            @if has_other {
                li { svg width="12" height="12" { rect width="12" height="12" fill=(PALETTE[PALETTE.len() - 1]) {} } " other" }
            }
        }
    }
}

pub fn activity(ui: &Ui, a: &Activity, until: DateTime<Utc>) -> Response {
    let since_last = a
        .last_delivery
        .map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0);
    // Only a receiver can say deliveries stopped arriving; a file is history.
    let quiet = ui.live.is_some() && since_last.is_some_and(|s| s > QUIET_WARNING.as_secs_f64());
    let by_event = {
        let mut m: BTreeMap<&str, u64> = BTreeMap::new();
        for h in &a.hours {
            *m.entry(h.event.as_str()).or_default() += h.count;
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
        v
    };
    ok(page(
        ui,
        "Activity",
        Tab::Activity,
        &html! {
            h1 { "Activity" }
            section.freshness.warn[quiet] #freshness {
                @match (a.last_delivery, since_last) {
                    (Some(t), Some(s)) => {
                        "Last delivery " strong { (ago(s)) " ago" } " (" (time(Some(t))) ")."
                        @if quiet { " Nothing has arrived for over " (QUIET_WARNING.as_secs() / 60) " minutes: is the webhook still delivering?" }
                    }
                    _ => { "No delivery yet." }
                }
                " " (a.total) " deliveries in the database."
            }
            h2 { "Deliveries per hour, last " (ACTIVITY_HOURS) " hours" @if ui.live.is_none() { " of the file" } " (UTC)" }
            (chart(a, until))
            @if !by_event.is_empty() {
                table.compact {
                    thead { tr { th { "Event" } th.num { "Deliveries" } } }
                    tbody { @for (e, n) in &by_event { tr { td { a href=(format!("/deliveries?{}", query(&[("event", e)]))) { (e) } } td.num { (n) } } } }
                }
            }
            h2 { "Since the server started" }
            @match &ui.live {
                Some(live) => { (counters(&live.metrics)) }
                None => p.note { "Live counters are absent: these pages read a database file (ghreplay ui), not a running receiver. ghreplay serve --ui-listen shows them." },
            }
        },
    ))
}

fn counters(m: &crate::server::metrics::Metrics) -> Markup {
    use std::sync::atomic::Ordering::Relaxed;
    let forward = m
        .forward
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let rejected: Vec<_> = m.rejected().into_iter().filter(|(_, n)| *n > 0).collect();
    html! {
        table.compact #counters {
            tbody {
                tr { td { "Requests received" } td.num { (m.received.load(Relaxed)) } }
                tr { td { "Archived" } td.num { (m.archived.load(Relaxed)) } }
                tr { td { "Duplicates (answered, not archived again)" } td.num { (m.duplicates.load(Relaxed)) } }
                tr.warn[m.archive_failures.load(Relaxed) > 0] { td { "Archive write failures (answered 503)" } td.num { (m.archive_failures.load(Relaxed)) } }
                tr { td { "Rejected" } td.num { (rejected.iter().map(|(_, n)| n).sum::<u64>()) } }
                @for (reason, n) in &rejected { tr.sub { td { "rejected: " (reason) } td.num { (n) } } }
                tr { td { "Forwarded" } td.num { (m.forwarded.load(Relaxed)) } }
                tr.warn[m.forward_failures.load(Relaxed) > 0] { td { "Forward failures (retried)" } td.num { (m.forward_failures.load(Relaxed)) } }
                @for (target, g) in &forward {
                    tr.sub.warn[g.backlog > 0] { td { "backlog: " (target) } td.num { (g.backlog) @if g.lag_seconds > 0.0 { " (" (ago(g.lag_seconds)) " behind)" } } }
                }
                tr.warn[m.upload_backlog.load(Relaxed) > 0] { td { "Upload backlog (S3)" } td.num { (m.upload_backlog.load(Relaxed)) } }
                tr.warn[m.upload_failures.load(Relaxed) > 0] { td { "Upload failures (retried)" } td.num { (m.upload_failures.load(Relaxed)) } }
            }
        }
        p.note { "Also on /metrics of the webhook listener." }
    }
}

fn delivery_rows(rows: &[DeliveryRow]) -> Markup {
    html! {
        table.deliveries {
            thead { tr { th { "Received" } th { "Delivery" } th { "Event" } th { "Action" } th { "Repository" } th { "Sender" } } }
            tbody {
                @for d in rows {
                    tr {
                        td { (time(d.received_at)) }
                        td.mono { a href=(delivery_href(&d.key)) { (d.delivery_id.as_deref().unwrap_or(&d.key)) } }
                        td { (d.event) }
                        td { (opt(d.action.as_deref())) }
                        td { (opt(d.repository.as_deref())) (private_badge(d.private, d.public)) }
                        td { (opt(d.sender.as_deref())) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="6" { "No delivery matches." } } }
            }
        }
    }
}

pub fn deliveries(ui: &Ui, s: &DeliverySearch, rows: &[DeliveryRow]) -> Response {
    ok(page(
        ui,
        "Deliveries",
        Tab::Deliveries,
        &html! {
            h1 { "Deliveries" }
            form.filters method="get" action="/deliveries" {
                input.mono type="search" name="id" placeholder="delivery id (X-GitHub-Delivery)" value=(s.id) aria-label="Delivery id";
                input type="text" name="repo" placeholder="owner/name" value=(s.repo) aria-label="Repository";
                input type="text" name="event" placeholder="event" value=(s.event) aria-label="Event";
                button type="submit" { "Search" }
                @if !s.id.is_empty() || !s.repo.is_empty() || !s.event.is_empty() { a href="/deliveries" { "clear" } }
            }
            p.note { "The " (rows.len()) " newest matching deliveries." }
            (delivery_rows(rows))
        },
    ))
}

/// What re-checking a kept signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    Failed(String),
    /// Kept headers, but no signature among them.
    Unsigned,
    /// No secret at hand to check with.
    NotChecked,
    /// The record's shape keeps no headers (Mozilla's, cztack's).
    NotKept,
    /// The body could not be read to check it against.
    NoBody,
}

/// Re-verifies a kept body against its kept signature headers.
#[must_use]
pub fn verdict(secrets: &[Secret], headers: Option<&str>, body: Option<&[u8]>) -> Verdict {
    let Some(headers) =
        headers.and_then(|h| serde_json::from_str::<BTreeMap<String, String>>(h).ok())
    else {
        return Verdict::NotKept;
    };
    let sig256 = headers.get("x-hub-signature-256").map(String::as_bytes);
    let sig1 = headers.get("x-hub-signature").map(String::as_bytes);
    if sig256.is_none() && sig1.is_none() {
        return Verdict::Unsigned;
    }
    if secrets.is_empty() {
        return Verdict::NotChecked;
    }
    let Some(body) = body else {
        return Verdict::NoBody;
    };
    match signature::verify(secrets, body, sig256, sig1, true) {
        Ok(()) => Verdict::Verified,
        Err(e) => Verdict::Failed(e.to_string()),
    }
}

pub fn delivery(ui: &Ui, d: &DeliveryDetail) -> Response {
    let headers: Option<BTreeMap<String, String>> = d
        .headers
        .as_deref()
        .and_then(|h| serde_json::from_str(h).ok());
    let body = d.body.as_ref();
    let v = verdict(
        &ui.secrets,
        d.headers.as_deref(),
        body.ok().map(Body::signed),
    );
    let r = &d.row;
    let id = r.delivery_id.as_deref().unwrap_or(&r.key);
    ok(page(
        ui,
        &format!("Delivery {id}"),
        Tab::None,
        &html! {
            h1 { "Delivery " span.mono { (id) } }
            dl.facts {
                dt { "Event" } dd { (r.event) @if let Some(a) = &r.action { " · " (a) } }
                dt { "Repository" } dd { (opt(r.repository.as_deref())) (private_badge(r.private, r.public)) }
                dt { "Sender" } dd { (opt(r.sender.as_deref())) }
                dt { "Received" } dd { (time(r.received_at)) }
                dt { "Signature" } dd #verdict {
                    @match &v {
                        Verdict::Verified => { span.badge.ok { "verified" } " with the server's secret" }
                        Verdict::Failed(why) => { span.badge.bad { "failed" } " " (why) }
                        Verdict::Unsigned => { span.badge.bad { "unsigned" } " no signature header was received" }
                        Verdict::NotChecked => { span.badge { "not checked" } " no webhook secret at hand (ghreplay ui --secret-file checks)" }
                        Verdict::NotKept => { span.badge { "not kept" } " this record's shape (" (d.shape) ") keeps no headers" }
                        Verdict::NoBody => { span.badge { "not checked" } " the body could not be read" }
                    }
                }
                dt { "In the archive" } dd.mono { (d.object_key) ", record " (d.record_index) " (" (d.shape) ")" }
            }
            h2 { "Headers as received" }
            @match &headers {
                Some(h) => table.compact.mono #headers {
                    tbody {
                        @if let Some(id) = &r.delivery_id { tr { td { "x-github-delivery" } td { (id) } } }
                        tr { td { "x-github-event" } td { (r.event) } }
                        @for (k, v) in h { tr { td { (k) } td { (v) } } }
                    }
                },
                None => p.note { "This record's shape keeps no headers." },
            }
            h2 { "Payload" }
            @match body {
                Ok(b) => pre.payload #payload { (pretty::json(&b.payload)) },
                Err(why) => p.note #payload { "Not shown: " (why) "." },
            }
        },
    ))
}

pub fn login(ui: &Ui, problem: Option<&str>, status: StatusCode) -> Response {
    let markup = page(
        ui,
        "Sign in",
        Tab::None,
        &html! {
            h1 { "Sign in" }
            p { "This dashboard needs its token (the contents of --ui-token-file)." }
            @if let Some(p) = problem { p.error { (p) } }
            form.login method="post" action="/login" {
                input type="password" name="token" autocomplete="current-password" aria-label="Token" autofocus;
                button type="submit" { "Sign in" }
            }
        },
    );
    (status, Html(markup.into_string())).into_response()
}

pub fn error(status: StatusCode, message: &str) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (status) " · ghreplay" } link rel="stylesheet" href="/assets/app.css"; }
            body { main { h1 { (status) } p { (message) } p { a href="/" { "Releases" } } } }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_top_halves_to_a_whole_number() {
        let tops: Vec<u64> = [0, 1, 2, 3, 5, 9, 11, 95, 101, 999_999]
            .into_iter()
            .map(nice_ceiling)
            .collect();
        assert_eq!(tops, [1, 1, 2, 4, 6, 10, 20, 100, 200, 1_000_000]);
    }

    #[test]
    fn verdicts_from_kept_headers() {
        let secret = vec![Secret::new("s3cret")];
        let body = br#"{"zen":"x"}"#;
        let good = format!(
            r#"{{"x-hub-signature-256":"{}"}}"#,
            signature::sign_sha256(b"s3cret", body)
        );
        assert_eq!(verdict(&secret, Some(&good), Some(body)), Verdict::Verified);
        assert_eq!(verdict(&secret, Some(&good), None), Verdict::NoBody);
        assert!(matches!(
            verdict(&secret, Some(&good), Some(b"{}")),
            Verdict::Failed(_)
        ));
        assert_eq!(verdict(&[], Some(&good), Some(body)), Verdict::NotChecked);
        assert_eq!(
            verdict(&secret, Some(r#"{"user-agent":"x"}"#), Some(body)),
            Verdict::Unsigned
        );
        assert_eq!(verdict(&secret, None, Some(body)), Verdict::NotKept);
    }

    #[test]
    fn payload_text_is_escaped_and_only_https_is_linked() {
        let r = Release {
            key: "k".into(),
            received_at: None,
            repository: Some("o/r".into()),
            tag: Some("v1".into()),
            name: Some("<img src=x onerror=alert(1)>".into()),
            action: Some("published".into()),
            draft: None,
            prerelease: None,
            sender: None,
            url: Some("javascript:alert(1)".into()),
            private: Some(false),
            public: true,
        };
        let html = release_row(&r).into_string();
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }
}
