//! A TCP proxy that adds latency, for `benches/read_s3.sh`: what S3 costs a
//! reader that moto on the same machine does not, a round trip before each
//! answer. Every chunk a client sends is held for `DELAY_MS` before it is
//! passed on (in order), so each request reaches the server `DELAY_MS` late;
//! answers come back at once. Other tests are not slowed (unlike `tc netem`).
//!
//! ```text
//! cargo bench --bench latency_proxy -- UPSTREAM_ADDR DELAY_MS
//! ```
//! Prints the address it listens on, then serves until killed.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // a benchmark tool

#[path = "support/args.rs"]
mod args;

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

#[tokio::main]
async fn main() {
    let args = args::args();
    let upstream = args[0].clone();
    let delay = Duration::from_millis(args[1].parse().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    loop {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(&upstream).await {
                relay(client, server, delay).await;
            }
        });
    }
}

async fn relay(client: TcpStream, server: TcpStream, delay: Duration) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    // Client to server, each chunk due `delay` after it arrived.
    let (due_tx, mut due_rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
            if due_tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, bytes)) = due_rx.recv().await {
            tokio::time::sleep_until(due).await;
            if server_tx.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = server_tx.shutdown().await;
    };
    let back = async move {
        let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(read, write, back);
}
