//! Owns one generator connection in client mode: connect, the INFO/CONNECT/SUB/PING handshake,
//! reading server operations with the project's own parser ([`shards::protocol::server_ops`]),
//! and writing pre-encoded batches.

use std::io;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;

use super::stream::{self, Stream};
use shards::protocol::{parse_server_op, ServerOp, ServerParsed};

use super::shared::{now_ns, ns};

/// Longest control line accepted from a server.
const CONTROL_LINE_BYTES_MAX: usize = 64 * 1024;
/// Largest MSG body accepted from a server.
const BODY_BYTES_MAX: usize = 64 * 1024 * 1024 + 4096;
/// Reads use a buffer this large: big reads keep the generator's syscall count low.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// How long a read waits before the caller gets a chance to check the run's phase.
pub const READ_POLL: Duration = Duration::from_millis(50);
/// The same for connections that expect no traffic: thousands of them must not keep the
/// generator busy with timers.
pub const IDLE_READ_POLL: Duration = Duration::from_millis(500);
/// A write that makes no progress for this long fails the run (the server stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A subscription made during the handshake.
pub struct SubSpec<'a> {
    pub subject: &'a str,
    pub queue: Option<&'a str>,
    pub sid: u32,
}

/// Why a generator connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source} (is the server running there?)")]
    Connect { addr: String, source: io::Error },
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server sent -ERR '{0}'")]
    Server(String),
    #[error("the server sent something that is not NATS protocol: {0}")]
    Protocol(shards::protocol::ProtoError),
    #[error("no PONG within {0:?} of connecting")]
    HandshakeTimeout(Duration),
    #[error("{0}")]
    Irc(String),
    #[error("--size {size} is larger than the server's max_payload ({max} bytes)")]
    PayloadTooLarge { size: usize, max: u64 },
}

/// A connected, subscribed client.
/// TLS for the generator's connections (`--tls`).
pub struct TlsTarget {
    pub config: std::sync::Arc<rustls::ClientConfig>,
    /// The name the server's certificate must carry (the `--url` host).
    pub host: String,
}

pub struct Client {
    pub stream: Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes the operation at `start` needs, when known.
    needed: usize,
    /// The largest payload the server accepts, from its INFO.
    pub max_payload: Option<u64>,
}

impl Client {
    /// Connects, sends CONNECT, the subscriptions and PING, and waits for PONG.
    /// At most `gate`'s permits connect at once.
    pub async fn connect(
        gate: &Semaphore,
        addr: &str,
        auth: &str,
        tls: Option<&TlsTarget>,
        subs: &[SubSpec<'_>],
    ) -> Result<Client, ClientError> {
        let _permit = gate
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::Connect {
                addr: addr.to_string(),
                source: io::Error::other(e.to_string()),
            })?;
        stream
            .set_nodelay(true)
            .map_err(|e| io::Error::other(e.to_string()))?;
        stream
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(|e| io::Error::other(e.to_string()))?;
        stream
            .set_read_timeout(Some(READ_POLL))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let (stream, info) = match tls {
            None => (Stream::Plain(stream), Vec::new()),
            Some(t) => stream::upgrade(stream, std::sync::Arc::clone(&t.config), &t.host).await?,
        };
        let mut client = Client {
            stream,
            buf: vec![0; READ_BUFFER_BYTES],
            start: 0,
            end: 0,
            needed: 0,
            max_payload: None,
        };
        // The INFO read before TLS started is parsed with the rest (its max_payload).
        client.buf[..info.len()].copy_from_slice(&info);
        client.end = info.len();
        let mut hello = Vec::with_capacity(256);
        hello.extend_from_slice(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":true,\"name\":\"shardcast-bench\",\"lang\":\"rust\",\"version\":\"",
        );
        hello.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
        hello.extend_from_slice(b"\",\"protocol\":1,\"headers\":true,\"no_responders\":true");
        hello.extend_from_slice(auth.as_bytes());
        hello.extend_from_slice(b"}\r\n");
        for s in subs {
            hello.extend_from_slice(b"SUB ");
            hello.extend_from_slice(s.subject.as_bytes());
            if let Some(q) = s.queue {
                hello.push(b' ');
                hello.extend_from_slice(q.as_bytes());
            }
            hello.push(b' ');
            hello.extend_from_slice(itoa::Buffer::new().format(s.sid).as_bytes());
            hello.extend_from_slice(b"\r\n");
        }
        hello.extend_from_slice(b"PING\r\n");
        client.write(&hello).await?;
        client.await_pong(HANDSHAKE_TIMEOUT).await?;
        Ok(client)
    }

    /// How long a read waits for data before returning to the caller (see [`Client::fill`]).
    pub fn set_read_poll(&self, d: Duration) -> Result<(), ClientError> {
        self.stream
            .tcp()
            .set_read_timeout(Some(d))
            .map_err(|e| ClientError::Io(io::Error::other(e.to_string())))
    }

    /// Writes all of `bytes`.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).await?;
        // TLS keeps ciphertext the socket did not take yet: out with it.
        self.stream.flush().await?;
        Ok(())
    }

    /// Reads until PONG, answering PINGs, noting INFO's `max_payload` and ignoring +OK and
    /// deliveries (only connections without traffic wait this way).
    pub async fn await_pong(&mut self, within: Duration) -> Result<(), ClientError> {
        let deadline = now_ns().saturating_add(ns(within));
        loop {
            let mut pong = false;
            let mut ping = false;
            while let Some(op) = self.next_op()? {
                match op {
                    ServerOp::Pong => pong = true,
                    ServerOp::Ping => ping = true,
                    ServerOp::Err(text) => {
                        return Err(ClientError::Server(String::from_utf8_lossy(text).into()))
                    }
                    ServerOp::Info(json) => {
                        let info: Option<serde_json::Value> = serde_json::from_slice(json).ok();
                        self.max_payload = info.and_then(|i| i["max_payload"].as_u64());
                    }
                    _ => {}
                }
                if pong {
                    break;
                }
            }
            if ping {
                self.write(b"PONG\r\n").await?;
            }
            if pong {
                return Ok(());
            }
            if now_ns() > deadline {
                return Err(ClientError::HandshakeTimeout(within));
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes. Returns Ok(false) when the read timed out (nothing arrived within
    /// [`READ_POLL`]), so the caller can check the run's phase.
    pub async fn fill(&mut self) -> Result<bool, ClientError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0
            && (self.end == self.buf.len() || self.needed > self.buf.len() - self.start)
        {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.needed > self.buf.len() {
            self.buf.resize(self.needed, 0);
        }
        if self.end == self.buf.len() {
            // A control line longer than the buffer: the parser reports it.
            self.buf.resize(self.buf.len().saturating_mul(2), 0);
        }
        let dst = self.buf.get_mut(self.end..).unwrap_or_default();
        match self.stream.read(dst).await {
            Ok(0) => Err(ClientError::Closed),
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                Ok(false)
            }
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    /// The next complete operation in the buffer, if any.
    pub fn next_op(&mut self) -> Result<Option<ServerOp<'_>>, ClientError> {
        let data = self.buf.get(self.start..self.end).unwrap_or_default();
        match parse_server_op(data, CONTROL_LINE_BYTES_MAX, BODY_BYTES_MAX) {
            Ok(ServerParsed::Op { op, consumed }) => {
                self.start += consumed;
                self.needed = 0;
                Ok(Some(op))
            }
            Ok(ServerParsed::NeedMore { needed_bytes }) => {
                self.needed = needed_bytes;
                Ok(None)
            }
            Err(e) => Err(ClientError::Protocol(e)),
        }
    }
}
