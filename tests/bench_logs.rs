//! `shardcast bench logs` run as a user would: the real binary against a real `shardcast
//! serve` with the configuration the bench prints, over every input, and against Debian's
//! rsyslog with the configuration the bench prints for it (started by the test on free
//! ports, killed by its PID). Every copy the 20 rules make must reach every watcher. No
//! timing is asserted.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::bench::{bench, report, u};
use common::logs::listening;
use common::{free_fixed_port, Server, TempDir};
use serde_json::Value;

/// Runs `bench logs … --json`; the run must succeed.
fn bench_logs(args: &[&str]) -> Value {
    let mut all = vec!["logs", "--json", "--msgs", "3000", "--timeout", "5s"];
    all.extend_from_slice(args);
    report(&all)
}

fn printed_config(args: &[&str]) -> String {
    let mut all = vec!["logs", "--print-config"];
    all.extend_from_slice(args);
    let out = bench(&all);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn every_input_delivers_every_copy_to_every_watcher() {
    let rules = printed_config(&["shardcast"]);
    let toml = rules.replace(
        "enabled = true\n",
        "enabled = true\ntcp_port = 0\nsyslog_tcp_port = 0\nsyslog_udp_port = 0\n",
    );
    let s = Server::start_with_logging(2, &toml, "shardcast=info");
    let url = format!("nats://{}", s.addr);
    let pid = s.pid().to_string();
    let tcp = listening(&s, "log tcp listening").to_string();
    let syslog_tcp = listening(&s, "syslog tcp listening").to_string();
    let syslog_udp = listening(&s, "syslog udp listening").to_string();
    for (input, addr, rate) in [
        ("nats", tcp.as_str(), "0"),
        ("tcp", &tcp, "0"),
        ("syslog-tcp", &syslog_tcp, "0"),
        // UDP has no push-back: paced so that the kernel's buffer never fills.
        ("syslog-udp", &syslog_udp, "5000"),
    ] {
        let r = bench_logs(&[
            "--url",
            &url,
            "--log-input",
            input,
            "--log-addr",
            addr,
            "--rate",
            rate,
            "--server-pid",
            &pid,
        ]);
        assert_eq!(r["rules"], 20, "{r}");
        assert_eq!(r["watchers"], 3, "{r}");
        // Each log makes 2 to 7 copies, each to 3 watchers.
        let expected = u(&r, "expected");
        assert!((3000 * 2 * 3..=3000 * 7 * 3).contains(&expected), "{r}");
        assert_eq!(u(&r, "received"), expected, "{input}: {r}");
        assert_eq!(u(&r, "lost"), 0, "{input}: {r}");
        assert!(r["server_cpu_us_per_log"].as_f64().is_some(), "{r}");
    }
}

/// rsyslogd in the foreground, killed by its PID when dropped.
struct Rsyslog {
    child: Child,
    _dir: TempDir,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rsyslog_with_the_printed_configuration_routes_the_same_copies() {
    let dir = TempDir::new("rsyslog");
    let (port, sink) = (free_fixed_port(), free_fixed_port());
    let conf = printed_config(&[
        "rsyslog",
        "--log-addr",
        &format!("127.0.0.1:{port}"),
        "--log-sink",
        &sink.to_string(),
    ]);
    let work = dir.0.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let conf = conf
        .lines()
        .map(|l| {
            if l.starts_with("global(") {
                format!(
                    "global(workDirectory=\"{}\" maxMessageSize=\"64k\")",
                    work.display()
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.0.join("rsyslog.conf");
    std::fs::write(&path, conf).expect("write the config");
    let child = Command::new("rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(&path)
        .arg("-i")
        .arg(dir.0.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd (Debian's rsyslog package; scripts/test.sh installs it)");
    let rsyslog = Rsyslog { child, _dir: dir };
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "rsyslogd never listened on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rsyslog.child.id().to_string();
    let r = bench_logs(&[
        "--log-input",
        "syslog-tcp",
        "--log-addr",
        &addr,
        "--log-sink",
        &sink.to_string(),
        "--server-pid",
        &pid,
    ]);
    // rsyslog's filters select what shardcast's rules select: every copy the bench
    // expects (from the same rules) arrives, and nothing more.
    let expected = u(&r, "expected");
    assert!((3000 * 2 * 3..=3000 * 7 * 3).contains(&expected), "{r}");
    assert_eq!(u(&r, "received"), expected, "{r}");
    assert_eq!(u(&r, "lost"), 0, "{r}");
}

#[test]
fn bad_usage_is_explained() {
    let out = bench(&["logs", "--log-input", "tcp", "--msgs", "10"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--log-addr HOST:PORT"), "{err}");
    let out = bench(&[
        "logs",
        "--print-config",
        "rsyslog",
        "--log-addr",
        "127.0.0.1:5514",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--log-sink PORT"), "{err}");
}
