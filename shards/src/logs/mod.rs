//! Log streaming: logs come in, become one canonical JSON record each
//! ([`record::Record`]), and routing rules ([`rules::Rules`]) publish them to subjects
//! (`logs.error`, `logs.security`, `logs.all`…) that people watch from IRC channels or
//! NATS subscriptions.
//!
//! Inputs today: anything published to `logs.ingest` or `logs.ingest.<app>` (a JSON or
//! text line; the subject's last token is the app when the record names none), taken by
//! the receiving shard's log service ([`service`], a queue group preferring local
//! members), and the plain TCP line port (`front::logs`), one log per line. Each routed
//! copy is a publish with the record as JSON and a `Shardcast-Log-Level` header.

pub mod record;
pub mod rules;
pub mod service;
pub mod syslog;
pub mod udp;

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;

use crate::conn::Conn;

pub use record::{parse_line, ParseError, Record};
pub use rules::{RouteConfig, RuleCounts, RuleError, RuleRow, Rules};

/// The subjects logs are published to for routing.
pub const INGEST_SUBJECT: &str = "logs.ingest";
/// The header carrying a routed record's level.
pub const LEVEL_HEADER: &str = "Shardcast-Log-Level";

/// What `[logs]` configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsConfig {
    /// Route what is published to `logs.ingest(.>)`.
    pub enabled: bool,
    pub routes: Vec<RouteConfig>,
    /// Where every record also goes (None: nowhere else).
    pub all_subject: Option<String>,
    /// The largest log accepted, in bytes.
    pub record_bytes_max: usize,
    /// The plain TCP line port (0: a free one), if any.
    pub tcp_port: Option<u16>,
    /// The syslog ports, TCP and UDP (0: a free one), if any.
    pub syslog_tcp_port: Option<u16>,
    pub syslog_udp_port: Option<u16>,
    /// IRC watchers see the level in its mIRC colour.
    pub irc_colours: bool,
    /// The syslog UDP sockets' receive buffer (SO_RCVBUF), if not the kernel's default.
    pub syslog_udp_buffer_bytes: Option<usize>,
    /// The networks the log ports take logs from (empty: any).
    pub allow_from: Vec<ipnet::IpNet>,
}

impl LogsConfig {
    /// Whether the log ports take logs from `ip` (an IPv4 address mapped into IPv6
    /// counts as the IPv4 address).
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.allow_from.is_empty() || self.allow_from.iter().any(|n| n.contains(&ip))
    }
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: false,
            routes: Vec::new(),
            all_subject: Some("logs.all".into()),
            record_bytes_max: 16 * 1024,
            tcp_port: None,
            syslog_tcp_port: None,
            syslog_udp_port: None,
            irc_colours: true,
            syslog_udp_buffer_bytes: None,
            allow_from: Vec::new(),
        }
    }
}

/// True for the subjects a routed record must never go to (they would be routed again).
pub fn is_ingest(subject: &str) -> bool {
    subject == INGEST_SUBJECT
        || subject
            .strip_prefix(INGEST_SUBJECT)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Where logs come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogInput {
    /// Published to `logs.ingest(.>)` by NATS clients (or IRC, or anything).
    Nats,
    /// The plain TCP line port.
    Tcp,
    SyslogTcp,
    SyslogUdp,
}

impl LogInput {
    pub const ALL: [LogInput; 4] = [
        LogInput::Nats,
        LogInput::Tcp,
        LogInput::SyslogTcp,
        LogInput::SyslogUdp,
    ];

    /// Stable name (JSON keys, metric labels).
    pub fn name(self) -> &'static str {
        match self {
            LogInput::Nats => "nats",
            LogInput::Tcp => "tcp",
            LogInput::SyslogTcp => "syslog_tcp",
            LogInput::SyslogUdp => "syslog_udp",
        }
    }
}

/// What one input did on one shard.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogCounts {
    /// Logs parsed into records.
    pub received: u64,
    /// Inputs that were not a log (bad JSON, not UTF-8, too long, a bad frame).
    pub malformed: u64,
    /// Copies published (a record routed to three subjects counts three).
    pub routed: u64,
    /// Logs lost before they could be read: datagrams the kernel dropped because the
    /// socket's buffer was full (UDP); messages to `logs.ingest` lost when the log
    /// service was cut off as a slow consumer (NATS; its publishers are paced first, see
    /// `stall_publishers`). TCP pushes back instead and drops nothing.
    pub dropped: u64,
    /// Connections (TCP) or datagrams (UDP) from addresses outside `logs.allow_from`.
    pub refused: u64,
}

impl LogCounts {
    pub fn add(&mut self, other: &LogCounts) {
        self.received += other.received;
        self.malformed += other.malformed;
        self.routed += other.routed;
        self.dropped += other.dropped;
        self.refused += other.refused;
    }
}

/// One shard's log counters, for monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSnapshot {
    /// By input, in [`LogInput::ALL`] order.
    pub inputs: [LogCounts; 4],
    /// The rules in force, with their counts since they were loaded.
    pub rules: Vec<RuleRow>,
}

/// What a shard's log inputs share: the settings, the rules in force, the counts.
#[derive(Debug)]
pub struct LogShard {
    pub cfg: LogsConfig,
    pub rules: RefCell<Rc<Rules>>,
    counts: [Cell<LogCounts>; 4],
    /// The shard's syslog UDP socket, whose kernel drop count is read on demand.
    udp_fd: Cell<Option<RawFd>>,
    /// The log service's internal client, whose shed deliveries are NATS drops, and
    /// those of the clients it had before (if it had to start again).
    service: RefCell<Option<Rc<Conn>>>,
    service_dropped_before: Cell<u64>,
}

impl LogShard {
    pub fn new(cfg: LogsConfig, rules: Rules) -> Self {
        LogShard {
            cfg,
            rules: RefCell::new(Rc::new(rules)),
            counts: Default::default(),
            udp_fd: Cell::new(None),
            service: RefCell::new(None),
            service_dropped_before: Cell::new(0),
        }
    }

    pub fn count(&self, input: LogInput, f: impl FnOnce(&mut LogCounts)) {
        let cell = &self.counts[input as usize];
        let mut c = cell.get();
        f(&mut c);
        cell.set(c);
    }

    /// Notes the syslog UDP socket (open as long as the shard runs).
    pub fn set_udp_socket(&self, fd: RawFd) {
        self.udp_fd.set(Some(fd));
    }

    /// Notes the log service's client (keeping the drops of the one it replaces).
    pub fn set_service(&self, conn: Rc<Conn>) {
        if let Some(old) = self.service.borrow_mut().replace(conn) {
            let before = self.service_dropped_before.get();
            self.service_dropped_before
                .set(before + old.outbox.tally().dropped_total());
        }
    }

    /// Routes `record` by the rules in force, counting it as `input`'s.
    pub fn route(&self, input: LogInput, record: &Record) -> Routed {
        let rules = Rc::clone(&self.rules.borrow());
        let routed = route_record(&rules, record);
        let n = routed.subjects.len() as u64;
        self.count(input, |c| {
            c.received += 1;
            c.routed += n;
        });
        routed
    }

    /// The counters now.
    pub fn snapshot(&self) -> LogSnapshot {
        let mut inputs = self.counts.each_ref().map(Cell::get);
        if let Some(conn) = self.service.borrow().as_ref() {
            inputs[LogInput::Nats as usize].dropped =
                self.service_dropped_before.get() + conn.outbox.tally().dropped_total();
        }
        if let Some(fd) = self.udp_fd.get() {
            inputs[LogInput::SyslogUdp as usize].dropped = udp::kernel_drops(fd);
        }
        LogSnapshot {
            inputs,
            rules: self.rules.borrow().rows(),
        }
    }
}

/// A record ready to publish: where to, its header block and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub subjects: Vec<String>,
    pub headers: std::borrow::Cow<'static, str>,
    pub body: Vec<u8>,
}

impl Routed {
    /// Publishes the record from `conn` to every subject it goes to.
    pub fn publish(&self, router: &mut crate::route::Router, conn: &Rc<Conn>) {
        crate::front::publish_to_each(
            router,
            conn,
            &self.subjects,
            Some(self.headers.as_bytes()),
            &self.body,
        );
    }
}

/// Routes `record` by `rules`: the subjects it goes to (never an ingest subject), the
/// level header and the JSON.
fn route_record(rules: &Rules, record: &Record) -> Routed {
    let subjects = rules.route(record);
    let mut body = Vec::with_capacity(record.message.len() + 160);
    if serde_json::to_writer(&mut body, record).is_err() {
        body.clear();
    }
    Routed {
        subjects,
        headers: level_headers(&record.level),
        body,
    }
}

/// The header block of a record at `level` (made once for the six levels).
fn level_headers(level: &str) -> std::borrow::Cow<'static, str> {
    macro_rules! block {
        ($l:literal) => {
            concat!("NATS/1.0\r\nShardcast-Log-Level: ", $l, "\r\n\r\n")
        };
    }
    let fixed = match level {
        "TRACE" => block!("TRACE"),
        "DEBUG" => block!("DEBUG"),
        "INFO" => block!("INFO"),
        "WARN" => block!("WARN"),
        "ERROR" => block!("ERROR"),
        "FATAL" => block!("FATAL"),
        other => {
            return format!("NATS/1.0\r\n{LEVEL_HEADER}: {other}\r\n\r\n").into();
        }
    };
    fixed.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_header_blocks_are_what_format_makes() {
        for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OTHER"] {
            assert_eq!(
                level_headers(level),
                format!("NATS/1.0\r\n{LEVEL_HEADER}: {level}\r\n\r\n")
            );
        }
    }
}
