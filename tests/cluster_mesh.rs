//! shardcast nodes (2 shards each) as leaf nodes of a real 3-node nats-server cluster
//! (issue 13): subjects, wildcards, queue groups, requests and order across nodes, and
//! what happens when a hub member or a shardcast node dies. IRC across nodes:
//! tests/cluster_irc.rs.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};

use common::cluster::{node, subscribe_across, Hubs};
use common::get_json;

async fn connect(addr: std::net::SocketAddr) -> async_nats::Client {
    async_nats::connect(format!("nats://{addr}"))
        .await
        .expect("connect")
}

async fn next_payload(sub: &mut async_nats::Subscriber, what: &str) -> Vec<u8> {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap_or_else(|_| panic!("{what} never came"))
        .expect("subscription open")
        .payload
        .to_vec()
}

async fn nothing_more(sub: &mut async_nats::Subscriber, what: &str) {
    let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(extra.is_err(), "{what}: an extra message: {extra:?}");
}

#[test]
fn subjects_wildcards_requests_and_order_cross_between_nodes() {
    let hubs = Hubs::start();
    let a = node(&hubs, "node-a", &[0]);
    let b = node(&hubs, "node-b", &[1]);
    hubs.wait_for_leafs(2);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let on_a = connect(a.addr).await;
        let on_b = connect(b.addr).await;
        let native = connect(hubs.nodes[2].client).await;

        // Wildcards on both nodes and on a native client behind the third hub.
        let mut b_star = subscribe_across(&on_b, "chat.*", &on_a).await;
        let mut native_all = subscribe_across(&native, "chat.>", &on_a).await;
        let mut a_all = subscribe_across(&on_a, "chat.>", &on_b).await;
        // Each probe reached the others too: start clean.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for sub in [&mut b_star, &mut native_all, &mut a_all] {
            while let Some(Some(_)) = sub.next().now_or_never() {}
        }
        for (from, subject) in [(&on_a, "chat.a"), (&on_b, "chat.b"), (&native, "chat.n.x")] {
            from.publish(subject, subject.into()).await.expect("pub");
            from.flush().await.expect("flush");
        }
        // chat.* matches two of the three; a publisher gets its own message only when
        // its node delivers it locally (echo is on for async-nats).
        let mut got_b = vec![
            next_payload(&mut b_star, "chat.* 1").await,
            next_payload(&mut b_star, "chat.* 2").await,
        ];
        got_b.sort();
        assert_eq!(got_b, vec![b"chat.a".to_vec(), b"chat.b".to_vec()]);
        nothing_more(&mut b_star, "chat.* on node b").await;
        let mut got_n = Vec::new();
        let mut got_a = Vec::new();
        for i in 0..3 {
            got_n.push(next_payload(&mut native_all, &format!("chat.> {i}")).await);
            got_a.push(next_payload(&mut a_all, &format!("chat.> on a {i}")).await);
        }
        got_n.sort();
        got_a.sort();
        let all = vec![b"chat.a".to_vec(), b"chat.b".to_vec(), b"chat.n.x".to_vec()];
        assert_eq!(got_n, all, "the native client got each once");
        assert_eq!(got_a, all, "node a got each once");
        nothing_more(&mut native_all, "chat.> on the hub").await;
        nothing_more(&mut a_all, "chat.> on node a").await;

        // A request from node a to a responder on node b, and back.
        let mut service = subscribe_across(&on_b, "svc.time", &on_a).await;
        let responder = on_b.clone();
        tokio::spawn(async move {
            while let Some(req) = service.next().await {
                if let Some(reply) = req.reply {
                    let _ = responder.publish(reply, "noon".into()).await;
                }
            }
        });
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            on_a.request("svc.time", "what time".into()),
        )
        .await
        .expect("in time")
        .expect("a reply from node b");
        assert_eq!(answer.payload, "noon");
        // Nobody anywhere serves svc.none: a 503 (no responders), from node a itself.
        let none = tokio::time::timeout(
            Duration::from_secs(10),
            on_a.request("svc.none", "anyone?".into()),
        )
        .await
        .expect("in time");
        assert!(
            matches!(&none, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders),
            "{none:?}"
        );

        // 10k sequenced messages from node a reach node b in order, none lost or doubled.
        let mut seq = subscribe_across(&on_b, "seq.test", &on_a).await;
        for i in 0..10_000u32 {
            on_a.publish("seq.test", i.to_be_bytes().to_vec().into())
                .await
                .expect("pub");
        }
        on_a.flush().await.expect("flush");
        for i in 0..10_000u32 {
            let got = next_payload(&mut seq, &format!("message {i}")).await;
            assert_eq!(got, i.to_be_bytes(), "in order");
        }
        nothing_more(&mut seq, "seq.test").await;
    });
}

/// Members of one queue group: name → the payloads each got.
type Tally = BTreeMap<&'static str, Vec<u32>>;

#[test]
fn queue_groups_deliver_once_cluster_wide_preferring_local_members() {
    let hubs = Hubs::start();
    let a = node(&hubs, "node-a", &[0]);
    let b = node(&hubs, "node-b", &[1]);
    hubs.wait_for_leafs(2);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let on_a = connect(a.addr).await;
        let on_a2 = connect(a.addr).await;
        let on_b = connect(b.addr).await;
        let native = connect(hubs.nodes[2].client).await;
        let native_pub = connect(hubs.nodes[0].client).await;

        // Group "workers" on jobs.*: two members on node a, one on node b, one native.
        let members: Vec<(&'static str, &async_nats::Client)> = vec![
            ("a1", &on_a),
            ("a2", &on_a2),
            ("b1", &on_b),
            ("n1", &native),
        ];
        let mut subs = Vec::new();
        for (name, client) in &members {
            let sub = client
                .queue_subscribe("jobs.*", "workers".into())
                .await
                .expect("qsub");
            client.flush().await.expect("flush");
            subs.push((*name, sub));
        }
        // The group's interest has crossed when a native publish reaches a member (which
        // one is the cluster's choice: nats-server sends a client's message to members in
        // its own cluster before leaf ones); then a moment for the rest of it.
        let deadline = Instant::now() + Duration::from_secs(20);
        'probe: loop {
            native_pub
                .publish("jobs.probe", "probe".into())
                .await
                .expect("probe");
            native_pub.flush().await.expect("flush");
            tokio::time::sleep(Duration::from_millis(50)).await;
            for (_, sub) in &mut subs {
                if let Some(Some(_)) = sub.next().now_or_never() {
                    break 'probe;
                }
            }
            assert!(Instant::now() < deadline, "no probe reached the group");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (_, sub) in &mut subs {
            while let Some(Some(_)) = sub.next().now_or_never() {}
        }

        // 300 jobs from each of node a, node b and the native publisher (ids 0.., 1000..,
        // 2000..).
        const N: u32 = 300;
        for (base, client) in [(0u32, &on_a), (1000, &on_b), (2000, &native_pub)] {
            for i in base..base + N {
                client
                    .publish(format!("jobs.{}", i % 5), i.to_be_bytes().to_vec().into())
                    .await
                    .expect("pub");
            }
            client.flush().await.expect("flush");
        }
        let mut tally: Tally = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut total = 0;
        while total < 3 * N as usize {
            for (name, sub) in &mut subs {
                while let Some(Some(m)) = sub.next().now_or_never() {
                    let id = u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes"));
                    tally.entry(name).or_default().push(id);
                    total += 1;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{total} of {} jobs delivered: {tally:?}",
                3 * N
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (name, sub) in &mut subs {
            while let Some(Some(m)) = sub.next().now_or_never() {
                let id = u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes"));
                tally.entry(name).or_default().push(id);
            }
        }
        let mut all: Vec<u32> = tally.values().flatten().copied().collect();
        all.sort_unstable();
        let want: Vec<u32> = (0..N).chain(1000..1000 + N).chain(2000..2000 + N).collect();
        assert_eq!(all, want, "every job exactly once across the cluster");
        // A publish on a node with members of the group stays there (local members first).
        let on = |names: &[&str], range: std::ops::Range<u32>| {
            names
                .iter()
                .map(|n| {
                    tally
                        .get(n)
                        .map_or(0, |v| v.iter().filter(|i| range.contains(i)).count())
                })
                .sum::<usize>()
        };
        assert_eq!(on(&["a1", "a2"], 0..N), N as usize, "{tally:?}");
        assert_eq!(on(&["b1"], 1000..1000 + N), N as usize, "{tally:?}");
        // Both of node a's members take a share of node a's jobs.
        assert!(on(&["a1"], 0..N) > 0 && on(&["a2"], 0..N) > 0, "{tally:?}");

        // A group with no member on node a: node a's publishes go up to its members.
        let mut solo = on_b
            .queue_subscribe("solo", "only-b".into())
            .await
            .expect("qsub");
        on_b.flush().await.expect("flush");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            on_a.publish("solo", "probe".into()).await.expect("pub");
            on_a.flush().await.expect("flush");
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), solo.next()).await
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node b's group never got node a's job"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        while let Some(Some(_)) = solo.next().now_or_never() {}
        for i in 0..100u32 {
            on_a.publish("solo", i.to_be_bytes().to_vec().into())
                .await
                .expect("pub");
        }
        on_a.flush().await.expect("flush");
        for i in 0..100u32 {
            assert_eq!(next_payload(&mut solo, "solo job").await, i.to_be_bytes());
        }
        nothing_more(&mut solo, "solo").await;
    });
}

#[test]
fn a_hub_member_killed_mid_stream_the_link_moves_and_order_holds() {
    let mut hubs = Hubs::start();
    // Node a knows only hub0: it must learn the others from hub0's INFO.
    let a = node(&hubs, "node-a", &[0]);
    let b = node(&hubs, "node-b", &[1]);
    hubs.wait_for_leafs(2);
    let http_a = common::monitoring_addr(&a);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let on_a = connect(a.addr).await;
        let on_b = connect(b.addr).await;
        let mut seq = subscribe_across(&on_b, "feed", &on_a).await;
        let learned = get_json(http_a, "/leafz")["leafs"][0]["learned_remotes"].clone();
        assert!(
            learned.as_array().is_some_and(|l| l.len() >= 2),
            "node a learned the cluster's leafnode ports: {learned}"
        );

        const N: u32 = 10_000;
        let publisher = on_a.clone();
        let sent = tokio::spawn(async move {
            for i in 0..N {
                publisher
                    .publish("feed", i.to_be_bytes().to_vec().into())
                    .await
                    .expect("pub");
                if i % 20 == 19 {
                    publisher.flush().await.expect("flush");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            publisher.flush().await.expect("flush");
        });
        // Kill node a's hub once a third has arrived.
        let mut got = Vec::new();
        while got.len() < 2000 {
            let m = next_payload(&mut seq, "a message before the kill").await;
            got.push(u32::from_be_bytes(m[..4].try_into().expect("4 bytes")));
        }
        hubs.nodes[0].kill();
        sent.await.expect("publisher");
        // The rest: whatever crossed, until the last message or a quiet second.
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(3), seq.next()).await {
            let id = u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes"));
            got.push(id);
            if id == N - 1 {
                break;
            }
        }
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "order kept, nothing doubled"
        );
        let lost = N as usize - got.len();
        assert_eq!(
            got.last(),
            Some(&(N - 1)),
            "the stream came back after the move"
        );
        // Only what was in flight or published while the link was down is lost.
        assert!(lost < N as usize / 2, "{lost} lost");
        eprintln!("{lost} of {N} lost across the hub's death");
    });
    // The link moved to a surviving member and came up twice in all.
    hubs.wait_for_leafs(2);
    let leafz = get_json(http_a, "/leafz");
    assert_eq!(leafz["leafs"][0]["connects"], 2, "{leafz}");
    let port = leafz["leafs"][0]["port"].as_u64().unwrap_or(0);
    assert!(
        port == u64::from(hubs.nodes[1].leaf_port) || port == u64::from(hubs.nodes[2].leaf_port),
        "{leafz}"
    );
    drop(b);
}

#[test]
fn a_shardcast_node_killed_takes_its_interest_with_it() {
    let hubs = Hubs::start();
    let a = node(&hubs, "node-a", &[0]);
    let b = node(&hubs, "node-b", &[1]);
    hubs.wait_for_leafs(2);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let on_a = connect(a.addr).await;
        let on_b = connect(b.addr).await;
        let native = connect(hubs.nodes[2].client).await;
        let mut service = subscribe_across(&on_b, "svc.b", &native).await;
        let responder = on_b.clone();
        tokio::spawn(async move {
            while let Some(req) = service.next().await {
                if let Some(reply) = req.reply {
                    let _ = responder.publish(reply, "from b".into()).await;
                }
            }
        });
        for requester in [&native, &on_a] {
            let answer = tokio::time::timeout(
                Duration::from_secs(10),
                requester.request("svc.b", "hi".into()),
            )
            .await
            .expect("in time")
            .expect("node b answers");
            assert_eq!(answer.payload, "from b");
        }
        let (_, _) = b.kill();
        // Its interest leaves the cluster: requests get 503 everywhere, soon.
        for (who, requester) in [("native", &native), ("node a", &on_a)] {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let r = tokio::time::timeout(
                    Duration::from_secs(2),
                    requester.request("svc.b", "hi".into()),
                )
                .await;
                if matches!(&r, Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders)
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{who}: node b's interest never left: {r:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    hubs.wait_for_leafs(1);
}
