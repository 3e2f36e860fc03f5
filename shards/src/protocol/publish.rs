//! Owns the PUB and HPUB operations: the borrowed [`Publish`] view and the parsing of their argument lines.
//!
//! `PUB <subject> [reply] <size>` and `HPUB <subject> [reply] <header_size> <total_size>`.
//! The client-side encoder for PUB lives in [`super::msg::encode_pub`] beside the MSG encoder.

use super::errors::ProtoError;
use super::lex::{parse_size, split_args, NumberError, Span};

/// One publish from a client, borrowing the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// The subject as sent (not validated here).
    pub subject: &'a [u8],
    /// The reply subject, if any.
    pub reply: Option<&'a [u8]>,
    /// HPUB: size of the header block (NATS/1.0 ... \r\n\r\n); 0 for PUB.
    pub header_len: usize,
    /// true for HPUB
    pub has_headers: bool,
    /// the whole body (headers then payload) without the trailing CRLF; len = total size
    pub body: &'a [u8],
}

impl<'a> Publish<'a> {
    /// The header block (empty for PUB).
    pub fn headers(&self) -> &'a [u8] {
        &self.body[..self.header_len]
    }

    /// The payload after the header block (the whole body for PUB).
    pub fn payload(&self) -> &'a [u8] {
        &self.body[self.header_len..]
    }
}

/// The parsed arguments of a PUB/HPUB control line. Spans are relative to the argument text
/// given to [`parse_pub_args`]/[`parse_hpub_args`]; the parser shifts them to buffer offsets and
/// keeps them while the payload arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PubArgs {
    pub subject: Span,
    pub reply: Option<Span>,
    pub header_len: usize,
    /// Body size: the payload for PUB, headers plus payload for HPUB.
    pub total: usize,
    pub has_headers: bool,
}

impl PubArgs {
    /// The same arguments with every span moved `by` bytes further into the buffer.
    pub(super) fn shifted(self, by: usize) -> PubArgs {
        PubArgs {
            subject: self.subject.shifted(by),
            reply: self.reply.map(|r| r.shifted(by)),
            ..self
        }
    }
}

/// Parses the arguments after `PUB`: `<subject> [reply] <size>`.
pub(super) fn parse_pub_args(args: &[u8]) -> Result<PubArgs, ProtoError> {
    let spans = split_args::<3>(args).ok_or(ProtoError::BadArguments("PUB: too many arguments"))?;
    let (subject, reply, size) = match spans.as_slice() {
        [subject, size] => (*subject, None, *size),
        [subject, reply, size] => (*subject, Some(*reply), *size),
        _ => return Err(ProtoError::BadArguments("PUB: too few arguments")),
    };
    let total = parse_size(size.slice(args)).map_err(|e| match e {
        NumberError::NotANumber => ProtoError::BadArguments("PUB: size is not a number"),
        NumberError::Overflow => ProtoError::BadArguments("PUB: size overflows"),
    })?;
    Ok(PubArgs {
        subject,
        reply,
        header_len: 0,
        total,
        has_headers: false,
    })
}

/// Parses the arguments after `HPUB`: `<subject> [reply] <header_size> <total_size>`.
pub(super) fn parse_hpub_args(args: &[u8]) -> Result<PubArgs, ProtoError> {
    let spans =
        split_args::<4>(args).ok_or(ProtoError::BadArguments("HPUB: too many arguments"))?;
    let (subject, reply, hdr, total) = match spans.as_slice() {
        [subject, hdr, total] => (*subject, None, *hdr, *total),
        [subject, reply, hdr, total] => (*subject, Some(*reply), *hdr, *total),
        _ => return Err(ProtoError::BadArguments("HPUB: too few arguments")),
    };
    let header_len = parse_size(hdr.slice(args)).map_err(|e| match e {
        NumberError::NotANumber => ProtoError::BadArguments("HPUB: header size is not a number"),
        NumberError::Overflow => ProtoError::BadArguments("HPUB: header size overflows"),
    })?;
    let total = parse_size(total.slice(args)).map_err(|e| match e {
        NumberError::NotANumber => ProtoError::BadArguments("HPUB: total size is not a number"),
        NumberError::Overflow => ProtoError::BadArguments("HPUB: total size overflows"),
    })?;
    if header_len > total {
        return Err(ProtoError::BadArguments(
            "HPUB: header size exceeds total size",
        ));
    }
    Ok(PubArgs {
        subject,
        reply,
        header_len,
        total,
        has_headers: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(args: &[u8], p: PubArgs) -> (Vec<u8>, Option<Vec<u8>>, usize, usize, bool) {
        (
            p.subject.slice(args).to_vec(),
            p.reply.map(|r| r.slice(args).to_vec()),
            p.header_len,
            p.total,
            p.has_headers,
        )
    }

    #[test]
    fn pub_args_with_and_without_reply() {
        let a = b" foo.bar 5";
        let p = parse_pub_args(a);
        assert_eq!(
            p.map(|p| view(a, p)),
            Ok((b"foo.bar".to_vec(), None, 0, 5, false))
        );
        let a = b"\tfoo \t _INBOX.x\t\t 12 ";
        let p = parse_pub_args(a);
        assert_eq!(
            p.map(|p| view(a, p)),
            Ok((b"foo".to_vec(), Some(b"_INBOX.x".to_vec()), 0, 12, false))
        );
    }

    #[test]
    fn pub_args_errors() {
        assert_eq!(
            parse_pub_args(b" a"),
            Err(ProtoError::BadArguments("PUB: too few arguments"))
        );
        assert_eq!(
            parse_pub_args(b""),
            Err(ProtoError::BadArguments("PUB: too few arguments"))
        );
        assert_eq!(
            parse_pub_args(b" a b c 1"),
            Err(ProtoError::BadArguments("PUB: too many arguments"))
        );
        assert_eq!(
            parse_pub_args(b" a x1"),
            Err(ProtoError::BadArguments("PUB: size is not a number"))
        );
        assert_eq!(
            parse_pub_args(b" a -1"),
            Err(ProtoError::BadArguments("PUB: size is not a number"))
        );
        assert_eq!(
            parse_pub_args(b" a 99999999999999999999999"),
            Err(ProtoError::BadArguments("PUB: size overflows"))
        );
    }

    #[test]
    fn hpub_args() {
        let a = b" FOO 22 33";
        assert_eq!(
            parse_hpub_args(a).map(|p| view(a, p)),
            Ok((b"FOO".to_vec(), None, 22, 33, true))
        );
        let a = b" FOO r 12 12";
        assert_eq!(
            parse_hpub_args(a).map(|p| view(a, p)),
            Ok((b"FOO".to_vec(), Some(b"r".to_vec()), 12, 12, true))
        );
        assert_eq!(
            parse_hpub_args(b" FOO 34 33"),
            Err(ProtoError::BadArguments(
                "HPUB: header size exceeds total size"
            ))
        );
        assert_eq!(
            parse_hpub_args(b" FOO 33"),
            Err(ProtoError::BadArguments("HPUB: too few arguments"))
        );
        assert_eq!(
            parse_hpub_args(b" FOO a b 1 2"),
            Err(ProtoError::BadArguments("HPUB: too many arguments"))
        );
        assert_eq!(
            parse_hpub_args(b" FOO x 2"),
            Err(ProtoError::BadArguments(
                "HPUB: header size is not a number"
            ))
        );
        assert_eq!(
            parse_hpub_args(b" FOO 1 2x"),
            Err(ProtoError::BadArguments("HPUB: total size is not a number"))
        );
        assert_eq!(
            parse_hpub_args(b" FOO 1 99999999999999999999999"),
            Err(ProtoError::BadArguments("HPUB: total size overflows"))
        );
    }

    #[test]
    fn shifted_moves_spans() {
        let a = b" s r 3";
        let p = parse_pub_args(a).map(|p| p.shifted(4));
        let buf = b"PUB  s r 3";
        assert_eq!(
            p.map(|p| view(buf, p)),
            Ok((b"s".to_vec(), Some(b"r".to_vec()), 0, 3, false))
        );
    }

    #[test]
    fn headers_and_payload_split_the_body() {
        let p = Publish {
            subject: b"s",
            reply: None,
            header_len: 12,
            has_headers: true,
            body: b"NATS/1.0\r\n\r\nhi",
        };
        assert_eq!(p.headers(), b"NATS/1.0\r\n\r\n");
        assert_eq!(p.payload(), b"hi");
    }
}
