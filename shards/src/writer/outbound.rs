//! One connection's pending output: a chain of pooled chunks that deliveries append to
//! and the writer drains from the front. Its size in bytes is what decides a slow consumer.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::limits::{OUTBOUND_CHUNK_BYTES, WRITE_IOVECS_MAX};
use crate::writer::pool::ChunkPool;

/// Pending outbound bytes of one connection.
#[derive(Debug)]
pub struct Outbound {
    chunks: VecDeque<Vec<u8>>,
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
            Some(last) => last.capacity() - last.len() >= room,
            None => false,
        };
        if !usable {
            self.chunks.push_back(self.pool.take());
        }
        // Just ensured non-empty; `push_back` above guarantees a tail exists.
        let last = self.chunks.len() - 1;
        &mut self.chunks[last]
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
            let left = front.len() - self.head;
            if written < left {
                self.head += written;
                return;
            }
            written -= left;
            self.head = 0;
            if let Some(done) = self.chunks.pop_front() {
                self.pool.give(done);
            }
        }
        // A fully drained tail chunk is recycled as well, so idle connections hold none.
        if self.pending == 0 {
            self.head = 0;
            while let Some(c) = self.chunks.pop_front() {
                self.pool.give(c);
            }
        }
    }

    /// Lends the front chunk and its written offset to the writer while it awaits the
    /// socket, so appends can continue meanwhile. Returns None when nothing is pending.
    pub fn lend_front(&mut self) -> Option<(Vec<u8>, usize)> {
        if self.lent || self.pending == 0 {
            return None;
        }
        let chunk = self.chunks.pop_front()?;
        let head = std::mem::take(&mut self.head);
        self.lent = true;
        Some((chunk, head))
    }

    /// Takes back the lent chunk, `written` more bytes of it having been sent.
    pub fn return_front(&mut self, chunk: Vec<u8>, head: usize, written: usize) {
        self.lent = false;
        self.written_total += written as u64;
        if std::mem::take(&mut self.lent_discarded) {
            self.pool.give(chunk);
            return;
        }
        self.pending -= written.min(self.pending);
        let new_head = head + written;
        if new_head >= chunk.len() {
            self.pool.give(chunk);
        } else {
            self.chunks.push_front(chunk);
            self.head = new_head;
        }
    }

    /// Drops everything pending (a slow consumer's backlog), returning chunks to the pool.
    pub fn clear(&mut self) {
        while let Some(c) = self.chunks.pop_front() {
            self.pool.give(c);
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
            v.extend_from_slice(&c[if i == 0 { self.head } else { 0 }..]);
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
    fn append_with_encodes_in_place() {
        let mut o = outbound();
        o.append_with(32, |v| v.extend_from_slice(b"MSG a 1 0\r\n"));
        assert_eq!(o.pending_bytes(), 11);
        assert_eq!(o.to_vec(), b"MSG a 1 0\r\n");
    }
}
