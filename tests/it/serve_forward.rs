//! `serve --forward`: each archived delivery goes on to Pulse through the
//! privacy filter; a forward that fails is counted and never costs the
//! delivery (it is answered and archived regardless).

use std::time::{Duration, Instant};

use crate::common::{
    amqp_url, body, http, metric, ndjson, post_delivery, run, topic_with_queue, Bound, Moto, Proxy,
    Server, RABBIT_PORT,
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

/// The delivery ids in SNS messages read from a subscribed queue.
fn sns_ids(got: &[serde_json::Value]) -> Vec<String> {
    let mut ids: Vec<String> = got
        .iter()
        .map(|m| {
            let inner: serde_json::Value =
                serde_json::from_str(m["Message"].as_str().unwrap()).unwrap();
            inner["request_id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn three_targets_each_get_their_share_and_an_outage_with_a_restart_loses_nothing() {
    let moto = Moto::start();
    let all = topic_with_queue(&moto).await;
    let public = topic_with_queue(&moto).await;
    let q = Bound::new("forward-three").await;
    let dir = tempfile::tempdir().unwrap();
    let forwards = [
        format!("sns:{}?include_private=true", all.arn),
        format!("sns:{}", public.arn),
        format!("{}?exchange={}", amqp_url(RABBIT_PORT), q.exchange),
    ];
    let args: Vec<&str> = forwards
        .iter()
        .flat_map(|f| ["--forward", f.as_str()])
        .collect();
    let mut env = moto.env();
    env.push(("RUST_LOG", "warn,ghreplay=debug".into()));
    let start = || Server::start_with(dir.path().as_os_str(), &args, &env);
    let push = |repo: &str, private: bool| {
        payload(
            repo,
            private,
            r#""ref":"refs/heads/main","commits":[],"pusher":{"name":"a"},"#,
        )
    };

    let mut server = start();
    let post = |port: u16, id: &str, body: &[u8]| {
        assert_eq!(post_delivery(port, "push", id, body).status, 200);
    };
    post(server.port, "p-1", &push("o/public", false));
    post(server.port, "p-2", &push("o/secret", true));
    q.wait_for(1).await;

    // The exchange goes away; a delivery arrives; serve is killed and
    // started again while the exchange is still gone; another arrives.
    q.delete_exchange().await;
    post(server.port, "p-3", &push("o/public", false));
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    server = start();
    post(server.port, "p-4", &push("o/public", false));
    q.restore_exchange().await;

    q.wait_for(3).await;
    let ids: std::collections::BTreeSet<String> = q
        .drain()
        .await
        .iter()
        .map(|m| body(m)["request_id"].as_str().unwrap().to_owned())
        .collect();
    let want = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        want(&["p-1", "p-3", "p-4"]),
        "every public delivery reached Pulse, across the outage and the restart"
    );
    let mut got_all = sns_ids(&all.receive(4).await);
    got_all.dedup();
    assert_eq!(
        got_all,
        want(&["p-1", "p-2", "p-3", "p-4"]),
        "the private one only here"
    );
    let mut got_public = sns_ids(&public.receive(3).await);
    got_public.dedup();
    assert_eq!(got_public, want(&["p-1", "p-3", "p-4"]));
    let backlog = http(server.port, "GET", "/metrics", &[], b"").body;
    assert!(
        backlog.contains("ghreplay_forward_backlog{target=\"sns:"),
        "{backlog}"
    );
    q.delete().await;
}
