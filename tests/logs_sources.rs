//! `logs.allow_from`: the log ports take logs only from the listed networks. A TCP
//! connection from elsewhere is closed before anything is read, a datagram from elsewhere
//! is dropped; both are counted as `refused` and nothing is routed.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::logs::{listening, RULES};
use common::{get_json, monitoring_addr, Server, WAIT};

fn server(allow_from: &str) -> Server {
    let ports = format!(
        "enabled = true\ntcp_port = 0\nsyslog_tcp_port = 0\nsyslog_udp_port = 0\nallow_from = {allow_from}\n"
    );
    Server::start_with(
        2,
        &format!(
            "[monitoring]\nport = 0\n{}",
            RULES.replace("enabled = true\n", &ports)
        ),
    )
}

fn inputs_until(s: &Server, done: impl Fn(&Value) -> bool) -> Value {
    let http = monitoring_addr(s);
    let deadline = Instant::now() + WAIT;
    loop {
        let inputs = get_json(http, "/varz")["logs"]["inputs"].clone();
        if done(&inputs) {
            return inputs;
        }
        assert!(
            Instant::now() < deadline,
            "counters never got there: {inputs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `line` over TCP and returns whether the server closed the connection without
/// reading it (EOF or reset before the read timeout).
fn tcp_closed_at_once(addr: std::net::SocketAddr, line: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).expect("connect");
    let _ = s.write_all(line);
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut
        }
    }
}

#[test]
fn logs_from_outside_the_allowed_networks_are_refused_and_counted() {
    let s = server(r#"["10.0.0.0/8", "192.0.2.7"]"#);
    let tcp = listening(&s, "log tcp listening");
    let syslog_tcp = listening(&s, "syslog tcp listening");
    let udp = listening(&s, "syslog udp listening");
    let line = b"{\"level\":\"ERROR\",\"message\":\"db down\"}\n";
    assert!(
        tcp_closed_at_once(tcp, line),
        "the line port closes at once"
    );
    assert!(
        tcp_closed_at_once(
            syslog_tcp,
            b"<11>1 2026-12-02T00:00:00Z h app - - - db down\n"
        ),
        "the syslog port closes at once"
    );
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    for _ in 0..3 {
        sock.send_to(b"<11>1 2026-12-02T00:00:00Z h app - - - db down", udp)
            .expect("send");
    }
    let inputs = inputs_until(&s, |i| {
        i["tcp"]["refused"] == 1
            && i["syslog_tcp"]["refused"] == 1
            && i["syslog_udp"]["refused"] == 3
    });
    for input in ["tcp", "syslog_tcp", "syslog_udp"] {
        assert_eq!(inputs[input]["received"], 0, "{input}: {inputs}");
        assert_eq!(inputs[input]["routed"], 0, "{input}: {inputs}");
    }
    s.wait_for_log("the refusal", |l| {
        l.contains("log connection refused: not in logs.allow_from") && l.contains("127.0.0.1")
    });
}

#[test]
fn logs_from_an_allowed_address_are_taken() {
    let s = server(r#"["127.0.0.1"]"#);
    let tcp = listening(&s, "log tcp listening");
    let udp = listening(&s, "syslog udp listening");
    let mut c = TcpStream::connect(tcp).expect("connect");
    c.write_all(b"{\"level\":\"ERROR\",\"message\":\"db down\"}\n")
        .expect("send");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    sock.send_to(b"<11>1 2026-12-02T00:00:00Z h app - - - db down", udp)
        .expect("send");
    let inputs = inputs_until(&s, |i| {
        i["tcp"]["received"] == 1 && i["syslog_udp"]["received"] == 1
    });
    assert_eq!(inputs["tcp"]["refused"], 0, "{inputs}");
    assert_eq!(inputs["syslog_udp"]["refused"], 0, "{inputs}");
}

#[test]
fn a_bad_network_is_named() {
    let e = shardcast_config_error("[logs]\nallow_from = [\"10.0.0.0/33\"]\n");
    assert!(e.contains("\"10.0.0.0/33\" is not a network"), "{e}");
}

fn shardcast_config_error(toml: &str) -> String {
    let dir = common::TempDir::new("badnet");
    let path = dir.0.join("bad.toml");
    std::fs::write(&path, toml).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["serve", "-c", path.to_str().expect("path"), "-p", "0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}
