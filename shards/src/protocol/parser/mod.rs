//! Owns the framing of client input: finding the next operation in a byte buffer, resumably, and handing its argument line to the per-operation parsers.
//!
//! Rules (see `nats-protocol.md` §1, §5, §6):
//! * verbs are case-insensitive; arguments are separated by any run of spaces or tabs;
//! * a control line ends at `\n`, and one `\r` just before it is dropped;
//! * a PUB/HPUB payload is skipped by its declared length (never scanned) and must be
//!   followed by exactly `\r\n`;
//! * empty lines (`\r\n` or `\n`) before an operation are skipped and counted in that
//!   operation's `consumed`;
//! * limits are enforced before buffering: a control line (or a run of empty lines) with more
//!   than `control_line_bytes_max` bytes is refused as soon as those bytes are present, and a
//!   PUB/HPUB declaring more than `payload_bytes_max` is refused from its control line alone.
//!
//! The parser keeps offsets, never pointers, between calls: after [`Parsed::NeedMore`] it
//! remembers how far the newline search got (or, for a PUB/HPUB whose control line is
//! complete, the parsed arguments), so bytes are examined once however the input is split.

use super::connect::connect_json;
use super::errors::ProtoError;
use super::lex::is_ws;
use super::publish::{parse_hpub_args, parse_pub_args, PubArgs, Publish};
use super::subscribe::{parse_sub_args, Subscribe};
use super::unsubscribe::{parse_unsub_args, Unsubscribe};

/// One operation sent by a client, borrowing the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// The raw JSON text after "CONNECT " (trimmed); decode it with [`super::connect::parse_connect`].
    Connect(&'a [u8]),
    /// PUB and HPUB.
    Pub(Publish<'a>),
    /// SUB.
    Sub(Subscribe<'a>),
    /// UNSUB.
    Unsub(Unsubscribe<'a>),
    /// PING (answer with PONG).
    Ping,
    /// PONG.
    Pong,
    /// INFO sent by a client: parsed and ignored by the server (as are `+OK` and `-ERR`).
    Info,
    /// `+OK` sent by a client.
    Ok,
    /// `-ERR` sent by a client.
    Err,
}

/// The outcome of one [`Parser::parse`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// One complete operation; `consumed` bytes of the input belong to it (control line, payload, CRLFs).
    Op {
        /// The operation.
        op: Op<'a>,
        /// Bytes to drop from the front of the buffer, including any empty lines before the operation.
        consumed: usize,
    },
    /// The input holds no complete operation yet. `needed_bytes` is the total size of the
    /// operation being received when known (control line + payload + 2 for a PUB whose control line is complete), else 0.
    ///
    /// `needed_bytes` counts from the start of the buffer, so it includes any empty lines
    /// before the operation: the caller needs a buffer at least that long.
    NeedMore {
        /// Buffer length at which the operation will be complete, or 0 if not yet known.
        needed_bytes: usize,
    },
}

/// A resumable parser for the client side of the NATS protocol.
#[derive(Debug, Clone)]
pub struct Parser {
    control_line_max: usize,
    payload_max: usize,
    state: State,
    /// Bytes examined by blank-line skipping and newline searches, to prove nothing is rescanned.
    #[cfg(test)]
    examined: usize,
}

/// Where the parser stopped; all offsets count from the start of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the end of a control line. Bytes before `start` are empty lines; the
    /// bytes in `start..scanned` hold no newline.
    Line { start: usize, scanned: usize },
    /// A PUB/HPUB control line was parsed (its spans are buffer offsets); the body starts at
    /// `body_start` and is followed by `\r\n`.
    Payload { args: PubArgs, body_start: usize },
}

const FRESH: State = State::Line {
    start: 0,
    scanned: 0,
};

impl Parser {
    /// A parser refusing control lines longer than `control_line_bytes_max` bytes (not counting
    /// the line ending) and PUB/HPUB bodies larger than `payload_bytes_max`.
    pub fn new(control_line_bytes_max: usize, payload_bytes_max: usize) -> Parser {
        Parser {
            control_line_max: control_line_bytes_max,
            payload_max: payload_bytes_max,
            state: FRESH,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// The largest PUB/HPUB body (HPUB: headers plus payload) this parser accepts.
    pub fn payload_bytes_max(&self) -> usize {
        self.payload_max
    }

    /// Parses the operation at the start of `buf`. `buf` always starts at the first byte of an
    /// operation not yet consumed; after `Parsed::Op { consumed, .. }` the caller drops `consumed` bytes
    /// and calls again with the rest. After `NeedMore`, the caller appends bytes and calls again with
    /// the same start (the buffer may have moved in memory: keep offsets, never pointers).
    ///
    /// An error is final for the connection; the parser is reset so it never panics if used again.
    pub fn parse<'a>(&mut self, buf: &'a [u8]) -> Result<Parsed<'a>, ProtoError> {
        let result = self.step(buf);
        if !matches!(result, Ok(Parsed::NeedMore { .. })) {
            self.state = FRESH;
        }
        result
    }

    fn step<'a>(&mut self, buf: &'a [u8]) -> Result<Parsed<'a>, ProtoError> {
        if let State::Payload { args, body_start } = self.state {
            if body_start <= buf.len() {
                return payload(buf, args, body_start);
            }
            // The caller shrank the buffer, against the contract: start over rather than misread.
            self.state = FRESH;
        }
        let (mut start, mut scanned) = match self.state {
            State::Line { start, scanned } if start <= scanned && scanned <= buf.len() => {
                (start, scanned)
            }
            _ => (0, 0),
        };
        let max = self.control_line_max;

        if scanned == start {
            // Skip empty lines; their total is bounded like a control line so that a client
            // sending only newlines cannot grow the caller's buffer without limit.
            loop {
                if start > max {
                    return Err(ProtoError::ControlLineTooLong);
                }
                let (skip, seen) = match (buf.get(start), buf.get(start.saturating_add(1))) {
                    (Some(b'\n'), _) => (1, 1),
                    (Some(b'\r'), Some(b'\n')) => (2, 2),
                    (Some(b'\r'), None) | (None, _) => {
                        self.note_examined(usize::from(buf.get(start).is_some()));
                        self.state = State::Line {
                            start,
                            scanned: start,
                        };
                        return Ok(Parsed::NeedMore { needed_bytes: 0 });
                    }
                    (Some(_), _) => break,
                };
                self.note_examined(seen);
                start = start.saturating_add(skip);
            }
            scanned = start;
        }

        // A line holds at most `max` bytes, then "\r\n": never look further than that.
        let window_end = buf.len().min(start.saturating_add(max).saturating_add(2));
        debug_assert!(scanned <= window_end, "the search never passes its window");
        let window = &buf[scanned..window_end];
        let Some(found) = window.iter().position(|&b| b == b'\n') else {
            self.note_examined(window.len());
            let present = window_end.saturating_sub(start);
            let limit = max.saturating_add(1);
            // `max + 1` bytes are only acceptable if the last one may be the '\r' of "\r\n".
            if present > limit
                || (present == limit && buf.get(window_end.saturating_sub(1)) != Some(&b'\r'))
            {
                return Err(ProtoError::ControlLineTooLong);
            }
            self.state = State::Line {
                start,
                scanned: window_end,
            };
            return Ok(Parsed::NeedMore { needed_bytes: 0 });
        };
        self.note_examined(found.saturating_add(1));
        let newline = scanned.saturating_add(found);
        let mut end = newline;
        if end > start && buf.get(end.saturating_sub(1)) == Some(&b'\r') {
            end = end.saturating_sub(1);
        }
        if end.saturating_sub(start) > max {
            return Err(ProtoError::ControlLineTooLong);
        }
        self.control_line(buf, start, end, newline.saturating_add(1))
    }

    /// Dispatches the control line `buf[start..end]` (without its line ending); the next
    /// operation (or the PUB/HPUB body) starts at `next`.
    fn control_line<'a>(
        &mut self,
        buf: &'a [u8],
        start: usize,
        end: usize,
        next: usize,
    ) -> Result<Parsed<'a>, ProtoError> {
        // The caller found `end` at or before the newline it saw in `buf`.
        let line = &buf[start..end];
        let verb_len = line.iter().position(|&b| is_ws(b)).unwrap_or(line.len());
        let (verb, args) = line.split_at(verb_len);
        let args_at = start.saturating_add(verb_len);

        let op = if verb.eq_ignore_ascii_case(b"PUB") {
            return self.publish(buf, parse_pub_args(args)?.shifted(args_at), next);
        } else if verb.eq_ignore_ascii_case(b"HPUB") {
            return self.publish(buf, parse_hpub_args(args)?.shifted(args_at), next);
        } else if verb.eq_ignore_ascii_case(b"SUB") {
            Op::Sub(parse_sub_args(args)?)
        } else if verb.eq_ignore_ascii_case(b"UNSUB") {
            Op::Unsub(parse_unsub_args(args)?)
        } else if verb.eq_ignore_ascii_case(b"PING") {
            no_args(args, "PING: unexpected arguments")?;
            Op::Ping
        } else if verb.eq_ignore_ascii_case(b"PONG") {
            no_args(args, "PONG: unexpected arguments")?;
            Op::Pong
        } else if verb.eq_ignore_ascii_case(b"CONNECT") {
            Op::Connect(connect_json(args)?)
        } else if verb.eq_ignore_ascii_case(b"INFO") {
            Op::Info
        } else if verb.eq_ignore_ascii_case(b"+OK") {
            Op::Ok
        } else if verb.eq_ignore_ascii_case(b"-ERR") {
            Op::Err
        } else {
            return Err(ProtoError::UnknownOp);
        };
        Ok(Parsed::Op { op, consumed: next })
    }

    /// Checks the declared size, remembers the parsed control line, and tries to finish.
    fn publish<'a>(
        &mut self,
        buf: &'a [u8],
        args: PubArgs,
        body_start: usize,
    ) -> Result<Parsed<'a>, ProtoError> {
        if args.total > self.payload_max {
            return Err(ProtoError::PayloadTooLarge);
        }
        self.state = State::Payload { args, body_start };
        payload(buf, args, body_start)
    }

    #[cfg(test)]
    fn note_examined(&mut self, n: usize) {
        self.examined = self.examined.saturating_add(n);
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn note_examined(&mut self, _n: usize) {}

    /// Bytes examined so far by blank-line skipping and newline searches.
    #[cfg(test)]
    pub(super) fn examined(&self) -> usize {
        self.examined
    }
}

/// Finishes a PUB/HPUB whose control line is parsed, if its body and "\r\n" are all present.
fn payload(buf: &[u8], args: PubArgs, body_start: usize) -> Result<Parsed<'_>, ProtoError> {
    let body_end = body_start
        .checked_add(args.total)
        .ok_or(ProtoError::PayloadTooLarge)?;
    let op_end = body_end.checked_add(2).ok_or(ProtoError::PayloadTooLarge)?;
    match buf.get(body_end..op_end) {
        Some([b'\r', b'\n']) => Ok(Parsed::Op {
            op: Op::Pub(Publish {
                subject: args.subject.slice(buf),
                reply: args.reply.map(|r| r.slice(buf)),
                header_len: args.header_len,
                has_headers: args.has_headers,
                // The terminator was found at `body_end`, so the body is in `buf`.
                body: &buf[body_start..body_end],
            }),
            consumed: op_end,
        }),
        Some(_) => Err(ProtoError::BadPayloadTerminator),
        None => match buf.get(body_end) {
            Some(&b) if b != b'\r' => Err(ProtoError::BadPayloadTerminator),
            _ => Ok(Parsed::NeedMore {
                needed_bytes: op_end,
            }),
        },
    }
}

fn no_args(args: &[u8], what: &'static str) -> Result<(), ProtoError> {
    if args.iter().all(|&b| is_ws(b)) {
        Ok(())
    } else {
        Err(ProtoError::BadArguments(what))
    }
}

#[cfg(test)]
mod tests;
