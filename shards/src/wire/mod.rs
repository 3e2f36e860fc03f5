//! Wires: how the engine's deliveries and replies become bytes for one kind of connection.
//!
//! The router and fan-out never write a protocol frame themselves. A subscription carries
//! its connection's [`Wire`]; fan-out asks it to encode a message ([`Wire::encode`]) and
//! copies or shares the result, and the router answers a connection's own operations
//! through [`Wire::encode_reply`]. A new front-end (IRC lines, leafnode `LMSG`) adds a
//! variant here and a module beside [`nats`]; fan-out and routing do not change.
//!
//! Encode-once works across wires: two subscriptions whose wires give the same
//! [`Wire::for_msg`] value get byte-identical frames for the same tag (a NATS sid), so one
//! encoding serves all of them, and a frame encoded for one tag is re-tagged by splicing
//! the other tag in at the range [`Wire::encode`] returns.

pub mod irc;
pub mod leaf;
pub mod nats;

use std::ops::Range;

use crate::close::CloseReason;

/// A message about to be delivered, borrowed from a read buffer or a ring batch.
#[derive(Debug, Clone, Copy)]
pub struct MsgView<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// Size of the header block at the start of `body` (NATS `HPUB`); None without headers.
    pub header_len: Option<usize>,
    pub body: &'a [u8],
}

impl<'a> MsgView<'a> {
    /// The payload after the header block (the whole body when there are no headers).
    pub fn payload(&self) -> &'a [u8] {
        &self.body[self.header_len.unwrap_or(0)..]
    }
}

/// The longest [`Framed::trailer`] of any wire.
pub const TRAILER_BYTES_MAX: usize = 2;

/// What follows a frame's head (see [`Wire::encode_head`]).
#[derive(Debug, Clone)]
pub struct Framed<'m> {
    /// Where the tag sits in the output the head was appended to.
    pub tag: Range<usize>,
    /// The bytes of the message that follow the head, borrowed from it.
    pub body: &'m [u8],
    /// The bytes that end the frame.
    pub trailer: &'static [u8],
}

impl Framed<'_> {
    /// Bytes after the head.
    pub fn tail_len(&self) -> usize {
        self.body.len() + self.trailer.len()
    }
}

/// How deliveries and replies are encoded for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The NATS client protocol: `MSG`/`HMSG` frames tagged with the subscription's sid.
    /// `headers: false` is a client that did not ask for headers: it gets payloads only,
    /// as nats-server sends them.
    Nats { headers: bool },
    /// IRC: `PRIVMSG` lines from the message's author to the subscription's tag (a
    /// channel name or the connection's nick), see [`irc`].
    Irc,
    /// The leaf link to a NATS cluster's hub: `LMSG`/`HMSG` frames, no tag, see [`leaf`].
    Leaf,
}

/// A reply to a connection's own operation, in the engine's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The operation was accepted (NATS verbose mode: `+OK`).
    Ok,
    /// A flush completed: everything sent before it is in effect on every shard (`PONG`).
    Flushed,
    /// A keepalive probe from the server (`PING`).
    Ping,
    /// The operation was refused; the connection stays open.
    Refused(Refusal),
    /// The connection is about to close for this reason (NATS: its `-ERR`, if it has one).
    Closing(CloseReason),
    /// An error that leaves the connection open, in the front-end's own words.
    Err(&'a str),
}

/// Why the engine refused an operation (the connection stays open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A subscription to a malformed subject or queue name.
    InvalidSubject,
    /// A publish to a subject with wildcards or empty tokens (reported to pedantic
    /// clients only; the message reaches nobody).
    InvalidPublishSubject,
    /// The connection has `max_subscriptions` already.
    TooManySubscriptions,
}

impl Wire {
    /// The encoding `m` gets on this wire. Subscriptions whose wires return equal values
    /// here get identical frames for `m` (given the same tag), so one encoding serves all.
    pub fn for_msg(self, m: &MsgView<'_>) -> Wire {
        match self {
            // Without a header block, stripping headers changes nothing.
            Wire::Nats { headers: false } if m.header_len.is_none() => Wire::Nats { headers: true },
            other => other,
        }
    }

    /// Whether a frame encoded for one tag becomes another tag's frame by splicing that
    /// tag in at the range [`Wire::encode`] returns. Not on IRC, where the tag (the
    /// channel) may decide what a line shows and every line names it.
    pub fn retaggable(self) -> bool {
        matches!(self, Wire::Nats { .. })
    }

    /// Appends the head of `m`'s frame for the subscription tagged `tag` and says what
    /// follows it: the frame is the head, then [`Framed::body`], then [`Framed::trailer`].
    /// Callers that copy into chunked buffers append the body from where it lies.
    pub fn encode_head<'m>(self, out: &mut Vec<u8>, m: &MsgView<'m>, tag: &[u8]) -> Framed<'m> {
        match self {
            Wire::Nats { headers } => nats::encode_head(out, m, tag, headers),
            Wire::Irc => irc::encode_head(out, m, tag),
            Wire::Leaf => leaf::encode_head(out, m),
        }
    }

    /// The most bytes [`Wire::encode_head`] appends for `m` and `tag`.
    pub fn head_len_max(self, m: &MsgView<'_>, tag: &[u8]) -> usize {
        match self {
            Wire::Nats { .. } => nats::head_len_max(m, tag),
            Wire::Irc => irc::head_len_max(),
            Wire::Leaf => leaf::head_len_max(m),
        }
    }

    /// The bytes of `m` a subscriber on this wire receives as its message (headers and
    /// payload, or the payload alone where headers are stripped): what `out_bytes` counts.
    pub fn delivered_len(self, m: &MsgView<'_>) -> usize {
        match self {
            Wire::Nats { headers: false } | Wire::Irc => m.payload().len(),
            Wire::Nats { headers: true } | Wire::Leaf => m.body.len(),
        }
    }

    /// The most bytes `m`'s whole frame takes for `tag`: the bound an outbox checks.
    pub fn frame_len_max(self, m: &MsgView<'_>, tag: &[u8]) -> usize {
        self.head_len_max(m, tag) + m.body.len() + TRAILER_BYTES_MAX
    }

    /// Appends `m`'s whole frame for the subscription tagged `tag`. Returns where the tag
    /// sits in `out`: splicing another tag in at that range gives that subscription's frame.
    pub fn encode(self, out: &mut Vec<u8>, m: &MsgView<'_>, tag: &[u8]) -> Range<usize> {
        let framed = self.encode_head(out, m, tag);
        out.extend_from_slice(framed.body);
        out.extend_from_slice(framed.trailer);
        framed.tag
    }

    /// Appends the encoding of `reply`.
    pub fn encode_reply(self, out: &mut Vec<u8>, reply: Reply<'_>) {
        match self {
            Wire::Nats { .. } => nats::encode_reply(out, reply),
            Wire::Irc => irc::encode_reply(out, reply),
            Wire::Leaf => leaf::encode_reply(out, reply),
        }
    }

    /// The most bytes [`Wire::encode_reply`] appends for `reply`.
    pub fn reply_len_max(self, reply: Reply<'_>) -> usize {
        match self {
            Wire::Nats { .. } => nats::reply_len_max(reply),
            Wire::Irc => irc::reply_len_max(reply),
            Wire::Leaf => 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(header_len: Option<usize>, body: &'a [u8]) -> MsgView<'a> {
        MsgView {
            subject: b"a.b",
            reply: None,
            header_len,
            body,
        }
    }

    #[test]
    fn wires_agree_on_messages_without_headers_only() {
        let plain = msg(None, b"hi");
        let with_headers = msg(Some(4), b"H\r\n\r\nhi");
        let strip = Wire::Nats { headers: false };
        let keep = Wire::Nats { headers: true };
        assert_eq!(strip.for_msg(&plain), keep.for_msg(&plain));
        assert_ne!(strip.for_msg(&with_headers), keep.for_msg(&with_headers));
    }

    #[test]
    fn frames_are_retagged_by_splicing() {
        let m = msg(None, b"hello");
        let wire = Wire::Nats { headers: true };
        let mut one = Vec::new();
        let at = wire.encode(&mut one, &m, b"1");
        let mut spliced = one[..at.start].to_vec();
        spliced.extend_from_slice(b"sid-22");
        spliced.extend_from_slice(&one[at.end..]);
        let mut direct = Vec::new();
        let _ = wire.encode(&mut direct, &m, b"sid-22");
        assert_eq!(spliced, direct);
        let mut head = Vec::new();
        let framed = wire.encode_head(&mut head, &m, b"sid-22");
        assert!(head.len() <= wire.head_len_max(&m, b"sid-22"));
        assert_eq!(head.len() + framed.tail_len(), direct.len());
    }
}
