//! Parser tests: the operations and limits (`ops`), and the same streams split at
//! every point (`splits`). This file holds what both use.

mod ops;
mod props;
mod splits;

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
