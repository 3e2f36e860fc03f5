//! One connection's delivery accounting, kept so that it always adds up: every message
//! that matched one of its subscriptions is either queued for it (*delivered*) or
//! *dropped* for a reason, never lost silently:
//!
//! `matched = delivered + dropped_drop_new + dropped_slow_consumer + dropped_closed`
//!
//! Delivered counts what was queued (nats-server's `out_msgs`). If the connection is
//! later closed as a slow consumer, what was still queued is discarded with it and
//! counted in bytes by the shard (`slow_consumer_backlog_bytes`).

use std::cell::Cell;

use crate::metrics::{Counter, ShardMetrics};

/// Why a message that matched a connection was not queued for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its policy is `drop_new` and the connection is over its high watermark.
    DropNew,
    /// The connection is closed (or being closed) as a slow consumer.
    SlowConsumer,
    /// The connection is closing for another reason (it went away, shutdown, an error).
    Closed,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [
        DropReason::DropNew,
        DropReason::SlowConsumer,
        DropReason::Closed,
    ];

    /// Stable name (JSON keys, log fields).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::DropNew => "drop_new",
            DropReason::SlowConsumer => "slow_consumer",
            DropReason::Closed => "closed",
        }
    }

    fn counter(self) -> Counter {
        match self {
            DropReason::DropNew => Counter::DroppedDropNew,
            DropReason::SlowConsumer => Counter::DroppedSlowConsumer,
            DropReason::Closed => Counter::DroppedClosed,
        }
    }
}

/// The live counts of one connection.
#[derive(Debug, Default)]
pub struct Tally {
    matched: Cell<u64>,
    delivered_msgs: Cell<u64>,
    delivered_bytes: Cell<u64>,
    dropped: [Cell<u64>; 3],
}

/// A copy of a [`Tally`] (for monitoring and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TallyValues {
    pub matched: u64,
    pub delivered_msgs: u64,
    pub delivered_bytes: u64,
    /// By [`DropReason`], in [`DropReason::ALL`] order.
    pub dropped: [u64; 3],
}

impl TallyValues {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }
}

fn bump(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get() + n);
}

impl Tally {
    /// `msgs` messages matched; the shard counts them too.
    #[inline]
    pub fn matched(&self, msgs: u64, metrics: &ShardMetrics) {
        bump(&self.matched, msgs);
        metrics.add(Counter::MsgsMatched, msgs);
    }

    #[inline]
    pub fn delivered(&self, msgs: u64, payload_bytes: u64, metrics: &ShardMetrics) {
        bump(&self.delivered_msgs, msgs);
        bump(&self.delivered_bytes, payload_bytes);
        metrics.add(Counter::MsgsOut, msgs);
        metrics.add(Counter::BytesOut, payload_bytes);
    }

    #[inline]
    pub fn dropped(&self, reason: DropReason, msgs: u64, metrics: &ShardMetrics) {
        bump(&self.dropped[reason as usize], msgs);
        metrics.add(reason.counter(), msgs);
    }

    pub fn values(&self) -> TallyValues {
        TallyValues {
            matched: self.matched.get(),
            delivered_msgs: self.delivered_msgs.get(),
            delivered_bytes: self.delivered_bytes.get(),
            dropped: [0, 1, 2].map(|i| self.dropped[i].get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_add_up_per_connection_and_per_shard() {
        let metrics = ShardMetrics::new(false);
        let t = Tally::default();
        t.matched(10, &metrics);
        t.delivered(6, 60, &metrics);
        t.dropped(DropReason::DropNew, 3, &metrics);
        t.dropped(DropReason::Closed, 1, &metrics);
        let v = t.values();
        assert_eq!(v.matched, v.delivered_msgs + v.dropped_total());
        assert_eq!(v.dropped(DropReason::DropNew), 3);
        let c = metrics.counters.values();
        assert_eq!(
            c.get(Counter::MsgsMatched),
            c.get(Counter::MsgsOut)
                + c.get(Counter::DroppedDropNew)
                + c.get(Counter::DroppedSlowConsumer)
                + c.get(Counter::DroppedClosed)
        );
    }
}
