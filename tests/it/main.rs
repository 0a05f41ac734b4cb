//! The integration tests, as one binary (the layout ripgrep and cargo use):
//! every test module links the crate and DuckDB once, not once per file.
#![allow(clippy::unwrap_used)] // a panic is the test failure report

mod common;

mod architecture;
mod audit;
mod cat;
mod conformance;
mod export;
mod fuzz_corpus;
mod infer_fixtures;
mod list;
mod load_query;
mod republish;
mod republish_amqps;
mod republish_forced_close;
mod republish_http;
mod republish_octokit;
mod republish_outage;
mod republish_sns;
mod s3;
mod s3_faults;
mod serve;
mod serve_crash;
mod serve_disk_full;
mod serve_forward;
mod serve_hostile;
mod serve_s3;
mod snowflake;
mod ui;
