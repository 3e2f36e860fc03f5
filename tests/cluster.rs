//! shardcast as a leaf node of a real nats-server (issue 13, under way): the link comes
//! up on the hub's leafnodes port (the hub lists it in /leafz), answers its PINGs, and
//! comes back after the hub restarts.

mod common;

use std::time::{Duration, Instant};

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
    let before = ours(&|l| l["leafnodes"] == 1);
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
