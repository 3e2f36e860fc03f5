//! The writer stage: each connection's [`Outbox`] (the one gate for its outbound bytes,
//! with its bound, its slow-consumer policy, its congestion state, its delivery
//! accounting ([`tally`]) and its close reason), the pending bytes behind it
//! ([`Outbound`], a chain of pooled chunks and shared blocks), the per-shard chunk pool,
//! publisher pacing for congested outboxes ([`stall`]), and [`flush()`], which writes
//! everything pending with one vectored send per turn into a [`Sink`]. Fan-out only
//! appends; only the writer touches the transport's send side.

pub mod flush;
pub mod marks;
pub mod outbound;
pub mod outbox;
pub mod pool;
pub mod stall;
pub mod tally;

pub use flush::{flush, FlushError, Sink};
pub use outbound::Outbound;
pub use outbox::{Delivered, Outbox, OutboxEnv};
pub use pool::ChunkPool;
pub use stall::Congestion;
pub use tally::{DropReason, TallyValues};
