//! `ghreplay export`: partitioned Parquet read back by engines that are not
//! ours (DuckDB's shell, real Spark), on a local directory and on moto's S3;
//! idempotent, incremental, whole partitions only (kill -9), shards that add
//! up, and each engine's table definition parsed in its dialect.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;
use crate::common::{make_archive, ndjson, stderr, Moto};

fn export(archive: &Path, to: &str, extra: &[&str]) -> Output {
    let out = common::run(
        &[
            &["--archive", archive.to_str().unwrap(), "export", "--to", to][..],
            extra,
        ]
        .concat(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "export {extra:?}: {}",
        stderr(&out)
    );
    out
}

/// A `make_archive.py` archive: `events` Mozilla-shape records over `hours`.
fn archive(dir: &Path, events: u32, hours: u32) -> PathBuf {
    let out = dir.join("archive");
    make_archive(
        &out,
        &[
            "--events",
            &events.to_string(),
            "--hours",
            &hours.to_string(),
            "--start",
            "2026-03-01T00",
            "--records-per-object",
            "20",
            "--private-ratio",
            "0.2",
        ],
    );
    out
}

/// Every file an engine would see (partition directories' files), by path
/// below the root, with its bytes.
fn visible_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    visible_paths(root)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(root.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

/// The paths below `root` of the files an engine would see (none starting
/// with `_`); none while `root` is not made yet.
fn visible_paths(root: &Path) -> Vec<String> {
    if !root.is_dir() {
        return Vec::new();
    }
    common::walk(root)
        .into_iter()
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .filter(|rel| !rel.starts_with('_'))
        .collect()
}

/// `dt=2026-03-01/hour=05/...` -> `2026-03-01/05`.
fn hour_of_path(rel: &str) -> String {
    let dt = rel.split('/').next().unwrap().trim_start_matches("dt=");
    let hour = rel.split('/').nth(1).unwrap().trim_start_matches("hour=");
    format!("{dt}/{hour}")
}

/// Counts by event, by object hour (`YYYY-MM-DD/HH`) and by repository,
/// from `ghreplay cat`, and every payload by delivery id.
struct Counts {
    by_event: BTreeMap<String, u64>,
    by_hour: BTreeMap<String, u64>,
    by_repo: BTreeMap<String, u64>,
    payloads: BTreeMap<String, Value>,
}

fn cat_counts(archive: &Path) -> Counts {
    let out = common::run(&["--archive", archive.to_str().unwrap(), "cat"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut c = Counts {
        by_event: BTreeMap::new(),
        by_hour: BTreeMap::new(),
        by_repo: BTreeMap::new(),
        payloads: BTreeMap::new(),
    };
    for l in ndjson(&out) {
        *c.by_event
            .entry(l["event"].as_str().unwrap().to_owned())
            .or_default() += 1;
        let key: Vec<&str> = l["object"].as_str().unwrap().split('/').collect();
        *c.by_hour
            .entry(format!("{}-{}-{}/{}", key[0], key[1], key[2], key[3]))
            .or_default() += 1;
        *c.by_repo
            .entry(l["repository"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
        c.payloads.insert(
            l["delivery_id"].as_str().unwrap().to_owned(),
            l["payload"].clone(),
        );
    }
    c
}

/// Runs SQL in DuckDB's own shell, rows as JSON objects.
fn duckdb(sql: &str) -> Result<Vec<Value>, String> {
    let cli = std::env::var("DUCKDB_CLI")
        .expect("DUCKDB_CLI names DuckDB's shell (scripts/test.sh installs duckdb-cli)");
    let out = std::process::Command::new(cli)
        .args(["-json", "-c", sql])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(stderr(&out));
    }
    let text = String::from_utf8(out.stdout).unwrap();
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

/// `{key: n}` from rows of (`k`, `n`).
fn counted(rows: &[Value]) -> BTreeMap<String, u64> {
    rows.iter()
        .map(|r| {
            let k = match &r["k"] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k, r["n"].as_u64().unwrap())
        })
        .collect()
}

fn parquet_glob(root: &Path) -> String {
    format!(
        "read_parquet('{}/dt=*/hour=*/*.parquet', hive_partitioning = true, hive_types = {{'dt': DATE, 'hour': INTEGER}})",
        root.display()
    )
}

#[test]
fn duckdbs_shell_reads_the_export_with_the_same_counts_as_cat() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 400, 5);
    let to = dir.path().join("export");
    let out = export(&archive, to.to_str().unwrap(), &[]);
    assert!(
        stderr(&out).contains("5 partitions written"),
        "{}",
        stderr(&out)
    );
    let want = cat_counts(&archive);
    let from = parquet_glob(&to);

    let by = |expr: &str| {
        counted(
            &duckdb(&format!(
                "SELECT {expr} AS k, count(*) AS n FROM {from} GROUP BY ALL"
            ))
            .unwrap(),
        )
    };
    assert_eq!(by("event"), want.by_event);
    assert_eq!(
        by("strftime(dt, '%Y-%m-%d') || '/' || lpad(hour::VARCHAR, 2, '0')"),
        want.by_hour
    );
    assert_eq!(by("coalesce(repository, '')"), want.by_repo);
    let types = duckdb(&format!(
        "SELECT typeof(dt) AS dt, typeof(hour) AS hour, typeof(received_at) AS t FROM {from} LIMIT 1"
    ))
    .unwrap();
    assert_eq!(types[0]["dt"], "DATE");
    assert_eq!(types[0]["hour"], "INTEGER");

    // The payload column is the same JSON as cat prints.
    let rows = duckdb(&format!("SELECT delivery_id, payload FROM {from}")).unwrap();
    assert_eq!(rows.len(), want.payloads.len());
    for r in &rows {
        let id = r["delivery_id"].as_str().unwrap();
        let payload: Value = serde_json::from_str(r["payload"].as_str().unwrap()).unwrap();
        assert_eq!(&payload, &want.payloads[id], "{id}");
    }

    // The DDL `--ddl duckdb` prints defines a view with the same rows.
    let ddl = common::run(&["export", "--to", to.to_str().unwrap(), "--ddl", "duckdb"]);
    assert_eq!(ddl.status.code(), Some(0), "{}", stderr(&ddl));
    let ddl = String::from_utf8(ddl.stdout).unwrap();
    let n = duckdb(&format!(
        "{ddl}\nSELECT count(*) AS n, count(payload->>'$.action') AS actions FROM github_deliveries"
    ))
    .unwrap();
    assert_eq!(n[0]["n"].as_u64().unwrap(), want.payloads.len() as u64);

    // A filter on dt and hour reads only that partition's file: with the
    // other partitions' files made unreadable (but the first, whose schema
    // DuckDB binds to), it still answers, and a query over everything fails.
    let files: Vec<String> = visible_files(&to).into_keys().collect();
    let kept = &files[2];
    for f in &files[1..] {
        if f != kept {
            std::fs::write(to.join(f), b"not parquet").unwrap();
        }
    }
    let (day, hour) = hour_of_path(kept)
        .split_once('/')
        .map(|(d, h)| (d.to_owned(), h.parse::<u32>().unwrap()))
        .unwrap();
    let one = duckdb(&format!(
        "SELECT count(*) AS n FROM {from} WHERE dt = DATE '{day}' AND hour = {hour}"
    ))
    .unwrap();
    assert_eq!(
        one[0]["n"].as_u64().unwrap(),
        want.by_hour[&format!("{day}/{hour:02}")]
    );
    assert!(duckdb(&format!("SELECT count(*) AS n FROM {from}")).is_err());
}

#[test]
fn exporting_again_changes_nothing_and_a_changed_hour_alone_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 200, 4);
    let to = dir.path().join("export");
    export(&archive, to.to_str().unwrap(), &[]);
    let first = visible_files(&to);
    let stamp = |rel: &str| std::fs::metadata(to.join(rel)).unwrap().modified().unwrap();
    let stamps: BTreeMap<String, _> = first.keys().map(|k| (k.clone(), stamp(k))).collect();
    assert_eq!(first.len(), 4);

    let out = export(&archive, to.to_str().unwrap(), &[]);
    assert!(
        stderr(&out).contains("0 partitions written")
            && stderr(&out).contains("4 already up to date"),
        "{}",
        stderr(&out)
    );
    assert_eq!(visible_files(&to), first);
    for (k, t) in &stamps {
        assert_eq!(&stamp(k), t, "{k} was rewritten");
    }

    // A redelivery: one object of hour 01 archived again in hour 01 (the
    // same ids: repeats within the partition, not written) and in hour 03
    // (shown in both hours, with the id to dedupe on).
    let hour1 = archive.join("2026/03/01/01");
    let mut objects: Vec<PathBuf> = std::fs::read_dir(&hour1)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    objects.sort();
    let obj = &objects[0];
    let name = obj.file_name().unwrap().to_string_lossy().into_owned();
    let records = ndjson(&common::run(&[
        "--archive",
        archive.to_str().unwrap(),
        "cat",
    ]))
    .iter()
    .filter(|l| l["object"].as_str().unwrap().ends_with(&name))
    .count() as u64;
    assert!(records > 0);
    // The same object under a new name (another uuid, the hour's stamp).
    let renamed = |stamp: &str| {
        let (base, ext) = name.split_at(name.find('.').unwrap_or(name.len()));
        let head = &base[..base.len() - 8];
        format!("{}ffffffff{ext}", head.replace("-2026-03-01-01-", stamp))
    };
    std::fs::copy(obj, hour1.join(renamed("-2026-03-01-01-"))).unwrap();
    std::fs::copy(
        obj,
        archive
            .join("2026/03/01/03")
            .join(renamed("-2026-03-01-03-")),
    )
    .unwrap();

    let out = export(&archive, to.to_str().unwrap(), &[]);
    assert!(
        stderr(&out).contains("2 partitions written")
            && stderr(&out).contains("2 already up to date"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("{records} repeats of a delivery id")),
        "{}",
        stderr(&out)
    );
    let after = visible_files(&to);
    for (k, bytes) in &first {
        let changed = after[k] != *bytes || stamp(k) != stamps[k];
        let rebuilt =
            k.starts_with("dt=2026-03-01/hour=01/") || k.starts_with("dt=2026-03-01/hour=03/");
        assert_eq!(changed, rebuilt, "{k}");
    }
    let from = parquet_glob(&to);
    let rows = duckdb(&format!(
        "SELECT hour AS k, count(*) AS n FROM {from} GROUP BY ALL"
    ))
    .unwrap();
    let by_hour = counted(&rows);
    let want = cat_counts(&archive);
    // Hour 01 is as before (the copy's ids repeat there); hour 03 has the
    // object's deliveries besides its own (cat, deduplicating across
    // hours, shows them once).
    assert_eq!(by_hour["1"], want.by_hour["2026-03-01/01"]);
    assert_eq!(by_hour["3"], want.by_hour["2026-03-01/03"] + records);
}

#[test]
fn a_kill_9_mid_export_leaves_only_whole_partitions_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 4800, 48);
    let to = dir.path().join("export");
    let mut child = common::bin()
        .args([
            "--archive",
            archive.to_str().unwrap(),
            "export",
            "-q",
            "--fetch-jobs",
            "1",
            "--to",
        ])
        .arg(&to)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while visible_paths(&to).is_empty() {
        assert!(Instant::now() < deadline, "no partition appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the export finished before it could be killed: make the archive larger"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Every file an engine sees is a whole partition: DuckDB reads each.
    let seen = visible_files(&to);
    assert!(
        !seen.is_empty() && seen.len() < 48,
        "{} partitions",
        seen.len()
    );
    for rel in seen.keys() {
        assert!(rel.ends_with("/deliveries.parquet"), "{rel}");
        let n = duckdb(&format!(
            "SELECT count(*) AS n FROM read_parquet('{}')",
            to.join(rel).display()
        ))
        .unwrap_or_else(|e| panic!("{rel} is not a whole Parquet file: {e}"));
        assert!(n[0]["n"].as_u64().unwrap() > 0);
    }

    // A rerun finishes the job: the same files as one uninterrupted export.
    export(&archive, to.to_str().unwrap(), &[]);
    let whole = dir.path().join("whole");
    export(&archive, whole.to_str().unwrap(), &[]);
    assert_eq!(
        visible_files(&to).into_keys().collect::<Vec<_>>(),
        visible_files(&whole).into_keys().collect::<Vec<_>>()
    );
    assert_eq!(visible_files(&to), visible_files(&whole));
}

#[test]
fn three_shards_write_disjoint_hours_that_add_up_to_one_export() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 300, 7);
    let whole = dir.path().join("whole");
    export(&archive, whole.to_str().unwrap(), &[]);
    let whole = visible_files(&whole);
    assert_eq!(whole.len(), 7);

    let together = dir.path().join("together");
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for i in 0..3 {
        let own = dir.path().join(format!("shard-{i}"));
        let shard = format!("{i}/3");
        export(&archive, own.to_str().unwrap(), &["--shard", &shard]);
        export(&archive, together.to_str().unwrap(), &["--shard", &shard]);
        let files = visible_files(&own);
        assert!(!files.is_empty(), "shard {shard} wrote nothing");
        for k in files.keys() {
            assert!(seen.insert(k.clone()), "{k} is in two shards");
        }
    }
    assert_eq!(visible_files(&together), whole);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_to_s3_lists_and_reads_back_as_the_local_one() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 200, 3);
    let local = dir.path().join("local");
    export(&archive, local.to_str().unwrap(), &[]);
    let bucket = moto.new_bucket("ghreplay-export").await;
    let to = format!("s3://{bucket}/warehouse/github");

    let run = |extra: &[&str]| {
        let out = moto.run(
            &[
                &[
                    "--archive",
                    archive.to_str().unwrap(),
                    "export",
                    "--to",
                    &to,
                ][..],
                extra,
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stderr(&out)
    };
    assert!(run(&[]).contains("3 partitions written"));
    let s3 = moto.s3();
    let list = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("warehouse/github/")
        .send()
        .await
        .unwrap();
    let mut remote = BTreeMap::new();
    let mut manifests = 0;
    for o in list.contents() {
        let key = o.key().unwrap();
        let rel = key.strip_prefix("warehouse/github/").unwrap().to_owned();
        if rel.starts_with("_ghreplay/manifest/") {
            manifests += 1;
            continue;
        }
        let body = s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        remote.insert(rel, body.body.collect().await.unwrap().to_vec());
    }
    assert_eq!(manifests, 3);
    // Byte for byte what the local export wrote: the same rows, the same file.
    assert_eq!(remote, visible_files(&local));
    assert!(run(&[]).contains("3 already up to date"));
    assert!(run(&["--rebuild"]).contains("3 partitions written"));
}

/// A partition larger than one part goes up as a multipart upload,
/// completed at once: the object is the whole file.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_partition_is_one_multipart_upload() {
    use std::io::Write as _;
    let moto = Moto::start();
    for (k, v) in moto.env() {
        std::env::set_var(k, v);
    }
    let bucket = moto.new_bucket("ghreplay-multipart").await;
    let dest = ghreplay::export::Dest::open(&format!("s3://{bucket}/x"), Some(&moto.endpoint))
        .await
        .unwrap()
        .with_part_bytes(5 << 20);
    let hour = chrono::DateTime::parse_from_rfc3339("2026-03-01T05:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let (mut file, temp) = dest.temp_file(hour).unwrap();
    let bytes: Vec<u8> = (0..(11u32 << 20)).map(|i| (i * 7 % 251) as u8).collect();
    file.write_all(&bytes).unwrap();
    file.sync_all().unwrap();
    let key = dest.publish(hour, temp).await.unwrap();
    assert_eq!(key, "dt=2026-03-01/hour=05/deliveries.parquet");
    let got = moto
        .s3()
        .get_object()
        .bucket(&bucket)
        .key(format!("x/{key}"))
        .send()
        .await
        .unwrap();
    assert!(got.e_tag().unwrap().contains("-3"), "{:?}", got.e_tag());
    assert_eq!(got.body.collect().await.unwrap().to_vec(), bytes);
}

#[test]
fn real_spark_reads_the_export_with_partition_discovery() {
    let python = std::env::var("SPARK_PYTHON")
        .expect("SPARK_PYTHON names a python with pyspark (scripts/test.sh installs it)");
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 300, 3);
    let to = dir.path().join("export");
    export(&archive, to.to_str().unwrap(), &[]);
    let ddl = common::run(&["export", "--to", to.to_str().unwrap(), "--ddl", "spark"]);
    assert_eq!(ddl.status.code(), Some(0), "{}", stderr(&ddl));
    let ddl_file = dir.path().join("spark.sql");
    std::fs::write(&ddl_file, &ddl.stdout).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spark/read_export.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&to)
        .arg(&ddl_file)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "spark: {}", stderr(&out));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = cat_counts(&archive);
    let map = |v: &Value| -> BTreeMap<String, u64> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
            .collect()
    };
    assert_eq!(got["types"]["dt"], "date");
    assert_eq!(got["types"]["hour"], "int");
    assert_eq!(map(&got["by_event"]), want.by_event);
    assert_eq!(map(&got["by_hour"]), want.by_hour);
    assert_eq!(map(&got["by_repo"]), want.by_repo);
    let payloads = got["payloads"].as_object().unwrap();
    assert_eq!(payloads.len(), want.payloads.len());
    for (id, p) in payloads {
        assert_eq!(p, &want.payloads[id], "{id}");
    }
    assert_eq!(
        got["table_rows"].as_u64().unwrap(),
        want.payloads.len() as u64
    );
    assert_eq!(got["table_partitions"], 3);
}

#[test]
fn every_engines_table_definition_parses_in_its_dialect() {
    for (engine, dialect) in [
        ("athena", "athena"),
        ("trino", "trino"),
        ("spark", "sparksql"),
        ("duckdb", "duckdb"),
        ("snowflake", "snowflake"),
    ] {
        let out = common::run(&[
            "export",
            "--to",
            "s3://acme-lake/github/",
            "--ddl",
            engine,
            "--table",
            "analytics.github_deliveries",
        ]);
        assert_eq!(out.status.code(), Some(0), "{engine}: {}", stderr(&out));
        let sql = String::from_utf8(out.stdout).unwrap();
        common::assert_parses(dialect, engine, &sql);
    }
    let out = common::run(&["export", "--to", "x", "--ddl", "spark", "--table", "a;b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--table"), "{}", stderr(&out));
}

#[test]
fn a_missing_archive_is_an_error_and_makes_nothing_at_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("lake");
    let nope = dir.path().join("no-such-archive");
    let out = common::run(&[
        "--archive",
        nope.to_str().unwrap(),
        "export",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no archive at"), "{}", stderr(&out));
    assert!(
        !to.exists(),
        "--to was made for an export that could not start"
    );

    // --ddl only prints: it makes nothing either, and names the place whole.
    let out = common::run(&["export", "--to", to.to_str().unwrap(), "--ddl", "duckdb"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains(&format!("'{}/dt=*/hour=*/*.parquet'", to.display())));
    assert!(!to.exists());
}
