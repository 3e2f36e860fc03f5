//! Syslog over UDP (`logs.syslog_udp_port`, `--syslog-udp`): every shard reads the port
//! (SO_REUSEPORT: the kernel spreads senders over the shards), one datagram at a time
//! into a fixed 64 KiB buffer, and routes each message as it comes. A flood is bounded by
//! the kernel's socket buffer, which drops what does not fit (counted by the kernel:
//! `RcvbufErrors` in `netstat -su`); nothing is queued beyond it here.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::history::rfc3339_millis;
use crate::logs::syslog::parse_syslog;
use crate::logs::{route_record, LogShard, ParseError};
use crate::service::Internal;
use crate::shard::ShardCtx;

/// The largest datagram read.
const DATAGRAM_BYTES_MAX: usize = 65_536;

/// Reads and routes `socket`'s datagrams until the shard stops.
pub async fn serve(ctx: Rc<ShardCtx>, socket: glommio::net::UdpSocket, logs: Rc<LogShard>) {
    let client = Internal::start(&ctx);
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    let mut matched = Vec::new();
    while !ctx.stopping.get() {
        let n = match socket.recv_from(&mut buf).await {
            Ok((n, _peer)) => n,
            Err(e) => {
                tracing::warn!(shard = ctx.id, error = %e, "syslog udp receive failed");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let now = rfc3339_millis(SystemTime::now());
        let record = match parse_syslog(&buf[..n], &now, logs.cfg.record_bytes_max) {
            Ok(r) => r,
            Err(ParseError::Empty) => continue,
            Err(e) => {
                logs.count(|c| c.malformed += 1);
                tracing::debug!(shard = ctx.id, error = %e, "malformed syslog datagram");
                continue;
            }
        };
        logs.count(|c| c.received += 1);
        let rules = Rc::clone(&logs.rules.borrow());
        let routed = route_record(&rules, &record, &mut matched);
        for subject in &routed.subjects {
            client
                .publish(subject, None, Some(routed.headers.as_bytes()), &routed.body)
                .await;
        }
        let routed_n = routed.subjects.len() as u64;
        logs.count(|c| c.routed += routed_n);
    }
}
