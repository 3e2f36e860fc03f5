//! A real IRC client on one shardcast node of a cluster (issue 13): irssi on node b joins
//! a channel where alice, on node a, was before the nodes linked; it is shown her and
//! her topic, chats with her, sees bob join on node a, and shows node a's death as the
//! netsplit it is. Node a and b hang off a real 3-member nats-server cluster.
//!
//! `SHARDCAST_IRSSI_SCREEN=<file>` makes this test write irssi's screen, with colours,
//! at the end (`scripts/irc_screenshot.sh cluster_irssi docs/img/cluster-irssi.png`).

mod common;

use std::time::{Duration, Instant};

use common::cluster::{irc_addr, node_a_with_alice_in_lobby, node_with, wait_for_irc_nodes, Hubs};
use common::irc::Irc;
use common::irssi::Irssi;

const IRC: &str = "[irc]\nport = 0\n";

#[test]
fn irssi_on_node_b_meets_node_a_and_sees_it_split_off() {
    let hubs = Hubs::start();
    let (a, mut alice) = node_a_with_alice_in_lobby(&hubs, "lunch at noon, soup on node a");

    // Node b links; once it knows alice (its /leafz says node a is synced), irssi joins.
    let b = node_with(&hubs, "node-b", &[1], IRC);
    hubs.wait_for_leafs(2);
    wait_for_irc_nodes(common::monitoring_addr(&b), "alice's node", |nodes| {
        nodes.iter().any(|n| n["local"] == false && n["nicks"] == 1)
    });
    let irssi = Irssi::start("ada", "Ada on node b", Some(irc_addr(&b)));
    irssi.wait_registered("ada");
    irssi.type_line("/join #lobby");
    irssi.wait_for_line("the join", |l| {
        l.contains("ada [~ada@127.0.0.1] has joined #lobby")
    });
    irssi.wait_for_line("alice's topic", |l| {
        l.contains("Topic for #lobby: lunch at noon, soup on node a")
    });
    irssi.wait_for_line("alice in the names", |l| l.contains("alice]"));

    // They talk across the nodes.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        alice.send("PRIVMSG #lobby :hi ada, I am on node a");
        let screen = irssi.screen(false);
        if screen.contains("hi ada, I am on node a") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice never heard in irssi:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    irssi.type_line("hello alice, node b here");
    let line = alice.expect("hello alice, node b here");
    assert!(
        line.starts_with(":ada!~ada@127.0.0.1 PRIVMSG #lobby"),
        "{line}"
    );

    // Someone joins on node a: irssi shows it.
    let mut bob = Irc::register(irc_addr(&a), "bob");
    bob.send("JOIN #lobby");
    bob.expect(" 366 bob #lobby ");
    irssi.wait_for_line("bob's join", |l| {
        l.contains("bob [~bob@127.0.0.1] has joined #lobby")
    });
    bob.send("PRIVMSG #lobby :bob here too");
    irssi.wait_for_line("bob's line", |l| l.contains("bob here too"));

    // Node a dies: irssi reads the quits as a netsplit.
    let (status, _) = a.kill();
    assert!(!status.success());
    let split = irssi.wait_for_line("the netsplit", |l| l.contains("Netsplit"));
    assert!(split.contains("alice") && split.contains("bob"), "{split}");
    irssi.save_screen_if_asked();
    irssi.type_line("/quit");
    irssi.wait_exited();
}
