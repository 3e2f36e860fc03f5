//! `/metrics`: every figure for Prometheus, in its text format 0.0.4, encoded by the
//! `prometheus` crate's `TextEncoder` from metric families built out of the shards'
//! snapshots: the `shardcast_` prefix, base units (`_seconds`, `_bytes`), `_total` on
//! counters, a `shard` label on per-shard families, and latencies as Prometheus
//! histograms with fixed buckets computed from the shards' HDR histograms.

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Response, StatusCode};
use prometheus::proto::{
    Bucket, Counter as PCounter, Gauge, Histogram as PHistogram, LabelPair, Metric, MetricFamily,
    MetricType,
};
use prometheus::{Encoder, TextEncoder};
use shards::metrics::{Counter, Hist, ShardSnapshot, SnapshotRequest};
use shards::server::{Controller, ServerSummary};

use crate::monitor::format::{self, Body};
use crate::monitor::routes::{snapshots, Failure};

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS_S: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the write-size buckets, in bytes.
const WRITE_BYTES_BUCKETS: [f64; 10] = [
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

/// A histogram family: which HDR histogram, its name and scale, its buckets.
struct HistFamily {
    name: &'static str,
    help: &'static str,
    which: Hist,
    /// The base units one HDR value stands for (1e-6: µs → seconds).
    scale: f64,
    bounds: &'static [f64],
}

const HIST_FAMILIES: [HistFamily; 4] = [
    HistFamily {
        name: "latency_seconds",
        help: "Publish parsed on its shard to delivery accepted by the kernel, per delivery.",
        which: Hist::EndToEnd,
        scale: 1e-6,
        bounds: &LATENCY_BUCKETS_S,
    },
    HistFamily {
        name: "queue_wait_seconds",
        help: "Delivery appended to the outbound buffer to accepted by the kernel.",
        which: Hist::QueueWait,
        scale: 1e-6,
        bounds: &LATENCY_BUCKETS_S,
    },
    HistFamily {
        name: "ring_transit_seconds",
        help: "Batch sent by one shard to taken by another.",
        which: Hist::RingTransit,
        scale: 1e-6,
        bounds: &LATENCY_BUCKETS_S,
    },
    HistFamily {
        name: "write_size_bytes",
        help: "Bytes carried by one vectored write to a client.",
        which: Hist::WriteBytes,
        scale: 1.0,
        bounds: &WRITE_BYTES_BUCKETS,
    },
];

pub async fn metrics(controller: &Controller) -> Result<Response<Body>, Failure> {
    let shards = snapshots(controller, SnapshotRequest::default()).await?;
    let encoder = TextEncoder::new();
    let mut text = Vec::new();
    encoder
        .encode(&families(&controller.summary(), &shards), &mut text)
        .map_err(|e| Failure::Unavailable(format!("cannot encode the metrics: {e}")))?;
    let kind = encoder.format_type().to_string();
    Ok(format::respond(StatusCode::OK, &kind, Bytes::from(text)))
}

pub(crate) fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.into());
    l.set_value(value.into());
    l
}

pub(crate) fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    metrics: Vec<Metric>,
) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(format!("shardcast_{name}"));
    f.set_help(help.into());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

pub(crate) fn counter(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut c = PCounter::default();
    c.set_value(value);
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_counter(c);
    m
}

pub(crate) fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_gauge(g);
    m
}

fn shard_label(s: &ShardSnapshot) -> Vec<LabelPair> {
    vec![label("shard", &s.shard.to_string())]
}

/// Every family, from the server summary and the shards' snapshots.
pub fn families(summary: &ServerSummary, shards: &[ShardSnapshot]) -> Vec<MetricFamily> {
    let mut out = vec![
        family(
            "info",
            "The server: its id, name and version (the value is always 1).",
            MetricType::GAUGE,
            vec![gauge(
                vec![
                    label("server_id", &summary.server_id),
                    label("server_name", &summary.server_name),
                    label("version", env!("CARGO_PKG_VERSION")),
                    label("nats_version", shards::protocol::info::NATS_COMPAT_VERSION),
                ],
                1.0,
            )],
        ),
        family(
            "start_time_seconds",
            "When the server started, in seconds since the Unix epoch.",
            MetricType::GAUGE,
            vec![gauge(
                Vec::new(),
                summary
                    .started
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64(),
            )],
        ),
    ];
    for &c in Counter::ALL {
        // Prometheus wants base units: microseconds are exported as seconds.
        let (base, scale) = match c {
            Counter::ThrottledUs => ("throttled_seconds", 1e-6),
            Counter::StalledUs => ("stalled_seconds", 1e-6),
            _ => (c.name(), 1.0),
        };
        let metrics = shards
            .iter()
            .map(|s| counter(shard_label(s), s.counters.get(c) as f64 * scale))
            .collect();
        let name = format!("{base}_total");
        out.push(family(&name, c.help(), MetricType::COUNTER, metrics));
    }
    let closed = shards
        .iter()
        .flat_map(|s| {
            let shard = s.shard.to_string();
            s.counters.closed().map(move |(reason, n)| {
                counter(
                    vec![label("shard", &shard), label("reason", reason)],
                    n as f64,
                )
            })
        })
        .collect();
    out.push(family(
        "connections_closed_total",
        "Connections closed, by reason.",
        MetricType::COUNTER,
        closed,
    ));
    let per_shard = |name: &str, help: &str, kind, value: &dyn Fn(&ShardSnapshot) -> f64| {
        let metrics = shards
            .iter()
            .map(|s| match kind {
                MetricType::COUNTER => counter(shard_label(s), value(s)),
                _ => gauge(shard_label(s), value(s)),
            })
            .collect();
        family(name, help, kind, metrics)
    };
    out.push(per_shard(
        "connections",
        "Connections open now.",
        MetricType::GAUGE,
        &|s| s.connections as f64,
    ));
    out.push(per_shard(
        "subscriptions",
        "Subscriptions now.",
        MetricType::GAUGE,
        &|s| s.sublist.subscriptions as f64,
    ));
    out.push(per_shard(
        "cpu_busy_ratio",
        "Share of the last second the shard's thread was on a CPU (0 to 1).",
        MetricType::GAUGE,
        &|s| s.cpu_busy,
    ));
    out.push(per_shard(
        "cpu_busy_seconds_total",
        "Time the shard's executor was busy.",
        MetricType::COUNTER,
        &|s| s.cpu_busy_total.as_secs_f64(),
    ));
    out.push(per_shard(
        "load",
        "The shard's load figure L (0 to 1): CPU, memory and network pressure, weighted and smoothed.",
        MetricType::GAUGE,
        &|s| s.flow.load,
    ));
    let inputs = shards
        .iter()
        .flat_map(|s| {
            let shard = s.shard.to_string();
            [
                ("cpu", s.flow.cpu),
                ("memory", s.flow.memory),
                ("network", s.flow.network),
            ]
            .map(|(input, v)| gauge(vec![label("shard", &shard), label("input", input)], v))
        })
        .collect();
    out.push(family(
        "load_input",
        "The inputs of the shard's last load sample (0 to 1), by input.",
        MetricType::GAUGE,
        inputs,
    ));
    out.push(per_shard(
        "rate_scale",
        "The factor publishers' rate limits refill at now, f(L).",
        MetricType::GAUGE,
        &|s| s.flow.rate_scale,
    ));
    out.push(per_shard(
        "memory_held_bytes",
        "Bytes the shard holds queued for clients and in flight to other shards.",
        MetricType::GAUGE,
        &|s| s.flow.memory_held_bytes as f64,
    ));
    out.push(per_shard(
        "memory_budget_bytes",
        "The shard's share of memory.budget.",
        MetricType::GAUGE,
        &|s| s.flow.memory_share_bytes as f64,
    ));
    out.push(per_shard(
        "pushback",
        "1 while the shard is over its memory budget's high mark and not reading publishers.",
        MetricType::GAUGE,
        &|s| f64::from(u8::from(s.flow.pushback)),
    ));
    out.push(per_shard(
        "pushback_episodes_total",
        "Times the shard went over its memory budget's high mark.",
        MetricType::COUNTER,
        &|s| s.flow.pushback_episodes as f64,
    ));
    out.push(per_shard(
        "pushback_seconds_total",
        "Time the shard spent over its memory budget (publishers not read).",
        MetricType::COUNTER,
        &|s| s.flow.pushback_time.as_secs_f64(),
    ));
    out.push(per_shard(
        "connections_above_high_watermark",
        "Connections with more pending output than their high watermark.",
        MetricType::GAUGE,
        &|s| s.flow.conns_above_high as f64,
    ));
    for f in &HIST_FAMILIES {
        let metrics = shards
            .iter()
            .filter_map(|s| {
                let (life, _) = s.hist(f.which)?;
                let mut m = Metric::default();
                m.set_label(shard_label(s));
                m.set_histogram(histogram(life, f.scale, f.bounds));
                Some(m)
            })
            .collect();
        out.push(family(f.name, f.help, MetricType::HISTOGRAM, metrics));
    }
    out.extend(crate::monitor::logs::families(shards));
    out.extend(crate::monitor::leafz::families(shards));
    out
}

/// A Prometheus histogram from an HDR histogram whose values are `1 / scale` base units:
/// the cumulative count at each upper bound, the count, and the sum (from the mean).
fn histogram(h: &Histogram<u64>, scale: f64, bounds: &[f64]) -> PHistogram {
    let count = h.len();
    let buckets = bounds
        .iter()
        .map(|&le| {
            let top = (le / scale).floor() as u64;
            let mut b = Bucket::default();
            b.set_upper_bound(le);
            b.set_cumulative_count(if count == 0 || top == 0 {
                0
            } else {
                h.count_between(0, top)
            });
            b
        })
        .collect();
    let mut p = PHistogram::default();
    p.set_sample_count(count);
    p.set_sample_sum(if count == 0 {
        0.0
    } else {
        h.mean() * count as f64 * scale
    });
    p.set_bucket(buckets);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_in_base_units() {
        let mut h = shards::metrics::new_latency_histogram();
        h.saturating_record_n(80, 3); // 80 µs
        h.saturating_record_n(2_000, 1); // 2 ms
        let p = histogram(&h, 1e-6, &[0.000_05, 0.000_1, 0.001, 0.01]);
        let counts: Vec<u64> = p
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        assert_eq!(counts, [0, 3, 3, 4]);
        assert_eq!(p.get_sample_count(), 4);
        assert!(
            (p.get_sample_sum() - 0.00224).abs() < 0.0001,
            "{}",
            p.get_sample_sum()
        );
    }
}
