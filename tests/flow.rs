//! Flow control over real TCP against a real server: publisher rate limits (and how the
//! load scales them), slow-consumer policies with a subscriber that never reads, per-
//! subject rules, priorities, the memory budget under a flood (server RSS from /proc), and
//! accounting that adds up (matched = delivered + dropped) after a mixed run.
//!
//! Rates are checked against the limits configured (a property of the limiter, measured
//! over seconds), never against the machine's speed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{get_json, monitoring_addr, Server, WAIT};
use serde_json::Value;
use socket2::{Domain, Socket, Type};

/// A connection with the given socket buffer sizes (0: the kernel's default).
fn connect(addr: SocketAddr, rcvbuf: usize, sndbuf: usize) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    if rcvbuf > 0 {
        socket.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
    }
    if sndbuf > 0 {
        socket.set_send_buffer_size(sndbuf).expect("SO_SNDBUF");
    }
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).expect("nodelay");
    stream
}

fn connect_line(name: &str) -> Vec<u8> {
    format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"{name}\"}}\r\n").into_bytes()
}

/// A subscriber that parses what it reads: every MSG with its subject, payload and time.
struct Sub {
    stream: TcpStream,
    buf: Vec<u8>,
    msgs: Vec<(Instant, String, Vec<u8>)>,
    pongs: usize,
}

impl Sub {
    /// Connects as `name`, subscribes to `subjects`, and waits until that is in effect.
    /// `rcvbuf` > 0 makes a small socket buffer (a subscriber that will not read).
    fn connect(addr: SocketAddr, name: &str, subjects: &[&str], rcvbuf: usize) -> Sub {
        let mut stream = connect(addr, rcvbuf, 0);
        let mut out = connect_line(name);
        for (i, s) in subjects.iter().enumerate() {
            out.extend_from_slice(format!("SUB {s} {}\r\n", i + 1).as_bytes());
        }
        out.extend_from_slice(b"PING\r\n");
        stream.write_all(&out).expect("subscribe");
        let mut sub = Sub {
            stream,
            buf: Vec::new(),
            msgs: Vec::new(),
            pongs: 0,
        };
        assert!(
            sub.read_until(Instant::now() + WAIT, |s| s.pongs >= 1),
            "no PONG"
        );
        sub
    }

    /// Reads and parses until `done` says so or `deadline` passes; returns whether done.
    fn read_until(&mut self, deadline: Instant, done: impl Fn(&Sub) -> bool) -> bool {
        let mut chunk = vec![0u8; 256 * 1024];
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(100))))
                .expect("timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => return done(self),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.parse(Instant::now());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        true
    }

    /// Reads everything the server has for it now: PING, then up to its PONG.
    fn drain(&mut self, timeout: Duration) {
        self.stream.write_all(b"PING\r\n").expect("ping");
        let want = self.pongs + 1;
        assert!(
            self.read_until(Instant::now() + timeout, |s| s.pongs >= want),
            "no PONG within {timeout:?} ({} messages read)",
            self.msgs.len()
        );
    }

    fn parse(&mut self, now: Instant) {
        let mut at = 0;
        loop {
            let rest = &self.buf[at..];
            let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line = std::str::from_utf8(&rest[..eol]).expect("utf8 control line");
            if let Some(args) = line.strip_prefix("MSG ") {
                let parts: Vec<&str> = args.split(' ').collect();
                let len: usize = parts.last().and_then(|l| l.parse().ok()).expect("size");
                if rest.len() < eol + 2 + len + 2 {
                    break;
                }
                let payload = rest[eol + 2..eol + 2 + len].to_vec();
                self.msgs.push((now, parts[0].to_string(), payload));
                at += eol + 2 + len + 2;
            } else {
                if line == "PONG" {
                    self.pongs += 1;
                } else if line == "PING" {
                    self.stream.write_all(b"PONG\r\n").expect("pong");
                }
                at += eol + 2;
            }
        }
        self.buf.drain(..at);
    }
}

/// A publisher on its own connection (named `name`) that writes `frames` (whole PUBs)
/// over and over until `until`, or `total` frames if given, as fast as the server reads
/// them. With `settle`, it then waits (PING/PONG) until the server has applied all of
/// them. Returns the number of frames written.
fn flood(
    addr: SocketAddr,
    name: &str,
    frames: Vec<Vec<u8>>,
    until: Instant,
    total: Option<u64>,
    settle: bool,
) -> JoinHandle<u64> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let mut s = connect(addr, 0, 16 * 1024);
        s.write_all(&connect_line(&name)).expect("connect");
        // Whole frames back to back, about 64 KiB; `ends` marks where each frame ends.
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        while buf.len() < 64 * 1024 {
            for f in &frames {
                buf.extend_from_slice(f);
                ends.push(buf.len());
            }
        }
        let per_buf = ends.len() as u64;
        s.set_write_timeout(Some(Duration::from_millis(50)))
            .expect("write timeout");
        let (mut pos, mut rounds) = (0usize, 0u64);
        let frames_done = |pos: usize, rounds: u64| {
            rounds * per_buf + ends.iter().filter(|&&e| e <= pos).count() as u64
        };
        loop {
            let done = frames_done(pos, rounds);
            if Instant::now() >= until || total.is_some_and(|t| done >= t) {
                break;
            }
            let end = match total {
                // Never write past the total.
                Some(t) if t - rounds * per_buf < per_buf => {
                    ends[(t - rounds * per_buf) as usize - 1]
                }
                _ => buf.len(),
            };
            match s.write(&buf[pos..end]) {
                Ok(n) => {
                    pos += n;
                    if pos == buf.len() {
                        pos = 0;
                        rounds += 1;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // The server went away (the test is over): stop.
                Err(_) => return frames_done(pos, rounds),
            }
        }
        // Finish the frame under way.
        s.set_write_timeout(None).expect("blocking");
        if let Some(&end) = ends.iter().find(|&&e| e >= pos) {
            if end > pos && pos > 0 {
                s.write_all(&buf[pos..end]).expect("finish the last frame");
                pos = end;
            }
        }
        let written = frames_done(pos, rounds);
        if settle {
            s.write_all(b"PING\r\n").expect("ping");
            s.set_read_timeout(Some(Duration::from_secs(120)))
                .expect("timeout");
            let mut seen = Vec::new();
            let mut chunk = [0u8; 4096];
            while !seen.windows(6).any(|w| w == b"PONG\r\n") {
                let n = s.read(&mut chunk).expect("read the PONG");
                assert!(n > 0, "{name}: closed before its PONG");
                seen.extend_from_slice(&chunk[..n]);
            }
        }
        written
    })
}

fn pub_frame(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut f = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
    f.extend_from_slice(payload);
    f.extend_from_slice(b"\r\n");
    f
}

fn start(shards: usize, toml: &str) -> (Server, SocketAddr) {
    let server = Server::start_with(shards, &format!("[monitoring]\nport = 0\n{toml}"));
    let mon = monitoring_addr(&server);
    (server, mon)
}

/// The `/connz` row of the connection named `name`, if it is open.
fn conn_named(mon: SocketAddr, name: &str) -> Option<Value> {
    let connz = get_json(mon, "/connz?limit=1024");
    connz["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

fn dropped_total(row: &Value) -> u64 {
    ["drop_new", "slow_consumer", "closed"]
        .iter()
        .map(|k| n(&row["dropped_msgs"], k))
        .sum()
}

/// The server-wide sums: matched = delivered + every drop.
fn assert_server_sums(mon: SocketAddr) -> Value {
    let varz = get_json(mon, "/varz");
    let flow = &varz["flow"];
    assert_eq!(
        n(flow, "matched_msgs"),
        n(&varz, "out_msgs") + dropped_total(flow),
        "server-wide: matched = out + dropped: {flow}"
    );
    varz
}

/// The `key=value` fields of the log line announcing that `cid` was closed as slow.
fn slow_close_line(server: &Server, cid: u64) -> String {
    let tag = format!("cid={cid} ");
    server.wait_for_log("slow consumer closed", |l| {
        l.contains("slow consumer closed") && l.contains(&tag)
    })
}

fn field(line: &str, key: &str) -> u64 {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

fn payload(i: usize, size: usize) -> Vec<u8> {
    let mut p = format!("{i:08}").into_bytes();
    p.resize(size, b'.');
    p
}

/// Messages 0..count of `size` bytes to `subject`, each numbered.
fn numbered(subject: &str, count: usize, size: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| pub_frame(subject, &payload(i, size)))
        .collect()
}

fn numbers(msgs: &[(Instant, String, Vec<u8>)]) -> Vec<usize> {
    msgs.iter()
        .map(|(_, _, p)| {
            std::str::from_utf8(&p[..8])
                .ok()
                .and_then(|s| s.parse().ok())
                .expect("numbered payload")
        })
        .collect()
}

/// Publishes `bytes` on a new connection named `name` and waits until all of it is
/// applied server-wide (PONG); from a thread, since pushback may hold it.
fn publish(addr: SocketAddr, name: &str, bytes: Vec<u8>) -> JoinHandle<()> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let mut s = connect(addr, 0, 0);
        s.write_all(&connect_line(&name)).expect("connect");
        s.write_all(&bytes).expect("publish");
        s.write_all(b"PING\r\n").expect("ping");
        s.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !seen.windows(6).any(|w| w == b"PONG\r\n") {
            let n = s.read(&mut chunk).expect("read the PONG");
            assert!(n > 0, "{name}: closed before its PONG");
            seen.extend_from_slice(&chunk[..n]);
        }
    })
}

fn cid_of(mon: SocketAddr, name: &str) -> u64 {
    n(&conn_named(mon, name).expect(name), "cid")
}

// ---------------------------------------------------------------------------------------
// Rate limits

#[test]
fn a_publisher_limited_to_1000_msgs_per_second_is_read_at_that_rate() {
    let (server, mon) = start(1, "[rate_limit]\nmsgs_per_sec = 1000\n");
    let mut sub = Sub::connect(server.addr, "sub", &["rl"], 0);
    let t0 = Instant::now();
    let window = Duration::from_secs(3);
    let publisher = flood(
        server.addr,
        "limited",
        vec![pub_frame("rl", b"x")],
        t0 + window,
        None,
        false,
    );
    sub.read_until(t0 + window, |_| false);
    let in_window = sub
        .msgs
        .iter()
        .filter(|(t, _, _)| *t <= t0 + window)
        .count();
    // 3000 over three seconds plus the burst (100, a tenth of a second's worth).
    assert!(
        (2550..=3450).contains(&in_window),
        "received {in_window} in 3 s at 1000 msgs/s"
    );
    let row = conn_named(mon, "limited").expect("the publisher is connected");
    assert!(n(&row, "throttles") > 0, "{row}");
    assert!(
        n(&row, "throttled_ms") >= 1000,
        "a flooding publisher spends most of the window unread: {row}"
    );
    let varz = get_json(mon, "/varz");
    assert!(n(&varz["flow"], "throttles") > 0, "{varz}");
    let written = publisher.join().expect("publisher");
    assert!(
        written > in_window as u64,
        "it tried to send more ({written}) than it was let"
    );
}

#[test]
fn under_load_the_limit_scales_down_as_f_of_l_says() {
    // L is the CPU busy fraction alone here, unsmoothed; f(L) is 0.25 from L = 0.02.
    let (server, mon) = start(
        1,
        "[load]\nweight_cpu = 1.0\nweight_memory = 0.0\nweight_network = 0.0\nsmoothing = 1.0\n\
         [rate_limit]\nscale_min = 0.25\nload_low = 0.01\nload_high = 0.02\n\
         [[rate_limit.rule]]\nsubjects = \"limited\"\nmsgs_per_sec = 1000\n",
    );
    // Another connection saturates the shard (publishes with nobody listening, unlimited).
    let busy_until = Instant::now() + Duration::from_secs(30);
    let _saturator = flood(
        server.addr,
        "busy",
        vec![pub_frame("busy", &[b'b'; 64])],
        busy_until,
        None,
        false,
    );
    let deadline = Instant::now() + WAIT;
    let scale = |shardz: &Value| {
        shardz["shards"][0]["flow"]["rate_scale"]
            .as_f64()
            .expect("rate_scale")
    };
    loop {
        let shardz = get_json(mon, "/shardz");
        if (scale(&shardz) - 0.25).abs() < 1e-9 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the saturated shard never reached L ≥ 0.02: {}",
            shardz["shards"][0]["flow"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let window = Duration::from_secs(3);
    let _limited = flood(
        server.addr,
        "limited",
        vec![pub_frame("limited", b"x")],
        Instant::now() + window + Duration::from_secs(5),
        None,
        false,
    );
    let wait_for = Instant::now() + WAIT;
    loop {
        if conn_named(mon, "limited").is_some_and(|row| n(&row, "in_msgs") > 0) {
            break;
        }
        assert!(
            Instant::now() < wait_for,
            "the limited publisher never published"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its burst goes first; the window starts after it.
    std::thread::sleep(Duration::from_millis(500));
    let row = conn_named(mon, "limited").expect("limited");
    let before = (Instant::now(), n(&row, "in_msgs"));
    std::thread::sleep(window);
    let row = conn_named(mon, "limited").expect("limited");
    let elapsed = before.0.elapsed().as_secs_f64();
    let rate = (n(&row, "in_msgs") - before.1) as f64 / elapsed;
    let shardz = get_json(mon, "/shardz");
    assert!(
        (scale(&shardz) - 0.25).abs() < 1e-9,
        "still loaded: {}",
        shardz["shards"][0]["flow"]
    );
    eprintln!("limited publisher read at {rate:.1} msgs/s under load");
    // 1000 msgs/s × f(L) = 250 msgs/s.
    assert!(
        (212.5..=287.5).contains(&rate),
        "read at {rate:.1} msgs/s under load; f(L) = 0.25 of 1000 expected"
    );
    assert!(n(&row, "throttled_ms") > 0, "{row}");
}

#[test]
fn a_reload_puts_new_rate_limits_in_force_at_once() {
    let (server, mon) = start(1, "[rate_limit]\nmsgs_per_sec = 200\n");
    let _publisher = flood(
        server.addr,
        "limited",
        vec![pub_frame("rl", b"x")],
        Instant::now() + Duration::from_secs(30),
        None,
        false,
    );
    std::thread::sleep(Duration::from_secs(1));
    let read = || n(&conn_named(mon, "limited").expect("limited"), "in_msgs");
    let limited = read();
    assert!(limited < 1000, "about 200/s plus a burst of 20: {limited}");
    // The same file without the limit, and SIGHUP.
    let path = server.config_path().expect("started with a file");
    std::fs::write(&path, "[monitoring]\nport = 0\n").expect("rewrite the config");
    server.signal(libc::SIGHUP);
    let line = server.wait_for_log("reloaded", |l| l.contains("configuration reloaded"));
    assert!(line.contains("rate_limit"), "{line}");
    let at = read();
    std::thread::sleep(Duration::from_secs(1));
    let unlimited = read() - at;
    assert!(
        unlimited > 10 * 200,
        "unlimited now: {unlimited} in a second, against 200 before"
    );
}

// ---------------------------------------------------------------------------------------
// Slow-consumer policies, one subscriber that never reads

const MSGS: usize = 6000;
const SIZE: usize = 1000;

/// A healthy subscriber reading everything and one that never reads, both on `feed`;
/// `MSGS` numbered messages published. Returns the server, its monitoring address, the
/// healthy subscriber (after reading all it gets), the one that never read, and its cid.
/// Under `drop_new` the healthy one may be dropped for too, when it falls behind (it is
/// then checked to get exactly what was delivered to it).
fn non_reading_subscriber_run(toml: &str, drop_new: bool) -> (Server, SocketAddr, Sub, Sub, u64) {
    let (server, mon) = start(2, toml);
    let mut healthy = Sub::connect(server.addr, "healthy", &["feed"], 0);
    let slow = Sub::connect(server.addr, "slow", &["feed"], 4096);
    let slow_cid = cid_of(mon, "slow");
    let publisher = publish(server.addr, "publisher", numbered("feed", MSGS, SIZE));
    if drop_new {
        publisher.join().expect("the publisher got its PONG");
        let row = conn_named(mon, "healthy").expect("healthy");
        healthy.drain(Duration::from_secs(60));
        assert_eq!(healthy.msgs.len() as u64, n(&row, "out_msgs"), "{row}");
        assert_eq!(n(&row, "matched_msgs"), MSGS as u64, "{row}");
        assert_eq!(
            n(&row, "matched_msgs"),
            n(&row, "out_msgs") + dropped_total(&row)
        );
        let got = numbers(&healthy.msgs);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
    } else {
        assert!(
            healthy.read_until(Instant::now() + Duration::from_secs(60), |s| s.msgs.len()
                >= MSGS),
            "the healthy subscriber got {} of {MSGS}",
            healthy.msgs.len()
        );
        publisher.join().expect("the publisher got its PONG");
        assert_eq!(
            numbers(&healthy.msgs),
            (0..MSGS).collect::<Vec<_>>(),
            "all, in order"
        );
    }
    (server, mon, healthy, slow, slow_cid)
}

#[test]
fn disconnect_closes_only_the_subscriber_that_does_not_read() {
    let (server, mon, _healthy, _slow, slow) = non_reading_subscriber_run(
        "[limits]\nmax_pending = \"256KiB\"\nmax_payload = \"64KiB\"\n",
        false,
    );
    let line = slow_close_line(&server, slow);
    assert!(line.contains("slow_consumer_max_pending"), "{line}");
    assert_eq!(
        field(&line, "matched_msgs"),
        field(&line, "out_msgs") + field(&line, "dropped_msgs"),
        "{line}"
    );
    assert!(conn_named(mon, "slow").is_none(), "closed");
    let healthy = conn_named(mon, "healthy").expect("the healthy one stays");
    assert_eq!(n(&healthy, "out_msgs"), MSGS as u64);
    assert_eq!(dropped_total(&healthy), 0);
    assert!(
        conn_named(mon, "publisher").is_none(),
        "it left after its PONG"
    );
    assert_server_sums(mon);
}

#[test]
fn drop_new_keeps_the_slow_subscriber_connected_and_the_counts_add_up() {
    let (_server, mon, _healthy, mut slow, _) = non_reading_subscriber_run(
        "[limits]\nmax_pending = \"256KiB\"\nmax_payload = \"64KiB\"\nwrite_deadline = \"1s\"\n[slow_consumer]\npolicy = \"drop_new\"\n",
        true,
    );
    // Its writes have been stuck for longer than write_deadline: shedding, it stays.
    std::thread::sleep(Duration::from_secs(2));
    let row = conn_named(mon, "slow").expect("still connected");
    assert_eq!(n(&row, "matched_msgs"), MSGS as u64, "{row}");
    let drops = n(&row["dropped_msgs"], "drop_new");
    assert!(drops > 0, "it was over its high watermark: {row}");
    assert_eq!(
        n(&row, "matched_msgs"),
        n(&row, "out_msgs") + dropped_total(&row),
        "{row}"
    );
    // Now it reads: it gets exactly what was delivered to it, in order, with gaps.
    slow.drain(Duration::from_secs(60));
    assert_eq!(slow.msgs.len() as u64, n(&row, "out_msgs"));
    let got = numbers(&slow.msgs);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_server_sums(mon);
}

#[test]
fn stall_publishers_slows_the_publisher_loses_nothing_then_falls_back_to_disconnect() {
    let (server, mon, _healthy, _slow, slow) = non_reading_subscriber_run(
        "[limits]\nmax_pending = \"256KiB\"\nmax_payload = \"64KiB\"\n\
         [slow_consumer]\npolicy = \"stall_publishers\"\nstall_max = \"1s\"\n",
        false,
    );
    let varz = assert_server_sums(mon);
    assert!(
        n(&varz["flow"], "stalled_ms") >= 500,
        "publishers paused for the stalled subscriber up to stall_max: {}",
        varz["flow"]
    );
    let line = slow_close_line(&server, slow);
    assert!(line.contains("slow_consumer_max_pending"), "{line}");
}

// ---------------------------------------------------------------------------------------
// Per-subject rules, and accounting that adds up after a mixed run

#[test]
fn per_subject_rules_pick_the_policy_and_every_count_adds_up() {
    let (server, mon) = start(
        2,
        "[limits]\nmax_pending = \"256KiB\"\nmax_payload = \"64KiB\"\n\
         [slow_consumer]\npolicy = \"disconnect\"\nstall_max = \"300ms\"\n\
         [[slow_consumer.rule]]\nsubjects = \"logs.debug.>\"\npolicy = \"drop_new\"\n\
         [[slow_consumer.rule]]\nsubjects = \"pipeline.>\"\npolicy = \"stall_publishers\"\n",
    );
    let mut healthy = Sub::connect(server.addr, "healthy", &[">"], 0);
    // One subscriber that never reads per policy.
    let mut shed = Sub::connect(server.addr, "shed", &["logs.debug.>"], 4096);
    let _stalled = Sub::connect(server.addr, "stalled", &["pipeline.>"], 4096);
    let _cut = Sub::connect(server.addr, "cut", &["orders.>"], 4096);
    let (stalled, cut) = (cid_of(mon, "stalled"), cid_of(mon, "cut"));
    let each = 6000;
    let subjects = ["logs.debug.db", "pipeline.step", "orders.new"];
    let mut bytes = Vec::new();
    for i in 0..each {
        for subject in subjects {
            bytes.extend_from_slice(&pub_frame(subject, &payload(i, SIZE)));
        }
    }
    let publisher = publish(server.addr, "publisher", bytes);
    let total = 3 * each;
    // Read along while the publisher runs, then whatever is left.
    while !publisher.is_finished() {
        healthy.read_until(Instant::now() + Duration::from_millis(50), |_| false);
    }
    publisher.join().expect("the publisher got its PONG");
    healthy.drain(Duration::from_secs(60));

    // disconnect (the default) and stall_publishers (after stall_max) closed theirs.
    for cid in [stalled, cut] {
        let line = slow_close_line(&server, cid);
        assert_eq!(
            field(&line, "matched_msgs"),
            field(&line, "out_msgs") + field(&line, "dropped_msgs"),
            "{line}"
        );
    }
    // drop_new kept its subscriber, shedding.
    let row = conn_named(mon, "shed").expect("drop_new keeps it connected");
    assert_eq!(n(&row, "matched_msgs"), each as u64, "{row}");
    assert!(n(&row["dropped_msgs"], "drop_new") > 0, "{row}");
    assert_eq!(
        n(&row, "matched_msgs"),
        n(&row, "out_msgs") + dropped_total(&row)
    );
    shed.drain(Duration::from_secs(60));
    assert_eq!(
        shed.msgs.len() as u64,
        n(&row, "out_msgs"),
        "it read what was delivered"
    );
    // The healthy subscriber: everything it matched is accounted for and what was
    // delivered is what it read. Only `logs.debug` (drop_new) may have been shed for it
    // if it fell behind; the others arrive whole and in order.
    let row = conn_named(mon, "healthy").expect("healthy");
    assert_eq!(n(&row, "matched_msgs"), total as u64);
    assert_eq!(
        n(&row, "matched_msgs"),
        n(&row, "out_msgs") + n(&row["dropped_msgs"], "drop_new"),
        "{row}"
    );
    assert_eq!(healthy.msgs.len() as u64, n(&row, "out_msgs"), "{row}");
    for subject in subjects {
        let got: Vec<_> = healthy
            .msgs
            .iter()
            .filter(|m| m.1 == subject)
            .cloned()
            .collect();
        let got = numbers(&got);
        if subject.starts_with("logs.debug") {
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{subject} in order");
        } else {
            assert_eq!(got, (0..each).collect::<Vec<_>>(), "{subject}");
        }
    }
    // And the server's totals, over every subscriber, open or closed.
    let varz = assert_server_sums(mon);
    assert!(n(&varz["flow"]["dropped_msgs"], "drop_new") > 0);
    assert!(n(&varz["flow"], "stalled_ms") >= 200, "{}", varz["flow"]);
}

// ---------------------------------------------------------------------------------------
// Priorities

#[test]
fn high_priority_messages_are_never_shed_and_keep_their_order() {
    let (server, mon) = start(
        1,
        "[slow_consumer]\npolicy = \"drop_new\"\n\
         [[priority.rule]]\nsubjects = \"alerts.>\"\nlevel = \"high\"\n",
    );
    let mut sub = Sub::connect(server.addr, "sub", &[">"], 4096);
    // Noise until it is shedding, then alerts, then more noise.
    let mut bytes = numbered("noise", 3000, SIZE);
    bytes.extend(numbered("alerts.disk", 50, SIZE));
    bytes.extend(numbered("noise", 3000, SIZE));
    publish(server.addr, "publisher", bytes)
        .join()
        .expect("the publisher got its PONG");
    let row = conn_named(mon, "sub").expect("sub");
    assert!(
        n(&row["dropped_msgs"], "drop_new") > 0,
        "the noise was shed: {row}"
    );
    sub.drain(Duration::from_secs(60));
    let alerts: Vec<_> = sub
        .msgs
        .iter()
        .filter(|m| m.1 == "alerts.disk")
        .cloned()
        .collect();
    assert_eq!(
        numbers(&alerts),
        (0..50).collect::<Vec<_>>(),
        "every alert, in order"
    );
    assert_eq!(sub.msgs.len() as u64, n(&row, "out_msgs"));
}

#[test]
fn high_priority_messages_are_written_at_once_despite_a_flush_delay() {
    // Normal messages wait 3 s (batch.flush_delay_us) before being written.
    let (server, _mon) = start(
        1,
        "[batch]\nflush_delay_us = 3000000\n\
         [[priority.rule]]\nsubjects = \"alerts.>\"\nlevel = \"high\"\n",
    );
    let mut sub = Sub::connect(server.addr, "sub", &[">"], 0);
    let mut publisher = connect(server.addr, 0, 0);
    publisher
        .write_all(&connect_line("publisher"))
        .expect("connect");
    publisher
        .write_all(&pub_frame("news", b"normal"))
        .expect("publish");
    let sent = Instant::now();
    assert!(
        !sub.read_until(sent + Duration::from_secs(1), |s| !s.msgs.is_empty()),
        "a normal message waits for the flush delay"
    );
    publisher
        .write_all(&pub_frame("alerts.fire", b"high"))
        .expect("publish");
    assert!(
        sub.read_until(sent + Duration::from_millis(2500), |s| s.msgs.len() >= 2),
        "the alert (and what was queued before it) is written well before the 3 s delay"
    );
    assert_eq!(
        sub.msgs[0].1, "news",
        "order kept: what was queued first comes first"
    );
    assert_eq!(sub.msgs[1].1, "alerts.fire");
}

// ---------------------------------------------------------------------------------------
// The memory budget

/// The resident set of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[test]
fn the_memory_budget_holds_under_a_flood_and_nothing_is_lost() {
    const BUDGET: u64 = 8 << 20;
    const SUBS: usize = 10;
    // Without the budget nothing else would stop this: no pacing (stall_budget 0), a huge
    // max_pending, a long write deadline, and no last resort within the test.
    let (server, mon) = start(
        1,
        "[limits]\nmax_pending = \"512MiB\"\nstall_budget = \"0ms\"\nwrite_deadline = \"120s\"\n\
         [memory]\nbudget = \"8MiB\"\n[slow_consumer]\nstall_max = \"60s\"\n",
    );
    let mut subs: Vec<Sub> = (0..SUBS)
        .map(|i| Sub::connect(server.addr, &format!("sub{i}"), &["flood"], 4096))
        .collect();
    let pid = server.pid();
    let before = rss(pid);
    let flood_for = Duration::from_secs(3);
    let mut publisher = Some(flood(
        server.addr,
        "flood",
        vec![pub_frame("flood", &[b'f'; SIZE])],
        Instant::now() + flood_for,
        None,
        true,
    ));
    let (mut peak, mut paused) = (before, false);
    let end = Instant::now() + flood_for;
    while Instant::now() < end {
        peak = peak.max(rss(pid));
        if !paused {
            paused = get_json(mon, "/shardz")["total"]["flow"]["pushback"] == true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let shardz = get_json(mon, "/shardz");
    let flow = &shardz["total"]["flow"];
    assert!(
        paused || n(flow, "pushback_episodes") > 0,
        "the flood went over the budget's high mark: {flow}"
    );
    assert!(n(flow, "memory_held_bytes") <= BUDGET, "{flow}");
    eprintln!(
        "server RSS {} MiB before the flood, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    let overhead = 24 << 20;
    assert!(
        peak <= before + BUDGET + overhead,
        "server RSS peaked at {} MiB from {} MiB: over the 8 MiB budget + {} MiB",
        peak >> 20,
        before >> 20,
        overhead >> 20
    );
    // Pushback loses nothing: once the subscribers read, each gets every message.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut written = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "subscribers did not get everything"
        );
        for sub in subs.iter_mut() {
            sub.read_until(Instant::now() + Duration::from_millis(20), |_| false);
        }
        if publisher.as_ref().is_some_and(|p| p.is_finished()) {
            written = publisher.take().map(|p| p.join().expect("flood"));
        }
        if let Some(w) = written {
            if subs.iter().all(|s| s.msgs.len() as u64 >= w) {
                break;
            }
        }
    }
    let written = written.expect("the flood finished");
    for sub in &subs {
        assert_eq!(sub.msgs.len() as u64, written, "every message, once");
    }
    assert_server_sums(mon);
}
