//! A shard's view for monitoring: every `MONITOR_INTERVAL` it ends a metrics interval
//! (the executor's busy fraction, the histograms' last interval), every
//! `monitoring.stats_log_interval` it logs a one-line summary, and on request it builds a
//! [`ShardSnapshot`] (totals, histograms, busiest subjects, and, when asked, one row per
//! connection and per subscription) for the monitoring thread.

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use crate::limits::MONITOR_INTERVAL;
use crate::metrics::{ConnRow, Counter, Hist, ShardSnapshot, SnapshotRequest};
use crate::shard::ShardCtx;

/// Ends an interval every `MONITOR_INTERVAL` until the shard stops; logs the summary
/// line when it is due.
pub async fn run(ctx: Rc<ShardCtx>) {
    let log_every = ctx.global.metrics.stats_log_interval;
    let mut last_log = Instant::now();
    let mut logged = ctx.metrics.counters.values();
    loop {
        glommio::timer::sleep(MONITOR_INTERVAL).await;
        if ctx.stopping.get() {
            return;
        }
        let busy = glommio::executor().executor_stats().total_runtime();
        let now = Instant::now();
        ctx.metrics.end_interval(now, busy);
        if !log_every.is_zero() && now.saturating_duration_since(last_log) >= log_every {
            let secs = now
                .saturating_duration_since(last_log)
                .as_secs_f64()
                .max(1e-9);
            let values = ctx.metrics.counters.values();
            let rate = |c: Counter| (values.get(c) - logged.get(c)) as f64 / secs;
            let (_, last) = ctx.metrics.latency.copy(Hist::EndToEnd);
            tracing::info!(
                shard = ctx.id,
                connections = ctx.conns.borrow().len(),
                subscriptions = ctx.router.borrow().local_subscriptions(),
                in_msgs_per_s = rate(Counter::MsgsIn).round() as u64,
                out_msgs_per_s = rate(Counter::MsgsOut).round() as u64,
                cpu_busy = format!("{:.2}", ctx.metrics.cpu_busy()),
                latency_us_p50 = last.value_at_quantile(0.5),
                latency_us_p99 = last.value_at_quantile(0.99),
                slow_consumers = values.get(Counter::SlowConsumers),
                "shard stats"
            );
            last_log = now;
            logged = values;
        }
    }
}

impl ShardCtx {
    /// The shard now, with what `request` asks for.
    pub fn snapshot(&self, request: SnapshotRequest) -> ShardSnapshot {
        let router = self.router.borrow();
        let conns = if request.conns {
            self.conn_rows(request.subs)
        } else {
            Vec::new()
        };
        ShardSnapshot {
            shard: self.id,
            counters: self.metrics.counters.values(),
            connections: self.conns.borrow().len() as u64,
            sublist: router.sublist_stats(),
            cpu_busy: self.metrics.cpu_busy(),
            cpu_busy_total: self.metrics.cpu_busy_total(),
            hists: Hist::ALL
                .iter()
                .map(|&h| {
                    let (life, last) = self.metrics.latency.copy(h);
                    (h, life, last)
                })
                .collect(),
            subjects: router.top_subjects(),
            conns,
            subs: if request.subs {
                router.sub_rows()
            } else {
                Vec::new()
            },
        }
    }

    fn conn_rows(&self, with_subjects: bool) -> Vec<ConnRow> {
        let router = self.router.borrow();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let ago = |at: Instant| wall - now.saturating_duration_since(at);
        self.conns
            .borrow()
            .values()
            .map(|c| {
                let (in_msgs, in_bytes) = c.in_totals();
                let (out_msgs, out_bytes) = c.outbox.out_totals();
                let client = c.client_info();
                ConnRow {
                    cid: c.cid,
                    shard: self.id,
                    peer: c.peer,
                    start: c.started,
                    last_activity: ago(c.last_activity()),
                    rtt: c.rtt(),
                    pending_bytes: c.outbox.pending_bytes() as u64,
                    in_msgs,
                    in_bytes,
                    out_msgs,
                    out_bytes,
                    subscriptions: router.sub_count(c.cid) as u64,
                    subjects: if with_subjects {
                        router.subjects_of(c.cid)
                    } else {
                        Vec::new()
                    },
                    name: client.name,
                    lang: client.lang,
                    version: client.version,
                }
            })
            .collect()
    }
}
