//! Any bytes from a hub: the leaf link's parser never panics, consumes what it says it
//! consumed, and never reads past the buffer; every operation it returns re-parses the
//! same from its own bytes alone.
//!
//! Input: the bytes a hub sent, parsed operation by operation until an error or a need
//! for more.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shards::protocol::leaf_ops::{parse_leaf_op, LeafParsed};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while at < data.len() {
        match parse_leaf_op(&data[at..], 4096, 1 << 16) {
            Ok(LeafParsed::Op { op, consumed }) => {
                assert!(consumed > 0 && at + consumed <= data.len());
                let again = parse_leaf_op(&data[at..at + consumed], 4096, 1 << 16);
                assert!(
                    matches!(&again, Ok(LeafParsed::Op { op: o, consumed: c }) if *o == op && *c == consumed),
                    "{again:?}"
                );
                at += consumed;
            }
            Ok(LeafParsed::NeedMore { needed_bytes }) => {
                assert!(needed_bytes == 0 || needed_bytes > data.len() - at);
                break;
            }
            Err(_) => break,
        }
    }
});
