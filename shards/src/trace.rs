//! The protocol trace (`shardcast serve -V`, nats-server's `-V`): every operation a client
//! sends and every reply or delivery the server queues for it, logged through `tracing`
//! at target `shardcast::trace`, level TRACE, with the connection id, the direction
//! (`<<-` in, `->>` out), the control line and the payload cut to a configurable length.
//!
//! Off by default. The switch is process-wide (the binary sets it at start and on reload)
//! and costs one relaxed atomic load per operation when off; while it is on, runs of
//! publishes are delivered message by message so that each delivery is traced.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The `tracing` target of protocol trace events.
pub const TARGET: &str = "shardcast::trace";

static ENABLED: AtomicBool = AtomicBool::new(false);
static PAYLOAD_BYTES_MAX: AtomicUsize = AtomicUsize::new(64);

/// Turns the trace on or off; payloads longer than `payload_bytes_max` are cut.
pub fn set(enabled: bool, payload_bytes_max: usize) {
    PAYLOAD_BYTES_MAX.store(payload_bytes_max, Ordering::Relaxed);
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether operations are traced.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Traces an operation connection `cid` sent: its control line and payload, if any.
pub fn incoming(cid: u64, line: &[u8], payload: Option<&[u8]>) {
    event(cid, "<<-", line, payload);
}

/// Traces something queued for connection `cid`: a reply or a delivery's control line,
/// and the delivery's payload.
pub fn outgoing(cid: u64, line: &[u8], payload: Option<&[u8]>) {
    event(cid, "->>", line, payload);
}

fn event(cid: u64, dir: &'static str, line: &[u8], payload: Option<&[u8]>) {
    let line = trim_line_end(line);
    match payload {
        Some(p) => tracing::trace!(
            target: TARGET,
            cid,
            dir,
            op = %String::from_utf8_lossy(line),
            payload = %shown(p, PAYLOAD_BYTES_MAX.load(Ordering::Relaxed)),
        ),
        None => tracing::trace!(target: TARGET, cid, dir, op = %String::from_utf8_lossy(line)),
    }
}

/// The first line of `bytes`, without its line ending.
pub fn first_line(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    trim_line_end(&bytes[..end])
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A payload for the log: at most `max` bytes, control bytes escaped, and how much was cut.
fn shown(payload: &[u8], max: usize) -> Cow<'static, str> {
    let cut = payload.len().min(max);
    let mut text: String = payload[..cut].escape_ascii().to_string();
    if payload.len() > cut {
        text.push_str(&format!("… (+{} bytes)", payload.len() - cut));
    }
    Cow::Owned(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_cut_and_escaped() {
        assert_eq!(shown(b"hello", 64), "hello");
        assert_eq!(shown(b"a\r\nb", 64), "a\\r\\nb");
        assert_eq!(shown(b"0123456789", 4), "0123… (+6 bytes)");
        assert_eq!(shown(b"", 4), "");
    }

    #[test]
    fn the_first_line_has_no_line_ending() {
        assert_eq!(first_line(b"PUB a 1\r\nx\r\n"), b"PUB a 1");
        assert_eq!(first_line(b"PING\n"), b"PING");
        assert_eq!(first_line(b"PONG"), b"PONG");
    }
}
