"""Real Spark reads a `ghreplay export` directory, as a user's job would.

    python read_export.py EXPORT_DIR DDL_FILE

Prints one JSON object: counts by event, by partition hour and by repository
from partition discovery (`spark.read.parquet`), the partition columns'
types, every row's payload by row_key, and the row count through the table
that `ghreplay export --ddl spark` defines (its statements run as printed).
"""
import json
import sys
import tempfile

from pyspark.sql import SparkSession


def main(export_dir, ddl_file):
    warehouse = tempfile.mkdtemp(prefix="ghreplay-spark-")
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("ghreplay-export-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.parquet(export_dir)
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    by_event = {r["event"]: r["count"] for r in df.groupBy("event").count().collect()}
    by_hour = {
        "%s/%02d" % (r["dt"].isoformat(), r["hour"]): r["count"]
        for r in df.groupBy("dt", "hour").count().collect()
    }
    by_repo = {
        (r["repository"] or ""): r["count"]
        for r in df.groupBy("repository").count().collect()
    }
    payloads = {r["row_key"]: json.loads(r["payload"]) for r in df.select("row_key", "payload").collect()}

    with open(ddl_file) as f:
        ddl = f.read()
    statements = [
        s.strip()
        for s in "\n".join(l for l in ddl.splitlines() if not l.strip().startswith("--")).split(";")
        if s.strip()
    ]
    for s in statements:
        spark.sql(s)
    table = spark.sql("SELECT count(*) AS n, count(DISTINCT dt, hour) AS p FROM github_deliveries").collect()[0]

    json.dump(
        {
            "types": types,
            "by_event": by_event,
            "by_hour": by_hour,
            "by_repo": by_repo,
            "payloads": payloads,
            "table_rows": table["n"],
            "table_partitions": table["p"],
        },
        sys.stdout,
    )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
