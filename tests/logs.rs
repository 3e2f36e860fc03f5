//! Log routing over real TCP with async-nats, against a server of two shards: logs
//! published to `logs.ingest(.<app>)` (JSON and text lines) become JSON records on the
//! subjects their rules name, with a `Shardcast-Log-Level` header; malformed logs are
//! answered with the reason; a bad rule stops the start naming its index.

mod common;

use common::irc::{runtime, subscribed};
use common::logs::{listening, logger, next, nothing_more, RULES};
use common::{Server, WAIT};

#[test]
fn logs_are_parsed_and_routed_by_their_rules() {
    let s = Server::start_with(2, RULES);
    let rt = runtime();
    rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let mut all = nats.subscribe("logs.all").await.expect("sub");
        let mut error = nats.subscribe("logs.error").await.expect("sub");
        let mut security = nats.subscribe("logs.security").await.expect("sub");
        let mut database = nats.subscribe("logs.database").await.expect("sub");
        let mut templated = nats.subscribe("logs.api.*").await.expect("sub");
        subscribed(&nats).await;
        let logs: [(&str, &str); 4] = [
            ("logs.ingest", "INFO [web] page served"),
            ("logs.ingest.api", "ERROR [db] SQL timeout after 300ms"),
            (
                "logs.ingest",
                r#"{"level":"warn","category":"SECURITY","message":"permission denied","user":"bob"}"#,
            ),
            ("logs.ingest.billing", "debug nothing to see"),
        ];
        for (subject, line) in logs {
            nats.publish(subject, line.into()).await.expect("publish");
        }
        nats.flush().await.expect("flush");
        // Every record reaches logs.all, in order, as JSON.
        let mut seen = Vec::new();
        for _ in 0..4 {
            let m = next(&mut all).await;
            let r: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
            let level = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Shardcast-Log-Level"))
                .map(|v| v.to_string());
            assert_eq!(level.as_deref(), r["level"].as_str(), "{r}");
            seen.push(r);
        }
        let messages: Vec<&str> = seen.iter().map(|r| r["message"].as_str().expect("message")).collect();
        assert_eq!(
            messages,
            ["page served", "SQL timeout after 300ms", "permission denied", "nothing to see"]
        );
        assert_eq!(seen[1]["app"], "api");
        assert_eq!(seen[1]["category"], "db");
        assert_eq!(seen[2]["fields"]["user"], "bob");
        assert_eq!(seen[3]["level"], "DEBUG");
        assert_eq!(seen[3]["app"], "billing");
        // Each rule's subject got exactly what its conditions select.
        let e = next(&mut error).await;
        assert!(String::from_utf8_lossy(&e.payload).contains("SQL timeout"));
        let sec = next(&mut security).await;
        assert!(String::from_utf8_lossy(&sec.payload).contains("permission denied"));
        let db = next(&mut database).await;
        assert!(String::from_utf8_lossy(&db.payload).contains("SQL timeout"));
        let t = next(&mut templated).await;
        assert_eq!(t.subject.as_str(), "logs.api.error");
        for sub in [&mut error, &mut security, &mut database, &mut templated] {
            nothing_more(sub, "one record too many").await;
        }
    });
}

#[test]
fn malformed_logs_are_answered_with_the_reason_and_nothing_is_routed() {
    let s = Server::start_with(
        2,
        &RULES.replace(
            "enabled = true\n",
            "enabled = true\nmax_record_bytes = \"1KiB\"\n",
        ),
    );
    let rt = runtime();
    rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let mut all = nats.subscribe("logs.all").await.expect("sub");
        subscribed(&nats).await;
        let ask = |body: Vec<u8>| {
            let nats = nats.clone();
            async move {
                let reply = tokio::time::timeout(WAIT, nats.request("logs.ingest", body.into()))
                    .await
                    .expect("an answer in time")
                    .expect("an answer");
                let answer: serde_json::Value =
                    serde_json::from_slice(&reply.payload).expect("a JSON answer");
                answer["error"]
                    .as_str()
                    .map_or_else(|| answer.to_string(), str::to_string)
            }
        };
        let bad_json = ask(b"{\"level\": oops".to_vec()).await;
        assert!(bad_json.contains("not valid JSON"), "{bad_json}");
        let no_message = ask(br#"{"level":"INFO"}"#.to_vec()).await;
        assert_eq!(
            no_message,
            "a JSON log must be an object with a \"message\" string"
        );
        let too_big = ask(vec![b'x'; 2000]).await;
        assert!(too_big.contains("over the 1024-byte limit"), "{too_big}");
        let binary = ask(vec![0xff, 0xfe, 0x00]).await;
        assert!(binary.contains("not UTF-8"), "{binary}");
        // A good one as a request is answered with where it went.
        let ok = ask(b"FATAL disk gone".to_vec()).await;
        assert_eq!(ok, r#"{"routed":["logs.error","logs.all"]}"#);
        let m = next(&mut all).await;
        assert!(String::from_utf8_lossy(&m.payload).contains("disk gone"));
        nothing_more(&mut all, "a malformed log was routed").await;
    });
}

#[test]
fn a_bad_rule_stops_the_start_and_names_its_index() {
    let dir = common::TempDir::new("badrule");
    let path = dir.0.join("rules.toml");
    let text = "[logs]\nenabled = true\n[[logs.route]]\nto = \"logs.ok\"\n\
                [[logs.route]]\nto = \"logs.x\"\nregex = \"(unclosed\"\n";
    std::fs::write(&path, text).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["serve", "-c", path.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("logs.route[1]: regex \"(unclosed\""), "{err}");
}

#[test]
fn the_tcp_line_port_routes_each_line_in_order_and_skips_bad_ones() {
    use std::io::Write;
    let s = Server::start_with_logging(
        2,
        &RULES.replace(
            "enabled = true\n",
            "enabled = true\ntcp_port = 0\nmax_record_bytes = \"1KiB\"\n",
        ),
        "shardcast=info",
    );
    let line = s.wait_for_log("log tcp listening", |l| l.contains("log tcp listening"));
    let addr: std::net::SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr in {line}"));
    let rt = runtime();
    rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let mut all = nats.subscribe("logs.all").await.expect("sub");
        let mut error = nats.subscribe("logs.error").await.expect("sub");
        subscribed(&nats).await;
        let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
        let mut input = String::new();
        for i in 0..100 {
            input.push_str(&format!("INFO [web] request {i}\n"));
            if i == 50 {
                // Malformed: too long, bad JSON, not UTF-8 (below). All skipped.
                input.push_str(&"x".repeat(3000));
                input.push('\n');
                input.push_str("{\"level\": nope\n");
            }
        }
        tcp.write_all(input.as_bytes()).expect("write");
        tcp.write_all(&[0xff, 0xfe, b'\n']).expect("write");
        tcp.write_all(b"{\"level\":\"error\",\"message\":\"last one\",\"app\":\"tcp\"}\n")
            .expect("write");
        for i in 0..100 {
            let m = next(&mut all).await;
            let r: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
            assert_eq!(r["message"], format!("request {i}"), "{r}");
        }
        let last = next(&mut all).await;
        let r: serde_json::Value = serde_json::from_slice(&last.payload).expect("json");
        assert_eq!(
            (r["message"].as_str(), r["app"].as_str()),
            (Some("last one"), Some("tcp"))
        );
        let e = next(&mut error).await;
        assert!(String::from_utf8_lossy(&e.payload).contains("last one"));
        nothing_more(&mut all, "a malformed line was routed").await;
    });
}

#[test]
fn rules_reload_on_sighup_and_a_bad_file_keeps_them() {
    let first =
        "[logs]\nenabled = true\n[[logs.route]]\nto = \"logs.error\"\nlevel = [\"ERROR\"]\n";
    let s = Server::start_with_logging(2, first, "shardcast=info");
    let rt = runtime();
    let send_error = |nats: &async_nats::Client| {
        let nats = nats.clone();
        async move {
            let reply =
                tokio::time::timeout(WAIT, nats.request("logs.ingest", "ERROR boom".into()))
                    .await
                    .expect("an answer in time")
                    .expect("an answer");
            String::from_utf8_lossy(&reply.payload).into_owned()
        }
    };
    let nats = rt.block_on(async { async_nats::connect(s.addr.to_string()).await.expect("nats") });
    assert_eq!(
        rt.block_on(send_error(&nats)),
        r#"{"routed":["logs.error","logs.all"]}"#
    );
    // New rules: errors go to logs.alerts, and nothing to logs.all.
    let path = s.config_path().expect("started with a file");
    let second = "[logs]\nenabled = true\nall_subject = \"\"\n[[logs.route]]\nto = \"logs.alerts\"\nlevel = [\"ERROR\"]\n";
    std::fs::write(&path, second).expect("rewrite");
    s.signal(libc::SIGHUP);
    let line = s.wait_for_log("reloaded", |l| l.contains("configuration reloaded"));
    assert!(line.contains("logs.route"), "{line}");
    // Every shard has them once requests from 8 fresh connections (spread over the
    // shards by the kernel) all come back so.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let answers: Vec<String> = (0..8)
            .map(|_| {
                rt.block_on(async {
                    let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
                    send_error(&nats).await
                })
            })
            .collect();
        if answers.iter().all(|a| a == r#"{"routed":["logs.alerts"]}"#) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{answers:?}");
    }
    // A bad file: the reload fails, the rules in force stay.
    std::fs::write(
        &path,
        "[logs]\nenabled = true\n[[logs.route]]\nto = \"logs.*\"\n",
    )
    .expect("rewrite");
    s.signal(libc::SIGHUP);
    let line = s.wait_for_log("reload failed", |l| l.contains("reload failed"));
    assert!(line.contains("logs.route[0]"), "{line}");
    assert_eq!(
        rt.block_on(send_error(&nats)),
        r#"{"routed":["logs.alerts"]}"#
    );
    let _in_runtime = rt.enter();
    drop(nats);
}

#[test]
fn syslog_from_logger_over_udp_and_tcp_in_both_rfcs_is_routed() {
    let s = Server::start_with_logging(
        2,
        &RULES.replace(
            "enabled = true\n",
            "enabled = true\nsyslog_tcp_port = 0\nsyslog_udp_port = 0\n",
        ),
        "shardcast=info",
    );
    let tcp = listening(&s, "syslog tcp listening").port();
    let udp = listening(&s, "syslog udp listening").port();
    let rt = runtime();
    rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let mut all = nats.subscribe("logs.all").await.expect("sub");
        let mut error = nats.subscribe("logs.error").await.expect("sub");
        subscribed(&nats).await;
        let cases: [(&[&str], &str, &str, &str, &str); 4] = [
            (
                &["-d", "--rfc5424", "-p", "auth.err", "-t", "sshd"],
                "Failed password for bob",
                "ERROR",
                "auth",
                "sshd",
            ),
            (
                &["-d", "--rfc3164", "-p", "daemon.warning", "-t", "postgres"],
                "disk almost full",
                "WARN",
                "daemon",
                "postgres",
            ),
            (
                &[
                    "-T",
                    "--octet-count",
                    "--rfc5424",
                    "-p",
                    "user.info",
                    "-t",
                    "app1",
                ],
                "over tcp, octet counted",
                "INFO",
                "user",
                "app1",
            ),
            (
                &["-T", "--rfc3164", "-p", "local0.debug", "-t", "app2"],
                "over tcp, one per line",
                "DEBUG",
                "local0",
                "app2",
            ),
        ];
        for (args, text, level, category, app) in cases {
            let port = if args.contains(&"-d") { udp } else { tcp };
            let mut args = args.to_vec();
            args.push(text);
            logger(port, &args);
            let m = next(&mut all).await;
            let r: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
            assert_eq!(r["message"], text, "{r}");
            assert_eq!(r["level"], level, "{r}");
            assert_eq!(r["category"], category, "{r}");
            assert_eq!(r["app"], app, "{r}");
            assert!(r["host"].is_string(), "{r}");
        }
        // The auth error was also routed by its level.
        let e = next(&mut error).await;
        assert!(String::from_utf8_lossy(&e.payload).contains("Failed password"));
    });
}

#[test]
fn irc_watchers_read_each_record_as_one_line_with_or_without_colour() {
    for colours in [true, false] {
        let toml = RULES.replace(
            "enabled = true\n",
            &format!("enabled = true\nirc_colours = {colours}\n"),
        );
        let (s, addr) = common::irc::start(&toml);
        let mut watcher = common::irc::Irc::register(addr, "ops");
        watcher.send("JOIN #logs.error,#logs.>");
        watcher.expect(" 366 ops #logs.> ");
        let rt = runtime();
        rt.block_on(async {
            let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
            subscribed(&nats).await;
            nats.publish("logs.ingest.api", "ERROR [db] timeout after 300ms".into())
                .await
                .expect("publish");
            nats.flush().await.expect("flush");
        });
        let level = if colours { "\x0305ERROR\x03" } else { "ERROR" };
        let line = watcher.expect("PRIVMSG #logs.error :");
        let (head, text) = line.split_once(" :[").expect("a time in brackets");
        assert_eq!(head, ":nats!nats@nats.shardcast PRIVMSG #logs.error");
        assert_eq!(
            &text[8..],
            format!("] {level} api: timeout after 300ms"),
            "{line}"
        );
        // The aggregate channel names the subject first.
        let agg = watcher.expect("PRIVMSG #logs.> :[logs.error] [");
        assert!(
            agg.ends_with(&format!("{level} api: timeout after 300ms")),
            "{agg}"
        );
    }
}

#[test]
fn a_debug_flood_to_a_slow_irc_watcher_sheds_debug_and_never_an_error() {
    // Debug logs go to logs.debug.<category> (shed for a watcher that falls behind),
    // errors to logs.error (high priority, never shed), by the default log treatment.
    // No pacing of publishers first (stall_budget 0): shedding starts at once.
    let toml = "[limits]\nstall_budget = \"0ms\"\n\
                [logs]\nenabled = true\nall_subject = \"\"\n\
                [[logs.route]]\nto = \"logs.debug.{category}\"\nlevel = [\"DEBUG\"]\n\
                [[logs.route]]\nto = \"logs.error\"\nlevel = [\"ERROR\"]\n";
    let (s, addr) = common::irc::start(toml);
    // The watcher reads nothing while the flood comes, through a small receive buffer.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket.connect(&addr.into()).expect("connect");
    let mut watcher = common::irc::Irc::from_stream(socket.into());
    watcher.send("NICK ops");
    watcher.send("USER ops 0 * :ops");
    watcher.expect(" 422 ops ");
    watcher.send("JOIN #logs.error,#logs.debug.>");
    watcher.expect(" 366 ops #logs.debug.> ");
    let rt = runtime();
    rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        subscribed(&nats).await;
        let filler = "x".repeat(200);
        // 18 MB of debug: more than the kernel's socket buffers hold.
        for i in 0..60_000 {
            nats.publish("logs.ingest", format!("DEBUG [cache] {i} {filler}").into())
                .await
                .expect("publish");
            if i % 1200 == 0 {
                nats.publish(
                    "logs.ingest",
                    format!("ERROR [db] error {}", i / 1200).into(),
                )
                .await
                .expect("publish");
            }
        }
        nats.flush().await.expect("flush");
    });
    // Now it reads: every error, in order; debug lines were shed, not the watcher.
    let mut errors = Vec::new();
    let mut debug = 0;
    while errors.len() < 50 {
        let line = watcher
            .next_line(WAIT)
            .expect("a line (the watcher stays connected)");
        if line.contains("PRIVMSG #logs.error") {
            errors.push(line);
        } else if line.contains("PRIVMSG #logs.debug.>") {
            debug += 1;
        }
    }
    for (i, e) in errors.iter().enumerate() {
        assert!(e.ends_with(&format!("db: error {i}")), "{i}: {e}");
    }
    let (_, log) = s.terminate();
    let stopped = log
        .iter()
        .find(|l| l.contains("shardcast stopped"))
        .expect("stop line");
    let dropped: u64 = stopped
        .split_whitespace()
        .find_map(|w| w.strip_prefix("dropped_drop_new="))
        .and_then(|v| v.parse().ok())
        .expect("dropped_drop_new=");
    assert!(
        dropped > 0,
        "the flood shed debug lines ({debug} read): {stopped}"
    );
    assert!(debug < 60_000, "{debug} debug lines read");
    assert!(
        !log.iter().any(|l| l.contains("slow consumer closed")),
        "the watcher was cut off"
    );
}
