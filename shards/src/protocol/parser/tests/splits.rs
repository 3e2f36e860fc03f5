//! One stream split at every point, byte by byte and at random: the same operations,
//! and no byte examined twice.

use super::*;

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
