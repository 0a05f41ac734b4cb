//! What the dashboard's pages show, read from a `deliveries` table
//! (`queries/schema.sql`): the UI database `serve` keeps, or a file made by
//! `load`. Every page is one query here; the pages never write SQL.

use std::fmt::Write as _;

use chrono::{DateTime, TimeZone as _, Utc};
use duckdb::{params_from_iter, Connection, OptionalExt as _};

use crate::db::DbError;

/// Rows a list page shows at most.
pub const PAGE_ROWS: usize = 200;

/// A time as DuckDB gives it to us (`epoch_us`), as UTC.
fn at(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.and_then(|m| Utc.timestamp_micros(m).single())
}

/// One `release` delivery, as the Releases page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The row key (the delivery id, where archived): links to its page.
    pub key: String,
    pub received_at: Option<DateTime<Utc>>,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub name: Option<String>,
    pub action: Option<String>,
    pub draft: Option<bool>,
    pub prerelease: Option<bool>,
    pub sender: Option<String>,
    /// `release.html_url`, as the payload says (the page links it only
    /// when it is an `https://` URL).
    pub url: Option<String>,
    pub private: Option<bool>,
    /// The privacy filter's verdict.
    pub public: bool,
}

/// The Releases page's filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ReleaseFilter {
    /// `owner/name`, exactly.
    #[serde(default)]
    pub repo: String,
    /// Found in the repository, tag or release name, ignoring case.
    #[serde(default)]
    pub q: String,
}

impl ReleaseFilter {
    /// Whether a release passes; the same test the query makes, for
    /// releases pushed live.
    #[must_use]
    pub fn admits(&self, r: &Release) -> bool {
        let q = self.q.trim().to_lowercase();
        let found =
            |s: &Option<String>| s.as_deref().is_some_and(|s| s.to_lowercase().contains(&q));
        (self.repo.trim().is_empty() || r.repository.as_deref() == Some(self.repo.trim()))
            && (q.is_empty() || found(&r.repository) || found(&r.tag) || found(&r.name))
    }
}

const RELEASE_COLUMNS: &str = "row_key, epoch_us(received_at), repository, \
    payload->>'$.release.tag_name', payload->>'$.release.name', action, \
    TRY_CAST(payload->>'$.release.draft' AS BOOLEAN), \
    TRY_CAST(payload->>'$.release.prerelease' AS BOOLEAN), sender, \
    payload->>'$.release.html_url', private, public";

fn release_rows(conn: &Connection, sql: &str, params: &[String]) -> Result<Vec<Release>, DbError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map(params_from_iter(params), |r| {
            Ok(Release {
                key: r.get(0)?,
                received_at: at(r.get(1)?),
                repository: r.get(2)?,
                tag: r.get(3)?,
                name: r.get(4)?,
                action: r.get(5)?,
                draft: r.get(6)?,
                prerelease: r.get(7)?,
                sender: r.get(8)?,
                url: r.get(9)?,
                private: r.get(10)?,
                public: r.get(11)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The newest releases that pass `filter`, newest first.
pub fn releases(
    conn: &Connection,
    filter: &ReleaseFilter,
    public_only: bool,
) -> Result<Vec<Release>, DbError> {
    // Numbered parameters: the search text is used three times.
    let mut wheres = String::from("event = 'release'");
    let mut args = Vec::new();
    if public_only {
        wheres.push_str(" AND public");
    }
    if !filter.repo.trim().is_empty() {
        args.push(filter.repo.trim().to_owned());
        let _ = write!(wheres, " AND repository = ${}", args.len());
    }
    let text = filter.q.trim().to_lowercase();
    if !text.is_empty() {
        args.push(text);
        let n = args.len();
        let _ = write!(
            wheres,
            " AND (contains(lower(coalesce(repository, '')), ${n}) \
             OR contains(lower(coalesce(payload->>'$.release.tag_name', '')), ${n}) \
             OR contains(lower(coalesce(payload->>'$.release.name', '')), ${n}))"
        );
    }
    // Find the time of the page's last row from narrow columns first; then
    // only rows at or after it are read whole, and DuckDB's zone maps skip
    // every older row group (rows are appended in archive order), so the
    // payloads of a million rows are never touched. (Picking the row keys in
    // a subquery instead read them all: 4.6 s over a million rows.)
    let cutoff: Option<i64> = conn
        .query_row(
            &format!(
                "SELECT epoch_us(received_at) FROM deliveries WHERE {wheres} \
                 ORDER BY received_at DESC NULLS LAST LIMIT 1 OFFSET {}",
                PAGE_ROWS - 1
            ),
            params_from_iter(&args),
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if let Some(micros) = cutoff {
        let _ = write!(wheres, " AND received_at >= make_timestamp({micros})");
    }
    let sql = format!(
        "SELECT {RELEASE_COLUMNS} FROM deliveries WHERE {wheres} \
         ORDER BY received_at DESC NULLS LAST, row_key LIMIT {PAGE_ROWS}"
    );
    release_rows(conn, &sql, &args)
}

/// The releases among the rows keyed `keys` (just added, to push live).
pub fn releases_by_key(conn: &Connection, keys: &[String]) -> Result<Vec<Release>, DbError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; keys.len()].join(", ");
    let sql = format!(
        "SELECT {RELEASE_COLUMNS} FROM deliveries WHERE event = 'release' AND row_key IN ({marks}) \
         ORDER BY received_at NULLS FIRST, row_key"
    );
    release_rows(conn, &sql, keys)
}

/// Deliveries in one hour of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    pub hour: DateTime<Utc>,
    pub event: String,
    pub count: u64,
}

/// The Activity page's history: deliveries per hour by event in
/// `[until - hours, until)`, and the newest delivery of all.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub hours: Vec<HourCount>,
    pub last_delivery: Option<DateTime<Utc>>,
    pub total: u64,
}

/// The newest delivery's time and the number of rows.
pub fn newest(
    conn: &Connection,
    public_only: bool,
) -> Result<(Option<DateTime<Utc>>, u64), DbError> {
    let sql = format!(
        "SELECT epoch_us(max(received_at)), count(*) FROM deliveries{}",
        if public_only { " WHERE public" } else { "" }
    );
    let (last, total): (Option<i64>, i64) =
        conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((at(last), total.unsigned_abs()))
}

pub fn activity(
    conn: &Connection,
    until: DateTime<Utc>,
    hours: i64,
    public_only: bool,
) -> Result<Vec<HourCount>, DbError> {
    let from = until - chrono::Duration::hours(hours);
    let sql = format!(
        "SELECT epoch_us(date_trunc('hour', received_at)), event, count(*) FROM deliveries \
         WHERE received_at >= make_timestamp(?) AND received_at < make_timestamp(?){} \
         GROUP BY ALL ORDER BY 1, 2",
        if public_only { " AND public" } else { "" }
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([from.timestamp_micros(), until.timestamp_micros()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .filter_map(|r| match r {
            Ok((h, event, n)) => at(Some(h)).map(|hour| {
                Ok(HourCount {
                    hour,
                    event,
                    count: n.unsigned_abs(),
                })
            }),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One line of the Deliveries page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub key: String,
    pub delivery_id: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub sender: Option<String>,
    pub private: Option<bool>,
    pub public: bool,
}

/// The Deliveries page's search: each field given must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct DeliverySearch {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub repo: String,
    #[serde(default)]
    pub event: String,
}

const DELIVERY_COLUMNS: &str =
    "row_key, delivery_id, epoch_us(received_at), event, action, repository, sender, private, public";

fn delivery_row(r: &duckdb::Row<'_>) -> duckdb::Result<DeliveryRow> {
    Ok(DeliveryRow {
        key: r.get(0)?,
        delivery_id: r.get(1)?,
        received_at: at(r.get(2)?),
        event: r.get(3)?,
        action: r.get(4)?,
        repository: r.get(5)?,
        sender: r.get(6)?,
        private: r.get(7)?,
        public: r.get(8)?,
    })
}

/// The newest deliveries matching `search`, newest first.
pub fn deliveries(
    conn: &Connection,
    search: &DeliverySearch,
    public_only: bool,
) -> Result<Vec<DeliveryRow>, DbError> {
    let mut wheres = vec!["true".to_owned()];
    let mut args = Vec::new();
    for (column, value) in [
        ("delivery_id", &search.id),
        ("repository", &search.repo),
        ("event", &search.event),
    ] {
        if !value.trim().is_empty() {
            wheres.push(format!("{column} = ?"));
            args.push(value.trim().to_owned());
        }
    }
    if public_only {
        wheres.push("public".to_owned());
    }
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {} \
         ORDER BY received_at DESC NULLS LAST, row_key LIMIT {PAGE_ROWS}",
        wheres.join(" AND ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(&args), delivery_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Everything one delivery's page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryDetail {
    pub row: DeliveryRow,
    /// The kept request headers as a JSON object (ghreplay's records).
    pub headers: Option<String>,
    /// `Err` says why it is not here: [`Missing::InArchive`] where the row
    /// keeps it only in the archive (the dashboard's own database, for all
    /// but releases), read from there by [`super::archived`].
    pub body: Result<Body, Missing>,
    pub object_key: String,
    pub record_index: u32,
    pub shape: String,
}

/// Why a delivery's page has no body to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// The row's payload is NULL: not read from the archive (yet).
    #[error("this database keeps it only in the archive")]
    InArchive,
    /// The archive was asked, and could not give it.
    #[error("{0}")]
    Unreadable(String),
}

/// A delivery's payload, and the body as received where it is not the
/// payload's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub payload: String,
    pub raw_body: Option<Vec<u8>>,
}

impl Body {
    /// The bytes GitHub signed.
    #[must_use]
    pub fn signed(&self) -> &[u8] {
        self.raw_body.as_deref().unwrap_or(self.payload.as_bytes())
    }
}

/// One delivery by row key. `with_headers` is false for a file loaded
/// before the table had `headers` and `raw_body`.
pub fn delivery(
    conn: &Connection,
    key: &str,
    public_only: bool,
    with_headers: bool,
) -> Result<Option<DeliveryDetail>, DbError> {
    let extra = if with_headers {
        "headers, raw_body"
    } else {
        "NULL::VARCHAR, NULL::BLOB"
    };
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS}, payload, {extra}, object_key, record_index, shape \
         FROM deliveries WHERE row_key = ?{}",
        if public_only { " AND public" } else { "" }
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query_map([key], |r| {
        let payload: Option<String> = r.get(9)?;
        Ok(DeliveryDetail {
            row: delivery_row(r)?,
            headers: r.get(10)?,
            body: match payload {
                Some(payload) => Ok(Body {
                    payload,
                    raw_body: r.get(11)?,
                }),
                None => Err(Missing::InArchive),
            },
            object_key: r.get(12)?,
            record_index: r.get(13)?,
            shape: r.get(14)?,
        })
    })?;
    Ok(rows.next().transpose()?)
}

/// Whether `deliveries` has the columns added for the dashboard.
pub fn has_headers(conn: &Connection) -> Result<bool, DbError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'deliveries' AND column_name = 'headers'",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` releases, `tied` of them at the same newest second, and one with
    /// no time at all.
    fn table(n: usize, tied: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::db::SCHEMA).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO deliveries (row_key, event, public, received_at, object_key, record_index, shape, payload) \
             SELECT printf('r%05d', i), 'release', true, \
                    TIMESTAMP '2026-01-01' + to_seconds(CASE WHEN i < {tied} THEN {n} ELSE i END), \
                    'k', i, 'mozilla', json_object('release', json_object('tag_name', 'v' || i)) \
             FROM range({n}) t(i); \
             INSERT INTO deliveries (row_key, event, public, object_key, record_index, shape, payload) \
             VALUES ('untimed', 'release', true, 'k', 0, 'mozilla', '{{}}');"
        ))
        .unwrap();
        conn
    }

    #[test]
    fn the_releases_page_is_the_newest_rows_ties_by_key_and_untimed_last() {
        let keys = |conn: &Connection| -> Vec<String> {
            releases(conn, &ReleaseFilter::default(), false)
                .unwrap()
                .into_iter()
                .map(|r| r.key)
                .collect()
        };
        // More than a page, with ties across the page's last time.
        let keys_of_many = keys(&table(1000, 250));
        let expected: Vec<String> = (0..PAGE_ROWS).map(|i| format!("r{i:05}")).collect();
        assert_eq!(
            keys_of_many, expected,
            "the 250 tied newest, by key, cut at a page"
        );

        // Fewer than a page: every row, the untimed one last.
        let few = keys(&table(10, 0));
        assert_eq!(few.len(), 11);
        assert_eq!((few[0].as_str(), few[10].as_str()), ("r00009", "untimed"));
    }
}
