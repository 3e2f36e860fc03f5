//! Client connections: their per-shard state (`Conn`, `Sub`), why they close
//! (`CloseReason`), the reader that fills a connection's read buffer, and the writer task
//! that flushes its outbound buffer. Parsing and routing of what was read happen in
//! `shard::run_loop`.

pub mod close;
pub mod reader;
pub mod state;
pub mod writer_task;

pub use close::CloseReason;
pub use state::{Conn, ConnFlags, MsgView, Sub, SubRef};
