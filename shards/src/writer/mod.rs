//! The batched writer: owns each connection's outbound bytes (`Outbound`, a chain of
//! pooled fixed-size chunks) and writes everything pending with one vectored send per
//! turn (`flush`). Fan-out only appends; only the writer touches the socket's send side.

pub mod flush;
pub mod outbound;
pub mod pool;

pub use flush::{flush, FlushError};
pub use outbound::Outbound;
pub use pool::ChunkPool;
