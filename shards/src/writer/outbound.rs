//! One connection's pending output: a chain of pooled chunks that deliveries append to,
//! and of byte blocks shared with other connections (a run's frames, see `fanout::run`),
//! which the writer drains from the front. Its size in bytes is what decides a slow consumer.

use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;

use crate::limits::{OUTBOUND_CHUNK_BYTES, WRITE_IOVECS_MAX};
use crate::writer::pool::ChunkPool;

/// One piece of pending output.
#[derive(Debug)]
pub enum Segment {
    /// A pooled chunk that deliveries append to.
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
    /// Bytes appended and not yet written, including a chunk lent to the writer.
    pending: usize,
    /// The front chunk is lent to the writer while it waits for the socket.
    lent: bool,
    /// `clear` ran while a chunk was lent: drop it when it comes back.
    lent_discarded: bool,
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
            lent: false,
            lent_discarded: false,
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

    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Appends raw bytes, spilling into new chunks as needed.
    pub fn append(&mut self, mut bytes: &[u8]) {
        self.pending += bytes.len();
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
        self.pending += chunk.len() - before;
    }

    fn tail_with_room(&mut self, room: usize) -> &mut Vec<u8> {
        // The front chunk may be lent out; never append behind the writer's back into it.
        let usable = match self.chunks.back() {
            Some(Segment::Chunk(last)) => last.capacity() - last.len() >= room,
            _ => false,
        };
        if !usable {
            self.chunks.push_back(Segment::Chunk(self.pool.take()));
        }
        match self.chunks.back_mut() {
            Some(Segment::Chunk(last)) => last,
            // Unreachable: a chunk was pushed just above when the tail was not one.
            _ => unreachable!("the tail is a chunk"),
        }
    }

    /// Fills `iov` with the pending bytes from the front, up to `bytes_max` in total.
    /// Returns how many entries were filled.
    pub fn iovecs(&self, iov: &mut [libc::iovec; WRITE_IOVECS_MAX], bytes_max: usize) -> usize {
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
            iov[n] = libc::iovec {
                iov_base: chunk[start..].as_ptr() as *mut libc::c_void,
                iov_len: len,
            };
            total += len;
            n += 1;
        }
        n
    }

    /// Marks `written` bytes from the front as sent and recycles finished chunks.
    pub fn consume(&mut self, mut written: usize) {
        debug_assert!(!self.lent, "consume while the front chunk is lent");
        self.written_total += written as u64;
        self.pending -= written.min(self.pending);
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.head;
            if written < left {
                self.head += written;
                return;
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

    /// Lends the front chunk and its written offset to the writer while it awaits the
    /// socket, so appends can continue meanwhile. Returns None when nothing is pending.
    pub fn lend_front(&mut self) -> Option<(Segment, usize)> {
        if self.lent || self.pending == 0 {
            return None;
        }
        let chunk = self.chunks.pop_front()?;
        let head = std::mem::take(&mut self.head);
        self.lent = true;
        Some((chunk, head))
    }

    /// Takes back the lent chunk, `written` more bytes of it having been sent.
    pub fn return_front(&mut self, chunk: Segment, head: usize, written: usize) {
        self.lent = false;
        self.written_total += written as u64;
        if std::mem::take(&mut self.lent_discarded) {
            self.recycle(chunk);
            return;
        }
        self.pending -= written.min(self.pending);
        let new_head = head + written;
        if new_head >= chunk.bytes().len() {
            self.recycle(chunk);
        } else {
            self.chunks.push_front(chunk);
            self.head = new_head;
        }
    }

    /// Drops everything pending (a slow consumer's backlog), returning chunks to the pool.
    pub fn clear(&mut self) {
        while let Some(c) = self.chunks.pop_front() {
            self.recycle(c);
        }
        self.head = 0;
        self.pending = 0;
        if self.lent {
            self.lent_discarded = true;
        }
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
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; WRITE_IOVECS_MAX];
        let n = o.iovecs(&mut iov, max);
        let mut v = Vec::new();
        for e in &iov[..n] {
            // SAFETY: the iovecs point into `o`'s live chunks, borrowed for this call.
            v.extend_from_slice(unsafe {
                std::slice::from_raw_parts(e.iov_base as *const u8, e.iov_len)
            });
        }
        v
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
        o.consume(o.pending_bytes());
        assert!(o.is_empty());
        assert!(o.to_vec().is_empty());
    }

    #[test]
    fn lent_front_keeps_order_with_new_appends() {
        let mut o = outbound();
        o.append(b"hello ");
        let (chunk, head) = o.lend_front().expect("pending");
        assert!(o.lend_front().is_none());
        o.append(b"world");
        // Writer managed to send 3 bytes of the lent chunk.
        o.return_front(chunk, head, 3);
        assert_eq!(o.to_vec(), b"lo world");
        assert_eq!(o.pending_bytes(), 8);
    }

    #[test]
    fn clear_while_lent_discards_the_lent_chunk() {
        let mut o = outbound();
        o.append(b"abc");
        let (chunk, head) = o.lend_front().expect("pending");
        o.append(b"def");
        o.clear();
        o.return_front(chunk, head, 1);
        assert!(o.is_empty());
        assert!(o.to_vec().is_empty());
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
        let all = b"MSG 1\r\n<shared run>PONG\r\n<shared run>".to_vec();
        assert_eq!(o.to_vec(), all);
        assert_eq!(iov_bytes(&o, usize::MAX), all);
        assert_eq!(iov_bytes(&o, 10), &all[..10]);
        // Partly written inside the first block, then lent and returned.
        o.consume(9);
        assert_eq!(o.to_vec(), &all[9..]);
        let (seg, head) = o.lend_front().expect("pending");
        assert_eq!(&seg.bytes()[head..], b"hared run>");
        o.return_front(seg, head, 10);
        assert_eq!(o.to_vec(), b"PONG\r\n<shared run>");
        o.consume(o.pending_bytes());
        assert!(o.is_empty());
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
