//! History: the last messages of subjects people watch, kept so that someone who joins
//! sees what was said before. Each subject's history lives on one owner shard (a hash
//! of the subject, [`crate::service::owner_of`]), kept by that shard's history service
//! ([`service`]), an internal client that subscribes the subject like any subscriber,
//! so messages reach it over the rings like any publish.
//!
//! A subject is kept when an IRC channel for it is joined (the owner sees the presence
//! event) or when it matches one of the configured `history.subjects` patterns (every
//! shard subscribes the pattern and keeps the subjects it owns). Kept subjects stay kept
//! while they are written, until the subject bound (`history.subjects_max`) drops the
//! one written least recently.
//!
//! Anyone reads a history with a request to `$SC.HISTORY.<subject>`: the owner answers
//! with a JSON array of the kept messages, oldest first ([`EntryJson`]); an IRC `JOIN`
//! makes such a request for the joiner, whose shard replays the answer after 366.

pub mod service;
pub mod store;

use serde::{Deserialize, Serialize};

pub use store::{Entry, Store};

use crate::wire::irc::{header_value, MASK_HEADER, NICK_HEADER};

/// Requests for a subject's history: `$SC.HISTORY.<subject>`.
pub const HISTORY_PREFIX: &str = "$SC.HISTORY.";

/// What history keeps; `[history]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Messages kept per subject (0: history is off).
    pub messages: usize,
    /// Bytes kept per subject, headers and a fixed overhead per message included.
    pub subject_bytes_max: usize,
    /// Bytes kept in all, split evenly between shards.
    pub budget_bytes: usize,
    /// Subjects kept in all, split evenly between shards.
    pub subjects_max: usize,
    /// Subjects (wildcards allowed) kept whether or not an IRC channel has them.
    pub subjects: Vec<String>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            messages: 100,
            subject_bytes_max: 256 * 1024,
            budget_bytes: 64 * 1024 * 1024,
            subjects_max: 10_000,
            subjects: Vec::new(),
        }
    }
}

impl HistoryConfig {
    /// True when history is kept at all.
    pub fn is_on(&self) -> bool {
        self.messages > 0
    }
}

/// One kept message as a `$SC.HISTORY` answer gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryJson {
    pub subject: String,
    /// When the owner shard received it (RFC 3339, UTC, milliseconds).
    pub ts: String,
    /// The IRC author's nick, for messages people sent from IRC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// The IRC author's `nick!user@host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// The payload, when it is UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The payload in base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
}

impl EntryJson {
    pub fn of(subject: &str, e: &Entry) -> Self {
        use base64::Engine;
        let header = |name| {
            e.headers
                .as_ref()
                .and_then(|h| header_value(h, name))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let (payload, payload_base64) = match std::str::from_utf8(&e.payload) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&e.payload)),
            ),
        };
        EntryJson {
            subject: subject.to_string(),
            ts: rfc3339_millis(e.at),
            nick: header(NICK_HEADER),
            mask: header(MASK_HEADER),
            payload,
            payload_base64,
        }
    }

    /// The payload's bytes (decoded from base64 if need be).
    pub fn payload_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        match (&self.payload, &self.payload_base64) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

/// `subject`'s history as the JSON array an answer carries: the newest messages that fit
/// in `bytes_max` (the largest payload clients accept), oldest first.
pub fn answer<'a>(
    subject: &str,
    entries: impl DoubleEndedIterator<Item = &'a Entry>,
    bytes_max: usize,
) -> Vec<u8> {
    let mut items: Vec<Vec<u8>> = Vec::new();
    // `[`, `]` and a comma between items.
    let mut len = 2;
    for e in entries.rev() {
        let item = serde_json::to_vec(&EntryJson::of(subject, e)).unwrap_or_default();
        let more = item.len() + usize::from(!items.is_empty());
        if len + more > bytes_max {
            break;
        }
        len += more;
        items.push(item);
    }
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, item) in items.iter().rev().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out
}

/// `at` as `2026-12-02T13:00:00.123Z`.
pub fn rfc3339_millis(at: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::{Duration, SystemTime};

    fn entry(headers: Option<&str>, payload: &[u8]) -> Entry {
        Entry {
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_680_412_100),
            headers: headers.map(|h| Bytes::copy_from_slice(h.as_bytes())),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn entries_show_author_time_and_payload() {
        let e = entry(
            Some("NATS/1.0\r\nShardcast-Irc-Nick: al\r\nShardcast-Irc-Mask: al!~al@h\r\n\r\n"),
            b"hi",
        );
        let json = String::from_utf8(answer("room", [&e].into_iter(), 1 << 20)).expect("utf8");
        assert_eq!(
            json,
            r#"[{"subject":"room","ts":"2025-12-02T13:00:12.100Z","nick":"al","mask":"al!~al@h","payload":"hi"}]"#
        );
        let bin = EntryJson::of("room", &entry(None, &[0xff, 0, 1]));
        assert_eq!(bin.payload, None);
        assert_eq!(bin.payload_bytes(), [0xff, 0, 1]);
    }

    #[test]
    fn answers_keep_the_newest_that_fit() {
        let es: Vec<Entry> = (0..10)
            .map(|i| entry(None, format!("m{i}").as_bytes()))
            .collect();
        let all = answer("s", es.iter(), 1 << 20);
        let parsed: Vec<EntryJson> = serde_json::from_slice(&all).expect("json");
        assert_eq!(parsed.len(), 10);
        let cut = answer("s", es.iter(), all.len() / 2);
        assert!(cut.len() <= all.len() / 2);
        let parsed: Vec<EntryJson> = serde_json::from_slice(&cut).expect("json");
        assert!(parsed.len() < 10 && !parsed.is_empty());
        assert_eq!(parsed.last().and_then(|e| e.payload.as_deref()), Some("m9"));
        assert_eq!(answer("s", es.iter(), 1), b"[]");
    }
}
