//! The leafnode wire, for the leaf link: a delivery to the hub is `LMSG <subject>
//! [reply] <size>` (`HMSG <subject> [reply] <header size> <total size>` with headers, as
//! nats-server frames messages on leaf connections), then the body and CRLF. No
//! subscription id: the hub matches the subject against its own interest. Replies are
//! only the keepalive (`PING`, `PONG`); the hub is never sent `+OK` or `-ERR`.

use crate::wire::{Framed, MsgView, Reply};

/// The longest head apart from subject and reply: verb, separators, two 20-digit numbers,
/// CRLF.
const HEAD_FIXED_BYTES_MAX: usize = 5 + 3 + 2 * 20 + 2;

/// Appends the `LMSG`/`HMSG` line of `m`; the body and CRLF follow.
pub fn encode_head<'m>(out: &mut Vec<u8>, m: &MsgView<'m>) -> Framed<'m> {
    encode_head_queued(out, m, &[])
}

/// Appends the `LMSG`/`HMSG` line of `m` with the hub's queue groups it may deliver to
/// (`LMSG <subject> + <reply> <queue>… <size>`, or `| <queue>… <size>` without a reply,
/// as nats-server writes them); no queues gives the plain line.
pub fn encode_head_queued<'m>(out: &mut Vec<u8>, m: &MsgView<'m>, queues: &[&[u8]]) -> Framed<'m> {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(if m.header_len.is_some() {
        b"HMSG "
    } else {
        b"LMSG "
    });
    out.extend_from_slice(m.subject);
    out.push(b' ');
    if !queues.is_empty() {
        match m.reply {
            Some(reply) => {
                out.extend_from_slice(b"+ ");
                out.extend_from_slice(reply);
                out.push(b' ');
            }
            None => out.extend_from_slice(b"| "),
        }
        for q in queues {
            out.extend_from_slice(q);
            out.push(b' ');
        }
    } else if let Some(reply) = m.reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
    if let Some(h) = m.header_len {
        out.extend_from_slice(num.format(h).as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(num.format(m.body.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    let end = out.len();
    Framed {
        tag: end..end,
        body: m.body,
        trailer: b"\r\n",
    }
}

/// The most bytes [`encode_head`] appends.
pub fn head_len_max(m: &MsgView<'_>) -> usize {
    HEAD_FIXED_BYTES_MAX + m.subject.len() + m.reply.map_or(0, <[u8]>::len)
}

/// The most bytes [`encode_head_queued`] appends.
pub fn head_len_max_queued(m: &MsgView<'_>, queues: &[&[u8]]) -> usize {
    head_len_max(m) + 2 + queues.iter().map(|q| q.len() + 1).sum::<usize>()
}

/// Appends the keepalive replies; nothing else goes to the hub.
pub fn encode_reply(out: &mut Vec<u8>, reply: Reply<'_>) {
    match reply {
        Reply::Ping => out.extend_from_slice(b"PING\r\n"),
        Reply::Flushed => out.extend_from_slice(b"PONG\r\n"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(m: &MsgView<'_>) -> String {
        let mut out = Vec::new();
        let f = encode_head(&mut out, m);
        out.extend_from_slice(f.body);
        out.extend_from_slice(f.trailer);
        assert!(out.len() <= head_len_max(m) + m.body.len() + 2);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn frames_as_nats_server_frames_leaf_messages() {
        let plain = MsgView {
            subject: b"orders.new",
            reply: None,
            header_len: None,
            body: b"hello",
        };
        assert_eq!(frame(&plain), "LMSG orders.new 5\r\nhello\r\n");
        let request = MsgView {
            reply: Some(b"_INBOX.1"),
            ..plain
        };
        assert_eq!(frame(&request), "LMSG orders.new _INBOX.1 5\r\nhello\r\n");
        let headers = MsgView {
            subject: b"a",
            reply: Some(b"r"),
            header_len: Some(12),
            body: b"NATS/1.0\r\n\r\nhi",
        };
        assert_eq!(frame(&headers), "HMSG a r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    }

    fn queued(m: &MsgView<'_>, queues: &[&[u8]]) -> String {
        let mut out = Vec::new();
        let f = encode_head_queued(&mut out, m, queues);
        out.extend_from_slice(f.body);
        out.extend_from_slice(f.trailer);
        assert!(out.len() <= head_len_max_queued(m, queues) + m.body.len() + 2);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn queue_lists_are_framed_as_nats_server_frames_them() {
        let plain = MsgView {
            subject: b"jobs",
            reply: None,
            header_len: None,
            body: b"x",
        };
        assert_eq!(queued(&plain, &[b"w"]), "LMSG jobs | w 1\r\nx\r\n");
        let request = MsgView {
            reply: Some(b"_INBOX.9"),
            ..plain
        };
        assert_eq!(
            queued(&request, &[b"w", b"v"]),
            "LMSG jobs + _INBOX.9 w v 1\r\nx\r\n"
        );
        let headers = MsgView {
            header_len: Some(12),
            body: b"NATS/1.0\r\n\r\nhi",
            ..plain
        };
        assert_eq!(
            queued(&headers, &[b"w"]),
            "HMSG jobs | w 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
        );
        assert_eq!(queued(&plain, &[]), "LMSG jobs 1\r\nx\r\n");
    }
}
