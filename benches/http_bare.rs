//! The baseline for `benches/http.sh`: the least an HTTP client re-sending
//! webhook deliveries can do. It loads the events (as `ghreplay cat` prints
//! them) into memory first, then only POSTs their payloads (the archived
//! bytes, as ghreplay sends them) with the
//! delivery headers, `concurrency` requests in flight, through the same
//! client stack ghreplay uses (hyper-util's pooled HTTP/1.1 client).
//!
//! ```text
//! cargo bench --bench http_bare -- URL CONCURRENCY EVENTS.ndjson
//! ```
//! Prints `<requests> <seconds>`.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // a benchmark tool

#[path = "support/args.rs"]
mod args;

use std::io::BufRead as _;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One line of `ghreplay cat`.
#[derive(serde::Deserialize)]
struct Line<'a> {
    event: String,
    delivery_id: Option<String>,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

#[tokio::main]
async fn main() {
    let args = args::args();
    let (url, concurrency, events) = (&args[0], args[1].parse::<usize>().unwrap(), &args[2]);
    let requests: Vec<(String, String, Bytes)> =
        std::io::BufReader::new(std::fs::File::open(events).unwrap())
            .lines()
            .map(|l| {
                let l = l.unwrap();
                let e: Line<'_> = serde_json::from_str(&l).unwrap();
                (
                    e.event,
                    e.delivery_id.unwrap_or_else(|| "none".into()),
                    // The payload's bytes as archived, as ghreplay sends
                    // them: not re-serialized, which would drop the
                    // archive's spaces and post fewer bytes.
                    Bytes::copy_from_slice(e.payload.get().as_bytes()),
                )
            })
            .collect();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = url.parse().unwrap();
    let n = requests.len();
    let start = Instant::now();
    futures::stream::iter(requests)
        .map(|(event, id, body)| {
            let req = Request::builder()
                .method(Method::POST)
                .uri(uri.clone())
                .header("content-type", "application/json")
                .header("x-github-event", event)
                .header("x-github-delivery", id)
                .body(Full::new(body))
                .unwrap();
            let sent = client.request(req);
            async move {
                let resp = sent.await.unwrap();
                assert!(resp.status().is_success());
                resp.into_body().collect().await.unwrap();
            }
        })
        .buffered(concurrency)
        .collect::<Vec<()>>()
        .await;
    println!("{n} {}", start.elapsed().as_secs_f64());
}
