//! Entry ids: owns where each stored entry sits, so one entry is removed in O(1) however many
//! entries share its node. Input: a new entry's position in its node's list; output: an
//! [`EntryId`] that the caller keeps and hands back to remove the entry.
//!
//! A node keeps its values in a plain `Vec<V>` (a match extends from that slice) and the id
//! of each value in a parallel `Vec<EntryId>` ([`EntryList`]). Removal is a `swap_remove` of
//! both, and the [`Slab`] (one slot per id: its generation and its position in its node's
//! list) is told where the moved last element went. Freed slots are reused; every free bumps
//! the slot's generation, so a stale id is recognised instead of removing someone else's
//! entry. Trailing free slots are dropped, so the slab shrinks when the newest entries leave.

use super::count_work;

/// Opaque, `Copy` handle of one stored entry, returned by `Sublist::insert`.
///
/// An id stays unique among the ids one sublist hands out until its slot has been reused
/// 2^32 times (the generation is a wrapping `u32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryId {
    slot: u32,
    generation: u32,
}

/// One id's slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Generation of the id that owns (or last owned) this slot; bumped on every free.
    generation: u32,
    /// Index into the owning node's list; `None` while the slot is free.
    position: Option<u32>,
}

/// Remembers, for every live id, where in its node's list the entry sits.
#[derive(Debug, Default)]
pub(super) struct Slab {
    slots: Vec<Slot>,
    /// Free slots, reused last-in first-out. An index at or past `slots.len()` names a slot
    /// dropped from the tail after it was freed; it is skipped when popped.
    free: Vec<u32>,
    /// Live ids.
    live: usize,
    /// Generation for a slot created at the end: above the generation of every slot dropped
    /// from the tail, so an id of a dropped slot never matches its re-creation.
    generation_floor: u32,
}

/// Below this capacity a vector keeps its memory when it shrinks.
const KEEP_CAPACITY_MAX: usize = 16;

impl Slab {
    /// Number of live ids.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// A new id for an entry stored at `position` of its node's list.
    fn allocate(&mut self, position: usize) -> EntryId {
        let position = to_u32(position);
        self.live += 1;
        while let Some(slot) = self.free.pop() {
            let Some(entry) = self.slots.get_mut(slot as usize) else {
                continue; // dropped from the tail since it was freed
            };
            assert!(entry.position.is_none(), "free list names a live slot");
            entry.position = Some(position);
            return EntryId {
                slot,
                generation: entry.generation,
            };
        }
        // The free list is empty, so no stale index can name the slot created here.
        let slot = to_u32(self.slots.len());
        let generation = self.generation_floor;
        self.slots.push(Slot {
            generation,
            position: Some(position),
        });
        EntryId { slot, generation }
    }

    /// Where `id` sits in its node's list; `None` if `id` is not live (removed, stale, or
    /// never handed out by this slab).
    pub(super) fn position(&self, id: EntryId) -> Option<usize> {
        let slot = self.slots.get(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.position.map(|p| p as usize)
    }

    /// Records that live `id` moved to `position` of the same list.
    fn moved(&mut self, id: EntryId, position: usize) {
        let slot = self.slots.get_mut(id.slot as usize);
        let slot = slot.filter(|s| s.generation == id.generation && s.position.is_some());
        let Some(slot) = slot else {
            panic!("a node lists {id:?}, which is not live");
        };
        slot.position = Some(to_u32(position));
    }

    /// Frees live `id`.
    fn release(&mut self, id: EntryId) {
        let at = id.slot as usize;
        let Some(slot) = self.slots.get_mut(at) else {
            panic!("released {id:?} past the end of the slab");
        };
        assert!(
            slot.generation == id.generation && slot.position.is_some(),
            "released {id:?}, which is not live"
        );
        slot.generation = slot.generation.wrapping_add(1);
        slot.position = None;
        self.live -= 1;
        if at + 1 == self.slots.len() {
            self.drop_free_tail();
        } else {
            self.free.push(id.slot);
        }
    }

    /// Drops the free slots at the end and gives memory back once little is used.
    fn drop_free_tail(&mut self) {
        while let Some(last) = self.slots.last().filter(|s| s.position.is_none()) {
            self.generation_floor = self.generation_floor.max(last.generation);
            self.slots.pop();
            count_work(1);
        }
        // Every free slot below the end is listed once; the rest of `free` is stale.
        let listed = self.slots.len() - self.live;
        if self.free.len() > 2 * listed + KEEP_CAPACITY_MAX {
            count_work(self.free.len());
            let end = self.slots.len();
            self.free.retain(|&slot| (slot as usize) < end);
        }
        shrink_vec(&mut self.slots);
        shrink_vec(&mut self.free);
    }

    /// Checks the slab's own invariants (tests only).
    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        let live = self.slots.iter().filter(|s| s.position.is_some()).count();
        assert_eq!(live, self.live, "live count");
        if let Some(last) = self.slots.last() {
            assert!(last.position.is_some(), "a free slot at the tail");
        }
        let mut listed = vec![false; self.slots.len()];
        for &slot in &self.free {
            let Some(seen) = listed.get_mut(slot as usize) else {
                continue;
            };
            assert!(!*seen, "slot {slot} listed twice as free");
            *seen = true;
            assert!(
                self.slots[slot as usize].position.is_none(),
                "live slot listed as free"
            );
        }
        assert_eq!(
            listed.iter().filter(|&&l| l).count(),
            self.slots.len() - self.live
        );
    }

    /// Slots in use, live or free (tests only).
    #[cfg(test)]
    pub(super) fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

/// Positions and slots are `u32` to keep ids small; more entries than that is our bug.
fn to_u32(n: usize) -> u32 {
    let Ok(n) = u32::try_from(n) else {
        panic!("sublist entry index {n} does not fit in u32");
    };
    n
}

/// Gives a vector's memory back once it holds a quarter of its capacity or less.
fn shrink_vec<T>(values: &mut Vec<T>) {
    if values.is_empty() {
        *values = Vec::new();
    } else if values.capacity() > KEEP_CAPACITY_MAX && values.len() * 4 <= values.capacity() {
        count_work(values.len());
        values.shrink_to(values.len() * 2);
    }
}

/// The entries of one node's plain list or of one of its queue groups: values in a plain
/// vector for matching, their ids alongside.
#[derive(Debug)]
pub(super) struct EntryList<V> {
    values: Vec<V>,
    /// `ids[i]` is the id of `values[i]`.
    ids: Vec<EntryId>,
}

impl<V> Default for EntryList<V> {
    fn default() -> Self {
        EntryList {
            values: Vec::new(),
            ids: Vec::new(),
        }
    }
}

impl<V> EntryList<V> {
    pub(super) fn values(&self) -> &[V] {
        &self.values
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends `value` as a new entry; returns its id.
    pub(super) fn push(&mut self, value: V, slab: &mut Slab) -> EntryId {
        let id = slab.allocate(self.values.len());
        self.values.push(value);
        self.ids.push(id);
        id
    }

    /// Removes entry `id`, which the slab says sits at `position`; `None` (and no change) if
    /// this list does not hold it there.
    pub(super) fn take(&mut self, id: EntryId, position: usize, slab: &mut Slab) -> Option<V> {
        if self.ids.get(position) != Some(&id) {
            return None;
        }
        count_work(1);
        let value = self.values.swap_remove(position);
        self.ids.swap_remove(position);
        if let Some(&moved) = self.ids.get(position) {
            slab.moved(moved, position);
        }
        slab.release(id);
        shrink_vec(&mut self.values);
        shrink_vec(&mut self.ids);
        Some(value)
    }

    /// Checks that every id here is live and sits where the slab says (tests only).
    #[cfg(test)]
    pub(super) fn check_invariants(&self, slab: &Slab) {
        assert_eq!(
            self.values.len(),
            self.ids.len(),
            "values and ids differ in length"
        );
        for (at, &id) in self.ids.iter().enumerate() {
            assert_eq!(
                slab.position(id),
                Some(at),
                "{id:?} is not where the slab says"
            );
        }
    }
}
