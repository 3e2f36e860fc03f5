//! Lame duck mode, as nats-server has it (SIGUSR2): the shard has stopped accepting; its
//! NATS clients are told (an INFO with `ldm: true` and the deployment's `connect_urls`;
//! IRC clients get a NOTICE saying so),
//! so that clients that know lame duck mode start moving; after a grace period its
//! clients are closed a few at a time over the rest of the lame duck duration, so they
//! do not all reconnect elsewhere at the same instant. The leaf link stays up until the
//! end: the clients still here keep reaching the cluster.

use std::rc::Rc;
use std::time::Duration;

use crate::conn::{CloseReason, Conn};
use crate::protocol::info::{encode_info, ServerInfo};
use crate::shard::ShardCtx;
use crate::wire::Wire;

/// The shortest pause between two batches of closes (nats-server's).
const CLOSE_INTERVAL_MIN: Duration = Duration::from_millis(1);

/// Runs lame duck mode on this shard; returns when every client was closed.
pub async fn run(ctx: &Rc<ShardCtx>, duration: Duration, grace: Duration) {
    let told = tell_clients(ctx);
    tracing::info!(shard = ctx.id, clients = told, grace = ?grace, duration = ?duration, "lame duck mode: clients told; closing them after the grace period");
    glommio::timer::sleep(grace).await;
    let conns: Vec<Rc<Conn>> = ctx
        .conns
        .borrow()
        .values()
        .filter(|c| c.wire() != Wire::Leaf)
        .cloned()
        .collect();
    let (interval, batch) = schedule(conns.len(), duration.saturating_sub(grace));
    for chunk in conns.chunks(batch) {
        for conn in chunk {
            conn.close(CloseReason::ServerShutdown);
        }
        glommio::timer::sleep(interval).await;
    }
    tracing::info!(
        shard = ctx.id,
        closed = conns.len(),
        "lame duck mode: clients closed"
    );
}

/// Sends the lame duck INFO to every NATS client, and a notice to every IRC client;
/// returns how many NATS clients were told.
fn tell_clients(ctx: &ShardCtx) -> usize {
    let base = ServerInfo {
        ldm: true,
        ..(*ctx.nats_info()).clone()
    };
    // IRC people get a notice (IRC has no way to say "move"): where to go, when known.
    let irc_notice = ctx.global.irc.as_ref().map(|(_, settings)| {
        let elsewhere = if base.connect_urls.is_empty() {
            String::new()
        } else {
            format!("; other nodes: {}", base.connect_urls.join(", "))
        };
        format!(
            ":{} NOTICE * :This server is going down for maintenance; please reconnect{elsewhere}\r\n",
            settings.server_name
        )
    });
    let mut told = 0;
    for conn in ctx.conns.borrow().values() {
        if conn.is_closing() {
            continue;
        }
        if conn.wire() == Wire::Irc {
            if let Some(line) = &irc_notice {
                conn.outbox.push_control(line.as_bytes());
            }
            continue;
        }
        if !matches!(conn.wire(), Wire::Nats { .. }) {
            continue;
        }
        let info = ServerInfo {
            client_id: conn.cid,
            client_ip: conn.peer.map(|p| p.ip().to_string()),
            ..base.clone()
        };
        let mut line = Vec::with_capacity(384);
        encode_info(&mut line, &info);
        conn.outbox.push_control(&line);
        told += 1;
    }
    told
}

/// How `n` closes spread over `span`: the pause between batches and the batch size
/// (one at a time, unless that would pause less than [`CLOSE_INTERVAL_MIN`]).
fn schedule(n: usize, span: Duration) -> (Duration, usize) {
    let span = if span.is_zero() {
        Duration::from_secs(1)
    } else {
        span
    };
    if n == 0 {
        return (CLOSE_INTERVAL_MIN, 1);
    }
    let interval = span / n as u32;
    if interval >= CLOSE_INTERVAL_MIN {
        return (interval, 1);
    }
    let batches = (span.as_micros() / CLOSE_INTERVAL_MIN.as_micros()).max(1) as usize;
    (CLOSE_INTERVAL_MIN, n.div_ceil(batches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_spread_over_the_span() {
        let s = Duration::from_secs;
        assert_eq!(schedule(10, s(10)), (s(1), 1));
        assert_eq!(schedule(1, s(110)), (s(110), 1));
        // 100k clients over 10 s: 1 ms pauses, 10 at a time.
        assert_eq!(schedule(100_000, s(10)), (CLOSE_INTERVAL_MIN, 10));
        assert_eq!(schedule(0, s(10)), (CLOSE_INTERVAL_MIN, 1));
        // No span left after the grace period: a second, as nats-server.
        assert_eq!(schedule(4, Duration::ZERO), (Duration::from_millis(250), 1));
    }
}
