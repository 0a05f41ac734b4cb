//! A query's result as people or programs want it: an aligned table, CSV
//! with a header, or JSON (one object per row, per line). Arrow's writers do
//! the typing, so every DuckDB type prints faithfully.

use std::io::Write;

use arrow::record_batch::RecordBatch;

use super::{DbError, QueryResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table, for people.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row, one per line (NDJSON).
    Json,
}

/// Writes the result; a reader that goes away (`| head`) is a normal end.
pub fn write(result: &QueryResult, format: Format, out: &mut impl Write) -> Result<(), DbError> {
    let mut out = PipeWatch {
        inner: out,
        closed: false,
    };
    match write_all(result, format, &mut out) {
        Err(_) if out.closed => Ok(()),
        r => r,
    }
}

fn write_all(result: &QueryResult, format: Format, out: &mut impl Write) -> Result<(), DbError> {
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches_with_schema(
                result.schema.clone(),
                &result.batches,
            )?;
            writeln!(out, "{table}").map_err(arrow::error::ArrowError::from)?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if result.batches.is_empty() {
                w.write(&RecordBatch::new_empty(result.schema.clone()))?;
            }
            for b in &result.batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            // Every column on every line, null or not, as `cat` does.
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(&mut *out);
            for b in &result.batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    out.flush().map_err(arrow::error::ArrowError::from)?;
    Ok(())
}

/// Remembers a broken pipe, which Arrow's CSV writer reports only as text.
struct PipeWatch<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeWatch<W> {
    fn watch<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
        }
        r
    }
}

impl<W: Write> Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.watch(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.watch(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(sql: &str) -> QueryResult {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        super::super::run(&conn, sql).unwrap()
    }

    fn text(sql: &str, f: Format) -> String {
        let mut out = Vec::new();
        write(&result(sql), f, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const SQL: &str = "SELECT * FROM (VALUES ('a,b', 2, NULL::BOOLEAN), ('c', 3, true)) t(name, n, flag) ORDER BY n";

    #[test]
    fn csv_quotes_and_keeps_the_header_even_with_no_rows() {
        assert_eq!(
            text(SQL, Format::Csv),
            "name,n,flag\n\"a,b\",2,\nc,3,true\n"
        );
        assert_eq!(
            text(&format!("{SQL} LIMIT 0"), Format::Csv),
            "name,n,flag\n"
        );
    }

    #[test]
    fn json_is_one_typed_object_per_line() {
        let out = text(SQL, Format::Json);
        let rows: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["name"], "a,b");
        assert_eq!(rows[1]["n"], 3);
        assert_eq!(rows[1]["flag"], true);
        assert_eq!(rows[0]["flag"], serde_json::Value::Null);
        assert_eq!(rows[0].as_object().unwrap().len(), 3, "nulls are written");
    }

    #[test]
    fn table_names_every_column() {
        let out = text(SQL, Format::Table);
        assert!(out.contains("| name | n | flag |"), "{out}");
        assert!(out.contains("| a,b  | 2 |"), "{out}");
    }
}
