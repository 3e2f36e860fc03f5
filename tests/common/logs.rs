//! Log-routing test helpers: the rules of the issue's example, the next message of a
//! subscription, a port from the server's log, util-linux `logger`.

use super::{Server, WAIT};
use futures::StreamExt;

/// The routing rules the log tests share.
pub const RULES: &str = r#"
[logs]
enabled = true

[[logs.route]]
to = "logs.error"
level = ["ERROR", "FATAL"]

[[logs.route]]
to = "logs.security"
category = ["SECURITY"]
keyword = ["auth", "permission"]

[[logs.route]]
to = "logs.database"
keyword = ["sql", "database"]

[[logs.route]]
to = "logs.{app}.{level}"
regex = 'timeout after \d+ms'
"#;

/// The next message on `sub`, within WAIT.
pub async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open")
}

/// The address a `<what> listening addr=…` line of `s`'s log names.
pub fn listening(s: &Server, what: &str) -> std::net::SocketAddr {
    let line = s.wait_for_log(what, |l| l.contains(what));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr in {line}"))
}

/// Runs util-linux `logger` with `args`, sending to 127.0.0.1:`port`.
pub fn logger(port: u16, args: &[&str]) {
    let out = std::process::Command::new("logger")
        .args(["-n", "127.0.0.1", "-P", &port.to_string()])
        .args(args)
        .output()
        .expect("logger (util-linux) runs; scripts/test.sh installs it");
    assert!(out.status.success(), "logger {args:?}: {out:?}");
}

/// Asserts that nothing more comes on `sub` for a moment (`what`: what that would mean).
pub async fn nothing_more(sub: &mut async_nats::Subscriber, what: &str) {
    let extra = tokio::time::timeout(std::time::Duration::from_millis(200), sub.next()).await;
    assert!(extra.is_err(), "{what}: {extra:?}");
}
