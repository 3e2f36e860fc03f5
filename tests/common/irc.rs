//! IRC test helpers: a person typing raw IRC over real TCP, a server with the IRC
//! listener on, which shard took a connection, and the async-nats side's runtime.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{Server, WAIT};

/// A person typing raw IRC.
pub struct Irc {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Lines read so far and not yet matched.
    pub seen: Vec<String>,
}

impl Irc {
    pub fn connect(addr: SocketAddr) -> Irc {
        Irc::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Wraps a stream connected some other way (e.g. with socket options set first).
    pub fn from_stream(stream: TcpStream) -> Irc {
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Irc {
            stream,
            reader,
            seen: Vec::new(),
        }
    }

    /// Connects, registers as `nick` and reads the welcome burst.
    pub fn register(addr: SocketAddr, nick: &str) -> Irc {
        let mut c = Irc::connect(addr);
        c.send(&format!("NICK {nick}"));
        c.send(&format!("USER {nick} 0 * :{nick} test"));
        c.expect(&format!(" 422 {nick} "));
        c
    }

    /// The nick the server gave this client (from its 001).
    pub fn nick(&mut self) -> String {
        self.expect(" 001 ")
            .split_whitespace()
            .nth(2)
            .expect("nick")
            .to_string()
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().expect("local addr").port()
    }

    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("send");
    }

    /// The next line, or None after `within`.
    pub fn next_line(&mut self, within: Duration) -> Option<String> {
        self.stream
            .set_read_timeout(Some(within.max(Duration::from_millis(1))))
            .expect("timeout");
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                assert!(line.len() <= 512, "a line over 512 bytes: {line:?}");
                assert!(line.ends_with("\r\n"), "no CRLF: {line:?}");
                Some(line.trim_end().to_string())
            }
        }
    }

    /// Waits for a line containing `want`; returns it. Lines before it are kept in `seen`.
    pub fn expect(&mut self, want: &str) -> String {
        if let Some(i) = self.seen.iter().position(|l| l.contains(want)) {
            return self.seen.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(l) if l.contains(want) => return l,
                Some(l) => self.seen.push(l),
                None => panic!("no line with {want:?}; got {:#?}", self.seen),
            }
        }
    }

    /// Asserts that no line containing `unwanted` arrives within `wait`.
    pub fn expect_none(&mut self, unwanted: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.next_line(left) {
                Some(l) => {
                    assert!(!l.contains(unwanted), "unexpected {l:?}");
                    self.seen.push(l);
                }
                None => break,
            }
        }
        assert!(
            !self.seen.iter().any(|l| l.contains(unwanted)),
            "unexpected {unwanted:?} in {:#?}",
            self.seen
        );
    }
}

/// A single-threaded tokio runtime for the async-nats side of a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A server with the IRC listener on (2 shards), and its IRC address.
pub fn start(toml: &str) -> (Server, SocketAddr) {
    let s = Server::start_with_logging(
        2,
        &format!("[irc]\nport = 0\n{toml}"),
        "shardcast=info,shards=debug",
    );
    let line = s.wait_for_log("irc listening", |l| l.contains("irc listening"));
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr in {line}"));
    (s, addr)
}

/// The shard that took the connection from local port `port`.
pub fn shard_of(s: &Server, port: u16) -> usize {
    let peer = format!("127.0.0.1:{port})");
    s.wait_for_log("client connected", |l| {
        l.contains("client connected") && l.contains(&peer)
    })
    .split_whitespace()
    .find_map(|w| w.strip_prefix("shard="))
    .and_then(|v| v.parse().ok())
    .expect("shard= in the log line")
}

/// Registers people until two are on different shards.
pub fn two_on_different_shards(s: &Server, addr: SocketAddr) -> (Irc, Irc) {
    let first = Irc::register(addr, "alice");
    let home = shard_of(s, first.local_port());
    for i in 0..64 {
        let other = Irc::register(addr, &format!("bob{i}"));
        if shard_of(s, other.local_port()) != home {
            return (first, other);
        }
    }
    panic!("64 connections all landed on shard {home}");
}

/// Sends a probe through a subscription of its own and waits for it: the server has
/// processed every subscription this client made before.
pub async fn subscribed(nats: &async_nats::Client) {
    use futures::StreamExt;
    let subject = format!("probe.{}", std::process::id());
    let mut probe = nats.subscribe(subject.clone()).await.expect("probe sub");
    nats.publish(subject, "".into()).await.expect("probe");
    tokio::time::timeout(WAIT, probe.next())
        .await
        .expect("probe in time")
        .expect("probe");
}

/// Sends `NAMES #channel` until the names contain every one of `nicks` (what other shards
/// did reaches this shard's copy a moment later); returns the last names line.
pub fn names_until(c: &mut Irc, channel: &str, nicks: &[&str]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        c.send(&format!("NAMES {channel}"));
        let line = c.expect(" 353 ");
        c.expect(" 366 ");
        let names: Vec<&str> = line.rsplit(':').next().unwrap_or("").split(' ').collect();
        if nicks.iter().all(|n| names.contains(n)) {
            return line;
        }
        assert!(Instant::now() < deadline, "{nicks:?} never all in {line}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
