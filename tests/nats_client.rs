//! A NATS client written by someone else — the `async-nats` crate, used unchanged —
//! against a real `shardcast serve` (2 shards, as `shardcast serve --shards 2`):
//! pub/sub order, wildcards, queue groups, UNSUB max, request/reply, no-responders,
//! headers, no-echo, many connections and a payload near the 1 MiB limit.
//!
//! Every wait for a message is bounded, so a broken server fails a test instead of
//! hanging it.
//!
//! Readiness: the server makes a SUB visible on every shard once the subscriber's
//! PING gets its PONG, but async-nats 0.38's `Client::flush()` only writes buffered
//! bytes out; it sends no PING. So subscribers flush, and then `ready(publisher,
//! subscriber)` proves their subscriptions are visible to the publisher before it
//! publishes (see there).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, HeaderMap, Message, RequestErrorKind, Subscriber};
use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use futures::FutureExt;

use common::Server;

/// How long any expectation waits before failing.
const WAIT: Duration = Duration::from_secs(10);

async fn connect(server: &Server) -> Client {
    connect_with(server, ConnectOptions::new()).await
}

async fn connect_with(server: &Server, options: ConnectOptions) -> Client {
    tokio::time::timeout(WAIT, options.connect(format!("nats://{}", server.addr)))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// Subscribes and flushes the SUB out to the server (no PING: see `ready`).
async fn subscribe(client: &Client, subject: &str) -> Subscriber {
    let sub = client
        .subscribe(subject.to_string())
        .await
        .expect("subscribe");
    flush(client).await;
    sub
}

/// Returns once everything `subscriber` subscribed to so far is visible to `publisher`.
///
/// `subscriber` subscribes to a fresh inbox *after* its real subscriptions, and
/// `publisher` publishes probes there until one arrives. A server applies one
/// connection's SUBs in order (on shardcast: one FIFO ring per shard pair), so the
/// earlier subscriptions are in effect for `publisher` too. Probes never touch the
/// subjects under test.
async fn ready(publisher: &Client, subscriber: &Client) {
    let subject = subscriber.new_inbox();
    let mut probe = subscribe(subscriber, &subject).await;
    let deadline = Instant::now() + WAIT;
    loop {
        publisher
            .publish(subject.clone(), "probe".into())
            .await
            .expect("publish probe");
        flush(publisher).await;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(20), probe.next()).await {
            assert_eq!(m.payload, "probe");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a subscription never became visible to another connection within {WAIT:?}"
        );
    }
}

async fn flush(client: &Client) {
    tokio::time::timeout(WAIT, client.flush())
        .await
        .expect("flush timed out")
        .expect("flush");
}

/// The next message, or a failure naming what was being waited for.
async fn next<S: Stream<Item = Message> + Unpin>(sub: &mut S, what: &str) -> Message {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(m)) => m,
        Ok(None) => panic!("{what}: subscription ended"),
        Err(_) => panic!("{what}: nothing arrived within {WAIT:?}"),
    }
}

/// Exactly `n` messages within one overall deadline.
async fn next_n<S: Stream<Item = Message> + Unpin>(
    sub: &mut S,
    n: usize,
    what: &str,
) -> Vec<Message> {
    let mut got = Vec::with_capacity(n);
    let collect = async {
        while got.len() < n {
            match sub.next().await {
                Some(m) => got.push(m),
                None => return false,
            }
        }
        true
    };
    match tokio::time::timeout(WAIT, collect).await {
        Ok(true) => got,
        Ok(false) => panic!("{what}: subscription ended after {} of {n}", got.len()),
        Err(_) => panic!("{what}: {} of {n} arrived within {WAIT:?}", got.len()),
    }
}

/// Nothing more is waiting on `sub`: `publisher` gets a probe through to every client in
/// `subscribers` (see [`ready`]) after what it published before, and a server delivers one
/// publisher's messages to each connection in order, so anything that publisher sent
/// earlier to those clients has been handed to their subscriptions by then. (A
/// subscription that has ended counts as quiet.)
async fn expect_quiet<S: Stream<Item = Message> + Unpin>(
    publisher: &Client,
    subscribers: &[&Client],
    sub: &mut S,
    what: &str,
) {
    for client in subscribers {
        ready(publisher, client).await;
    }
    if let Some(Some(m)) = sub.next().now_or_never() {
        panic!(
            "{what}: expected nothing, got {} {:?}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        );
    }
}

fn payloads(msgs: &[Message]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

async fn publish_numbered(client: &Client, subject: &str, n: usize) {
    for i in 0..n {
        client
            .publish(subject.to_string(), i.to_string().into())
            .await
            .expect("publish");
    }
    flush(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_delivers_100_messages_in_order() {
    let server = Server::start(2);
    let subscriber = connect(&server).await;
    let publisher = connect(&server).await;
    let mut sub = subscribe(&subscriber, "orders.new").await;
    ready(&publisher, &subscriber).await;

    publish_numbered(&publisher, "orders.new", 100).await;

    let got = next_n(&mut sub, 100, "orders.new").await;
    assert_eq!(payloads(&got), numbered(100));
    assert!(got.iter().all(|m| m.subject.as_str() == "orders.new"));
    assert!(got.iter().all(|m| m.reply.is_none() && m.headers.is_none()));
    expect_quiet(&publisher, &[&subscriber], &mut sub, "after 100").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_star_matches_one_token_and_gt_matches_the_rest() {
    let server = Server::start(2);
    let subscriber = connect(&server).await;
    let publisher = connect(&server).await;
    let mut star = subscribe(&subscriber, "foo.*").await;
    let mut rest = subscribe(&subscriber, "foo.>").await;
    ready(&publisher, &subscriber).await;

    for subject in ["foo.bar", "foo.bar.baz", "foo", "foo.end"] {
        publisher
            .publish(subject, subject.to_string().into())
            .await
            .expect("publish");
    }
    flush(&publisher).await;

    // "foo.end" matches both and is published last: everything before it is in.
    let subjects =
        |msgs: &[Message]| -> Vec<String> { msgs.iter().map(|m| m.subject.to_string()).collect() };
    let got = next_n(&mut star, 2, "foo.*").await;
    assert_eq!(subjects(&got), ["foo.bar", "foo.end"]);
    assert_eq!(payloads(&got), ["foo.bar", "foo.end"]);
    let got = next_n(&mut rest, 3, "foo.>").await;
    assert_eq!(subjects(&got), ["foo.bar", "foo.bar.baz", "foo.end"]);
    assert_eq!(payloads(&got), ["foo.bar", "foo.bar.baz", "foo.end"]);
    expect_quiet(&publisher, &[&subscriber], &mut star, "foo.*").await;
    expect_quiet(&publisher, &[], &mut rest, "foo.>").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_members_share_600_messages_exactly_once() {
    let server = Server::start(2);
    let mut members = Vec::new();
    let mut member_subs = Vec::new();
    for _ in 0..6 {
        let c = connect(&server).await;
        let s = c
            .queue_subscribe("work", "q".to_string())
            .await
            .expect("queue_subscribe");
        flush(&c).await;
        members.push(c);
        member_subs.push(s);
    }
    let watcher = connect(&server).await;
    let mut plain = subscribe(&watcher, "work").await;
    let publisher = connect(&server).await;
    for c in members.iter().chain([&watcher]) {
        ready(&publisher, c).await;
    }

    publish_numbered(&publisher, "work", 600).await;

    // The plain subscriber sees every message, in order.
    let got = next_n(&mut plain, 600, "plain subscriber").await;
    assert_eq!(payloads(&got), numbered(600));
    expect_quiet(
        &publisher,
        &[&watcher],
        &mut plain,
        "plain subscriber after 600",
    )
    .await;

    // The group as a whole sees every message exactly once.
    let mut group = stream::select_all(member_subs);
    let got = next_n(&mut group, 600, "queue group").await;
    let mut seen = BTreeSet::new();
    for p in payloads(&got) {
        assert!(
            seen.insert(p.clone()),
            "message {p} delivered twice to the group"
        );
    }
    let want: BTreeSet<String> = numbered(600).into_iter().collect();
    assert_eq!(seen, want);
    assert!(got.iter().all(|m| m.subject.as_str() == "work"));
    let clients: Vec<&Client> = members.iter().collect();
    expect_quiet(&publisher, &clients, &mut group, "queue group after 600").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_after_3_delivers_3_then_ends() {
    // async-nats counts deliveries too and drops what comes past the limit, so the
    // subscription alone cannot show a server that ignores the limit. The client's
    // statistics count every MSG that arrives on the connection: they must show 3 too.
    let server = Server::start(2);
    let subscriber = connect(&server).await;
    let publisher = connect(&server).await;
    let mut sub = subscribe(&subscriber, "limited").await;
    sub.unsubscribe_after(3).await.expect("unsubscribe_after");
    // The only other subject `subscriber` receives on: it marks points in the
    // publisher's stream.
    let marker_subject = subscriber.new_inbox();
    let mut marker = subscribe(&subscriber, &marker_subject).await;
    let mut markers = 0u64;
    // Probes until one arrives: then the SUB, UNSUB and SUB above are in effect for
    // the publisher (as in `ready`, whose probes would land on other subjects).
    let deadline = Instant::now() + WAIT;
    loop {
        publisher
            .publish(marker_subject.clone(), "probe".into())
            .await
            .expect("publish probe");
        flush(&publisher).await;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(20), marker.next()).await {
            markers += 1;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the subscriptions never became visible within {WAIT:?}"
        );
    }

    publish_numbered(&publisher, "limited", 10).await;
    publisher
        .publish(marker_subject.clone(), "end".into())
        .await
        .expect("publish end");
    flush(&publisher).await;

    // One publisher's messages reach a connection in the order published: when "end"
    // arrives, every MSG for "limited" the server sent has arrived and been counted.
    loop {
        let m = next(&mut marker, "end marker").await;
        markers += 1;
        if m.payload == "end" {
            break;
        }
    }
    let in_messages = subscriber.statistics().in_messages.load(Ordering::Relaxed);
    assert_eq!(
        in_messages - markers,
        3,
        "MSGs for \"limited\" that arrived on the connection"
    );
    let got = next_n(&mut sub, 3, "limited").await;
    assert_eq!(payloads(&got), ["0", "1", "2"]);
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(None) => {}
        Ok(Some(m)) => panic!(
            "a 4th message arrived: {:?}",
            String::from_utf8_lossy(&m.payload)
        ),
        Err(_) => panic!("the subscription did not end after 3 messages"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_50_requests_in_sequence() {
    let server = Server::start(2);
    let responder = connect(&server).await;
    let mut requests = subscribe(&responder, "svc.echo").await;
    let echo = tokio::spawn({
        let responder = responder.clone();
        async move {
            while let Some(m) = requests.next().await {
                let reply = m.reply.expect("a request carries a reply subject");
                let mut body = b"re:".to_vec();
                body.extend_from_slice(&m.payload);
                responder
                    .publish(reply, body.into())
                    .await
                    .expect("publish reply");
            }
        }
    });
    let requester = connect(&server).await;
    ready(&requester, &responder).await;

    let first = tokio::time::timeout(WAIT, requester.request("svc.echo", "hi".into()))
        .await
        .expect("request timed out")
        .expect("request");
    assert_eq!(first.payload, "re:hi");

    for i in 0..50 {
        let body = format!("hi-{i}");
        let reply = tokio::time::timeout(WAIT, requester.request("svc.echo", body.into()))
            .await
            .unwrap_or_else(|_| panic!("request {i} timed out"))
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&reply.payload),
            format!("re:hi-{i}"),
            "reply to request {i}"
        );
    }
    echo.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_responders_fails_with_no_responders_not_a_timeout() {
    let server = Server::start(2);
    let client = connect(&server).await;
    // async-nats' own request timeout (10 s) would end it with a timeout error instead.
    let result = tokio::time::timeout(WAIT, client.request("nobody.here", "anyone?".into()))
        .await
        .expect("request did not finish within 10 s");
    match result {
        Err(e) => assert_eq!(e.kind(), RequestErrorKind::NoResponders, "error: {e}"),
        Ok(m) => panic!(
            "got a reply: {} {:?}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_with_repeated_values_arrive_intact() {
    let server = Server::start(2);
    let subscriber = connect(&server).await;
    let publisher = connect(&server).await;
    let mut sub = subscribe(&subscriber, "hdr").await;
    ready(&publisher, &subscriber).await;

    let mut headers = HeaderMap::new();
    headers.insert("X-Test", "1");
    headers.append("X-Multi", "first");
    headers.append("X-Multi", "second");
    publisher
        .publish_with_headers("hdr", headers, "body".into())
        .await
        .expect("publish_with_headers");
    flush(&publisher).await;

    let m = next(&mut sub, "hdr").await;
    assert_eq!(m.subject.as_str(), "hdr");
    assert_eq!(m.payload, "body");
    assert_eq!(m.status, None, "no status line expected");
    let h = m.headers.expect("headers");
    assert_eq!(h.get("X-Test").map(|v| v.as_str()), Some("1"));
    let multi: Vec<&str> = h.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, ["first", "second"]);
    assert_eq!(h.len(), 2, "exactly two header names: {h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_echo_client_does_not_get_its_own_messages() {
    let server = Server::start(2);
    let quiet = connect_with(&server, ConnectOptions::new().no_echo().name("no-echo")).await;
    let normal = connect_with(&server, ConnectOptions::new().name("normal")).await;
    let mut own = subscribe(&quiet, "echo.t").await;
    let mut other = subscribe(&normal, "echo.t").await;
    ready(&quiet, &normal).await;
    ready(&normal, &quiet).await;

    quiet
        .publish("echo.t", "from-quiet".into())
        .await
        .expect("publish");
    flush(&quiet).await;

    let m = next(&mut other, "normal client").await;
    assert_eq!(m.payload, "from-quiet");

    // It still receives what others publish on the same subject. This also shows its own
    // message did not come back: a local echo would have been queued for it before
    // `normal` even received the message, so it would arrive first.
    normal
        .publish("echo.t", "from-normal".into())
        .await
        .expect("publish");
    flush(&normal).await;
    let m = next(&mut own, "no-echo client, other's message").await;
    assert_eq!(m.payload, "from-normal");
    let m = next(&mut other, "normal client, own message (echo on)").await;
    assert_eq!(m.payload, "from-normal");
    expect_quiet(&normal, &[&quiet], &mut own, "no-echo client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_200_messages_to_100_connections_on_2_shards() {
    let server = Server::start(2);
    let publisher = connect(&server).await;
    let mut clients = Vec::new();
    let mut subs = Vec::new();
    for _ in 0..100 {
        let c = connect(&server).await;
        subs.push(subscribe(&c, "fan").await);
        ready(&publisher, &c).await;
        clients.push(c);
    }
    let receivers: Vec<_> = subs
        .into_iter()
        .enumerate()
        .map(|(i, mut sub)| {
            tokio::spawn(async move {
                let got = next_n(&mut sub, 200, &format!("subscriber {i}")).await;
                assert_eq!(payloads(&got), numbered(200), "subscriber {i}");
                sub
            })
        })
        .collect();

    publish_numbered(&publisher, "fan", 200).await;

    for (i, (r, client)) in receivers.into_iter().zip(&clients).enumerate() {
        match r.await {
            Ok(mut sub) => {
                let what = format!("subscriber {i} after 200");
                expect_quiet(&publisher, &[client], &mut sub, &what).await;
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_of_1_000_000_bytes_arrives_intact() {
    let server = Server::start(2);
    let subscriber = connect(&server).await;
    let publisher = connect(&server).await;
    assert_eq!(publisher.server_info().max_payload, 1024 * 1024);
    let mut sub = subscribe(&subscriber, "big").await;
    ready(&publisher, &subscriber).await;

    let body: Bytes = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into();
    publisher
        .publish("big", body.clone())
        .await
        .expect("publish");
    flush(&publisher).await;

    let m = next(&mut sub, "big").await;
    assert_eq!(m.payload.len(), 1_000_000);
    assert!(m.payload == body, "payload differs from what was sent");
    expect_quiet(&publisher, &[&subscriber], &mut sub, "after the big one").await;
}
