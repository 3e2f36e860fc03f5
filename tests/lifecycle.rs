//! The server process as an operator handles it: SIGTERM flushes and exits 0 (SIGUSR2,
//! lame duck mode, is in `lame_duck.rs`), a restart on the same port works at
//! once after SIGTERM or SIGKILL although the old connections still hold the port, a
//! port another live process listens on is refused with a clear message, and SIGTERM
//! amid a crowd of departing IRC members still stops at once.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;

use common::{client, free_fixed_port, subscribed, Server, WAIT};

#[test]
fn sigterm_flushes_closes_clients_and_exits_zero() {
    let s = Server::start(2);
    let mut sub = client(&s);
    sub.send(b"SUB bye 1\r\n");
    sub.flush();
    let mut p = client(&s);
    p.send(b"PUB bye 2\r\nok\r\n");
    p.flush();
    let (status, log) = s.terminate();
    assert!(status.success(), "exit status {status:?}");
    sub.expect(b"MSG bye 1 2\r\nok\r\n");
    sub.expect_closed();
    let log = log.join("\n");
    assert!(log.contains("shardcast stopped"), "{log}");
}

#[test]
fn a_restart_after_sigterm_serves_on_the_same_port_at_once() {
    restart_on_the_same_port(Server::terminate, |status| status.success());
}

#[test]
fn a_restart_after_sigkill_serves_on_the_same_port_at_once() {
    restart_on_the_same_port(Server::kill, |status| {
        status.signal() == Some(libc::SIGKILL)
    });
}

/// Starts on a fixed port with clients connected, stops the server with `stop`, lets the
/// clients close, and starts again on the same port straight away.
fn restart_on_the_same_port(
    stop: fn(Server) -> (ExitStatus, Vec<String>),
    stopped_as_expected: fn(ExitStatus) -> bool,
) {
    let port = free_fixed_port();
    let s = Server::start_on_port(2, port);
    let mut clients = subscribed(&s, 8, |i| format!("SUB r.{i} {i}\r\n"));
    let mut p = client(&s);
    p.send(b"PUB r.0 2\r\nhi\r\n");
    p.flush();
    clients[0].expect(b"MSG r.0 0 2\r\nhi\r\n");
    clients.push(p);
    let (status, log) = stop(s);
    assert!(
        stopped_as_expected(status),
        "exit status {status:?}; log:\n{}",
        log.join("\n")
    );
    // The server's ends close first; once the clients close theirs, those linger in
    // TIME_WAIT on the port, as after any restart of a server with clients.
    for c in &mut clients {
        c.expect_closed();
    }
    drop(clients);
    assert!(
        lingering_on(port) > 0,
        "the old connections should still hold port {port}"
    );
    let s = Server::start_on_port(2, port);
    assert_eq!(s.addr.port(), port);
    let mut subs = subscribed(&s, 2, |i| format!("SUB again {i}\r\n"));
    let mut p = client(&s);
    p.send(b"PUB again 2\r\nok\r\nPING\r\n");
    p.expect(b"PONG\r\n");
    for (i, c) in subs.iter_mut().enumerate() {
        c.expect(format!("MSG again {i} 2\r\nok\r\n").as_bytes());
    }
}

#[test]
fn a_port_a_plain_listener_holds_is_refused_with_a_clear_message() {
    let port = free_fixed_port();
    let holder = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let err = refused(port);
    assert!(err.contains("already in use"), "{err}");
    drop(holder);
}

#[test]
fn a_port_a_live_shardcast_holds_is_refused_with_a_clear_message() {
    let port = free_fixed_port();
    let s = Server::start_on_port(2, port);
    let err = refused(port);
    assert!(err.contains("already in use"), "{err}");
    // The live one is unaffected.
    client(&s).flush();
}

/// Runs `shardcast serve` on `port` (2 shards), which must exit with status 1 without
/// ever listening; returns its stderr.
fn refused(port: u16) -> String {
    let port = port.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["serve", "-a", "127.0.0.1", "-p", &port, "--shards", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shardcast");
    // Its stderr ends when it exits: wait for that (bounded), not for the exit itself,
    // so that a server that starts after all fails here instead of hanging the test.
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let Ok(err) = rx.recv_timeout(WAIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("shardcast on the taken port {port} did not exit within {WAIT:?}");
    };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{err}");
    assert!(!err.contains("shardcast listening"), "{err}");
    err
}

/// Sockets other than listeners whose local port is `port` (connections closing:
/// FIN_WAIT, TIME_WAIT, …), from /proc/net/tcp.
fn lingering_on(port: u16) -> usize {
    const LISTEN: &str = "0A";
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && fields.get(3) != Some(&LISTEN)
        })
        .count()
}

#[test]
fn sigterm_while_many_irc_members_leave_exits_at_once_and_cleanly() {
    // 400 people in one channel on small rings: each departure is a QUIT for everyone
    // left, so rings between shards are full when SIGTERM comes. Turns waiting for room
    // must not hold the shutdown until its grace runs out (nor panic when it does).
    let (s, addr) = common::irc::start("[ring]\nslots = 2\noverflow_batches_max = 1\n");
    let people: Vec<common::irc::Irc> = (0..400)
        .map(|i| {
            let mut c = common::irc::Irc::register(addr, &format!("p{i}"));
            c.send("JOIN #crowd");
            c
        })
        .collect();
    // Everyone is in once the last one sees itself join.
    let mut people = people;
    if let Some(last) = people.last_mut() {
        last.expect(" 366 p399 #crowd ");
    }
    drop(people);
    let (status, log) = s.terminate();
    let log = log.join("\n");
    assert!(status.success(), "exit status {status:?}\n{log}");
    assert!(!log.contains("still open"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}
