//! What the server says it dropped, from its HTTP monitoring (`--monitor URL`): `/varz`
//! before and after the run. shardcast reports its drops by reason (`flow.dropped_msgs`)
//! and its slow consumers; nats-server only its slow consumers. The difference between
//! the two readings goes into the report, next to what the subscribers missed.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;

/// How long one monitoring request may take.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest `/varz` response read.
const VARZ_BYTES_MAX: u64 = 1 << 20;

/// The server's drop counters at one moment (or their growth over the run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerDrops {
    pub slow_consumers: u64,
    /// By reason; `None` for a server that does not report them (nats-server).
    pub drop_new: Option<u64>,
    pub slow_consumer: Option<u64>,
    pub closed: Option<u64>,
}

impl ServerDrops {
    /// `self - before`, counter by counter.
    pub fn since(&self, before: &ServerDrops) -> ServerDrops {
        let d = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b.unwrap_or(0)));
        ServerDrops {
            slow_consumers: self.slow_consumers.saturating_sub(before.slow_consumers),
            drop_new: d(self.drop_new, before.drop_new),
            slow_consumer: d(self.slow_consumer, before.slow_consumer),
            closed: d(self.closed, before.closed),
        }
    }

    /// Messages dropped in all, when the server reports them.
    pub fn dropped(&self) -> Option<u64> {
        Some(self.drop_new? + self.slow_consumer? + self.closed?)
    }
}

/// Reads `/varz` from the monitoring address `url` (`http://host:port` or `host:port`).
pub fn fetch(url: &str) -> Result<ServerDrops, String> {
    let hostport = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .trim_end_matches('/');
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("--monitor {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("--monitor {url}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, MONITOR_TIMEOUT)
        .map_err(|e| format!("--monitor {url}: cannot connect: {e}"))?;
    let _ = s.set_read_timeout(Some(MONITOR_TIMEOUT));
    write!(
        s,
        "GET /varz HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("--monitor {url}: {e}"))?;
    let mut raw = Vec::new();
    s.take(VARZ_BYTES_MAX)
        .read_to_end(&mut raw)
        .map_err(|e| format!("--monitor {url}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| format!("--monitor {url}: not an HTTP response"))?;
    parse_varz(body).map_err(|e| format!("--monitor {url}/varz: {e}"))
}

fn parse_varz(body: &str) -> Result<ServerDrops, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let dropped = &v["flow"]["dropped_msgs"];
    Ok(ServerDrops {
        slow_consumers: v["slow_consumers"]
            .as_u64()
            .ok_or("no slow_consumers: is this a NATS monitoring port?")?,
        drop_new: dropped["drop_new"].as_u64(),
        slow_consumer: dropped["slow_consumer"].as_u64(),
        closed: dropped["closed"].as_u64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_servers_varz_are_read() {
        let nats = parse_varz(r#"{"slow_consumers":2,"in_msgs":5}"#).expect("nats");
        assert_eq!(nats.slow_consumers, 2);
        assert_eq!(nats.dropped(), None);
        let sc = parse_varz(
            r#"{"slow_consumers":1,"flow":{"dropped_msgs":{"drop_new":7,"slow_consumer":3,"closed":0}}}"#,
        )
        .expect("shardcast");
        let growth = sc.since(&ServerDrops {
            slow_consumers: 0,
            drop_new: Some(2),
            slow_consumer: Some(0),
            closed: Some(0),
        });
        assert_eq!(growth.dropped(), Some(8));
        assert!(parse_varz("{}").is_err());
    }
}
