//! The canonical log record every input becomes, and the plain line formats: JSON
//! (`{"level":…,"category":…,"message":…, other fields kept}`) or text
//! (`LEVEL [category] message`, the category optional).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The levels, in canonical spelling; other spellings are mapped onto these.
pub const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// One log record, as NATS watchers get it (JSON) and rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, UTC: the input's own time if it had one, else when it was received.
    pub time: String,
    /// One of [`LEVELS`].
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub message: String,
    /// Every other field the input carried.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

/// Why an input is not a log record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the log is empty")]
    Empty,
    #[error("the log is {len} bytes, over the {max}-byte limit (logs.max_record_bytes)")]
    TooLarge { len: usize, max: usize },
    #[error("the log is not UTF-8 text")]
    NotUtf8,
    #[error("the log is not valid JSON: {0}")]
    BadJson(String),
    #[error("a JSON log must be an object with a \"message\" string")]
    NoMessage,
    #[error("a syslog frame's octet count is not a number followed by a space")]
    BadFrame,
}

/// The canonical spelling of level `word`, if it names one (any case; `WARNING`,
/// `ERR`, `CRIT`/`CRITICAL`, `EMERG`, `ALERT`, `NOTICE` are mapped).
pub fn canonical_level(word: &str) -> Option<&'static str> {
    let upper = word.to_ascii_uppercase();
    let level = match upper.as_str() {
        "TRACE" => "TRACE",
        "DEBUG" => "DEBUG",
        "INFO" | "NOTICE" => "INFO",
        "WARN" | "WARNING" => "WARN",
        "ERROR" | "ERR" => "ERROR",
        "FATAL" | "CRIT" | "CRITICAL" | "ALERT" | "EMERG" | "PANIC" => "FATAL",
        _ => return None,
    };
    Some(level)
}

/// Parses one line (JSON or text) received at `now` (RFC 3339) into a record of at most
/// `max_bytes`.
pub fn parse_line(line: &[u8], now: &str, max_bytes: usize) -> Result<Record, ParseError> {
    if line.len() > max_bytes {
        return Err(ParseError::TooLarge {
            len: line.len(),
            max: max_bytes,
        });
    }
    let text = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let text = text.trim_matches(|c: char| c == '\r' || c == '\n' || c == ' ' || c == '\t');
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    if text.starts_with('{') {
        parse_json(text, now)
    } else {
        Ok(parse_text(text, now))
    }
}

fn parse_json(text: &str, now: &str) -> Result<Record, ParseError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ParseError::BadJson(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(ParseError::NoMessage);
    };
    let Some(Value::String(message)) = fields.remove("message").or_else(|| fields.remove("msg"))
    else {
        return Err(ParseError::NoMessage);
    };
    let mut take = |key: &str| match fields.remove(key) {
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    let level = take("level")
        .and_then(|l| canonical_level(&l))
        .unwrap_or("INFO")
        .to_string();
    let time = take("time")
        .or_else(|| take("timestamp"))
        .unwrap_or_else(|| now.to_string());
    Ok(Record {
        time,
        level,
        category: take("category"),
        host: take("host"),
        app: take("app"),
        message,
        fields,
    })
}

/// `LEVEL [category] message`; a line that does not start with a level is all message,
/// at INFO.
fn parse_text(text: &str, now: &str) -> Record {
    let (first, rest) = text.split_once(' ').unwrap_or((text, ""));
    let (level, rest) = match canonical_level(first.trim_end_matches(':')) {
        Some(level) => (level, rest.trim_start()),
        None => ("INFO", text),
    };
    let (category, message) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((category, message)) if !category.is_empty() => {
            (Some(category.to_string()), message.trim_start())
        }
        _ => (None, rest),
    };
    Record {
        time: now.to_string(),
        level: level.to_string(),
        category,
        host: None,
        app: None,
        message: message.to_string(),
        fields: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-02T12:01:02.000Z";

    #[test]
    fn text_lines() {
        let r = parse_line(b"ERROR [db] timeout after 300ms\r\n", NOW, 1024).expect("ok");
        assert_eq!(
            (r.level.as_str(), r.category.as_deref(), r.message.as_str()),
            ("ERROR", Some("db"), "timeout after 300ms")
        );
        let r = parse_line(b"warning: disk at 91%", NOW, 1024).expect("ok");
        assert_eq!(
            (r.level.as_str(), r.category, r.message.as_str()),
            ("WARN", None, "disk at 91%")
        );
        let r = parse_line(b"just words", NOW, 1024).expect("ok");
        assert_eq!(
            (r.level.as_str(), r.message.as_str()),
            ("INFO", "just words")
        );
        assert_eq!(r.time, NOW);
    }

    #[test]
    fn json_lines_keep_other_fields() {
        let line = br#"{"level":"err","category":"SECURITY","message":"bad password","app":"api","user":"bob","n":3}"#;
        let r = parse_line(line, NOW, 1024).expect("ok");
        assert_eq!(r.level, "ERROR");
        assert_eq!(r.category.as_deref(), Some("SECURITY"));
        assert_eq!(r.app.as_deref(), Some("api"));
        assert_eq!(r.fields["user"], "bob");
        assert_eq!(r.fields["n"], 3);
        let json = serde_json::to_string(&r).expect("json");
        assert!(json.contains(r#""fields":{"n":3,"user":"bob"}"#), "{json}");
    }

    #[test]
    fn malformed_input_says_why() {
        assert_eq!(parse_line(b"  \r\n", NOW, 10), Err(ParseError::Empty));
        assert!(matches!(
            parse_line(b"0123456789ab", NOW, 10),
            Err(ParseError::TooLarge { len: 12, max: 10 })
        ));
        assert_eq!(parse_line(&[0xff, 0xfe], NOW, 10), Err(ParseError::NotUtf8));
        assert!(matches!(
            parse_line(b"{nope", NOW, 100),
            Err(ParseError::BadJson(_))
        ));
        assert_eq!(
            parse_line(br#"{"level":"INFO"}"#, NOW, 100),
            Err(ParseError::NoMessage)
        );
    }
}
