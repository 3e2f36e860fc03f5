//! Any bytes as CONNECT's JSON: decoded or refused with a protocol error, never a panic;
//! what is accepted keeps the protocol's rules.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shards::protocol::connect::parse_connect;

fuzz_target!(|data: &[u8]| {
    if let Ok(opts) = parse_connect(data) {
        assert!(opts.protocol == 0 || opts.protocol == 1, "protocol {}", opts.protocol);
        assert!(!opts.no_responders || opts.headers, "no_responders without headers");
    }
});
