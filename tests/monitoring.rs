//! HTTP monitoring against a real server over real HTTP: exact counts in `/varz`,
//! `/connz`, `/subsz`, `/shardz`, `/channelz` and `/metrics` (checked by `promtool` and
//! parsed by a Prometheus client library), paging and sorting, bad queries, `/healthz`
//! while draining, the per-shard stats line, and the dashboard in headless Chromium.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{client_with, get, get_json, monitoring_addr, promtool_check, Raw, Server, WAIT};
use serde_json::Value;

fn start(toml: &str) -> (Server, SocketAddr) {
    let server = Server::start_with(2, &format!("[monitoring]\nport = 0\n{toml}"));
    let addr = monitoring_addr(&server);
    (server, addr)
}

#[test]
fn every_endpoint_reports_exactly_the_traffic_sent() {
    let (server, http) = start("");
    let named = r#"{"verbose":false,"pedantic":false,"headers":true,"name":"sub","lang":"raw","version":"1.2.3"}"#;
    let mut subs: Vec<Raw> = (0..3).map(|_| client_with(&server, named)).collect();
    for s in &mut subs {
        s.send(b"SUB t.a 1\r\n");
        s.flush();
    }
    let mut publisher = client_with(
        &server,
        r#"{"verbose":false,"pedantic":false,"name":"pub"}"#,
    );
    for i in 0..10 {
        publisher.send(format!("PUB t.a 5\r\nmsg-{i}\r\n").as_bytes());
    }
    for _ in 0..5 {
        publisher.send(b"PUB t.b 3\r\nabc\r\n");
    }
    publisher.flush();
    for s in &mut subs {
        let got = s.drain();
        assert_eq!(got.len(), 10);
    }

    let varz = get_json(http, "/varz");
    assert_eq!(varz["in_msgs"], 15);
    assert_eq!(varz["in_bytes"], 10 * 5 + 5 * 3);
    assert_eq!(varz["out_msgs"], 30);
    assert_eq!(varz["out_bytes"], 30 * 5);
    assert_eq!(varz["connections"], 4);
    assert_eq!(varz["total_connections"], 4);
    assert_eq!(varz["subscriptions"], 3);
    assert_eq!(varz["slow_consumers"], 0);
    assert_eq!(varz["max_payload"], 1 << 20);
    assert_eq!(varz["port"], server.addr.port());
    assert_eq!(varz["shards"], 2);
    assert!(varz["uptime"].as_str().is_some_and(|u| u.ends_with('s')));

    let connz = get_json(http, "/connz?sort=msgs_to&subs=1");
    assert_eq!(connz["total"], 4);
    let conns = connz["connections"].as_array().expect("connections");
    for c in &conns[..3] {
        assert_eq!(c["out_msgs"], 10, "{c}");
        assert_eq!(c["out_bytes"], 50);
        assert_eq!(c["subscriptions"], 1);
        assert_eq!(c["subscriptions_list"], serde_json::json!(["t.a"]));
        assert_eq!(
            (&c["name"], &c["lang"], &c["version"]),
            (
                &Value::from("sub"),
                &Value::from("raw"),
                &Value::from("1.2.3")
            )
        );
        assert_eq!(c["ip"], "127.0.0.1");
    }
    let p = &conns[3];
    assert_eq!(
        (&p["name"], &p["in_msgs"], &p["in_bytes"], &p["out_msgs"]),
        (
            &Value::from("pub"),
            &Value::from(15),
            &Value::from(65),
            &Value::from(0)
        )
    );

    let subsz = get_json(http, "/subsz?subs=1");
    assert_eq!(subsz["num_subscriptions"], 3);
    assert_eq!(subsz["num_inserts"], 3);
    let list = subsz["subscriptions_list"].as_array().expect("list");
    assert_eq!(list.len(), 3);
    assert!(
        list.iter()
            .all(|s| s["subject"] == "t.a" && s["msgs"] == 10 && s["sid"] == "1"),
        "{list:?}"
    );

    let shardz = get_json(http, "/shardz");
    let total = &shardz["total"];
    assert_eq!(total["in_msgs"], 15);
    assert_eq!(total["out_msgs"], 30);
    assert_eq!(total["connections"], 4);
    assert_eq!(
        total["latency_us"]["lifetime"]["count"], 30,
        "every delivery is timed once"
    );
    assert_eq!(total["queue_wait_us"]["lifetime"]["count"], 30);
    assert_eq!(shardz["shards"].as_array().map(Vec::len), Some(2));
    let per_shard: u64 = shardz["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["out_msgs"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(per_shard, 30);

    let channelz = get_json(http, "/channelz");
    let subjects = channelz["subjects"].as_array().expect("subjects");
    let find = |name: &str| subjects.iter().find(|s| s["subject"] == name).cloned();
    let a = find("t.a").expect("t.a");
    assert_eq!(
        (&a["in_msgs"], &a["out_msgs"], &a["subscribers"]),
        (&Value::from(10), &Value::from(30), &Value::from(3))
    );
    let b = find("t.b").expect("t.b");
    assert_eq!(
        (&b["in_msgs"], &b["out_msgs"]),
        (&Value::from(5), &Value::from(0))
    );
    assert_eq!(subjects[0]["subject"], "t.a", "busiest first");

    let (status, kind, text) = get(http, "/metrics");
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    promtool_check(&text);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("a Prometheus client library parses it");
    let sum = |name: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => *v,
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(sum("shardcast_in_msgs_total"), 15.0);
    assert_eq!(sum("shardcast_out_msgs_total"), 30.0);
    assert_eq!(sum("shardcast_out_bytes_total"), 150.0);
    assert_eq!(sum("shardcast_connections"), 4.0);
    assert_eq!(sum("shardcast_subscriptions"), 3.0);
    let latency_count: u64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "shardcast_latency_seconds")
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count as u64).max().unwrap_or(0)
            }
            _ => 0,
        })
        .sum();
    assert_eq!(
        latency_count, 30,
        "the latency histogram counts every delivery"
    );
}

/// `promtool check metrics` accepts `text` (Debian's prometheus package).
#[test]
fn connz_pages_and_sorts_and_bad_queries_are_named() {
    let (server, http) = start("");
    let mut clients: Vec<Raw> = (0..5).map(|_| common::client(&server)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        for _ in 0..i {
            c.send(b"PUB nobody 1\r\nx\r\n");
        }
        c.flush();
    }
    let all = get_json(http, "/connz?sort=msgs_from");
    let counts: Vec<u64> = all["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| c["in_msgs"].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(counts, [4, 3, 2, 1, 0]);
    let page = get_json(http, "/connz?sort=msgs_from&offset=1&limit=2");
    assert_eq!(
        (page["total"].as_u64(), page["num_connections"].as_u64()),
        (Some(5), Some(2))
    );
    let counts: Vec<u64> = page["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| c["in_msgs"].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(counts, [3, 2]);
    let by_cid = get_json(http, "/connz");
    let cids: Vec<u64> = by_cid["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| c["cid"].as_u64().unwrap_or(0))
        .collect();
    assert!(cids.windows(2).all(|w| w[0] < w[1]), "{cids:?}");

    for (path, names) in [
        ("/connz?limit=5000", "limit"),
        ("/connz?offset=-1", "offset"),
        ("/connz?sort=nonsense", "sort"),
        ("/connz?subs=maybe", "subs"),
        ("/subsz?subs=1&limit=x", "limit"),
    ] {
        let (status, _, body) = get(http, path);
        assert_eq!(status, 400, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).expect("json error");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(names)),
            "{path}: {body}"
        );
    }
    let (status, _, body) = get(http, "/nothing/here");
    assert_eq!(status, 404);
    assert!(body.contains("/varz"), "{body}");
    assert_eq!(get_json(http, "/healthz")["status"], "ok");
}

#[test]
fn healthz_says_draining_while_the_server_stops() {
    let (server, http) = start("[shutdown]\ngrace = \"4s\"\n");
    // A subscriber that never reads: at SIGTERM its output takes the grace to give up on.
    let mut stuck = common::client(&server);
    stuck.send(b"SUB big 1\r\n");
    stuck.flush();
    let mut publisher = common::client(&server);
    let payload = vec![b'x'; 60_000];
    for _ in 0..300 {
        publisher.send(format!("PUB big {}\r\n", payload.len()).as_bytes());
        publisher.send(&payload);
        publisher.send(b"\r\n");
    }
    publisher.flush();
    server.signal(libc::SIGTERM);
    let deadline = Instant::now() + WAIT;
    let body = loop {
        let (status, _, body) = get(http, "/healthz");
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "healthz never said draining");
        // Draining starts when the signal is handled; nothing else tells us when.
        std::thread::sleep(Duration::from_millis(10));
    };
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["status"], "unavailable");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("draining")),
        "{body}"
    );
    drop(stuck);
    let (status, _) = server.wait_exit();
    assert!(status.success());
}

#[test]
fn each_shard_logs_a_summary_line_when_asked() {
    let (server, _) = start("stats_log_interval = \"1s\"\n");
    let mut c = common::client(&server);
    c.send(b"SUB s 1\r\nPUB s 2\r\nhi\r\n");
    assert_eq!(c.drain().len(), 1);
    let line = server.wait_for_log("shard stats", |l| l.contains("shard stats"));
    for field in [
        "shard=",
        "connections=",
        "in_msgs_per_s=",
        "out_msgs_per_s=",
        "cpu_busy=",
        "latency_us_p99=",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
}

#[test]
fn the_dashboard_shows_live_data_in_headless_chromium() {
    let (server, http) = start("");
    let url = format!("nats://{}", server.addr);
    // Traffic for as long as the page may sample (its start plus its 30 s timeout; a slow
    // Chromium start must not find the traffic over), stopped as soon as the page is done.
    let mut bench = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args([
            "bench",
            "pubsub",
            "--url",
            &url,
            "--subs",
            "20",
            "--size",
            "128",
            "--rate",
            "20000",
            "--duration",
            "45s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shot = root.join("target/dashboard.png");
    let out = Command::new("node")
        .arg(root.join("tests/browser/dashboard.mjs"))
        .arg(format!("http://{http}/"))
        .arg(&shot)
        .args(["--min-samples", "4", "--timeout-ms", "30000"])
        .output()
        .expect("node (scripts/test.sh installs it and the harness's npm packages)");
    let _ = bench.kill();
    let _ = bench.wait();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dashboard check failed: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(report.trim().lines().last().unwrap_or("{}")).expect("report");
    assert_eq!(v["ok"], true, "{report}");
    assert!(
        v["maxMsgsOut"].as_f64().is_some_and(|m| m > 0.0),
        "{report}"
    );
    assert!(
        v["consoleErrors"].as_array().is_some_and(Vec::is_empty),
        "{report}"
    );
    assert!(shot.exists());
    if std::env::var("UPDATE_DOCS").is_ok() {
        std::fs::copy(&shot, root.join("docs/img/dashboard.png")).expect("copy the screenshot");
    }
}
