//! The `shardcast` binary's library: configuration loading and the command line. The
//! engine itself lives in the `shards` crate.

pub mod cli;
pub mod config;
