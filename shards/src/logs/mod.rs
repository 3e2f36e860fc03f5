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
use std::rc::Rc;

pub use record::{parse_line, ParseError, Record};
pub use rules::{RouteConfig, RuleError, Rules};

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

/// What one shard's log inputs did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogCounts {
    pub received: u64,
    pub malformed: u64,
    /// Copies published (a record routed to three subjects counts three).
    pub routed: u64,
}

/// What a shard's log inputs share: the settings, the rules in force, the counts.
#[derive(Debug)]
pub struct LogShard {
    pub cfg: LogsConfig,
    pub rules: RefCell<Rc<Rules>>,
    pub counts: Cell<LogCounts>,
}

impl LogShard {
    pub fn new(cfg: LogsConfig, rules: Rules) -> Self {
        LogShard {
            cfg,
            rules: RefCell::new(Rc::new(rules)),
            counts: Cell::new(LogCounts::default()),
        }
    }

    pub fn count(&self, f: impl FnOnce(&mut LogCounts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }
}

/// A record ready to publish: where to, its header block and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub subjects: Vec<String>,
    pub headers: String,
    pub body: Vec<u8>,
}

/// Routes `record` by `rules`: the subjects it goes to (never an ingest subject), the
/// level header and the JSON.
pub fn route_record(rules: &Rules, record: &Record, matched: &mut Vec<bool>) -> Routed {
    let mut subjects = rules.route(record, matched);
    subjects.retain(|s| !is_ingest(s));
    Routed {
        subjects,
        headers: format!("NATS/1.0\r\n{LEVEL_HEADER}: {}\r\n\r\n", record.level),
        body: serde_json::to_vec(record).unwrap_or_default(),
    }
}
