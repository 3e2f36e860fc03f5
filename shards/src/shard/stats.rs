//! A shard's view of itself: every `load.sample_interval` it works out its load figure
//! (and from it the rate limits' refill factor), every `MONITOR_INTERVAL` it ends a
//! metrics interval (the shard thread's CPU busy fraction, the histograms' last interval), every
//! `monitoring.stats_log_interval` it logs a one-line summary, and on request it builds a
//! [`ShardSnapshot`] (totals, flow control, histograms, busiest subjects, and, when
//! asked, one row per connection and per subscription) for the monitoring thread.

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use crate::close::CloseReason;
use crate::flow::Pressure;
use crate::limits::MONITOR_INTERVAL;
use crate::metrics::{
    busy_fraction, thread_cpu_time, ConnRow, Counter, FlowSnapshot, Hist, ShardSnapshot,
    SnapshotRequest,
};
use crate::shard::ShardCtx;

/// Samples the shard's load every `load.sample_interval` until the shard stops: CPU busy
/// fraction since the last sample, memory pressure, network pressure. Publishes L, sets
/// the rate limits' refill factor from it, and, when the shard has been over its memory
/// budget for `slow_consumer.stall_max`, closes the connection holding the most.
pub async fn sample_load(ctx: Rc<ShardCtx>) {
    let mut last_busy = thread_cpu_time();
    let mut last = Instant::now();
    loop {
        let interval = ctx.load.borrow().interval();
        glommio::timer::sleep(interval).await;
        if ctx.stopping.get() {
            return;
        }
        let busy = thread_cpu_time();
        let now = Instant::now();
        let cpu = busy_fraction(
            busy.saturating_sub(last_busy),
            now.saturating_duration_since(last),
        );
        (last_busy, last) = (busy, now);
        ctx.memory.check_pause();
        ctx.memory.check_resume();
        let pressure = Pressure {
            cpu: cpu.clamp(0.0, 1.0),
            memory: ctx.memory.pressure(),
            network: ctx.network_pressure(),
        };
        let l = ctx.load.borrow_mut().sample(pressure);
        ctx.global.load.set(ctx.id, l);
        let scale = {
            let limits = ctx.limits();
            limits.flow.scale.factor(l.max(ctx.global.load.process()))
        };
        ctx.router.borrow_mut().set_rate_scale(scale);
        ctx.relieve_memory(now);
    }
}

impl ShardCtx {
    /// The share of connections above their high watermark.
    fn network_pressure(&self) -> f64 {
        let conns = self.conns.borrow();
        if conns.is_empty() {
            return 0.0;
        }
        let above = conns.values().filter(|c| c.outbox.is_above_high()).count();
        above as f64 / conns.len() as f64
    }

    /// The memory budget's last resort: publishers have been paused for it for
    /// `slow_consumer.stall_max` and it is still over its low mark, so the subscribers
    /// holding the bytes are not draining. The one holding the most (above its high
    /// watermark) is closed as a slow consumer; if none is, the bytes are in flight
    /// between shards and drain by themselves.
    fn relieve_memory(&self, now: Instant) {
        let Some(since) = self.memory.paused_since() else {
            return;
        };
        let patience = self.limits().flow.stall_max.max(Duration::from_millis(100));
        if now.saturating_duration_since(since) < patience {
            return;
        }
        let victim = self
            .conns
            .borrow()
            .values()
            .filter(|c| !c.is_closing() && c.outbox.is_above_high())
            .max_by_key(|c| c.outbox.pending_bytes())
            .cloned();
        if let Some(conn) = victim {
            tracing::warn!(
                shard = self.id,
                cid = conn.cid,
                pending_bytes = conn.outbox.pending_bytes(),
                memory_held_bytes = self.memory.held(),
                memory_share_bytes = self.memory.share_bytes(),
                "over the memory budget too long: closing the connection holding the most"
            );
            conn.outbox.close(CloseReason::SlowConsumerMemory);
        }
    }

    /// Flow control now, for monitoring.
    fn flow_snapshot(&self) -> FlowSnapshot {
        let (load, last) = self.load_now();
        let (episodes, time) = self.memory.pushback();
        let conns = self.conns.borrow();
        FlowSnapshot {
            load,
            cpu: last.cpu,
            memory: last.memory,
            network: last.network,
            rate_scale: self.router.borrow().rate_scale(),
            memory_held_bytes: self.memory.held() as u64,
            memory_share_bytes: self.memory.share_bytes() as u64,
            pushback: self.memory.is_paused(),
            pushback_episodes: episodes,
            pushback_time: time,
            conns_above_high: conns.values().filter(|c| c.outbox.is_above_high()).count() as u64,
            conns_dropping: conns.values().filter(|c| c.outbox.is_dropping()).count() as u64,
        }
    }
}

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
        let now = Instant::now();
        ctx.metrics.end_interval(now, thread_cpu_time());
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
                load = format!("{:.2}", ctx.load_now().0),
                dropped = values.get(Counter::DroppedDropNew)
                    + values.get(Counter::DroppedSlowConsumer)
                    + values.get(Counter::DroppedClosed),
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
            flow: self.flow_snapshot(),
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
            logs: self.logs.as_ref().map(|l| l.snapshot()),
            leaf: self.leaf.borrow().as_ref().map(|l| l.snapshot()),
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
                let (throttles, throttled) = c.throttled();
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
                    tally: c.outbox.tally(),
                    dropping: c.outbox.is_dropping(),
                    throttles,
                    throttled,
                    subscriptions: router.sub_count(c.cid) as u64,
                    subjects: if with_subjects {
                        router.subjects_of(c.cid)
                    } else {
                        Vec::new()
                    },
                    name: client.name,
                    lang: client.lang,
                    version: client.version,
                    user: c.user(),
                    tls: c.tls.borrow().clone(),
                }
            })
            .collect()
    }
}
