//! Any text as the configuration file: loaded or refused with a message, never a panic;
//! a configuration that loads gives the engine its view without a panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardcast::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text, "fuzz.toml") {
        Ok(cfg) => {
            let engine = cfg.server_config();
            assert!(engine.limits.validate().is_ok(), "a loaded configuration has valid limits");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
