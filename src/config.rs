//! Raw flags in, validated domain types out: where the archive is, the time
//! range, the selection. Functions downstream take these, never clap structs.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::cli::{EventArgs, GlobalArgs, RangeArgs, ReadArgs, SelectArgs};
use crate::decode::DecodeOptions;
use crate::model::{ArchiveLocation, Dedupe, ModelError, Selection, TimeRange};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read time {0:?}: use RFC 3339 (2026-01-15T10:00:00Z), a date (2026-01-15), an hour (2026-01-15T10) or a span back from now (30m, 6h, 2d, 1w)")]
    Time(String),
    #[error("--dedupe-window {0:?}: expected a span (48h, 7d) or `all`")]
    Span(String),
    #[error("--retry-for {0:?}: expected a span (30s, 2m)")]
    RetryFor(String),
    #[error("--rate {0}: expected a positive number of messages per second")]
    Rate(f64),
    #[error("{flag} {rate}: expected a positive number of requests per second")]
    RequestRate { flag: &'static str, rate: f64 },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A pace in requests per second (`audit --rate`, `serve
/// --reconcile-rate`): positive and finite.
pub fn request_rate(flag: &'static str, rate: f64) -> Result<f64, ConfigError> {
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(ConfigError::RequestRate { flag, rate })
    }
}

/// Parses a point in time: RFC 3339, `YYYY-MM-DD[THH[:MM[:SS]]]` in UTC, or
/// a span back from `now` (`90s`, `30m`, `6h`, `2d`, `1w`), or `now`.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ConfigError> {
    let s = s.trim();
    let err = || ConfigError::Time(s.to_owned());
    if s == "now" {
        return Ok(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if s.ends_with(|c: char| c.is_ascii_alphabetic())
        && s.starts_with(|c: char| c.is_ascii_digit() || c == '-')
    {
        return parse_span(s)
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(err);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| Utc.from_utc_datetime(&t))
            .ok_or_else(err);
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Some((date, hour)) = s.split_once('T') {
        if let (Ok(d), Ok(h)) = (NaiveDate::parse_from_str(date, "%Y-%m-%d"), hour.parse()) {
            return d
                .and_hms_opt(h, 0, 0)
                .map(|t| Utc.from_utc_datetime(&t))
                .ok_or_else(err);
        }
    }
    Err(err())
}

/// Parses a span: a whole number and a unit, `s`, `m`, `h`, `d` or `w`.
#[must_use]
pub fn parse_span(s: &str) -> Option<Duration> {
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let span = match unit {
        's' => Duration::try_seconds(n),
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        'w' => Duration::try_weeks(n),
        _ => None,
    };
    span.filter(|d| *d >= Duration::zero())
}

/// Everything the read path needs.
#[derive(Debug, Clone)]
pub struct ReadConfig {
    pub archive: ArchiveLocation,
    /// S3-compatible endpoint (moto, `MinIO`...); `None` uses AWS's.
    pub endpoint_url: Option<String>,
    pub selection: Selection,
    /// What to do with repeated delivery ids (Firehose delivers at least once).
    pub dedupe: Dedupe,
    /// Objects fetched at once; 0: set from the measured round trip.
    pub fetch_jobs: usize,
    /// The most compressed bytes fetched and not yet decoded.
    pub read_memory: u64,
    /// Objects larger than this are fetched from S3 in ranged parts.
    pub part_size: u64,
    pub decode: DecodeOptions,
}

/// Resolves `--since`/`--until`.
pub fn time_range(args: &RangeArgs, now: DateTime<Utc>) -> Result<TimeRange, ConfigError> {
    let at = |s: &Option<String>| s.as_deref().map(|s| parse_time(s, now)).transpose();
    Ok(TimeRange::new(at(&args.since)?, at(&args.until)?)?)
}

/// Resolves `cat`'s, `load`'s and `query`'s reading flags.
pub fn events_config(global: &GlobalArgs, a: &EventArgs) -> Result<ReadConfig, ConfigError> {
    read_config(global, &a.range, &a.select, a.public_only, &a.read)
}

/// Resolves the flags of a command that reads events.
pub fn read_config(
    global: &GlobalArgs,
    range: &RangeArgs,
    select: &SelectArgs,
    public_only: bool,
    read: &ReadArgs,
) -> Result<ReadConfig, ConfigError> {
    let selection = Selection {
        time: time_range(range, Utc::now())?,
        events: select.events.clone(),
        actions: select.actions.clone(),
        repos: Vec::new(),
        public_only,
        shard: None,
    }
    .with_repos(&select.repos)?;
    Ok(ReadConfig {
        archive: ArchiveLocation::parse(global.archive())?,
        endpoint_url: global.endpoint_url.clone().filter(|u| !u.is_empty()),
        selection,
        dedupe: if select.keep_duplicates {
            Dedupe::Off
        } else if select.dedupe_window == "all" {
            Dedupe::All
        } else {
            Dedupe::Window(
                parse_span(&select.dedupe_window)
                    .ok_or_else(|| ConfigError::Span(select.dedupe_window.clone()))?,
            )
        },
        fetch_jobs: read.fetch_jobs,
        read_memory: read.read_memory,
        part_size: read.fetch_part_size,
        decode: DecodeOptions {
            max_object_bytes: read.max_object_bytes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s, now()).unwrap()
    }

    #[test]
    fn accepts_rfc3339_dates_hours_and_spans() {
        assert_eq!(
            at("2026-01-15T10:00:00Z"),
            Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap()
        );
        assert_eq!(at("2026-01-15T12:00:00+02:00"), at("2026-01-15T10:00:00Z"));
        assert_eq!(at("2026-01-15"), at("2026-01-15T00:00:00Z"));
        assert_eq!(at("2026-01-15T10"), at("2026-01-15T10:00:00Z"));
        assert_eq!(at("2026-01-15T10:30"), at("2026-01-15T10:30:00Z"));
        assert_eq!(at("6h"), at("2026-11-24T06:00:00Z"));
        assert_eq!(at("2d"), at("2026-11-22T12:00:00Z"));
        assert_eq!(at("now"), now());
    }

    #[test]
    fn rejects_what_it_cannot_read_with_a_hint() {
        for bad in ["yesterday", "6x", "-3h", "2026-13-01", "2026-01-15T25", ""] {
            let e = parse_time(bad, now()).unwrap_err().to_string();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn range_is_half_open_and_must_not_be_empty() {
        let r = TimeRange::new(Some(at("2026-01-15T10")), Some(at("2026-01-15T11"))).unwrap();
        assert!(r.contains(at("2026-01-15T10:00:00Z")));
        assert!(!r.contains(at("2026-01-15T11:00:00Z")));
        assert!(TimeRange::new(Some(at("2026-01-15T11")), Some(at("2026-01-15T10"))).is_err());
        let l = r.listing();
        assert_eq!(
            (l.since, l.until),
            (Some(at("2026-01-15T09")), Some(at("2026-01-15T12")))
        );
    }

    #[test]
    fn archive_locations() {
        assert_eq!(
            ArchiveLocation::parse("s3://b/kinesis/").unwrap(),
            ArchiveLocation::S3 {
                bucket: "b".into(),
                prefix: "kinesis/".into()
            }
        );
        assert_eq!(
            ArchiveLocation::parse("s3://b").unwrap(),
            ArchiveLocation::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert!(ArchiveLocation::parse("s3:///x").is_err());
        assert_eq!(
            ArchiveLocation::parse("/nonexistent/dir/kinesis").unwrap(),
            ArchiveLocation::Local {
                dir: "/nonexistent/dir".into(),
                prefix: "kinesis".into()
            }
        );
    }

    #[test]
    fn repos_must_be_owner_slash_name() {
        let s = Selection::default()
            .with_repos(&["Octo/Hello".into()])
            .unwrap();
        assert_eq!(s.repos, ["octo/hello"]);
        for bad in ["octo", "/x", "a/b/c", "a/"] {
            assert!(
                Selection::default().with_repos(&[bad.into()]).is_err(),
                "{bad}"
            );
        }
    }
}
