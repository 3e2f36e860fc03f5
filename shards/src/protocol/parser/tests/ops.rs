//! Each operation and each limit: verbs, arguments, empty lines, sizes, errors.

use super::*;

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
