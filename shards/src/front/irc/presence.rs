//! Presence: who comes and goes on a channel, as JSON events on `$SC.PRESENCE.<subject>`.
//! An IRC session publishes one when its user joins, parts, quits or changes nick; the
//! channel's IRC members subscribe to the subject and their wire shows the event as the
//! IRC line it stands for (`:alice!~a@host JOIN #room`), so presence crosses shards over
//! the rings like any message, and NATS clients can watch it too:
//!
//! ```json
//! {"event":"join","nick":"alice","mask":"alice!~alice@127.0.0.1","channel":"#room","ts":"2026-12-02T10:00:00.123Z"}
//! ```
//!
//! `part` and `quit` add `"reason"`, `nick` adds `"new"` (the new nick).

use serde::{Deserialize, Serialize};

/// The longest reason shown: with the mask and channel it stays within a line.
const REASON_CHARS_MAX: usize = 64;

/// The longest topic a `TOPIC` line shows, in bytes: with a mask and channel of at most
/// 200 bytes (longer ones are not shown) the line stays within 512 bytes.
pub const TOPIC_BYTES_MAX: usize = 300;

/// The subject prefix presence events are published under.
pub const PRESENCE_PREFIX: &str = "$SC.PRESENCE.";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Join,
    Part,
    Quit,
    Nick,
    /// The channel's topic was set (`topic`; empty clears it).
    Topic,
}

/// One presence event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub event: Event,
    pub nick: String,
    /// `nick!user@host`, the source IRC clients show.
    pub mask: String,
    pub channel: String,
    /// When, RFC 3339 in UTC with milliseconds.
    pub ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The new nick of a `nick` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// The real name a `join` event's user gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realname: Option<String>,
    /// The new topic of a `topic` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The id of the node the user is on (its `server_id`), for nodes linked through a
    /// hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// The presence subject of `subject`.
pub fn subject_for(subject: &str) -> String {
    format!("{PRESENCE_PREFIX}{subject}")
}

impl Presence {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The IRC line this event stands for, without its line end; None for a payload
    /// that is not a presence event.
    pub fn irc_line(payload: &[u8]) -> Option<String> {
        let p: Presence = serde_json::from_slice(payload).ok()?;
        let safe = |s: &str| !s.is_empty() && !s.bytes().any(|b| b.is_ascii_whitespace() || b == 0);
        if !safe(&p.mask) || !safe(&p.channel) {
            return None;
        }
        let reason: String = p
            .reason
            .as_deref()
            .unwrap_or("")
            .replace(['\r', '\n', '\0'], " ")
            .chars()
            .take(REASON_CHARS_MAX)
            .collect();
        if p.mask.len() + p.channel.len() > 200 {
            return None;
        }
        Some(match p.event {
            Event::Join => format!(":{} JOIN {}", p.mask, p.channel),
            Event::Part if reason.is_empty() => format!(":{} PART {}", p.mask, p.channel),
            Event::Part => format!(":{} PART {} :{reason}", p.mask, p.channel),
            Event::Quit => format!(":{} QUIT :{reason}", p.mask),
            Event::Nick => {
                let new = p.new.filter(|n| safe(n))?;
                format!(":{} NICK :{new}", p.mask)
            }
            Event::Topic => {
                let topic = clean_topic(&p.topic.unwrap_or_default(), TOPIC_BYTES_MAX);
                format!(":{} TOPIC {} :{topic}", p.mask, p.channel)
            }
        })
    }
}

/// `topic` without line ends, cut to `max_bytes` (at most [`TOPIC_BYTES_MAX`]) on a
/// character boundary.
pub fn clean_topic(topic: &str, max_bytes: usize) -> String {
    let mut t = topic.replace(['\r', '\n', '\0'], " ");
    let mut cut = t.len().min(max_bytes.min(TOPIC_BYTES_MAX));
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    t.truncate(cut);
    t
}

/// Now, as RFC 3339 in UTC with milliseconds (`2026-12-02T10:00:00.123Z`).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: Event) -> Presence {
        Presence {
            event,
            nick: "al".into(),
            mask: "al!~al@h".into(),
            channel: "#room".into(),
            ts: now_rfc3339(),
            reason: Some("bye".into()),
            new: Some("al2".into()),
            realname: None,
            topic: Some("news".into()),
            node: None,
        }
    }

    #[test]
    fn events_become_irc_lines() {
        let line = |e| Presence::irc_line(&event(e).to_json());
        assert_eq!(line(Event::Join).as_deref(), Some(":al!~al@h JOIN #room"));
        assert_eq!(
            line(Event::Part).as_deref(),
            Some(":al!~al@h PART #room :bye")
        );
        assert_eq!(line(Event::Quit).as_deref(), Some(":al!~al@h QUIT :bye"));
        assert_eq!(line(Event::Nick).as_deref(), Some(":al!~al@h NICK :al2"));
        assert_eq!(
            line(Event::Topic).as_deref(),
            Some(":al!~al@h TOPIC #room :news")
        );
        assert_eq!(Presence::irc_line(b"not json"), None);
        let mut bad = event(Event::Join);
        bad.mask = "a b".into();
        assert_eq!(Presence::irc_line(&bad.to_json()), None);
    }

    #[test]
    fn the_json_is_what_nats_clients_read() {
        let mut e = event(Event::Join);
        e.reason = None;
        e.new = None;
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("json");
        assert_eq!(v["event"], "join");
        assert_eq!(v["nick"], "al");
        assert!(v.get("reason").is_none());
        let ts = v["ts"].as_str().expect("ts");
        assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
    }
}
