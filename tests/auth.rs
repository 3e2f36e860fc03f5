//! Authentication and permissions against a real `shardcast serve --shards 2`: the same
//! raw exchanges sent to Debian's nats-server with the same users give the same bytes
//! back; async-nats connects with a token, a user and password, a bcrypt user (hashed by
//! `shardcast passwd`) and no credentials (`no_auth_user`); permissions allow, deny, limit
//! queue groups, filter wildcard deliveries and allow replies; failed logins are slowed,
//! then refused, and logged without their secrets.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::ConnectOptions;
use futures::StreamExt;

use common::{Raw, Server, TempDir};

const WAIT: Duration = Duration::from_secs(10);

/// The users both servers get: alice (permissions), bob (none), responder (replies only).
const SHARDCAST_USERS: &str = r#"
[auth]
timeout = "500ms"
[[auth.users]]
user = "alice"
password = "wonder"
permissions = { publish = { allow = ["orders.>", "probe.>"], deny = ["orders.secret"] }, subscribe = { allow = ["orders.>", "jobs.* workers", "probe.>", "_INBOX.>"], deny = ["orders.secret"] } }
[[auth.users]]
user = "bob"
password = "builder"
[[auth.users]]
user = "responder"
password = "r"
permissions = { subscribe = ["service.>"], allow_responses = true }
"#;

const NATS_SERVER_USERS: &str = r#"
authorization {
  timeout: 0.5
  users: [
    { user: alice, password: wonder, permissions: {
        publish: { allow: ["orders.>", "probe.>"], deny: ["orders.secret"] },
        subscribe: { allow: ["orders.>", "jobs.* workers", "probe.>", "_INBOX.>"], deny: ["orders.secret"] } } }
    { user: bob, password: builder }
    { user: responder, password: r, permissions: { subscribe: ["service.>"], allow_responses: true } }
  ]
}
"#;

fn login(user: &str, pass: &str) -> String {
    format!(r#"CONNECT {{"verbose":false,"pedantic":false,"user":"{user}","pass":"{pass}"}}"#)
        + "\r\n"
}

/// What a server answers to a raw exchange: every line until PONG or the close.
fn exchange(addr: SocketAddr, input: &[u8]) -> Vec<String> {
    exchange_within(addr, input, WAIT)
}

/// `exchange`, giving up after `within`. The server's INFO is left out.
fn exchange_within(addr: SocketAddr, input: &[u8], within: Duration) -> Vec<String> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.write_all(input).expect("send");
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
        if all.ends_with(b"PONG\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&all);
    let mut lines = text.split_terminator("\r\n");
    let info = lines.next().unwrap_or_default();
    assert!(info.starts_with("INFO "), "INFO first, got {info:?}");
    lines.map(str::to_string).collect()
}

#[test]
fn every_auth_and_permission_error_is_byte_exact_with_nats_server() {
    let dir = TempDir::new("natsconf");
    let conf = dir.0.join("auth.conf");
    std::fs::write(&conf, NATS_SERVER_USERS).expect("write conf");
    let reference = common::NatsServer::start_with(&["-c", conf.to_str().expect("path")]);
    let ours = Server::start_with(2, SHARDCAST_USERS);

    let alice = login("alice", "wonder");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("an operation before CONNECT", b"PING\r\n".to_vec()),
        ("a wrong password", login("alice", "wonderland").into_bytes()),
        ("an unknown user", login("carol", "x").into_bytes()),
        ("no credentials", b"CONNECT {\"verbose\":false}\r\nPING\r\n".to_vec()),
        ("nothing at all (auth timeout)", Vec::new()),
        (
            "a denied publish",
            format!("{alice}PUB orders.secret 1\r\nx\r\nPUB payments.x 1\r\ny\r\nPUB orders.new 1\r\nz\r\nPING\r\n").into_bytes(),
        ),
        (
            "denied subscriptions",
            format!("{alice}SUB admin.x 1\r\nSUB orders.secret 2\r\nSUB jobs.a others 3\r\nSUB jobs.a 4\r\nSUB jobs.a workers 5\r\nSUB orders.> 6\r\nPING\r\n").into_bytes(),
        ),
        (
            "verbose mode around a violation",
            format!("{}PUB payments.x 1\r\nx\r\nSUB orders.a 1\r\nPING\r\n", login("alice", "wonder").replace("\"verbose\":false", "\"verbose\":true")).into_bytes(),
        ),
        (
            "a responder publishing outside its replies",
            format!("{}PUB service.x 1\r\nx\r\nPING\r\n", login("responder", "r")).into_bytes(),
        ),
    ];
    for (what, input) in cases {
        let want = exchange(reference.addr, &input);
        let got = exchange(ours.addr, &input);
        assert_eq!(got, want, "{what}: shardcast differs from nats-server");
        assert!(
            want.iter().any(|l| l.starts_with("-ERR")),
            "{what}: the case must provoke an error, got {want:?}"
        );
    }
}

#[test]
fn info_says_auth_is_required_only_when_it_is() {
    let open = Server::start(2);
    let (_, info) = Raw::connect_info(open.addr);
    assert!(info.get("auth_required").is_none(), "{info}");
    let closed = Server::start_with(2, "[auth]\ntoken = \"t0k\"\n");
    let (_, info) = Raw::connect_info(closed.addr);
    assert_eq!(info["auth_required"], true, "{info}");
}

/// `shardcast passwd --cost 4`, the password on standard input.
fn passwd(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["passwd", "--cost", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shardcast passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("passwd output");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

#[test]
fn async_nats_connects_with_a_token_a_password_a_bcrypt_hash_and_none() {
    let hash = passwd("s3cret pass");
    assert!(hash.starts_with("$2b$04$"), "{hash}");
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let token = Server::start_with(2, "[auth]\ntoken = \"t0k\"\n");
        let url = format!("nats://{}", token.addr);
        let good = ConnectOptions::with_token("t0k".into()).connect(&url).await;
        roundtrip(&good.expect("the right token connects")).await;
        let bad = ConnectOptions::with_token("nope".into()).connect(&url).await;
        assert!(bad.is_err(), "a wrong token is refused");
        assert!(async_nats::connect(&url).await.is_err(), "no token is refused");

        let users = Server::start_with(
            2,
            &format!(
                "[auth]\nno_auth_user = \"guest\"\n[[auth.users]]\nuser = \"plain\"\npassword = \"p\"\n\
                 [[auth.users]]\nuser = \"hashed\"\npassword = \"{hash}\"\n\
                 [[auth.users]]\nuser = \"guest\"\npassword = \"unused\"\n\
                 permissions = {{ publish = [\"public.>\"], subscribe = [\"public.>\"] }}\n"
            ),
        );
        let url = format!("nats://{}", users.addr);
        let plain = ConnectOptions::with_user_and_password("plain".into(), "p".into());
        roundtrip(&plain.connect(&url).await.expect("plain password")).await;
        let hashed = ConnectOptions::with_user_and_password("hashed".into(), "s3cret pass".into());
        roundtrip(&hashed.connect(&url).await.expect("bcrypt password")).await;
        let wrong = ConnectOptions::with_user_and_password("hashed".into(), hash.clone());
        assert!(wrong.connect(&url).await.is_err(), "the hash is not the password");

        // No credentials: the guest, who may only use public.>.
        let guest = async_nats::connect(&url).await.expect("no_auth_user");
        let mut sub = guest.subscribe("public.news").await.expect("sub");
        let other = ConnectOptions::with_user_and_password("plain".into(), "p".into())
            .connect(&url)
            .await
            .expect("plain");
        common::irc::subscribed(&other).await;
        common::nats::subscribe_visible(&other, &guest, "public.probe").await;
        other.publish("public.news", "hi".into()).await.expect("pub");
        let m = tokio::time::timeout(WAIT, sub.next()).await.expect("in time").expect("msg");
        assert_eq!(m.payload, "hi");
    });
}

/// One message through a fresh subscription of `client`'s own.
async fn roundtrip(client: &async_nats::Client) {
    common::nats::subscribe_visible(client, client, &client.new_inbox()).await;
}

#[test]
fn a_wildcard_subscription_never_receives_a_denied_subject() {
    let server = Server::start_with(2, SHARDCAST_USERS);
    let mut alice = common::client_with(
        &server,
        login("alice", "wonder")
            .trim_end()
            .trim_start_matches("CONNECT "),
    );
    alice.send(b"SUB orders.> 1\r\n");
    alice.flush();
    let mut bob = common::client_with(
        &server,
        login("bob", "builder")
            .trim_end()
            .trim_start_matches("CONNECT "),
    );
    // bob may publish anywhere; alice's subscription must not show orders.secret.
    bob.send(b"PUB orders.new 1\r\na\r\nPUB orders.secret 1\r\nb\r\nPUB orders.x.y 1\r\nc\r\n");
    bob.flush();
    let got: Vec<(String, Vec<u8>)> = alice
        .msgs(2)
        .into_iter()
        .map(|(s, _, _, p)| (s, p))
        .collect();
    assert_eq!(
        got,
        vec![
            ("orders.new".into(), b"a".to_vec()),
            ("orders.x.y".into(), b"c".to_vec())
        ]
    );
    assert!(alice.drain().is_empty(), "nothing else arrives");
}

#[test]
fn a_responder_may_answer_each_request_once() {
    let server = Server::start_with(2, SHARDCAST_USERS);
    let as_json = |user: &str, pass: &str| {
        login(user, pass)
            .trim_end()
            .trim_start_matches("CONNECT ")
            .to_string()
    };
    let mut responder = common::client_with(&server, &as_json("responder", "r"));
    responder.send(b"SUB service.time 1\r\n");
    responder.flush();
    let mut bob = common::client_with(&server, &as_json("bob", "builder"));
    bob.send(b"SUB _INBOX.bob.1 9\r\nPUB service.time _INBOX.bob.1 3\r\nnow\r\n");
    bob.flush();
    let (_, _, reply, _) = responder.msg();
    assert_eq!(reply.as_deref(), Some("_INBOX.bob.1"));
    // The first answer passes, a second one to the same inbox does not.
    responder.send(b"PUB _INBOX.bob.1 2\r\nok\r\nPUB _INBOX.bob.1 5\r\nagain\r\nPING\r\n");
    responder.expect(b"-ERR 'Permissions Violation for Publish to \"_INBOX.bob.1\"'\r\nPONG\r\n");
    let (subject, _, _, payload) = bob.msg();
    assert_eq!(
        (subject.as_str(), payload.as_slice()),
        ("_INBOX.bob.1", &b"ok"[..])
    );
    assert!(bob.drain().is_empty(), "the second answer was dropped");
}

#[test]
fn repeated_failures_are_slowed_then_refused_and_logged_without_secrets() {
    let server = Server::start_with_logging(
        2,
        "[auth]\nfailures_before_delay = 1\nfailure_delay = \"300ms\"\nfailures_before_ban = 3\nban = \"1m\"\n\
         [[auth.users]]\nuser = \"alice\"\npassword = \"wonder\"\n",
        "info",
    );
    let wrong = login("alice", "guess-HUNTER2");
    let attempt = || {
        let began = Instant::now();
        let lines = exchange(server.addr, wrong.as_bytes());
        (lines, began.elapsed())
    };
    let (first, fast) = attempt();
    assert_eq!(first, vec!["-ERR 'Authorization Violation'"]);
    let (second, slow) = attempt();
    assert_eq!(second, vec!["-ERR 'Authorization Violation'"]);
    assert!(
        slow >= Duration::from_millis(300),
        "the second failure is answered after failure_delay (took {slow:?}, first {fast:?})"
    );
    let (third, _) = attempt();
    assert_eq!(third, vec!["-ERR 'Authorization Violation'"]);
    // Banned now: even the right password is refused, at once.
    // (Nothing is sent: bytes a server never reads turn its close into a reset, which
    // may overtake the -ERR at the client.)
    let banned = exchange(server.addr, b"");
    assert_eq!(
        banned,
        vec!["-ERR 'Authorization Violation - too many failed attempts from this address, try again later'"]
    );
    server.wait_for_log("the ban", |l| l.contains("address refused for a while"));
    server.wait_for_log("the refused connection", |l| {
        l.contains("connection refused") && l.contains("auth_banned")
    });
    let failed: Vec<String> = server
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(
        failed.iter().all(|l| l.contains("127.0.0.1")
            && l.contains("alice")
            && l.contains("wrong password")),
        "{failed:?}"
    );
    assert!(
        server.log_lines().iter().all(|l| !l.contains("HUNTER2")),
        "a password reached the log"
    );
}

#[test]
fn one_address_cannot_take_every_slot_and_bursts_are_paced() {
    let server = Server::start_with(2, "[limits]\nmax_connections_per_ip = 3\n");
    let mut held: Vec<Raw> = (0..3).map(|_| common::client(&server)).collect();
    let refused = exchange(server.addr, b"");
    assert_eq!(
        refused,
        vec!["-ERR 'maximum connections per IP address exceeded'"]
    );
    drop(held.pop());
    // The slot comes back once the server has seen the close.
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = exchange(server.addr, b"PING\r\n");
        if lines == vec!["PONG"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed slot never came back: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let paced = Server::start_with(2, "[limits]\naccept_rate = 1\naccept_burst = 3\n");
    let began = Instant::now();
    let answers: Vec<Vec<String>> = (0..10)
        .map(|_| exchange_within(paced.addr, b"", Duration::from_millis(300)))
        .collect();
    let elapsed = began.elapsed().as_secs_f64();
    let admitted = answers
        .iter()
        // Admitted: nothing sent, nothing said, until the read gives up.
        .filter(|a| a.is_empty())
        .count();
    let limited = answers
        .iter()
        .filter(|a| *a == &vec!["-ERR 'connection rate exceeded, try again later'".to_string()])
        .count();
    assert_eq!(admitted + limited, 10, "{answers:?}");
    assert!(admitted >= 3, "the burst is admitted: {answers:?}");
    assert!(
        (admitted as f64) <= 3.0 + elapsed + 1.0,
        "{admitted} admitted in {elapsed:.2}s at 1/s after a burst of 3"
    );
}

#[test]
fn a_reload_changes_who_may_log_in() {
    let server = Server::start_with(2, "[auth]\nuser = \"u\"\npassword = \"old\"\n");
    assert_eq!(
        exchange(
            server.addr,
            format!("{}PING\r\n", login("u", "old")).as_bytes()
        ),
        vec!["PONG"]
    );
    let path = server.config_path().expect("config path");
    std::fs::write(&path, "[auth]\nuser = \"u\"\npassword = \"new\"\n").expect("rewrite");
    server.signal(libc::SIGHUP);
    server.wait_for_log("the reload", |l| {
        l.contains("configuration reloaded") && l.contains("auth")
    });
    assert_eq!(
        exchange(
            server.addr,
            format!("{}PING\r\n", login("u", "old")).as_bytes()
        ),
        vec!["-ERR 'Authorization Violation'"]
    );
    assert_eq!(
        exchange(
            server.addr,
            format!("{}PING\r\n", login("u", "new")).as_bytes()
        ),
        vec!["PONG"]
    );
}

#[test]
fn counters_show_failures_violations_and_refusals() {
    let server = Server::start_with(
        2,
        &format!(
            "[monitoring]\nport = 0\n[limits]\nmax_connections_per_ip = 20\n{SHARDCAST_USERS}"
        ),
    );
    exchange(server.addr, login("alice", "bad").as_bytes());
    exchange(
        server.addr,
        format!(
            "{}PUB payments.x 0\r\n\r\nSUB admin.> 1\r\nPING\r\n",
            login("alice", "wonder")
        )
        .as_bytes(),
    );
    let m = common::monitoring_addr(&server);
    let (_, _, metrics) = common::get(m, "/metrics");
    let total = |name: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    assert_eq!(total("shardcast_auth_failures_total"), 1, "{metrics}");
    assert_eq!(
        total("shardcast_permission_violations_total"),
        2,
        "{metrics}"
    );
}
