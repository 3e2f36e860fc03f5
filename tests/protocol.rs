//! Byte-exact protocol conversations with a real server (2 shards) over real TCP:
//! every -ERR path with its close-or-continue behaviour, headers, binary payloads,
//! wildcards, UNSUB max, echo, no-responders, fragmentation and keepalive.

mod common;

use common::{client, client_and_cid, client_with, Raw, Server, XorShift, CONNECT_JSON};

#[test]
fn info_has_the_fields_clients_rely_on() {
    let s = Server::start(2);
    let (_c, info) = Raw::connect_info(s.addr);
    for key in ["server_id", "server_name", "version"] {
        assert!(
            info[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} in {info}"
        );
    }
    assert_eq!(info["proto"], 1);
    assert_eq!(info["host"], "127.0.0.1");
    assert_eq!(info["port"], s.addr.port());
    assert_eq!(info["max_payload"], 1048576);
    assert_eq!(info["headers"], true);
    assert!(info["client_id"].as_u64().is_some());
    let (_c2, info2) = Raw::connect_info(s.addr);
    assert_ne!(
        info["client_id"], info2["client_id"],
        "client ids are unique"
    );
}

#[test]
fn verbose_connect_acks_every_operation() {
    let s = Server::start(2);
    let (mut c, _) = Raw::connect_info(s.addr);
    c.send(b"CONNECT {}\r\n");
    c.expect(b"+OK\r\n");
    c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nUNSUB 99\r\nPING\r\n");
    // PUB is acked before its delivery, as nats-server does.
    c.expect(b"+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\n+OK\r\n+OK\r\nPONG\r\n");
}

#[test]
fn pub_sub_exact_bytes_with_reply_and_empty_payload() {
    let s = Server::start(2);
    let mut c = client(&s);
    c.send(b"SUB foo.bar 7\r\nPUB foo.bar inbox.1 5\r\nhello\r\nPUB foo.bar 0\r\n\r\nPING\r\n");
    c.expect(b"MSG foo.bar 7 inbox.1 5\r\nhello\r\nMSG foo.bar 7 0\r\n\r\nPONG\r\n");
}

#[test]
fn verbs_are_case_insensitive_and_args_may_use_tabs() {
    let s = Server::start(2);
    let mut c = client(&s);
    c.send(b"sub\tcase.x \t 1\r\npub case.x 1\r\na\r\nPuB case.x 1\r\nb\r\nping\n");
    c.expect(b"MSG case.x 1 1\r\na\r\nMSG case.x 1 1\r\nb\r\nPONG\r\n");
}

#[test]
fn binary_payload_with_crlf_inside_is_delivered_intact() {
    let s = Server::start(2);
    let mut c = client(&s);
    let payload: Vec<u8> = (0..=255u8).chain(*b"\r\nPING\r\n\r\n").collect();
    c.send(b"SUB bin 1\r\n");
    c.send(format!("PUB bin {}\r\n", payload.len()).as_bytes());
    c.send(&payload);
    c.send(b"\r\nPING\r\n");
    let (subject, sid, reply, body) = c.msg();
    assert_eq!((subject.as_str(), sid.as_str(), reply), ("bin", "1", None));
    assert_eq!(body, payload);
    c.expect(b"PONG\r\n");
}

#[test]
fn headers_are_delivered_as_hmsg_and_stripped_for_clients_without_headers() {
    let s = Server::start(2);
    let mut with = client(&s);
    let mut without = client_with(&s, r#"{"verbose":false,"headers":false}"#);
    with.send(b"SUB h 1\r\n");
    with.flush();
    without.send(b"SUB h 2\r\n");
    without.flush();
    let mut p = client(&s);
    p.send(b"HPUB h rep 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n");
    p.flush();
    with.expect(b"HMSG h 1 rep 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n");
    without.expect(b"MSG h 2 rep 11\r\nHello NATS!\r\n");
}

#[test]
fn one_message_to_many_subscribers_is_encoded_right_for_each() {
    // On one shard all five are local: the frame encoded for the first subscriber must
    // not leak its sid or its headers to the others.
    let s = Server::start(1);
    let mut subs: Vec<(Raw, &[u8])> = vec![
        (
            client(&s),
            b"HMSG h 1 rep 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n",
        ),
        (
            client(&s),
            b"HMSG h 17 rep 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n",
        ),
        (
            client_with(&s, r#"{"verbose":false,"headers":false}"#),
            b"MSG h 1 rep 11\r\nHello NATS!\r\n",
        ),
        (
            client(&s),
            b"HMSG h 1 rep 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n",
        ),
        (
            client(&s),
            b"HMSG h 2 rep 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n",
        ),
    ];
    for (i, (c, _)) in subs.iter_mut().enumerate() {
        let sid = [1, 17, 1, 1, 2][i];
        c.send(format!("SUB h {sid}\r\n").as_bytes());
        c.flush();
    }
    let mut p = client(&s);
    p.send(b"HPUB h rep 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\nPUB h 2\r\nok\r\n");
    p.flush();
    for (c, want) in &mut subs {
        c.expect(want);
    }
    for (i, (c, _)) in subs.iter_mut().enumerate() {
        let sid = [1, 17, 1, 1, 2][i];
        c.expect(format!("MSG h {sid} 2\r\nok\r\n").as_bytes());
    }
}

#[test]
fn a_burst_of_publishes_keeps_each_subscriptions_order_and_sid() {
    // One read carries several publishes: consecutive ones to the same subject are
    // delivered to each subscriber together (a run), re-encoded for every sid, and a
    // subscriber of several subjects still sees the publisher's order.
    let s = Server::start(1);
    let lines = ["SUB t.a 5\r\n", "SUB t.a 1\r\n", "SUB t.* 1\r\n"];
    let mut subs = common::subscribed(&s, 3, |i| lines[i].to_string());
    let mut p = client(&s);
    p.send(
        b"PUB t.a 2\r\nx1\r\nPUB t.a r 2\r\nx2\r\nPUB t.b 2\r\ny1\r\nPUB t.a 2\r\nx3\r\nPING\r\n",
    );
    p.expect(b"PONG\r\n");
    subs[0].expect(b"MSG t.a 5 2\r\nx1\r\nMSG t.a 5 r 2\r\nx2\r\nMSG t.a 5 2\r\nx3\r\n");
    subs[1].expect(b"MSG t.a 1 2\r\nx1\r\nMSG t.a 1 r 2\r\nx2\r\nMSG t.a 1 2\r\nx3\r\n");
    subs[2].expect(
        b"MSG t.a 1 2\r\nx1\r\nMSG t.a 1 r 2\r\nx2\r\nMSG t.b 1 2\r\ny1\r\nMSG t.a 1 2\r\nx3\r\n",
    );
}

#[test]
fn two_subscriptions_on_one_connection_get_each_message_in_turn() {
    let s = Server::start(1);
    let mut a = client(&s);
    a.send(b"SUB u.a 1\r\nSUB u.> 9\r\n");
    a.flush();
    let mut other = client(&s);
    other.send(b"SUB u.a 2\r\n");
    other.flush();
    let mut p = client(&s);
    p.send(b"PUB u.a 2\r\nx1\r\nPUB u.a 2\r\nx2\r\nPING\r\n");
    p.expect(b"PONG\r\n");
    // As nats-server: each message to both subscriptions before the next message.
    let got: Vec<(String, Vec<u8>)> = a
        .msgs(4)
        .into_iter()
        .map(|(_, sid, _, body)| (sid, body))
        .collect();
    let bodies: Vec<&[u8]> = got.iter().map(|(_, b)| &b[..]).collect();
    assert_eq!(bodies, [&b"x1"[..], b"x1", b"x2", b"x2"], "{got:?}");
    let mut sids: Vec<&str> = got[..2].iter().map(|(s, _)| s.as_str()).collect();
    sids.sort();
    assert_eq!(sids, ["1", "9"]);
    other.expect(b"MSG u.a 2 2\r\nx1\r\nMSG u.a 2 2\r\nx2\r\n");
}

#[test]
fn wildcards_match_whole_tokens_and_each_sub_gets_its_copy() {
    let s = Server::start(2);
    let mut c = client(&s);
    c.send(b"SUB a.* 1\r\nSUB a.> 2\r\nSUB a.b.c 3\r\nSUB f*o 4\r\nPING\r\n");
    c.expect(b"PONG\r\n");
    c.send(b"PUB a 1\r\nx\r\nPUB a.b.c 1\r\ny\r\nPUB f*o 1\r\nz\r\nPING\r\n");
    let mut got = c.msgs(3);
    c.expect(b"PONG\r\n");
    got.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(got[0].0, "a.b.c");
    assert_eq!(
        (got[0].1.as_str(), got[1].1.as_str(), got[2].1.as_str()),
        ("2", "3", "4")
    );
    c.send(b"PUB a.q 1\r\nw\r\nPING\r\n");
    let mut got = c.msgs(2);
    c.expect(b"PONG\r\n");
    got.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!((got[0].1.as_str(), got[1].1.as_str()), ("1", "2"));
}

#[test]
fn unsub_max_delivers_exactly_max_then_stops() {
    let s = Server::start(2);
    let mut c = client(&s);
    c.send(b"SUB foo.u 1\r\nUNSUB 1 2\r\nPUB foo.u 1\r\na\r\nPUB foo.u 1\r\nb\r\nPUB foo.u 1\r\nc\r\nPING\r\n");
    c.expect(b"MSG foo.u 1 1\r\na\r\nMSG foo.u 1 1\r\nb\r\nPONG\r\n");
    // A limit at or below what was delivered removes the subscription at once.
    c.send(b"SUB foo.v 2\r\nPUB foo.v 1\r\na\r\nUNSUB 2 1\r\nPUB foo.v 1\r\nb\r\nPING\r\n");
    c.expect(b"MSG foo.v 2 1\r\na\r\nPONG\r\n");
    // The sid is free again afterwards.
    c.send(b"SUB foo.u 1\r\nPUB foo.u 1\r\nd\r\nPING\r\n");
    c.expect(b"MSG foo.u 1 1\r\nd\r\nPONG\r\n");
}

#[test]
fn unsub_max_counts_deliveries_from_other_shards() {
    let s = Server::start(2);
    let mut sub = client(&s);
    sub.send(b"SUB cnt 9\r\nUNSUB 9 3\r\n");
    sub.flush();
    let mut pubs: Vec<Raw> = (0..6).map(|_| client(&s)).collect();
    for p in &mut pubs {
        p.send(b"PUB cnt 1\r\nx\r\n");
        p.flush();
    }
    // Every publisher's PONG came after its message was in effect on every shard, and
    // `sub`'s PONG comes after anything queued for it: a fourth MSG would precede it.
    sub.send(b"PING\r\n");
    sub.expect(b"MSG cnt 9 1\r\nx\r\nMSG cnt 9 1\r\nx\r\nMSG cnt 9 1\r\nx\r\nPONG\r\n");
}

#[test]
fn duplicate_sid_is_a_silent_no_op() {
    let s = Server::start(2);
    let mut c = client(&s);
    c.send(b"SUB one 1\r\nSUB two 1\r\nPUB one 1\r\na\r\nPUB two 1\r\nb\r\nPING\r\n");
    c.expect(b"MSG one 1 1\r\na\r\nPONG\r\n");
}

#[test]
fn echo_false_suppresses_own_messages_only() {
    let s = Server::start(2);
    let mut me = client_with(&s, r#"{"verbose":false,"echo":false}"#);
    let mut other = client(&s);
    me.send(b"SUB e 1\r\n");
    me.flush();
    other.send(b"SUB e 2\r\n");
    other.flush();
    // Its own copy, had it been delivered, would be queued for `me` before the PONG.
    me.send(b"PUB e 2\r\nhi\r\nPING\r\n");
    me.expect(b"PONG\r\n");
    other.expect(b"MSG e 2 2\r\nhi\r\n");
    // `other` has echo on: it gets its own message, and so does `me`.
    other.send(b"PUB e 2\r\nyo\r\nPING\r\n");
    other.expect(b"MSG e 2 2\r\nyo\r\nPONG\r\n");
    me.expect(b"MSG e 1 2\r\nyo\r\n");
}

#[test]
fn no_responders_gets_a_503_status() {
    let s = Server::start(2);
    let mut c = client_with(
        &s,
        r#"{"verbose":false,"headers":true,"no_responders":true}"#,
    );
    c.send(b"SUB _INBOX.x.* 5\r\nPUB nobody.home _INBOX.x.1 2\r\nhi\r\nPING\r\n");
    c.expect(b"HMSG _INBOX.x.1 5 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n");
    // With a responder anywhere, no 503.
    let mut r = client(&s);
    r.send(b"SUB svc 1\r\n");
    r.flush();
    c.send(b"PUB svc _INBOX.x.2 2\r\nhi\r\nPING\r\n");
    c.expect(b"PONG\r\n");
    r.expect(b"MSG svc 1 _INBOX.x.2 2\r\nhi\r\n");
}

#[test]
fn unknown_operation_closes_with_err() {
    let s = Server::start(2);
    let mut c = client(&s);
    c.send(b"FOO bar\r\n");
    c.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
    c.expect_closed();
    let mut c = client(&s);
    c.send(b"MSG a 1 2\r\nhi\r\n");
    c.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
    c.expect_closed();
}

#[test]
fn wrong_payload_length_is_unknown_operation() {
    let s = Server::start(2);
    let mut c = client(&s);
    c.send(b"PUB a 2\r\nabc\r\n");
    c.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
    c.expect_closed();
}

#[test]
fn oversized_control_line_closes_before_the_line_ends() {
    let s = Server::start(2);
    let mut c = client(&s);
    let long = vec![b'a'; 5000];
    c.send(b"SUB ");
    c.send(&long);
    c.expect(b"-ERR 'maximum control line exceeded'\r\n");
    c.expect_closed();
}

#[test]
fn oversized_payload_closes_from_the_control_line_alone() {
    let s = Server::start(2);
    let mut c = client(&s);
    c.send(b"PUB big 1048577\r\n");
    c.expect(b"-ERR 'Maximum Payload Violation'\r\n");
    c.expect_closed();
    let mut c = client(&s);
    c.send(b"HPUB big 12 1048577\r\n");
    c.expect(b"-ERR 'Maximum Payload Violation'\r\n");
    c.expect_closed();
}

#[test]
fn payload_limit_is_configurable_and_announced() {
    let s = Server::start_with(2, "[limits]\nmax_payload = 16\n");
    let (mut c, info) = Raw::connect_info(s.addr);
    assert_eq!(info["max_payload"], 16);
    c.send(b"CONNECT {\"verbose\":false}\r\nSUB p 1\r\nPUB p 16\r\n0123456789abcdef\r\nPING\r\n");
    c.expect(b"MSG p 1 16\r\n0123456789abcdef\r\nPONG\r\n");
    c.send(b"PUB p 17\r\n");
    c.expect(b"-ERR 'Maximum Payload Violation'\r\n");
    c.expect_closed();
}

#[test]
fn invalid_subject_keeps_the_connection_open() {
    let s = Server::start(2);
    let mut c = client(&s);
    for bad in ["foo..bar", "foo.", "foo.>.bar", ".foo"] {
        c.send(format!("SUB {bad} 1\r\n").as_bytes());
        c.expect(b"-ERR 'Invalid Subject'\r\n");
    }
    c.flush();
}

#[test]
fn pedantic_invalid_publish_subject_is_reported_and_stays_open() {
    let s = Server::start(2);
    let mut c = client_with(&s, r#"{"verbose":false,"pedantic":true}"#);
    c.send(b"SUB > 1\r\nPUB foo.* 1\r\nx\r\n");
    c.expect(b"-ERR 'Invalid Publish Subject'\r\n");
    c.flush();
    // Without pedantic the publish silently matches nothing.
    let mut q = client(&s);
    q.send(b"SUB > 1\r\nPUB foo.* 1\r\nx\r\nPING\r\n");
    q.expect(b"PONG\r\n");
}

#[test]
fn max_subscriptions_is_enforced_per_connection_and_stays_open() {
    let s = Server::start_with(2, "[limits]\nmax_subscriptions = 2\n");
    let mut c = client(&s);
    c.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n");
    c.expect(b"-ERR 'maximum subscriptions exceeded'\r\n");
    c.send(b"PUB a 1\r\nx\r\nPUB c 1\r\ny\r\nPING\r\n");
    c.expect(b"MSG a 1 1\r\nx\r\nPONG\r\n");
    // Another connection has its own budget.
    let mut d = client(&s);
    d.send(b"SUB a 1\r\nSUB b 2\r\nPING\r\n");
    d.expect(b"PONG\r\n");
}

#[test]
fn max_connections_sends_info_then_err_and_closes() {
    let s = Server::start_with_logging(
        2,
        "[limits]\nmax_connections = 2\n",
        "shardcast=info,shards=debug",
    );
    let (a, cid_a) = client_and_cid(&s, CONNECT_JSON);
    let _b = client(&s);
    let (mut c, info) = Raw::connect_info(s.addr);
    c.expect(b"-ERR 'maximum connections exceeded'\r\n");
    c.expect_closed();
    drop(a);
    // A slot frees up once a client leaves. The server gives the slot back before it
    // logs "client closed" (and EOF on `c` may come before that): wait for the lines of
    // both `c` and `a`, then a new client must be served.
    let cid_c = info["client_id"].as_u64().expect("client_id");
    s.wait_for_client_log("client closed", cid_c);
    s.wait_for_client_log("client closed", cid_a);
    client(&s).flush();
}

#[test]
fn connect_errors_close_the_connection() {
    let s = Server::start(2);
    let (mut c, _) = Raw::connect_info(s.addr);
    c.send(b"CONNECT {\"protocol\":2}\r\n");
    c.expect(b"-ERR 'invalid client protocol'\r\n");
    c.expect_closed();
    let (mut c, _) = Raw::connect_info(s.addr);
    c.send(b"CONNECT {\"no_responders\":true}\r\n");
    c.expect(b"-ERR 'no responders requires headers support'\r\n");
    c.expect_closed();
    // Bad JSON: closed without an -ERR, as nats-server does.
    let (mut c, _) = Raw::connect_info(s.addr);
    c.send(b"CONNECT {nope\r\n");
    c.expect_closed();
}

#[test]
fn malformed_arguments_close_silently() {
    let s = Server::start(2);
    for bad in [
        "SUB a\r\n",
        "PUB a b c d\r\n",
        "PUB a x\r\n",
        "UNSUB\r\n",
        "HPUB a 10 5\r\n",
    ] {
        let mut c = client(&s);
        c.send(bad.as_bytes());
        c.expect_closed();
    }
}

/// A conversation script and the exact reply, on subjects unique to `tag`, so that many
/// connections can run it at once. Tags of the same number of digits give scripts of
/// the same length.
fn fragment_script(tag: usize) -> (Vec<u8>, Vec<u8>) {
    let script = format!(
        "SUB f{tag}.* q 1\r\nSUB f{tag}.> 2\r\nPUB f{tag}.x r 3\r\nabc\r\nHPUB f{tag}.y 12 14\r\nNATS/1.0\r\n\r\nhi\r\nUNSUB 2\r\nPUB f{tag}.z 2\r\n\r\n\r\nPING\r\n"
    );
    // Plain subscribers first, then queue groups, as nats-server orders them.
    let want = format!(
        "MSG f{tag}.x 2 r 3\r\nabc\r\nMSG f{tag}.x 1 r 3\r\nabc\r\nHMSG f{tag}.y 2 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHMSG f{tag}.y 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nMSG f{tag}.z 1 2\r\n\r\n\r\nPONG\r\n"
    );
    (script.into_bytes(), want.into_bytes())
}

/// A client running `fragment_script(tag)`, with its script and the reply it expects.
struct Fragmented {
    conn: Raw,
    script: Vec<u8>,
    want: Vec<u8>,
}

fn fragmented(s: &Server, tag: usize) -> Fragmented {
    let (script, want) = fragment_script(tag);
    Fragmented {
        conn: client(s),
        script,
        want,
    }
}

#[test]
fn a_stream_split_at_every_byte_gives_the_same_conversation() {
    // How the splits are made without sleeps: one shard, so every connection is read by
    // the same event loop, which reads each socket as its data arrives. Fragments sent
    // before `sync` sends a PING arrived before that PING; so when `sync` has its PONG,
    // the loop has read (and parsed as far as it could) every one of them, and what is
    // written next reaches it in a read of its own: the split is real. Were that ever
    // not so, a split would go unexercised, not fail: every reply is checked byte for
    // byte either way.
    let s = Server::start(1);
    let mut sync = client(&s);

    // One byte per read.
    let mut c = fragmented(&s, 1000);
    for b in &c.script {
        c.conn.send(std::slice::from_ref(b));
        sync.flush();
    }
    c.conn.expect(&c.want);

    // Every split point into two reads, one connection per split point.
    let len = c.script.len();
    let mut clients: Vec<Fragmented> = (1..len).map(|i| fragmented(&s, 2000 + i)).collect();
    for (i, c) in (1..len).zip(&mut clients) {
        assert_eq!(c.script.len(), len, "scripts of the same length");
        c.conn.send(&c.script[..i]);
    }
    sync.flush();
    for (i, c) in (1..len).zip(&mut clients) {
        c.conn.send(&c.script[i..]);
    }
    for c in &mut clients {
        c.conn.expect(&c.want);
    }

    // Random splits into reads of 1 to 12 bytes: in each step every client sends its
    // next piece, then `sync` round-trips.
    let mut rng = XorShift(0x5eed);
    let mut clients: Vec<(Fragmented, Vec<usize>)> = (0..40)
        .map(|k| {
            let c = fragmented(&s, 3000 + k);
            let mut cuts = vec![0];
            while cuts[cuts.len() - 1] < c.script.len() {
                let next = cuts[cuts.len() - 1] + 1 + rng.below(12) as usize;
                cuts.push(next.min(c.script.len()));
            }
            (c, cuts)
        })
        .collect();
    for step in 0.. {
        let mut sent = false;
        for (c, cuts) in &mut clients {
            if let [from, to] = cuts.get(step..step + 2).unwrap_or_default() {
                c.conn.send(&c.script[*from..*to]);
                sent = true;
            }
        }
        if !sent {
            break;
        }
        sync.flush();
    }
    for (c, _) in &mut clients {
        c.conn.expect(&c.want);
    }
}

#[test]
fn idle_clients_get_pinged_and_stale_ones_are_closed() {
    let s = Server::start_with(
        2,
        "[keepalive]\nping_interval = \"150ms\"\nmax_pings_out = 2\n",
    );
    let mut live = client(&s);
    let mut stale = client(&s);
    // The live client answers PINGs and stays.
    live.expect(b"PING\r\n");
    live.send(b"PONG\r\n");
    live.expect(b"PING\r\n");
    live.send(b"PONG\r\n");
    // The stale one gets two PINGs, then the error and close.
    stale.expect(b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n");
    stale.expect_closed();
    live.flush();
}

#[test]
fn pong_follows_pubs_that_went_to_other_shards() {
    // After a publisher's PING→PONG, its messages are delivered everywhere: a
    // subscriber's own PING→PONG must then show them.
    let s = Server::start(4);
    let mut subs = common::subscribed(&s, 8, |i| format!("SUB bar.{i} {i}\r\n"));
    let mut p = client(&s);
    for round in 0..20 {
        for i in 0..subs.len() {
            p.send(format!("PUB bar.{i} 2\r\n{:02}\r\n", round).as_bytes());
        }
        p.flush();
        for (i, c) in subs.iter_mut().enumerate() {
            c.send(b"PING\r\n");
            c.expect(format!("MSG bar.{i} {i} 2\r\n{:02}\r\nPONG\r\n", round).as_bytes());
        }
    }
}

#[test]
fn a_client_without_connect_gets_nats_defaults() {
    // As nats-server: without CONNECT, verbose and pedantic are on.
    let s = Server::start(2);
    let (mut c, _) = Raw::connect_info(s.addr);
    c.send(b"SUB a 1\r\nPUB a 1\r\nx\r\nPING\r\n");
    c.expect(b"+OK\r\n+OK\r\nMSG a 1 1\r\nx\r\nPONG\r\n");
    c.send(b"PUB a.* 1\r\nx\r\nPING\r\n");
    c.expect(b"-ERR 'Invalid Publish Subject'\r\n+OK\r\nPONG\r\n");
}
