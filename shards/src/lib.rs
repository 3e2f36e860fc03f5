//! shardcast's engine: a thread-per-core NATS-protocol broadcast server on glommio.
//!
//! One glommio executor (a *shard*) is pinned to each CPU. Every shard accepts on the
//! same port (SO_REUSEPORT) and owns its connections, its subscriptions and its
//! outbound buffers outright; shards share no mutable state. A publish is matched
//! locally and crosses to another shard only if that shard has interest, once per
//! shard and once per read chunk, never once per subscriber:
//!
//! ```text
//!  socket ─▶ conn::reader ─▶ protocol::Parser ─▶ route::Router ─┬─▶ fanout (local subs,
//!                                                               │   in runs per subject)
//!                                      ring (SPSC, per shard pair, batched)
//!                                                               │
//!                           peer shard: ring::Inbound ─▶ fanout (its subs)
//!                                                               │
//!  socket ◀─ writer::flush (one writev per turn) ◀─ writer::Outbound (pooled chunks
//!                                                     and shared run blocks)
//! ```
//!
//! Modules are declared in that order. `shard::run_loop` is the one place that wires
//! the stages together; each stage hands a typed value to the next.

pub mod limits;

pub mod conn;
pub mod fanout;
pub mod protocol;
pub mod ring;
pub mod route;
pub mod subject;
pub mod writer;

pub mod metrics;
pub mod preflight;
pub mod server;
pub mod shard;

pub use limits::Limits;
pub use preflight::PreflightError;
pub use server::{ServerConfig, ServerError, ServerHandle};
