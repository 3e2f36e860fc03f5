//! The `shardcast` binary's library: configuration loading, the command line and the load
//! generator (`shardcast bench`). The engine itself lives in the `shards` crate.

pub mod bench;
pub mod cli;
pub mod config;
