//! The NATS client wire: deliveries as `MSG`/`HMSG` frames tagged with the subscription's
//! sid, replies as `+OK`, `PONG`, `PING` and `-ERR '…'`. The byte-level encoders live in
//! [`crate::protocol`]; this module decides which one a delivery or reply gets.

use crate::close::CloseReason;
use crate::protocol::errors::{encode_err, OK, PING, PONG};
use crate::protocol::msg::encode_msg_line;
use crate::wire::{Framed, MsgView, Refusal, Reply};

/// Longest MSG/HMSG control line apart from subject, sid and reply: the verb, four
/// separators, two 20-digit numbers and CRLF.
const MSG_LINE_FIXED_BYTES_MAX: usize = 5 + 4 + 2 * 20 + 2;

/// Appends the control line of `m`'s frame for subscription `sid`; the body and CRLF
/// follow. A client without `headers` gets the payload alone, as a `MSG`.
pub fn encode_head<'m>(
    out: &mut Vec<u8>,
    m: &MsgView<'m>,
    sid: &[u8],
    headers: bool,
) -> Framed<'m> {
    let (header_len, body) = match m.header_len {
        Some(_) if !headers => (None, m.payload()),
        other => (other, m.body),
    };
    let tag = encode_msg_line(out, m.subject, sid, m.reply, header_len, body.len());
    Framed {
        tag,
        body,
        trailer: b"\r\n",
    }
}

/// The most bytes [`encode_head`] appends.
pub fn head_len_max(m: &MsgView<'_>, sid: &[u8]) -> usize {
    let reply = m.reply.map_or(0, <[u8]>::len);
    MSG_LINE_FIXED_BYTES_MAX + m.subject.len() + sid.len() + reply
}

/// Appends the NATS text of `reply`.
pub fn encode_reply(out: &mut Vec<u8>, reply: Reply<'_>) {
    match reply {
        Reply::Ok => out.extend_from_slice(OK),
        Reply::Flushed => out.extend_from_slice(PONG),
        Reply::Ping => out.extend_from_slice(PING),
        Reply::Refused(why) => encode_err(out, refusal_text(why)),
        Reply::Closing(reason) => {
            if let Some(text) = close_text(reason) {
                encode_err(out, text);
            }
        }
        Reply::Err(text) => encode_err(out, text),
    }
}

/// nats-server's `-ERR` text for a close, or None where it closes silently.
pub fn close_text(reason: CloseReason) -> Option<&'static str> {
    match reason {
        CloseReason::Protocol(e) => e.err_text(),
        CloseReason::MaxConnections => Some("maximum connections exceeded"),
        CloseReason::StaleConnection => Some("Stale Connection"),
        CloseReason::AuthViolation => Some("Authorization Violation"),
        CloseReason::AuthTimeout => Some("Authentication Timeout"),
        // nats.go and async-nats read any text starting with these words as theirs.
        CloseReason::AuthBanned => Some(
            "Authorization Violation - too many failed attempts from this address, try again later",
        ),
        CloseReason::MaxConnectionsPerIp => Some("maximum connections per IP address exceeded"),
        CloseReason::AcceptRate => Some("connection rate exceeded, try again later"),
        _ => None,
    }
}

/// nats-server's words for a refusal (clients match on them).
pub fn refusal_text(why: Refusal) -> &'static str {
    match why {
        Refusal::InvalidSubject => "Invalid Subject",
        Refusal::InvalidPublishSubject => "Invalid Publish Subject",
        Refusal::TooManySubscriptions => "maximum subscriptions exceeded",
    }
}

/// The most bytes [`encode_reply`] appends.
pub fn reply_len_max(reply: Reply<'_>) -> usize {
    match reply {
        Reply::Ok | Reply::Flushed | Reply::Ping => 6,
        Reply::Refused(why) => refusal_text(why).len() + 9,
        Reply::Closing(reason) => close_text(reason).map_or(0, |t| t.len() + 9),
        Reply::Err(text) => text.len() + 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ProtoError;

    fn frame(m: &MsgView<'_>, sid: &[u8], headers: bool) -> String {
        let mut out = Vec::new();
        let framed = encode_head(&mut out, m, sid, headers);
        assert_eq!(&out[framed.tag.clone()], sid);
        assert!(out.len() <= head_len_max(m, sid));
        out.extend_from_slice(framed.body);
        out.extend_from_slice(framed.trailer);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn deliveries_are_byte_exact() {
        let plain = MsgView {
            subject: b"foo",
            reply: Some(b"_INBOX.1"),
            header_len: None,
            body: b"hello",
        };
        assert_eq!(
            frame(&plain, b"9", true),
            "MSG foo 9 _INBOX.1 5\r\nhello\r\n"
        );
        let hmsg = MsgView {
            subject: b"foo",
            reply: None,
            header_len: Some(12),
            body: b"NATS/1.0\r\n\r\nhi",
        };
        assert_eq!(
            frame(&hmsg, b"1", true),
            "HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
        );
        // A client that did not ask for headers gets the payload alone.
        assert_eq!(frame(&hmsg, b"1", false), "MSG foo 1 2\r\nhi\r\n");
    }

    #[test]
    fn replies_are_byte_exact_and_bounded() {
        for (reply, text) in [
            (Reply::Ok, "+OK\r\n"),
            (Reply::Flushed, "PONG\r\n"),
            (Reply::Ping, "PING\r\n"),
            (
                Reply::Err("Stale Connection"),
                "-ERR 'Stale Connection'\r\n",
            ),
            (
                Reply::Closing(CloseReason::StaleConnection),
                "-ERR 'Stale Connection'\r\n",
            ),
            (Reply::Closing(CloseReason::SlowConsumerPending), ""),
            (
                Reply::Closing(CloseReason::Protocol(ProtoError::PayloadTooLarge)),
                "-ERR 'Maximum Payload Violation'\r\n",
            ),
            (
                Reply::Refused(Refusal::InvalidSubject),
                "-ERR 'Invalid Subject'\r\n",
            ),
            (
                Reply::Refused(Refusal::InvalidPublishSubject),
                "-ERR 'Invalid Publish Subject'\r\n",
            ),
            (
                Reply::Refused(Refusal::TooManySubscriptions),
                "-ERR 'maximum subscriptions exceeded'\r\n",
            ),
        ] {
            let mut out = Vec::new();
            encode_reply(&mut out, reply);
            assert_eq!(out, text.as_bytes());
            assert!(out.len() <= reply_len_max(reply));
        }
    }
}
