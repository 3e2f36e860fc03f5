//! Log counters and bad input over real sockets, against a server of two shards: every
//! input (NATS, the TCP line port, syslog over TCP and UDP) counts what it received,
//! found malformed, routed and dropped, and every rule what it matched and routed, in
//! `/varz` and `/metrics`; templated subjects turn hostile field values into safe
//! tokens; a UDP flood into a stalled server is bounded by the socket buffer and every
//! datagram is accounted for.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use common::irc::{runtime, subscribed};
use common::logs::{listening, logger, next, nothing_more, RULES};
use common::{get, get_json, monitoring_addr, promtool_check, Server, WAIT};

/// `RULES` with every log port and monitoring on, and `extra` in `[logs]`.
fn config(extra: &str) -> String {
    let ports = "enabled = true\ntcp_port = 0\nsyslog_tcp_port = 0\nsyslog_udp_port = 0\n";
    format!(
        "[monitoring]\nport = 0\n{}",
        RULES.replace("enabled = true\n", &format!("{ports}{extra}"))
    )
}

/// Polls `/varz` until `done` holds for its `logs` object; returns that object.
fn varz_logs_until(http: SocketAddr, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let logs = get_json(http, "/varz")["logs"].clone();
        if done(&logs) {
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "counters never got there: {logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sum over shards of the `/metrics` samples of `name` with every label of `labels`.
fn metric_sum(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => f64::NAN,
        })
        .sum()
}

fn tcp_send(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect to a log port");
    s.write_all(bytes).expect("write");
}

#[test]
fn every_input_and_rule_is_counted_in_varz_and_metrics() {
    let s = Server::start_with_logging(2, &config(""), "shardcast=info");
    let http = monitoring_addr(&s);
    let tcp = listening(&s, "log tcp listening");
    let syslog_tcp = listening(&s, "syslog tcp listening");
    let syslog_udp = listening(&s, "syslog udp listening");
    let rt = runtime();
    rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let mut all = nats.subscribe("logs.all").await.expect("sub");
        subscribed(&nats).await;
        // NATS: three logs and one that is not JSON.
        for line in [
            "ERROR [db] SQL timeout after 300ms",
            "INFO fine",
            "WARN [security] auth failed",
            "{\"level\":",
        ] {
            nats.publish("logs.ingest.api", line.into())
                .await
                .expect("pub");
        }
        nats.flush().await.expect("flush");
        // The line port: two logs, a bad JSON line between them.
        tcp_send(tcp, b"ERROR disk\n{oops\nINFO ok\n");
        // Syslog over TCP: one from logger, then bytes that are not UTF-8.
        logger(
            syslog_tcp.port(),
            &["-T", "--rfc5424", "-p", "user.err", "boom"],
        );
        tcp_send(syslog_tcp, b"\xff\xfe not text\n");
        // Syslog over UDP: one from logger, one datagram that is not UTF-8.
        logger(
            syslog_udp.port(),
            &["-d", "--rfc3164", "-p", "user.info", "hello"],
        );
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
        udp.send_to(b"\xff\xff\xff", syslog_udp).expect("send");
        // 3 + 2 + 1 + 1 records reach logs.all.
        for _ in 0..7 {
            next(&mut all).await;
        }
        let _in_runtime = rt.enter();
        drop(nats);
    });
    let logs = varz_logs_until(http, |l| {
        l["inputs"]["syslog_udp"]["malformed"] == 1 && l["inputs"]["syslog_tcp"]["malformed"] == 1
    });
    let want = [
        // input, received, malformed, routed (copies)
        ("nats", 3, 1, 3 + 2 + 1 + 1),
        ("tcp", 2, 1, 2 + 1),
        ("syslog_tcp", 1, 1, 2),
        ("syslog_udp", 1, 1, 1),
    ];
    for (input, received, malformed, routed) in want {
        let c = &logs["inputs"][input];
        assert_eq!(c["received"], received, "{input}: {c}");
        assert_eq!(c["malformed"], malformed, "{input}: {c}");
        assert_eq!(c["routed"], routed, "{input}: {c}");
        assert_eq!(c["dropped"], 0, "{input}: {c}");
    }
    // Rules, in order: errors (3: two lines and logger's user.err), security, database,
    // the templated timeout rule.
    let rules: Vec<(String, u64, u64)> = logs["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["to"].as_str().unwrap_or_default().to_string(),
                r["matched"].as_u64().unwrap_or(u64::MAX),
                r["routed"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("logs.error".to_string(), 3, 3),
            ("logs.security".to_string(), 1, 1),
            ("logs.database".to_string(), 1, 1),
            ("logs.{app}.{level}".to_string(), 1, 1),
        ]
    );
    // The same figures in /metrics, per shard.
    let (status, _, text) = get(http, "/metrics");
    assert_eq!(status, 200);
    promtool_check(&text);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("a Prometheus client library parses it");
    for (input, received, malformed, routed) in want {
        let sum = |name| metric_sum(&scrape, name, &[("input", input)]);
        assert_eq!(
            sum("shardcast_logs_received_total"),
            f64::from(received),
            "{input}"
        );
        assert_eq!(
            sum("shardcast_logs_malformed_total"),
            f64::from(malformed),
            "{input}"
        );
        assert_eq!(
            sum("shardcast_logs_routed_total"),
            f64::from(routed),
            "{input}"
        );
        assert_eq!(sum("shardcast_logs_dropped_total"), 0.0, "{input}");
    }
    let rule0 = [("rule", "0"), ("to", "logs.error")];
    assert_eq!(
        metric_sum(&scrape, "shardcast_log_rule_matched_total", &rule0),
        3.0
    );
    assert_eq!(
        metric_sum(&scrape, "shardcast_log_rule_routed_total", &rule0),
        3.0
    );
    // After a reload the new rules count from zero; the inputs keep counting.
    let path = s.config_path().expect("a config file");
    let reloaded = config("").replace("to = \"logs.database\"", "to = \"logs.db\"");
    std::fs::write(&path, reloaded).expect("rewrite");
    s.signal(libc::SIGHUP);
    s.wait_for_log("reloaded", |l| l.contains("configuration reloaded"));
    let logs = varz_logs_until(http, |l| l["rules"][2]["to"] == "logs.db");
    assert_eq!(logs["rules"][2]["matched"], 0, "{logs}");
    assert_eq!(logs["rules"][0]["matched"], 0, "{logs}");
    assert_eq!(logs["inputs"]["nats"]["received"], 3, "{logs}");
}

#[test]
fn varz_has_no_log_counters_when_logs_are_off() {
    let s = Server::start_with(2, "[monitoring]\nport = 0\n");
    let http = monitoring_addr(&s);
    assert_eq!(get_json(http, "/varz")["logs"], Value::Null);
    let (_, _, text) = get(http, "/metrics");
    assert!(
        !text.contains("shardcast_logs_"),
        "log families with logs off"
    );
}

#[test]
fn templated_subjects_turn_hostile_field_values_into_safe_tokens() {
    let toml = "[monitoring]\nport = 0\n[logs]\nenabled = true\ntcp_port = 0\nall_subject = \"\"\n\
                [[logs.route]]\nto = \"logs.{app}.{user}\"\n\
                [[logs.route]]\nto = \"logs.{app}\"\n";
    let s = Server::start_with_logging(2, toml, "shardcast=info");
    let http = monitoring_addr(&s);
    let tcp = listening(&s, "log tcp listening");
    let long = "u".repeat(300);
    let lines = [
        // app, user: what a hostile or careless sender puts in its fields.
        r#"{"message":"m1","app":"a.b c>*","user":"../$SYS.x"}"#.to_string(),
        r#"{"message":"m2","app":"API","user":"é漢\r\nPUB x 1"}"#.to_string(),
        r#"{"message":"m3","app":"","user":42}"#.to_string(),
        format!(r#"{{"message":"m4","app":"x","user":"{long}"}}"#),
        // Both rules would make an ingest subject: matched, never routed there.
        r#"{"message":"m5","app":"ingest","user":"y"}"#.to_string(),
        r#"{"message":"m6","user":"*"}"#.to_string(),
    ];
    let rt = runtime();
    let got = rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let mut sub = nats.subscribe("logs.>").await.expect("sub");
        subscribed(&nats).await;
        let mut text = String::new();
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        tcp_send(tcp, text.as_bytes());
        // Two copies per line, but both of m5's would be ingest subjects: 10 messages.
        let mut got = Vec::new();
        while got.len() < 10 {
            let m = next(&mut sub).await;
            let r: Value = serde_json::from_slice(&m.payload).expect("a JSON record");
            got.push((
                m.subject.to_string(),
                r["message"].as_str().unwrap_or("").to_string(),
            ));
        }
        nothing_more(&mut sub, "one message too many").await;
        let _in_runtime = rt.enter();
        drop(nats);
        got
    });
    let sixty_four = "u".repeat(64);
    let want: Vec<(String, &str)> = vec![
        ("logs.a_b_c__.____sys_x".into(), "m1"),
        ("logs.a_b_c__".into(), "m1"),
        ("logs.api.____pub_x_1".into(), "m2"),
        ("logs.api".into(), "m2"),
        ("logs._.42".into(), "m3"),
        ("logs._".into(), "m3"),
        (format!("logs.x.{sixty_four}"), "m4"),
        ("logs.x".into(), "m4"),
        ("logs._._".into(), "m6"),
        ("logs._".into(), "m6"),
    ];
    let want: Vec<(String, String)> = want.into_iter().map(|(s, m)| (s, m.to_string())).collect();
    assert_eq!(got, want);
    let logs = varz_logs_until(http, |l| l["inputs"]["tcp"]["received"] == 6);
    for rule in 0..2 {
        assert_eq!(logs["rules"][rule]["matched"], 6, "{logs}");
        assert_eq!(logs["rules"][rule]["routed"], 5, "{logs}");
    }
}

#[test]
fn a_udp_flood_into_a_stalled_server_is_bounded_by_the_buffer_and_counted() {
    const SENT: u64 = 5_000;
    let s = Server::start_with_logging(
        2,
        &config("syslog_udp_buffer = \"16KiB\"\n"),
        "shardcast=info",
    );
    let http = monitoring_addr(&s);
    let port = listening(&s, "syslog udp listening");
    let rt = runtime();
    // The clients are dropped inside the runtime, also when an assertion fails.
    let _in_runtime = rt.enter();
    let nats = rt.block_on(async { async_nats::connect(s.addr.to_string()).await.expect("nats") });
    let mut errors = rt.block_on(async {
        let sub = nats.subscribe("logs.error").await.expect("sub");
        subscribed(&nats).await;
        sub
    });
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.connect(port).expect("connect");
    // The server is stopped: nothing reads the sockets while the flood arrives.
    s.signal(libc::SIGSTOP);
    wait_stopped(s.pid());
    for i in 0..SENT {
        let line = format!("<14>1 2026-12-02T10:00:00Z host app - - - flood {i}");
        udp.send(line.as_bytes()).expect("send");
    }
    s.signal(libc::SIGCONT);
    // Every datagram is either read or counted as dropped once the buffer is drained.
    let accounted = |n: u64| {
        move |l: &Value| {
            let c = &l["inputs"]["syslog_udp"];
            c["received"].as_u64().unwrap_or(0) + c["dropped"].as_u64().unwrap_or(0) == n
        }
    };
    varz_logs_until(http, accounted(SENT));
    // Running again, it takes the next datagram and routes it.
    udp.send(b"<11>1 2026-12-02T10:00:01Z host app - - - after the flood")
        .expect("send");
    let m = rt.block_on(next(&mut errors));
    assert!(String::from_utf8_lossy(&m.payload).contains("after the flood"));
    let logs = varz_logs_until(http, accounted(SENT + 1));
    let c = &logs["inputs"]["syslog_udp"];
    let received = c["received"].as_u64().unwrap_or(0);
    // A 16 KiB buffer (32 KiB as the kernel counts) holds a few dozen datagrams: the
    // rest of the flood was dropped by the kernel, not queued, and counted.
    assert!(received < 500, "{c}");
    assert!(c["dropped"].as_u64().unwrap_or(0) > SENT - 500, "{c}");
    assert_eq!(c["malformed"], 0, "{c}");
}

/// Waits until every thread of process `pid` is stopped (SIGSTOP takes effect on each
/// thread asynchronously).
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + WAIT;
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task");
        let all_stopped = tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|st| st.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
                .unwrap_or(true)
        });
        if all_stopped {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_log_right_after_a_subscription_on_another_shard_reaches_it() {
    let toml = "[logs]\nenabled = true\nsyslog_udp_port = 0\nall_subject = \"\"\n\
                [[logs.route]]\nto = \"logs.t.{app}\"\n";
    let s = Server::start_with_logging(2, toml, "shardcast=info");
    let port = listening(&s, "syslog udp listening");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.connect(port).expect("connect");
    let rt = runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        // Fresh connections land on either shard; the datagrams on one: about half of
        // the rounds subscribe on the other shard than the one that routes the log.
        for i in 0..60 {
            let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
            let mut sub = nats.subscribe(format!("logs.t.a{i}")).await.expect("sub");
            // The subscription is in place once a probe through it comes back.
            subscribed(&nats).await;
            let line = format!("<11>1 2026-12-02T10:00:00Z host a{i} - - - round {i}");
            udp.send(line.as_bytes()).expect("send");
            let m = tokio::time::timeout(WAIT, sub.next())
                .await
                .unwrap_or_else(|_| panic!("round {i}: the log never came"))
                .expect("subscription open");
            assert!(String::from_utf8_lossy(&m.payload).contains(&format!("round {i}")));
        }
    });
}
