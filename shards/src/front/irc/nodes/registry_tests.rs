use super::*;
use crate::front::irc::nodes::{
    NickOp, SnapshotPart, TopicEntry, MEMBERS_SUBJECT, NICK_SYNC_SUBJECT, NODE_TIMEOUT,
};

fn no_topics(_: &str) -> Option<TopicEntry> {
    None
}

fn join(node: &str, nick: &str, subject: &str) -> Presence {
    Presence {
        event: Event::Join,
        nick: nick.into(),
        mask: format!("{nick}!~{nick}@h"),
        channel: format!("#{subject}"),
        ts: presence::now_rfc3339(),
        reason: None,
        new: None,
        realname: Some(format!("{nick} real")),
        topic: None,
        node: Some(node.into()),
    }
}

fn announced(effects: &[Effect], subject: &str) -> Vec<Vec<u8>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Announce {
                subject: s,
                payload,
            } if *s == subject => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

fn presences(effects: &[Effect]) -> Vec<(Event, String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Presence { subject, event } => {
                Some((event.event, event.nick.clone(), subject.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Hands every snapshot part in `effects` to `to`.
fn deliver_snapshot(effects: &[Effect], to: &mut Registry) -> Vec<Effect> {
    let mut out = Vec::new();
    for payload in announced(effects, MEMBERS_SUBJECT) {
        let part: SnapshotPart = serde_json::from_slice(&payload).expect("part");
        out.extend(to.on_snapshot_part(part, Instant::now()));
    }
    out
}

fn alive_of(effects: &[Effect]) -> Alive {
    let payload = announced(effects, ALIVE_SUBJECT).pop().expect("a beat");
    serde_json::from_slice(&payload).expect("alive")
}

#[test]
fn a_snapshot_shows_a_nodes_people_joining_and_then_the_digests_agree() {
    let mut a = Registry::new("A");
    let mut b = Registry::new("B");
    a.on_presence("lobby", &join("A", "alice", "lobby"));
    a.on_presence("lobby", &join("A", "al2", "lobby"));
    a.on_presence("news", &join("A", "alice", "news"));
    let now = Instant::now();
    // B hears A's beat, knows nothing of it yet: it asks.
    let beat = alive_of(&a.tick(now, NODE_TIMEOUT));
    let want = b.on_alive(&beat, now);
    let want: Want = serde_json::from_slice(&announced(&want, WANT_SUBJECT)[0]).expect("want");
    assert_eq!((want.node.as_str(), want.from.as_str()), ("A", "B"));
    let snapshot = a.on_want(&want, now, Duration::from_secs(1), &no_topics);
    // A second asker within the gap gets the same broadcast, not another one.
    assert!(a
        .on_want(&want, now, Duration::from_secs(1), &no_topics)
        .is_empty());
    let mut shown = presences(&deliver_snapshot(&snapshot, &mut b));
    shown.sort();
    assert_eq!(
        shown,
        vec![
            (Event::Join, "al2".into(), "lobby".into()),
            (Event::Join, "alice".into(), "lobby".into()),
            (Event::Join, "alice".into(), "news".into()),
        ]
    );
    // In step now: the next beats ask nothing.
    for _ in 0..3 {
        let beat = alive_of(&a.tick(now, NODE_TIMEOUT));
        assert!(b.on_alive(&beat, now).is_empty());
    }
    // The same snapshot again changes nothing, shows nothing.
    assert!(presences(&deliver_snapshot(&a.snapshot(&no_topics), &mut b)).is_empty());
}

#[test]
fn a_snapshot_replaces_what_was_missed_and_drift_asks_for_one() {
    let mut a = Registry::new("A");
    let mut b = Registry::new("B");
    let now = Instant::now();
    a.on_presence("lobby", &join("A", "alice", "lobby"));
    deliver_snapshot(&a.snapshot(&no_topics), &mut b);
    // alice parts while B does not hear it; bob joins, and B hears that.
    let mut part = join("A", "alice", "lobby");
    part.event = Event::Part;
    a.on_presence("lobby", &part);
    a.on_presence("lobby", &join("A", "bob", "lobby"));
    b.on_presence("lobby", &join("A", "bob", "lobby"));
    // One differing beat may be events in flight; the second asks.
    let beat = alive_of(&a.tick(now, NODE_TIMEOUT));
    assert!(b.on_alive(&beat, now).is_empty());
    assert_eq!(announced(&b.on_alive(&beat, now), WANT_SUBJECT).len(), 1);
    let shown = presences(&deliver_snapshot(&a.snapshot(&no_topics), &mut b));
    assert_eq!(shown, vec![(Event::Part, "alice".into(), "lobby".into())]);
    let beat = alive_of(&a.tick(now, NODE_TIMEOUT));
    assert!(b.on_alive(&beat, now).is_empty());
}

#[test]
fn big_snapshots_go_in_parts_and_a_part_out_of_turn_is_dropped() {
    let mut a = Registry::new("A");
    for i in 0..600 {
        a.on_presence("big", &join("A", &format!("n{i}"), "big"));
    }
    let snapshot = a.snapshot(&no_topics);
    let parts = announced(&snapshot, MEMBERS_SUBJECT);
    assert_eq!(parts.len(), 3);
    let mut b = Registry::new("B");
    assert_eq!(presences(&deliver_snapshot(&snapshot, &mut b)).len(), 600);
    // Without its first part, a snapshot is not applied.
    let mut c = Registry::new("C");
    for payload in &parts[1..] {
        let part: SnapshotPart = serde_json::from_slice(payload).expect("part");
        assert!(c.on_snapshot_part(part, Instant::now()).is_empty());
    }
}

#[test]
fn a_silent_node_splits_off_with_its_people_and_nicks() {
    let mut a = Registry::new("A");
    let mut b = Registry::new("B");
    a.on_presence("lobby", &join("A", "alice", "lobby"));
    let claim = NickEvent::Claim {
        key: "alice".into(),
        shard: 1,
        cid: 9,
    };
    let ops = a.on_local_nick(&claim, 1_000);
    let op: NickOp = serde_json::from_slice(&announced(&ops, NICK_SYNC_SUBJECT)[0]).expect("op");
    b.on_nick_op(&op);
    deliver_snapshot(&a.snapshot(&no_topics), &mut b);
    let now = Instant::now();
    let beat = alive_of(&a.tick(now, NODE_TIMEOUT));
    b.on_alive(&beat, now);
    assert_eq!(b.others(), 1);
    // Within the timeout nothing happens; after it, A's people quit with the split reason.
    assert!(presences(&b.tick(now + Duration::from_secs(5), NODE_TIMEOUT)).is_empty());
    let effects = b.tick(now + NODE_TIMEOUT, NODE_TIMEOUT);
    assert_eq!(
        presences(&effects),
        vec![(Event::Quit, "alice".into(), "lobby".into())]
    );
    let quit = effects.iter().find_map(|e| match e {
        Effect::Presence { event, .. } => event.reason.clone(),
        _ => None,
    });
    assert_eq!(quit.as_deref(), Some(SPLIT_REASON));
    let remote = remote_holder("A");
    assert!(effects.contains(&Effect::Nick(NickEvent::Release {
        key: "alice".into(),
        shard: remote.shard,
        cid: remote.cid,
    })));
    assert_eq!(b.others(), 0);
}

#[test]
fn a_nick_is_held_cluster_wide_and_the_earlier_claim_wins_a_collision() {
    let mut b = Registry::new("B");
    let remote = remote_holder("A");
    // A claims "al" first: B's shards learn it is held elsewhere.
    let claim = |at| NickOp {
        node: "A".into(),
        op: "claim".into(),
        nick: "al".into(),
        at,
    };
    let effects = b.on_nick_op(&claim(100));
    assert_eq!(
        effects,
        vec![Effect::Nick(NickEvent::Claim {
            key: "al".into(),
            shard: remote.shard,
            cid: remote.cid,
        })]
    );
    // A local claim made later (before B's shards knew) loses at once.
    let local = NickEvent::Claim {
        key: "al".into(),
        shard: 0,
        cid: 5,
    };
    let effects = b.on_local_nick(&local, 150);
    assert_eq!(
        effects,
        vec![Effect::Nick(NickEvent::Reject {
            key: "al".into(),
            shard: 0,
            cid: 5,
            winner: remote,
        })]
    );
    // A local claim of another nick goes out; A's later claim of it loses there, so
    // B does nothing about it here.
    let mine = NickEvent::Claim {
        key: "bo".into(),
        shard: 1,
        cid: 7,
    };
    assert_eq!(
        announced(&b.on_local_nick(&mine, 200), NICK_SYNC_SUBJECT).len(),
        1
    );
    let later = NickOp {
        nick: "bo".into(),
        ..claim(300)
    };
    assert!(b.on_nick_op(&later).is_empty());
    // An earlier claim from A (made while the nodes were apart) wins: ours is closed.
    let mut c = Registry::new("C");
    c.on_local_nick(
        &NickEvent::Claim {
            key: "cy".into(),
            shard: 0,
            cid: 1,
        },
        500,
    );
    let earlier = NickOp {
        nick: "cy".into(),
        ..claim(400)
    };
    let effects = c.on_nick_op(&earlier);
    assert!(matches!(
        &effects[..],
        [Effect::Nick(NickEvent::Reject { cid: 1, winner, .. })] if *winner == remote
    ));
    // A release from A frees the nick in the shards' copies.
    let release = NickOp {
        op: "release".into(),
        ..claim(100)
    };
    assert_eq!(
        b.on_nick_op(&release),
        vec![Effect::Nick(NickEvent::Release {
            key: "al".into(),
            shard: remote.shard,
            cid: remote.cid,
        })]
    );
}

#[test]
fn nick_changes_and_releases_follow_the_right_holder() {
    let mut a = Registry::new("A");
    a.on_presence("lobby", &join("A", "al", "lobby"));
    let mut nick = join("A", "al", "lobby");
    nick.event = Event::Nick;
    nick.new = Some("Al2".into());
    a.on_presence("lobby", &nick);
    let mut b = Registry::new("B");
    let shown = deliver_snapshot(&a.snapshot(&no_topics), &mut b);
    let masks: Vec<String> = shown
        .iter()
        .filter_map(|e| match e {
            Effect::Presence { event, .. } => Some(event.mask.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(masks, vec!["Al2!~al@h".to_string()]);
    // A release by a connection that does not hold the nick says nothing.
    a.on_local_nick(
        &NickEvent::Claim {
            key: "x".into(),
            shard: 0,
            cid: 1,
        },
        1,
    );
    let stray = NickEvent::Release {
        key: "x".into(),
        shard: 0,
        cid: 2,
    };
    assert!(a.on_local_nick(&stray, 2).is_empty());
}

#[test]
fn what_is_kept_of_other_nodes_is_bounded_and_asks_no_more_when_full() {
    let mut a = Registry::new("A");
    for i in 0..50 {
        a.on_presence("lobby", &join("A", &format!("n{i}"), "lobby"));
    }
    let mut b = Registry::with_entries_max("B", 20);
    // B's own people are always kept.
    for i in 0..30 {
        b.on_presence("lobby", &join("B", &format!("m{i}"), "lobby"));
    }
    let shown = presences(&deliver_snapshot(&a.snapshot(&no_topics), &mut b));
    assert!(shown.is_empty(), "{} shown past the limit", shown.len());
    // A's digest will never match: B does not keep asking for snapshots it cannot keep.
    let now = Instant::now();
    for _ in 0..4 {
        let beat = alive_of(&a.tick(now, NODE_TIMEOUT));
        assert!(announced(&b.on_alive(&beat, now), WANT_SUBJECT).is_empty());
    }
    // With room, only as many as fit.
    let mut c = Registry::with_entries_max("C", 20);
    assert_eq!(
        presences(&deliver_snapshot(&a.snapshot(&no_topics), &mut c)).len(),
        20
    );
}

#[test]
fn a_snapshot_carries_the_topics_of_its_nodes_channels() {
    let mut a = Registry::new("A");
    a.on_presence("lobby", &join("A", "alice", "lobby"));
    a.on_presence("quiet", &join("A", "alice", "quiet"));
    let topic_of = |subject: &str| {
        (subject == "lobby").then(|| TopicEntry {
            subject: subject.into(),
            text: "soup at noon".into(),
            setter: "alice".into(),
            set_at: 1_700_000_000,
        })
    };
    let mut b = Registry::new("B");
    let effects = deliver_snapshot(&a.snapshot(&topic_of), &mut b);
    let topics: Vec<&TopicEntry> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Topic(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].text, "soup at noon");
    // After the joins they come with.
    let last_join = effects
        .iter()
        .rposition(|e| matches!(e, Effect::Presence { .. }))
        .expect("joins");
    let topic_at = effects
        .iter()
        .position(|e| matches!(e, Effect::Topic(_)))
        .expect("topic");
    assert!(topic_at > last_join);
}

#[test]
fn a_nick_two_other_nodes_held_stays_held_when_one_goes() {
    let mut c = Registry::new("C");
    let claim = |node: &str, at| NickOp {
        node: node.into(),
        op: "claim".into(),
        nick: "sam".into(),
        at,
    };
    // A's sam (earlier) and B's sam (later; B will be told by A and close it).
    c.on_nick_op(&claim("A", 100));
    c.on_nick_op(&claim("B", 200));
    let now = Instant::now();
    c.on_alive(
        &Alive {
            node: "B".into(),
            digest: 0,
        },
        now,
    );
    // A goes silent; B is still heard: sam is released for A and held for B.
    let later = now + NODE_TIMEOUT;
    c.on_alive(
        &Alive {
            node: "B".into(),
            digest: 0,
        },
        later,
    );
    let effects = c.tick(later, NODE_TIMEOUT);
    let (a, b) = (remote_holder("A"), remote_holder("B"));
    let nicks: Vec<&Effect> = effects
        .iter()
        .filter(|e| matches!(e, Effect::Nick(_)))
        .collect();
    assert_eq!(
        nicks,
        vec![
            &Effect::Nick(NickEvent::Release {
                key: "sam".into(),
                shard: a.shard,
                cid: a.cid,
            }),
            &Effect::Nick(NickEvent::Claim {
                key: "sam".into(),
                shard: b.shard,
                cid: b.cid,
            }),
        ]
    );
}

#[test]
fn a_snapshot_that_crossed_a_live_event_does_not_undo_it() {
    let mut a = Registry::new("A");
    let mut b = Registry::new("B");
    a.on_presence("lobby", &join("A", "alice", "lobby"));
    // A snapshot is taken, then bob joins and alice parts on A; B hears the live events
    // before the (older) snapshot.
    let old = a.snapshot(&no_topics);
    b.on_presence("lobby", &join("A", "bob", "lobby"));
    b.on_presence("lobby", &join("A", "alice", "lobby"));
    let mut part = join("A", "alice", "lobby");
    part.event = Event::Part;
    b.on_presence("lobby", &part);
    // Neither bob parts nor alice joins again.
    assert!(presences(&deliver_snapshot(&old, &mut b)).is_empty());
}

#[test]
fn the_quits_of_a_node_that_split_off_do_not_bring_it_back() {
    let mut b = Registry::new("B");
    b.on_presence("lobby", &join("A", "alice", "lobby"));
    assert_eq!(b.others(), 1);
    let effects = b.tick(Instant::now() + NODE_TIMEOUT, NODE_TIMEOUT);
    assert_eq!(b.others(), 0);
    // The quit shown for alice comes back through the presence subscription.
    for e in effects {
        if let Effect::Presence { subject, event } = e {
            b.on_presence(&subject, &event);
        }
    }
    assert_eq!(b.others(), 0);
}
