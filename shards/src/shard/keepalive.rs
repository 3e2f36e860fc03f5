//! Server PINGs: every `ping_interval` each idle connection gets a PING; one with too
//! many unanswered PINGs is closed with `-ERR 'Stale Connection'`. Inbound traffic
//! counts as a sign of life (nats-server's "traffic is a ping proxy").

use std::rc::Rc;

use crate::conn::{CloseReason, Conn};
use crate::metrics::Counter;
use crate::shard::ShardCtx;
use crate::wire::Reply;

/// What one keepalive tick does to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// It sent something since the last tick.
    Alive,
    SendPing,
    CloseStale,
}

/// Decides a tick from the connection's state; pure, so it is tested without clocks.
pub fn tick(active_since_last: bool, pings_out: u32, pings_out_max: u32) -> Tick {
    if active_since_last {
        Tick::Alive
    } else if pings_out + 1 > pings_out_max {
        Tick::CloseStale
    } else {
        Tick::SendPing
    }
}

/// Runs the shard's keepalive timer until the shard stops.
pub async fn run(ctx: Rc<ShardCtx>) {
    loop {
        let interval = ctx.limits().ping_interval;
        glommio::timer::sleep(interval).await;
        if ctx.stopping.get() {
            return;
        }
        let conns: Vec<Rc<Conn>> = ctx.conns.borrow().values().cloned().collect();
        for conn in conns {
            match tick(
                conn.active.replace(false),
                conn.pings_out.get(),
                ctx.limits().pings_out_max,
            ) {
                Tick::Alive => {}
                Tick::SendPing => {
                    conn.pings_out.set(conn.pings_out.get() + 1);
                    conn.ping_sent(std::time::Instant::now());
                    conn.reply(Reply::Ping);
                }
                Tick::CloseStale => {
                    ctx.metrics.add(Counter::StaleConnections, 1);
                    tracing::debug!(shard = ctx.id, cid = conn.cid, "stale connection");
                    conn.close_with(CloseReason::StaleConnection);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_nats_rules() {
        assert_eq!(tick(true, 5, 2), Tick::Alive);
        assert_eq!(tick(false, 0, 2), Tick::SendPing);
        assert_eq!(tick(false, 1, 2), Tick::SendPing);
        assert_eq!(tick(false, 2, 2), Tick::CloseStale);
        assert_eq!(tick(false, 0, 1), Tick::SendPing);
        assert_eq!(tick(false, 1, 1), Tick::CloseStale);
    }
}
