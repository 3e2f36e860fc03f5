//! The shard runtime: one glommio executor per CPU. `runtime` starts a shard (joins the
//! ring mesh, binds the shared port, spawns its tasks); `run_loop` is the one place that
//! calls the pipeline stages in order for each read chunk and each ring batch;
//! `keepalive` pings idle clients.

pub mod ctx;
pub mod keepalive;
pub mod lame_duck;
pub mod listener;
pub mod run_loop;
pub mod runtime;
pub mod stats;
pub mod tasks;

pub use ctx::{Global, ShardCtx};
