//! The IRC wire: a delivery to an IRC connection becomes `PRIVMSG` lines from the
//! message's author, to the subscription's tag (the channel name, `#room.lobby`, or the
//! connection's nick for direct messages). Messages a person sent from IRC carry their
//! `nick!user@host` in a header ([`MASK_HEADER`]); anything else comes from the
//! pseudo-user [`NATS_SOURCE`]. The payload is shown as text: split on line ends, each
//! line cut to fit the 512-byte limit on a character boundary, at most [`LINES_MAX`]
//! lines with a marker for what was cut; a payload that is mostly not text shows as
//! `[binary N bytes]`. On an aggregate channel (`#logs.*`) each line starts with the
//! concrete subject. Subjects that are not lower-case ASCII are not shown on IRC.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::close::CloseReason;
use crate::front::irc::line::LINE_BYTES_MAX;
use crate::front::irc::names::{is_pattern, Channel};
use crate::front::irc::presence::{Presence, PRESENCE_PREFIX};
use crate::logs::LEVEL_HEADER;
use crate::wire::{Framed, MsgView, Reply};

/// The header that carries an IRC author's nick (for NATS subscribers).
pub const NICK_HEADER: &str = "Shardcast-Irc-Nick";
/// The header that carries an IRC author's full `nick!user@host`.
pub const MASK_HEADER: &str = "Shardcast-Irc-Mask";
/// Who messages published by NATS clients come from.
pub const NATS_SOURCE: &str = "nats!nats@nats.shardcast";
/// The nick of [`NATS_SOURCE`]: reserved, listed in every channel's names.
pub const NATS_NICK: &str = "nats";
/// Lines one message may take; the last one says how much was cut.
pub const LINES_MAX: usize = 5;
/// The longest channel name an aggregate channel's prefix may name (a subject longer
/// than any channel name is not shown).
const SUBJECT_SHOWN_BYTES_MAX: usize = 200;

/// Appends `m` as IRC lines for the subscription tagged `tag`. The whole frame is in
/// the head; the tag's range is where the first line names it.
pub fn encode_head<'m>(out: &mut Vec<u8>, m: &MsgView<'m>, tag: &[u8]) -> Framed<'m> {
    let start = out.len();
    let mut tag_at = start..start;
    if m.subject.starts_with(PRESENCE_PREFIX.as_bytes()) {
        // A presence event: the line it stands for, whoever it is for.
        if let Some(line) = Presence::irc_line(m.payload()) {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    } else if let Some(text) = shown(
        m.subject,
        m.payload(),
        tag,
        m.header_len.map(|n| &m.body[..n]),
    ) {
        let source = m
            .header_len
            .and_then(|n| header_value(&m.body[..n], MASK_HEADER))
            .unwrap_or(NATS_SOURCE.as_bytes());
        tag_at = encode_lines(out, b"", source, tag, &text);
    }
    Framed {
        tag: tag_at,
        body: &[],
        trailer: b"",
    }
}

/// A kept message replayed to someone who joined its channel.
#[derive(Debug, Clone, Copy)]
pub struct Replayed<'a> {
    pub subject: &'a [u8],
    /// The IRC author's `nick!user@host`; None for NATS publishers.
    pub source: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// When it was received (RFC 3339, `2026-12-02T13:00:12.100Z`).
    pub ts: &'a str,
    /// The client ACKed `server-time`: the time goes in an `@time=` tag; otherwise the
    /// text starts with `[13:00:12]`.
    pub tagged: bool,
}

/// Appends `r` as the IRC lines of a replay to the channel `tag`, shown as a live
/// message would be, with its original time.
pub fn encode_replay(out: &mut Vec<u8>, r: &Replayed<'_>, tag: &[u8]) {
    let Some(text) = shown(r.subject, r.payload, tag, None) else {
        return;
    };
    let source = r.source.unwrap_or(NATS_SOURCE.as_bytes());
    if r.tagged {
        let time_tag = format!("@time={} ", r.ts);
        encode_lines(out, time_tag.as_bytes(), source, tag, &text);
    } else {
        let clock = r.ts.get(11..19).unwrap_or("");
        encode_lines(out, b"", source, tag, &format!("[{clock}] {text}"));
    }
}

/// Appends `text` as `PRIVMSG` lines from `source` to `tag`, each after `line_tags` (IRCv3
/// tags, which do not count towards the 512 bytes); returns where the first names `tag`.
fn encode_lines(
    out: &mut Vec<u8>,
    line_tags: &[u8],
    source: &[u8],
    tag: &[u8],
    text: &str,
) -> std::ops::Range<usize> {
    let mut tag_at = out.len()..out.len();
    // `:source PRIVMSG target :` then the text and CRLF, within 512 bytes.
    let head_len = 1 + source.len() + 9 + tag.len() + 2;
    let room = (LINE_BYTES_MAX - 2).saturating_sub(head_len);
    for (i, piece) in pieces(text, room).iter().enumerate() {
        out.extend_from_slice(line_tags);
        out.push(b':');
        out.extend_from_slice(source);
        out.extend_from_slice(b" PRIVMSG ");
        if i == 0 {
            tag_at = out.len()..out.len() + tag.len();
        }
        out.extend_from_slice(tag);
        out.extend_from_slice(b" :");
        out.extend_from_slice(piece.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    tag_at
}

/// The most bytes [`encode_head`] appends.
pub fn head_len_max() -> usize {
    LINES_MAX * LINE_BYTES_MAX
}

/// The text a subscriber tagged `tag` sees for a message on `subject`, prefixed with the subject on an
/// aggregate channel; None when nothing is shown (empty payload, or a subject IRC does
/// not address).
fn shown(subject: &[u8], payload: &[u8], tag: &[u8], headers: Option<&[u8]>) -> Option<String> {
    if payload.is_empty() {
        return None;
    }
    let aggregate = tag.first() == Some(&b'#') && is_pattern(&tag[1..]);
    if aggregate && Channel::for_subject(subject, SUBJECT_SHOWN_BYTES_MAX).is_none() {
        return None;
    }
    let mut text = if aggregate {
        format!("[{}] ", String::from_utf8_lossy(subject))
    } else {
        String::new()
    };
    let log = headers
        .filter(|h| header_value(h, LEVEL_HEADER).is_some())
        .and_then(|_| log_line(payload));
    if let Some(line) = log {
        text.push_str(&line);
    } else if is_binary(payload) {
        text.push_str(&format!("[binary {} bytes]", payload.len()));
    } else {
        text.push_str(&String::from_utf8_lossy(payload));
    }
    Some(text)
}

/// Whether log lines carry mIRC colour codes for their level (`logs.irc_colours`).
static LOG_COLOURS: AtomicBool = AtomicBool::new(true);

/// Turns the level colours of log lines on or off (at start and on reload).
pub fn set_log_colours(on: bool) {
    LOG_COLOURS.store(on, Ordering::Relaxed);
}

/// A routed log record as one readable line, `[12:01:02] ERROR api: db timeout`, the
/// level in its mIRC colour; None if `payload` is not a record.
fn log_line(payload: &[u8]) -> Option<String> {
    let r: crate::logs::Record = serde_json::from_slice(payload).ok()?;
    let clock = r.time.get(11..19).unwrap_or("");
    let level = if LOG_COLOURS.load(Ordering::Relaxed) {
        // mIRC colours: red, brown, orange, green, grey, light grey; \x03 ends.
        let colour = match r.level.as_str() {
            "FATAL" => "04",
            "ERROR" => "05",
            "WARN" => "07",
            "INFO" => "03",
            "DEBUG" => "14",
            _ => "15",
        };
        format!("\x03{colour}{}\x03", r.level)
    } else {
        r.level.clone()
    };
    let source = r.app.or(r.category).or(r.host);
    Some(match source {
        Some(s) => format!("[{clock}] {level} {s}: {}", r.message),
        None => format!("[{clock}] {level} {}", r.message),
    })
}

/// Mostly not text: a NUL, or more than one byte in ten a control character or not UTF-8.
fn is_binary(payload: &[u8]) -> bool {
    if payload.contains(&0) {
        return true;
    }
    let controls = payload
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f)
        .count();
    let invalid = match std::str::from_utf8(payload) {
        Ok(_) => 0,
        Err(_) => String::from_utf8_lossy(payload)
            .chars()
            .filter(|&c| c == char::REPLACEMENT_CHARACTER)
            .count(),
    };
    (controls + invalid) * 10 > payload.len()
}

/// `text` as at most [`LINES_MAX`] line texts of at most `room` bytes each: split on line
/// ends (empty lines dropped), long lines cut on character boundaries; if it does not
/// fit, the last line says how many bytes were not shown.
fn pieces(text: &str, room: usize) -> Vec<String> {
    let room = room.max(16);
    let mut out: Vec<String> = Vec::new();
    let mut shown = 0;
    let total: usize = text.len();
    'lines: for line in text.split('\n') {
        let mut rest = line.trim_end_matches('\r');
        shown += line.len() + 1 - rest.len();
        while !rest.is_empty() {
            if out.len() == LINES_MAX {
                break 'lines;
            }
            let mut cut = rest.len().min(room);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(rest[..cut].to_string());
            shown += cut;
            rest = &rest[cut..];
        }
    }
    let hidden = total.saturating_sub(shown);
    if hidden > 0 && out.len() == LINES_MAX {
        out.truncate(LINES_MAX - 1);
        let shown_now: usize = out.iter().map(String::len).sum();
        out.push(format!("[… +{} bytes]", total.saturating_sub(shown_now)));
    }
    out
}

/// The value of header `name` in a NATS header block (`NATS/1.0\r\nKey: Value\r\n…`).
pub fn header_value<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    block.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (key, value) = line.split_at(colon);
        key.eq_ignore_ascii_case(name.as_bytes())
            .then(|| value[1..].trim_ascii())
    })
}

/// Appends the IRC text of `reply`: the engine's replies that an IRC connection can get.
/// Its own commands are answered by the session, in numerics.
pub fn encode_reply(out: &mut Vec<u8>, reply: Reply<'_>) {
    match reply {
        // Verbose mode and NATS flushes do not exist on IRC.
        Reply::Ok | Reply::Flushed => {}
        Reply::Ping => out.extend_from_slice(b"PING :shardcast\r\n"),
        Reply::Refused(_) => {}
        Reply::Closing(reason) => {
            if let Some(text) = close_text(reason) {
                out.extend_from_slice(b"ERROR :Closing Link: (");
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b")\r\n");
            }
        }
        Reply::Err(text) => {
            out.extend_from_slice(b"ERROR :");
            out.extend_from_slice(&text.as_bytes()[..text.len().min(400)]);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// What an IRC client is told when the server closes it.
fn close_text(reason: CloseReason) -> Option<&'static str> {
    match reason {
        CloseReason::MaxConnections => Some("Too many connections"),
        CloseReason::StaleConnection => Some("Ping timeout"),
        CloseReason::ServerShutdown => Some("Server shutting down"),
        CloseReason::ExcessFlood => Some("Excess Flood"),
        CloseReason::RegistrationTimeout => Some("Registration timeout"),
        CloseReason::IdleTimeout => Some("Idle timeout"),
        CloseReason::Protocol(_) => Some("Protocol error"),
        CloseReason::AuthViolation => Some("Bad password"),
        CloseReason::AuthBanned => Some("Too many failed logins from your host, try again later"),
        CloseReason::MaxConnectionsPerIp => Some("Too many connections from your host"),
        CloseReason::AcceptRate => Some("Connecting too fast, try again later"),
        _ => None,
    }
}

/// The most bytes [`encode_reply`] appends.
pub fn reply_len_max(reply: Reply<'_>) -> usize {
    match reply {
        Reply::Err(text) => text.len().min(400) + 9,
        Reply::Closing(reason) => close_text(reason).map_or(0, |t| t.len() + 25),
        _ => 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(subject: &str, header: Option<&str>, payload: &[u8], tag: &str) -> String {
        let mut body = Vec::new();
        let header_len = header.map(|h| {
            body.extend_from_slice(h.as_bytes());
            h.len()
        });
        body.extend_from_slice(payload);
        let m = MsgView {
            subject: subject.as_bytes(),
            reply: None,
            header_len,
            body: &body,
        };
        let mut out = b"x".to_vec();
        let framed = encode_head(&mut out, &m, tag.as_bytes());
        assert!(framed.body.is_empty() && framed.trailer.is_empty());
        assert!(out.len() - 1 <= head_len_max());
        if out.len() > 1 {
            assert_eq!(&out[framed.tag.clone()], tag.as_bytes());
        }
        for line in out[1..].split_inclusive(|&b| b == b'\n') {
            assert!(line.len() <= LINE_BYTES_MAX, "{}", line.len());
        }
        String::from_utf8(out[1..].to_vec()).expect("utf8")
    }

    #[test]
    fn a_nats_message_comes_from_the_pseudo_user() {
        assert_eq!(
            render("room.lobby", None, b"hello", "#room.lobby"),
            ":nats!nats@nats.shardcast PRIVMSG #room.lobby :hello\r\n"
        );
    }

    #[test]
    fn an_irc_message_comes_from_its_author() {
        let h = "NATS/1.0\r\nShardcast-Irc-Nick: alice\r\nShardcast-Irc-Mask: alice!~a@127.0.0.1\r\n\r\n";
        assert_eq!(
            render("room.lobby", Some(h), b"hi all", "#room.lobby"),
            ":alice!~a@127.0.0.1 PRIVMSG #room.lobby :hi all\r\n"
        );
    }

    #[test]
    fn lines_and_aggregate_channels() {
        assert_eq!(
            render("logs.error", None, b"one\r\n\r\ntwo\n", "#logs.*"),
            ":nats!nats@nats.shardcast PRIVMSG #logs.* :[logs.error] one\r\n\
             :nats!nats@nats.shardcast PRIVMSG #logs.* :two\r\n"
        );
        // Not IRC-addressable: not shown on the aggregate channel.
        assert_eq!(render("logs.Error", None, b"x", "#logs.*"), "");
        assert_eq!(render("room", None, b"", "#room"), "");
    }

    #[test]
    fn binary_payloads_are_summarised() {
        assert_eq!(
            render("b", None, &[0, 1, 2, 255], "#b"),
            ":nats!nats@nats.shardcast PRIVMSG #b :[binary 4 bytes]\r\n"
        );
        // A few odd bytes in text are still text.
        let text = render("b", None, "café au lait, s'il vous plaît".as_bytes(), "#b");
        assert!(text.contains("café"), "{text}");
    }

    #[test]
    fn long_payloads_are_cut_with_a_marker() {
        let long = "é".repeat(2000);
        let out = render("big", None, long.as_bytes(), "#big");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), LINES_MAX);
        assert!(lines[LINES_MAX - 1].contains("[… +"), "{}", lines[4]);
        let shown: usize = lines[..LINES_MAX - 1]
            .iter()
            .map(|l| l.split_once(" :").map_or(0, |(_, t)| t.len()))
            .sum();
        assert!(
            lines[LINES_MAX - 1].contains(&format!("+{} bytes", long.len() - shown)),
            "{}",
            lines[4]
        );
        // A payload that fits exactly is not marked.
        let five = "a\nb\nc\nd\ne";
        assert!(!render("f", None, five.as_bytes(), "#f").contains('…'));
    }

    #[test]
    fn replays_carry_their_time_as_a_tag_or_in_the_text() {
        let r = Replayed {
            subject: b"room",
            source: Some(b"al!~al@h"),
            payload: b"hi\nthere",
            ts: "2026-12-02T13:00:12.100Z",
            tagged: true,
        };
        let mut out = Vec::new();
        encode_replay(&mut out, &r, b"#room");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "@time=2026-12-02T13:00:12.100Z :al!~al@h PRIVMSG #room :hi\r\n\
             @time=2026-12-02T13:00:12.100Z :al!~al@h PRIVMSG #room :there\r\n"
        );
        out.clear();
        let plain = Replayed {
            source: None,
            tagged: false,
            payload: b"hi",
            ..r
        };
        encode_replay(&mut out, &plain, b"#room");
        assert_eq!(
            String::from_utf8_lossy(&out),
            ":nats!nats@nats.shardcast PRIVMSG #room :[13:00:12] hi\r\n"
        );
    }

    #[test]
    fn log_records_read_as_one_coloured_line() {
        let record = r#"{"time":"2026-12-02T12:01:02.000Z","level":"ERROR","app":"api","message":"db timeout after 300ms"}"#;
        let header = "NATS/1.0\r\nShardcast-Log-Level: ERROR\r\n\r\n";
        let line = render("logs.error", Some(header), record.as_bytes(), "#logs.error");
        assert_eq!(
            line,
            ":nats!nats@nats.shardcast PRIVMSG #logs.error :[12:01:02] \x0305ERROR\x03 api: db timeout after 300ms\r\n"
        );
        // Without the header, the JSON is shown as it is.
        let plain = render("logs.error", None, record.as_bytes(), "#logs.error");
        assert!(plain.contains(r#":{"time""#), "{plain}");
    }

    #[test]
    fn header_values() {
        let block = b"NATS/1.0\r\nA: 1\r\nshardcast-irc-nick:  bob \r\n\r\n";
        assert_eq!(header_value(block, NICK_HEADER), Some(&b"bob"[..]));
        assert_eq!(header_value(block, "B"), None);
    }
}
