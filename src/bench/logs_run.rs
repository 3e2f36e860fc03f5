//! Runs the `logs` scenario: opens the watchers (`--watchers` NATS subscribers per routed
//! subject, or a TCP sink a relay forwards to), sends `--msgs` logs over the input as fast
//! as it takes them (or at `--rate`), and waits until every copy the rules make has
//! arrived, or until `--timeout` passes without one. Reports logs/s from the first log
//! sent to the last copy received, copies lost, and the server's CPU per log.
//!
//! Blocking sockets on plain threads: one sender, one reader per watcher connection.

use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bench::args::{BenchArgs, LogConfigKind, LogInputArg};
use crate::bench::logs::{copies, line, rsyslog_config, rules, shardcast_config, subjects};
use crate::bench::{procfs, BenchError};

/// How long watchers may take to connect and subscribe (or a relay to connect to the sink).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a `logs` run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogReport {
    pub label: String,
    pub input: LogInputArg,
    /// The sending rate asked for (logs/s; 0: as fast as the input takes them).
    pub rate: u64,
    pub logs: u64,
    pub rules: usize,
    pub watchers: usize,
    /// Copies the rules make, times the watchers.
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    /// First log sent to the last copy received.
    pub elapsed_s: f64,
    /// Logs routed per second: the logs sent, scaled by the share of copies received
    /// (over UDP a sender faster than the server loses datagrams).
    pub logs_per_s: f64,
    pub deliveries_per_s: f64,
    /// The server's CPU time over the run, and per log routed (with `--server-pid`).
    pub server_cpu_s: Option<f64>,
    pub server_cpu_us_per_log: Option<f64>,
}

impl LogReport {
    pub fn human(&self) -> String {
        let mut s = format!(
            "logs over {:?}{}: {} logs, {} rules, {} watchers per subject\n\
             {:>12.0} logs routed/s   {:>12.0} deliveries/s   {:.3} s\n\
             {} of {} copies received, {} lost\n",
            self.input,
            if self.rate > 0 {
                format!(" at {}/s", self.rate)
            } else {
                String::new()
            },
            self.logs,
            self.rules,
            self.watchers,
            self.logs_per_s,
            self.deliveries_per_s,
            self.elapsed_s,
            self.received,
            self.expected,
            self.lost,
        );
        if let (Some(cpu), Some(per)) = (self.server_cpu_s, self.server_cpu_us_per_log) {
            s.push_str(&format!(
                "server CPU {cpu:.3} s, {per:.2} µs per log routed\n"
            ));
        }
        s
    }

    /// Appends one CSV row (with a header when the file is new or empty).
    pub fn append_csv(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if f.metadata()?.len() == 0 {
            writeln!(
                f,
                "label,input,rate,logs,rules,watchers,expected,received,lost,elapsed_s,logs_per_s,deliveries_per_s,server_cpu_s,server_cpu_us_per_log"
            )?;
        }
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        writeln!(
            f,
            "{},{},{},{},{},{},{},{},{},{:.4},{:.1},{:.1},{},{}",
            self.label,
            serde_json::to_value(self.input)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            self.rate,
            self.logs,
            self.rules,
            self.watchers,
            self.expected,
            self.received,
            self.lost,
            self.elapsed_s,
            self.logs_per_s,
            self.deliveries_per_s,
            opt(self.server_cpu_s),
            opt(self.server_cpu_us_per_log),
        )
    }
}

/// What `--print-config` asks for, if anything.
pub fn print_config(args: &BenchArgs) -> Result<Option<String>, BenchError> {
    match args.print_config {
        None => Ok(None),
        Some(LogConfigKind::Shardcast) => Ok(Some(shardcast_config())),
        Some(LogConfigKind::Rsyslog) => {
            let port = log_addr(args)?.port();
            let sink = args.log_sink.ok_or_else(|| {
                BenchError::Usage("--print-config rsyslog needs --log-sink PORT".into())
            })?;
            let dir = std::env::temp_dir();
            Ok(Some(rsyslog_config(
                port,
                sink,
                args.watchers,
                &dir.to_string_lossy(),
            )))
        }
    }
}

fn log_addr(args: &BenchArgs) -> Result<SocketAddr, BenchError> {
    let addr = args.log_addr.as_deref().ok_or_else(|| {
        BenchError::Usage(format!(
            "logs over {:?} needs --log-addr HOST:PORT (the server's log port)",
            args.log_input
        ))
    })?;
    resolve(addr)
}

fn resolve(addr: &str) -> Result<SocketAddr, BenchError> {
    addr.to_socket_addrs()
        .map_err(|e| BenchError::Usage(format!("cannot resolve {addr}: {e}")))?
        .next()
        .ok_or_else(|| BenchError::Usage(format!("{addr} resolves to nothing")))
}

/// The counters the watcher threads share.
struct Tally {
    /// What `last_ns` counts from.
    base: Instant,
    received: AtomicU64,
    /// When the last copy arrived.
    last_ns: AtomicU64,
    ready: AtomicU64,
    stop: AtomicBool,
}

impl Tally {
    fn got(&self, n: u64) {
        self.received.fetch_add(n, Relaxed);
        self.last_ns
            .fetch_max(self.base.elapsed().as_nanos() as u64, Relaxed);
    }
}

/// Runs the scenario.
pub fn run(args: &BenchArgs) -> Result<LogReport, BenchError> {
    if args.watchers == 0 || args.watchers > 100 {
        return Err(BenchError::Usage("--watchers must be from 1 to 100".into()));
    }
    if args.msgs == 0 {
        return Err(BenchError::Usage("logs needs --msgs 1 or more".into()));
    }
    // Named before anything connects, so a missing address is what the user hears about.
    if args.log_input != LogInputArg::Nats {
        log_addr(args)?;
    }
    let rules = rules();
    let expected: u64 =
        (0..args.msgs).map(|i| copies(i, &rules)).sum::<u64>() * args.watchers as u64;
    let tally = Arc::new(Tally {
        base: Instant::now(),
        received: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
        ready: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let (watchers, connections) = match args.log_sink {
        Some(port) => (sink(port, &tally)?, args.watchers * subjects().len()),
        None => {
            let nats = nats_addr(args)?;
            let mut handles = Vec::new();
            for subject in subjects() {
                for _ in 0..args.watchers {
                    handles.push(nats_watcher(nats, &subject, &tally)?);
                }
            }
            let n = handles.len();
            (handles, n)
        }
    };
    // NATS watchers are ready once subscribed; a relay connects to the sink when it
    // forwards its first message, so the sink is ready at once.
    let want_ready = if args.log_sink.is_some() {
        0
    } else {
        connections as u64
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    while tally.ready.load(Relaxed) < want_ready {
        if Instant::now() > deadline {
            tally.stop.store(true, Relaxed);
            return Err(BenchError::Run(format!(
                "only {} of {want_ready} watchers subscribed in {READY_TIMEOUT:?}",
                tally.ready.load(Relaxed)
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu_start = args
        .server_pid
        .map(procfs::usage)
        .transpose()
        .map_err(BenchError::Usage)?;
    let start_ns = tally.base.elapsed().as_nanos() as u64;
    send(args)?;
    // Wait for every copy, or for `--timeout` without progress.
    let mut last = (tally.received.load(Relaxed), Instant::now());
    while tally.received.load(Relaxed) < expected {
        std::thread::sleep(Duration::from_millis(2));
        let now = tally.received.load(Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > args.timeout {
            break;
        }
    }
    let cpu_end = args
        .server_pid
        .map(procfs::usage)
        .transpose()
        .map_err(BenchError::Usage)?;
    tally.stop.store(true, Relaxed);
    for w in watchers {
        let _ = w.join();
    }
    let received = tally.received.load(Relaxed).min(expected);
    let end_ns = tally.last_ns.load(Relaxed).max(start_ns + 1);
    let elapsed_s = (end_ns - start_ns) as f64 / 1e9;
    let server_cpu_s = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) => Some(b.cpu_s - a.cpu_s),
        _ => None,
    };
    let routed_logs = args.msgs as f64 * received as f64 / expected as f64;
    Ok(LogReport {
        label: args.label.clone(),
        input: args.log_input,
        rate: args.rate.unwrap_or(0),
        logs: args.msgs,
        rules: rules.len(),
        watchers: args.watchers,
        expected,
        received,
        lost: expected - received,
        elapsed_s,
        logs_per_s: routed_logs / elapsed_s,
        deliveries_per_s: received as f64 / elapsed_s,
        server_cpu_s,
        server_cpu_us_per_log: server_cpu_s
            .filter(|_| routed_logs > 0.0)
            .map(|c| c * 1e6 / routed_logs),
    })
}

fn nats_addr(args: &BenchArgs) -> Result<SocketAddr, BenchError> {
    let url = args.url.trim_start_matches("nats://");
    resolve(url)
}

/// Sends every log over the input, framed, paced by `--rate` when given.
fn send(args: &BenchArgs) -> Result<(), BenchError> {
    let fail = |what: &str, e: std::io::Error| BenchError::Run(format!("{what}: {e}"));
    let rate = args.rate.filter(|&r| r > 0);
    let started = Instant::now();
    let pace = |i: u64| {
        if let Some(r) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / r as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    };
    match args.log_input {
        LogInputArg::SyslogUdp => {
            let to = log_addr(args)?;
            let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| fail("udp socket", e))?;
            socket.connect(to).map_err(|e| fail("udp connect", e))?;
            for i in 0..args.msgs {
                pace(i);
                socket
                    .send(line(i, args.log_input).as_bytes())
                    .map_err(|e| fail("udp send", e))?;
            }
        }
        input => {
            let to = match input {
                LogInputArg::Nats => nats_addr(args)?,
                _ => log_addr(args)?,
            };
            let stream =
                TcpStream::connect(to).map_err(|e| fail(&format!("connect to {to}"), e))?;
            let mut w = BufWriter::with_capacity(
                64 * 1024,
                stream.try_clone().map_err(|e| fail("clone", e))?,
            );
            if input == LogInputArg::Nats {
                w.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n")
                    .map_err(|e| fail("write", e))?;
            }
            for i in 0..args.msgs {
                pace(i);
                let l = line(i, input);
                if input == LogInputArg::Nats {
                    write!(w, "PUB logs.ingest.bench {}\r\n{l}\r\n", l.len())
                } else {
                    writeln!(w, "{l}")
                }
                .map_err(|e| fail("write", e))?;
            }
            w.flush().map_err(|e| fail("write", e))?;
            if input == LogInputArg::Nats {
                // Wait until the server has read everything before this PING.
                let mut s = stream;
                s.write_all(b"PING\r\n").map_err(|e| fail("write", e))?;
                wait_for(&mut s, b"PONG\r\n").map_err(|e| fail("waiting for PONG", e))?;
            }
        }
    }
    Ok(())
}

/// Reads `s` until `want` has come by (discarding everything before it).
fn wait_for(s: &mut TcpStream, want: &[u8]) -> std::io::Result<()> {
    s.set_read_timeout(Some(READY_TIMEOUT))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(want.len()).any(|w| w == want) {
            return Ok(());
        }
        if seen.len() > 1 << 20 {
            seen.drain(..seen.len() - want.len());
        }
    }
}

/// One NATS subscriber to `subject`, counting the messages it gets.
fn nats_watcher(
    addr: SocketAddr,
    subject: &str,
    tally: &Arc<Tally>,
) -> Result<JoinHandle<()>, BenchError> {
    let mut s = TcpStream::connect(addr)
        .map_err(|e| BenchError::Run(format!("watcher connect to {addr}: {e}")))?;
    let hello =
        format!("CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {subject} 1\r\nPING\r\n");
    s.write_all(hello.as_bytes())
        .map_err(|e| BenchError::Run(format!("watcher: {e}")))?;
    let tally = Arc::clone(tally);
    Ok(std::thread::spawn(move || {
        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
        let mut reader = NatsCounter::default();
        let mut buf = vec![0u8; 256 * 1024];
        while !tally.stop.load(Relaxed) {
            let n = match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => break,
            };
            let (msgs, pongs) = reader.feed(&buf[..n]);
            if pongs > 0 && !reader.ready {
                reader.ready = true;
                tally.ready.fetch_add(1, Relaxed);
            }
            if msgs > 0 {
                tally.got(msgs);
            }
            if reader.pings > 0 {
                let _ = s.write_all(b"PONG\r\n");
                reader.pings = 0;
            }
        }
    }))
}

/// Counts MSG/HMSG frames in a NATS stream, skipping their payloads.
#[derive(Default)]
struct NatsCounter {
    /// A control line not yet ended.
    line: Vec<u8>,
    /// Payload bytes (with their CRLF) still to skip.
    skip: usize,
    pings: u64,
    ready: bool,
}

impl NatsCounter {
    /// Takes `data`; returns the messages and PONGs it completed.
    fn feed(&mut self, mut data: &[u8]) -> (u64, u64) {
        let (mut msgs, mut pongs) = (0, 0);
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            match data.iter().position(|&b| b == b'\n') {
                None => {
                    self.line.extend_from_slice(data);
                    break;
                }
                Some(i) => {
                    // The control line, from the buffer only when it was split across reads.
                    let whole;
                    let l: &[u8] = if self.line.is_empty() {
                        &data[..i]
                    } else {
                        self.line.extend_from_slice(&data[..i]);
                        whole = std::mem::take(&mut self.line);
                        &whole
                    };
                    if l.starts_with(b"MSG ") || l.starts_with(b"HMSG ") {
                        msgs += 1;
                        self.skip = last_number(l) + 2;
                    } else if l.starts_with(b"PONG") {
                        pongs += 1;
                    } else if l.starts_with(b"PING") {
                        self.pings += 1;
                    }
                    data = &data[i + 1..];
                }
            }
        }
        (msgs, pongs)
    }
}

/// The number that ends a control line (a MSG's payload size).
fn last_number(line: &[u8]) -> usize {
    let digits = line
        .iter()
        .rev()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .count();
    let end = line.len()
        - line
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    line[end - digits..end].iter().fold(0usize, |n, &d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    })
}

/// A TCP sink on 127.0.0.1:`port` counting the lines forwarded to it, over any number of
/// connections.
fn sink(port: u16, tally: &Arc<Tally>) -> Result<Vec<JoinHandle<()>>, BenchError> {
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        BenchError::Start(format!(
            "cannot listen on 127.0.0.1:{port} (--log-sink): {e}"
        ))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| BenchError::Start(e.to_string()))?;
    let tally = Arc::clone(tally);
    Ok(vec![std::thread::spawn(move || {
        let mut readers = Vec::new();
        while !tally.stop.load(Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let tally = Arc::clone(&tally);
                    readers.push(std::thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                        let mut buf = vec![0u8; 256 * 1024];
                        while !tally.stop.load(Relaxed) {
                            match s.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                                    if lines > 0 {
                                        tally.got(lines as u64);
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                    }));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        for r in readers {
            let _ = r.join();
        }
    })])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_across_any_split() {
        let stream = b"INFO {}\r\nPONG\r\nMSG a 1 5\r\nhello\r\nHMSG b 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\nMSG c 1 0\r\n\r\n";
        for split in 1..stream.len() {
            let mut c = NatsCounter::default();
            let (m1, p1) = c.feed(&stream[..split]);
            let (m2, p2) = c.feed(&stream[split..]);
            assert_eq!((m1 + m2, p1 + p2, c.pings), (3, 1, 1), "split at {split}");
        }
    }
}
