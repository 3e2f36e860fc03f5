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
        let window = buf.get(scanned..window_end).unwrap_or_default();
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
        let line = buf.get(start..end).unwrap_or_default();
        let verb_len = line.iter().position(|&b| is_ws(b)).unwrap_or(line.len());
        let (verb, args) = line.split_at_checked(verb_len).unwrap_or((line, &[]));
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
                body: buf.get(body_start..body_end).unwrap_or_default(),
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

/// Whether `b` separates arguments.
pub(super) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing spaces and tabs.
pub(super) fn trim_ws(s: &[u8]) -> &[u8] {
    let Some(first) = s.iter().position(|&b| !is_ws(b)) else {
        return &[];
    };
    let last = s.iter().rposition(|&b| !is_ws(b)).unwrap_or(first);
    s.get(first..=last).unwrap_or_default()
}

fn no_args(args: &[u8], what: &'static str) -> Result<(), ProtoError> {
    if args.iter().all(|&b| is_ws(b)) {
        Ok(())
    } else {
        Err(ProtoError::BadArguments(what))
    }
}

/// A byte range of an argument inside a line or buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    const EMPTY: Span = Span { start: 0, end: 0 };

    /// The bytes of this span in `buf` (empty if out of range).
    pub(super) fn slice(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The same span `by` bytes further on.
    pub(super) fn shifted(self, by: usize) -> Span {
        Span {
            start: self.start.saturating_add(by),
            end: self.end.saturating_add(by),
        }
    }
}

/// Up to `N` whitespace-separated arguments of a line.
pub(super) struct Args<const N: usize> {
    spans: [Span; N],
    len: usize,
}

impl<const N: usize> Args<N> {
    /// The arguments found, in order.
    pub(super) fn as_slice(&self) -> &[Span] {
        self.spans.get(..self.len).unwrap_or_default()
    }
}

/// Splits `s` on runs of spaces and tabs, without allocating. `None` if it has more than `N` arguments.
pub(super) fn split_args<const N: usize>(s: &[u8]) -> Option<Args<N>> {
    let mut args = Args {
        spans: [Span::EMPTY; N],
        len: 0,
    };
    let mut token_start = None;
    let ends = s.iter().map(|&b| is_ws(b)).chain(std::iter::once(true));
    for (i, ws) in ends.enumerate() {
        match (ws, token_start) {
            (true, Some(start)) => {
                *args.spans.get_mut(args.len)? = Span { start, end: i };
                args.len = args.len.saturating_add(1);
                token_start = None;
            }
            (false, None) => token_start = Some(i),
            _ => {}
        }
    }
    Some(args)
}

/// Why a size argument was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumberError {
    /// Empty, or a byte other than an ASCII digit (signs included).
    NotANumber,
    /// Too large for the target type.
    Overflow,
}

/// Parses a decimal unsigned number made only of ASCII digits.
pub(super) fn parse_number(s: &[u8]) -> Result<u64, NumberError> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(NumberError::NotANumber);
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d.saturating_sub(b'0'))))
            .ok_or(NumberError::Overflow)
    })
}

/// Parses a decimal size made only of ASCII digits.
pub(super) fn parse_size(s: &[u8]) -> Result<usize, NumberError> {
    usize::try_from(parse_number(s)?).map_err(|_| NumberError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned copy of an [`Op`], to compare sequences produced from different buffers.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Connect(Vec<u8>),
        Pub {
            subject: Vec<u8>,
            reply: Option<Vec<u8>>,
            header_len: usize,
            has_headers: bool,
            body: Vec<u8>,
        },
        Sub {
            subject: Vec<u8>,
            queue: Option<Vec<u8>>,
            sid: Vec<u8>,
        },
        Unsub {
            sid: Vec<u8>,
            max_msgs: Option<u64>,
        },
        Ping,
        Pong,
        Info,
        Ok,
        Err,
    }

    fn own(op: &Op<'_>) -> Owned {
        match op {
            Op::Connect(j) => Owned::Connect(j.to_vec()),
            Op::Pub(p) => Owned::Pub {
                subject: p.subject.to_vec(),
                reply: p.reply.map(<[u8]>::to_vec),
                header_len: p.header_len,
                has_headers: p.has_headers,
                body: p.body.to_vec(),
            },
            Op::Sub(s) => Owned::Sub {
                subject: s.subject.to_vec(),
                queue: s.queue.map(<[u8]>::to_vec),
                sid: s.sid.to_vec(),
            },
            Op::Unsub(u) => Owned::Unsub {
                sid: u.sid.to_vec(),
                max_msgs: u.max_msgs,
            },
            Op::Ping => Owned::Ping,
            Op::Pong => Owned::Pong,
            Op::Info => Owned::Info,
            Op::Ok => Owned::Ok,
            Op::Err => Owned::Err,
        }
    }

    fn pubop(subject: &str, reply: Option<&str>, header_len: usize, body: &[u8]) -> Owned {
        Owned::Pub {
            subject: subject.as_bytes().to_vec(),
            reply: reply.map(|r| r.as_bytes().to_vec()),
            header_len,
            has_headers: header_len > 0,
            body: body.to_vec(),
        }
    }

    fn sub(subject: &str, queue: Option<&str>, sid: &str) -> Owned {
        Owned::Sub {
            subject: subject.as_bytes().to_vec(),
            queue: queue.map(|q| q.as_bytes().to_vec()),
            sid: sid.as_bytes().to_vec(),
        }
    }

    /// What a caller ends up with after feeding a stream.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        ops: Vec<Owned>,
        err: Option<ProtoError>,
        /// Bytes left in the buffer at the end (only compared for error-free streams).
        left: usize,
    }

    /// Simulates the connection's read loop: append each piece, parse until `NeedMore`,
    /// drop consumed bytes. Checks the `consumed`/`needed_bytes` contract on the way.
    fn run<'p>(parser: &mut Parser, pieces: impl IntoIterator<Item = &'p [u8]>) -> Outcome {
        let mut buf: Vec<u8> = Vec::new();
        let mut ops = Vec::new();
        for piece in pieces {
            buf.extend_from_slice(piece);
            loop {
                let consumed = match parser.parse(&buf) {
                    Ok(Parsed::Op { op, consumed }) => {
                        ops.push(own(&op));
                        consumed
                    }
                    Ok(Parsed::NeedMore { needed_bytes }) => {
                        assert!(
                            needed_bytes == 0 || needed_bytes > buf.len(),
                            "needed_bytes {needed_bytes} with {} buffered",
                            buf.len()
                        );
                        break;
                    }
                    Err(e) => {
                        return Outcome {
                            ops,
                            err: Some(e),
                            left: buf.len(),
                        }
                    }
                };
                assert!(consumed > 0 && consumed <= buf.len());
                buf.drain(..consumed);
            }
        }
        Outcome {
            ops,
            err: None,
            left: buf.len(),
        }
    }

    fn whole(parser: &mut Parser, stream: &[u8]) -> Outcome {
        run(parser, [stream])
    }

    fn bytewise(parser: &mut Parser, stream: &[u8]) -> Outcome {
        run(parser, stream.chunks(1))
    }

    /// Parses `input` in one go and returns the single result.
    fn one(input: &[u8]) -> Result<Parsed<'_>, ProtoError> {
        Parser::new(4096, 1 << 20).parse(input)
    }

    fn op_of(input: &[u8]) -> Result<Owned, ProtoError> {
        match one(input)? {
            Parsed::Op { op, consumed } => {
                assert_eq!(
                    consumed,
                    input.len(),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
                Ok(own(&op))
            }
            Parsed::NeedMore { .. } => panic!("NeedMore for {input:?}"),
        }
    }

    /// A small deterministic PRNG (xorshift64).
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
        }
    }

    /// Cuts `stream` into random pieces of 1..=`max_piece` bytes.
    fn random_pieces<'s>(rng: &mut XorShift, stream: &'s [u8], max_piece: usize) -> Vec<&'s [u8]> {
        let mut pieces = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let n = (1 + rng.below(max_piece)).min(rest.len());
            let (piece, tail) = rest.split_at(n);
            pieces.push(piece);
            rest = tail;
        }
        pieces
    }

    /// The mixed stream of every operation, with its expected parse.
    fn mixed_stream() -> (Vec<u8>, Vec<Owned>) {
        let mut s = Vec::new();
        let mut want = Vec::new();
        let connect = br#"{"verbose":false,"pedantic":false,"name":"t","lang":"rust","protocol":1,"echo":true,"headers":true,"no_responders":true}"#;
        s.extend_from_slice(b"CONNECT ");
        s.extend_from_slice(connect);
        s.extend_from_slice(b"\r\n");
        want.push(Owned::Connect(connect.to_vec()));

        s.extend_from_slice(b"sub foo.* 1\r\n");
        want.push(sub("foo.*", None, "1"));
        s.extend_from_slice(b"Sub\tbar.>\t\tworkers   2\n");
        want.push(sub("bar.>", Some("workers"), "2"));

        s.extend_from_slice(b"PUB foo.a 0\r\n\r\n");
        want.push(pubop("foo.a", None, 0, b""));

        let binary: &[u8] = b"a\r\nb\r\n\0\xff\rz\n";
        s.extend_from_slice(b"pUb\t foo.b  _INBOX.9\t11\r\n");
        s.extend_from_slice(binary);
        s.extend_from_slice(b"\r\n");
        want.push(pubop("foo.b", Some("_INBOX.9"), 0, binary));

        let hbody: &[u8] = b"NATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!";
        s.extend_from_slice(b"HPUB FOO 22 33\r\n");
        s.extend_from_slice(hbody);
        s.extend_from_slice(b"\r\n");
        want.push(pubop("FOO", None, 22, hbody));

        let hbody2: &[u8] = b"NATS/1.0\r\n\r\nhi";
        s.extend_from_slice(b"hpub foo.d r.1 12 14\n");
        s.extend_from_slice(hbody2);
        s.extend_from_slice(b"\r\n");
        want.push(pubop("foo.d", Some("r.1"), 12, hbody2));

        // Empty lines between operations are skipped.
        s.extend_from_slice(b"\r\n\n\r\n");

        s.extend_from_slice(b"UNSUB 1 5\r\n");
        want.push(Owned::Unsub {
            sid: b"1".to_vec(),
            max_msgs: Some(5),
        });
        s.extend_from_slice(b"unsub\t2\n");
        want.push(Owned::Unsub {
            sid: b"2".to_vec(),
            max_msgs: None,
        });
        s.extend_from_slice(b"PING\r\npong  \r\nPiNg\t\n");
        want.extend([Owned::Ping, Owned::Pong, Owned::Ping]);
        s.extend_from_slice(b"INFO {\"server_id\":\"x\"} \r\n+ok\r\n-ERR 'Stale Connection'\r\n");
        want.extend([Owned::Info, Owned::Ok, Owned::Err]);

        let big: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        s.extend_from_slice(b"PUB big 300\r\n");
        s.extend_from_slice(&big);
        s.extend_from_slice(b"\r\n");
        want.push(pubop("big", None, 0, &big));
        s.extend_from_slice(b"PONG\r\n");
        want.push(Owned::Pong);
        (s, want)
    }

    fn expect_clean(want: &[Owned]) -> Outcome {
        Outcome {
            ops: want.to_vec(),
            err: None,
            left: 0,
        }
    }

    #[test]
    fn mixed_stream_whole() {
        let (s, want) = mixed_stream();
        assert_eq!(whole(&mut Parser::new(4096, 1024), &s), expect_clean(&want));
    }

    #[test]
    fn mixed_stream_split_at_every_position() {
        let (s, want) = mixed_stream();
        for at in 0..=s.len() {
            let (a, b) = s.split_at(at);
            let mut parser = Parser::new(4096, 1024);
            assert_eq!(
                run(&mut parser, [a, b]),
                expect_clean(&want),
                "split at {at}"
            );
        }
    }

    #[test]
    fn mixed_stream_one_byte_at_a_time() {
        let (s, want) = mixed_stream();
        assert_eq!(
            bytewise(&mut Parser::new(4096, 1024), &s),
            expect_clean(&want)
        );
    }

    #[test]
    fn mixed_stream_random_splits() {
        let (s, want) = mixed_stream();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..500 {
            let max_piece = [2, 7, 33, 128, 1000][round % 5];
            let pieces = random_pieces(&mut rng, &s, max_piece);
            let mut parser = Parser::new(4096, 1024);
            assert_eq!(
                run(&mut parser, pieces),
                expect_clean(&want),
                "round {round}"
            );
        }
    }

    #[test]
    fn every_verb_in_any_case() {
        let cases: [(&[u8], Owned); 24] = [
            (b"PING\r\n", Owned::Ping),
            (b"ping\r\n", Owned::Ping),
            (b"pInG \t \r\n", Owned::Ping),
            (b"PONG\n", Owned::Pong),
            (b"pong\r\n", Owned::Pong),
            (b"PoNg  \n", Owned::Pong),
            (b"SUB a 1\r\n", sub("a", None, "1")),
            (b"sub\ta\t\t1\n", sub("a", None, "1")),
            (b"sUb  a  q  1  \r\n", sub("a", Some("q"), "1")),
            (
                b"UNSUB 1\r\n",
                Owned::Unsub {
                    sid: b"1".to_vec(),
                    max_msgs: None,
                },
            ),
            (
                b"unsub\t1\t\t10\n",
                Owned::Unsub {
                    sid: b"1".to_vec(),
                    max_msgs: Some(10),
                },
            ),
            (
                b"UnSuB 7 \r\n",
                Owned::Unsub {
                    sid: b"7".to_vec(),
                    max_msgs: None,
                },
            ),
            (b"PUB a 2\r\nhi\r\n", pubop("a", None, 0, b"hi")),
            (b"pub\ta\t\tr\t2\nhi\r\n", pubop("a", Some("r"), 0, b"hi")),
            (b"Pub   a   2   \r\nhi\r\n", pubop("a", None, 0, b"hi")),
            (
                b"HPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
                pubop("a", None, 12, b"NATS/1.0\r\n\r\nhi"),
            ),
            (
                b"hpub\ta\tr\t12\t12\nNATS/1.0\r\n\r\n\r\n",
                pubop("a", Some("r"), 12, b"NATS/1.0\r\n\r\n"),
            ),
            (b"CONNECT {}\r\n", Owned::Connect(b"{}".to_vec())),
            (
                b"connect \t {\"a\": 1} \t\n",
                Owned::Connect(b"{\"a\": 1}".to_vec()),
            ),
            (b"CoNnEcT\t{}\r\n", Owned::Connect(b"{}".to_vec())),
            (b"info {}\r\n", Owned::Info),
            (b"InFo\n", Owned::Info),
            (b"+Ok\r\n", Owned::Ok),
            (b"-err 'x'\n", Owned::Err),
        ];
        for (input, want) in cases {
            assert_eq!(
                op_of(input),
                Ok(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn empty_lines_are_skipped_and_counted() {
        assert_eq!(
            one(b"\r\n\n\r\nPING\r\nPONG\r\n"),
            Ok(Parsed::Op {
                op: Op::Ping,
                consumed: 11
            })
        );
        assert_eq!(one(b"\r\n\n"), Ok(Parsed::NeedMore { needed_bytes: 0 }));
        assert_eq!(one(b"\r"), Ok(Parsed::NeedMore { needed_bytes: 0 }));
        assert_eq!(one(b"\rPING\r\n"), Err(ProtoError::UnknownOp));
        // A payload's size counts from the buffer start, empty lines included.
        assert_eq!(
            one(b"\r\nPUB a 5\r\nhe"),
            Ok(Parsed::NeedMore { needed_bytes: 18 })
        );
    }

    #[test]
    fn endless_empty_lines_are_bounded() {
        let mut blanks = b"\r\n".repeat(8);
        blanks.extend_from_slice(b"PING\r\n");
        // 16 bytes of empty lines are fine with a 16-byte limit...
        assert_eq!(
            whole(&mut Parser::new(16, 16), &blanks).ops,
            vec![Owned::Ping]
        );
        // ...17 are not, however they arrive.
        let mut more = b"\n".to_vec();
        more.extend_from_slice(&blanks);
        assert_eq!(
            whole(&mut Parser::new(16, 16), &more).err,
            Some(ProtoError::ControlLineTooLong)
        );
        let out = bytewise(&mut Parser::new(16, 16), &b"\n".repeat(100));
        assert_eq!(out.err, Some(ProtoError::ControlLineTooLong));
        assert_eq!(out.left, 17);
    }

    #[test]
    fn need_more_reports_the_operation_size_once_known() {
        let mut p = Parser::new(4096, 1024);
        assert_eq!(
            p.parse(b"PUB a 5"),
            Ok(Parsed::NeedMore { needed_bytes: 0 })
        );
        assert_eq!(
            p.parse(b"PUB a 5\r\n"),
            Ok(Parsed::NeedMore { needed_bytes: 16 })
        );
        assert_eq!(
            p.parse(b"PUB a 5\r\nhello\r"),
            Ok(Parsed::NeedMore { needed_bytes: 16 })
        );
        assert_eq!(
            p.parse(b"PUB a 5\r\nhello\r\nPI"),
            Ok(Parsed::Op {
                op: Op::Pub(Publish {
                    subject: b"a",
                    reply: None,
                    header_len: 0,
                    has_headers: false,
                    body: b"hello"
                }),
                consumed: 16
            })
        );
        assert_eq!(p.parse(b"PI"), Ok(Parsed::NeedMore { needed_bytes: 0 }));
        assert_eq!(
            p.parse(b"PING\r\n"),
            Ok(Parsed::Op {
                op: Op::Ping,
                consumed: 6
            })
        );
    }

    #[test]
    fn control_line_limit_is_exact_and_early() {
        const MAX: usize = 16;
        // Exactly MAX bytes of line pass, with either ending.
        let line = b"SUB abcdefghij 1";
        assert_eq!(line.len(), MAX);
        for ending in [&b"\r\n"[..], b"\n"] {
            let mut s = line.to_vec();
            s.extend_from_slice(ending);
            let out = bytewise(&mut Parser::new(MAX, 64), &s);
            assert_eq!(out.ops, vec![sub("abcdefghij", None, "1")]);
            assert_eq!(out.err, None);
            assert_eq!(whole(&mut Parser::new(MAX, 64), &s).ops.len(), 1);
        }
        // MAX + 1 bytes without a newline fail at once, not at the newline.
        let mut p = Parser::new(MAX, 64);
        let long = b"SUB abcdefghijk 1 and much more that never ends";
        let mut buf = Vec::new();
        for (i, &b) in long.iter().enumerate() {
            buf.push(b);
            let r = p.parse(&buf);
            if i < MAX {
                assert_eq!(r, Ok(Parsed::NeedMore { needed_bytes: 0 }), "at {i}");
            } else {
                assert_eq!(r, Err(ProtoError::ControlLineTooLong), "at {i}");
                assert_eq!(buf.len(), MAX + 1);
                break;
            }
        }
        // MAX + 1 bytes whose last is '\r' may still be "\r\n": wait for one more byte.
        let mut p = Parser::new(MAX, 64);
        let mut s = line.to_vec();
        s.push(b'\r');
        assert_eq!(p.parse(&s), Ok(Parsed::NeedMore { needed_bytes: 0 }));
        s.push(b'x');
        assert_eq!(p.parse(&s), Err(ProtoError::ControlLineTooLong));
        // A complete line one byte too long fails too.
        assert_eq!(
            Parser::new(MAX, 64).parse(b"SUB abcdefghijk 1\r\n"),
            Err(ProtoError::ControlLineTooLong)
        );
        assert_eq!(
            Parser::new(MAX, 64).parse(b"SUB abcdefghijk 1\n"),
            Err(ProtoError::ControlLineTooLong)
        );
        // The CONNECT JSON counts.
        assert_eq!(
            Parser::new(MAX, 64).parse(b"CONNECT {\"a\":123}\r\n"),
            Err(ProtoError::ControlLineTooLong)
        );
    }

    #[test]
    fn payload_limit_is_decided_from_the_control_line() {
        let mut p = Parser::new(4096, 1024);
        assert_eq!(p.parse(b"PUB a 1025\r\n"), Err(ProtoError::PayloadTooLarge));
        assert_eq!(
            p.parse(b"pub a reply 1000000\n"),
            Err(ProtoError::PayloadTooLarge)
        );
        assert_eq!(
            p.parse(b"PUB a 1024\r\n"),
            Ok(Parsed::NeedMore {
                needed_bytes: 12 + 1024 + 2
            })
        );
        let mut p = Parser::new(4096, 1024);
        // HPUB compares the total size, not the header size.
        assert_eq!(
            p.parse(b"HPUB a 12 1025\r\n"),
            Err(ProtoError::PayloadTooLarge)
        );
        assert_eq!(
            p.parse(b"HPUB a 12 1024\r\n"),
            Ok(Parsed::NeedMore {
                needed_bytes: 16 + 1024 + 2
            })
        );
        let mut p = Parser::new(4096, 1024);
        assert_eq!(
            p.parse(b"HPUB a 34 33\r\n"),
            Err(ProtoError::BadArguments(
                "HPUB: header size exceeds total size"
            ))
        );
        assert_eq!(p.payload_bytes_max(), 1024);
    }

    #[test]
    fn bad_arguments() {
        for input in [
            &b"PUB\r\n"[..],
            b"PUB a\r\n",
            b"PUB a b c 1\r\n",
            b"PUB a x\r\n",
            b"PUB a 1x\r\n",
            b"PUB a +1\r\n",
            b"PUB a 99999999999999999999999\r\n",
            b"HPUB a 1\r\n",
            b"HPUB a r s 1 2\r\n",
            b"HPUB a x 2\r\n",
            b"HPUB a 3 2\r\n",
            b"SUB\r\n",
            b"SUB a\r\n",
            b"SUB a q 1 x\r\n",
            b"UNSUB\r\n",
            b"UNSUB 1 2 3\r\n",
            b"UNSUB 1 x\r\n",
            b"PING x\r\n",
            b"PONG 1\r\n",
            b"CONNECT\r\n",
            b"CONNECT \t \r\n",
        ] {
            assert!(
                matches!(one(input), Err(ProtoError::BadArguments(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(input),
                one(input)
            );
        }
        assert_eq!(
            one(b"PUB a 99999999999999999999999\r\n"),
            Err(ProtoError::BadArguments("PUB: size overflows"))
        );
    }

    #[test]
    fn unknown_verbs() {
        for input in [
            &b"FOO\r\n"[..],
            b"MSG a 1 2\r\n",
            b"HMSG a 1 2 2\r\n",
            b"PUBX a 1\r\n",
            b"PINGX\r\n",
            b" PING\r\n",
            b"RS+ a\r\n",
            b"OK\r\n",
            b"ERR\r\n",
        ] {
            assert_eq!(
                one(input),
                Err(ProtoError::UnknownOp),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            ProtoError::UnknownOp.err_text(),
            Some("Unknown Protocol Operation")
        );
    }

    #[test]
    fn bad_payload_terminator() {
        assert_eq!(
            one(b"PUB a 2\r\nabc\r\n"),
            Err(ProtoError::BadPayloadTerminator)
        );
        assert_eq!(
            one(b"PUB a 2\r\nab\n"),
            Err(ProtoError::BadPayloadTerminator)
        );
        assert_eq!(
            one(b"PUB a 2\r\nab\rx"),
            Err(ProtoError::BadPayloadTerminator)
        );
        // Detected as soon as the first wrong byte arrives.
        assert_eq!(
            one(b"PUB a 2\r\nabc"),
            Err(ProtoError::BadPayloadTerminator)
        );
        assert_eq!(
            one(b"HPUB a 12 12\r\nNATS/1.0\r\n\r\nX\r\n"),
            Err(ProtoError::BadPayloadTerminator)
        );
        assert_eq!(
            ProtoError::BadPayloadTerminator.err_text(),
            Some("Unknown Protocol Operation")
        );
    }

    #[test]
    fn ops_before_an_error_are_delivered() {
        let s = b"PING\r\nSUB a 1\r\nPUB a 1\r\nxy\r\nPING\r\n";
        let out = whole(&mut Parser::new(4096, 1024), s);
        assert_eq!(out.ops, vec![Owned::Ping, sub("a", None, "1")]);
        assert_eq!(out.err, Some(ProtoError::BadPayloadTerminator));
    }

    #[test]
    fn large_payload_in_pieces_is_not_rescanned() {
        const MIB: usize = 1 << 20;
        let payload: Vec<u8> = (0..MIB)
            .map(|i| if i % 7 == 0 { b'\n' } else { b'x' })
            .collect();
        let mut s = b"PUB some.subject _INBOX.abc 1048576\r\n".to_vec();
        let line_len = s.len();
        s.extend_from_slice(&payload);
        s.extend_from_slice(b"\r\nPING\r\n");
        let mut parser = Parser::new(4096, 2 * MIB);
        let mut need_mores = 0;
        let mut buf = Vec::new();
        let mut ops = Vec::new();
        for piece in s.chunks(64 * 1024) {
            buf.extend_from_slice(piece);
            loop {
                match parser.parse(&buf) {
                    Ok(Parsed::Op { op, consumed }) => {
                        ops.push(own(&op));
                        buf.drain(..consumed);
                    }
                    Ok(Parsed::NeedMore { needed_bytes }) => {
                        if needed_bytes != 0 {
                            assert_eq!(needed_bytes, line_len + MIB + 2);
                            need_mores += 1;
                        }
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(need_mores, 16);
        assert_eq!(
            ops,
            vec![
                pubop("some.subject", Some("_INBOX.abc"), 0, &payload),
                Owned::Ping
            ]
        );
        // Only the two control lines were ever examined, each byte once.
        assert_eq!(parser.examined(), line_len + b"PING\r\n".len());
    }

    #[test]
    fn control_line_in_pieces_is_not_rescanned() {
        let mut line = b"SUB ".to_vec();
        line.extend_from_slice(&[b'a'; 4000]);
        line.extend_from_slice(b" 1\r\n");
        let mut parser = Parser::new(4096, 1024);
        let out = bytewise(&mut parser, &line);
        assert_eq!(out.ops.len(), 1);
        assert_eq!(parser.examined(), line.len());

        let mut blanks = b"\r\n\n".repeat(10);
        blanks.extend_from_slice(b"PING\r\n");
        let mut parser = Parser::new(4096, 1024);
        assert_eq!(bytewise(&mut parser, &blanks).ops, vec![Owned::Ping]);
        // Each lone '\r' at the end of the buffer is looked at once more when its '\n' arrives.
        assert_eq!(parser.examined(), blanks.len() + 10);
    }

    #[test]
    fn shrunk_buffer_does_not_panic() {
        let mut p = Parser::new(4096, 1024);
        assert_eq!(
            p.parse(b"SUB abc"),
            Ok(Parsed::NeedMore { needed_bytes: 0 })
        );
        assert_eq!(p.parse(b"SU"), Ok(Parsed::NeedMore { needed_bytes: 0 }));
        assert!(matches!(p.parse(b"SUB a 1\r\n"), Ok(Parsed::Op { .. })));
        assert_eq!(
            p.parse(b"PUB a 5\r\nab"),
            Ok(Parsed::NeedMore { needed_bytes: 16 })
        );
        assert_eq!(p.parse(b"PUB"), Ok(Parsed::NeedMore { needed_bytes: 0 }));
        assert_eq!(p.parse(b""), Ok(Parsed::NeedMore { needed_bytes: 0 }));
        assert!(matches!(
            p.parse(b"PING\r\n"),
            Ok(Parsed::Op { op: Op::Ping, .. })
        ));
    }

    #[test]
    fn zero_limits_do_not_panic() {
        let mut p = Parser::new(0, 0);
        assert_eq!(p.parse(b"P"), Err(ProtoError::ControlLineTooLong));
        assert_eq!(p.parse(b"\n"), Err(ProtoError::ControlLineTooLong));
        let mut p = Parser::new(usize::MAX, usize::MAX);
        assert_eq!(
            p.parse(b"PUB a 18446744073709551615\r\n"),
            Err(ProtoError::PayloadTooLarge)
        );
    }

    /// Random streams made of valid and broken fragments must parse the same way (same ops,
    /// same error) however they are split, and never panic.
    #[test]
    fn random_streams_parse_the_same_however_split() {
        // The first VALID fragments are well-formed operations; the rest break the stream.
        const VALID: usize = 12;
        let fragments: [&[u8]; 23] = [
            b"PING\r\n",
            b"pong\n",
            b"\r\n",
            b"\n",
            b"SUB a.b q 1\r\n",
            b"unsub 1 3\n",
            b"PUB a 3\r\nx\ny\r\n",
            b"PUB a 0\n\r\n",
            b"HPUB h r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
            b"CONNECT {\"verbose\":false}\r\n",
            b"+OK\r\n",
            b"-ERR 'x'\r\n",
            b"\r",
            b"PUB a 3\r\nxy\r\n",
            b"HPUB h 13 12\r\n",
            b"PUB a 999\r\n",
            b"FOO\r\n",
            b"SUB a\r\n",
            b"PUB a x\r\n",
            b"SUB aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1",
            b"\t",
            b"  ",
            b"\xff\x00",
        ];
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let mut errors_seen = 0;
        let mut ops_seen = 0;
        for round in 0..400 {
            let mut s = Vec::new();
            for _ in 0..(1 + rng.below(12)) {
                // Valid fragments are more likely, so errors tend to come late in the stream.
                let pick = if rng.below(4) == 0 {
                    rng.below(fragments.len())
                } else {
                    rng.below(VALID)
                };
                s.extend_from_slice(fragments.get(pick).copied().unwrap_or_default());
            }
            let reference = whole(&mut Parser::new(48, 64), &s);
            errors_seen += usize::from(reference.err.is_some());
            ops_seen += reference.ops.len();
            let want = (reference.ops, reference.err);
            let summary = |o: Outcome| (o.ops, o.err);
            assert_eq!(
                summary(bytewise(&mut Parser::new(48, 64), &s)),
                want,
                "round {round} bytewise: {:?}",
                String::from_utf8_lossy(&s)
            );
            for max_piece in [3, 17] {
                let pieces = random_pieces(&mut rng, &s, max_piece);
                assert_eq!(
                    summary(run(&mut Parser::new(48, 64), pieces)),
                    want,
                    "round {round} pieces: {:?}",
                    String::from_utf8_lossy(&s)
                );
            }
        }
        assert!(ops_seen > 1000, "only {ops_seen} operations parsed");
        assert!(errors_seen > 50, "only {errors_seen} erroring streams");
    }

    #[test]
    fn helpers() {
        assert_eq!(trim_ws(b" \t a b \t"), b"a b");
        assert_eq!(trim_ws(b" \t "), b"");
        assert_eq!(trim_ws(b""), b"");
        assert_eq!(parse_number(b"0"), Ok(0));
        assert_eq!(parse_number(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_number(b"18446744073709551616"),
            Err(NumberError::Overflow)
        );
        assert_eq!(parse_number(b""), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"1 "), Err(NumberError::NotANumber));
        let a = split_args::<2>(b"  x\t\ty  ");
        let spans: Vec<&[u8]> = a
            .as_ref()
            .map(|a| {
                a.as_slice()
                    .iter()
                    .map(|s| s.slice(b"  x\t\ty  "))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(spans, vec![&b"x"[..], b"y"]);
        assert!(split_args::<2>(b"x y z").is_none());
        assert!(split_args::<2>(b"").is_some_and(|a| a.as_slice().is_empty()));
    }
}
