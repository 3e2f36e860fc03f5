//! `shardcast bench irc` run as a user would: the real binary against a real `shardcast
//! serve --irc`, with a NATS publisher and with an IRC one, checking that every member got
//! every line, and that a server that is not IRC ends the run with a clear message.
//! No timing is asserted.

mod common;

use common::bench::{bench, report, u};
use common::Server;
use serde_json::Value;
use std::net::SocketAddr;

/// A two-shard server with IRC on a free port, and that port's address.
fn start(toml: &str) -> (Server, SocketAddr) {
    let s = Server::start_with(2, &format!("[irc]\nport = 0\n{toml}"));
    let line = s.wait_for_log("irc listening", |l| l.contains("irc listening"));
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr in {line}"));
    (s, addr)
}

/// Runs `bench irc … --json`; the run must succeed.
fn bench_irc(args: &[&str]) -> Value {
    let mut all = vec!["irc", "--json"];
    all.extend_from_slice(args);
    report(&all)
}

#[test]
fn every_member_gets_every_line_from_a_nats_publisher() {
    let (s, irc) = start("");
    let (url, irc) = (s.addr.to_string(), irc.to_string());
    let pid = s.pid().to_string();
    let r = bench_irc(&[
        "--url",
        &url,
        "--irc-url",
        &irc,
        "--subs",
        "20",
        "--msgs",
        "2000",
        "--size",
        "64",
        "--server-pid",
        &pid,
        "--label",
        "shardcast",
    ]);
    assert_eq!(r["scenario"], "irc");
    assert_eq!(r["label"], "shardcast");
    assert_eq!(u(&r, "msgs_published"), 2000);
    assert_eq!(
        (u(&r, "expected"), u(&r, "received"), u(&r, "lost")),
        (40000, 40000, 0)
    );
    assert_eq!(u(&r, "disconnected"), 0);
    // Every line carried its send time.
    assert_eq!(u(&r["latency"], "samples"), 40000);
    assert!(r["server"]["cpu_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
}

#[test]
fn an_irc_publisher_within_the_flood_limit_reaches_every_member() {
    // The flood limit raised as compare.sh does, so a fast IRC publisher is not held back.
    let (_s, irc) = start("flood_lines_per_sec = 1000000\nflood_burst = 100000\n");
    let irc = irc.to_string();
    let r = bench_irc(&[
        "--irc-url",
        &irc,
        "--irc-publisher",
        "irc",
        "--subs",
        "10",
        "--msgs",
        "1000",
    ]);
    assert_eq!(
        (u(&r, "expected"), u(&r, "received"), u(&r, "lost")),
        (10000, 10000, 0)
    );
    assert_eq!(u(&r["latency"], "samples"), 10000);
}

#[test]
fn a_server_that_is_not_irc_or_not_there_is_explained() {
    let (s, _irc) = start("");
    // The NATS port answers NICK with -ERR and closes: registration fails, no hang.
    let out = bench(&[
        "irc",
        "--irc-url",
        &s.addr.to_string(),
        "--subs",
        "2",
        "--msgs",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("registering as") && err.contains("closed the connection"),
        "{err}"
    );

    let out = bench(&["irc", "--irc-url", "127.0.0.1:9", "--msgs", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to 127.0.0.1:9"), "{err}");

    let out = bench(&["irc", "--msgs", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("irc needs --irc-url"));
    let out = bench(&["irc", "--irc-url", "x:1", "--size", "8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--size must be 40–400 bytes"));
}
