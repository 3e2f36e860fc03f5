//! shardcast's engine: a thread-per-core broadcast server on glommio, speaking the NATS
//! client protocol.
//!
//! One glommio executor (a *shard*) is pinned to each CPU. Every shard accepts on the
//! same port (SO_REUSEPORT) and owns its connections, its subscriptions and its
//! outboxes outright; shards share no mutable state. A publish is matched locally and
//! crosses to another shard only if that shard has interest, once per shard and once per
//! read chunk, never once per subscriber:
//!
//! ```text
//!  transport ─▶ conn::reader ─▶ front (NATS: protocol::Parser) ─▶ route::Router::apply
//!                                                                   │
//!            ┌──────────────────────────────────────────────────────┤
//!            ▼                                                      ▼
//!  fanout (local subs, in runs per subject)       ring (SPSC per shard pair, one batch
//!            │                                     per peer per turn) ─▶ peer shard:
//!            ▼                                     route::Router::apply_batch ─▶ fanout
//!  wire (encodes for each subscriber's protocol)
//!            │
//!            ▼
//!  writer::Outbox (bounded) ─▶ writer::flush (one vectored send per turn) ─▶ transport
//! ```
//!
//! The pipeline's modules are declared below in that order. `shard::run_loop` is the one
//! place that calls the stages in sequence; each stage hands a typed value to the next.

// Bounds, and why a connection closes: used by every stage.
pub mod auth;
pub mod close;
pub mod limits;

// The pipeline, in data-flow order.
pub mod conn;

pub mod front;

pub mod protocol;

pub mod route;

pub mod subject;

pub mod ring;

pub mod fanout;

pub mod wire;

pub mod writer;

// Flow control across the pipeline: publisher rate limits and memory pushback (read
// side), slow-consumer policies and priorities (outbox side), the load figure.
pub mod flow;

// Internal clients: a shard's own services (the IRC nick registry and channel members)
// as clients of the engine, talking over `$SC.` subjects.
pub mod service;

// History: the last messages of watched subjects, kept by an owner shard's service.
pub mod history;

pub mod leaf;

// Log streaming: logs parsed into records and routed to subjects by rules.
pub mod logs;

// Running it: shard tasks, start-up checks, the server handle, counters.
pub mod metrics;
pub mod preflight;
pub mod server;
pub mod shard;
pub mod trace;
pub mod wakers;

pub use limits::Limits;
pub use preflight::PreflightError;
pub use server::{ServerConfig, ServerError, ServerHandle};
