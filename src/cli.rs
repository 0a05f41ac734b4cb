//! Command-line flags, as typed. `config` turns them into validated values.
// Doc comments here are `--help` text for people, not rustdoc: no backticks.
#![allow(clippy::doc_markdown)]

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ghreplay",
    version,
    about = "Read, replay and analyse archived GitHub webhook deliveries",
    long_about = "Read, replay and analyse GitHub webhook deliveries archived by Kinesis Firehose \
(to S3, or a local directory laid out the same way): Mozilla's envelope, cztack's raw \
payloads and ghreplay's own records.",
    after_help = "Exit status: 0 success; 1 nothing matched; 2 error (bad flags, archive or \
target unreachable); 3 finished, but input was skipped: corrupt objects or records, keys \
outside Firehose naming, events too large for SNS (listed on stderr; --allow-skipped makes \
this 0); 4 republish stopped part way (resume with --resume --checkpoint FILE); audit: 5 deliveries \
missing from the archive, 6 deliveries lost after they were acknowledged."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The archive: a local directory, or s3://bucket/prefix. The prefix is
    /// what Firehose puts before YYYY/ (e.g. kinesis/). [default: ./archive]
    #[arg(long, global = true, env = "GHREPLAY_ARCHIVE", value_name = "ARCHIVE")]
    pub archive: Option<String>,
    /// An S3-compatible endpoint (MinIO, moto...) instead of AWS's.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Log more (-v: each skipped input; -vv: debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars and no summary on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Where the archive is when neither --archive nor GHREPLAY_ARCHIVE says.
pub const DEFAULT_ARCHIVE: &str = "./archive";

impl GlobalArgs {
    /// The archive named, or the default.
    #[must_use]
    pub fn archive(&self) -> &str {
        self.archive.as_deref().unwrap_or(DEFAULT_ARCHIVE)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the hour prefixes and objects that hold a time range.
    List(ListArgs),
    /// Print archived events as NDJSON, one JSON object per line.
    ///
    /// Keys of each line: delivery_id, event, action, repository,
    /// private, public (the privacy filter's verdict), sender,
    /// received_at, shape, object, offset, payload (the GitHub
    /// payload as archived).
    Cat(CatArgs),
    /// Send archived events again: to Pulse (RabbitMQ) or SNS, after an
    /// outage. Public events only unless --include-private; confirmed,
    /// paced, resumable from a checkpoint.
    Republish(RepublishArgs),
    /// Receive GitHub webhooks live: verify signatures, archive every
    /// delivery durably (in the format the other commands read) before
    /// answering 2xx.
    ///
    /// Secrets come from --secret-file (one per line; several for rotation)
    /// and the GHREPLAY_WEBHOOK_SECRET environment variable (likewise).
    Serve(Box<ServeArgs>),
    /// Load events into a DuckDB database file, one row per delivery
    /// (schema: queries/schema.sql). Loading the same range again adds
    /// nothing; a load stopped part way keeps what it committed.
    ///
    /// Without --public-only every event is loaded, with the privacy
    /// filter's verdict in the column `public`.
    #[cfg(feature = "duckdb")]
    Load(LoadArgs),
    /// Ask a DuckDB database (or an archive, read into memory) a question:
    /// a canned query (--list shows them), a FILE.sql, or SQL.
    ///
    /// The canned queries read the view in_range, which --since/--until
    /// bound; your own SQL may read in_range or the table deliveries.
    #[cfg(feature = "duckdb")]
    Query(QueryArgs),
    /// Serve the dashboard's pages (releases, activity, a searchable
    /// delivery log) over a database made by `load`, read-only: for an
    /// analyst with a laptop. `serve --ui-listen` serves the same pages
    /// live, beside the receiver. It also shows the file `serve --ui-listen`
    /// keeps, which leaves all but releases' payloads in the archive: a
    /// delivery's page reads them from --archive.
    #[cfg(feature = "duckdb")]
    Ui(UiArgs),
    /// Write the archive as Parquet partitioned by hour (dt=YYYY-MM-DD/hour=HH/),
    /// to a directory or S3, for Spark, Athena, Trino, Snowflake or DuckDB
    /// to read in place; --ddl prints the table definition for one of them.
    ///
    /// Each partition is one object hour of the archive (a range rounds out
    /// to whole hours) and exactly one file, deliveries.parquet, written
    /// whole or not at all. Running it again rebuilds only the hours whose
    /// objects changed or appeared (`_ghreplay/manifest/` says what each
    /// partition was built from). Every event is written, with the privacy
    /// filter's verdict in the column `public`, unless --public-only.
    Export(ExportArgs),
    /// Print the Snowflake SQL for these archives (it does not connect):
    /// SnowAlert's stage, landing table and pipe, or a range's backfill.
    #[command(subcommand)]
    Snowflake(SnowflakeCommand),
    /// Hold GitHub's delivery log against the archive: find deliveries
    /// that never arrived (missing) or were acknowledged and then lost, and
    /// with --redeliver ask GitHub to send the missing ones again.
    ///
    /// GitHub keeps 3 days of deliveries (GitHub Enterprise Server longer).
    /// Each delivery (guid) gets one verdict: ok (acknowledged, archived);
    /// late (archived, though GitHub recorded a failure: a slow answer);
    /// missing (no attempt acknowledged, not archived: redeliverable,
    /// unless the receiver refused it in a way it will repeat, such as 401);
    /// lost (acknowledged, yet not archived); pending (not archived, but
    /// attempted within --settle, so the archive may not show it yet).
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 nothing missing or lost; 2 error (bad flags, GitHub or the \
archive unreachable, an archive that keeps no delivery ids); 3 audited, but archive input was \
skipped (corrupt objects: a delivery reported missing may be in one); 5 something missing (with \
--redeliver: something missing that was not asked for: futile, or the request failed); 6 something \
lost (whatever else)."
)]
pub struct AuditArgs {
    /// The hook whose delivery log to read: repo:OWNER/NAME:ID, org:ORG:ID
    /// or app (the GitHub App's own hook); repeatable.
    #[arg(long = "hook", value_name = "HOOK", required = true)]
    pub hooks: Vec<String>,
    /// Start of the audited range (deliveries first attempted then or later).
    /// RFC 3339, a date, an hour, or a span back from now.
    #[arg(long, default_value = "3d", value_name = "TIME")]
    pub since: String,
    /// End of the range (exclusive). [default: now]
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Deliveries last attempted more recently than this are not judged yet:
    /// Firehose buffers for up to 15 minutes before an object appears. 0s
    /// for an archive written by `ghreplay serve` to a local directory.
    #[arg(long, default_value = "15m", value_name = "SPAN")]
    pub settle: String,
    /// Audit only this event; repeatable (filtered here: GitHub's log
    /// cannot filter on it).
    #[arg(long = "event", value_name = "NAME")]
    pub events: Vec<String>,
    /// Audit only this action; repeatable.
    #[arg(long = "action", value_name = "ACTION")]
    pub actions: Vec<String>,
    /// Machine-readable JSON: the counts and every delivery that is not ok.
    #[arg(long)]
    pub json: bool,
    /// Ask GitHub to redeliver every missing delivery (never one whose
    /// redelivery is still in flight, across runs too; never a futile one
    /// unless --include-futile).
    #[arg(long)]
    pub redeliver: bool,
    /// Redeliver missing deliveries that the receiver refused with a 4xx it
    /// would repeat (a bad signature, too large), once that is fixed.
    #[arg(long, requires = "redeliver")]
    pub include_futile: bool,
    /// Redelivery requests per second (GitHub allows about 80 such writes a
    /// minute before its secondary rate limit).
    #[arg(long, default_value_t = 1.0, value_name = "PER_SECOND")]
    pub rate: f64,
    /// Where --redeliver remembers what it asked, across runs.
    /// [default: $XDG_STATE_HOME/ghreplay/audit.json, or ~/.local/state/...]
    #[arg(long, value_name = "FILE")]
    pub state: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten, next_help_heading = "GitHub")]
    pub github: GithubArgs,
}

/// How to reach GitHub's API.
#[derive(Debug, Args)]
pub struct GithubArgs {
    /// A file holding a token for repository and organization hooks
    /// (a token typed on the command line shows in `ps`).
    #[arg(long, value_name = "FILE")]
    pub github_token_file: Option<std::path::PathBuf>,
    /// A token for repository and organization hooks.
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub github_token: Option<String>,
    /// The GitHub App's id or client id, for the app hook.
    #[arg(long, value_name = "ID", requires = "github_private_key")]
    pub github_app_id: Option<String>,
    /// The GitHub App's private key (the PEM file GitHub gives).
    #[arg(long, value_name = "FILE", requires = "github_app_id")]
    pub github_private_key: Option<std::path::PathBuf>,
    /// GitHub's API; GitHub Enterprise Server's is https://HOST/api/v3.
    #[arg(long, env = "GITHUB_API_URL", default_value = crate::github::DEFAULT_API_URL, value_name = "URL")]
    pub github_api_url: String,
    /// Certificate authorities (PEM) to trust besides the system's.
    #[arg(long, value_name = "FILE")]
    pub github_ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SnowflakeCommand {
    /// The stage (with its JSON file format), the landing table (SnowAlert's
    /// 62 columns, then `delivery_id` and `event`) and the auto-ingest pipe,
    /// named as SnowAlert's GitHub webhooks connector names them; then, as
    /// comments, the AWS role's trust and permissions policies and the
    /// steps that connect the bucket's notifications to the pipe.
    Setup {
        #[command(flatten)]
        objects: SnowflakeObjects,
        /// The archive the stage reads, s3://bucket/prefix.
        #[arg(long, value_name = "URL")]
        stage_url: String,
        /// The AWS role Snowflake assumes to read the bucket.
        #[arg(long, value_name = "ARN")]
        aws_role: String,
        /// The archive's record shape, which decides where the pipe reads
        /// the payload: `raw` ($1, SnowAlert's own), `mozilla` or `ghreplay`
        /// ($1:body, keeping the delivery id and event).
        #[arg(long, default_value = "raw", value_parser = ["raw", "mozilla", "ghreplay"])]
        shape: String,
        /// Replace an existing pipe (CREATE OR REPLACE) so that it reads the
        /// new shape. A replaced pipe loses its load history: files it loaded
        /// may be loaded again by a later REFRESH (refresh's MERGE keeps
        /// rows single).
        #[arg(long)]
        recreate_pipe: bool,
    },
    /// The statements that load exactly a range, once: `COPY INTO` a
    /// temporary table from the range's objects (by name), then `MERGE` into
    /// the landing table on the delivery id (on the payload's hash for
    /// cztack's shape), so neither a file the pipe already loaded nor a
    /// delivery archived twice lands twice. Objects come from listing
    /// --archive as `list` does.
    Refresh {
        #[command(flatten)]
        objects: SnowflakeObjects,
        /// Start of the range (inclusive).
        #[arg(long, value_name = "TIME")]
        since: String,
        /// End of the range (exclusive); default now.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// The stage's URL when it is not --archive itself: object paths
        /// are made relative to it.
        #[arg(long, value_name = "URL")]
        stage_url: Option<String>,
        /// The records' shape: `auto` reads the first object of the range.
        #[arg(long, default_value = "auto", value_parser = ["auto", "raw", "mozilla", "ghreplay"])]
        shape: String,
    },
}

/// The Snowflake objects' names: SnowAlert's for a connection, or each one
/// given (an existing deployment's own names).
#[derive(Debug, Args)]
pub struct SnowflakeObjects {
    /// The connection name: objects are data.GITHUB_WEBHOOKS_S3_<NAME>_EVENTS_*.
    #[arg(long)]
    pub name: String,
    /// The stage's name instead (`db.schema.name` or shorter).
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    /// The landing table's name instead.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// The pipe's name instead (e.g. data.GITHUB_ORGANIZATIONS_DEFAULT_EVENTS_PIPE).
    #[arg(long, value_name = "NAME")]
    pub pipe: Option<String>,
}

/// A time range. Times are RFC 3339, a date (2026-01-15, UTC), an hour
/// (2026-01-15T10) or a span back from now (30m, 6h, 2d, 1w).
#[derive(Debug, Args)]
pub struct RangeArgs {
    /// Start of the range (inclusive); default: the archive's beginning.
    /// RFC 3339, a date (2026-01-15, UTC), an hour (2026-01-15T10) or a
    /// span back from now (30m, 6h, 2d, 1w).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// End of the range (exclusive); default: the archive's end.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

/// `--fetch-jobs`: a number, or `auto` (0).
fn fetch_jobs(s: &str) -> Result<usize, String> {
    match s {
        "auto" => Ok(0),
        n => match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("expected a number of objects above 0, or auto".into()),
        },
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub range: RangeArgs,
    /// Machine-readable JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list every object under its hour.
    #[arg(long)]
    pub objects: bool,
}

#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Keep only this event (X-GitHub-Event name); repeatable.
    #[arg(long = "event", value_name = "NAME")]
    pub events: Vec<String>,
    /// Keep only events with this action (opened, published...); repeatable.
    #[arg(long = "action", value_name = "ACTION")]
    pub actions: Vec<String>,
    /// Keep only this repository, owner/name; repeatable.
    #[arg(long = "repo", value_name = "OWNER/NAME")]
    pub repos: Vec<String>,
    /// Keep repeated delivery ids (by default only the first is kept).
    #[arg(long)]
    pub keep_duplicates: bool,
    /// How long after a delivery a repeat of its id still counts as a
    /// duplicate, in archive time (Firehose retries for up to a day). `all`
    /// remembers every id, at ~50 bytes each.
    #[arg(long, default_value = "48h", value_name = "SPAN|all")]
    pub dedupe_window: String,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Exit 0 even when corrupt input was skipped (it is still reported).
    #[arg(long)]
    pub allow_skipped: bool,
    /// Objects fetched at once. `auto`: from S3, enough to hide the round
    /// trip that listing measured (at least 16, at most 256); from a local
    /// directory, 16.
    #[arg(long, default_value = "auto", value_name = "N|auto", value_parser = fetch_jobs)]
    pub fetch_jobs: usize,
    /// The most fetched, still compressed bytes held at once, waiting to be
    /// decoded (each object counts whole; one larger than this is read
    /// alone). Decoding holds a decompressed object per core besides.
    #[arg(long, default_value_t = crate::source::DEFAULT_READ_MEMORY, value_name = "BYTES")]
    pub read_memory: u64,
    /// From S3, an object larger than this is fetched in ranged parts of
    /// this size, up to 8 at once (Firehose writes objects of up to 128
    /// MiB; a large one should not wait on one connection).
    #[arg(long, default_value_t = crate::source::DEFAULT_PART_SIZE, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub fetch_part_size: u64,
    /// Largest decompressed object read; past it, the rest is reported.
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    pub max_object_bytes: u64,
}

/// Which events a reading command takes, and how it reads them.
#[derive(Debug, Args)]
pub struct EventArgs {
    #[command(flatten)]
    pub range: RangeArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Keep only events the privacy filter passes: an allow-list of 17
    /// event types in repositories that are not private. Fails closed.
    #[arg(long)]
    pub public_only: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    #[command(flatten)]
    pub events: EventArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 every event confirmed; 1 nothing to send; 2 error, \
nothing sent (bad flags, target unreachable at the start); 3 finished, but input was skipped \
(corrupt, or too large for SNS); 4 stopped part way (broker gone, Ctrl-C, refused message): \
run again with --resume --checkpoint FILE."
)]
pub struct RepublishArgs {
    #[command(flatten)]
    pub range: RangeArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Where to send: `amqp://user:pass@host:5672/vhost` or `amqps://...`
    /// (Pulse), `sns:arn:aws:sns:REGION:ACCOUNT:TOPIC`, `http://...` or
    /// `https://...` (any webhook receiver: each delivery re-sent as GitHub
    /// sent it), or `ndjson` / `ndjson:FILE` (what would be sent, as `cat`
    /// prints it).
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// The AMQP exchange (topic, durable).
    #[arg(long, default_value = crate::deliver::pulse::DEFAULT_EXCHANGE, value_name = "NAME")]
    pub exchange: String,
    /// Declare the exchange; by default it must exist (checked passively, as
    /// Pulse requires).
    #[arg(long)]
    pub declare: bool,
    /// Fail on a message no queue takes (AMQP `mandatory`).
    #[arg(long)]
    pub mandatory: bool,
    /// Also send events the privacy filter holds back. By default only
    /// public events are sent, to every target.
    #[arg(long)]
    pub include_private: bool,
    /// Count what would be sent, by event and repository; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Messages per second at most (paced, none dropped); default unpaced.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Record progress in FILE, durably, so that a stopped run can resume.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<std::path::PathBuf>,
    /// Continue the run recorded in --checkpoint, with no gap.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,
    /// Messages sent and not yet confirmed at once, for every target (AMQP
    /// confirms, SNS batches, HTTP requests in flight); default 1000, 32 for
    /// HTTP. A run killed at any moment sends at most three times this many
    /// events again when resumed (those on the wire, those confirmed behind
    /// a slower answer, and those settled but not yet saved).
    #[arg(long, value_name = "N")]
    pub confirm_window: Option<usize>,
    /// How long to keep retrying what may pass (a lost broker, a failing
    /// batch, an HTTP 5xx, 429 or timeout) before stopping with a checkpoint.
    #[arg(long, default_value = "60s", value_name = "SPAN")]
    pub retry_for: String,
    /// Append the events not sent here, as NDJSON: too large for SNS, with
    /// no event name, or refused for good by an HTTP receiver (a 3xx or 4xx).
    /// They are always listed in the summary.
    #[arg(long, alias = "oversize-list", value_name = "FILE")]
    pub refused_list: Option<std::path::PathBuf>,
    /// HTTP: re-sign every request with `X-Hub-Signature-256` under the
    /// first line of FILE, dropping the archived signatures (for a receiver
    /// whose secret differs, or records that had none).
    #[arg(long, value_name = "FILE")]
    pub sign_secret_file: Option<std::path::PathBuf>,
    /// `amqps://` and `https://`: also trust the certificate authorities in
    /// this PEM file (a broker or receiver with a private CA). The
    /// system's roots and SSL_CERT_FILE are trusted either way.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// HTTP: how long one request may take, GitHub's own limit by default.
    #[arg(long, default_value = "10s", value_name = "SPAN")]
    pub timeout: String,
    /// Send only shard I of N (I from 0: `--shard "$JOB_COMPLETION_INDEX/4"`
    /// in a Kubernetes indexed job, `$AWS_BATCH_JOB_ARRAY_INDEX` in an AWS
    /// Batch array job): the archive hours whose number since the epoch is I
    /// modulo N, whatever the range, so N workers share one range with no
    /// overlap and no gap. Each shard is its own run (give each its own
    /// --checkpoint); --rate is per worker. Duplicates are dropped within a
    /// shard only: a delivery archived twice in hours of two shards (a
    /// redelivery an hour later) is sent by both.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// The webhook path.
    #[arg(long, default_value = "/webhook")]
    pub path: String,
    /// File of webhook secrets, one per line.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<std::path::PathBuf>,
    /// Also accept the legacy SHA-1 `X-Hub-Signature` alone.
    #[arg(long)]
    pub allow_sha1: bool,
    /// Accept deliveries without checking any signature. Never in production.
    #[arg(long)]
    pub insecure_no_verify: bool,
    /// With an `s3://` archive: where records are written durably before
    /// their object is complete and uploaded (gzip). Keep it on a disk that
    /// survives a restart.
    #[arg(long, default_value = "./ghreplay-spool", value_name = "DIR")]
    pub spool: std::path::PathBuf,
    /// Also forward each delivery, once archived, to Pulse
    /// (`amqp://...`), SNS (`sns:arn:...`) or a webhook receiver
    /// (`http(s)://...`), shaped as `republish` shapes it. Repeatable. Each
    /// target follows the archive with its own checkpoint: one that is down
    /// gets its deliveries when it is back, and the 200 never waits for it.
    /// Settings ride in the URL's query: `?include_private=true`, and for
    /// AMQP `exchange=NAME`, `declare=true`.
    #[arg(long, value_name = "TARGET")]
    pub forward: Vec<String>,
    /// The AMQP exchange to forward to (every AMQP target, unless its URL
    /// says `exchange=`).
    #[arg(long, default_value = crate::deliver::pulse::DEFAULT_EXCHANGE, value_name = "NAME")]
    pub forward_exchange: String,
    /// Declare the forward exchange instead of checking it exists.
    #[arg(long)]
    pub forward_declare: bool,
    /// Forward events the privacy filter holds back too.
    #[arg(long)]
    pub forward_include_private: bool,
    /// `amqps://` and `https://` forward targets: also trust the
    /// certificate authorities in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub forward_ca_file: Option<std::path::PathBuf>,
    /// Stream name in archive object names.
    #[arg(long, default_value = "ghreplay")]
    pub stream: String,
    /// Start a new archive object past this many bytes.
    #[arg(long, default_value_t = 5 * 1024 * 1024, value_name = "BYTES")]
    pub roll_bytes: u64,
    /// ...or past this age.
    #[arg(long, default_value = "300s", value_name = "SPAN")]
    pub roll_age: String,
    /// How long a client may take to send a whole request head, counted
    /// from when the server is ready for it (so it also closes an idle
    /// keep-alive connection). GitHub sends its head at once.
    #[arg(long, default_value = "10s", value_name = "SPAN")]
    pub header_timeout: String,
    /// How long a request body may take to arrive once its head is read
    /// (408 after that). GitHub gives up on an answer after 10 s, so a
    /// slower body is never GitHub's.
    #[arg(long, default_value = "20s", value_name = "SPAN")]
    pub body_timeout: String,
    /// Client connections open at once; past it, each new client is still
    /// accepted and the connection sending slowest is cut. Default: the
    /// open-file limit (raised to its hard limit at start) less 128, at
    /// most 10000.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to
    /// finish before their connections are cut; the archive is flushed
    /// (and uploaded) either way.
    #[arg(long, default_value = "15s", value_name = "SPAN")]
    pub shutdown_grace: String,
    /// How long a delivery id is remembered against redelivery (GitHub
    /// redelivers for 3 days); the archive of that span is read at startup.
    #[arg(long, default_value = "72h", value_name = "SPAN")]
    pub dedupe_window: String,
    /// Serve the dashboard (releases as they arrive, activity, a delivery
    /// log) on this address, e.g. 127.0.0.1:8081: its own listener, never
    /// the webhook's. Off unless given.
    #[cfg(feature = "duckdb")]
    #[arg(long, value_name = "ADDR", help_heading = "Dashboard")]
    pub ui_listen: Option<String>,
    /// The dashboard's DuckDB file, kept up to date with the archive
    /// [default: ghreplay-ui.duckdb in --spool]. Not a file `load` writes
    /// (one process writes a DuckDB file at a time). It keeps the payloads
    /// of releases; a delivery's page reads any other payload from the
    /// archive.
    #[cfg(feature = "duckdb")]
    #[arg(long, value_name = "FILE", help_heading = "Dashboard")]
    pub ui_db: Option<std::path::PathBuf>,
    /// How far back a new dashboard database is filled from the archive.
    #[cfg(feature = "duckdb")]
    #[arg(
        long,
        default_value = "90d",
        value_name = "SPAN",
        help_heading = "Dashboard"
    )]
    pub ui_history: String,
    #[cfg(feature = "duckdb")]
    #[command(flatten)]
    pub ui: UiAccessArgs,
    /// Audit this hook's delivery log against the archive in the background
    /// (as `ghreplay audit` does) and ask GitHub to redeliver what never
    /// arrived: repo:OWNER/NAME:ID, org:ORG:ID or app. Repeatable; takes
    /// the --github-* credentials. Covers the --dedupe-window (less an
    /// hour) and at most GitHub's 3 days; figures on /metrics.
    #[arg(long = "reconcile", value_name = "HOOK", help_heading = "Reconcile")]
    pub reconcile: Vec<String>,
    /// How often the background audit runs (the first pass at start).
    #[arg(
        long,
        default_value = "1h",
        value_name = "SPAN",
        help_heading = "Reconcile"
    )]
    pub reconcile_every: String,
    /// Deliveries last attempted more recently than this are left for the
    /// next pass (a request may be on its way).
    #[arg(
        long,
        default_value = "5m",
        value_name = "SPAN",
        help_heading = "Reconcile"
    )]
    pub reconcile_settle: String,
    /// Redelivery requests per second.
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "PER_SECOND",
        help_heading = "Reconcile"
    )]
    pub reconcile_rate: f64,
    #[command(flatten, next_help_heading = "GitHub (for --reconcile)")]
    pub github: GithubArgs,
}

/// Who may see the dashboard, and how it is served.
#[cfg(feature = "duckdb")]
#[derive(Debug, Args)]
#[command(next_help_heading = "Dashboard")]
pub struct UiAccessArgs {
    /// A file holding the dashboard's token (16 characters or more, e.g.
    /// from `openssl rand -hex 32`). Required unless the dashboard listens
    /// on a loopback address; every request then needs it: the login form
    /// sets a cookie, scripts send `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "FILE")]
    pub ui_token_file: Option<std::path::PathBuf>,
    /// Serve the dashboard over HTTPS with this PEM certificate chain.
    #[arg(long, value_name = "FILE", requires = "ui_tls_key")]
    pub ui_tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --ui-tls-cert.
    #[arg(long, value_name = "FILE", requires = "ui_tls_cert")]
    pub ui_tls_key: Option<std::path::PathBuf>,
    /// Hide private repositories' events (and any other event the privacy
    /// filter holds back) from the dashboard.
    #[arg(long)]
    pub ui_public_only: bool,
}

#[cfg(feature = "duckdb")]
impl UiAccessArgs {
    /// Whether any of these flags was given.
    #[must_use]
    pub fn any(&self) -> bool {
        self.ui_token_file.is_some() || self.ui_tls_cert.is_some() || self.ui_public_only
    }
}

#[cfg(feature = "duckdb")]
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The DuckDB database to show (made by `load`; opened read-only).
    #[arg(long, default_value = crate::db::DEFAULT_FILE, value_name = "FILE")]
    pub db: std::path::PathBuf,
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// Webhook secrets (one per line), to re-verify the kept signature on a
    /// delivery's page; without them it says "not checked".
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub access: UiAccessArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Duplicates: a delivery id is written once per partition (--dedupe-window \
does not apply; --keep-duplicates writes every copy). A redelivery \
archived in a later hour is in both hours' partitions: count distinct delivery_id (or \
row_key) across partitions.\n\n\
Exit status: 0 exported (or already up to date); 1 nothing in the range; 2 error; 3 exported, \
but input was skipped (corrupt objects: their hours are built again by the next run)."
)]
pub struct ExportArgs {
    /// Where to write: a directory (made if missing) or s3://bucket/prefix.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub to: String,
    /// Print the table definition of the export at --to for this engine,
    /// and exit without exporting.
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub ddl: Option<crate::export::ddl::Engine>,
    /// The table --ddl defines (name or schema.name).
    #[arg(long, default_value = "github_deliveries", value_name = "NAME")]
    pub table: String,
    /// Build every hour of the range again, whatever the manifests say.
    #[arg(long)]
    pub rebuild: bool,
    /// Export only shard I of N (I from 0: `--shard "$JOB_COMPLETION_INDEX/4"`
    /// in a Kubernetes indexed job, `$AWS_BATCH_JOB_ARRAY_INDEX` in an AWS
    /// Batch array job): the hours whose number since the epoch is I modulo
    /// N. N workers with the same --to write disjoint partitions.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    #[command(flatten)]
    pub events: EventArgs,
}

#[cfg(feature = "duckdb")]
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The DuckDB database file; made, with its schema, if missing.
    #[arg(long, default_value = crate::db::DEFAULT_FILE, value_name = "FILE")]
    pub db: std::path::PathBuf,
    /// Commit every this many bytes of payload loaded (default 32 MiB): a
    /// load killed part way keeps what it committed, and a rerun adds
    /// exactly the rest.
    #[arg(long, default_value_t = crate::sink::database::COMMIT_BYTES, value_name = "BYTES")]
    pub commit_every: usize,
    /// DuckDB's memory limit (512MB, 2GB...); default DuckDB's own, 80% of RAM.
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,
    #[command(flatten)]
    pub events: EventArgs,
}

#[cfg(feature = "duckdb")]
#[derive(Debug, Args)]
#[command(
    after_help = "Where the rows come from: --db FILE; else, when --archive (or \
GHREPLAY_ARCHIVE) is given, that archive read into an in-memory database (--since, --until \
and the selection flags choose what is read); else ./ghreplay.duckdb.\n\n\
Exit status: 0 rows printed; 1 no rows; 2 error; 3 rows printed, but archive input was \
skipped (--allow-skipped makes this 0)."
)]
pub struct QueryArgs {
    /// A canned query's name, a FILE.sql, or SQL (the last statement's
    /// result is printed).
    #[arg(required_unless_present = "list", value_name = "NAME|FILE.sql|SQL")]
    pub query: Option<String>,
    /// List the canned queries and what each answers.
    #[arg(long)]
    pub list: bool,
    /// The DuckDB database to query (opened read-only).
    #[arg(long, value_name = "FILE")]
    pub db: Option<std::path::PathBuf>,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = crate::db::render::Format::Table)]
    pub format: crate::db::render::Format,
    #[command(flatten)]
    pub events: EventArgs,
}
