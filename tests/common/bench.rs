//! Running the real `shardcast bench` binary and reading its JSON report.

use std::process::{Command, Output};

use serde_json::Value;

/// `shardcast bench ARGS…`, whatever its outcome.
pub fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run shardcast bench")
}

/// `shardcast bench ARGS…` (which should ask for `--json`): the run must succeed; its
/// report.
pub fn report(args: &[&str]) -> Value {
    let out = bench(args);
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// A count in a report.
pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}
