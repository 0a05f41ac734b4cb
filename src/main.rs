use std::process::ExitCode;

use clap::Parser as _;
use ghreplay::cli::Cli;
use ghreplay::commands::{self, EXIT_ERROR};
use tracing_subscriber::EnvFilter;

/// With DuckDB linked, jemalloc for the whole process, DuckDB's C++ included
/// (see Cargo.toml and .cargo/config.toml for why and how it is set up).
#[cfg(all(feature = "duckdb", target_os = "linux"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // aws_config warns at length when it looks for a region or credentials
    // off EC2; the error that matters, if any, comes back from the request.
    let level = match cli.global.verbose {
        0 => "warn,aws_config=error",
        1 => "info,aws_config=warn",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level)),
        )
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ghreplay: cannot start: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("ghreplay: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
