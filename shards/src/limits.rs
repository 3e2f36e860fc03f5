//! Every bound the engine enforces, in one place: sizes of buffers, queues, lines and
//! payloads, counts of connections and subscriptions, and the timers that close
//! connections. The constants are fixed design bounds; [`Limits`] holds the configurable
//! ones. The binary fills it from its configuration; the engine never sees TOML.

use std::time::Duration;

use crate::flow::FlowConfig;

/// Size of one outbound chunk. Outbound buffers are chains of these, recycled through a
/// per-shard pool, so a connection's pending bytes never need one large allocation.
pub const OUTBOUND_CHUNK_BYTES: usize = 64 * 1024;

/// Size of the chunk a control reply (PONG, +OK, -ERR, INFO) takes on a connection with
/// nothing else pending, instead of a whole pooled chunk.
pub const CONTROL_CHUNK_BYTES: usize = 512;

/// Publishers that may wait at once for one congested outbox to drain; more proceed
/// without pausing (a pause is a courtesy to a slow reader, never owed).
pub const DRAIN_WAITERS_MAX: usize = 64;

/// A frame encoded once for many subscribers is kept for the next message only up to
/// this size (one per shard thread).
pub const ENCODED_KEEP_BYTES_MAX: usize = 1 << 20;

/// A run (consecutive publishes to one subject in a turn) is delivered once it holds this
/// many bytes.
pub const RUN_BYTES_MAX: usize = 64 * 1024;

/// Runs at least this big are shared by reference with their subscribers; smaller ones
/// are cheaper to copy than to track (one iovec per block when written).
pub const RUN_SHARE_BYTES_MIN: usize = 2048;

/// How long a shard waits before accepting again after `accept` failed (EMFILE and
/// friends), instead of spinning.
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// How long start-up waits for every shard to report ready.
pub const SHARD_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Deliveries not yet written are timed in at most this many groups per outbox (one per
/// turn that appended to it); past it, new ones join the newest group.
pub const LATENCY_MARKS_MAX: usize = 64;

/// How often each shard ends a metrics interval: the "last interval" latency percentiles
/// and CPU busy fraction of `/shardz` cover this long.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(1);

/// Subscription rows one shard puts in a snapshot (`/subsz?subs=1`), at most.
pub const SNAPSHOT_SUBS_MAX: usize = 100_000;

/// How long the monitoring thread waits for a shard's snapshot.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(2);

/// Memory each executor preallocates and registers with io_uring for storage I/O (glommio's
/// default is 10 MiB). shardcast does no storage I/O, so it takes glommio's minimum: the
/// default cost 20 MiB of resident memory on two shards for nothing.
pub const EXECUTOR_IO_MEMORY_BYTES: usize = 64 * 1024;

/// Connection backlog of each shard's listener (the kernel caps it at `somaxconn`).
pub const LISTEN_BACKLOG: i32 = 1024;

/// How much longer than `shutdown.grace` a stopping shard waits for its connection tasks
/// (their last flushes are bounded by the grace itself).
pub const SHUTDOWN_SLACK: Duration = Duration::from_secs(1);

/// The locked-memory floor checked before start-up (see `preflight`).
pub use crate::preflight::MEMLOCK_KIB_MIN;

/// Initial read buffer of a connection: small, so an idle connection costs little memory;
/// it grows on demand up to `Limits::read_buffer_bytes_max()`.
pub const READ_BUFFER_BYTES_INITIAL: usize = 512;

/// Bytes read from one socket before the reader hands the turn to other tasks.
pub const READ_BYTES_PER_TURN: usize = 64 * 1024;

/// Most iovecs handed to one `writev` call.
pub const WRITE_IOVECS_MAX: usize = 64;

/// Longest single pause of a publisher waiting for one congested subscriber.
pub const STALL_WAIT_MAX: Duration = Duration::from_millis(5);

/// Most shards a server may run (the routing bitsets are sized for it).
pub const SHARDS_MAX: usize = 256;

/// Longest sid accepted in SUB; sids are echoed in every MSG, so they are bounded.
pub const SID_BYTES_MAX: usize = 128;

/// Entries kept in each shard's subject match cache.
pub const MATCH_CACHE_ENTRIES_MAX: usize = 4096;

/// How often a reader paused by the memory budget looks again (it is also woken when
/// the shard falls under its low mark).
pub const PUSHBACK_RECHECK: Duration = Duration::from_millis(50);

/// How long a ring receiver applies a busy peer's batches before it lets the shard's
/// other tasks run.
pub const RING_RECEIVE_SLICE: Duration = Duration::from_micros(500);

/// The longest a rate-limited publisher is left unread at a time before its wait is
/// worked out again (the load, and so the refill rate, may have changed).
pub const THROTTLE_WAIT_MAX: Duration = Duration::from_millis(100);

/// Rules of each kind (rate limit, slow-consumer policy, priority) a configuration may
/// hold; each costs a subject-index entry per shard and, for rate rules, up to one bucket
/// pair per publishing connection.
pub const FLOW_RULES_MAX: usize = 256;

const _: () = assert!(
    OUTBOUND_CHUNK_BYTES >= 2 * 4096 + 256,
    "a MSG line must fit a chunk"
);
const _: () = assert!(
    CONTROL_CHUNK_BYTES < OUTBOUND_CHUNK_BYTES,
    "control chunks are the small ones"
);
const _: () = assert!(RUN_SHARE_BYTES_MIN <= RUN_BYTES_MAX, "a full run is shared");
const _: () = assert!(SHARDS_MAX <= u16::MAX as usize + 1, "shard ids fit a u16");

/// Runtime limits, all configurable; see `docs/configuration.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest control line (a command and its arguments), as nats-server's max_control_line.
    pub control_line_bytes_max: usize,
    /// Largest PUB/HPUB body (headers + payload), announced to clients in INFO.
    pub payload_bytes_max: usize,
    /// Outbound bytes a connection may have waiting; beyond it the client is a slow consumer.
    pub pending_bytes_max: usize,
    /// A write that makes no progress for this long closes the client as a slow consumer.
    pub write_deadline: Duration,
    /// Client connections over the whole server (all shards).
    pub connections_max: usize,
    /// Subscriptions per connection; 0 means unlimited.
    pub subscriptions_max: usize,
    /// Connections from one IP address at once, all ports; 0 means unlimited.
    pub connections_per_ip_max: usize,
    /// New connections accepted per second over the whole server, all ports (a token
    /// bucket holding `accept_burst`); 0 means unlimited.
    pub accept_rate: u32,
    /// Connections accepted at once before `accept_rate` applies.
    pub accept_burst: u32,
    /// Server PING interval for idle connections.
    pub ping_interval: Duration,
    /// Unanswered server PINGs before the connection is closed as stale.
    pub pings_out_max: u32,
    /// Bytes carried by one write call at most.
    pub write_bytes_max: usize,
    /// Pending bytes above which a subscriber is congested: whoever feeds it pauses
    /// (boundedly) for it to drain. Low enough to keep memory and queueing latency small,
    /// high enough that a reader keeping up is never paused for. At most 75% of
    /// `pending_bytes_max` is used, so a congested subscriber always has room left.
    pub stall_above_bytes: usize,
    /// Time publishers may pause for one subscriber above `stall_above_bytes` that writes
    /// nothing meanwhile (any progress refills it); zero disables pausing. A subscriber
    /// that stays stalled past it is left to reach `pending_bytes_max` and be cut off.
    pub stall_budget: Duration,
    /// Optional delay before flushing a woken connection, trading latency for fewer syscalls.
    pub flush_delay: Duration,
    /// Slots of each cross-shard ring (rounded up to a power of two by glommio).
    pub ring_slots: usize,
    /// Batches waiting for room in one ring before publishers on this shard are paused.
    pub ring_overflow_batches_max: usize,
    /// Outbound chunks each shard keeps for reuse.
    pub pool_chunks_max: usize,
    /// How long shutdown waits for buffered output to drain.
    pub shutdown_grace: Duration,
    /// How long an idle shard keeps polling before it parks its thread. Parking and being
    /// woken (by a client or another shard) costs tens of µs; spinning costs a CPU.
    pub spin_before_park: Duration,
    /// Flow control: the load figure, rate limits, the memory budget, slow-consumer
    /// policies and priorities.
    pub flow: FlowConfig,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            control_line_bytes_max: 4096,
            payload_bytes_max: 1024 * 1024,
            pending_bytes_max: 64 * 1024 * 1024,
            write_deadline: Duration::from_secs(10),
            connections_max: 65536,
            subscriptions_max: 0,
            connections_per_ip_max: 0,
            accept_rate: 0,
            accept_burst: 100,
            ping_interval: Duration::from_secs(120),
            pings_out_max: 2,
            write_bytes_max: 1024 * 1024,
            stall_above_bytes: 64 * 1024,
            stall_budget: Duration::from_millis(10),
            flush_delay: Duration::ZERO,
            ring_slots: 64,
            ring_overflow_batches_max: 16,
            pool_chunks_max: 16,
            shutdown_grace: Duration::from_secs(5),
            spin_before_park: Duration::ZERO,
            flow: FlowConfig::default(),
        }
    }
}

/// A limit that does not fit with the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("{name} must be at least {min} (got {value})")]
    TooSmall {
        name: &'static str,
        min: u64,
        value: u64,
    },
    #[error("{name} must be at most {max} (got {value})")]
    TooLarge {
        name: &'static str,
        max: u64,
        value: u64,
    },
    #[error("max_payload ({payload}) cannot be higher than max_pending ({pending})")]
    PayloadOverPending { payload: usize, pending: usize },
    #[error("{name}: {why}")]
    Invalid { name: String, why: String },
}

impl Limits {
    /// Every limit on which `self` and `other` differ, by its configuration name, and
    /// whether it can change while the server runs (a reload) or only at a restart.
    fn differences(&self, other: &Limits) -> Vec<(&'static str, bool)> {
        let (a, b) = (self, other);
        let all = [
            (
                "limits.max_control_line",
                true,
                a.control_line_bytes_max != b.control_line_bytes_max,
            ),
            (
                "limits.max_payload",
                true,
                a.payload_bytes_max != b.payload_bytes_max,
            ),
            (
                "limits.max_pending",
                true,
                a.pending_bytes_max != b.pending_bytes_max,
            ),
            (
                "limits.write_deadline",
                true,
                a.write_deadline != b.write_deadline,
            ),
            (
                "limits.max_connections",
                true,
                a.connections_max != b.connections_max,
            ),
            (
                "limits.max_subscriptions",
                true,
                a.subscriptions_max != b.subscriptions_max,
            ),
            (
                "limits.max_connections_per_ip",
                true,
                a.connections_per_ip_max != b.connections_per_ip_max,
            ),
            ("limits.accept_rate", true, a.accept_rate != b.accept_rate),
            (
                "limits.accept_burst",
                true,
                a.accept_burst != b.accept_burst,
            ),
            (
                "limits.stall_above",
                true,
                a.stall_above_bytes != b.stall_above_bytes,
            ),
            (
                "limits.stall_budget",
                true,
                a.stall_budget != b.stall_budget,
            ),
            (
                "keepalive.ping_interval",
                true,
                a.ping_interval != b.ping_interval,
            ),
            (
                "keepalive.max_pings_out",
                true,
                a.pings_out_max != b.pings_out_max,
            ),
            (
                "batch.max_bytes",
                true,
                a.write_bytes_max != b.write_bytes_max,
            ),
            ("batch.flush_delay_us", true, a.flush_delay != b.flush_delay),
            ("shutdown.grace", true, a.shutdown_grace != b.shutdown_grace),
            ("ring.slots", false, a.ring_slots != b.ring_slots),
            (
                "ring.overflow_batches_max",
                false,
                a.ring_overflow_batches_max != b.ring_overflow_batches_max,
            ),
            (
                "ring.pool_chunks_max",
                false,
                a.pool_chunks_max != b.pool_chunks_max,
            ),
            (
                "spin_before_park",
                false,
                a.spin_before_park != b.spin_before_park,
            ),
            (
                "load",
                true,
                a.flow.load != b.flow.load || a.flow.scale != b.flow.scale,
            ),
            (
                "rate_limit",
                true,
                a.flow.rate_limit != b.flow.rate_limit || a.flow.rate_rules != b.flow.rate_rules,
            ),
            ("memory", true, a.flow.memory != b.flow.memory),
            (
                "slow_consumer",
                true,
                a.flow.policy != b.flow.policy
                    || a.flow.policy_rules != b.flow.policy_rules
                    || a.flow.high_watermark != b.flow.high_watermark
                    || a.flow.low_watermark != b.flow.low_watermark
                    || a.flow.stall_max != b.flow.stall_max,
            ),
            (
                "priority",
                true,
                a.flow.priority_rules != b.flow.priority_rules,
            ),
        ];
        all.into_iter()
            .filter(|&(_, _, differs)| differs)
            .map(|(name, live, _)| (name, live))
            .collect()
    }

    /// The limits that differ in `new` and can change while the server runs.
    pub fn live_changes(&self, new: &Limits) -> Vec<&'static str> {
        self.differences(new)
            .into_iter()
            .filter_map(|(name, live)| live.then_some(name))
            .collect()
    }

    /// The limits that differ in `new` but take effect only at a restart (the rings, the
    /// chunk pool and the executors are built once).
    pub fn fixed_changes(&self, new: &Limits) -> Vec<&'static str> {
        self.differences(new)
            .into_iter()
            .filter_map(|(name, live)| (!live).then_some(name))
            .collect()
    }

    /// `new`, but with this value of every limit that cannot change while running.
    pub fn with_live_from(&self, new: &Limits) -> Limits {
        Limits {
            ring_slots: self.ring_slots,
            ring_overflow_batches_max: self.ring_overflow_batches_max,
            pool_chunks_max: self.pool_chunks_max,
            spin_before_park: self.spin_before_park,
            ..new.clone()
        }
    }

    /// Largest read buffer a connection may need: one whole PUB with its control line.
    pub fn read_buffer_bytes_max(&self) -> usize {
        self.control_line_bytes_max + self.payload_bytes_max + 2
    }

    /// Checks how the limits relate, so a bad combination fails at start-up with a message.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let at_least = |name, min: u64, value: u64| {
            if value < min {
                Err(LimitsError::TooSmall { name, min, value })
            } else {
                Ok(())
            }
        };
        let at_most = |name, max: u64, value: u64| {
            if value > max {
                Err(LimitsError::TooLarge { name, max, value })
            } else {
                Ok(())
            }
        };
        at_least("max_control_line", 64, self.control_line_bytes_max as u64)?;
        at_most("max_control_line", 4096, self.control_line_bytes_max as u64)?;
        at_least("max_payload", 1, self.payload_bytes_max as u64)?;
        at_most(
            "max_payload",
            64 * 1024 * 1024,
            self.payload_bytes_max as u64,
        )?;
        at_least("max_connections", 1, self.connections_max as u64)?;
        at_least("accept_burst", 1, u64::from(self.accept_burst))?;
        at_least("max_pings_out", 1, u64::from(self.pings_out_max))?;
        at_least("batch.max_bytes", 4096, self.write_bytes_max as u64)?;
        at_least("ring.slots", 2, self.ring_slots as u64)?;
        at_most("ring.slots", 65536, self.ring_slots as u64)?;
        at_least(
            "ring.overflow_batches_max",
            1,
            self.ring_overflow_batches_max as u64,
        )?;
        at_least(
            "ping_interval (ms)",
            10,
            self.ping_interval.as_millis() as u64,
        )?;
        at_least(
            "write_deadline (ms)",
            1,
            self.write_deadline.as_millis() as u64,
        )?;
        at_least("stall_above", 1, self.stall_above_bytes as u64)?;
        at_most(
            "spin_before_park (us)",
            10_000,
            self.spin_before_park.as_micros() as u64,
        )?;
        if self.payload_bytes_max > self.pending_bytes_max {
            return Err(LimitsError::PayloadOverPending {
                payload: self.payload_bytes_max,
                pending: self.pending_bytes_max,
            });
        }
        self.flow.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_nats() {
        let l = Limits::default();
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(l.control_line_bytes_max, 4096);
        assert_eq!(l.payload_bytes_max, 1 << 20);
        assert_eq!(l.pending_bytes_max, 64 << 20);
    }

    #[test]
    fn payload_over_pending_is_rejected() {
        let l = Limits {
            pending_bytes_max: 1024,
            payload_bytes_max: 2048,
            ..Limits::default()
        };
        assert_eq!(
            l.validate(),
            Err(LimitsError::PayloadOverPending {
                payload: 2048,
                pending: 1024
            })
        );
    }

    #[test]
    fn reload_changes_are_split_into_live_and_fixed() {
        let running = Limits::default();
        let new = Limits {
            pending_bytes_max: 1 << 20,
            ping_interval: Duration::from_secs(5),
            ring_slots: 128,
            ..Limits::default()
        };
        assert_eq!(
            running.live_changes(&new),
            ["limits.max_pending", "keepalive.ping_interval"]
        );
        assert_eq!(running.fixed_changes(&new), ["ring.slots"]);
        let merged = running.with_live_from(&new);
        assert_eq!(merged.ring_slots, running.ring_slots);
        assert_eq!(merged.pending_bytes_max, 1 << 20);
        assert!(running.fixed_changes(&merged).is_empty());
        assert!(running.live_changes(&running).is_empty());
    }

    #[test]
    fn tiny_control_line_is_rejected() {
        let l = Limits {
            control_line_bytes_max: 8,
            ..Limits::default()
        };
        assert!(matches!(
            l.validate(),
            Err(LimitsError::TooSmall {
                name: "max_control_line",
                ..
            })
        ));
    }
}
