//! Outbox unit tests: bounds, slow-consumer closes, drop_new shedding, priorities and
//! the memory budget.

use super::*;
use crate::writer::stall::Plan;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

fn env(budget_bytes: usize) -> Rc<OutboxEnv> {
    let memory = crate::flow::MemoryConfig {
        budget_bytes,
        high: 0.8,
        low: 0.6,
    };
    Rc::new(OutboxEnv {
        pool: Rc::new(ChunkPool::new(4)),
        congestion: Rc::new(Congestion::default()),
        metrics: Rc::new(ShardMetrics::new(true)),
        memory: Rc::new(MemoryBudget::new(&memory, 1, 8)),
    })
}

fn limits(pending_max: usize) -> Limits {
    Limits {
        pending_bytes_max: pending_max,
        payload_bytes_max: 16,
        stall_above_bytes: 64,
        stall_budget: Duration::from_millis(10),
        ..Limits::default()
    }
}

fn outbox(pending_max: usize) -> Rc<Outbox> {
    Rc::new(Outbox::new(7, env(1 << 30), &limits(pending_max)))
}

const NATS: Wire = Wire::Nats { headers: true };
const ONE: Delivered = Delivered {
    msgs: 1,
    payload_bytes: 1,
    class: MsgClass {
        policy: Policy::Disconnect,
        priority: Priority::Normal,
    },
};

fn one(policy: Policy, priority: Priority) -> Delivered {
    Delivered {
        class: MsgClass { policy, priority },
        ..ONE
    }
}

#[test]
fn replies_are_bounded_like_deliveries() {
    let o = outbox(600);
    let mut pongs = 0;
    while o.push_reply(NATS, Reply::Flushed) {
        pongs += 1;
    }
    assert_eq!(pongs, 100, "600 bytes hold 100 PONGs and no more");
    assert_eq!(o.close_reason(), Some(CloseReason::SlowConsumerPending));
    assert_eq!(o.pending_bytes(), 0, "a slow consumer's backlog is dropped");
    assert!(
        !o.push_reply(NATS, Reply::Ok),
        "nothing is queued once closing"
    );
    assert!(!o.push_frames(b"MSG a 1 0\r\n\r\n", ONE));
}

#[test]
fn deliveries_past_max_pending_close_as_slow_consumer() {
    let o = outbox(100);
    assert!(o.push_frames(&[b'x'; 60], ONE));
    assert!(o.push_frames(&[b'x'; 40], ONE));
    assert!(!o.push_frames(&[b'x'; 1], ONE));
    assert_eq!(o.close_reason(), Some(CloseReason::SlowConsumerPending));
}

#[test]
fn a_congested_outbox_is_listed_once_per_turn() {
    let o = outbox(1 << 20);
    assert!(o.push_frames(&[b'x'; 64], ONE));
    assert!(o.env.congestion.is_empty());
    assert!(o.push_frames(&[b'x'; 1], ONE));
    assert!(o.push_frames(&[b'x'; 100], ONE));
    assert!(o.is_congested());
    assert_eq!(o.env.congestion.len(), 1);
    assert_eq!(o.take_written().len(), 165);
    assert!(!o.is_congested(), "written out: relieved");
    assert_eq!(o.out_totals(), (3, 3));
    let (e2e, _) = o.env.metrics.latency.copy(Hist::EndToEnd);
    assert_eq!(e2e.len(), 3, "the three deliveries were timed when written");
    o.env.congestion.clear();
}

#[test]
fn drop_new_is_paced_first_then_sheds_until_under_low_and_counts_it() {
    // High watermark 64 (stall_above), low 32, a 10 ms stall budget.
    let o = outbox(1 << 20);
    let shed = one(Policy::DropNew, Priority::Normal);
    assert!(o.push_frames(&[b'x'; 60], shed));
    assert!(
        o.push_frames(&[b'x'; 10], shed),
        "over 64, but its publishers are paced first"
    );
    assert_eq!(o.env.congestion.len(), 1);
    o.env.congestion.clear();
    // It writes nothing for its whole stall budget: pacing does not help any more.
    let (s, t0) = (o.stall(), Instant::now());
    for k in 0..2 {
        assert_eq!(s.begin(t0 + k * 5 * MS, 0), Plan::Wait(5 * MS));
        s.end(t0 + (k + 1) * 5 * MS, 0);
    }
    assert!(s.exhausted());
    assert!(!o.push_frames(&[b'x'; 10], shed), "now it sheds");
    assert!(o.is_dropping());
    o.written(20);
    assert!(
        !o.push_frames(&[b'x'; 1], shed),
        "50 pending: not under 32 yet"
    );
    o.written(20);
    assert!(!o.is_dropping(), "30 pending: under the low watermark");
    assert!(o.push_frames(&[b'x'; 1], shed));
    assert!(!o.is_closing(), "it stays connected");
    assert!(
        !o.deadline_closes(),
        "only drop_new messages: a stuck write sheds"
    );
    assert!(o.push_frames(&[b'x'; 1], ONE));
    assert!(o.deadline_closes(), "a disconnect-policy message is queued");
    let t = o.tally();
    assert_eq!((t.matched, t.delivered_msgs), (6, 4));
    assert_eq!(t.dropped(DropReason::DropNew), 2);
    assert_eq!(t.matched, t.delivered_msgs + t.dropped_total());
    o.env.congestion.clear();
}

#[test]
fn high_priority_is_never_shed_and_asks_for_an_urgent_flush() {
    // No pacing (a zero stall budget): drop_new sheds as soon as it is over 64.
    let limits = Limits {
        stall_budget: Duration::ZERO,
        ..limits(1 << 20)
    };
    let o = Rc::new(Outbox::new(7, env(1 << 30), &limits));
    assert!(!o.push_frames(&[b'x'; 100], one(Policy::DropNew, Priority::Normal)));
    assert!(o.push_frames(&[b'x'; 100], one(Policy::DropNew, Priority::High)));
    assert!(o.take_urgent());
    assert!(!o.take_urgent(), "taken once");
    assert!(!o.push_frames(&[b'x'; 1], one(Policy::DropNew, Priority::Normal)));
    assert_eq!(o.tally().dropped(DropReason::DropNew), 2);
}

#[test]
fn a_slow_consumer_close_counts_what_it_refuses_and_discards() {
    let o = outbox(100);
    assert!(o.push_frames(&[b'x'; 90], ONE));
    assert!(!o.push_frames(&[b'x'; 20], ONE));
    assert!(!o.push_frames(&[b'x'; 1], ONE));
    let t = o.tally();
    assert_eq!(t.dropped(DropReason::SlowConsumer), 2);
    assert_eq!(t.matched, t.delivered_msgs + t.dropped_total());
    let c = o.env.metrics.counters.values();
    assert_eq!(c.get(Counter::BacklogDroppedBytes), 90);
}

#[test]
fn copied_bytes_count_against_the_memory_budget_until_written() {
    let env = env(10_000);
    let o = Rc::new(Outbox::new(1, Rc::clone(&env), &limits(1 << 20)));
    assert!(o.push_frames(&[b'x'; 5000], ONE));
    assert!(o.push_reply(NATS, Reply::Flushed));
    assert_eq!(env.memory.held(), 5006);
    let block = Bytes::from(vec![b'y'; 3000]);
    assert!(o.push_shared(&block, ONE));
    assert_eq!(
        env.memory.held(),
        5006,
        "shared blocks are counted by their owner"
    );
    o.written(4000);
    assert_eq!(env.memory.held(), 1006);
    assert!(o.push_frames(&[b'x'; 7000], ONE));
    assert!(env.memory.is_paused(), "8006 is over 80% of 10 000");
    env.congestion.clear(); // the shard's list of congested outboxes held it too
    drop(o);
    assert_eq!(
        env.memory.held(),
        0,
        "a closed connection gives its bytes back"
    );
    assert!(!env.memory.is_paused());
}

#[test]
fn close_keeps_an_error_queued_before_it_but_drops_a_slow_backlog() {
    let o = outbox(1 << 20);
    assert!(o.push_reply(NATS, Reply::Err("Stale Connection")));
    o.close(CloseReason::StaleConnection);
    assert_eq!(o.to_vec(), b"-ERR 'Stale Connection'\r\n");
    o.close(CloseReason::SlowConsumerPending);
    assert_eq!(
        o.close_reason(),
        Some(CloseReason::StaleConnection),
        "first reason wins"
    );
}
