//! Test harness: starts a real `shardcast serve` process on 127.0.0.1 port 0 and talks
//! to it over real TCP. `Raw` sends bytes and expects exact bytes back.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod bench;
pub mod certs;
pub mod cluster;
pub mod irc;
pub mod irssi;
pub mod logs;
pub mod nats;

/// How long any expectation waits before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server process, killed (by its PID) when dropped.
pub struct Server {
    pub addr: SocketAddr,
    child: Option<Child>,
    /// Lines from the stderr reader thread, in order.
    log: mpsc::Receiver<String>,
    /// The stderr reader thread: it ends when the process exits and its stderr closes.
    reader: Option<JoinHandle<()>>,
    /// Every line taken from `log` so far, from the first (start-up warnings, then the
    /// listening line) on.
    seen: RefCell<Vec<String>>,
    _dir: Option<TempDir>,
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("shardcast-test-{}-{tag}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    /// `shardcast serve -a 127.0.0.1 -p 0 --shards N`.
    pub fn start(shards: usize) -> Server {
        Server::start_with(shards, "")
    }

    /// Same, with extra TOML configuration.
    pub fn start_with(shards: usize, toml: &str) -> Server {
        Server::start_full(shards, toml, "info", 0)
    }

    /// `start`, logging at `level` (e.g. "debug" to see which shard took each client).
    pub fn start_logging(shards: usize, level: &str) -> Server {
        Server::start_full(shards, "", level, 0)
    }

    /// `start_with`, logging at `level`.
    pub fn start_with_logging(shards: usize, toml: &str, level: &str) -> Server {
        Server::start_full(shards, toml, level, 0)
    }

    /// `start` on a fixed `port`.
    pub fn start_on_port(shards: usize, port: u16) -> Server {
        Server::start_full(shards, "", "info", port)
    }

    /// `start_with` on a fixed `port`.
    pub fn start_with_on_port(shards: usize, toml: &str, port: u16) -> Server {
        Server::start_full(shards, toml, "info", port)
    }

    fn start_full(shards: usize, toml: &str, level: &str, port: u16) -> Server {
        let dir = TempDir::new("cfg");
        let path = dir.0.join("shardcast.toml");
        std::fs::write(&path, toml).expect("write config");
        let (shards, port) = (shards.to_string(), port.to_string());
        let args = [
            "serve",
            "-c",
            path.to_str().expect("utf8 path"),
            "-a",
            "127.0.0.1",
            "-p",
            &port,
            "--shards",
            &shards,
        ];
        let mut s = Server::spawn_logging(&args, level);
        s._dir = Some(dir);
        s
    }

    pub fn spawn(args: &[&str]) -> Server {
        Server::spawn_logging(args, "info")
    }

    pub fn spawn_logging(args: &[&str], level: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shardcast"))
            .args(args)
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shardcast");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            addr: ([127, 0, 0, 1], 0).into(),
            child: Some(child),
            log: rx,
            reader: Some(reader),
            seen: RefCell::new(Vec::new()),
            _dir: None,
        };
        let listening = server.try_wait_for_log(|l| l.contains("shardcast listening"));
        let line = match listening {
            Ok(line) => line,
            Err(why) => {
                let log = server.seen.take().join("\n");
                drop(server);
                panic!("server did not start ({why}); its log:\n{log}");
            }
        };
        server.addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .expect("addr= in the listening line")
            .parse()
            .expect("socket address");
        server
    }

    pub fn connect(&self) -> Raw {
        Raw::connect(self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The configuration file it was started with (`start_with` and friends).
    pub fn config_path(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.0.join("shardcast.toml"))
    }

    /// Sends `signal` (e.g. `libc::SIGUSR2`) to the server process.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.as_ref().expect("running").id();
        // SAFETY: kill(2) on the PID of the child we spawned and still own (not yet
        // reaped, so the PID cannot have been reused).
        let rc = unsafe { libc::kill(pid as i32, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Sends SIGTERM and waits for the exit status and the whole log.
    pub fn terminate(self) -> (ExitStatus, Vec<String>) {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    /// Sends SIGKILL and waits for the process to be gone; returns its log.
    pub fn kill(self) -> (ExitStatus, Vec<String>) {
        self.signal(libc::SIGKILL);
        self.wait_exit()
    }

    /// Waits (up to `WAIT`) for the process to exit; returns its status and every line
    /// it logged. The reader thread sees end-of-file on stderr only once the process has
    /// exited (nothing else holds the pipe), so the log channel's end is the exit: no
    /// polling, and joining the reader guarantees every last line is in.
    pub fn wait_exit(mut self) -> (ExitStatus, Vec<String>) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => self.seen.get_mut().push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "server did not exit within {WAIT:?}; its log:\n{}",
                        self.seen.get_mut().join("\n")
                    );
                }
            }
        }
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader thread");
        }
        let status = child.wait().expect("wait");
        (status, std::mem::take(self.seen.get_mut()))
    }

    /// Every log line printed so far, from the first on.
    pub fn log_lines(&self) -> Vec<String> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.log.try_iter());
        seen.clone()
    }

    /// Waits (up to `WAIT`) for a log line that satisfies `pred`, among those printed
    /// so far or the next ones, and returns it. For events that only the log shows.
    pub fn wait_for_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.try_wait_for_log(pred).unwrap_or_else(|why| {
            panic!(
                "no log line {what}: {why}; the log:\n{}",
                self.seen.borrow().join("\n")
            )
        })
    }

    /// Waits for the line that logs `message` for client `cid` (debug level for most).
    pub fn wait_for_client_log(&self, message: &str, cid: u64) -> String {
        let field = format!(" cid={cid} ");
        self.wait_for_log(&format!("{message:?} for cid {cid}"), |l| {
            l.contains(message) && l.contains(&field)
        })
    }

    /// `wait_for_log`, saying why there is no such line: the deadline passed or the
    /// process exited.
    fn try_wait_for_log(&self, pred: impl Fn(&str) -> bool) -> Result<String, String> {
        let mut seen = self.seen.borrow_mut();
        if let Some(line) = seen.iter().find(|l| pred(l.as_str())) {
            return Ok(line.clone());
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.log.recv_timeout(left).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => format!("none within {WAIT:?}"),
                mpsc::RecvTimeoutError::Disconnected => "the server exited".to_string(),
            })?;
            let hit = pred(&line);
            seen.push(line);
            if hit {
                return Ok(seen.last().cloned().expect("just pushed"));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A raw protocol client: bytes in, exact bytes out.
pub struct Raw {
    pub stream: TcpStream,
    pending: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        Raw::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Wraps a stream connected some other way (e.g. with socket options set first).
    pub fn from_stream(stream: TcpStream) -> Raw {
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            pending: Vec::new(),
        }
    }

    /// Connects and consumes the INFO line, returning its JSON.
    pub fn connect_info(addr: SocketAddr) -> (Raw, serde_json::Value) {
        let mut r = Raw::connect(addr);
        let info = r.read_info();
        (r, info)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads until at least `n` bytes are buffered (or the connection ends / times out).
    fn fill(&mut self, n: usize, deadline: Instant) -> bool {
        let mut buf = [0u8; 65536];
        while self.pending.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(k) => self.pending.extend_from_slice(&buf[..k]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Expects exactly `want` next on the wire.
    pub fn expect(&mut self, want: &[u8]) {
        let ok = self.fill(want.len(), Instant::now() + WAIT);
        let got: Vec<u8> = self
            .pending
            .drain(..want.len().min(self.pending.len()))
            .collect();
        assert!(
            ok && got == want,
            "expected {:?}\n     got {:?}",
            String::from_utf8_lossy(want),
            String::from_utf8_lossy(&got)
        );
    }

    /// Reads one line (through CRLF).
    pub fn line(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..i + 2).collect();
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            let have = self.pending.len();
            assert!(
                self.fill(have + 1, deadline),
                "no complete line; have {:?}",
                String::from_utf8_lossy(&self.pending)
            );
        }
    }

    pub fn read_info(&mut self) -> serde_json::Value {
        let line = self.line();
        let json = line
            .strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("INFO expected, got {line:?}"));
        serde_json::from_str(json.trim_end()).expect("INFO json")
    }

    /// Expects the server to close the connection with nothing more sent.
    pub fn expect_closed(&mut self) {
        let more = self.fill(self.pending.len() + 1, Instant::now() + WAIT);
        assert!(
            !more,
            "expected close, got more bytes: {:?}",
            String::from_utf8_lossy(&self.pending)
        );
        assert!(
            self.pending.is_empty(),
            "unread bytes before close: {:?}",
            String::from_utf8_lossy(&self.pending)
        );
    }

    /// PING → PONG round trip: everything sent before is in effect server-wide.
    pub fn flush(&mut self) {
        self.send(b"PING\r\n");
        self.expect(b"PONG\r\n");
    }

    /// Reads `n` MSGs (no headers) and returns (subject, sid, reply, payload) for each.
    pub fn msgs(&mut self, n: usize) -> Vec<Msg> {
        (0..n).map(|_| self.msg()).collect()
    }

    pub fn msg(&mut self) -> Msg {
        let line = self.line();
        self.msg_after(&line)
    }

    /// Parses a MSG whose control line was already read, then reads its payload.
    fn msg_after(&mut self, line: &str) -> Msg {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts[0], "MSG", "MSG expected, got {line:?}");
        let (subject, sid) = (parts[1].to_string(), parts[2].to_string());
        let (reply, len) = match parts.len() {
            4 => (None, parts[3]),
            5 => (Some(parts[3].to_string()), parts[4]),
            _ => panic!("bad MSG line {line:?}"),
        };
        let len: usize = len.parse().expect("size");
        assert!(self.fill(len + 2, Instant::now() + WAIT), "short payload");
        let body: Vec<u8> = self.pending.drain(..len).collect();
        let crlf: Vec<u8> = self.pending.drain(..2).collect();
        assert_eq!(crlf, b"\r\n");
        (subject, sid, reply, body)
    }

    /// Sends PING and returns every MSG that arrives before the PONG.
    pub fn drain(&mut self) -> Vec<Msg> {
        self.send(b"PING\r\n");
        let mut got = Vec::new();
        loop {
            let line = self.line();
            if line == "PONG" {
                return got;
            }
            got.push(self.msg_after(&line));
        }
    }
}

/// A delivered message: (subject, sid, reply, payload).
pub type Msg = (String, String, Option<String>, Vec<u8>);

/// What `client` sends in its CONNECT: verbose off, headers on.
pub const CONNECT_JSON: &str = r#"{"verbose":false,"pedantic":false,"headers":true}"#;

/// A connection that has sent CONNECT (`CONNECT_JSON`) and got its PONG.
pub fn client(server: &Server) -> Raw {
    client_with(server, CONNECT_JSON)
}

pub fn client_with(server: &Server, connect_json: &str) -> Raw {
    client_and_cid(server, connect_json).0
}

/// `client`, for a server this harness did not start (its address only).
pub fn client_at(addr: SocketAddr) -> Raw {
    let (mut c, _) = Raw::connect_info(addr);
    c.send(format!("CONNECT {CONNECT_JSON}\r\n").as_bytes());
    c.flush();
    c
}

/// `client_with`, also returning the client id the server announced in INFO (the `cid`
/// of the server's log lines about this client).
pub fn client_and_cid(server: &Server, connect_json: &str) -> (Raw, u64) {
    let (mut c, info) = Raw::connect_info(server.addr);
    let cid = info["client_id"].as_u64().expect("client_id in INFO");
    c.send(format!("CONNECT {connect_json}\r\n").as_bytes());
    c.flush();
    (c, cid)
}

/// `n` clients, client `i` having sent `sub_line(i)` (e.g. a SUB) and got its PONG.
pub fn subscribed(server: &Server, n: usize, sub_line: impl Fn(usize) -> String) -> Vec<Raw> {
    (0..n)
        .map(|i| {
            let mut c = client(server);
            c.send(sub_line(i).as_bytes());
            c.flush();
            c
        })
        .collect()
}

/// A small deterministic PRNG for test data and splits.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A Debian `nats-server` on a free loopback port, killed (by its PID) when dropped.
/// `.ci/run` installs it; the tests that compare against it need it.
pub struct NatsServer {
    pub addr: SocketAddr,
    child: Child,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        NatsServer::start_with(&[])
    }

    /// With HTTP monitoring on a free port too; returns that port.
    pub fn start_monitored() -> (NatsServer, u16) {
        let mport = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = NatsServer::start_with(&["-m", &mport.to_string()]);
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", mport)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server monitoring did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        (server, mport)
    }

    pub fn start_with(extra: &[&str]) -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed (apt-get install nats-server; .ci/run does it)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Its output is discarded, so a connection accepted is the only sign it is up:
        // poll for that, bounded by WAIT.
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        NatsServer { addr, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free right now, below the kernel's ephemeral range: nothing is given such a
/// port without asking for it by number, so a parallel test's connections or port-0
/// servers cannot take it between here and the test's own binds. Free means a bind
/// without SO_REUSEADDR succeeds, so not even a closing connection holds it.
pub fn free_fixed_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, span) = (10_000u16, ephemeral_low.saturating_sub(10_000).max(1));
    let base = (std::process::id() as u16).wrapping_mul(97);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = low + base.wrapping_add(n.wrapping_mul(13)) % span;
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        if socket.bind(&addr.into()).is_ok() {
            return port;
        }
    }
    panic!("no free port found below {ephemeral_low}");
}

// The HTTP monitoring port.

/// The monitoring address from the server's log.
pub fn monitoring_addr(server: &Server) -> SocketAddr {
    let line = server.wait_for_log("monitoring listening", |l| {
        l.contains("monitoring listening")
    });
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr= in {line:?}"))
}

/// `GET path` over HTTP/1.1 (the monitoring port): (status, content type, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to monitoring");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let kind = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, kind, body.to_string())
}

pub fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, kind, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    assert!(kind.starts_with("application/json"), "{path}: {kind}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Checks `/metrics` text with `promtool check metrics` (Debian's prometheus package).
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
