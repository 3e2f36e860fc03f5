//! shardcast as a leaf node of one real nats-server (issue 13): the link comes up on the
//! hub's leafnodes port (the hub lists it in /leafz), answers its PINGs, comes back after
//! the hub restarts, carries messages both ways, honours export/import and runs over TLS.
//! What garbage and loops from a hub do is in `cluster_faults.rs`; the 3-node cluster
//! tests are in `cluster_mesh.rs`.

mod common;

use std::time::{Duration, Instant};

use futures::FutureExt;

use common::{free_fixed_port, get_json, NatsServer, Server, TempDir};

/// A hub with a leafnodes port and monitoring; returns it and its monitoring port.
fn hub(dir: &TempDir, leaf_port: u16, http_port: u16) -> NatsServer {
    let conf = dir.0.join("hub.conf");
    std::fs::write(
        &conf,
        format!(
            "leafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\nhttp: \"127.0.0.1:{http_port}\"\n"
        ),
    )
    .expect("write hub.conf");
    NatsServer::start_with(&["-c", conf.to_str().expect("path")])
}

/// Waits until the hub's /leafz lists one leaf (nats-server 2.9 shows no leaf names there;
/// our log names the link).
fn leaf_listed(http_port: u16) -> serde_json::Value {
    let addr = ([127, 0, 0, 1], http_port).into();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if std::net::TcpStream::connect(addr).is_ok() {
            let leafz = get_json(addr, "/leafz");
            if leafz["leafnodes"] == 1 && leafz["leafs"][0]["account"] == "$G" {
                return leafz;
            }
            assert!(Instant::now() < deadline, "no leaf in {leafz}");
        }
        assert!(Instant::now() < deadline, "hub monitoring never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_link_comes_up_and_back_after_the_hub_restarts() {
    let dir = TempDir::new("hub");
    let (leaf_port, http_port) = (free_fixed_port(), free_fixed_port());
    let hub1 = hub(&dir, leaf_port, http_port);
    let server = Server::start_with(
        2,
        &format!(
            "[monitoring]\nport = 0\n[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{leaf_port}\"]\nname = \"node-a\"\nreconnect_delay = \"100ms\"\n"
        ),
    );
    let leafz = leaf_listed(http_port);
    assert_eq!(leafz["leafs"][0]["ip"], "127.0.0.1", "{leafz}");
    server.wait_for_log("the link", |l| l.contains("leafnode link up"));

    // Our /leafz: the link to the hub, and the interest the hub advertises. A client
    // subscribing on the hub adds to it.
    let http = common::monitoring_addr(&server);
    let ours = |want: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leafz = get_json(http, "/leafz");
            if want(&leafz) {
                return leafz;
            }
            assert!(Instant::now() < deadline, "/leafz never got there: {leafz}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    ours(&|l| l["leafnodes"] == 1);
    // Prometheus says the same.
    let (status, _, metrics) = common::get(http, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("shardcast_leafnode_connected{name=\"node-a\"} 1")
            && metrics.contains("shardcast_leafnode_connects_total{name=\"node-a\"} 1"),
        "{metrics}"
    );
    common::promtool_check(&metrics);
    // The hub's snapshot of its interest arrives in pieces: wait until the count holds.
    let mut before = get_json(http, "/leafz");
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = get_json(http, "/leafz");
        if now["leafs"][0]["remote_interest"] == before["leafs"][0]["remote_interest"] {
            break;
        }
        before = now;
    }
    let link = &before["leafs"][0];
    assert_eq!(link["name"], "node-a", "{before}");
    assert_eq!(link["port"], leaf_port, "{before}");
    assert_eq!(link["is_spoke"], true, "{before}");
    let interest = link["remote_interest"].as_u64().unwrap_or(0);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    let client = rt.block_on(async {
        let c = async_nats::connect(format!("nats://{}", hub1.addr))
            .await
            .expect("hub client");
        let sub = c.subscribe("cluster.probe").await.expect("sub");
        c.flush().await.expect("flush");
        (c, sub)
    });
    ours(&|l| l["leafs"][0]["remote_interest"].as_u64().unwrap_or(0) == interest + 1);
    drop(client);

    drop(hub1);
    server.wait_for_log("the drop", |l| l.contains("leafnode link down"));
    let _hub2 = hub(&dir, leaf_port, http_port);
    leaf_listed(http_port);
    let ups = server
        .log_lines()
        .iter()
        .filter(|l| l.contains("leafnode link up"))
        .count();
    assert!(ups >= 2, "the link came up again ({ups} times)");
}

#[test]
fn a_local_publish_reaches_subscribers_behind_the_hub_once_each() {
    let dir = TempDir::new("hub");
    let (leaf_port, http_port) = (free_fixed_port(), free_fixed_port());
    let hub = hub(&dir, leaf_port, http_port);
    let server = Server::start_with(
        2,
        &format!(
            "[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{leaf_port}\"]\nname = \"node-a\"\n"
        ),
    );
    leaf_listed(http_port);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        use futures::StreamExt;
        let hub_url = format!("nats://{}", hub.addr);
        let remote = async_nats::connect(&hub_url).await.expect("hub client");
        // Two overlapping interests on one connection: each gets every message once.
        let mut wide = remote.subscribe("orders.>").await.expect("sub");
        let mut narrow = remote.subscribe("orders.*").await.expect("sub");
        remote.flush().await.expect("flush");
        let local = async_nats::connect(format!("nats://{}", server.addr))
            .await
            .expect("local client");
        // The hub's interest reaches every shard a moment after it is sent: probe first.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            local
                .publish("orders.probe", "p".into())
                .await
                .expect("probe");
            local.flush().await.expect("flush");
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), wide.next()).await
            {
                break;
            }
            assert!(Instant::now() < deadline, "no probe crossed the link");
        }
        let drain = |sub: &mut async_nats::Subscriber| {
            let mut n = 0;
            while let Some(Some(_)) = sub.next().now_or_never() {
                n += 1;
            }
            n
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        drain(&mut wide);
        drain(&mut narrow);

        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Trace", "t-1");
        for i in 0..200u32 {
            local
                .publish_with_headers(
                    format!("orders.{}", i % 7),
                    headers.clone(),
                    i.to_be_bytes().to_vec().into(),
                )
                .await
                .expect("publish");
        }
        local.flush().await.expect("flush");
        for (name, sub) in [("orders.>", &mut wide), ("orders.*", &mut narrow)] {
            for i in 0..200u32 {
                let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
                    .await
                    .unwrap_or_else(|_| panic!("{name}: message {i} never came"))
                    .expect("open");
                assert_eq!(
                    m.payload.as_ref(),
                    i.to_be_bytes(),
                    "{name}: in order, once each"
                );
                let trace = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Trace"))
                    .map(|v| v.as_str());
                assert_eq!(trace, Some("t-1"), "{name}: headers cross");
            }
            let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
            assert!(extra.is_err(), "{name}: a duplicate came: {extra:?}");
        }
    });
}

#[test]
fn a_publish_behind_the_hub_reaches_local_subscribers_and_requests_cross_both_ways() {
    let dir = TempDir::new("hub");
    let (leaf_port, http_port) = (free_fixed_port(), free_fixed_port());
    let hub1 = hub(&dir, leaf_port, http_port);
    let server = Server::start_with(
        2,
        &format!("[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{leaf_port}\"]\nname = \"node-a\"\nreconnect_delay = \"100ms\"\n"),
    );
    leaf_listed(http_port);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        use futures::StreamExt;
        let local = async_nats::connect(format!("nats://{}", server.addr))
            .await
            .expect("local client");
        let mut news = local.subscribe("news.>").await.expect("sub");
        let mut service = local.subscribe("svc.echo").await.expect("sub");
        local.flush().await.expect("flush");
        let responder = local.clone();
        tokio::spawn(async move {
            while let Some(req) = service.next().await {
                if let Some(reply) = req.reply {
                    let _ = responder.publish(reply, req.payload).await;
                }
            }
        });

        let remote = probe_down(hub1.addr, &mut news).await;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Trace", "down");
        for i in 0..100u32 {
            remote
                .publish_with_headers(
                    format!("news.{}", i % 3),
                    headers.clone(),
                    i.to_be_bytes().to_vec().into(),
                )
                .await
                .expect("publish");
        }
        remote.flush().await.expect("flush");
        for i in 0..100u32 {
            let m = tokio::time::timeout(Duration::from_secs(10), news.next())
                .await
                .unwrap_or_else(|_| panic!("message {i} never came down"))
                .expect("open");
            assert_eq!(m.payload.as_ref(), i.to_be_bytes(), "in order, once each");
            let trace = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Trace"))
                .map(|v| v.as_str());
            assert_eq!(trace, Some("down"));
        }
        // A request from behind the hub to a local responder, and its reply back.
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            remote.request("svc.echo", "ping".into()),
        )
        .await
        .expect("in time")
        .expect("a reply across the link");
        assert_eq!(answer.payload, "ping");
        drop(remote);

        // The hub restarts: the link comes back and resends our interest.
        drop(hub1);
        let hub2 = hub(&dir, leaf_port, http_port);
        leaf_listed(http_port);
        let again = probe_down(hub2.addr, &mut news).await;
        drop(again);
        drop(hub2);
    });
}

/// Connects a client to the hub and publishes probes on `news.probe` until one reaches
/// `news` (our interest has reached the hub); stray probes are drained.
async fn probe_down(
    hub_addr: std::net::SocketAddr,
    news: &mut async_nats::Subscriber,
) -> async_nats::Client {
    use futures::StreamExt;
    let remote = async_nats::connect(format!("nats://{hub_addr}"))
        .await
        .expect("hub client");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        remote
            .publish("news.probe", "p".into())
            .await
            .expect("probe");
        remote.flush().await.expect("flush");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), news.next()).await {
            break;
        }
        assert!(Instant::now() < deadline, "nothing came down the link");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Some(Some(_)) = news.next().now_or_never() {}
    remote
}

#[test]
fn export_and_import_decide_what_crosses() {
    let dir = TempDir::new("hub");
    let (leaf_port, http_port) = (free_fixed_port(), free_fixed_port());
    let hub = hub(&dir, leaf_port, http_port);
    let server = Server::start_with(
        2,
        &format!(
            "[monitoring]\nport = 0\n[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{leaf_port}\"]\nexport = [\"up.>\"]\nimport = [\"down.>\", \"both.*\"]\n"
        ),
    );
    leaf_listed(http_port);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        use futures::StreamExt;
        let local = async_nats::connect(format!("nats://{}", server.addr))
            .await
            .expect("local client");
        let remote = async_nats::connect(format!("nats://{}", hub.addr))
            .await
            .expect("hub client");
        // Everything, on both sides.
        let mut remote_all = remote.subscribe(">").await.expect("sub");
        remote.flush().await.expect("flush");
        let mut local_all = local.subscribe(">").await.expect("sub");
        local.flush().await.expect("flush");

        // The hub hears of our `>` only as what we import.
        let hub_http = ([127, 0, 0, 1], http_port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        let subs = loop {
            let leafz = get_json(hub_http, "/leafz?subs=1");
            let list: Vec<String> = leafz["leafs"][0]["subscriptions_list"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if list.iter().any(|s| s == "down.>") && list.iter().any(|s| s == "both.*") {
                break list;
            }
            assert!(Instant::now() < deadline, "the hub never heard: {leafz}");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!subs.iter().any(|s| s == ">"), "{subs:?}");

        // Up: only up.> leaves the node.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            local.publish("up.probe", "p".into()).await.expect("pub");
            local.flush().await.expect("flush");
            if let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(100), remote_all.next()).await
            {
                break;
            }
            assert!(Instant::now() < deadline, "nothing went up");
        }
        for subject in ["secret.1", "down.1", "up.1"] {
            local.publish(subject, subject.into()).await.expect("pub");
        }
        local.flush().await.expect("flush");
        let mut up = Vec::new();
        while let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(500), remote_all.next()).await
        {
            up.push(m.subject.to_string());
        }
        up.retain(|s| s != "up.probe");
        assert_eq!(up, vec!["up.1".to_string()], "only exported subjects go up");

        // Down: only what we import comes in.
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(200), local_all.next()).await
        {}
        for subject in ["other.1", "both.1", "down.x.y", "up.2"] {
            remote.publish(subject, subject.into()).await.expect("pub");
        }
        remote.flush().await.expect("flush");
        let mut down = Vec::new();
        while let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(500), local_all.next()).await
        {
            down.push(m.subject.to_string());
        }
        assert_eq!(
            down,
            vec!["both.1".to_string(), "down.x.y".to_string()],
            "only imported subjects come down"
        );
    });
}

#[test]
fn the_link_runs_over_tls_when_the_hub_asks_and_verifies_the_hub() {
    let pki = common::certs::Pki::new();
    let (leaf_cert, leaf_key) = pki.client("node-a", "node-a@example.com");
    let dir = TempDir::new("hub");
    let (leaf_port, http_port) = (free_fixed_port(), free_fixed_port());
    let conf = dir.0.join("hub.conf");
    // The hub wants TLS on its leafnodes port and a client certificate from our CA.
    std::fs::write(
        &conf,
        format!(
            "leafnodes {{ listen: \"127.0.0.1:{leaf_port}\"\n tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }} }}\nhttp: \"127.0.0.1:{http_port}\"\n",
            pki.cert_file.display(),
            pki.key_file.display(),
            pki.ca_file.display()
        ),
    )
    .expect("write hub.conf");
    let hub = NatsServer::start_with(&["-c", conf.to_str().expect("path")]);
    let leaf = |tls: &str| {
        format!(
            "[monitoring]\nport = 0\n[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{leaf_port}\"]\nreconnect_delay = \"100ms\"\n{tls}"
        )
    };

    // Without [leafnode.tls] the node says what to set, and keeps trying.
    let plain = Server::start_with(1, &leaf(""));
    plain.wait_for_log("the advice", |l| {
        l.contains("the hub requires TLS") && l.contains("[leafnode.tls]")
    });
    drop(plain);

    // With the CA and a client certificate, the link comes up over TLS.
    let tls = format!(
        "[leafnode.tls]\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.ca_file.display(),
        leaf_cert.display(),
        leaf_key.display()
    );
    let server = Server::start_with(2, &leaf(&tls));
    let leafz = leaf_listed(http_port);
    assert_eq!(leafz["leafnodes"], 1, "{leafz}");
    server.wait_for_log("the link", |l| {
        l.contains("leafnode link up") && l.contains("tls=true")
    });
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        use futures::StreamExt;
        let local = async_nats::connect(format!("nats://{}", server.addr))
            .await
            .expect("local client");
        let mut news = local.subscribe("news.>").await.expect("sub");
        local.flush().await.expect("flush");
        let remote = probe_down(hub.addr, &mut news).await;
        remote
            .publish("news.tls", "sealed".into())
            .await
            .expect("pub");
        remote.flush().await.expect("flush");
        let m = tokio::time::timeout(Duration::from_secs(10), news.next())
            .await
            .expect("in time")
            .expect("open");
        assert_eq!(m.payload, "sealed");
    });
    drop(server);

    // A CA the hub's certificate does not chain to: refused, and said so.
    let other = common::certs::Pki::new();
    let wrong = format!(
        "[leafnode.tls]\nca_file = \"{}\"\n",
        other.ca_file.display()
    );
    let refused = Server::start_with(1, &leaf(&wrong));
    refused.wait_for_log("the refusal", |l| {
        l.contains("leafnode link refused") && l.contains("TLS handshake failed")
    });
}

#[test]
fn the_link_is_not_a_client_for_the_per_ip_limit() {
    let dir = TempDir::new("hub");
    let (leaf_port, http_port) = (free_fixed_port(), free_fixed_port());
    let hub1 = hub(&dir, leaf_port, http_port);
    let server = Server::start_with(
        2,
        &format!(
            "[limits]\nmax_connections_per_ip = 1\n[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{leaf_port}\"]\nreconnect_delay = \"100ms\"\n"
        ),
    );
    leaf_listed(http_port);
    // The link (to 127.0.0.1) holds no slot: one local client still gets in.
    let mut first = common::client(&server);
    first.send(b"PING\r\n");
    first.expect(b"PONG\r\n");
    // The link drops and comes back: that gives back no slot it never took.
    drop(hub1);
    server.wait_for_log("the drop", |l| l.contains("leafnode link down"));
    let _hub2 = hub(&dir, leaf_port, http_port);
    leaf_listed(http_port);
    let (mut second, _) = common::Raw::connect_info(server.addr);
    second.expect(b"-ERR 'maximum connections per IP address exceeded'\r\n");
    second.expect_closed();
    first.send(b"PING\r\n");
    first.expect(b"PONG\r\n");
}
