//! Test harness: starts a real `shardcast serve` process on 127.0.0.1 port 0 and talks
//! to it over real TCP. `Raw` sends bytes and expects exact bytes back.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any expectation waits before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server process, killed (by its PID) when dropped.
pub struct Server {
    pub addr: SocketAddr,
    child: Option<Child>,
    log: mpsc::Receiver<String>,
    /// Lines printed before the listening line (start-up warnings).
    startup_log: Vec<String>,
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
        let dir = TempDir::new("cfg");
        let path = dir.0.join("shardcast.toml");
        std::fs::write(&path, toml).expect("write config");
        let shards = shards.to_string();
        let args = [
            "serve",
            "-c",
            path.to_str().expect("utf8 path"),
            "-a",
            "127.0.0.1",
            "-p",
            "0",
            "--shards",
            &shards,
        ];
        let mut s = Server::spawn(&args);
        s._dir = Some(dir);
        s
    }

    pub fn spawn(args: &[&str]) -> Server {
        Server::spawn_logging(args, "info")
    }

    /// `start`, logging at `level` (e.g. "debug" to see which shard took each client).
    pub fn start_logging(shards: usize, level: &str) -> Server {
        let shards = shards.to_string();
        let args = ["serve", "-a", "127.0.0.1", "-p", "0", "--shards", &shards];
        Server::spawn_logging(&args, level)
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
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if line.contains("shardcast listening") {
                        let addr = line
                            .split_whitespace()
                            .find_map(|w| w.strip_prefix("addr="))
                            .expect("addr= in the listening line")
                            .parse()
                            .expect("socket address");
                        return Server {
                            addr,
                            child: Some(child),
                            log: rx,
                            startup_log: seen,
                            _dir: None,
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("server did not start; its log:\n{}", seen.join("\n"));
                }
            }
        }
    }

    pub fn connect(&self) -> Raw {
        Raw::connect(self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends SIGTERM and waits for the exit status and the rest of the log.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on the PID of the child we spawned and still own.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                // The stderr reader thread may still hold the last lines: give it a moment.
                std::thread::sleep(Duration::from_millis(50));
                let mut lines = std::mem::take(&mut self.startup_log);
                lines.extend(self.log.try_iter());
                return (status, lines);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not exit within {WAIT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Log lines printed so far (after the listening line).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.try_iter().collect()
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
        let stream = TcpStream::connect(addr).expect("connect");
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

    /// Expects nothing to arrive for `d` (the connection stays open and quiet).
    pub fn expect_silence(&mut self, d: Duration) {
        let got = self.fill(self.pending.len() + 1, Instant::now() + d);
        assert!(
            !got,
            "expected silence, got {:?}",
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

/// A connection that has sent CONNECT (verbose off, headers on) and got its PONG.
pub fn client(server: &Server) -> Raw {
    client_with(
        server,
        r#"{"verbose":false,"pedantic":false,"headers":true}"#,
    )
}

pub fn client_with(server: &Server, connect_json: &str) -> Raw {
    let (mut c, _) = Raw::connect_info(server.addr);
    c.send(format!("CONNECT {connect_json}\r\n").as_bytes());
    c.flush();
    c
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed (apt-get install nats-server; .ci/run does it)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
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
