//! Log streaming: logs come in, become one canonical JSON record each
//! ([`record::Record`]), and routing rules ([`rules::Rules`]) publish them to subjects
//! (`logs.error`, `logs.security`, `logs.all`…) that people watch from IRC channels or
//! NATS subscriptions.
//!
//! Inputs today: anything published to `logs.ingest` or `logs.ingest.<app>` (a JSON or
//! text line; the subject's last token is the app when the record names none), taken by
//! one shard's log service ([`service`], a queue group) and routed there. Each routed
//! copy is a publish with the record as JSON and a `Shardcast-Log-Level` header.

pub mod record;
pub mod rules;
pub mod service;

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
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: false,
            routes: Vec::new(),
            all_subject: Some("logs.all".into()),
            record_bytes_max: 16 * 1024,
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
