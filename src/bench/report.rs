//! Owns the results of a run: the summary figures computed from every connection's stats, and
//! their output as a human summary, one JSON object, a CSV row and an HDR percentile file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::args::Scenario;
use super::monitor::ServerDrops;
use super::roles::{ClientStats, Kind};

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub scenario: Scenario,
    pub url: String,
    pub pubs: usize,
    pub subs: usize,
    pub stalled: usize,
    pub subjects: usize,
    pub size: usize,
    pub threads: usize,
    pub msgs_published: u64,
    pub pub_msgs_per_s: f64,
    pub pub_mb_per_s: f64,
    pub pub_clients: Spread,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub sub_msgs_per_s: f64,
    pub sub_mb_per_s: f64,
    pub sub_clients: Spread,
    pub latency: Option<Latency>,
    /// Receivers whose connection the server ended during the run, and the first reason.
    pub disconnected: usize,
    pub disconnect_reason: Option<String>,
    pub server: Option<ServerFigures>,
    /// What the server dropped during the run (`--monitor`).
    pub server_drops: Option<ServerDrops>,
    pub elapsed_s: f64,
    pub gen_cpu_s: f64,
}

/// Min/avg/max of a per-client rate (msgs/s).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

/// The server's usage over the measured interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerFigures {
    pub pid: u32,
    pub cpu_s: f64,
    /// Server CPU microseconds per delivered message (per published one when nothing is delivered).
    pub cpu_us_per_msg: Option<f64>,
    pub rss_bytes: u64,
    /// The largest RSS sampled (every 10 ms) while measuring.
    pub rss_peak_bytes: u64,
    /// `conns` only: growth of the server's RSS per idle connection.
    pub rss_per_conn_bytes: Option<f64>,
}

/// Rate of `msgs` over the span from the earliest first to the latest last time (ns).
fn rate(msgs: u64, first_ns: u64, last_ns: u64) -> f64 {
    let span = last_ns.saturating_sub(first_ns);
    if span == 0 {
        0.0
    } else {
        msgs as f64 * 1e9 / span as f64
    }
}

/// Aggregate msgs/s, MB/s and the per-client spread of connections of `kind`.
pub fn aggregate(stats: &[ClientStats], kind: Kind) -> (u64, f64, f64, Spread) {
    let mine: Vec<&ClientStats> = stats.iter().filter(|s| s.kind == kind).collect();
    let msgs: u64 = mine.iter().map(|s| s.msgs).sum();
    let bytes: u64 = mine.iter().map(|s| s.bytes).sum();
    let active = mine.iter().filter(|s| s.msgs > 0);
    let first = active.clone().map(|s| s.first_ns).min().unwrap_or(0);
    let last = active.map(|s| s.last_ns).max().unwrap_or(0);
    let total = rate(msgs, first, last);
    let mb = rate(bytes, first, last) / 1e6;
    let rates: Vec<f64> = mine
        .iter()
        .map(|s| rate(s.msgs, s.first_ns, s.last_ns))
        .collect();
    let spread = if rates.is_empty() {
        Spread::default()
    } else {
        Spread {
            min: rates.iter().copied().fold(f64::INFINITY, f64::min),
            avg: rates.iter().sum::<f64>() / rates.len() as f64,
            max: rates.iter().copied().fold(0.0, f64::max),
        }
    };
    (msgs, total, mb, spread)
}

/// Percentiles of a histogram recorded in nanoseconds.
pub fn latency(h: &Histogram<u64>) -> Option<Latency> {
    if h.is_empty() {
        return None;
    }
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
    Some(Latency {
        samples: h.len(),
        p50_us: us(0.5),
        p90_us: us(0.9),
        p99_us: us(0.99),
        p999_us: us(0.999),
        max_us: h.max() as f64 / 1e3,
        mean_us: h.mean() / 1e3,
    })
}

/// 1234567.8 → "1,234,568".
fn grouped(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    /// The human summary.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let scenario = format!("{:?}", self.scenario).to_lowercase();
        let stalled = if self.stalled > 0 {
            format!(" (+{} stalled)", self.stalled)
        } else {
            String::new()
        };
        let who = match self.scenario {
            Scenario::Pub => format!("{} publisher(s), {} subject(s)", self.pubs, self.subjects),
            Scenario::Sub => format!(
                "{} subscriber(s){stalled}, {} subject(s)",
                self.subs, self.subjects
            ),
            Scenario::Reqrep => format!("{} requester(s), {} responder(s)", self.pubs, self.subs),
            Scenario::Conns => format!("{} idle connections", self.subs),
            Scenario::Irc => format!("1 pub → {} IRC members in one channel", self.subs),
            Scenario::Logs => "logs (see LogReport)".into(),
            Scenario::Pubsub | Scenario::Queue | Scenario::Latency => format!(
                "{} pub → {} sub{stalled}, {} subject(s)",
                self.pubs, self.subs, self.subjects
            ),
        };
        let _ = writeln!(
            s,
            "shardcast bench {scenario} against {}: {who}, {} B payloads, {} generator thread(s)",
            self.url, self.size, self.threads
        );
        if self.scenario == Scenario::Reqrep {
            let _ = writeln!(
                s,
                "  round trips  {:>12} /s  ({} requests; per requester min/avg/max {}/{}/{} /s)",
                grouped(self.sub_msgs_per_s),
                grouped(self.received as f64),
                grouped(self.sub_clients.min),
                grouped(self.sub_clients.avg),
                grouped(self.sub_clients.max)
            );
        }
        if self.msgs_published > 0 && self.scenario != Scenario::Reqrep {
            s.push_str(&rate_line(
                "publishers",
                self.pub_msgs_per_s,
                self.pub_mb_per_s,
                self.msgs_published,
                &self.pub_clients,
            ));
        }
        if (self.expected > 0 || self.received > 0) && self.scenario != Scenario::Reqrep {
            s.push_str(&rate_line(
                "subscribers",
                self.sub_msgs_per_s,
                self.sub_mb_per_s,
                self.received,
                &self.sub_clients,
            ));
        }
        let _ = writeln!(
            s,
            "  lost         {} (expected {}, received {})",
            grouped(self.lost as f64),
            grouped(self.expected as f64),
            grouped(self.received as f64)
        );
        if let Some(d) = &self.server_drops {
            let _ = match d.dropped() {
                Some(_) => writeln!(
                    s,
                    "  server drops drop_new {}, slow_consumer {}, closed {}; {} slow consumer(s) closed",
                    grouped(d.drop_new.unwrap_or(0) as f64),
                    grouped(d.slow_consumer.unwrap_or(0) as f64),
                    grouped(d.closed.unwrap_or(0) as f64),
                    d.slow_consumers
                ),
                None => writeln!(
                    s,
                    "  server drops {} slow consumer(s) closed (drops by reason not reported)",
                    d.slow_consumers
                ),
            };
        }
        if self.disconnected > 0 {
            let _ = writeln!(
                s,
                "  disconnected {} subscriber(s) lost their connection: {}",
                self.disconnected,
                self.disconnect_reason.as_deref().unwrap_or("unknown")
            );
        }
        match &self.latency {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "  latency µs   p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  ({} samples)",
                    l.p50_us,
                    l.p90_us,
                    l.p99_us,
                    l.p999_us,
                    l.max_us,
                    grouped(l.samples as f64)
                );
            }
            None if self.scenario == Scenario::Conns => {}
            None => {
                let _ = writeln!(
                    s,
                    "  latency      not measured (needs --size 8 or more and deliveries)"
                );
            }
        }
        if let Some(sv) = &self.server {
            let per = sv
                .cpu_us_per_msg
                .map_or("-".to_string(), |v| format!("{v:.3}"));
            let _ = write!(
                s,
                "  server       pid {}: {:.2} CPU s, {per} CPU µs per message, RSS {:.1} MB (peak {:.1} MB)",
                sv.pid,
                sv.cpu_s,
                sv.rss_bytes as f64 / 1e6,
                sv.rss_peak_bytes as f64 / 1e6
            );
            if let Some(per_conn) = sv.rss_per_conn_bytes {
                let _ = write!(s, ", {} B per connection", grouped(per_conn));
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "  generator    {:.2} CPU s in {:.2} s",
            self.gen_cpu_s, self.elapsed_s
        );
        s
    }

    /// Appends one CSV row to `path`, writing the header first when the file is new or empty.
    pub fn append_csv(&self, path: &Path) -> std::io::Result<()> {
        const HEADER: &str = "label,scenario,pubs,subs,stalled,subjects,size,msgs_published,pub_msgs_per_s,expected,received,lost,sub_msgs_per_s,sub_mb_per_s,sub_client_min_msgs_per_s,sub_client_avg_msgs_per_s,sub_client_max_msgs_per_s,lat_p50_us,lat_p90_us,lat_p99_us,lat_p999_us,lat_max_us,server_cpu_s,server_cpu_us_per_msg,server_rss_bytes,rss_per_conn_bytes,elapsed_s,gen_cpu_s,server_rss_peak_bytes,server_slow_consumers,server_dropped_drop_new,server_dropped_slow_consumer,server_dropped_closed";
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut row = String::new();
        if file.metadata()?.len() == 0 {
            row.push_str(HEADER);
            row.push('\n');
        }
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
        let count = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        let l = self.latency;
        let sv = self.server;
        let fields = [
            csv_text(&self.label),
            format!("{:?}", self.scenario).to_lowercase(),
            self.pubs.to_string(),
            self.subs.to_string(),
            self.stalled.to_string(),
            self.subjects.to_string(),
            self.size.to_string(),
            self.msgs_published.to_string(),
            format!("{:.1}", self.pub_msgs_per_s),
            self.expected.to_string(),
            self.received.to_string(),
            self.lost.to_string(),
            format!("{:.1}", self.sub_msgs_per_s),
            format!("{:.3}", self.sub_mb_per_s),
            format!("{:.1}", self.sub_clients.min),
            format!("{:.1}", self.sub_clients.avg),
            format!("{:.1}", self.sub_clients.max),
            opt(l.map(|l| l.p50_us)),
            opt(l.map(|l| l.p90_us)),
            opt(l.map(|l| l.p99_us)),
            opt(l.map(|l| l.p999_us)),
            opt(l.map(|l| l.max_us)),
            opt(sv.map(|s| s.cpu_s)),
            opt(sv.and_then(|s| s.cpu_us_per_msg)),
            sv.map_or(String::new(), |s| s.rss_bytes.to_string()),
            opt(sv.and_then(|s| s.rss_per_conn_bytes)),
            format!("{:.3}", self.elapsed_s),
            format!("{:.3}", self.gen_cpu_s),
            sv.map_or(String::new(), |s| s.rss_peak_bytes.to_string()),
            count(self.server_drops.map(|d| d.slow_consumers)),
            count(self.server_drops.and_then(|d| d.drop_new)),
            count(self.server_drops.and_then(|d| d.slow_consumer)),
            count(self.server_drops.and_then(|d| d.closed)),
        ];
        row.push_str(&fields.join(","));
        row.push('\n');
        file.write_all(row.as_bytes())
    }
}

/// One summary line of rates: aggregate, then the per-client spread.
fn rate_line(who: &str, msgs_per_s: f64, mb_per_s: f64, msgs: u64, clients: &Spread) -> String {
    format!(
        "  {who:<12} {:>12} msgs/s {mb_per_s:>9.1} MB/s   ({} msgs; per client min/avg/max {}/{}/{} msgs/s)\n",
        grouped(msgs_per_s),
        grouped(msgs as f64),
        grouped(clients.min),
        grouped(clients.avg),
        grouped(clients.max)
    )
}

/// A CSV field: quoted when it holds a comma, quote or newline.
fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the percentile distribution in the HdrHistogram text format, values in µs.
pub fn write_hist(h: &Histogram<u64>, path: &Path) -> std::io::Result<()> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            1.0 / (1.0 - q)
        } else {
            f64::INFINITY
        };
        let _ = writeln!(
            out,
            "{:>12.3} {:>14.12} {:>10} {:>14.2}",
            v.value_iterated_to() as f64 / 1e3,
            q,
            v.count_since_last_iteration(),
            inv
        );
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1e3,
        h.stdev() / 1e3
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / 1e3,
        h.len()
    );
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_rates_over_the_whole_span() {
        let s = |kind, msgs, first_ns, last_ns| ClientStats {
            kind,
            msgs,
            bytes: msgs * 10,
            first_ns,
            last_ns,
            lost_connection: None,
        };
        let stats = [
            s(Kind::Subscriber, 1000, 0, 1_000_000_000),
            s(Kind::Subscriber, 500, 500_000_000, 1_000_000_000),
            s(Kind::Publisher, 7, 0, 1),
        ];
        let (msgs, total, mb, spread) = aggregate(&stats, Kind::Subscriber);
        assert_eq!(msgs, 1500);
        assert!((total - 1500.0).abs() < 1e-6);
        assert!((mb - 0.015).abs() < 1e-9);
        assert!((spread.min - 1000.0).abs() < 1e-6);
        assert!((spread.max - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(1234567.8), "1,234,568");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(0.0), "0");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_text("nats-server"), "nats-server");
        assert_eq!(csv_text("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
