//! Owns the protocol error type and the fixed server replies (`+OK`, `PING`, `PONG`, `-ERR '…'`).
//!
//! Every error here is fatal for the connection: the caller sends `-ERR '<err_text>'` when
//! [`ProtoError::err_text`] returns a text (the exact nats-server wording, which clients match on)
//! and then closes. When it returns `None`, nats-server closes without any `-ERR`, and so should we.

/// Why a client's bytes could not be accepted. All variants close the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The verb is not one a client may send (e.g. `FOO`, or `MSG` from a client).
    #[error("unknown protocol operation")]
    UnknownOp,
    /// A control line (or a run of blank lines) is longer than `max_control_line`.
    #[error("maximum control line exceeded")]
    ControlLineTooLong,
    /// A PUB/HPUB declared a size (HPUB: total size) above `max_payload`.
    #[error("maximum payload exceeded")]
    PayloadTooLarge,
    /// Wrong argument count, a non-numeric or overflowing size, or a header size above the total.
    /// The text names the operation and the problem, for logs.
    #[error("bad arguments: {0}")]
    BadArguments(&'static str),
    /// The bytes after a payload were not `\r\n` (the declared size was wrong).
    #[error("payload not followed by CRLF")]
    BadPayloadTerminator,
    /// The CONNECT JSON could not be decoded. The text says why, for logs.
    #[error("bad CONNECT: {0}")]
    BadConnect(&'static str),
    /// CONNECT `protocol` was neither 0 nor 1.
    #[error("invalid client protocol")]
    InvalidClientProtocol,
    /// CONNECT asked for `no_responders` without `headers`.
    #[error("no responders requires headers support")]
    NoRespondersRequiresHeaders,
}

impl ProtoError {
    /// The exact nats-server -ERR text (without quotes) sent before closing, or None when
    /// nats-server closes silently.
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            ProtoError::UnknownOp | ProtoError::BadPayloadTerminator => {
                Some("Unknown Protocol Operation")
            }
            ProtoError::ControlLineTooLong => Some("maximum control line exceeded"),
            ProtoError::PayloadTooLarge => Some("Maximum Payload Violation"),
            ProtoError::InvalidClientProtocol => Some("invalid client protocol"),
            ProtoError::NoRespondersRequiresHeaders => {
                Some("no responders requires headers support")
            }
            ProtoError::BadArguments(_) | ProtoError::BadConnect(_) => None,
        }
    }
}

/// Appends `-ERR '<text>'\r\n` to out.
pub fn encode_err(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len().saturating_add(9));
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

/// The `+OK` acknowledgement sent to verbose clients.
pub const OK: &[u8] = b"+OK\r\n";
/// A keepalive ping.
pub const PING: &[u8] = b"PING\r\n";
/// The answer to a PING.
pub const PONG: &[u8] = b"PONG\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_texts_are_the_exact_nats_server_strings() {
        let cases: [(ProtoError, Option<&str>); 9] = [
            (ProtoError::UnknownOp, Some("Unknown Protocol Operation")),
            (
                ProtoError::BadPayloadTerminator,
                Some("Unknown Protocol Operation"),
            ),
            (
                ProtoError::ControlLineTooLong,
                Some("maximum control line exceeded"),
            ),
            (
                ProtoError::PayloadTooLarge,
                Some("Maximum Payload Violation"),
            ),
            (
                ProtoError::InvalidClientProtocol,
                Some("invalid client protocol"),
            ),
            (
                ProtoError::NoRespondersRequiresHeaders,
                Some("no responders requires headers support"),
            ),
            (ProtoError::BadArguments("PUB: x"), None),
            (ProtoError::BadConnect("x"), None),
            (ProtoError::BadArguments(""), None),
        ];
        for (err, text) in cases {
            assert_eq!(err.err_text(), text, "{err:?}");
        }
    }

    #[test]
    fn encode_err_is_byte_exact_and_appends() {
        let mut out = b"PONG\r\n".to_vec();
        encode_err(&mut out, "Unknown Protocol Operation");
        assert_eq!(out, b"PONG\r\n-ERR 'Unknown Protocol Operation'\r\n");

        let mut out = Vec::new();
        encode_err(
            &mut out,
            ProtoError::ControlLineTooLong
                .err_text()
                .unwrap_or_default(),
        );
        assert_eq!(out, b"-ERR 'maximum control line exceeded'\r\n");
    }

    #[test]
    fn constants_are_byte_exact() {
        assert_eq!(OK, b"+OK\r\n");
        assert_eq!(PING, b"PING\r\n");
        assert_eq!(PONG, b"PONG\r\n");
    }

    #[test]
    fn display_names_the_problem() {
        assert_eq!(
            ProtoError::BadArguments("SUB: wrong number of arguments").to_string(),
            "bad arguments: SUB: wrong number of arguments"
        );
        assert_eq!(
            ProtoError::BadConnect("malformed JSON").to_string(),
            "bad CONNECT: malformed JSON"
        );
    }
}
