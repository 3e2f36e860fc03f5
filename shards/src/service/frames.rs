//! The client side of the NATS wire, for internal clients: `MSG`/`HMSG` frames parsed
//! out of the bytes their writer flushed. Other lines (`PING`, `+OK`, `-ERR`) carry
//! nothing for a service and are skipped.

use bytes::Bytes;

use crate::service::Received;

/// One parsed frame, borrowing from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    subject: &'a [u8],
    sid: &'a [u8],
    reply: Option<&'a [u8]>,
    headers: Option<&'a [u8]>,
    payload: &'a [u8],
}

impl Frame<'_> {
    pub fn into_received(self) -> Received {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Received {
            subject: text(self.subject),
            sid: text(self.sid),
            reply: self.reply.map(text),
            headers: self.headers.map(Bytes::copy_from_slice),
            payload: Bytes::copy_from_slice(self.payload),
        }
    }
}

/// The frame at the start of `buf` (None inside for a line that is not a message) and the
/// bytes it takes; None if it is not all there yet.
pub fn next_frame(buf: &[u8]) -> Option<(Option<Frame<'_>>, usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = &buf[..end];
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let verb = words.next().unwrap_or(&[]);
    let args: Vec<&[u8]> = words.collect();
    let headed = verb == b"HMSG";
    if verb != b"MSG" && !headed {
        return Some((None, end + 2));
    }
    let number = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<usize>().ok();
    // MSG subject sid [reply] size / HMSG subject sid [reply] header_size total_size
    let fixed = if headed { 4 } else { 3 };
    let (subject, sid, reply, sizes) = match args.len() {
        n if n == fixed => (args[0], args[1], None, &args[2..]),
        n if n == fixed + 1 => (args[0], args[1], Some(args[2]), &args[3..]),
        _ => return Some((None, end + 2)),
    };
    let header_len = if headed { number(sizes[0]) } else { Some(0) };
    let (Some(total), Some(header_len)) = (number(sizes[sizes.len() - 1]), header_len) else {
        return Some((None, end + 2));
    };
    let start = end + 2;
    if buf.len() < start + total + 2 {
        return None;
    }
    let body = &buf[start..start + total];
    let header_len = header_len.min(total);
    let frame = Frame {
        subject,
        sid,
        reply,
        headers: headed.then(|| &body[..header_len]),
        payload: &body[header_len..],
    };
    Some((Some(frame), start + total + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_with_and_without_headers_and_replies() {
        let buf = b"MSG a.b 7 5\r\nhello\r\nHMSG c 1 _INBOX.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n";
        let (f, n) = next_frame(buf).expect("complete");
        let f = f.expect("a message").into_received();
        assert_eq!((f.subject.as_str(), f.sid.as_str()), ("a.b", "7"));
        assert_eq!(&f.payload[..], b"hello");
        assert_eq!(f.reply, None);
        let (g, m) = next_frame(&buf[n..]).expect("complete");
        let g = g.expect("a message").into_received();
        assert_eq!(g.reply.as_deref(), Some("_INBOX.x"));
        assert_eq!(g.headers.as_deref(), Some(&b"NATS/1.0\r\n\r\n"[..]));
        assert_eq!(&g.payload[..], b"hi");
        assert_eq!(n + m, buf.len());
    }

    #[test]
    fn other_lines_are_skipped_and_partial_frames_wait() {
        assert_eq!(next_frame(b"PING\r\nMSG"), Some((None, 6)));
        assert_eq!(next_frame(b"MSG a 1 5\r\nhel"), None);
        assert_eq!(next_frame(b"MSG a 1 5"), None);
        assert_eq!(next_frame(b"MSG a\r\n"), Some((None, 7)));
    }
}
