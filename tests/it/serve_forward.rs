//! `serve --forward`: each archived delivery goes on to Pulse through the
//! privacy filter; a forward that fails is counted and never costs the
//! delivery (it is answered and archived regardless).

use std::time::{Duration, Instant};

use crate::common::{
    amqp_url, body, metric, ndjson, post_delivery, run, Bound, Proxy, Server, RABBIT_PORT,
};

fn payload(repo: &str, private: bool, extra: &str) -> Vec<u8> {
    format!(r#"{{{extra}"repository":{{"full_name":"{repo}","private":{private}}},"sender":{{"login":"a"}}}}"#).into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_public_events_are_forwarded_shaped_as_pulse() {
    let q = Bound::new("forward").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--forward",
            &amqp_url(RABBIT_PORT),
            "--forward-exchange",
            &q.exchange,
        ],
    );
    let push = payload(
        "o/public",
        false,
        r#""ref":"refs/heads/main","commits":[],"pusher":{"name":"a"},"#,
    );
    assert_eq!(post_delivery(server.port, "push", "f-1", &push).status, 200);
    let private_push = payload(
        "o/secret",
        true,
        r#""ref":"refs/heads/main","commits":[],"pusher":{"name":"a"},"#,
    );
    assert_eq!(
        post_delivery(server.port, "push", "f-2", &private_push).status,
        200
    );
    let member = payload(
        "o/public",
        false,
        r#""action":"added","member":{"login":"b"},"#,
    );
    assert_eq!(
        post_delivery(server.port, "member", "f-3", &member).status,
        200
    );

    let got = q.drain().await;
    assert_eq!(got.len(), 1, "only the public push");
    assert_eq!(got[0].delivery.routing_key.as_str(), "o/public/push");
    let b = body(&got[0]);
    assert_eq!(b["request_id"], "f-1");
    assert_eq!(
        b["payload"],
        serde_json::from_slice::<serde_json::Value>(&push).unwrap()
    );
    assert_eq!(metric(server.port, "ghreplay_forwarded_total"), 1);
    assert_eq!(
        metric(server.port, "ghreplay_forward_held_private_total"),
        2
    );
    assert_eq!(metric(server.port, "ghreplay_forward_failures_total"), 0);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_forward_is_counted_and_never_costs_the_delivery() {
    let q = Bound::new("forward-down").await;
    let proxy = Proxy::start(RABBIT_PORT);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--forward",
            &amqp_url(proxy.port),
            "--forward-exchange",
            &q.exchange,
        ],
    );
    proxy.refuse();
    let push = payload(
        "o/public",
        false,
        r#""ref":"refs/heads/main","commits":[],"pusher":{"name":"a"},"#,
    );
    let started = Instant::now();
    let r = post_delivery(server.port, "push", "down-1", &push);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the 200 did not wait for the forward"
    );
    let lines = ndjson(&run(&["--archive", dir.path().to_str().unwrap(), "cat"]));
    assert_eq!(lines.len(), 1, "archived regardless");

    // The forwarder gives up on the broker after its retry time, and counts it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(server.port, "ghreplay_forward_failures_total") == 0 {
        assert!(Instant::now() < deadline, "the failure was never counted");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    q.delete().await;
}
