//! TLS on the NATS port against a real `shardcast serve --shards 2`, with certificates
//! made by the test (rcgen): async-nats over TLS (upgraded after INFO, and `tls_first`
//! with `handshake_first`), client certificates required (`verify`) and naming the user
//! (`verify_and_map`), a plain-text client refused (after the same INFO as nats-server's),
//! and large messages through the TLS writer.

mod common;

use std::time::Duration;

use async_nats::ConnectOptions;
use futures::StreamExt;

use common::certs::Pki;
use common::{Raw, Server};

const WAIT: Duration = Duration::from_secs(10);

fn tls_options(pki: &Pki) -> ConnectOptions {
    ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(pki.ca_file.clone())
}

async fn connect(server: &Server, options: ConnectOptions) -> Result<async_nats::Client, String> {
    match tokio::time::timeout(
        WAIT,
        options.connect(format!("nats://127.0.0.1:{}", server.addr.port())),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Publishes `n` messages of `size` bytes from `publisher` and checks `subscriber` gets
/// them all, in order.
async fn roundtrip(
    publisher: &async_nats::Client,
    subscriber: &async_nats::Client,
    n: usize,
    size: usize,
) {
    let subject = subscriber.new_inbox();
    let mut sub = common::nats::subscribe_visible(publisher, subscriber, &subject).await;
    for i in 0..n {
        let mut body = vec![b'x'; size];
        body[..8].copy_from_slice(&(i as u64).to_be_bytes());
        publisher
            .publish(subject.clone(), body.into())
            .await
            .expect("publish");
    }
    for i in 0..n {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time")
            .expect("message");
        assert_eq!(m.payload.len(), size);
        assert_eq!(
            u64::from_be_bytes(m.payload[..8].try_into().expect("8 bytes")),
            i as u64
        );
    }
}

#[test]
fn async_nats_over_tls_with_small_and_large_messages() {
    let pki = Pki::new();
    let server = Server::start_with(2, &pki.toml(""));
    let (_, info) = Raw::connect_info(server.addr);
    assert_eq!(info["tls_required"], true, "{info}");
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let a = connect(&server, tls_options(&pki))
            .await
            .expect("TLS connect");
        let b = connect(&server, tls_options(&pki))
            .await
            .expect("TLS connect");
        roundtrip(&a, &b, 2000, 128).await;
        roundtrip(&a, &b, 20, 1_000_000).await;
        // A client that does not trust the CA cannot connect.
        let untrusting = ConnectOptions::new().require_tls(true);
        assert!(connect(&server, untrusting).await.is_err());
    });
}

#[test]
fn handshake_first_serves_tls_first_clients() {
    let pki = Pki::new();
    let server = Server::start_with(2, &pki.toml("handshake_first = true\n"));
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let a = connect(&server, tls_options(&pki).tls_first())
            .await
            .expect("tls_first connect");
        let b = connect(&server, tls_options(&pki).tls_first())
            .await
            .expect("tls_first connect");
        roundtrip(&a, &b, 100, 128).await;
    });
}

#[test]
fn a_plaintext_client_is_told_tls_is_required_and_closed() {
    let pki = Pki::new();
    let server = Server::start_with(2, &pki.toml(""));
    let reference = common::NatsServer::start_with(&[
        "--tls",
        "--tlscert",
        pki.cert_file.to_str().expect("path"),
        "--tlskey",
        pki.key_file.to_str().expect("path"),
    ]);
    // nats-server 2.9.10 closes without a word ("first record does not look like a TLS
    // handshake" in its log); shardcast says why first, in the words of nats-server's
    // ErrSecureConnRequired.
    for (addr, says) in [
        (reference.addr, &b""[..]),
        (
            server.addr,
            &b"-ERR 'Secure Connection - TLS Required'\r\n"[..],
        ),
    ] {
        let (mut c, info) = Raw::connect_info(addr);
        assert_eq!(info["tls_required"], true, "{info}");
        c.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        c.expect(says);
        c.expect_closed();
    }
    server.wait_for_log("the refusal", |l| {
        l.contains("TLS connection refused") && l.contains("did not start TLS")
    });
}

#[test]
fn client_certificates_are_required_and_can_name_the_user() {
    let pki = Pki::new();
    let (alice_cert, alice_key) = pki.client("alice", "alice@example.com");
    let (mallory_cert, mallory_key) = pki.client("mallory", "mallory@example.com");
    let users = "[[auth.users]]\nuser = \"alice@example.com\"\npassword = \"unused\"\n\
                 permissions = { publish = [\"ok.>\", \"_INBOX.>\"], subscribe = [\"_INBOX.>\", \"ok.>\"] }\n\
                 [[auth.users]]\nuser = \"bob\"\npassword = \"builder\"\n";
    let server = Server::start_with(2, &(pki.toml("verify_and_map = true\n") + users));
    let (_, info) = Raw::connect_info(server.addr);
    assert_eq!(info["tls_verify"], true, "{info}");
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        // No certificate: refused in the handshake.
        assert!(connect(&server, tls_options(&pki)).await.is_err());
        // A certificate whose names are no user's: refused at CONNECT.
        let mallory = tls_options(&pki).add_client_certificate(mallory_cert, mallory_key);
        assert!(connect(&server, mallory).await.is_err());
        // alice's certificate logs in as alice@example.com, whose permissions apply.
        let alice = tls_options(&pki).add_client_certificate(alice_cert.clone(), alice_key.clone());
        let alice = connect(&server, alice).await.expect("alice by certificate");
        roundtrip(&alice, &alice, 10, 64).await;
        let bob = tls_options(&pki)
            .add_client_certificate(alice_cert, alice_key)
            .user_and_password("bob".into(), "builder".into());
        let bob = connect(&server, bob)
            .await
            .expect("bob by password, over verified TLS");
        let mut denied = bob.subscribe("no.x").await.expect("subscribe");
        let mut allowed = bob.subscribe("ok.x").await.expect("subscribe");
        roundtrip(&alice, &bob, 1, 8).await;
        alice
            .publish("no.x", "secret".into())
            .await
            .expect("publish");
        alice.publish("ok.x", "fine".into()).await.expect("publish");
        let m = tokio::time::timeout(WAIT, allowed.next())
            .await
            .expect("in time")
            .expect("msg");
        assert_eq!(m.payload, "fine");
        let none = tokio::time::timeout(Duration::from_millis(300), denied.next()).await;
        assert!(none.is_err(), "alice may not publish to no.x: {none:?}");
    });
}

#[test]
fn a_missing_certificate_file_is_named_at_start() {
    let dir = common::TempDir::new("tlsbad");
    let cfg = dir.0.join("bad.toml");
    std::fs::write(
        &cfg,
        "[tls]\ncert_file = \"/nonexistent/server.pem\"\nkey_file = \"/nonexistent/key.pem\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["serve", "-c", cfg.to_str().expect("path"), "-p", "0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls.cert_file /nonexistent/server.pem"),
        "{err}"
    );
}

#[test]
fn the_bench_measures_over_tls() {
    let pki = Pki::new();
    let server = Server::start_with(2, &pki.toml(""));
    let url = format!("nats://127.0.0.1:{}", server.addr.port());
    let ca = pki.ca_file.to_str().expect("path").to_string();
    let r = common::bench::report(&[
        "pubsub", "--pubs", "1", "--subs", "3", "--msgs", "2000", "--size", "256", "--url", &url,
        "--tls", "--tls-ca", &ca, "--json",
    ]);
    assert_eq!(common::bench::u(&r, "received"), 6000, "{r}");
    assert_eq!(common::bench::u(&r, "lost"), 0, "{r}");
    // Without --tls the server refuses the generator, and the bench says so.
    let out = common::bench::bench(&["pubsub", "--msgs", "10", "--url", &url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Secure Connection - TLS Required"), "{err}");
}

#[test]
fn connection_limits_apply_before_the_handshake() {
    let pki = Pki::new();
    let server = Server::start_with(
        2,
        &format!("[limits]\nmax_connections_per_ip = 1\n{}", pki.toml("")),
    );
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let held = connect(&server, tls_options(&pki))
            .await
            .expect("the first connection");
        // The second from the same address is refused in plain text, before any TLS work.
        let (mut c, info) = Raw::connect_info(server.addr);
        assert_eq!(info["tls_required"], true, "{info}");
        c.expect(b"-ERR 'maximum connections per IP address exceeded'\r\n");
        c.expect_closed();
        drop(held);
    });
    server.wait_for_log("the refusal", |l| {
        l.contains("connection refused") && l.contains("max_connections_per_ip")
    });
}

#[test]
fn connz_shows_the_user_and_the_tls_session() {
    let pki = Pki::new();
    let server = Server::start_with(
        2,
        &format!(
            "[monitoring]\nport = 0\n[[auth.users]]\nuser = \"alice\"\npassword = \"wonder\"\n{}",
            pki.toml("")
        ),
    );
    let http = common::monitoring_addr(&server);
    let rt = common::irc::runtime();
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let options = tls_options(&pki).user_and_password("alice".into(), "wonder".into());
        let client = connect(&server, options).await.expect("connect");
        roundtrip(&client, &client, 1, 8).await;
        let connz = common::get_json(http, "/connz?auth=1");
        let c = &connz["connections"][0];
        assert_eq!(c["authorized_user"], "alice", "{connz}");
        assert_eq!(c["tls_version"], "1.3", "{connz}");
        assert!(
            c["tls_cipher_suite"]
                .as_str()
                .is_some_and(|s| s.starts_with("TLS13_")),
            "{connz}"
        );
        let without = common::get_json(http, "/connz");
        assert!(
            without["connections"][0].get("authorized_user").is_none(),
            "{without}"
        );
    });
}
