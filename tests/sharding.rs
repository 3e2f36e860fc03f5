//! Cross-shard behaviour with real servers of 2–4 shards and many connections (the kernel
//! spreads connections over shards): queue groups deliver exactly once server-wide,
//! per-publisher order holds across shards, a SUB is visible everywhere after its PONG,
//! a stalled subscriber (or a client that never reads its PONGs) is cut off without
//! hurting a healthy one. (Start, signals and restart: `lifecycle.rs`.)

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{ErrorKind, Read, Write};

use socket2::{Domain, Socket, Type};

use common::{client, client_and_cid, Raw, Server, CONNECT_JSON};

#[test]
fn queue_group_members_on_all_shards_get_each_message_exactly_once() {
    let s = Server::start_logging(4, "shardcast=info,shards=debug");
    // Members with the shard that took each; the kernel spreads connections over the
    // shards, so a few more members spread them if the first twelve did not.
    let mut members: Vec<(Raw, usize)> = Vec::new();
    let spread = |members: &[(Raw, usize)]| -> usize {
        members
            .iter()
            .map(|(_, shard)| shard)
            .collect::<HashSet<_>>()
            .len()
    };
    while members.len() < 12 || (spread(&members) < 2 && members.len() < 64) {
        let (mut m, cid) = client_and_cid(&s, CONNECT_JSON);
        m.send(format!("SUB work q {}\r\n", members.len()).as_bytes());
        m.flush();
        members.push((m, shard_of(&s, cid)));
    }
    assert!(spread(&members) >= 2, "64 members all landed on one shard");
    let mut watcher = client(&s);
    watcher.send(b"SUB work 99\r\n");
    watcher.flush();
    let mut p = client(&s);
    for i in 0..400 {
        p.send(format!("PUB work {}\r\n{i:04}\r\n", 4).as_bytes());
    }
    p.flush();
    let mut seen = Vec::new();
    let mut members_used = 0;
    let mut shards_used = HashSet::new();
    for (m, shard) in &mut members {
        let got = m.drain();
        if !got.is_empty() {
            members_used += 1;
            shards_used.insert(*shard);
        }
        seen.extend(
            got.into_iter()
                .map(|(_, _, _, b)| String::from_utf8(b).expect("utf8")),
        );
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        seen.len(),
        400,
        "each message delivered to exactly one member"
    );
    assert_eq!(unique.len(), 400, "no duplicates");
    assert!(members_used > 1, "deliveries spread over members");
    // Members are picked at random over the whole group: with members on two shards
    // or more, 400 messages reach more than one shard (with one member of twelve on
    // another shard, all 400 miss it with odds (11/12)^400 < 1e-15).
    assert!(
        shards_used.len() >= 2,
        "deliveries went to members on {shards_used:?} only"
    );
    assert_eq!(
        watcher.drain().len(),
        400,
        "plain subscribers still get everything"
    );
}

#[test]
fn each_publishers_order_holds_at_every_subscriber_across_shards() {
    let s = Server::start(4);
    let mut subs = common::subscribed(&s, 16, |_| "SUB ord.> 1\r\n".into());
    let mut pubs: Vec<Raw> = (0..3).map(|_| client(&s)).collect();
    const N: usize = 300;
    // Interleave the publishers' writes so their streams really race.
    for i in 0..N {
        for (j, p) in pubs.iter_mut().enumerate() {
            p.send(format!("PUB ord.{j} 6\r\n{i:06}\r\n").as_bytes());
        }
    }
    for p in &mut pubs {
        p.flush();
    }
    for sub in &mut subs {
        let got = sub.drain();
        assert_eq!(got.len(), 3 * N);
        let mut per_pub: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (subject, _, _, body) in got {
            let n = std::str::from_utf8(&body)
                .expect("utf8")
                .parse()
                .expect("number");
            per_pub.entry(subject).or_default().push(n);
        }
        for (subject, seq) in per_pub {
            assert_eq!(seq, (0..N).collect::<Vec<_>>(), "order of {subject}");
        }
    }
}

#[test]
fn a_sub_is_visible_on_every_shard_once_its_pong_arrives() {
    let s = Server::start(4);
    let mut pubs: Vec<Raw> = (0..8).map(|_| client(&s)).collect();
    for round in 0..30 {
        let mut sub = client(&s);
        sub.send(format!("SUB vis.{round} 1\r\n").as_bytes());
        sub.flush();
        // No waiting: publishers on any shard publish right after the PONG.
        for (j, p) in pubs.iter_mut().enumerate() {
            p.send(format!("PUB vis.{round} 1\r\n{j}\r\n").as_bytes());
            p.flush();
        }
        let got = sub.drain();
        assert_eq!(
            got.len(),
            pubs.len(),
            "round {round}: every publisher's message arrived"
        );
        // UNSUB + PONG: nothing arrives afterwards.
        sub.send(b"UNSUB 1\r\n");
        sub.flush();
        for p in &mut pubs {
            p.send(format!("PUB vis.{round} 1\r\nx\r\n").as_bytes());
            p.flush();
        }
        assert!(sub.drain().is_empty(), "round {round}: nothing after UNSUB");
    }
}

#[test]
fn interest_of_a_closed_connection_is_withdrawn_everywhere() {
    let s = Server::start_logging(4, "shardcast=info,shards=debug");
    let mut p = client(&s);
    let mut gone = Vec::new();
    for _ in 0..10 {
        let (mut c, cid) = client_and_cid(&s, CONNECT_JSON);
        c.send(b"SUB leave.q q 1\r\n");
        c.flush();
        drop(c);
        gone.push(cid);
    }
    let mut stay = client(&s);
    stay.send(b"SUB leave.q q 1\r\n");
    stay.flush();
    // A closing connection's shard sends the withdrawal to every peer's ring before it
    // logs "client closed"; a peer applies what waits in its rings before it routes
    // the next input it reads. So once the lines are logged, the publisher's messages
    // can only reach the survivor.
    for cid in gone {
        s.wait_for_client_log("client closed", cid);
    }
    for i in 0..20 {
        p.send(format!("PUB leave.q 2\r\n{i:02}\r\n").as_bytes());
    }
    p.flush();
    assert_eq!(
        stay.drain().len(),
        20,
        "closed members still received queue messages"
    );
}

#[test]
fn a_stalled_subscriber_is_cut_off_and_a_healthy_one_gets_everything() {
    // On 2 cores the server itself can starve the test's reader thread for a few ms, which
    // looks like a stall: give it budget and slack (500 ms of no-progress pauses, 4 MiB).
    // The stalled one still exhausts the budget and cannot absorb 48 MiB: it is cut off.
    let s = Server::start_with(
        2,
        "[limits]\nmax_pending = \"4MiB\"\nmax_payload = \"64KiB\"\nstall_budget = \"500ms\"\n",
    );
    let mut stalled = client(&s);
    stalled.send(b"SUB feed 1\r\n");
    stalled.flush();
    let mut healthy = client(&s);
    healthy.send(b"SUB feed 2\r\n");
    healthy.flush();
    const N: usize = 6000;
    const SIZE: usize = 8192;
    let reader = std::thread::spawn(move || {
        let mut seq = Vec::with_capacity(N);
        for _ in 0..N {
            let (_, _, _, body) = healthy.msg();
            assert_eq!(body.len(), SIZE);
            seq.push(u32::from_le_bytes(body[..4].try_into().expect("4 bytes")));
        }
        seq
    });
    let mut p = client(&s);
    let mut payload = vec![b'z'; SIZE];
    for i in 0..N as u32 {
        payload[..4].copy_from_slice(&i.to_le_bytes());
        p.send(format!("PUB feed {SIZE}\r\n").as_bytes());
        p.send(&payload);
        p.send(b"\r\n");
    }
    p.flush();
    let seq = match reader.join() {
        Ok(seq) => seq,
        Err(_) => panic!(
            "healthy reader failed; server log:\n{}",
            s.terminate().1.join("\n")
        ),
    };
    assert_eq!(
        seq,
        (0..N as u32).collect::<Vec<_>>(),
        "healthy subscriber got every message in order"
    );
    // The stalled one (48 MiB published, 4 MiB allowed) was closed: what the kernel had
    // buffered drains, then EOF.
    stalled
        .stream
        .set_read_timeout(Some(common::WAIT))
        .expect("timeout");
    let mut sink = Vec::new();
    let got = stalled.stream.read_to_end(&mut sink);
    assert!(
        got.is_ok(),
        "stalled connection ends with EOF, not a timeout: {got:?}"
    );
    assert!(
        sink.len() < N * SIZE,
        "the stalled subscriber did not get everything"
    );
    let log = s.terminate().1.join("\n");
    assert!(
        log.contains("slow consumer closed"),
        "slow consumer is logged:\n{log}"
    );
    assert!(log.contains("slow_consumers=1"), "and counted:\n{log}");
}

#[test]
fn more_shards_than_cpus_runs_with_a_warning() {
    let s = Server::start(6);
    let mut c = client(&s);
    c.send(b"SUB w 1\r\nPUB w 1\r\nx\r\nPING\r\n");
    c.expect(b"MSG w 1 1\r\nx\r\nPONG\r\n");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 6 {
        let log = s.terminate().1.join("\n");
        assert!(log.contains("more shards than CPUs"), "{log}");
    }
}

#[test]
fn a_bad_config_file_names_the_key() {
    let dir = common::TempDir::new("badcfg");
    let path = dir.0.join("bad.toml");
    std::fs::write(&path, "[limits]\nmax_pendng = \"1MiB\"\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["serve", "-c", path.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_pendng") && err.contains("bad.toml"),
        "{err}"
    );
}

#[test]
fn a_write_stuck_past_the_write_deadline_closes_the_subscriber() {
    // max_pending is large, so only the deadline can end the stalled subscriber.
    let s = Server::start_with(
        2,
        "[limits]\nwrite_deadline = \"300ms\"\nstall_budget = \"0ms\"\n",
    );
    let (mut stalled, cid) = client_and_cid(&s, CONNECT_JSON);
    stalled.send(b"SUB dl 1\r\n");
    stalled.flush();
    let mut p = client(&s);
    let payload = vec![b'd'; 32 * 1024];
    // 32 MiB: far more than loopback socket buffers hold, far less than max_pending.
    for _ in 0..1024 {
        p.send(format!("PUB dl {}\r\n", payload.len()).as_bytes());
        p.send(&payload);
        p.send(b"\r\n");
    }
    p.flush();
    // Nothing is read meanwhile, so the server's write to `stalled` makes no progress:
    // the deadline must fire and say so in the log, naming this client and the reason.
    let line = s.wait_for_client_log("slow consumer closed", cid);
    assert!(line.contains("slow_consumer_write_deadline"), "{line}");
    // And the connection is really closed: what the kernel buffered drains, then EOF.
    let mut sink = Vec::new();
    stalled
        .stream
        .set_read_timeout(Some(common::WAIT))
        .expect("timeout");
    let got = stalled.stream.read_to_end(&mut sink);
    assert!(
        got.is_ok(),
        "closed by the server, not a read timeout: {got:?}"
    );
    assert!(
        sink.len() < 1024 * payload.len(),
        "the stalled subscriber did not get everything"
    );
    // The publisher is unaffected.
    p.flush();
}

#[test]
fn a_subscriber_that_keeps_reading_outlives_the_write_deadline() {
    // The server's socket to this subscriber is full most of the time, but every read
    // makes room: its writes never go `write_deadline` without progress, so it must stay,
    // however long the flood lasts. (glommio's own write timeout counted from the first
    // time the socket was full and cut such readers off 300 ms later.)
    let s = Server::start_with(
        2,
        "[limits]\nwrite_deadline = \"300ms\"\nstall_budget = \"0ms\"\n",
    );
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    socket.connect(&s.addr.into()).expect("connect");
    let mut reader = Raw::from_stream(socket.into());
    let cid = reader.read_info()["client_id"].as_u64().expect("client_id");
    reader.send(format!("CONNECT {CONNECT_JSON}\r\nSUB steady 1\r\nPING\r\n").as_bytes());
    reader.expect(b"PONG\r\n");
    const MSGS: usize = 384;
    let payload = vec![b's'; 32 * 1024];
    let frame_len = format!("MSG steady 1 {}\r\n", payload.len()).len() + payload.len() + 2;
    let publisher = {
        let mut p = client(&s);
        let payload = payload.clone();
        std::thread::spawn(move || {
            for _ in 0..MSGS {
                p.send(format!("PUB steady {}\r\n", payload.len()).as_bytes());
                p.send(&payload);
                p.send(b"\r\n");
            }
            p.flush();
        })
    };
    // About 6 MB/s: 12 MiB take about two seconds, many times the deadline, and the
    // reader never pauses for more than a few milliseconds.
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 32 * 1024];
    let mut got = 0;
    reader
        .stream
        .set_read_timeout(Some(common::WAIT))
        .expect("timeout");
    while got < MSGS * frame_len {
        match reader.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => panic!("read after {got} bytes: {e}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    publisher.join().expect("publisher");
    assert_eq!(
        got,
        MSGS * frame_len,
        "everything arrived, in {:?}",
        started.elapsed()
    );
    let closed: Vec<String> = s
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("slow consumer closed") && l.contains(&format!(" cid={cid} ")))
        .collect();
    assert!(closed.is_empty(), "{closed:?}");
}

#[test]
fn a_client_that_pipelines_pings_and_never_reads_is_cut_off_at_max_pending() {
    // PONGs are output like any other and count against max_pending; the deadline is
    // far off, so only the pending bound can end this client.
    let s = Server::start_with(
        2,
        "[limits]\nmax_pending = \"64KiB\"\nmax_payload = \"1KiB\"\nwrite_deadline = \"60s\"\n",
    );
    let mut other = client(&s);
    // A small receive buffer, set before connecting so that the window starts small:
    // the PONGs pile up in the server, not in this socket. A small send buffer keeps
    // what the kernel holds for us from counting much in `sent`.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.set_send_buffer_size(64 * 1024).expect("SO_SNDBUF");
    socket.connect(&s.addr.into()).expect("connect");
    let mut pinger = Raw::from_stream(socket.into());
    let cid = pinger.read_info()["client_id"].as_u64().expect("client_id");
    pinger.send(b"CONNECT {\"verbose\":false}\r\n");
    // A write blocked for WAIT would mean the server stopped reading but kept the client.
    pinger
        .stream
        .set_write_timeout(Some(common::WAIT))
        .expect("write timeout");
    const SENT_MAX: usize = 64 << 20;
    let batch = b"PING\r\n".repeat(64 * 1024 / 6);
    let mut sent = 0;
    let mut failed = None;
    while sent < SENT_MAX {
        match pinger.stream.write_all(&batch) {
            Ok(()) => sent += batch.len(),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // The server closed it: the writes end with a reset (or a broken pipe), not a
    // timeout, and long before the bound.
    let failed = failed.unwrap_or_else(|| panic!("{sent} bytes of PINGs and still open"));
    assert!(
        matches!(
            failed.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "the write failed with {failed:?} after {sent} bytes"
    );
    assert!(sent <= SENT_MAX / 4, "closed only after {sent} bytes");
    // As a slow consumer, for max_pending.
    let line = s.wait_for_client_log("slow consumer closed", cid);
    assert!(
        line.contains("reason=\"slow_consumer_max_pending\""),
        "{line}"
    );
    // Another client on the same server is unaffected.
    other.flush();
}

#[test]
fn too_little_locked_memory_is_reported_with_the_fix_not_a_panic() {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shardcast"));
    cmd.args(["serve", "-a", "127.0.0.1", "-p", "0", "--shards", "2"]);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Root is exempt from the limit: become an ordinary user (nobody).
            if libc::geteuid() == 0 && (libc::setgid(65534) != 0 || libc::setuid(65534) != 0) {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run shardcast as an unprivileged user");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a clean error exit, not a panic (70/101)"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = shards::preflight::PreflightError::MemLockTooLow { limit_kib: 64 };
    assert!(err.contains(&format!("shardcast: {expected}\n")), "{err}");
    assert!(
        err.contains("locked-memory limit too low") && err.contains("ulimit -l"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The shard that took client `cid`, from the server's debug log ("client connected").
fn shard_of(server: &Server, cid: u64) -> usize {
    server
        .wait_for_client_log("client connected", cid)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("shard="))
        .and_then(|v| v.parse().ok())
        .expect("shard= in the log line")
}

#[test]
fn a_subscription_another_shard_has_applied_is_seen_by_the_next_publish_here() {
    // A's SUB is processed on its shard, which then sends the interest to the other shard
    // at the end of the turn; A's own echo proves that turn is over. B, on the other
    // shard, publishes right after: its shard must apply the waiting interest before it
    // routes B's publish, even without a PING from A (async-nats' flush sends none).
    let s = Server::start_logging(2, "shardcast=info,shards=debug");
    let (a, b) = two_clients_on_different_shards(&s);
    sub_here_publish_there(a, b, 300);
}

#[test]
fn a_subscription_waiting_behind_a_full_ring_is_seen_by_the_next_publish_there() {
    // The same with rings of two slots kept full by a flood from A's shard to a
    // subscriber on B's: A's interest batch often waits in the overflow queue behind the
    // ring, and B's shard must wait for it, not route B's publish past it.
    let s = Server::start_with_logging(2, "[ring]\nslots = 2\n", "shardcast=info,shards=debug");
    let (a, shard_a) = client_where(&s, |_| true);
    let (b, _) = client_where(&s, |shard| shard != shard_a);
    let (mut flooder, _) = client_where(&s, |shard| shard == shard_a);
    let (mut sink, _) = client_where(&s, |shard| shard != shard_a);
    sink.send(b"SUB flood 1\r\nPING\r\n");
    sink.expect(b"PONG\r\n");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let chunk = "PUB flood 16\r\n0123456789abcdef\r\n".repeat(256);
            // Bounded: at most 2000 chunks (512,000 messages) or until told to stop.
            for _ in 0..2000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                flooder.send(chunk.as_bytes());
            }
        })
    };
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        sink.stream
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        while matches!(sink.stream.read(&mut buf), Ok(n) if n > 0) {}
    });
    sub_here_publish_there(a, b, 300);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().expect("flood thread");
    drain.join().expect("drain thread");
    let log = s.log_lines().join("\n");
    assert!(!log.contains("panicked"), "{log}");
}

/// Two registered clients, the first on one shard and the second on the other.
fn two_clients_on_different_shards(s: &Server) -> (Raw, Raw) {
    let (a, shard_a) = client_where(s, |_| true);
    let (b, _) = client_where(s, |shard| shard != shard_a);
    (a, b)
}

/// A registered client on a shard `want` accepts (of up to 32 connections), and its shard.
fn client_where(s: &Server, want: impl Fn(usize) -> bool) -> (Raw, usize) {
    let (mut c, shard) = (0..32)
        .map(|_| {
            let (c, info) = Raw::connect_info(s.addr);
            (
                c,
                shard_of(s, info["client_id"].as_u64().expect("client_id")),
            )
        })
        .find(|(_, shard)| want(*shard))
        .expect("one of 32 connections on the wanted shard");
    c.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    c.expect(b"PONG\r\n");
    (c, shard)
}

/// `rounds` times: A subscribes to a new subject and sees its own echo, then B publishes
/// to that subject at once; A must get every one of B's publishes.
fn sub_here_publish_there(mut a: Raw, mut b: Raw, rounds: usize) {
    a.send(b"SUB echo.> 1\r\nPING\r\n");
    a.expect(b"PONG\r\n");
    let mut got = Vec::new();
    for i in 0..rounds {
        a.send(format!("SUB foo.{i} {}\r\nPUB echo.{i} 0\r\n\r\n", i + 2).as_bytes());
        let echo = format!("echo.{i}");
        loop {
            let m = a.msg();
            if m.0 == echo {
                break;
            }
            got.push(m);
        }
        b.send(format!("PUB foo.{i} 1\r\nx\r\n").as_bytes());
    }
    b.flush();
    got.extend(a.drain());
    let missed: Vec<usize> = (0..rounds)
        .filter(|i| {
            !got.iter()
                .any(|(subject, ..)| *subject == format!("foo.{i}"))
        })
        .collect();
    assert!(
        missed.is_empty(),
        "{} of {rounds} publishes missed: {missed:?}",
        missed.len()
    );
}

#[test]
fn shards_that_spin_before_parking_still_route_across_shards() {
    let s = Server::start_with(2, "spin_before_park = \"200us\"\n");
    let mut subs = common::subscribed(&s, 8, |i| format!("SUB spin {i}\r\n"));
    let mut p = client(&s);
    p.send(b"PUB spin 2\r\nhi\r\nPING\r\n");
    p.expect(b"PONG\r\n");
    for (i, c) in subs.iter_mut().enumerate() {
        c.expect(format!("MSG spin {i} 2\r\nhi\r\n").as_bytes());
    }
}
