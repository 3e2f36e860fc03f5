//! A connection's read buffer: starts small, grows on demand up to one whole operation,
//! and hands consumed bytes either back for reuse or, frozen, to the cross-shard ring
//! (so forwarded payloads are shared by reference, not copied).

use std::io;

use bytes::{Buf, Bytes, BytesMut};

use crate::conn::Transport;
use crate::limits::{READ_BUFFER_BYTES_INITIAL, READ_BYTES_PER_TURN};

/// Bytes read from a socket and not yet consumed by the parser.
#[derive(Debug)]
pub struct ReadBuf {
    buf: BytesMut,
    /// How much room the next read gets: doubles (up to [`READ_BYTES_PER_TURN`]) each time a
    /// read fills it, so a busy publisher is read in large chunks and an idle client stays small.
    read_size: usize,
}

impl Default for ReadBuf {
    fn default() -> Self {
        ReadBuf {
            buf: BytesMut::with_capacity(READ_BUFFER_BYTES_INITIAL),
            read_size: READ_BUFFER_BYTES_INITIAL,
        }
    }
}

impl ReadBuf {
    pub fn data(&self) -> &[u8] {
        &self.buf
    }

    /// Reads once from `transport`. `needed_bytes` is the size of the operation being
    /// received if the parser knows it (so a large payload gets room at once).
    /// Returns 0 at end of stream.
    pub async fn read_from(
        &mut self,
        transport: &impl Transport,
        needed_bytes: usize,
    ) -> io::Result<usize> {
        let len = self.buf.len();
        let want = self.read_size.max(needed_bytes.saturating_sub(len));
        // Room for a full read: consumed bytes at the front are reclaimed, or a new buffer
        // is taken when frozen spans still share this one.
        self.buf.reserve(want);
        self.buf.resize(len + want, 0);
        let result = transport.read(&mut self.buf[len..]).await;
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(len + n);
        if n == want && self.read_size < READ_BYTES_PER_TURN {
            self.read_size = (self.read_size * 2).min(READ_BYTES_PER_TURN);
        }
        result
    }

    /// Drops `n` consumed bytes, keeping the buffer for reuse. A buffer grown for a
    /// large payload is released once empty, so idle connections stay small.
    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        if self.buf.is_empty() && self.buf.capacity() > 2 * READ_BYTES_PER_TURN {
            self.buf = BytesMut::with_capacity(READ_BUFFER_BYTES_INITIAL);
            self.read_size = READ_BUFFER_BYTES_INITIAL;
        }
    }

    /// Splits off the first `n` consumed bytes as shared, immutable `Bytes`.
    pub fn freeze_consumed(&mut self, n: usize) -> Bytes {
        self.buf.split_to(n).freeze()
    }
}
