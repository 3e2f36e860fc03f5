//! The router, barrier, runs and fan-out driven in memory: connections are outboxes with
//! no socket, rings are vectors of batches handed from one router to another by hand.
//! What a client would read is checked byte for byte in its outbox.

use std::rc::Rc;

use bytes::Bytes;

use crate::close::CloseReason;
use crate::conn::Conn;
use crate::flow::MemoryBudget;
use crate::limits::Limits;
use crate::metrics::ShardMetrics;
use crate::ring::RingBatch;
use crate::route::{Op, Outcome, PubSpans, Router};
use crate::wire::{MsgView, Refusal, Wire};
use crate::writer::{ChunkPool, Congestion, Outbox, OutboxEnv};

mod leaf;

const NATS: Wire = Wire::Nats { headers: true };

/// One shard's routing state and what it needs to make connections.
struct Shard {
    router: Router,
    limits: Limits,
    env: Rc<OutboxEnv>,
    next_cid: u64,
}

impl Shard {
    fn new(id: usize, shards: usize) -> Shard {
        Shard::with_limits(id, shards, Limits::default())
    }

    fn with_limits(id: usize, shards: usize, limits: Limits) -> Shard {
        let memory = MemoryBudget::new(&limits.flow.memory, shards, 64);
        let mut router = Router::new(id, shards, limits.subscriptions_max, 50, &limits.flow);
        router.set_accounting(memory.shared_counter());
        Shard {
            router,
            env: Rc::new(OutboxEnv {
                pool: Rc::new(ChunkPool::new(8)),
                congestion: Rc::new(Congestion::default()),
                metrics: Rc::new(ShardMetrics::new(true)),
                memory: Rc::new(memory),
            }),
            limits,
            next_cid: 1 + 1000 * id as u64,
        }
    }

    fn conn(&mut self) -> Rc<Conn> {
        let cid = self.next_cid;
        self.next_cid += 1;
        let outbox = Outbox::new(cid, Rc::clone(&self.env), &self.limits);
        let flags = crate::conn::ConnFlags::default();
        Rc::new(Conn::new(cid, None, Rc::new(outbox), NATS, flags))
    }

    fn sub(&mut self, conn: &Rc<Conn>, sid: &str, subject: &str, queue: Option<&str>) -> Outcome {
        let op = Op::Subscribe {
            sid: sid.as_bytes(),
            subject: subject.as_bytes(),
            queue: queue.map(str::as_bytes),
        };
        self.router.apply(conn, op).outcome
    }

    fn unsub(&mut self, conn: &Rc<Conn>, sid: &str, max_msgs: Option<u64>) {
        let op = Op::Unsubscribe {
            sid: sid.as_bytes(),
            max_msgs,
        };
        assert_eq!(self.router.apply(conn, op).outcome, Outcome::Done);
    }

    /// Publishes from `conn` as a turn of its own would: the message in a turn buffer,
    /// then the turn ended. Returns the batches for peers.
    fn publish(
        &mut self,
        conn: &Rc<Conn>,
        subject: &str,
        reply: Option<&str>,
        payload: &str,
    ) -> Vec<(usize, Box<RingBatch>)> {
        self.publish_all(conn, &[(subject, reply, payload)])
    }

    /// Several publishes from `conn` in one turn.
    fn publish_all(
        &mut self,
        conn: &Rc<Conn>,
        msgs: &[(&str, Option<&str>, &str)],
    ) -> Vec<(usize, Box<RingBatch>)> {
        let mut buf = Vec::new();
        let mut at = Vec::new();
        for (subject, reply, payload) in msgs {
            let s = buf.len();
            buf.extend_from_slice(subject.as_bytes());
            let r = buf.len();
            buf.extend_from_slice(reply.unwrap_or("").as_bytes());
            let p = buf.len();
            buf.extend_from_slice(payload.as_bytes());
            at.push((s, r, p, buf.len(), reply.is_some()));
        }
        let blob = Bytes::from(buf);
        for &(s, r, p, e, has_reply) in &at {
            let msg = MsgView {
                subject: &blob[s..r],
                reply: has_reply.then(|| &blob[r..p]),
                header_len: None,
                body: &blob[p..e],
            };
            let spans = PubSpans::of(&blob, &msg);
            self.router.apply(conn, Op::Publish { msg, spans });
        }
        self.end_turn(Some(blob))
    }

    fn flush(&mut self, conn: &Rc<Conn>) -> Outcome {
        self.router.apply(conn, Op::Flush).outcome
    }

    fn end_turn(&mut self, blob: Option<Bytes>) -> Vec<(usize, Box<RingBatch>)> {
        let blob = if self.router.turn_uses_blob() {
            blob
        } else {
            None
        };
        let mut sent = Vec::new();
        let now = std::time::Instant::now();
        self.router
            .end_turn(blob, now, |peer, batch| sent.push((peer, batch)));
        sent
    }
}

/// Hands `batches` from shard `from` to the shards they are for, each as one turn, and
/// returns what those turns sent on (barrier acks).
fn deliver(
    shards: &mut [Shard],
    from: usize,
    batches: Vec<(usize, Box<RingBatch>)>,
) -> Vec<(usize, usize, Box<RingBatch>)> {
    let mut next = Vec::new();
    for (to, batch) in batches {
        shards[to].router.apply_batch(from, &batch);
        for (peer, b) in shards[to].end_turn(None) {
            next.push((to, peer, b));
        }
    }
    next
}

/// Runs the rings until no batch is left in flight.
fn settle(shards: &mut [Shard], from: usize, batches: Vec<(usize, Box<RingBatch>)>) {
    let mut in_flight: Vec<(usize, usize, Box<RingBatch>)> =
        batches.into_iter().map(|(to, b)| (from, to, b)).collect();
    while !in_flight.is_empty() {
        let mut next = Vec::new();
        for (from, to, batch) in in_flight {
            next.extend(deliver(shards, from, vec![(to, batch)]));
        }
        in_flight = next;
    }
}

fn read(conn: &Conn) -> String {
    String::from_utf8_lossy(&conn.outbox.take_written()).into_owned()
}

#[test]
fn a_publish_reaches_local_subscribers_byte_exact() {
    let mut s = Shard::new(0, 1);
    let (a, b, p) = (s.conn(), s.conn(), s.conn());
    assert_eq!(s.sub(&a, "1", "foo", None), Outcome::Done);
    assert_eq!(s.sub(&b, "9", "foo.*", None), Outcome::Done);
    assert_eq!(s.sub(&b, "2", "foo", None), Outcome::Done);
    s.publish(&p, "foo", Some("r.1"), "hello");
    s.publish(&p, "foo.x", None, "");
    assert_eq!(read(&a), "MSG foo 1 r.1 5\r\nhello\r\n");
    assert_eq!(
        read(&b),
        "MSG foo 2 r.1 5\r\nhello\r\nMSG foo.x 9 0\r\n\r\n"
    );
    assert_eq!(read(&p), "");
}

#[test]
fn a_run_keeps_each_subscribers_order_and_sid() {
    let mut s = Shard::new(0, 1);
    let (a, b, p) = (s.conn(), s.conn(), s.conn());
    s.sub(&a, "1", "feed", None);
    s.sub(&b, "77", "feed", None);
    let msgs: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let batch: Vec<(&str, Option<&str>, &str)> =
        msgs.iter().map(|m| ("feed", None, m.as_str())).collect();
    s.publish_all(&p, &batch);
    let want = |sid: &str| -> String {
        msgs.iter()
            .map(|m| format!("MSG feed {sid} {}\r\n{m}\r\n", m.len()))
            .collect()
    };
    assert_eq!(read(&a), want("1"));
    assert_eq!(read(&b), want("77"));
}

#[test]
fn a_large_run_is_shared_by_reference_and_retagged_for_other_sids() {
    let mut s = Shard::new(0, 1);
    let (a, b, c, p) = (s.conn(), s.conn(), s.conn(), s.conn());
    s.sub(&a, "1", "big", None);
    s.sub(&b, "1", "big", None);
    s.sub(&c, "sid-c", "big", None);
    let msgs: Vec<String> = (0..40).map(|i| format!("{i:0>100}")).collect();
    let batch: Vec<(&str, Option<&str>, &str)> =
        msgs.iter().map(|m| ("big", None, m.as_str())).collect();
    s.publish_all(&p, &batch);
    let want = |sid: &str| -> String {
        msgs.iter()
            .map(|m| format!("MSG big {sid} 100\r\n{m}\r\n"))
            .collect()
    };
    assert!(
        want("1").len() >= crate::limits::RUN_SHARE_BYTES_MIN,
        "the run is shared"
    );
    assert_eq!(read(&a), want("1"));
    assert_eq!(read(&b), want("1"));
    assert_eq!(read(&c), want("sid-c"));
}

#[test]
fn verbose_acks_precede_the_publishers_own_delivery_and_refusals_are_reported() {
    let mut s = Shard::new(0, 1);
    let c = s.conn();
    let flags = crate::conn::ConnFlags {
        verbose: true,
        pedantic: true,
        ..Default::default()
    };
    s.router.set_options(&c, flags, NATS);
    assert_eq!(s.sub(&c, "1", "me", None), Outcome::Done);
    s.publish(&c, "me", None, "hi");
    assert_eq!(
        s.sub(&c, "2", "bad..subject", None),
        Outcome::Refused(Refusal::InvalidSubject)
    );
    s.publish(&c, "wild.*", None, "x");
    assert_eq!(
        read(&c),
        "+OK\r\n+OK\r\nMSG me 1 2\r\nhi\r\n-ERR 'Invalid Subject'\r\n\
         -ERR 'Invalid Publish Subject'\r\n+OK\r\n"
    );
}

#[test]
fn unsubscribe_after_max_delivers_exactly_max_then_leaves_the_index() {
    let mut s = Shard::new(0, 1);
    let (a, p) = (s.conn(), s.conn());
    s.sub(&a, "1", "x", None);
    s.unsub(&a, "1", Some(3));
    for i in 0..5 {
        s.publish(&p, "x", None, &i.to_string());
    }
    assert_eq!(
        read(&a),
        "MSG x 1 1\r\n0\r\nMSG x 1 1\r\n1\r\nMSG x 1 1\r\n2\r\n"
    );
    assert_eq!(s.router.sub_count(a.cid), 0);
    assert_eq!(s.router.local_subscriptions(), 0);
}

#[test]
fn max_subscriptions_refuses_and_a_duplicate_sid_is_a_no_op() {
    let limits = Limits {
        subscriptions_max: 2,
        ..Limits::default()
    };
    let mut s = Shard::with_limits(0, 1, limits);
    let c = s.conn();
    assert_eq!(s.sub(&c, "1", "a", None), Outcome::Done);
    assert_eq!(s.sub(&c, "1", "b", None), Outcome::Done);
    assert_eq!(s.router.sub_count(c.cid), 1);
    assert_eq!(s.sub(&c, "2", "b", None), Outcome::Done);
    assert_eq!(
        s.sub(&c, "3", "c", None),
        Outcome::Refused(Refusal::TooManySubscriptions)
    );
    assert_eq!(read(&c), "-ERR 'maximum subscriptions exceeded'\r\n");
}

#[test]
fn a_sid_over_its_bound_closes_the_connection() {
    let mut s = Shard::new(0, 1);
    let c = s.conn();
    let sid = "s".repeat(crate::limits::SID_BYTES_MAX + 1);
    assert!(matches!(
        s.sub(&c, &sid, "a", None),
        Outcome::Closed(CloseReason::Protocol(_))
    ));
    assert!(c.is_closing());
}

#[test]
fn a_queue_group_gets_each_message_once() {
    let mut s = Shard::new(0, 1);
    let members: Vec<_> = (0..3).map(|_| s.conn()).collect();
    for m in &members {
        s.sub(m, "1", "work", Some("q"));
    }
    let p = s.conn();
    for i in 0..30 {
        s.publish(&p, "work", None, &i.to_string());
    }
    let total: usize = members
        .iter()
        .map(|m| read(m).matches("MSG work 1").count())
        .sum();
    assert_eq!(total, 30);
}

#[test]
fn a_subscriber_over_max_pending_is_cut_off_and_the_others_keep_receiving() {
    let limits = Limits {
        pending_bytes_max: 4096,
        payload_bytes_max: 1024,
        ..Limits::default()
    };
    let mut s = Shard::with_limits(0, 1, limits);
    let (slow, fast, p) = (s.conn(), s.conn(), s.conn());
    s.sub(&slow, "1", "t", None);
    s.sub(&fast, "1", "t", None);
    let payload = "x".repeat(1000);
    let mut got = 0;
    for _ in 0..10 {
        s.publish(&p, "t", None, &payload);
        got += read(&fast).matches("MSG t 1 1000").count();
    }
    assert_eq!(got, 10);
    assert_eq!(
        slow.outbox.close_reason(),
        Some(CloseReason::SlowConsumerPending)
    );
}

#[test]
fn flushes_pipelined_by_a_client_that_never_reads_are_bounded_by_max_pending() {
    let limits = Limits {
        pending_bytes_max: 600,
        payload_bytes_max: 100,
        ..Limits::default()
    };
    let mut s = Shard::with_limits(0, 1, limits);
    let c = s.conn();
    let mut answered = 0;
    while !c.is_closing() {
        assert_eq!(s.flush(&c), Outcome::Done);
        answered += 1;
        assert!(answered <= 101, "PONGs grew past max_pending");
    }
    assert_eq!(
        c.outbox.close_reason(),
        Some(CloseReason::SlowConsumerPending)
    );
}

#[test]
fn no_responders_get_a_503_on_their_reply_subscription() {
    let mut s = Shard::new(0, 1);
    let c = s.conn();
    let flags = crate::conn::ConnFlags {
        no_responders: true,
        ..Default::default()
    };
    s.router.set_options(&c, flags, NATS);
    s.sub(&c, "5", "_INBOX.abc.*", None);
    s.publish(&c, "service", Some("_INBOX.abc.1"), "req");
    assert_eq!(
        read(&c),
        "HMSG _INBOX.abc.1 5 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
}

#[test]
fn a_client_without_headers_gets_payloads_only_once_it_says_so() {
    let mut s = Shard::new(0, 1);
    let (a, p) = (s.conn(), s.conn());
    s.sub(&a, "1", "h", None);
    s.router
        .set_options(&a, Default::default(), Wire::Nats { headers: false });
    let blob = Bytes::from_static(b"hNATS/1.0\r\nk: v\r\n\r\nbody");
    let msg = MsgView {
        subject: &blob[..1],
        reply: None,
        header_len: Some(18),
        body: &blob[1..],
    };
    let spans = PubSpans::of(&blob, &msg);
    s.router.apply(&p, Op::Publish { msg, spans });
    s.end_turn(Some(blob.clone()));
    assert_eq!(read(&a), "MSG h 1 4\r\nbody\r\n");
}

#[test]
fn a_publish_crosses_to_the_shard_with_interest_once() {
    let mut shards = [Shard::new(0, 2), Shard::new(1, 2)];
    let subs: Vec<_> = (0..5).map(|_| shards[1].conn()).collect();
    for c in &subs {
        shards[1].sub(c, "1", "news", None);
    }
    let sent = shards[1].end_turn(None);
    assert_eq!(sent.len(), 1, "one batch of interest to the peer");
    settle(&mut shards, 1, sent);
    let p = shards[0].conn();
    let sent = shards[0].publish(&p, "news", None, "hi");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.items.len(), 1, "one forward for five subscribers");
    settle(&mut shards, 0, sent);
    for c in &subs {
        assert_eq!(read(c), "MSG news 1 2\r\nhi\r\n");
    }
    // Nobody on shard 0 and nobody on shard 1 for this subject: nothing crosses.
    assert!(shards[0].publish(&p, "other", None, "x").is_empty());
}

#[test]
fn interest_is_refcounted_per_shard_and_withdrawn_when_a_connection_goes() {
    let mut shards = [Shard::new(0, 2), Shard::new(1, 2)];
    let (a, b) = (shards[1].conn(), shards[1].conn());
    shards[1].sub(&a, "1", "t.*", None);
    shards[1].sub(&b, "1", "t.*", None);
    let sent = shards[1].end_turn(None);
    settle(&mut shards, 1, sent);
    shards[1].router.detach(&a);
    let sent = shards[1].end_turn(None);
    settle(&mut shards, 1, sent);
    let p = shards[0].conn();
    let sent = shards[0].publish(&p, "t.1", None, "still");
    assert_eq!(sent.len(), 1, "b still wants it");
    settle(&mut shards, 0, sent);
    assert_eq!(read(&b), "MSG t.1 1 5\r\nstill\r\n");
    shards[1].router.detach(&b);
    let sent = shards[1].end_turn(None);
    settle(&mut shards, 1, sent);
    assert!(shards[0].publish(&p, "t.1", None, "gone").is_empty());
}

#[test]
fn a_flush_after_cross_shard_work_waits_for_every_peer() {
    let mut shards = [Shard::new(0, 3), Shard::new(1, 3), Shard::new(2, 3)];
    let c = shards[0].conn();
    shards[0].sub(&c, "1", "x", None);
    // Two flushes in one turn: one waiter, two answers.
    assert_eq!(shards[0].flush(&c), Outcome::Held);
    assert_eq!(shards[0].flush(&c), Outcome::Held);
    assert_eq!(shards[0].router.barrier.waiters(), 1);
    let sent = shards[0].end_turn(None);
    assert_eq!(sent.len(), 2, "interest and a barrier token to each peer");
    assert_eq!(read(&c), "", "held until the peers ack");
    // Peer 1 acks; peer 2 has not yet: still held.
    let (to_1, to_2): (Vec<_>, Vec<_>) = sent.into_iter().partition(|(p, _)| *p == 1);
    let acks = deliver(&mut shards, 0, to_1);
    for (from, to, b) in acks {
        assert_eq!(to, 0);
        deliver(&mut shards, from, vec![(to, b)]);
    }
    assert_eq!(read(&c), "");
    let acks = deliver(&mut shards, 0, to_2);
    for (from, to, b) in acks {
        deliver(&mut shards, from, vec![(to, b)]);
    }
    assert_eq!(read(&c), "PONG\r\nPONG\r\n");
    assert_eq!(c.flushes_held(), 0);
    // Nothing crossed since: the next flush is answered at once.
    assert_eq!(shards[0].flush(&c), Outcome::Done);
    assert_eq!(read(&c), "PONG\r\n");
}

#[test]
fn a_queue_group_spread_over_shards_gets_each_message_once() {
    let mut shards = [Shard::new(0, 2), Shard::new(1, 2)];
    let mut members = Vec::new();
    for id in 0..2 {
        for _ in 0..3 {
            let m = shards[id].conn();
            shards[id].sub(&m, "1", "jobs", Some("workers"));
            members.push(m);
        }
        let sent = shards[id].end_turn(None);
        settle(&mut shards, id, sent);
    }
    let p = shards[0].conn();
    for i in 0..200 {
        let sent = shards[0].publish(&p, "jobs", None, &i.to_string());
        settle(&mut shards, 0, sent);
    }
    let counts: Vec<usize> = members
        .iter()
        .map(|m| read(m).matches("MSG jobs").count())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 200, "{counts:?}");
    assert!(
        counts[..3].iter().sum::<usize>() > 0 && counts[3..].iter().sum::<usize>() > 0,
        "{counts:?}"
    );
}

#[test]
fn a_run_serves_subscribers_on_another_wire_message_by_message_in_order() {
    // A channel's IRC members and, first in the list, a NATS subscriber (as the history
    // service is): both kinds get every message, in order, each on its own wire; then
    // with more NATS subscribers than a run leaves out.
    for nats_subs in [1, 3] {
        let mut s = Shard::new(0, 1);
        let nats: Vec<Rc<Conn>> = (0..nats_subs).map(|_| s.conn()).collect();
        for (i, n) in nats.iter().enumerate() {
            s.sub(n, &format!("h{i}"), "feed", None);
        }
        let irc: Vec<Rc<Conn>> = (0..3).map(|_| s.conn()).collect();
        for c in &irc {
            s.router.set_options(c, Default::default(), Wire::Irc);
            s.sub(c, "#feed", "feed", None);
        }
        let p = s.conn();
        let msgs: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        let batch: Vec<(&str, Option<&str>, &str)> =
            msgs.iter().map(|m| ("feed", None, m.as_str())).collect();
        s.publish_all(&p, &batch);
        for (i, n) in nats.iter().enumerate() {
            let want: String = msgs
                .iter()
                .map(|m| format!("MSG feed h{i} {}\r\n{m}\r\n", m.len()))
                .collect();
            assert_eq!(read(n), want, "{nats_subs} NATS subscribers");
        }
        let want: String = msgs
            .iter()
            .map(|m| format!(":nats!nats@nats.shardcast PRIVMSG #feed :{m}\r\n"))
            .collect();
        for c in &irc {
            assert_eq!(read(c), want, "{nats_subs} NATS subscribers");
        }
    }
}

#[test]
fn a_local_preferring_group_takes_what_its_shard_receives() {
    let mut shards = [Shard::new(0, 2), Shard::new(1, 2)];
    let mut members = Vec::new();
    for id in 0..2 {
        let m = shards[id].conn();
        shards[id].sub(&m, "1", "logs.in", Some("$sc.local.logs"));
        members.push(m);
        let sent = shards[id].end_turn(None);
        settle(&mut shards, id, sent);
    }
    // Published on each shard: that shard's member takes all, nothing crosses.
    for shard in &mut shards {
        let p = shard.conn();
        for i in 0..50 {
            let sent = shard.publish(&p, "logs.in", None, &i.to_string());
            assert!(sent.is_empty(), "a forward for a local group");
        }
    }
    let counts: Vec<usize> = members
        .iter()
        .map(|m| read(m).matches("MSG logs.in").count())
        .collect();
    assert_eq!(counts, [50, 50]);
    // With no member on the publishing shard, another shard's takes it.
    shards[1].unsub(&members[1], "1", None);
    let sent = shards[1].end_turn(None);
    settle(&mut shards, 1, sent);
    let p = shards[1].conn();
    let sent = shards[1].publish(&p, "logs.in", None, "x");
    settle(&mut shards, 1, sent);
    assert_eq!(read(&members[0]), "MSG logs.in 1 1\r\nx\r\n");
}
