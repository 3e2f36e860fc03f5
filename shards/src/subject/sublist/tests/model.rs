//! Model-based runs: random inserts, removes and matches checked against a plain list of
//! entries matched one by one with [`pattern_matches`], the reference matcher.

use super::*;
use crate::subject::pattern_matches;

/// One entry of the model: what was inserted and the id it got.
struct Entry {
    pattern: Vec<u8>,
    queue: Option<Vec<u8>>,
    value: u32,
    id: EntryId,
}

/// The reference: every live entry in a plain list, plus some ids already removed.
#[derive(Default)]
struct Model {
    live: Vec<Entry>,
    /// Removed entries (their ids are stale), the most recent last; bounded.
    removed: Vec<Entry>,
}

/// Stale ids the model keeps to try again.
const REMOVED_KEPT_MAX: usize = 64;

impl Model {
    fn insert(
        &mut self,
        sl: &mut Sublist<u32>,
        pattern: Vec<u8>,
        queue: Option<Vec<u8>>,
        value: u32,
    ) {
        let id = sl.insert(&pattern, queue.as_deref(), value);
        assert!(
            self.live.iter().all(|e| e.id != id),
            "{id:?} handed out twice"
        );
        self.live.push(Entry {
            pattern,
            queue,
            value,
            id,
        });
    }

    /// Removes the live entry at `at` from the sublist and the model.
    fn remove(&mut self, sl: &mut Sublist<u32>, at: usize) {
        let e = self.live.swap_remove(at);
        remove_ok(sl, &e.pattern, e.queue.as_deref(), e.id, e.value);
        if self.removed.len() == REMOVED_KEPT_MAX {
            self.removed.remove(0);
        }
        self.removed.push(e);
    }

    /// Checks one subject's match against the model.
    fn check(&self, sl: &mut Sublist<u32>, subject: &[u8]) {
        let m = sl.matches(subject);
        let mut want_plain: Vec<u32> = Vec::new();
        let mut want_queues: BTreeMap<Vec<u8>, Vec<u32>> = BTreeMap::new();
        for e in self
            .live
            .iter()
            .filter(|e| pattern_matches(&e.pattern, subject))
        {
            match &e.queue {
                None => want_plain.push(e.value),
                Some(name) => want_queues.entry(name.clone()).or_default().push(e.value),
            }
        }
        want_plain.sort();
        want_queues.values_mut().for_each(|v| v.sort());
        let shown = String::from_utf8_lossy(subject);
        assert_eq!(plain_sorted(&m), want_plain, "plain for {shown}");
        assert_eq!(queues_sorted(&m), want_queues, "queues for {shown}");
    }
}

fn random_subject(rng: &mut XorShift, wildcards: bool) -> Vec<u8> {
    const LITERALS: [&str; 3] = ["a", "b", "cc"];
    let len = 1 + rng.below(4);
    let mut out = Vec::new();
    for i in 0..len {
        if i > 0 {
            out.push(b'.');
        }
        let pick = rng.below(if wildcards { 10 } else { 3 });
        let token = match pick {
            0..=2 => LITERALS[pick],
            3..=5 => "*",
            6 if i + 1 == len => ">",
            _ => LITERALS[pick % 3],
        };
        out.extend_from_slice(token.as_bytes());
    }
    out
}

const QUEUES: [&str; 3] = ["q1", "q2", "Q1"];

fn random_queue(rng: &mut XorShift) -> Option<Vec<u8>> {
    match rng.below(3) {
        0 => Some(QUEUES[rng.below(3)].as_bytes().to_vec()),
        _ => None,
    }
}

/// A stale id, under its own place or a random one, must come back `None`.
fn remove_stale(sl: &mut Sublist<u32>, model: &Model, rng: &mut XorShift) {
    let Some(e) = model.removed.get(rng.below(model.removed.len().max(1))) else {
        return;
    };
    let before = sl.len();
    if rng.below(2) == 0 {
        assert_eq!(sl.remove(&e.pattern, e.queue.as_deref(), e.id), None);
    } else {
        let pattern = random_subject(rng, true);
        let queue = random_queue(rng);
        assert_eq!(sl.remove(&pattern, queue.as_deref(), e.id), None);
    }
    assert_eq!(sl.len(), before);
}

fn property_run(seed: u64, cache_entries_max: usize) {
    let mut rng = XorShift(seed);
    let mut sl = Sublist::new(cache_entries_max);
    let mut model = Model::default();
    for step in 0..3_000 {
        match rng.below(10) {
            0..=3 => {
                let pattern = random_subject(&mut rng, true);
                let queue = random_queue(&mut rng);
                // A small value range makes exact duplicates common.
                let value = rng.below(20) as u32;
                model.insert(&mut sl, pattern, queue, value);
            }
            4 | 5 if !model.live.is_empty() => {
                let at = rng.below(model.live.len());
                model.remove(&mut sl, at);
            }
            6 => remove_stale(&mut sl, &model, &mut rng),
            // Match (twice, so cache hits are compared too).
            _ => {
                let subject = random_subject(&mut rng, false);
                model.check(&mut sl, &subject);
                model.check(&mut sl, &subject);
            }
        }
        assert_eq!(sl.len(), model.live.len());
        assert!(sl.cache_len() <= cache_entries_max);
        if step % 100 == 0 {
            sl.check_invariants();
        }
    }
    // Every short literal subject over the alphabet.
    let mut all: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..4 {
        let mut longer = Vec::new();
        for prefix in &all {
            for token in ["a", "b", "cc", "d"] {
                let mut s = prefix.clone();
                if !s.is_empty() {
                    s.push(b'.');
                }
                s.extend_from_slice(token.as_bytes());
                longer.push(s);
            }
        }
        for s in &longer {
            model.check(&mut sl, s);
        }
        all = longer;
    }
    // Drain and check the trie is back to its root.
    while !model.live.is_empty() {
        model.remove(&mut sl, model.live.len() - 1);
    }
    assert!(sl.is_empty());
    assert_eq!(sl.node_count(), 1);
    sl.check_invariants();
}

#[test]
fn property_matches_agree_with_the_reference_matcher() {
    for seed in 1..=8u64 {
        property_run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 8);
    }
    property_run(0xDEAD_BEEF, 0);
    property_run(0x1234_5678, 1);
    property_run(0xC0FF_EE00, 4096);
}

/// Published subjects the churn run checks after every operation.
const CHURN_PROBES: [&str; 6] = ["a.b", "a.c", "a.b.c", "a", "b.b", "c"];

/// Many duplicates on few subjects: `crowd` subscribers on `a.b` (values 0..5, plain and
/// queue), a few on wildcards, then random leaves and joins, every probe checked after every
/// operation.
fn churn_run(seed: u64, cache_entries_max: usize, crowd: usize) {
    const PATTERNS: [&str; 5] = ["a.b", "a.*", "a.>", "*.b", "c"];
    let mut rng = XorShift(seed);
    let mut sl = Sublist::new(cache_entries_max);
    let mut model = Model::default();
    let check_all = |sl: &mut Sublist<u32>, model: &Model| {
        for probe in CHURN_PROBES {
            model.check(sl, probe.as_bytes());
        }
    };
    for i in 0..crowd {
        let queue = (i % 4 == 0).then(|| b"workers".to_vec());
        model.insert(&mut sl, b"a.b".to_vec(), queue, (i % 5) as u32);
        check_all(&mut sl, &model);
    }
    for _ in 0..crowd / 10 {
        let pattern = PATTERNS[rng.below(PATTERNS.len())].as_bytes().to_vec();
        model.insert(
            &mut sl,
            pattern,
            random_queue(&mut rng),
            rng.below(5) as u32,
        );
    }
    check_all(&mut sl, &model);
    // Mostly leaves, so the crowd drains in random order; some joins and stale removes.
    while !model.live.is_empty() {
        match rng.below(10) {
            0 => {
                let pattern = PATTERNS[rng.below(PATTERNS.len())].as_bytes().to_vec();
                model.insert(
                    &mut sl,
                    pattern,
                    random_queue(&mut rng),
                    rng.below(5) as u32,
                );
            }
            1 => remove_stale(&mut sl, &model, &mut rng),
            _ => {
                let at = rng.below(model.live.len());
                model.remove(&mut sl, at);
            }
        }
        assert_eq!(sl.len(), model.live.len());
        assert!(sl.cache_len() <= cache_entries_max);
        check_all(&mut sl, &model);
    }
    sl.check_invariants();
    assert_eq!(sl.node_count(), 1);
}

#[test]
fn churn_of_many_duplicates_on_few_subjects_with_cache() {
    churn_run(0x5EED_0001, 4096, 500);
    churn_run(0x5EED_0002, 3, 200);
}

#[test]
fn churn_of_many_duplicates_on_few_subjects_without_cache() {
    churn_run(0x5EED_0003, 0, 500);
}
