//! The leaf link's place in routing: the hub's queue groups back up the node's own (used
//! only where the node has no member), one message up the link carries every group it
//! serves, and a message from the hub reaches only the groups it lists.

use std::rc::Rc;

use bytes::Bytes;

use super::{read, settle, Shard};
use crate::conn::{Conn, ConnFlags};
use crate::route::{Op, Outcome, PubSpans};
use crate::wire::{MsgView, Refusal, Wire};

/// The leaf link's connection on `shard`.
fn link(shard: &mut Shard) -> Rc<Conn> {
    let conn = shard.conn();
    shard
        .router
        .set_options(&conn, ConnFlags::QUIET, Wire::Leaf);
    conn
}

/// The link publishes what the hub sent, with the hub's queue list.
fn from_hub(shard: &mut Shard, link: &Rc<Conn>, subject: &str, payload: &str, queues: &[&[u8]]) {
    let owner = Bytes::from(format!("{subject}{payload}"));
    let msg = MsgView {
        subject: &owner[..subject.len()],
        reply: None,
        header_len: None,
        body: &owner[subject.len()..],
    };
    let _ = PubSpans::of(&owner, &msg);
    let op = Op::PublishFromHub {
        msg,
        owner: &owner,
        queues,
    };
    shard.router.apply(link, op);
}

#[test]
fn the_hubs_group_takes_a_message_only_when_the_node_has_no_member() {
    let mut shards = [Shard::new(0, 2), Shard::new(1, 2)];
    let up = link(&mut shards[0]);
    shards[0].sub(&up, "jobs workers", "jobs", Some("$sc.leaf.workers"));
    let sent = shards[0].end_turn(None);
    settle(&mut shards, 0, sent);
    let member = shards[1].conn();
    shards[1].sub(&member, "1", "jobs", Some("workers"));
    let sent = shards[1].end_turn(None);
    settle(&mut shards, 1, sent);

    // From either shard, the node's own member takes every job.
    for from in [0, 1] {
        let p = shards[from].conn();
        for i in 0..20 {
            let sent = shards[from].publish(&p, "jobs", None, &i.to_string());
            settle(&mut shards, from, sent);
        }
    }
    assert_eq!(read(&member).matches("MSG jobs 1").count(), 40);
    assert_eq!(read(&up), "", "nothing went up the link");

    // With no member here, the hub's group does, named in the message.
    shards[1].unsub(&member, "1", None);
    let sent = shards[1].end_turn(None);
    settle(&mut shards, 1, sent);
    for from in [0, 1] {
        let p = shards[from].conn();
        let sent = shards[from].publish(&p, "jobs", None, "x");
        settle(&mut shards, from, sent);
    }
    assert_eq!(read(&up), "LMSG jobs | workers 1\r\nx\r\n".repeat(2));
}

#[test]
fn one_message_up_the_link_serves_its_plain_interest_and_its_groups() {
    let mut shards = [Shard::new(0, 2), Shard::new(1, 2)];
    let up = link(&mut shards[0]);
    shards[0].sub(&up, "jobs.>", "jobs.>", None);
    shards[0].sub(&up, "jobs.* a", "jobs.*", Some("$sc.leaf.a"));
    shards[0].sub(&up, "jobs.new b", "jobs.new", Some("$sc.leaf.b"));
    let sent = shards[0].end_turn(None);
    settle(&mut shards, 0, sent);
    for from in [0, 1] {
        let p = shards[from].conn();
        let sent = shards[from].publish(&p, "jobs.new", Some("_INBOX.1"), "x");
        settle(&mut shards, from, sent);
    }
    // Both groups in one message (in the index's order), once per publish.
    let got = read(&up);
    let ab = "LMSG jobs.new + _INBOX.1 a b 1\r\nx\r\n".repeat(2);
    let ba = "LMSG jobs.new + _INBOX.1 b a 1\r\nx\r\n".repeat(2);
    assert!(got == ab || got == ba, "{got}");
}

#[test]
fn a_message_from_the_hub_reaches_only_the_groups_it_lists() {
    let mut shards = [Shard::new(0, 2), Shard::new(1, 2)];
    let up = link(&mut shards[0]);
    shards[0].sub(&up, "jobs", "jobs", None);
    shards[0].sub(&up, "jobs w", "jobs", Some("$sc.leaf.w"));
    let plain = shards[1].conn();
    shards[1].sub(&plain, "p", "jobs", None);
    let w = shards[1].conn();
    shards[1].sub(&w, "w", "jobs", Some("w"));
    let v = shards[0].conn();
    shards[0].sub(&v, "v", "jobs", Some("v"));
    for id in [0, 1] {
        let sent = shards[id].end_turn(None);
        settle(&mut shards, id, sent);
    }
    // No list: plain subscriptions only (nats-server's rule for leaf messages).
    from_hub(&mut shards[0], &up, "jobs", "plain", &[]);
    let sent = shards[0].end_turn(None);
    settle(&mut shards, 0, sent);
    // Listed: that group too, once, and never back up the link.
    from_hub(&mut shards[0], &up, "jobs", "for-w", &[b"w"]);
    from_hub(&mut shards[0], &up, "jobs", "for-v", &[b"v", b"$sc.leaf.w"]);
    let sent = shards[0].end_turn(None);
    settle(&mut shards, 0, sent);
    assert_eq!(
        read(&plain),
        "MSG jobs p 5\r\nplain\r\nMSG jobs p 5\r\nfor-w\r\nMSG jobs p 5\r\nfor-v\r\n"
    );
    assert_eq!(read(&w), "MSG jobs w 5\r\nfor-w\r\n");
    assert_eq!(read(&v), "MSG jobs v 5\r\nfor-v\r\n");
    assert_eq!(read(&up), "", "nothing echoed to the hub");
}

#[test]
fn clients_cannot_join_the_links_groups() {
    let mut s = Shard::new(0, 1);
    let c = s.conn();
    assert_eq!(
        s.sub(&c, "1", "jobs", Some("$sc.leaf.w")),
        Outcome::Refused(Refusal::InvalidSubject)
    );
}

#[test]
fn the_per_client_subscription_limit_does_not_bound_the_hubs_interest() {
    let limits = crate::limits::Limits {
        subscriptions_max: 2,
        ..Default::default()
    };
    let mut s = Shard::with_limits(0, 1, limits);
    let up = link(&mut s);
    for i in 0..10 {
        assert_eq!(
            s.sub(&up, &i.to_string(), &format!("s.{i}"), None),
            Outcome::Done
        );
    }
    let c = s.conn();
    s.sub(&c, "1", "a", None);
    s.sub(&c, "2", "b", None);
    assert_eq!(
        s.sub(&c, "3", "c", None),
        Outcome::Refused(Refusal::TooManySubscriptions)
    );
}
