//! `shardcast bench` run as a user would: the real binary against a real `shardcast serve`
//! (and against Debian's nats-server), checking what it reports — counts, loss, the JSON and
//! CSV outputs, server figures from /proc — and that bad usage is explained. Small runs only;
//! no timing is asserted.

mod common;

use std::process::Command;

use common::bench::{bench, report, u};
use common::{monitoring_addr, NatsServer, Server, TempDir};
use serde_json::Value;

/// Runs with --json and returns the report; the run must succeed.
fn bench_json(url: &str, args: &[&str]) -> Value {
    let mut all = vec!["--url", url, "--json"];
    all.extend_from_slice(args);
    report(&all)
}

#[test]
fn pubsub_over_subjects_counts_every_delivery() {
    let s = Server::start(2);
    let url = s.addr.to_string();
    let pid = s.pid().to_string();
    // 2 publishers × 10000 messages alternate over 2 subjects: 10000 per subject.
    // Subscribers 0, 2, 4 take subject 0 and 1, 3 take subject 1: 5 × 10000 deliveries.
    let r = bench_json(
        &url,
        &[
            "pubsub",
            "--pubs",
            "2",
            "--subs",
            "5",
            "--subjects",
            "2",
            "--msgs",
            "20000",
            "--size",
            "64",
            "--server-pid",
            &pid,
            "--label",
            "mine",
        ],
    );
    assert_eq!(r["label"], "mine");
    assert_eq!(r["scenario"], "pubsub");
    assert_eq!(u(&r, "msgs_published"), 20000);
    assert_eq!(u(&r, "expected"), 50000);
    assert_eq!(u(&r, "received"), 50000);
    assert_eq!(u(&r, "lost"), 0);
    assert!(r["sub_msgs_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    // Every measured delivery carried a timestamp.
    assert_eq!(u(&r["latency"], "samples"), 50000);
    let server = &r["server"];
    assert_eq!(u(server, "pid"), u64::from(s.pid()));
    assert!(server["cpu_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert!(
        server["cpu_us_per_msg"].as_f64().unwrap_or(0.0) > 0.0,
        "{r}"
    );
}

#[test]
fn queue_reqrep_latency_and_conns_scenarios_run_and_count() {
    let s = Server::start(2);
    let url = s.addr.to_string();
    let pid = s.pid().to_string();

    let q = bench_json(
        &url,
        &["queue", "--pubs", "2", "--subs", "4", "--msgs", "9000"],
    );
    // Each message goes to exactly one member of the group.
    assert_eq!(
        (u(&q, "expected"), u(&q, "received"), u(&q, "lost")),
        (9000, 9000, 0)
    );

    let rr = bench_json(
        &url,
        &["reqrep", "--pubs", "2", "--subs", "2", "--msgs", "400"],
    );
    assert_eq!(
        (u(&rr, "expected"), u(&rr, "received"), u(&rr, "lost")),
        (400, 400, 0)
    );
    assert_eq!(u(&rr["latency"], "samples"), 400);

    // 2000 msgs/s for 300 ms to 3 subscribers.
    let l = bench_json(
        &url,
        &[
            "latency",
            "--subs",
            "3",
            "--rate",
            "2000",
            "--duration",
            "300ms",
        ],
    );
    // The rate caps what is sent: at most 2000/s × 0.3 s (plus the one due at the start).
    let published = u(&l, "msgs_published");
    assert!((1..=601).contains(&published), "{l}");
    assert_eq!(u(&l, "received"), 3 * published);
    assert_eq!(u(&l, "lost"), 0);
    let lat = &l["latency"];
    assert!(lat["p50_us"].as_f64() <= lat["p99_us"].as_f64(), "{l}");
    assert!(lat["p99_us"].as_f64() <= lat["max_us"].as_f64(), "{l}");

    let c = bench_json(
        &url,
        &[
            "conns",
            "--subs",
            "200",
            "--duration",
            "200ms",
            "--server-pid",
            &pid,
        ],
    );
    let per_conn = c["server"]["rss_per_conn_bytes"]
        .as_f64()
        .expect("RSS per connection");
    assert!(per_conn > 0.0, "{c}");
}

#[test]
fn warm_up_messages_are_sent_but_not_counted() {
    let s = Server::start(2);
    let url = s.addr.to_string();
    let r = bench_json(
        &url,
        &[
            "pubsub", "--subs", "3", "--msgs", "5000", "--warmup", "200ms",
        ],
    );
    // Hundreds of thousands of warm-up messages went out first; none is in the figures.
    assert_eq!(u(&r, "msgs_published"), 5000);
    assert_eq!(
        (u(&r, "expected"), u(&r, "received"), u(&r, "lost")),
        (15000, 15000, 0)
    );
    assert_eq!(u(&r["latency"], "samples"), 15000);
}

#[test]
fn csv_rows_and_the_histogram_file_are_written() {
    let s = Server::start(1);
    let url = s.addr.to_string();
    let dir = TempDir::new("bench-out");
    let csv = dir.0.join("runs.csv");
    let hist = dir.0.join("latency.hist");
    for label in ["first", "second"] {
        let out = bench(&[
            "pubsub",
            "--url",
            &url,
            "--subs",
            "2",
            "--msgs",
            "2000",
            "--label",
            label,
            "--csv",
            csv.to_str().expect("utf8"),
            "--hist",
            hist.to_str().expect("utf8"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let human = String::from_utf8_lossy(&out.stdout);
        assert!(
            human.contains("lost         0 (expected 4,000, received 4,000)"),
            "{human}"
        );
    }
    let text = std::fs::read_to_string(&csv).expect("csv written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "one header and two rows: {text}");
    assert!(
        lines[0].starts_with("label,scenario,pubs,subs,stalled,"),
        "{text}"
    );
    let header: Vec<&str> = lines[0].split(',').collect();
    for row in &lines[1..] {
        assert_eq!(row.split(',').count(), header.len(), "{row}");
    }
    assert!(
        lines[1].starts_with("first,pubsub,1,2,0,1,128,2000,"),
        "{text}"
    );
    assert!(lines[2].starts_with("second,"), "{text}");
    let hist = std::fs::read_to_string(&hist).expect("histogram written");
    assert!(
        hist.contains("Percentile") && hist.contains("Total count    =         4000"),
        "{hist}"
    );
}

#[test]
fn a_separate_subscriber_process_reports_what_it_missed() {
    use std::io::{BufRead, BufReader};
    let s = Server::start(2);
    let url = s.addr.to_string();
    // The subscriber process waits for 1000 messages per subject; the publisher sends 600.
    let mut sub = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args([
            "bench", "sub", "--url", &url, "--subs", "2", "--msgs", "1000",
        ])
        .args(["--timeout", "500ms", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the subscriber run");
    let stderr = sub.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines.next().expect("a line").expect("utf8");
    assert!(ready.contains("2 subscribers ready"), "{ready}");
    let p = bench_json(&url, &["pub", "--msgs", "600"]);
    assert_eq!(u(&p, "msgs_published"), 600);
    let out = sub.wait_with_output().expect("subscriber run ends");
    assert!(out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(u(&r, "expected"), 2000);
    assert_eq!(u(&r, "received"), 1200);
    assert_eq!(u(&r, "lost"), 800);
}

#[test]
fn healthy_subscribers_lose_nothing_next_to_stalled_ones() {
    let s = Server::start(2);
    let url = s.addr.to_string();
    let r = bench_json(
        &url,
        &[
            "pubsub",
            "--subs",
            "3",
            "--stalled",
            "2",
            "--msgs",
            "20000",
            "--size",
            "512",
        ],
    );
    assert_eq!(u(&r, "stalled"), 2);
    assert_eq!(u(&r, "expected"), 60000);
    assert_eq!(u(&r, "lost"), 0);
}

#[test]
fn the_generator_measures_nats_server_too() {
    let n = NatsServer::start();
    let url = format!("nats://{}", n.addr);
    let pid = n.pid().to_string();
    let r = bench_json(
        &url,
        &[
            "pubsub",
            "--subs",
            "3",
            "--msgs",
            "10000",
            "--server-pid",
            &pid,
            "--label",
            "nats-server",
        ],
    );
    assert_eq!(
        (u(&r, "expected"), u(&r, "received"), u(&r, "lost")),
        (30000, 30000, 0)
    );
    assert!(r["server"]["cpu_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    let q = bench_json(&url, &["queue", "--subs", "3", "--msgs", "3000"]);
    assert_eq!(u(&q, "lost"), 0);
}

#[test]
fn bad_usage_and_unreachable_servers_are_explained() {
    let out = bench(&["latency", "--rate", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("latency needs a fixed --rate"), "{err}");

    let out = bench(&["pubsub", "--url", "127.0.0.1:9", "--msgs", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to 127.0.0.1:9"), "{err}");

    let s = Server::start_with(1, "[limits]\nmax_payload = \"4KiB\"\n");
    let url = s.addr.to_string();
    let out = bench(&["pubsub", "--url", &url, "--size", "5000", "--msgs", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--size 5000 is larger than the server's max_payload (4096 bytes)"),
        "{err}"
    );

    let out = bench(&["pubsub", "--url", "http://x", "--msgs", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported URL scheme"));
}

#[test]
fn the_report_says_what_the_server_dropped() {
    // shardcast sheds for the stalled subscribers under drop_new, and says so in /varz.
    let s = Server::start_with(
        2,
        "[monitoring]\nport = 0\n[slow_consumer]\npolicy = \"drop_new\"\n",
    );
    let monitor = format!("http://{}", monitoring_addr(&s));
    let r = bench_json(
        &s.addr.to_string(),
        &[
            "pubsub",
            "--subs",
            "2",
            "--stalled",
            "2",
            "--msgs",
            "40000",
            "--size",
            "512",
            "--monitor",
            &monitor,
        ],
    );
    let d = &r["server_drops"];
    assert!(d["drop_new"].as_u64().unwrap_or(0) > 0, "{d}");
    assert_eq!(d["slow_consumers"], 0, "{d}");
    // nats-server reports its slow consumers only.
    let (n, mport) = NatsServer::start_monitored();
    let r = bench_json(
        &format!("nats://{}", n.addr),
        &[
            "pubsub",
            "--subs",
            "2",
            "--msgs",
            "2000",
            "--monitor",
            &format!("http://127.0.0.1:{mport}"),
        ],
    );
    let d = &r["server_drops"];
    assert_eq!(d["slow_consumers"], 0, "{d}");
    assert!(d["drop_new"].is_null(), "{d}");
    let out = bench(&["pubsub", "--msgs", "10", "--monitor", "127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--monitor 127.0.0.1:1: cannot connect"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
