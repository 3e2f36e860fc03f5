//! A hub that misbehaves, scripted on a plain TCP listener (a real nats-server never sends
//! garbage): garbage drops the link and it is retried after `reconnect_delay`; a loop
//! (the hub's `Loop detected`, or our own `$LDS` interest coming back, or a remote that is
//! this node itself) drops it for 30 s.

mod common;

use std::time::{Duration, Instant};

use common::Server;

/// A scripted hub on a plain TCP listener: what a misbehaving or looping hub sends.
struct ScriptedHub {
    listener: std::net::TcpListener,
}

impl ScriptedHub {
    fn new() -> ScriptedHub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        ScriptedHub { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    /// The next connection from the leaf within `within`, if one comes.
    fn accept(&self, within: Duration) -> Option<std::net::TcpStream> {
        let deadline = Instant::now() + within;
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).expect("blocking");
                    s.set_read_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                    return Some(s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// Sends INFO on `s` and returns the leaf's CONNECT object.
    fn handshake(s: &mut std::net::TcpStream) -> (serde_json::Value, impl std::io::BufRead) {
        use std::io::{BufRead, Write};
        s.write_all(
            b"INFO {\"server_id\":\"SCRIPTED\",\"version\":\"2.9.10\",\"headers\":true}\r\n",
        )
        .expect("info");
        let mut reader = std::io::BufReader::new(s.try_clone().expect("clone"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("connect line");
        let json = line
            .strip_prefix("CONNECT ")
            .unwrap_or_else(|| panic!("not a CONNECT: {line:?}"));
        let connect: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
        // nats-server answers the PING that follows CONNECT.
        s.write_all(b"PONG\r\n").expect("pong");
        (connect, reader)
    }
}

#[test]
fn a_hub_that_sends_garbage_or_reports_a_loop_is_logged_and_retried_later() {
    use std::io::Write;
    let hub = ScriptedHub::new();
    let server = Server::start_with(
        2,
        &format!(
            "[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{}\"]\nreconnect_delay = \"100ms\"\n",
            hub.port()
        ),
    );
    // A leaf CONNECT: no `lang` (nats-server takes that for a client on its leaf port).
    let mut first = hub.accept(Duration::from_secs(10)).expect("the link dials");
    let (connect, _r) = ScriptedHub::handshake(&mut first);
    assert!(connect.get("lang").is_none(), "{connect}");
    assert_eq!(connect["headers"], true, "{connect}");
    first.write_all(b"BOGUS 1 2 3\r\n").expect("garbage");
    server.wait_for_log("the garbage", |l| {
        l.contains("unknown operation from the hub") && l.contains("BOGUS")
    });
    // Retried after reconnect_delay.
    let mut second = hub
        .accept(Duration::from_secs(10))
        .expect("the link dials again");
    let _ = ScriptedHub::handshake(&mut second);
    second
        .write_all(b"-ERR 'Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s'\r\n")
        .expect("loop error");
    server.wait_for_log("the loop", |l| l.contains("detected a loop"));
    // nats-server's rule: 30 s before the next attempt, not 100 ms.
    assert!(
        hub.accept(Duration::from_secs(2)).is_none(),
        "the link came back before the loop delay"
    );
}

#[test]
fn our_own_loop_subject_coming_back_is_a_loop() {
    use std::io::{BufRead, Write};
    let hub = ScriptedHub::new();
    let server = Server::start_with(
        1,
        &format!(
            "[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{}\"]\nreconnect_delay = \"100ms\"\n",
            hub.port()
        ),
    );
    let mut s = hub.accept(Duration::from_secs(10)).expect("the link dials");
    let (connect, mut reader) = ScriptedHub::handshake(&mut s);
    let id = connect["id"].as_str().expect("our server id").to_owned();
    // The node advertises $LDS.<id> with its interest.
    let mut line = String::new();
    let want = format!("LS+ $LDS.{id}");
    while !line.starts_with(&want) {
        line.clear();
        reader.read_line(&mut line).expect("an interest line");
        assert!(!line.is_empty(), "the link closed before {want}");
    }
    // It comes back round: the node says so and drops the link.
    s.write_all(format!("LS+ $LDS.{id}\r\n").as_bytes())
        .expect("loop");
    let mut rest = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => rest.push_str(&line),
        }
    }
    assert!(rest.contains("-ERR 'Loop detected'"), "{rest:?}");
    server.wait_for_log("the loop", |l| l.contains("leafnode loop detected"));
    assert!(
        hub.accept(Duration::from_secs(2)).is_none(),
        "the link came back before the loop delay"
    );
}

#[test]
fn a_node_told_to_dial_itself_sees_the_loop_and_waits() {
    // The remote is the node's own client port: its INFO carries our own server id.
    let port = common::free_fixed_port();
    let toml = format!(
        "[leafnode]\nremotes = [\"nats-leaf://127.0.0.1:{port}\"]\nreconnect_delay = \"100ms\"\n"
    );
    let server = Server::start_with_on_port(1, &toml, port);
    let line = server.wait_for_log("the loop", |l| l.contains("leafnode loop detected"));
    assert!(line.contains("check [leafnode] remotes"), "{line}");
    // 30 s before the next attempt, not reconnect_delay.
    std::thread::sleep(Duration::from_secs(2));
    let loops = server
        .log_lines()
        .iter()
        .filter(|l| l.contains("leafnode loop detected"))
        .count();
    assert_eq!(loops, 1, "dialled itself again before the loop delay");
    // Meanwhile it serves its clients.
    let (mut raw, _info) = common::Raw::connect_info(server.addr);
    raw.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    raw.expect(b"PONG\r\n");
}
