//! Owns the leaf side of the leafnode protocol's framing: the next operation a hub sent to a
//! leaf (`LMSG`, `HMSG`, `LS+`, `LS-`, and `PING`, `PONG`, `+OK`, `-ERR`, `INFO` as
//! [`super::server_ops`] parses them) in a byte buffer. Used by the leaf link
//! (`front::leaf`).
//!
//! nats-server writes a message to a leaf as `LMSG <subject> [reply] <size>` or, with the
//! queue groups the leaf may deliver it to, `LMSG <subject> + <reply> <queue>… <size>` /
//! `LMSG <subject> | <queue>… <size>` (`HMSG` the same with `<header size> <total size>`);
//! interest as `LS+ <subject> [<queue> <weight>]` and `LS- <subject> [<queue>]`. Same rules
//! as the other parsers: case-insensitive verbs, arguments split on runs of spaces/tabs,
//! limits checked before buffering, not resumable (after [`LeafParsed::NeedMore`] parse
//! again from the same start with more bytes).

use super::errors::ProtoError;
use super::lex::{is_ws, parse_size, NumberError};
use super::server_ops::{
    body, control_line, parse_server_op, Body, ControlLine, ServerOp, ServerParsed,
};

/// The most queue groups one message may list.
pub const QUEUES_PER_MSG_MAX: usize = 1024;

/// One operation a hub sent, borrowing the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafOp<'a> {
    /// `LMSG`/`HMSG`: a message for the leaf's subscribers.
    Msg(LeafDelivery<'a>),
    /// `LS+`: the hub has interest in `subject` (a queue group's key carries its weight,
    /// the group's member count).
    Interest {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        weight: u32,
    },
    /// `LS-`: that interest is gone.
    NoInterest {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
    },
    /// `PING`, `PONG`, `+OK`, `-ERR`, `INFO`, as on a client connection.
    Server(ServerOp<'a>),
}

/// One `LMSG`/`HMSG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafDelivery<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// The queue groups it may be delivered to; none: plain subscriptions only.
    pub queues: Vec<&'a [u8]>,
    /// The header block (`HMSG`), if any.
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// The outcome of one [`parse_leaf_op`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafParsed<'a> {
    /// One complete operation using the first `consumed` bytes.
    Op { op: LeafOp<'a>, consumed: usize },
    /// No complete operation yet; `needed_bytes` is the buffer length that completes it
    /// when known, else 0.
    NeedMore { needed_bytes: usize },
}

/// Parses the hub operation at the start of `buf`. Control lines longer than
/// `control_line_bytes_max` and bodies larger than `body_bytes_max` are errors.
pub fn parse_leaf_op(
    buf: &[u8],
    control_line_bytes_max: usize,
    body_bytes_max: usize,
) -> Result<LeafParsed<'_>, ProtoError> {
    let Some(ControlLine {
        verb,
        args,
        after_line,
    }) = control_line(buf, control_line_bytes_max)?
    else {
        return Ok(LeafParsed::NeedMore { needed_bytes: 0 });
    };
    let words = || args.split(|&b| is_ws(b)).filter(|w| !w.is_empty());
    if verb.eq_ignore_ascii_case(b"LMSG") || verb.eq_ignore_ascii_case(b"HMSG") {
        let headers = verb.eq_ignore_ascii_case(b"HMSG");
        return message(buf, words(), after_line, headers, body_bytes_max);
    }
    if verb.eq_ignore_ascii_case(b"LS+") || verb.eq_ignore_ascii_case(b"LS-") {
        let mut w = words();
        let subject = w.next().ok_or(ProtoError::BadArguments("LS: no subject"))?;
        let queue = w.next();
        let op = if verb[2] == b'+' {
            let weight = match (queue, w.next()) {
                (Some(_), Some(n)) => weight(n)?,
                _ => 1,
            };
            LeafOp::Interest {
                subject,
                queue,
                weight,
            }
        } else {
            LeafOp::NoInterest { subject, queue }
        };
        if w.next().is_some() {
            return Err(ProtoError::BadArguments("LS: too many arguments"));
        }
        return Ok(LeafParsed::Op {
            op,
            consumed: after_line,
        });
    }
    if verb.eq_ignore_ascii_case(b"MSG") {
        // A client's delivery: no hub sends it on a leaf connection.
        return Err(ProtoError::UnknownOp);
    }
    match parse_server_op(buf, control_line_bytes_max, body_bytes_max)? {
        ServerParsed::Op { op, consumed } => Ok(LeafParsed::Op {
            op: LeafOp::Server(op),
            consumed,
        }),
        ServerParsed::NeedMore { needed_bytes } => Ok(LeafParsed::NeedMore { needed_bytes }),
    }
}

/// `<subject> [reply | + reply queues… | | queues…] [header size] <size>`, then the body.
fn message<'a>(
    buf: &'a [u8],
    words: impl Iterator<Item = &'a [u8]>,
    body_start: usize,
    with_headers: bool,
    body_bytes_max: usize,
) -> Result<LeafParsed<'a>, ProtoError> {
    // Up to 6 arguments (no queue list, or a short one) on the stack; a longer queue list
    // spills to the heap.
    let mut few: [&[u8]; 6] = [&[]; 6];
    let mut n = 0;
    let mut many: Vec<&[u8]> = Vec::new();
    for w in words.take(QUEUES_PER_MSG_MAX + 6) {
        if n < few.len() {
            few[n] = w;
        } else {
            if many.is_empty() {
                many.extend_from_slice(&few);
            }
            many.push(w);
        }
        n += 1;
    }
    if n > QUEUES_PER_MSG_MAX + 5 {
        return Err(ProtoError::BadArguments("LMSG: too many queue groups"));
    }
    let words: &[&[u8]] = if many.is_empty() { &few[..n] } else { &many };
    let sizes = if with_headers { 2 } else { 1 };
    if words.len() < 1 + sizes {
        return Err(ProtoError::BadArguments("LMSG: too few arguments"));
    }
    let (front, back) = words.split_at(words.len() - sizes);
    let total = size(back[sizes - 1])?;
    let header_len = if with_headers {
        Some(size(back[0])?)
    } else {
        None
    };
    let (reply, queues) = match front.get(1).copied() {
        None => (None, &[][..]),
        Some(b"+") => match front.get(2) {
            Some(r) => (Some(*r), &front[3..]),
            None => return Err(ProtoError::BadArguments("LMSG: + without a reply")),
        },
        Some(b"|") => (None, &front[2..]),
        Some(r) if front.len() == 2 => (Some(r), &[][..]),
        Some(_) => return Err(ProtoError::BadArguments("LMSG: wrong number of arguments")),
    };
    if queues.len() > QUEUES_PER_MSG_MAX {
        return Err(ProtoError::BadArguments("LMSG: too many queue groups"));
    }
    let framed = body(
        buf,
        body_start,
        header_len.unwrap_or(0),
        total,
        body_bytes_max,
    )?;
    let (headers, payload, end) = match framed {
        Body::NeedMore(needed_bytes) => return Ok(LeafParsed::NeedMore { needed_bytes }),
        Body::Ready {
            headers,
            payload,
            end,
        } => (header_len.map(|_| headers), payload, end),
    };
    Ok(LeafParsed::Op {
        op: LeafOp::Msg(LeafDelivery {
            subject: front[0],
            reply,
            queues: queues.to_vec(),
            headers,
            payload,
        }),
        consumed: end,
    })
}

fn size(s: &[u8]) -> Result<usize, ProtoError> {
    parse_size(s).map_err(|e| match e {
        NumberError::NotANumber => ProtoError::BadArguments("LMSG: size is not a number"),
        NumberError::Overflow => ProtoError::BadArguments("LMSG: size overflows"),
    })
}

fn weight(s: &[u8]) -> Result<u32, ProtoError> {
    let n = parse_size(s).map_err(|_| ProtoError::BadArguments("LS+: weight is not a number"))?;
    u32::try_from(n).map_err(|_| ProtoError::BadArguments("LS+: weight overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> LeafOp<'_> {
        match parse_leaf_op(input, 4096, 1 << 20).expect("valid") {
            LeafParsed::Op { op, consumed } => {
                assert_eq!(consumed, input.len(), "all of {input:?}");
                op
            }
            LeafParsed::NeedMore { .. } => panic!("incomplete: {input:?}"),
        }
    }

    fn msg(input: &[u8]) -> LeafDelivery<'_> {
        match one(input) {
            LeafOp::Msg(d) => d,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn messages_as_nats_server_frames_them() {
        let d = msg(b"LMSG foo 5\r\nhello\r\n");
        assert_eq!((d.subject, d.reply, d.headers), (&b"foo"[..], None, None));
        assert_eq!((d.payload, d.queues.len()), (&b"hello"[..], 0));
        let d = msg(b"LMSG foo _INBOX.1 2\r\nhi\r\n");
        assert_eq!(d.reply, Some(&b"_INBOX.1"[..]));
        let d = msg(b"LMSG foo + _INBOX.1 q1 q2 2\r\nhi\r\n");
        assert_eq!(d.reply, Some(&b"_INBOX.1"[..]));
        assert_eq!(d.queues, vec![&b"q1"[..], &b"q2"[..]]);
        let d = msg(b"lmsg foo  |  q1 2\r\nhi\r\n");
        assert_eq!((d.reply, d.queues), (None, vec![&b"q1"[..]]));
        let d = msg(b"HMSG foo | q1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        assert_eq!(d.headers, Some(&b"NATS/1.0\r\n\r\n"[..]));
        assert_eq!((d.payload, d.queues.len()), (&b"hi"[..], 1));
        let d = msg(b"HMSG a r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        assert_eq!(d.reply, Some(&b"r"[..]));
    }

    #[test]
    fn interest_and_the_rest() {
        assert_eq!(
            one(b"LS+ foo.*\r\n"),
            LeafOp::Interest {
                subject: b"foo.*",
                queue: None,
                weight: 1
            }
        );
        assert_eq!(
            one(b"LS+ jobs workers 3\r\n"),
            LeafOp::Interest {
                subject: b"jobs",
                queue: Some(b"workers"),
                weight: 3
            }
        );
        assert_eq!(
            one(b"LS- jobs workers\r\n"),
            LeafOp::NoInterest {
                subject: b"jobs",
                queue: Some(b"workers")
            }
        );
        assert_eq!(one(b"PING\r\n"), LeafOp::Server(ServerOp::Ping));
        assert_eq!(
            one(b"-ERR 'Loop detected'\r\n"),
            LeafOp::Server(ServerOp::Err(b"Loop detected"))
        );
        assert!(matches!(
            one(b"INFO {\"server_id\":\"x\"}\r\n"),
            LeafOp::Server(ServerOp::Info(_))
        ));
    }

    #[test]
    fn partial_input_and_bad_input() {
        assert_eq!(
            parse_leaf_op(b"LMSG foo 5\r\nhel", 4096, 1024),
            Ok(LeafParsed::NeedMore { needed_bytes: 19 })
        );
        assert_eq!(
            parse_leaf_op(b"LS+ foo", 4096, 1024),
            Ok(LeafParsed::NeedMore { needed_bytes: 0 })
        );
        for bad in [
            &b"LMSG foo\r\n"[..],
            b"LMSG foo x\r\n",
            b"LMSG foo a b 5\r\n",
            b"LMSG foo + 5\r\n",
            b"HMSG foo 9 5\r\n",
            b"LMSG foo 2000\r\n",
            b"LS+\r\n",
            b"LS+ a q notanumber\r\n",
            b"LS- a q extra\r\n",
            b"MSG foo 1 2\r\nhi\r\n",
            b"BOGUS\r\n",
            b"LMSG foo 2\r\nhiXX",
        ] {
            assert!(parse_leaf_op(bad, 4096, 1024).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_leaf_op(&[b'x'; 100], 64, 1024),
            Err(ProtoError::ControlLineTooLong)
        );
        let many = format!(
            "LMSG foo | {} 1\r\nx\r\n",
            "q ".repeat(QUEUES_PER_MSG_MAX + 1)
        );
        assert!(parse_leaf_op(many.as_bytes(), 1 << 20, 1024).is_err());
    }
}
