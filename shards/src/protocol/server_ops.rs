//! Owns the client side of framing: finding the next operation a *server* sent (`MSG`, `HMSG`,
//! `PING`, `PONG`, `+OK`, `-ERR`, `INFO`) in a byte buffer. Used by `shardcast bench` and tools.
//!
//! Same rules as the server-side [`super::Parser`]: case-insensitive verbs, arguments split on
//! runs of spaces/tabs, a body skipped by its declared length and followed by `\r\n`, and
//! limits checked before buffering. Unlike the server parser this one is not resumable: after
//! [`ServerParsed::NeedMore`] the caller appends bytes and parses from the same start again,
//! which costs a rescan of at most one control line (clients read large chunks, so that is rare).

use super::errors::ProtoError;
use super::lex::{is_ws, parse_size, split_args, trim_ws, NumberError};

/// One operation sent by a server, borrowing the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOp<'a> {
    /// MSG and HMSG: one delivery.
    Msg(Delivery<'a>),
    /// PING (answer with PONG).
    Ping,
    /// PONG: everything sent before the matching PING has been processed by the server.
    Pong,
    /// `+OK` (verbose mode).
    Ok,
    /// `-ERR` with its text, quotes removed.
    Err(&'a [u8]),
    /// INFO with its JSON text.
    Info(&'a [u8]),
}

/// One MSG/HMSG delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The subject it was published to.
    pub subject: &'a [u8],
    /// The subscription id it was delivered for.
    pub sid: &'a [u8],
    /// The reply subject, if the publisher gave one.
    pub reply: Option<&'a [u8]>,
    /// The header block (HMSG only; empty for MSG).
    pub headers: &'a [u8],
    /// The payload after the headers.
    pub payload: &'a [u8],
}

/// The outcome of one [`parse_server_op`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerParsed<'a> {
    /// One complete operation using the first `consumed` bytes.
    Op {
        /// The operation.
        op: ServerOp<'a>,
        /// Bytes to drop from the front of the buffer.
        consumed: usize,
    },
    /// No complete operation yet; `needed_bytes` is the buffer length that will complete it when known, else 0.
    NeedMore {
        /// Buffer length at which the operation will be complete, or 0 if not yet known.
        needed_bytes: usize,
    },
}

/// Parses the server operation at the start of `buf`. Control lines longer than
/// `control_line_bytes_max` and bodies larger than `body_bytes_max` are errors.
pub fn parse_server_op(
    buf: &[u8],
    control_line_bytes_max: usize,
    body_bytes_max: usize,
) -> Result<ServerParsed<'_>, ProtoError> {
    let Some(ControlLine {
        verb,
        args,
        after_line,
    }) = control_line(buf, control_line_bytes_max)?
    else {
        return Ok(ServerParsed::NeedMore { needed_bytes: 0 });
    };
    let simple = |op| {
        Ok(ServerParsed::Op {
            op,
            consumed: after_line,
        })
    };
    if verb.eq_ignore_ascii_case(b"MSG") {
        msg(buf, args, after_line, false, body_bytes_max)
    } else if verb.eq_ignore_ascii_case(b"HMSG") {
        msg(buf, args, after_line, true, body_bytes_max)
    } else if verb.eq_ignore_ascii_case(b"PING") {
        simple(ServerOp::Ping)
    } else if verb.eq_ignore_ascii_case(b"PONG") {
        simple(ServerOp::Pong)
    } else if verb.eq_ignore_ascii_case(b"+OK") {
        simple(ServerOp::Ok)
    } else if verb.eq_ignore_ascii_case(b"-ERR") {
        let text = trim_ws(args);
        let text = text.strip_prefix(b"'").unwrap_or(text);
        let text = text.strip_suffix(b"'").unwrap_or(text);
        simple(ServerOp::Err(text))
    } else if verb.eq_ignore_ascii_case(b"INFO") {
        simple(ServerOp::Info(trim_ws(args)))
    } else {
        Err(ProtoError::UnknownOp)
    }
}

/// The control line at the start of a server's (or hub's) output, split into its verb and
/// arguments.
pub(super) struct ControlLine<'a> {
    pub verb: &'a [u8],
    pub args: &'a [u8],
    /// Where what follows the line (a message body) starts.
    pub after_line: usize,
}

/// The control line at the start of `buf`, or None while it is incomplete; longer than
/// `control_line_bytes_max` is an error.
pub(super) fn control_line(
    buf: &[u8],
    control_line_bytes_max: usize,
) -> Result<Option<ControlLine<'_>>, ProtoError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > control_line_bytes_max.saturating_add(1) {
            return Err(ProtoError::ControlLineTooLong);
        }
        return Ok(None);
    };
    if nl > control_line_bytes_max.saturating_add(1) {
        return Err(ProtoError::ControlLineTooLong);
    }
    // `nl` is the position of a newline found in `buf`.
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let verb_end = line.iter().position(|&b| is_ws(b)).unwrap_or(line.len());
    let (verb, args) = line.split_at(verb_end);
    Ok(Some(ControlLine {
        verb,
        args,
        after_line: nl.saturating_add(1),
    }))
}

/// `MSG <subject> <sid> [reply] <size>` or `HMSG <subject> <sid> [reply] <hdr> <total>`, then the body.
fn msg<'a>(
    buf: &'a [u8],
    args: &'a [u8],
    body_start: usize,
    with_headers: bool,
    body_bytes_max: usize,
) -> Result<ServerParsed<'a>, ProtoError> {
    let spans = split_args::<5>(args).ok_or(ProtoError::BadArguments("MSG: too many arguments"))?;
    let spans = spans.as_slice();
    let get = |i: usize| spans.get(i).map_or(&[][..], |s| s.slice(args));
    let (reply, header_len, total) = match (with_headers, spans.len()) {
        (false, 3) => (None, 0, size(get(2))?),
        (false, 4) => (Some(get(2)), 0, size(get(3))?),
        (true, 4) => (None, size(get(2))?, size(get(3))?),
        (true, 5) => (Some(get(2)), size(get(3))?, size(get(4))?),
        _ => return Err(ProtoError::BadArguments("MSG: wrong number of arguments")),
    };
    let (headers, payload, end) = match body(buf, body_start, header_len, total, body_bytes_max)? {
        Body::NeedMore(needed_bytes) => return Ok(ServerParsed::NeedMore { needed_bytes }),
        Body::Ready {
            headers,
            payload,
            end,
        } => (headers, payload, end),
    };
    Ok(ServerParsed::Op {
        op: ServerOp::Msg(Delivery {
            subject: get(0),
            sid: get(1),
            reply,
            headers,
            payload,
        }),
        consumed: end,
    })
}

/// A message body after its control line, as [`body`] finds it.
pub(crate) enum Body<'a> {
    /// `buf` must hold this many bytes first.
    NeedMore(usize),
    /// The header block (empty without one), the payload, and where the message ends
    /// (after its CRLF).
    Ready {
        headers: &'a [u8],
        payload: &'a [u8],
        end: usize,
    },
}

/// The body of a `MSG`/`HMSG`/`LMSG` whose control line said `header_len` header bytes
/// in `total`, starting at `body_start` in `buf`: both messages from a hub and from a
/// server frame their bodies alike.
#[inline]
pub(crate) fn body(
    buf: &[u8],
    body_start: usize,
    header_len: usize,
    total: usize,
    body_bytes_max: usize,
) -> Result<Body<'_>, ProtoError> {
    if header_len > total {
        return Err(ProtoError::BadArguments(
            "HMSG: header size exceeds total size",
        ));
    }
    if total > body_bytes_max {
        return Err(ProtoError::PayloadTooLarge);
    }
    let body_end = body_start.saturating_add(total);
    let end = body_end.saturating_add(2);
    if buf.len() < end {
        return Ok(Body::NeedMore(end));
    }
    if buf.get(body_end..end) != Some(b"\r\n") {
        return Err(ProtoError::BadPayloadTerminator);
    }
    // `buf` holds at least `end` bytes, checked above.
    let (headers, payload) = buf[body_start..body_end].split_at(header_len);
    Ok(Body::Ready {
        headers,
        payload,
        end,
    })
}

fn size(s: &[u8]) -> Result<usize, ProtoError> {
    parse_size(s).map_err(|e| match e {
        NumberError::NotANumber => ProtoError::BadArguments("MSG: size is not a number"),
        NumberError::Overflow => ProtoError::BadArguments("MSG: size overflows"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            match parse_server_op(&input[pos..], 4096, 1 << 20).expect("valid") {
                ServerParsed::Op { op, consumed } => {
                    out.push(match op {
                        ServerOp::Msg(d) => format!(
                            "{} {} {:?} h={} p={}",
                            String::from_utf8_lossy(d.subject),
                            String::from_utf8_lossy(d.sid),
                            d.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
                            String::from_utf8_lossy(d.headers),
                            String::from_utf8_lossy(d.payload)
                        ),
                        ServerOp::Err(t) => format!("ERR {}", String::from_utf8_lossy(t)),
                        ServerOp::Info(j) => format!("INFO {}", String::from_utf8_lossy(j)),
                        other => format!("{other:?}"),
                    });
                    pos += consumed;
                }
                ServerParsed::NeedMore { .. } => panic!("incomplete at {pos}"),
            }
        }
        out
    }

    #[test]
    fn every_server_operation() {
        let input = b"INFO {\"a\":1}\r\n+OK\r\nPING\r\npong\r\nMSG foo 1 5\r\nhello\r\n\
MSG foo.bar 22 _INBOX.x 0\r\n\r\nHMSG h 3 12 14\r\nNATS/1.0\r\n\r\nhi\r\n-ERR 'Slow Consumer'\r\n";
        assert_eq!(
            parse_all(input),
            [
                "INFO {\"a\":1}",
                "Ok",
                "Ping",
                "Pong",
                "foo 1 None h= p=hello",
                "foo.bar 22 Some(\"_INBOX.x\") h= p=",
                "h 3 None h=NATS/1.0\r\n\r\n p=hi",
                "ERR Slow Consumer",
            ]
        );
    }

    #[test]
    fn split_input_needs_more_then_completes() {
        let input = b"MSG foo 1 5\r\nhello\r\n";
        for cut in 0..input.len() {
            match parse_server_op(&input[..cut], 4096, 1024).expect("valid prefix") {
                ServerParsed::NeedMore { needed_bytes } => {
                    assert!(needed_bytes == 0 || needed_bytes == input.len(), "{cut}")
                }
                ServerParsed::Op { .. } => panic!("complete at {cut}"),
            }
        }
        assert!(matches!(
            parse_server_op(input, 4096, 1024),
            Ok(ServerParsed::Op { consumed: 20, .. })
        ));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let cases: [(&[u8], ProtoError); 6] = [
            (b"FOO\r\n", ProtoError::UnknownOp),
            (
                b"MSG foo 5\r\n",
                ProtoError::BadArguments("MSG: wrong number of arguments"),
            ),
            (
                b"MSG foo 1 x\r\n",
                ProtoError::BadArguments("MSG: size is not a number"),
            ),
            (b"MSG foo 1 3\r\nabcd\r\n", ProtoError::BadPayloadTerminator),
            (b"MSG foo 1 2000\r\n", ProtoError::PayloadTooLarge),
            (
                b"HMSG foo 1 9 3\r\n",
                ProtoError::BadArguments("HMSG: header size exceeds total size"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_server_op(input, 4096, 1024), Err(want), "{input:?}");
        }
        let long = vec![b'x'; 100];
        assert_eq!(
            parse_server_op(&long, 64, 1024),
            Err(ProtoError::ControlLineTooLong)
        );
    }
}
