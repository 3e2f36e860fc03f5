//! A per-shard free list of outbound chunks, so steady traffic reuses the same pages
//! instead of growing, freeing and re-zeroing large buffers.

use std::cell::RefCell;

use crate::limits::OUTBOUND_CHUNK_BYTES;

/// Recycles `OUTBOUND_CHUNK_BYTES` buffers; keeps at most `chunks_max` idle ones.
#[derive(Debug)]
pub struct ChunkPool {
    free: RefCell<Vec<Vec<u8>>>,
    chunks_max: usize,
}

impl ChunkPool {
    pub fn new(chunks_max: usize) -> Self {
        ChunkPool {
            free: RefCell::new(Vec::with_capacity(chunks_max)),
            chunks_max,
        }
    }

    /// An empty chunk with `OUTBOUND_CHUNK_BYTES` of capacity.
    pub fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(OUTBOUND_CHUNK_BYTES))
    }

    /// Returns a chunk for reuse; chunks over the pool's bound (or oversized) are freed.
    pub fn give(&self, mut chunk: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        if free.len() < self.chunks_max && chunk.capacity() == OUTBOUND_CHUNK_BYTES {
            chunk.clear();
            free.push(chunk);
        }
    }

    /// Idle chunks held (for metrics and tests).
    pub fn idle(&self) -> usize {
        self.free.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_and_stays_bounded() {
        let pool = ChunkPool::new(2);
        let a = pool.take();
        let b = pool.take();
        let c = pool.take();
        let a_ptr = a.as_ptr();
        pool.give(a);
        pool.give(b);
        pool.give(c);
        assert_eq!(pool.idle(), 2);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), OUTBOUND_CHUNK_BYTES);
        let other = pool.take();
        assert!(
            other.as_ptr() == a_ptr || again.as_ptr() == a_ptr,
            "a given-back chunk is reused"
        );
    }
}
