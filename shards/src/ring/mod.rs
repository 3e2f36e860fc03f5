//! Cross-shard rings: bounded SPSC channels (glommio's channel mesh), one per ordered
//! pair of shards. A shard sends at most one `RingBatch` per peer per turn; the batch
//! carries interest changes, forwarded publishes (as spans of one shared read buffer)
//! and flush-barrier tokens, in the order the shard produced them.

pub mod batch;
pub mod inbound;
pub mod links;

pub use batch::{Forward, RingBatch, RingItem, RingMsg, Span};
pub use inbound::{Inbound, RingCounters};
pub use links::RingLinks;
