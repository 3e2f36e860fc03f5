//! The plain TCP log port (`logs.tcp_port`, `--log-tcp`): one log per line (JSON or
//! `LEVEL [category] message`), parsed, routed by the rules in force and published by
//! the shard that accepted the connection, in the order the lines came. The server says
//! nothing on this port: a malformed line (bad JSON, not UTF-8, longer than
//! `logs.max_record_bytes`) is counted, logged at debug and skipped.

use std::rc::Rc;
use std::time::SystemTime;

use crate::conn::{Conn, ConnFlags};
use crate::front::{publish_composed, Input, Session};
use crate::history::rfc3339_millis;
use crate::logs::{parse_line, route_record, LogShard, ParseError};
use crate::metrics::{Counter, ShardMetrics};
use crate::route::Router;
use crate::wire::Wire;

/// One connection of the log port.
pub struct LogSession {
    shard: Rc<LogShard>,
    /// Dropping the rest of a line longer than the limit.
    skipping: bool,
    matched: Vec<bool>,
}

impl LogSession {
    pub fn new(shard: Rc<LogShard>) -> Self {
        LogSession {
            shard,
            skipping: false,
            matched: Vec::new(),
        }
    }

    fn malformed(&self, conn: &Conn, e: &ParseError) {
        self.shard.count(|c| c.malformed += 1);
        tracing::debug!(cid = conn.cid, error = %e, "malformed log line");
    }

    fn line(&mut self, router: &mut Router, metrics: &ShardMetrics, conn: &Rc<Conn>, line: &[u8]) {
        let max = self.shard.cfg.record_bytes_max;
        let now = rfc3339_millis(SystemTime::now());
        let record = match parse_line(line, &now, max) {
            Ok(r) => r,
            Err(ParseError::Empty) => return,
            Err(e) => return self.malformed(conn, &e),
        };
        self.shard.count(|c| c.received += 1);
        metrics.add(Counter::MsgsIn, 1);
        metrics.add(Counter::BytesIn, line.len() as u64);
        let rules = Rc::clone(&self.shard.rules.borrow());
        let routed = route_record(&rules, &record, &mut self.matched);
        for subject in &routed.subjects {
            publish_composed(
                router,
                conn,
                subject,
                None,
                Some(routed.headers.as_bytes()),
                &routed.body,
            );
        }
        let n = routed.subjects.len() as u64;
        self.shard.count(|c| c.routed += n);
    }
}

impl Session for LogSession {
    fn start(&self) -> (Wire, ConnFlags) {
        // Nothing is delivered to a log connection: it subscribes to nothing.
        let flags = ConnFlags {
            verbose: false,
            pedantic: false,
            echo: false,
            no_responders: false,
        };
        (Wire::Nats { headers: true }, flags)
    }

    fn greet(&mut self, _conn: &Rc<Conn>) {}

    fn input(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        data: &[u8],
    ) -> Input {
        let max = self.shard.cfg.record_bytes_max;
        let mut consumed = 0;
        while consumed < data.len() && !conn.is_closing() {
            let rest = &data[consumed..];
            let end = rest.iter().position(|&b| b == b'\n');
            if self.skipping {
                match end {
                    Some(i) => {
                        consumed += i + 1;
                        self.skipping = false;
                    }
                    None => consumed = data.len(),
                }
                continue;
            }
            match end {
                Some(i) => {
                    self.line(router, metrics, conn, &rest[..i]);
                    consumed += i + 1;
                }
                None if rest.len() > max => {
                    // Too long to be a log: skipped up to its end, whenever that comes.
                    self.malformed(
                        conn,
                        &ParseError::TooLarge {
                            len: rest.len(),
                            max,
                        },
                    );
                    self.skipping = true;
                    consumed = data.len();
                }
                None => break,
            }
        }
        Input {
            consumed,
            needed: 0,
            throttled: None,
        }
    }
}
