//! IRC across shardcast nodes (2 shards each) hanging off a real 3-node nats-server
//! cluster (issue 13): people on two nodes chat in one channel and message each other,
//! a node that links later finds who is already there (and is found), history kept on
//! one node holds what was said on another, a killed node's people split off, and a
//! nickname is one person's cluster-wide (the earlier claim wins a collision).

mod common;

use std::time::{Duration, Instant};

use common::cluster::{irc_addr, node_a_with_alice_in_lobby, node_with, wait_for_irc_nodes, Hubs};
use common::irc::{names_until, Irc};

const IRC: &str = "[irc]\nport = 0\n";

/// `c`'s next line containing `want`, waiting up to `within` (a netsplit takes the node
/// timeout, longer than `Irc::expect` waits).
fn expect_within(c: &mut Irc, want: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_line(left) {
            Some(l) if l.contains(want) => return l,
            Some(l) => c.seen.push(l),
            None => panic!("no line with {want:?} in {within:?}; got {:#?}", c.seen),
        }
    }
}

/// Says `text` on `channel` as `from` until `to` hears it (interest crosses a moment
/// after a JOIN).
fn say_until_heard(from: &mut Irc, to: &mut Irc, channel: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        from.send(&format!("PRIVMSG {channel} :{text}"));
        if to
            .next_line(Duration::from_millis(200))
            .is_some_and(|l| l.contains(&format!("PRIVMSG {channel} :{text}")))
        {
            return;
        }
        assert!(Instant::now() < deadline, "{text:?} never heard");
    }
}

/// Registering as `nick` is refused with 433 (held elsewhere in the cluster). What one
/// node claimed reaches the others with the claim, or at the latest with the next
/// heartbeats (a claim made before the hub had the other node's interest goes nowhere),
/// so a registration that got through is closed and tried again.
fn nick_in_use(addr: std::net::SocketAddr, nick: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = Irc::connect(addr);
        c.send(&format!("NICK {nick}"));
        c.send(&format!("USER {nick} 0 * :{nick}"));
        let line = loop {
            let l = c.next_line(common::WAIT).expect("an answer to NICK");
            if l.contains(" 433 ") || l.contains(" 422 ") {
                break l;
            }
        };
        if line.contains(" 433 ") {
            assert!(line.contains(nick), "{line}");
            return;
        }
        assert!(line.contains(" 422 "), "{line}");
        c.send("QUIT :again");
        assert!(Instant::now() < deadline, "{nick} never in use at {addr}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn irc_users_on_two_nodes_chat_in_one_channel_and_message_each_other() {
    let hubs = Hubs::start();
    let a = node_with(&hubs, "node-a", &[0], IRC);
    let b = node_with(&hubs, "node-b", &[1], IRC);
    hubs.wait_for_leafs(2);
    let mut alice = Irc::register(irc_addr(&a), "alice");
    let mut bob = Irc::register(irc_addr(&b), "bob");
    alice.send("JOIN #lobby");
    alice.expect(" 366 alice #lobby ");
    bob.send("JOIN #lobby");
    bob.expect(" 366 bob #lobby ");
    say_until_heard(&mut bob, &mut alice, "#lobby", "hello from b");
    // Then a conversation, in order, each line once.
    for i in 0..20 {
        alice.send(&format!("PRIVMSG #lobby :a{i}"));
        bob.send(&format!("PRIVMSG #lobby :b{i}"));
    }
    let heard = |c: &mut Irc, from: &str| {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 20 && Instant::now() < deadline {
            if let Some(l) = c.next_line(Duration::from_millis(200)) {
                if let Some(text) = l.split(" PRIVMSG #lobby :").nth(1) {
                    if text.starts_with(from) {
                        got.push(text.to_string());
                    }
                }
            }
        }
        got
    };
    let want = |p: &str| (0..20).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    assert_eq!(heard(&mut bob, "a"), want("a"), "alice's lines on node b");
    assert_eq!(heard(&mut alice, "b"), want("b"), "bob's lines on node a");
    // The sender's prefix names who spoke.
    alice.send("PRIVMSG #lobby :who am i");
    let line = bob.expect("who am i");
    assert!(line.starts_with(":alice!"), "{line}");
    // Someone who joins once the nodes are linked is seen on the other node too.
    let mut carol = Irc::register(irc_addr(&b), "carol");
    carol.send("JOIN #lobby");
    carol.expect(" 366 carol #lobby ");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !alice.expect(" JOIN #lobby").starts_with(":carol!") {
        assert!(
            Instant::now() < deadline,
            "carol's JOIN never reached node a"
        );
    }
    names_until(&mut alice, "#lobby", &["alice", "bob", "carol"]);
    // A direct message reaches its user on the other node.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        alice.send("PRIVMSG carol :psst");
        if carol
            .next_line(Duration::from_millis(200))
            .is_some_and(|l| l.starts_with(":alice!") && l.contains("PRIVMSG carol :psst"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice's direct message never reached carol"
        );
    }
    // A nickname is one person's cluster-wide: alice is taken on node b too. The nick
    // service's own events (naming one node's shards and connections) and history
    // replays stay on their node however wide the hub's interest; the nodes' sync
    // (`$SC.SYNC.>`) is what crosses.
    let rt = common::irc::runtime();
    rt.block_on(async {
        use futures::StreamExt;
        let native = async_nats::connect(format!("nats://{}", hubs.nodes[2].client))
            .await
            .expect("connect");
        let mut local_only = native.subscribe("$SC.IRC.*").await.expect("sub");
        let mut replays = native.subscribe("$SC.IRC.HISTORY.>").await.expect("sub");
        let mut sync = native.subscribe("$SC.SYNC.>").await.expect("sub");
        native.flush().await.expect("flush");
        // A NATS client on node b: joins on node a ask every node's history (the
        // request crosses), and only node a answers them, so nothing meant for a's
        // connections lands on b's subjects (or in b's connections).
        let on_b = async_nats::connect(format!("nats://{}", b.addr))
            .await
            .expect("connect to node b");
        let mut b_replays = on_b.subscribe("$SC.IRC.HISTORY.>").await.expect("sub");
        on_b.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(300)).await;
        nick_in_use(irc_addr(&b), "alice");
        nick_in_use(irc_addr(&a), "Carol");
        let mut erin = Irc::register(irc_addr(&a), "erin");
        erin.send("JOIN #lobby");
        erin.expect(" 366 erin #lobby ");
        // Her replay (node a's history of #lobby, with the time in the text), once.
        erin.expect("PRIVMSG #lobby :[");
        erin.expect("] who am i");
        erin.expect_none("] who am i", Duration::from_millis(500));
        // Joiners on both of node a's shards.
        let mut more: Vec<Irc> = (0..4)
            .map(|i| Irc::register(irc_addr(&a), &format!("guest{i}")))
            .collect();
        for (i, g) in more.iter_mut().enumerate() {
            g.send("JOIN #lobby");
            g.expect(&format!(" 366 guest{i} #lobby "));
        }
        let leaked = tokio::time::timeout(Duration::from_secs(2), b_replays.next()).await;
        assert!(leaked.is_err(), "node b answered node a's join: {leaked:?}");
        let crossed = tokio::time::timeout(Duration::from_secs(5), sync.next()).await;
        assert!(
            matches!(crossed, Ok(Some(_))),
            "no sync crossed: {crossed:?}"
        );
        for sub in [&mut local_only, &mut replays] {
            let leaked = tokio::time::timeout(Duration::from_secs(1), sub.next()).await;
            assert!(leaked.is_err(), "crossed the hub: {leaked:?}");
        }
    });
    for c in [&mut alice, &mut bob, &mut carol] {
        c.send("PING :still-here");
        c.expect("still-here");
    }
}

#[test]
fn a_node_that_links_later_finds_who_is_there_and_a_killed_node_splits_off() {
    let hubs = Hubs::start();
    let (a, mut alice) = node_a_with_alice_in_lobby(&hubs, "soup at noon");
    // Node b links after alice is in #lobby: nobody there has done anything since.
    let b = node_with(&hubs, "node-b", &[1], IRC);
    hubs.wait_for_leafs(2);
    let mut bob = Irc::register(irc_addr(&b), "bob");
    bob.send("JOIN #lobby");
    bob.expect(" 366 bob #lobby ");
    names_until(&mut bob, "#lobby", &["alice", "bob"]);
    names_until(&mut alice, "#lobby", &["alice", "bob"]);
    // The topic alice set came with her.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        bob.send("TOPIC #lobby");
        let line = bob.expect(" #lobby ");
        if line.contains(" 332 bob #lobby :soup at noon") {
            break;
        }
        assert!(Instant::now() < deadline, "no topic on node b: {line}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let whois = {
        bob.send("WHOIS alice");
        bob.expect(" 319 bob alice ")
    };
    assert!(whois.contains("#lobby"), "{whois}");
    // Node b's monitoring shows both IRC nodes, a's synced, with alice's membership and
    // nick (within a beat).
    let http_b = common::monitoring_addr(&b);
    let a_id = common::get_json(common::monitoring_addr(&a), "/varz")["server_id"]
        .as_str()
        .expect("server_id")
        .to_string();
    let leafz = wait_for_irc_nodes(http_b, "node a", |nodes| {
        nodes.len() == 2
            && nodes
                .iter()
                .any(|n| n["node"] == a_id.as_str() && n["nicks"] == 1)
    });
    let nodes = leafz["irc_nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes[0]["local"], true, "{leafz}");
    let a_seen = nodes
        .iter()
        .find(|n| n["node"] == a_id.as_str())
        .cloned()
        .expect("node a");
    assert_eq!(a_seen["synced"], true, "{a_seen}");
    assert_eq!(a_seen["memberships"], 1, "{a_seen}");
    let metrics = common::get(http_b, "/metrics").2;
    assert!(
        metrics.contains("shardcast_leafnode_irc_nodes{name=\"node-b\"} 2"),
        "{metrics}"
    );
    common::promtool_check(&metrics);
    // What alice says on node a is kept on node b too: dave, who joins on b, gets it.
    say_until_heard(&mut alice, &mut bob, "#lobby", "kept across nodes");
    let mut dave = Irc::register(irc_addr(&b), "dave");
    dave.send("JOIN #lobby");
    let replay = dave.expect("kept across nodes");
    assert!(replay.starts_with(":alice!"), "{replay}");
    dave.expect(" 366 dave #lobby ");

    // Node a dies without a word: after the node timeout its people split off.
    let (status, _) = a.kill();
    assert!(!status.success());
    let quit = expect_within(&mut bob, " QUIT ", Duration::from_secs(25));
    assert!(
        quit.starts_with(":alice!") && quit.ends_with(":*.net *.split"),
        "{quit}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        bob.send("NAMES #lobby");
        let names = bob.expect(" 353 ");
        bob.expect(" 366 ");
        if !names.contains("alice") {
            break;
        }
        assert!(Instant::now() < deadline, "alice still in {names}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let leafz = common::get_json(http_b, "/leafz");
    assert_eq!(
        leafz["irc_nodes"].as_array().map(Vec::len),
        Some(1),
        "{leafz}"
    );
    // Her nick is free again.
    let mut alice2 = Irc::register(irc_addr(&b), "alice");
    alice2.send("PING :ok");
    alice2.expect("ok");
}

#[test]
fn a_nick_taken_on_two_nodes_while_apart_stays_with_the_earlier_claim() {
    let mut hubs = Hubs::start();
    let a = node_with(&hubs, "node-a", &[0], IRC);
    hubs.wait_for_leafs(1);
    let mut first = Irc::register(irc_addr(&a), "sam");
    // Node b's only hub member is down: b runs apart, and a second sam registers there.
    hubs.nodes[1].kill();
    let b = node_with(&hubs, "node-b", &[1], IRC);
    std::thread::sleep(Duration::from_millis(50));
    let mut second = Irc::register(irc_addr(&b), "sam");
    // The hub member comes back, b links, and the nodes compare: the later sam goes.
    hubs.restart(1);
    hubs.wait_for_routes();
    hubs.wait_for_leafs(2);
    let error = expect_within(&mut second, "ERROR", Duration::from_secs(20));
    assert!(error.contains("Nick collision"), "{error}");
    first.send("PING :still-here");
    first.expect("still-here");
    first.expect_none("ERROR", Duration::from_secs(1));
    nick_in_use(irc_addr(&b), "sam");
}
