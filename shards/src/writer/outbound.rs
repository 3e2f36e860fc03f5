//! One connection's pending output: a chain of pooled chunks that deliveries append to,
//! small chunks for control replies, and byte blocks shared with other connections (a
//! run's frames, see `fanout::run`), which the writer drains from the front. Its size in
//! bytes is what [`super::Outbox`] bounds.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::rc::Rc;

use bytes::Bytes;

use crate::limits::{CONTROL_CHUNK_BYTES, OUTBOUND_CHUNK_BYTES, WRITE_IOVECS_MAX};
use crate::writer::pool::ChunkPool;

/// One piece of pending output.
#[derive(Debug)]
pub enum Segment {
    /// A chunk that appends go into: pooled (`OUTBOUND_CHUNK_BYTES`) for deliveries, or
    /// small for a control reply on an idle connection.
    Chunk(Vec<u8>),
    /// Bytes shared with other connections, written without a per-connection copy.
    Shared(Bytes),
}

impl Segment {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Segment::Chunk(v) => v,
            Segment::Shared(b) => b,
        }
    }
}

/// Pending outbound bytes of one connection.
#[derive(Debug)]
pub struct Outbound {
    chunks: VecDeque<Segment>,
    /// Bytes of `chunks[0]` already written.
    head: usize,
    /// Bytes appended and not yet written.
    pending: usize,
    /// The part of `pending` copied into this connection's own chunks (the rest is in
    /// shared blocks): what it costs the shard's memory budget on its own.
    own: usize,
    /// Bytes written to the socket over the connection's life (progress, for pacing).
    written_total: u64,
    pool: Rc<ChunkPool>,
}

impl Outbound {
    pub fn new(pool: Rc<ChunkPool>) -> Self {
        Outbound {
            chunks: VecDeque::new(),
            head: 0,
            pending: 0,
            own: 0,
            written_total: 0,
            pool,
        }
    }

    /// Bytes written to the socket so far.
    pub fn written_total(&self) -> u64 {
        self.written_total
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.pending
    }

    /// Pending bytes copied into this connection's own chunks.
    pub fn own_bytes(&self) -> usize {
        self.own
    }

    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Appends raw bytes, spilling into new chunks as needed.
    pub fn append(&mut self, mut bytes: &[u8]) {
        self.pending += bytes.len();
        self.own += bytes.len();
        while !bytes.is_empty() {
            let chunk = self.tail_with_room(1);
            let room = chunk.capacity() - chunk.len();
            let n = room.min(bytes.len());
            chunk.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
    }

    /// Queues `bytes` shared with other connections, without copying them.
    pub fn append_shared(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.pending += bytes.len();
        self.chunks.push_back(Segment::Shared(bytes));
    }

    /// Lets `write` encode straight into the tail chunk, which has at least `len_max`
    /// bytes of room; `write` must not append more than `len_max` bytes.
    pub fn append_with(&mut self, len_max: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let chunk = self.tail_with_room(len_max.min(OUTBOUND_CHUNK_BYTES));
        let before = chunk.len();
        write(chunk);
        let n = chunk.len() - before;
        self.pending += n;
        self.own += n;
    }

    /// Appends a small control reply encoded by `write` (at most `len_max` bytes): into
    /// the tail chunk if it has room, else into a new small chunk, so a PONG on an idle
    /// connection does not take a pooled `OUTBOUND_CHUNK_BYTES` chunk.
    pub fn append_control_with(&mut self, len_max: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let fits = matches!(self.chunks.back(), Some(Segment::Chunk(last)) if last.capacity() - last.len() >= len_max);
        if !fits {
            let small = Vec::with_capacity(len_max.max(CONTROL_CHUNK_BYTES));
            self.chunks.push_back(Segment::Chunk(small));
        }
        let Some(Segment::Chunk(chunk)) = self.chunks.back_mut() else {
            unreachable!("the tail is a chunk: checked or pushed just above");
        };
        let before = chunk.len();
        write(chunk);
        debug_assert!(chunk.len() - before <= len_max, "a reply outgrew its bound");
        let n = chunk.len() - before;
        self.pending += n;
        self.own += n;
    }

    fn tail_with_room(&mut self, room: usize) -> &mut Vec<u8> {
        let usable = match self.chunks.back() {
            Some(Segment::Chunk(last)) => last.capacity() - last.len() >= room,
            _ => false,
        };
        if !usable {
            self.chunks.push_back(Segment::Chunk(self.pool.take()));
        }
        let Some(Segment::Chunk(last)) = self.chunks.back_mut() else {
            unreachable!("the tail is a chunk: checked or pushed just above");
        };
        last
    }

    /// Fills `iov` with the pending bytes from the front, up to `bytes_max` in total.
    /// Returns how many entries were filled.
    pub fn io_slices<'a>(
        &'a self,
        iov: &mut [IoSlice<'a>; WRITE_IOVECS_MAX],
        bytes_max: usize,
    ) -> usize {
        let mut n = 0;
        let mut total = 0;
        for (i, chunk) in self.chunks.iter().enumerate() {
            if n == WRITE_IOVECS_MAX || total >= bytes_max {
                break;
            }
            let chunk = chunk.bytes();
            let start = if i == 0 { self.head } else { 0 };
            let len = (chunk.len() - start).min(bytes_max - total);
            if len == 0 {
                continue;
            }
            iov[n] = IoSlice::new(&chunk[start..start + len]);
            total += len;
            n += 1;
        }
        n
    }

    /// The pending bytes of the first segment holding any (empty when nothing is pending).
    pub fn front(&self) -> &[u8] {
        self.chunks
            .iter()
            .enumerate()
            .map(|(i, c)| &c.bytes()[if i == 0 { self.head } else { 0 }..])
            .find(|b| !b.is_empty())
            .unwrap_or_default()
    }

    /// Marks `written` bytes from the front as sent and recycles finished chunks.
    pub fn consume(&mut self, mut written: usize) {
        debug_assert!(written <= self.pending, "more written than was pending");
        self.written_total += written as u64;
        self.pending -= written.min(self.pending);
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.head;
            let own = matches!(front, Segment::Chunk(_));
            if written < left {
                self.head += written;
                if own {
                    self.own -= written;
                }
                return;
            }
            if own {
                self.own -= left;
            }
            written -= left;
            self.head = 0;
            if let Some(done) = self.chunks.pop_front() {
                self.recycle(done);
            }
        }
        // A fully drained tail chunk is recycled as well, so idle connections hold none.
        if self.pending == 0 {
            self.head = 0;
            while let Some(c) = self.chunks.pop_front() {
                self.recycle(c);
            }
        }
    }

    /// Returns a written segment's chunk to the pool (a shared block is just released).
    fn recycle(&self, seg: Segment) {
        if let Segment::Chunk(c) = seg {
            self.pool.give(c);
        }
    }

    /// Drops everything pending (a slow consumer's backlog), returning chunks to the pool.
    pub fn clear(&mut self) {
        while let Some(c) = self.chunks.pop_front() {
            self.recycle(c);
        }
        self.head = 0;
        self.pending = 0;
        self.own = 0;
    }

    /// Copies out everything pending (tests only).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, c) in self.chunks.iter().enumerate() {
            v.extend_from_slice(&c.bytes()[if i == 0 { self.head } else { 0 }..]);
        }
        v
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound() -> Outbound {
        Outbound::new(Rc::new(ChunkPool::new(8)))
    }

    fn iov_bytes(o: &Outbound, max: usize) -> Vec<u8> {
        let mut iov = [IoSlice::new(&[]); WRITE_IOVECS_MAX];
        let n = o.io_slices(&mut iov, max);
        iov[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn append_spills_across_chunks_and_consumes_in_order() {
        let mut o = outbound();
        let data: Vec<u8> = (0..OUTBOUND_CHUNK_BYTES * 2 + 100)
            .map(|i| (i % 251) as u8)
            .collect();
        o.append(&data);
        assert_eq!(o.pending_bytes(), data.len());
        assert_eq!(o.to_vec(), data);
        assert_eq!(iov_bytes(&o, usize::MAX), data);
        assert_eq!(iov_bytes(&o, 10), &data[..10]);
        o.consume(OUTBOUND_CHUNK_BYTES + 7);
        assert_eq!(o.to_vec(), &data[OUTBOUND_CHUNK_BYTES + 7..]);
        assert_eq!(
            o.front(),
            &data[OUTBOUND_CHUNK_BYTES + 7..2 * OUTBOUND_CHUNK_BYTES]
        );
        assert_eq!(o.written_total(), (OUTBOUND_CHUNK_BYTES + 7) as u64);
        o.consume(o.pending_bytes());
        assert!(o.is_empty());
        assert!(o.to_vec().is_empty());
        assert!(o.front().is_empty());
    }

    #[test]
    fn control_replies_take_a_small_chunk_then_share_the_tail() {
        let pool = Rc::new(ChunkPool::new(8));
        let mut o = Outbound::new(Rc::clone(&pool));
        o.append_control_with(6, |v| v.extend_from_slice(b"PONG\r\n"));
        assert_eq!(o.chunks.len(), 1);
        assert!(o.chunks[0].bytes().len() <= CONTROL_CHUNK_BYTES);
        assert!(matches!(&o.chunks[0], Segment::Chunk(c) if c.capacity() < OUTBOUND_CHUNK_BYTES));
        // A delivery fills the small chunk's room, then spills into a pooled chunk.
        let msg = vec![b'x'; CONTROL_CHUNK_BYTES];
        o.append(&msg);
        assert_eq!(o.chunks.len(), 2);
        o.append_control_with(6, |v| v.extend_from_slice(b"PONG\r\n"));
        assert_eq!(
            o.chunks.len(),
            2,
            "a reply goes into a tail chunk with room"
        );
        let mut all = b"PONG\r\n".to_vec();
        all.extend_from_slice(&msg);
        all.extend_from_slice(b"PONG\r\n");
        assert_eq!(o.to_vec(), all);
        o.consume(o.pending_bytes());
        // Only the pooled chunk goes back to the pool; the small one is freed.
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn clear_drops_everything_pending() {
        let mut o = outbound();
        o.append(b"abc");
        o.append_shared(Bytes::from_static(b"def"));
        o.clear();
        assert!(o.is_empty());
        assert!(o.to_vec().is_empty());
        assert!(o.front().is_empty());
    }

    #[test]
    fn shared_blocks_interleave_with_chunks_and_are_never_written_into() {
        let mut o = outbound();
        let block = Bytes::from(b"<shared run>".to_vec());
        o.append(b"MSG 1\r\n");
        o.append_shared(block.clone());
        // Appends after a shared block start a new chunk rather than touch the block.
        o.append(b"PONG\r\n");
        o.append_shared(block.clone());
        assert_eq!(o.pending_bytes(), 7 + 12 + 6 + 12);
        assert_eq!(
            o.own_bytes(),
            7 + 6,
            "shared blocks are not this connection's own"
        );
        let all = b"MSG 1\r\n<shared run>PONG\r\n<shared run>".to_vec();
        assert_eq!(o.to_vec(), all);
        assert_eq!(iov_bytes(&o, usize::MAX), all);
        assert_eq!(iov_bytes(&o, 10), &all[..10]);
        // Partly written inside the first block.
        o.consume(9);
        assert_eq!(o.own_bytes(), 6, "the first chunk is written out");
        assert_eq!(o.to_vec(), &all[9..]);
        assert_eq!(o.front(), b"hared run>");
        o.consume(10);
        assert_eq!(o.to_vec(), b"PONG\r\n<shared run>");
        o.consume(o.pending_bytes());
        assert!(o.is_empty());
        assert_eq!(o.own_bytes(), 0);
        // Only this test's handle is left: the outbound released its references.
        assert!(block.is_unique());
    }

    #[test]
    fn append_with_encodes_in_place() {
        let mut o = outbound();
        o.append_with(32, |v| v.extend_from_slice(b"MSG a 1 0\r\n"));
        assert_eq!(o.pending_bytes(), 11);
        assert_eq!(o.to_vec(), b"MSG a 1 0\r\n");
    }
}
