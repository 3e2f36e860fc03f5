//! Why a connection closed. One value drives the error text a front-end sends (if any),
//! the counter bumped and the log line, so the three never disagree.

use crate::protocol::ProtoError;

/// The reason a connection is closing; the first reason set wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side.
    ClientClosed,
    /// Reading from the socket failed.
    ReadError,
    /// Writing to the socket failed (reset, broken pipe).
    WriteError,
    /// Pending output exceeded max_pending.
    SlowConsumerPending,
    /// A write made no progress within write_deadline.
    SlowConsumerDeadline,
    /// The shard stayed over its memory budget with publishers paused for
    /// `slow_consumer.stall_max`, and this connection held the most of it.
    SlowConsumerMemory,
    /// The client broke the protocol.
    Protocol(ProtoError),
    /// max_connections was reached when this client connected.
    MaxConnections,
    /// Too many server PINGs went unanswered.
    StaleConnection,
    /// The server is shutting down.
    ServerShutdown,
    /// An IRC client sent lines faster than its flood limit lets them through, and kept
    /// on until too many were waiting.
    ExcessFlood,
    /// An IRC client did not register within `irc.registration_timeout`.
    RegistrationTimeout,
    /// An IRC user sent nothing but keepalive and queries for `irc.idle_timeout`.
    IdleTimeout,
    /// Wrong or missing credentials, or an operation before CONNECT when auth is on.
    AuthViolation,
    /// No CONNECT within `auth.timeout`.
    AuthTimeout,
    /// The client's address is refused for a while after repeated failed logins.
    AuthBanned,
    /// Its address had `limits.max_connections_per_ip` connections already.
    MaxConnectionsPerIp,
    /// Connections arrived faster than `limits.accept_rate`.
    AcceptRate,
    /// A log port's `logs.allow_from` does not include the client's address.
    SourceRefused,
}

impl CloseReason {
    /// Whether nothing more can or should be written: a slow consumer's backlog is
    /// dropped, and a transport that failed takes nothing.
    pub fn drops_backlog(self) -> bool {
        self.is_slow_consumer() || self == CloseReason::WriteError
    }

    pub fn is_slow_consumer(self) -> bool {
        matches!(
            self,
            CloseReason::SlowConsumerPending
                | CloseReason::SlowConsumerDeadline
                | CloseReason::SlowConsumerMemory
        )
    }

    /// Short stable name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "client_closed",
            CloseReason::ReadError => "read_error",
            CloseReason::WriteError => "write_error",
            CloseReason::SlowConsumerPending => "slow_consumer_max_pending",
            CloseReason::SlowConsumerDeadline => "slow_consumer_write_deadline",
            CloseReason::SlowConsumerMemory => "slow_consumer_memory_budget",
            CloseReason::Protocol(_) => "protocol_error",
            CloseReason::MaxConnections => "max_connections",
            CloseReason::StaleConnection => "stale_connection",
            CloseReason::ServerShutdown => "server_shutdown",
            CloseReason::ExcessFlood => "excess_flood",
            CloseReason::RegistrationTimeout => "registration_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::AuthViolation => "authorization_violation",
            CloseReason::AuthTimeout => "authentication_timeout",
            CloseReason::AuthBanned => "auth_banned",
            CloseReason::MaxConnectionsPerIp => "max_connections_per_ip",
            CloseReason::AcceptRate => "accept_rate",
            CloseReason::SourceRefused => "source_refused",
        }
    }
}
