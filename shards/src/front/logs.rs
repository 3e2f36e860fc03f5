//! The TCP log ports: the plain one (`logs.tcp_port`, `--log-tcp`), one log per line
//! (JSON or `LEVEL [category] message`), and syslog over TCP (`logs.syslog_tcp_port`,
//! `--syslog-tcp`), RFC 5424 or 3164 messages framed by octet counting or by line ends.
//! Each log is parsed, routed by the rules in force and published by the shard that
//! accepted the connection, in the order they came. The server says nothing on these
//! ports: a malformed log (bad JSON, not UTF-8, longer than `logs.max_record_bytes`, a
//! bad octet count) is counted, logged at debug and skipped.

use std::rc::Rc;
use std::time::SystemTime;

use crate::conn::{Conn, ConnFlags};
use crate::front::{Input, Session};
use crate::history::rfc3339_millis;
use crate::logs::syslog::{next_frame, parse_syslog, Frame};
use crate::logs::{parse_line, LogInput, LogShard, ParseError, Record};
use crate::metrics::{Counter, ShardMetrics};
use crate::route::Router;
use crate::wire::Wire;

/// What a log port takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON or text log per line.
    Lines,
    /// Syslog messages, octet counted or one per line.
    Syslog,
}

/// One connection of a log port.
pub struct LogSession {
    shard: Rc<LogShard>,
    format: LogFormat,
    /// Dropping the rest of a line longer than the limit.
    skipping: bool,
}

impl LogSession {
    pub fn new(shard: Rc<LogShard>, format: LogFormat) -> Self {
        LogSession {
            shard,
            format,
            skipping: false,
        }
    }

    fn log_input(&self) -> LogInput {
        match self.format {
            LogFormat::Lines => LogInput::Tcp,
            LogFormat::Syslog => LogInput::SyslogTcp,
        }
    }

    fn malformed(&self, conn: &Conn, e: &ParseError) {
        self.shard.count(self.log_input(), |c| c.malformed += 1);
        tracing::debug!(cid = conn.cid, error = %e, "malformed log line");
    }

    /// Routes one log; `now` is when its chunk of input was read.
    fn line(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        line: &[u8],
        now: &str,
    ) {
        let max = self.shard.cfg.record_bytes_max;
        let parsed = match self.format {
            LogFormat::Lines => parse_line(line, now, max),
            LogFormat::Syslog => parse_syslog(line, now, max),
        };
        let record = match parsed {
            Ok(r) => r,
            Err(ParseError::Empty) => return,
            Err(e) => return self.malformed(conn, &e),
        };
        metrics.add(Counter::MsgsIn, 1);
        metrics.add(Counter::BytesIn, line.len() as u64);
        publish_record(&self.shard, self.log_input(), router, conn, &record);
    }

    /// The next log in `rest`: its range, where the one after starts; or None if it is
    /// not all there yet, or Some(None) for a frame that cannot be read (skip the line).
    fn frame(&self, rest: &[u8]) -> Option<Option<(usize, usize, usize)>> {
        match self.format {
            LogFormat::Lines => rest
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| Some((0, i, i + 1))),
            LogFormat::Syslog => match next_frame(rest) {
                Frame::Message { start, end, next } => Some(Some((start, end, next))),
                Frame::NeedMore => None,
                Frame::Bad => Some(None),
            },
        }
    }
}

impl Session for LogSession {
    fn start(&self) -> (Wire, ConnFlags) {
        // Nothing is delivered to a log connection: it subscribes to nothing.
        let flags = ConnFlags::QUIET;
        (Wire::Nats { headers: true }, flags)
    }

    fn greet(&mut self, conn: &Rc<Conn>) {
        // Outside `logs.allow_from`: closed before anything it sends is read.
        if let Some(peer) = conn.peer.filter(|p| !self.shard.cfg.allows(p.ip())) {
            self.shard.count(self.log_input(), |c| c.refused += 1);
            tracing::warn!(cid = conn.cid, peer = %peer, "log connection refused: not in logs.allow_from");
            conn.close(crate::close::CloseReason::SourceRefused);
        }
    }

    fn input(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        data: &[u8],
    ) -> Input {
        let max = self.shard.cfg.record_bytes_max;
        let now = rfc3339_millis(SystemTime::now());
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
            match self.frame(rest) {
                Some(Some((start, end, next))) => {
                    self.line(router, metrics, conn, &rest[start..end], &now);
                    consumed += next;
                }
                Some(None) => {
                    self.malformed(conn, &ParseError::BadFrame);
                    self.skipping = true;
                }
                None if rest.len() > max + 16 => {
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

/// Routes `record` (from `input`) by `shard`'s rules and publishes it from `conn` to
/// every subject it goes to.
pub fn publish_record(
    shard: &LogShard,
    input: LogInput,
    router: &mut Router,
    conn: &Rc<Conn>,
    record: &Record,
) {
    shard.route(input, record).publish(router, conn);
}
