//! Lame duck mode (SIGUSR2, as nats-server): the server stops accepting, tells its NATS
//! clients (an INFO with `ldm: true` and `connect_urls`; async-nats reports
//! `LameDuckMode`, nats.py calls its `lame_duck_mode_cb`), waits the grace period, closes its clients spread over the rest of
//! `lame_duck_duration`, and exits 0.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Raw, Server};

#[test]
fn lame_duck_tells_clients_then_closes_them_gradually_and_stops() {
    let s = Server::start_with(
        2,
        "connect_urls = [\"127.0.0.1:4333\", \"nats://127.0.0.1:4334\"]\n\
         [shutdown]\nlame_duck_duration = \"3s\"\nlame_duck_grace_period = \"1s\"\n",
    );
    // Every INFO lists the other nodes.
    let (mut raw, info) = Raw::connect_info(s.addr);
    assert_eq!(
        info["connect_urls"],
        serde_json::json!(["127.0.0.1:4333", "127.0.0.1:4334"]),
        "{info}"
    );
    assert!(info.get("ldm").is_none(), "{info}");
    raw.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n");
    raw.expect(b"PONG\r\n");

    // Clients run on their own thread while this one waits and signals.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _in_runtime = rt.enter();
    // (client, event, when)
    let events: Arc<Mutex<Vec<(usize, String, Instant)>>> = Arc::default();
    let clients: Vec<async_nats::Client> = (0..6)
        .map(|i| {
            let events = Arc::clone(&events);
            rt.block_on(async {
                async_nats::ConnectOptions::new()
                    .event_callback(move |e| {
                        let events = Arc::clone(&events);
                        async move {
                            let name = match e {
                                async_nats::Event::LameDuckMode => "ldm",
                                async_nats::Event::Disconnected => "disconnected",
                                _ => "other",
                            };
                            let mut ev = events.lock().unwrap_or_else(|p| p.into_inner());
                            ev.push((i, name.to_string(), Instant::now()));
                        }
                    })
                    .connect(format!("nats://{}", s.addr))
                    .await
                    .expect("connect")
            })
        })
        .collect();
    rt.block_on(async {
        for c in &clients {
            c.flush().await.expect("flush");
        }
    });

    let t0 = Instant::now();
    s.signal(libc::SIGUSR2);
    s.wait_for_log("lame duck mode", |l| l.contains("entering lame duck mode"));
    // The raw client reads the lame duck INFO.
    let line = raw.line();
    let ldm: serde_json::Value = serde_json::from_str(
        line.strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("not an INFO: {line:?}"))
            .trim(),
    )
    .expect("json");
    assert_eq!(ldm["ldm"], true, "{ldm}");
    assert_eq!(ldm["connect_urls"][1], "127.0.0.1:4334", "{ldm}");
    // Every async-nats client reports it, well before any is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let told = {
            let ev = events.lock().unwrap_or_else(|p| p.into_inner());
            ev.iter().filter(|(_, e, _)| e == "ldm").count()
        };
        if told == clients.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{told} of {} told",
            clients.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Nobody new gets in.
    s.wait_for_log("told", |l| l.contains("lame duck mode: clients told"));
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        std::net::TcpStream::connect(s.addr).is_err(),
        "a new connection was accepted in lame duck mode"
    );

    // Then it exits 0 once every client was closed.
    let (status, log) = s.wait_exit();
    assert_eq!(status.code(), Some(0), "{log:?}");
    let ev = events.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut closes: Vec<Duration> = (0..clients.len())
        .filter_map(|i| {
            ev.iter()
                .find(|(c, e, _)| *c == i && e == "disconnected")
                .map(|(_, _, at)| at.duration_since(t0))
        })
        .collect();
    closes.sort();
    assert_eq!(closes.len(), clients.len(), "{ev:?}");
    // Not before the grace period, and not all at once.
    assert!(closes[0] >= Duration::from_millis(900), "{closes:?}");
    let spread = closes[closes.len() - 1] - closes[0];
    assert!(spread >= Duration::from_millis(500), "{closes:?}");
    assert!(
        log.iter()
            .any(|l| l.contains("lame duck mode: clients closed")),
        "{log:?}"
    );
    drop(clients);
}

#[test]
fn a_grace_period_not_shorter_than_the_duration_is_refused() {
    let dir = common::TempDir::new("ldm-conf");
    let conf = dir.0.join("bad.toml");
    std::fs::write(
        &conf,
        "[shutdown]\nlame_duck_duration = \"10s\"\nlame_duck_grace_period = \"10s\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["serve", "-c", conf.to_str().expect("path")])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lame_duck_grace_period") && err.contains("must be shorter"),
        "{err}"
    );
}

#[test]
fn nats_py_hears_lame_duck_mode_and_learns_the_other_nodes() {
    use std::io::BufRead;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-python/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/ldm_client.py");
    let s = Server::start_with(
        2,
        "connect_urls = [\"127.0.0.1:4333\"]\n\
         [shutdown]\nlame_duck_duration = \"2s\"\nlame_duck_grace_period = \"500ms\"\n",
    );
    let mut child = std::process::Command::new(python)
        .args([script, &format!("nats://{}", s.addr)])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("nats.py's virtualenv (scripts/test.sh --deps-only makes it)");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut until = |want: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("nats.py never said {want:?}: {seen:?}"));
        seen.push(line.clone());
        if line.starts_with(want) {
            return line;
        }
    };
    let servers = until("servers");
    assert!(servers.contains("127.0.0.1:4333"), "{servers}");
    until("connected");
    s.signal(libc::SIGUSR2);
    until("ldm");
    until("closed");
    let (status, _) = s.wait_exit();
    assert_eq!(status.code(), Some(0));
    let _ = child.wait();
}

#[test]
fn irc_people_get_a_notice_then_are_closed() {
    let s = Server::start_with(
        2,
        "connect_urls = [\"node-b.example:6667\"]\n[irc]\nport = 0\n\
         [shutdown]\nlame_duck_duration = \"2s\"\nlame_duck_grace_period = \"500ms\"\n",
    );
    let irc = common::cluster::irc_addr(&s);
    let mut alice = common::irc::Irc::register(irc, "alice");
    alice.send("JOIN #ops");
    alice.expect(" 366 alice #ops ");
    s.signal(libc::SIGUSR2);
    let notice = alice.expect("NOTICE * :");
    assert!(
        notice.contains("going down for maintenance") && notice.contains("node-b.example:6667"),
        "{notice}"
    );
    let (status, _) = s.wait_exit();
    assert_eq!(status.code(), Some(0));
}
