//! Property: any stream of operations (well formed or not), split into any pieces, gives
//! the same operations and the same error as the whole stream at once.

use proptest::prelude::*;

use super::*;

/// A token of a subject or sid: a few letters, sometimes a wildcard.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        Just("*".to_string()),
        Just(">".to_string()),
        "[A-Z0-9_]{1,4}",
    ]
}

fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..4).prop_map(|t| t.join("."))
}

/// One operation's bytes: mostly valid ones, some broken.
fn op() -> impl Strategy<Value = Vec<u8>> {
    let payload = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (subject(), payload.clone()).prop_map(|(s, p)| {
            let mut v = format!("PUB {s} {}\r\n", p.len()).into_bytes();
            v.extend_from_slice(&p);
            v.extend_from_slice(b"\r\n");
            v
        }),
        (subject(), subject(), payload.clone()).prop_map(|(s, r, p)| {
            let h = b"NATS/1.0\r\nA: b\r\n\r\n";
            let mut v = format!("HPUB {s} {r} {} {}\r\n", h.len(), h.len() + p.len()).into_bytes();
            v.extend_from_slice(h);
            v.extend_from_slice(&p);
            v.extend_from_slice(b"\r\n");
            v
        }),
        (subject(), prop::option::of("[a-z]{1,5}"), 1u32..1000).prop_map(|(s, q, sid)| {
            match q {
                Some(q) => format!("SUB {s} {q} {sid}\r\n").into_bytes(),
                None => format!("sub\t{s}  {sid}\n").into_bytes(),
            }
        }),
        (1u32..1000, prop::option::of(0u64..10)).prop_map(|(sid, max)| match max {
            Some(m) => format!("UNSUB {sid} {m}\r\n").into_bytes(),
            None => format!("UNSUB {sid}\r\n").into_bytes(),
        }),
        Just(b"PING\r\n".to_vec()),
        Just(b"pong\n".to_vec()),
        Just(b"\r\n\r\n".to_vec()),
        Just(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n".to_vec()),
        Just(b"+OK\r\n".to_vec()),
        // Broken: a wrong size, an unknown verb, a long line, random bytes.
        (subject(), payload.clone()).prop_map(|(s, p)| {
            let mut v = format!("PUB {s} {}\r\n", p.len() + 1).into_bytes();
            v.extend_from_slice(&p);
            v.extend_from_slice(b"\r\n");
            v
        }),
        Just(b"FOO bar\r\n".to_vec()),
        Just([b"SUB ".as_slice(), &[b'a'; 300], b" 1\r\n"].concat()),
        prop::collection::vec(any::<u8>(), 0..16),
    ]
}

proptest! {
    #[test]
    fn any_split_gives_the_same_operations(
        ops in prop::collection::vec(op(), 0..24),
        cuts in prop::collection::vec(1usize..64, 1..64),
    ) {
        let stream: Vec<u8> = ops.concat();
        let whole = run(&mut Parser::new(256, 1024), [stream.as_slice()]);
        let mut pieces = Vec::new();
        let mut at = 0;
        for c in cuts.iter().cycle() {
            if at >= stream.len() {
                break;
            }
            let end = (at + c).min(stream.len());
            pieces.push(&stream[at..end]);
            at = end;
        }
        let split = run(&mut Parser::new(256, 1024), pieces);
        prop_assert_eq!(&split.ops, &whole.ops);
        prop_assert_eq!(&split.err, &whole.err);
    }
}
