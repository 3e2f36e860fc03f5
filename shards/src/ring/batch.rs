//! What travels through a ring: a batch of items in production order, sharing one
//! immutable blob that holds the forwarded messages' bytes.

use std::time::Instant;

use bytes::Bytes;

/// A byte range inside a batch's blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    /// The span of `part` inside `base`; `part` must be a sub-slice of `base` (a read
    /// buffer, at most one operation plus a read's worth of bytes, well under 4 GiB).
    pub fn of(base: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        assert!(
            start + part.len() <= base.len() && base.len() <= u32::MAX as usize,
            "a span lies inside its buffer"
        );
        Span {
            start: start as u32,
            len: part.len() as u32,
        }
    }

    /// The bytes of this span in `blob`, the buffer it was taken from.
    pub fn get<'a>(&self, blob: &'a [u8]) -> &'a [u8] {
        let start = self.start as usize;
        &blob[start..start + self.len as usize]
    }
}

/// A publish forwarded to a shard with matching interest.
#[derive(Debug)]
pub struct Forward {
    pub subject: Span,
    pub reply: Option<Span>,
    /// Header block size for HPUB; None for PUB.
    pub header_len: Option<u32>,
    pub body: Span,
    /// Queue groups whose one delivery the receiving shard must make.
    pub queues: Vec<Box<[u8]>>,
    /// The bytes the spans point into when they are not the batch's blob: a message a
    /// front-end or service composed (an IRC line published with its author's header)
    /// travels with its own block.
    pub blob: Option<Box<Bytes>>,
}

/// One entry of a batch.
#[derive(Debug)]
pub enum RingItem {
    /// A subscription appeared on the sending shard.
    InterestAdd {
        subject: Box<[u8]>,
        queue: Option<Box<[u8]>>,
    },
    /// A subscription went away on the sending shard.
    InterestRemove {
        subject: Box<[u8]>,
        queue: Option<Box<[u8]>>,
    },
    Publish(Forward),
    /// Everything before this token has been applied once the peer echoes it back.
    Barrier(u64),
    BarrierAck(u64),
}

/// The unit sent through a ring, once per peer per turn.
#[derive(Debug)]
pub struct RingBatch {
    /// Bytes that `Publish` spans point into (a frozen part of a read buffer).
    pub blob: Bytes,
    pub items: Vec<RingItem>,
    /// When the sending shard started the turn that parsed these publishes (the start of
    /// their end-to-end latency).
    pub parsed_at: Instant,
    pub sent_at: Instant,
}

impl RingBatch {
    /// Whether the batch adds or removes interest (read loops apply such batches before
    /// routing their own input, see `ring::inbound`).
    pub fn changes_interest(&self) -> bool {
        self.items.iter().any(|item| {
            matches!(
                item,
                RingItem::InterestAdd { .. } | RingItem::InterestRemove { .. }
            )
        })
    }
}

/// Ring slots hold one pointer.
pub type RingMsg = Box<RingBatch>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_round_trips() {
        let base = b"PUB foo 5\r\nhello\r\n";
        let s = Span::of(base, &base[11..16]);
        assert_eq!(s, Span { start: 11, len: 5 });
        assert_eq!(s.get(base), b"hello");
    }
}
