//! Owns the encoding of deliveries (`MSG`/`HMSG` control lines) and of client-side `PUB` frames.
//!
//! This is the hot path: nothing allocates except the growth of `out`, and numbers are
//! formatted with `itoa`. A `MSG` sent by a client is an unknown operation (see the parser).

/// Appends the MSG/HMSG control line (including its CRLF) for one delivery:
/// header_len None -> `MSG <subject> <sid> [reply] <body_len>\r\n`;
/// header_len Some(h) -> `HMSG <subject> <sid> [reply] <h> <body_len>\r\n`.
///
/// Returns where the sid sits in `out`, so a frame encoded for one subscription can be
/// re-tagged for another by splicing its sid in.
pub fn encode_msg_line(
    out: &mut Vec<u8>,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    body_len: usize,
) -> std::ops::Range<usize> {
    let mut num = itoa::Buffer::new();
    // "HMSG " + 3 separators + two numbers of at most 20 digits + CRLF.
    let reply_len = reply.map_or(0, |r| r.len().saturating_add(1));
    out.reserve(
        subject
            .len()
            .saturating_add(sid.len())
            .saturating_add(reply_len)
            .saturating_add(52),
    );
    out.extend_from_slice(if header_len.is_some() {
        b"HMSG "
    } else {
        b"MSG "
    });
    out.extend_from_slice(subject);
    out.push(b' ');
    let sid_at = out.len();
    out.extend_from_slice(sid);
    out.push(b' ');
    if let Some(reply) = reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
    if let Some(h) = header_len {
        out.extend_from_slice(num.format(h).as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(num.format(body_len).as_bytes());
    out.extend_from_slice(b"\r\n");
    sid_at..sid_at + sid.len()
}

/// The client-side counterpart used by a load generator: appends `PUB <subject> [reply] <len>\r\n<payload>\r\n`.
pub fn encode_pub(out: &mut Vec<u8>, subject: &[u8], reply: Option<&[u8]>, payload: &[u8]) {
    let mut num = itoa::Buffer::new();
    let len = num.format(payload.len()).as_bytes();
    let reply_len = reply.map_or(0, |r| r.len().saturating_add(1));
    out.reserve(
        subject
            .len()
            .saturating_add(reply_len)
            .saturating_add(len.len())
            .saturating_add(payload.len())
            .saturating_add(9),
    );
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    out.push(b' ');
    if let Some(reply) = reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
    out.extend_from_slice(len);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Op, Parsed, Parser, Publish};

    fn line(
        subject: &[u8],
        sid: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        body_len: usize,
    ) -> String {
        let mut out = Vec::new();
        let _ = encode_msg_line(&mut out, subject, sid, reply, header_len, body_len);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn msg_lines_are_byte_exact() {
        assert_eq!(
            line(b"foo.bar", b"9", None, None, 11),
            "MSG foo.bar 9 11\r\n"
        );
        assert_eq!(
            line(b"foo.bar", b"9", Some(b"GREETING.34"), None, 0),
            "MSG foo.bar 9 GREETING.34 0\r\n"
        );
        assert_eq!(
            line(b"FOO.BAR", b"9", None, Some(34), 45),
            "HMSG FOO.BAR 9 34 45\r\n"
        );
        assert_eq!(
            line(b"FOO.BAR", b"sid-x", Some(b"BAZ.69"), Some(16), 16),
            "HMSG FOO.BAR sid-x BAZ.69 16 16\r\n"
        );
        assert_eq!(
            line(b"a", b"1", None, Some(0), usize::MAX),
            format!("HMSG a 1 0 {}\r\n", usize::MAX)
        );
    }

    #[test]
    fn the_sid_range_points_at_the_sid() {
        let mut out = b"PONG\r\n".to_vec();
        let at = encode_msg_line(&mut out, b"a.b", b"sid-7", Some(b"r"), Some(3), 9);
        assert_eq!(&out[at], b"sid-7");
        out.clear();
        let at = encode_msg_line(&mut out, b"x", b"1", None, None, 0);
        assert_eq!(at, 6..7);
    }

    #[test]
    fn msg_line_appends() {
        let mut out = b"PONG\r\n".to_vec();
        let _ = encode_msg_line(&mut out, b"s", b"1", None, None, 2);
        out.extend_from_slice(b"hi\r\n");
        assert_eq!(out, b"PONG\r\nMSG s 1 2\r\nhi\r\n");
    }

    #[test]
    fn pub_is_byte_exact() {
        let mut out = Vec::new();
        encode_pub(&mut out, b"foo", None, b"hello");
        assert_eq!(out, b"PUB foo 5\r\nhello\r\n");
        out.clear();
        encode_pub(&mut out, b"foo", Some(b"_INBOX.1"), b"");
        assert_eq!(out, b"PUB foo _INBOX.1 0\r\n\r\n");
    }

    #[test]
    fn encoded_pub_parses_back() {
        let payload = b"bin\r\n\0\xff\r\nary";
        let mut out = Vec::new();
        encode_pub(&mut out, b"a.b", Some(b"r.1"), payload);
        let mut parser = Parser::new(4096, 1024);
        let want = Publish {
            subject: b"a.b",
            reply: Some(b"r.1"),
            header_len: 0,
            has_headers: false,
            body: payload,
        };
        assert_eq!(
            parser.parse(&out),
            Ok(Parsed::Op {
                op: Op::Pub(want),
                consumed: out.len()
            })
        );
    }
}
