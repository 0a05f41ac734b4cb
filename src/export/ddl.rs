//! `export --ddl ENGINE`: the table definition of an export, for each engine
//! that reads it in place. The columns come from the file's own schema
//! ([`super::schema`]); the partition columns are the same everywhere: `dt`
//! a date, `hour` an integer.

use std::fmt::Write as _;

use arrow_schema::DataType;

/// The engines `--ddl` writes for. (The variants' docs are `--help` text.)
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// An external table with partition projection on dt and hour (no
    /// crawler, no MSCK REPAIR).
    Athena,
    /// The Hive connector's external table, then its partitions synced.
    Trino,
    /// A Parquet table, then its partitions recovered.
    Spark,
    /// A view over read_parquet with Hive partitioning.
    Duckdb,
    /// A stage and an external table partitioned on dt and hour.
    Snowflake,
}

#[derive(Debug, thiserror::Error)]
#[error("--table {0}: letters, digits and _ only, optionally schema.table")]
pub struct BadName(String);

/// Checks a table name (`name` or `schema.name`), which goes into SQL as is.
pub fn table_name(name: &str) -> Result<&str, BadName> {
    let ok = name.split('.').count() <= 2
        && name.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(name)
    } else {
        Err(BadName(name.to_owned()))
    }
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A column type in `engine`'s words.
fn sql_type(engine: Engine, t: &DataType) -> &'static str {
    use Engine::{Athena, Duckdb, Snowflake, Spark, Trino};
    match (engine, t) {
        (Athena, DataType::Utf8) => "string",
        (Trino, DataType::Utf8) => "varchar",
        (Spark, DataType::Utf8) => "STRING",
        (Snowflake | Duckdb, DataType::Utf8) => "VARCHAR",
        (Athena | Trino, DataType::Boolean) => "boolean",
        (_, DataType::Boolean) => "BOOLEAN",
        (Athena | Trino, DataType::Timestamp(..)) => "timestamp",
        (Spark, DataType::Timestamp(..)) => "TIMESTAMP",
        (_, DataType::Timestamp(..)) => "TIMESTAMP_TZ",
        (Athena, DataType::Int32) => "int",
        (Trino, DataType::Int32) => "integer",
        (_, DataType::Int32) => "INT",
        (Athena | Spark, DataType::Binary) => "binary",
        (Trino, DataType::Binary) => "varbinary",
        _ => "BINARY",
    }
}

/// The table definition for an export at `location` (a path, or
/// `s3://bucket/prefix/`), named `table`.
#[must_use]
pub fn ddl(engine: Engine, location: &str, table: &str) -> String {
    let base = if location.ends_with('/') {
        location.to_owned()
    } else {
        format!("{location}/")
    };
    let schema = super::schema();
    let columns = |quote_char: char, ty: &dyn Fn(&DataType) -> &'static str| {
        schema
            .fields()
            .iter()
            .map(|f| {
                format!(
                    "  {quote_char}{}{quote_char} {}",
                    f.name(),
                    ty(f.data_type())
                )
            })
            .collect::<Vec<_>>()
    };
    let mut out = String::new();
    match engine {
        Engine::Athena => {
            let cols = columns('`', &|t| sql_type(engine, t));
            let _ = write!(
                out,
                "-- ghreplay export: {base}\n\
                 -- Partitions are projected from dt and hour: nothing to crawl or repair.\n\
                 CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{}\n)\n\
                 PARTITIONED BY (`dt` date, `hour` int)\n\
                 ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n\
                 STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'\n\
                 OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'\n\
                 LOCATION {}\n\
                 TBLPROPERTIES (\n  \
                 'projection.enabled' = 'true',\n  \
                 'projection.dt.type' = 'date',\n  \
                 'projection.dt.format' = 'yyyy-MM-dd',\n  \
                 'projection.dt.range' = '2008-01-01,NOW',\n  \
                 'projection.dt.interval' = '1',\n  \
                 'projection.dt.interval.unit' = 'DAYS',\n  \
                 'projection.hour.type' = 'integer',\n  \
                 'projection.hour.range' = '0,23',\n  \
                 'projection.hour.digits' = '2',\n  \
                 'storage.location.template' = {}\n\
                 );\n",
                cols.join(",\n"),
                quote(&base),
                quote(&format!("{base}dt=${{dt}}/hour=${{hour}}/")),
            );
        }
        Engine::Trino => {
            let mut cols = columns('"', &|t| sql_type(engine, t));
            cols.push("  \"dt\" date".into());
            cols.push("  \"hour\" integer".into());
            let (schema_name, name) = table.split_once('.').unwrap_or(("default", table));
            let _ = write!(
                out,
                "-- ghreplay export: {base}\n\
                 -- In the Hive connector's catalog; then the partitions are registered.\n\
                 CREATE TABLE IF NOT EXISTS {table} (\n{}\n)\n\
                 WITH (\n  \
                 external_location = {},\n  \
                 format = 'PARQUET',\n  \
                 partitioned_by = ARRAY['dt', 'hour']\n\
                 );\n\
                 -- Then, and after each export that adds hours, register the partitions\n\
                 -- (a procedure call, kept as a comment so the file is plain DDL):\n\
                 -- CALL system.sync_partition_metadata({}, {}, 'ADD');\n",
                cols.join(",\n"),
                quote(&base),
                quote(schema_name),
                quote(name),
            );
        }
        Engine::Spark => {
            let mut cols = columns('`', &|t| sql_type(engine, t));
            cols.push("  `dt` DATE".into());
            cols.push("  `hour` INT".into());
            let _ = write!(
                out,
                "-- ghreplay export: {base}\n\
                 CREATE TABLE IF NOT EXISTS {table} (\n{}\n)\n\
                 USING PARQUET\n\
                 PARTITIONED BY (`dt`, `hour`)\n\
                 LOCATION {};\n\
                 -- Again after each export that adds hours:\n\
                 MSCK REPAIR TABLE {table};\n",
                cols.join(",\n"),
                quote(&base),
            );
        }
        Engine::Duckdb => {
            let glob = format!("{base}dt=*/hour=*/*.parquet");
            let _ = write!(
                out,
                "-- ghreplay export: {base}\n\
                 -- (from S3: INSTALL httpfs; LOAD httpfs; and a CREATE SECRET first)\n\
                 CREATE OR REPLACE VIEW {table} AS\n\
                 SELECT * REPLACE (payload::JSON AS payload, headers::JSON AS headers)\n\
                 FROM read_parquet(\n  \
                 {},\n  \
                 hive_partitioning = true,\n  \
                 hive_types = {{'dt': DATE, 'hour': INTEGER}}\n\
                 );\n",
                quote(&glob),
            );
        }
        Engine::Snowflake => {
            let stage = format!("{table}_export");
            let mut cols = vec![
                "  dt DATE AS TO_DATE(SPLIT_PART(SPLIT_PART(METADATA$FILENAME, 'dt=', 2), '/', 1))"
                    .to_owned(),
                "  hour INT AS TO_NUMBER(SPLIT_PART(SPLIT_PART(METADATA$FILENAME, 'hour=', 2), '/', 1))"
                    .to_owned(),
            ];
            for f in schema.fields() {
                let name = f.name();
                cols.push(match name.as_str() {
                    "payload" | "headers" => {
                        format!("  {name} VARIANT AS (PARSE_JSON(VALUE:{name}::VARCHAR))")
                    }
                    _ => {
                        let ty = sql_type(engine, f.data_type());
                        format!("  {name} {ty} AS (VALUE:{name}::{ty})")
                    }
                });
            }
            let _ = write!(
                out,
                "-- ghreplay export: {base}\n\
                 -- The stage reads the bucket through a storage integration (the one\n\
                 -- `ghreplay snowflake setup` prints, or your own): name it here.\n\
                 CREATE STAGE IF NOT EXISTS {stage}\n  \
                 URL = {}\n  \
                 STORAGE_INTEGRATION = {table}_integration\n  \
                 FILE_FORMAT = (TYPE = PARQUET);\n\
                 CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{}\n)\n\
                 PARTITION BY (dt, hour)\n\
                 LOCATION = @{stage}\n\
                 PATTERN = '.*deliveries[.]parquet'\n\
                 FILE_FORMAT = (TYPE = PARQUET)\n\
                 AUTO_REFRESH = FALSE;\n\
                 -- Again after each export that adds hours:\n\
                 ALTER EXTERNAL TABLE {table} REFRESH;\n",
                quote(&base),
                cols.join(",\n"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        assert!(table_name("github_deliveries").is_ok());
        assert!(table_name("analytics.github_deliveries").is_ok());
        for bad in ["", "a b", "x;DROP TABLE y", "a.b.c", "1x", "a-b"] {
            assert!(table_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_engine_names_every_column_and_the_partitions() {
        for engine in [
            Engine::Athena,
            Engine::Trino,
            Engine::Spark,
            Engine::Snowflake,
        ] {
            let sql = ddl(engine, "s3://b/export", "t");
            for f in crate::export::schema().fields() {
                assert!(sql.contains(f.name().as_str()), "{engine:?}: {}", f.name());
            }
            assert!(sql.contains("s3://b/export/"), "{engine:?}");
            assert!(sql.contains("dt") && sql.contains("hour"), "{engine:?}");
        }
        // Athena's projection needs no repair, and its hours are two digits
        // as the paths are.
        let athena = ddl(Engine::Athena, "s3://b/export", "t");
        assert!(athena.contains("'projection.hour.digits' = '2'"));
        assert!(athena.contains("'s3://b/export/dt=${dt}/hour=${hour}/'"));
    }
}
