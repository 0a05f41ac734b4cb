//! A receiver that does the least: for `benches/serve.sh`, an axum server
//! that verifies the signature (with ghreplay's own verifier) and answers
//! 200, archiving nothing; for `benches/http.sh` (`--ok`), one that answers
//! 200 to every POST. Prints its address, then serves until killed.
//!
//! ```text
//! cargo bench --bench bare_receiver -- SECRET
//! cargo bench --bench bare_receiver -- --ok
//! ```
#![allow(clippy::unwrap_used)] // a benchmark tool

#[path = "support/args.rs"]
mod args;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use ghreplay::signature::{self, Secret};

#[tokio::main]
async fn main() {
    let secret = args::args().into_iter().next().unwrap();
    let verify_signatures = secret != "--ok";
    let secrets = std::sync::Arc::new(vec![Secret::new(secret)]);
    let app = Router::new().route(
        "/webhook",
        post(move |headers: HeaderMap, body: Bytes| {
            let secrets = secrets.clone();
            async move {
                let sig = headers
                    .get("x-hub-signature-256")
                    .map(axum::http::HeaderValue::as_bytes);
                if !verify_signatures {
                    return StatusCode::OK;
                }
                match signature::verify(&secrets, &body, sig, None, false) {
                    Ok(()) => StatusCode::OK,
                    Err(_) => StatusCode::UNAUTHORIZED,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
