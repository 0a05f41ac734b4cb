//! ghreplay: read, replay and analyse archived GitHub webhook deliveries.
//!
//! See ARCHITECTURE.md for the map. In one line:
//! `source -> decode -> filter -> sink`, assembled by [`pipeline`].

pub mod archive;
pub mod audit;
pub mod aws;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
#[cfg(feature = "duckdb")]
pub mod db;
pub mod decode;
pub mod deliver;
pub mod export;
pub mod filter;
#[doc(hidden)]
pub mod fuzzing;
pub mod github;
pub mod model;
pub mod net;
pub mod output;
pub mod pipeline;
pub mod retry;
pub mod server;
pub mod signature;
pub mod sink;
pub mod snowflake;
pub mod source;
#[cfg(feature = "duckdb")]
pub mod ui;
