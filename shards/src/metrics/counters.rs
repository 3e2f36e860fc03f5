//! A shard's counters: one `Cell<u64>` per [`Counter`] (shard-local, no atomics), the
//! connections closed per [`CloseReason`], and their plain copies ([`CounterValues`])
//! that travel to the monitoring thread and add up across shards.

use std::cell::Cell;

use crate::close::CloseReason;

macro_rules! counters {
    ($($variant:ident => $name:literal, $help:literal;)*) => {
        /// What a shard counts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter {
            $($variant,)*
        }

        impl Counter {
            /// Every counter, in a fixed order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)*];

            /// Stable snake_case name (JSON keys, Prometheus metric names).
            pub fn name(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)*
                }
            }

            /// One line on what it counts.
            pub fn help(self) -> &'static str {
                match self {
                    $(Counter::$variant => $help,)*
                }
            }
        }
    };
}

counters! {
    MsgsIn => "in_msgs", "Messages published by clients of this shard.";
    BytesIn => "in_bytes", "Payload bytes (headers included) published by clients of this shard.";
    MsgsOut => "out_msgs", "Messages delivered to clients of this shard.";
    BytesOut => "out_bytes", "Payload bytes (headers included) delivered to clients of this shard.";
    Forwards => "forwards", "Publishes forwarded to another shard (one per shard with interest).";
    RingBatchesIn => "ring_batches_in", "Batches received from other shards.";
    RingBatchesOut => "ring_batches_out", "Batches sent to other shards.";
    RingFull => "ring_full", "Batches that found their ring full and waited in the overflow queue.";
    Writes => "writes", "Vectored writes to client sockets.";
    ConnsAccepted => "connections_accepted", "Connections accepted.";
    ConnsRejected => "connections_rejected", "Connections refused at max_connections, max_connections_per_ip or accept_rate, or from an address banned for failed logins.";
    AuthFailures => "auth_failures", "Failed authentications (wrong or missing credentials, nothing but CONNECT allowed before them, no CONNECT in time).";
    TlsFailures => "tls_failures", "Connections that did not become TLS connections: plain text to a TLS port, a failed or timed-out handshake, a refused client certificate.";
    PermissionViolations => "permission_violations", "Publishes and subscriptions refused by the user's permissions.";
    SlowConsumers => "slow_consumers", "Connections closed as slow consumers.";
    StaleConnections => "stale_connections", "Connections closed for unanswered keepalive PINGs.";
    ProtocolErrors => "protocol_errors", "Connections closed for a protocol error.";
    QueueMisses => "queue_misses", "Queue-group picks whose member left before the message arrived.";
    MsgsMatched => "matched_msgs", "Deliveries owed: each message once per subscription of this shard it matched (= out_msgs + dropped_*).";
    DroppedDropNew => "dropped_drop_new", "Messages dropped for a connection over its high watermark (slow-consumer policy drop_new).";
    DroppedSlowConsumer => "dropped_slow_consumer", "Messages not queued because their connection was being closed as a slow consumer.";
    DroppedClosed => "dropped_closed", "Messages not queued because their connection was closing for another reason.";
    BacklogDroppedBytes => "slow_consumer_backlog_bytes", "Bytes queued for connections closed as slow consumers and discarded with them.";
    Throttles => "throttles", "Times a publisher was not read for a while because of its rate limits.";
    ThrottledUs => "throttled_us", "Time publishers were not read because of their rate limits, in microseconds.";
    Stalls => "stalls", "Pauses publishers (or rings) made for congested subscribers to drain.";
    StalledUs => "stalled_us", "Time publishers (or rings) paused for congested subscribers, in microseconds.";
    PushbackWaits => "pushback_waits", "Reads deferred because the shard was over its memory budget's high mark.";
}

/// The close reasons counted, in a fixed order (`CloseReason::Protocol` counts as one).
pub const CLOSE_REASONS: [CloseReason; 19] = [
    CloseReason::ClientClosed,
    CloseReason::ReadError,
    CloseReason::WriteError,
    CloseReason::SlowConsumerPending,
    CloseReason::SlowConsumerDeadline,
    CloseReason::SlowConsumerMemory,
    CloseReason::Protocol(crate::protocol::ProtoError::UnknownOp),
    CloseReason::MaxConnections,
    CloseReason::StaleConnection,
    CloseReason::ServerShutdown,
    CloseReason::ExcessFlood,
    CloseReason::RegistrationTimeout,
    CloseReason::IdleTimeout,
    CloseReason::AuthViolation,
    CloseReason::AuthTimeout,
    CloseReason::AuthBanned,
    CloseReason::MaxConnectionsPerIp,
    CloseReason::AcceptRate,
    CloseReason::SourceRefused,
];

fn reason_index(reason: CloseReason) -> usize {
    CLOSE_REASONS
        .iter()
        .position(|r| r.name() == reason.name())
        .unwrap_or_else(|| unreachable!("every close reason is listed"))
}

/// A shard's live counters.
#[derive(Debug)]
pub struct Counters {
    values: Vec<Cell<u64>>,
    closed: [Cell<u64>; CLOSE_REASONS.len()],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            values: Counter::ALL.iter().map(|_| Cell::new(0)).collect(),
            closed: Default::default(),
        }
    }
}

impl Counters {
    #[inline]
    pub fn add(&self, c: Counter, n: u64) {
        let cell = &self.values[c as usize];
        cell.set(cell.get().wrapping_add(n));
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.values[c as usize].get()
    }

    /// Counts a connection closed for `reason`.
    pub fn closed(&self, reason: CloseReason) {
        let cell = &self.closed[reason_index(reason)];
        cell.set(cell.get() + 1);
    }

    /// A plain copy.
    pub fn values(&self) -> CounterValues {
        CounterValues {
            values: self.values.iter().map(Cell::get).collect(),
            closed: self.closed.iter().map(Cell::get).collect(),
        }
    }
}

/// Counter values at one moment: of one shard, or summed over several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterValues {
    values: Vec<u64>,
    closed: Vec<u64>,
}

impl Default for CounterValues {
    fn default() -> Self {
        CounterValues {
            values: vec![0; Counter::ALL.len()],
            closed: vec![0; CLOSE_REASONS.len()],
        }
    }
}

impl CounterValues {
    pub fn get(&self, c: Counter) -> u64 {
        self.values[c as usize]
    }

    /// Connections closed, per close reason name.
    pub fn closed(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        CLOSE_REASONS
            .iter()
            .zip(&self.closed)
            .map(|(r, &n)| (r.name(), n))
    }

    /// Connections closed for any reason.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    pub fn add(&mut self, other: &CounterValues) {
        for (a, b) in self.values.iter_mut().zip(&other.values) {
            *a += b;
        }
        for (a, b) in self.closed.iter_mut().zip(&other.closed) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_across_shards() {
        let a = Counters::default();
        let b = Counters::default();
        a.add(Counter::MsgsIn, 3);
        b.add(Counter::MsgsIn, 4);
        b.add(Counter::Writes, 1);
        a.closed(CloseReason::SlowConsumerPending);
        b.closed(CloseReason::Protocol(
            crate::protocol::ProtoError::PayloadTooLarge,
        ));
        let mut total = a.values();
        total.add(&b.values());
        assert_eq!(total.get(Counter::MsgsIn), 7);
        assert_eq!(total.get(Counter::Writes), 1);
        assert_eq!(total.closed_total(), 2);
        let closed: Vec<_> = total.closed().filter(|&(_, n)| n > 0).collect();
        assert_eq!(
            closed,
            [("slow_consumer_max_pending", 1), ("protocol_error", 1)]
        );
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
    }
}
