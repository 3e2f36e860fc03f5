//! Parser tests: every operation, every limit, every split point.

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
