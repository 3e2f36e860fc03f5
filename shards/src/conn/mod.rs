//! Client connections: their per-shard state (`Conn`, `Sub`, no socket), the transport
//! their bytes travel on (`Transport`, plain TCP today), the read buffer the reader fills,
//! and the writer task that flushes their outbox. What the bytes mean is a front-end's
//! business (`front`); `shard::run_loop` runs the tasks.

pub mod admission;
pub mod reader;
pub mod state;
pub mod tls;
pub mod tls_client;
pub mod transport;
pub mod writer_task;

pub use crate::close::CloseReason;
pub use state::{ClientInfo, Conn, ConnFlags, Sub};
pub use transport::{Tcp, Transport};
