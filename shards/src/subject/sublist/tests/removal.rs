//! Removal by id: exactly the named entry goes, a live id named under the wrong subject or
//! queue changes nothing, and empty nodes are pruned back to the root.

use super::*;

#[test]
fn remove_removes_exactly_one_duplicate() {
    let mut sl = Sublist::new(64);
    let p1 = sl.insert(b"foo.bar", NOQ, 1);
    let p2 = sl.insert(b"foo.bar", NOQ, 1);
    let g1 = sl.insert(b"foo.bar", q("g"), 1);
    let g2 = sl.insert(b"foo.bar", q("g"), 1);
    let ids = [p1, p2, g1, g2];
    for (i, a) in ids.iter().enumerate() {
        assert!(ids[i + 1..].iter().all(|b| a != b), "ids must be distinct");
    }
    assert_eq!(sl.len(), 4);
    remove_ok(&mut sl, b"foo.bar", NOQ, p1, 1);
    assert_eq!(sl.len(), 3);
    let m = sl.matches(b"foo.bar");
    assert_eq!(plain_sorted(&m), [1]);
    assert_eq!(queues_sorted(&m), groups(&[("g", &[1, 1])]));
    remove_ok(&mut sl, b"foo.bar", q("g"), g2, 1);
    let m = sl.matches(b"foo.bar");
    assert_eq!(plain_sorted(&m), [1]);
    assert_eq!(queues_sorted(&m), groups(&[("g", &[1])]));
    assert_eq!(sl.len(), 2);
    sl.check_invariants();
    // The remaining duplicates keep working ids.
    remove_ok(&mut sl, b"foo.bar", NOQ, p2, 1);
    remove_ok(&mut sl, b"foo.bar", q("g"), g1, 1);
    assert!(sl.is_empty());
    assert_eq!(sl.node_count(), 1);
}

#[test]
fn remove_returns_the_value_of_the_id_named() {
    let mut sl = Sublist::new(64);
    let ids: Vec<(EntryId, u32)> = (10..20).map(|v| (sl.insert(b"a.b", NOQ, v), v)).collect();
    // Remove from the middle, the front and the back; swaps must not mix up values.
    for at in [4usize, 0, 7, 9, 1, 2, 8, 3, 6, 5] {
        let (id, value) = ids[at];
        remove_ok(&mut sl, b"a.b", NOQ, id, value);
        sl.check_invariants();
        let mut left: Vec<u32> = plain_of(&mut sl, "a.b");
        left.sort();
        assert!(!left.contains(&value));
    }
    assert!(sl.is_empty());
}

/// Wrong subjects and queues for the live entries `foo.bar` (plain, id `plain`) and
/// `foo.bar` queue `g` (id `grouped`): a prefix, a longer subject, wildcards, other queues.
fn wrong_places(plain: EntryId, grouped: EntryId) -> Vec<(&'static [u8], Q<'static>, EntryId)> {
    vec![
        (b"foo.baz", NOQ, plain),
        (b"foo", NOQ, plain),
        (b"foo.bar.baz", NOQ, plain),
        (b"foo.*", NOQ, plain),
        (b"foo.>", NOQ, plain),
        (b"foo.bar", Some(b"g"), plain),
        (b"foo.bar", Some(b"h"), grouped),
        (b"foo.bar", NOQ, grouped),
    ]
}

/// In release builds a live id named in the wrong place is refused and nothing changes.
#[cfg(not(debug_assertions))]
#[test]
fn live_id_in_the_wrong_place_changes_nothing() {
    let mut sl = Sublist::new(64);
    let plain = sl.insert(b"foo.bar", NOQ, 1);
    let grouped = sl.insert(b"foo.bar", q("g"), 2);
    let cached = sl.matches(b"foo.bar");
    let before = sl.node_count();
    for (subject, queue, id) in wrong_places(plain, grouped) {
        assert_eq!(sl.remove(subject, queue, id), None);
    }
    assert_eq!(sl.len(), 2);
    assert_eq!(sl.node_count(), before);
    assert!(std::rc::Rc::ptr_eq(&cached, &sl.matches(b"foo.bar")));
    sl.check_invariants();
    remove_ok(&mut sl, b"foo.bar", NOQ, plain, 1);
    remove_ok(&mut sl, b"foo.bar", q("g"), grouped, 2);
}

/// In debug builds a live id named in the wrong place is our bug, and asserts.
#[cfg(debug_assertions)]
#[test]
fn live_id_in_the_wrong_place_asserts() {
    let mut scratch = Sublist::new(0);
    let any = scratch.insert(b"x", NOQ, 0u32);
    for at in 0..wrong_places(any, any).len() {
        let outcome = std::panic::catch_unwind(move || {
            let mut sl = Sublist::new(64);
            let plain = sl.insert(b"foo.bar", NOQ, 1);
            let grouped = sl.insert(b"foo.bar", q("g"), 2);
            let (subject, queue, id) = wrong_places(plain, grouped)[at];
            sl.remove(subject, queue, id)
        });
        assert!(outcome.is_err(), "wrong place {at} did not assert");
    }
}

#[test]
fn removing_everything_prunes_back_to_the_root() {
    let mut sl = Sublist::new(64);
    let subs: &[(&[u8], Q<'_>, u32)] = &[
        (b"a", NOQ, 1),
        (b"a.b", NOQ, 2),
        (b"a.b.c.d.e", NOQ, 3),
        (b"a.*.c", q("g"), 4),
        (b"a.>", NOQ, 5),
        (b"*", NOQ, 6),
        (b">", q("h"), 7),
        (b"x.y.z", NOQ, 8),
        (b"x.y.z", NOQ, 8),
        (b"*.*.>", NOQ, 9),
    ];
    let ids: Vec<EntryId> = subs
        .iter()
        .map(|&(subject, queue, value)| sl.insert(subject, queue, value))
        .collect();
    assert_eq!(sl.len(), subs.len());
    assert!(sl.node_count() > 1);
    sl.check_invariants();
    // Remove in an order that leaves parents with and without subscriptions.
    for (&(subject, queue, value), &id) in subs.iter().zip(&ids).rev() {
        remove_ok(&mut sl, subject, queue, id, value);
        sl.check_invariants();
    }
    assert_eq!(sl.len(), 0);
    assert!(sl.is_empty());
    assert_eq!(sl.node_count(), 1);
    // And in insertion order.
    let ids: Vec<EntryId> = subs
        .iter()
        .map(|&(subject, queue, value)| sl.insert(subject, queue, value))
        .collect();
    for (&(subject, queue, value), &id) in subs.iter().zip(&ids) {
        remove_ok(&mut sl, subject, queue, id, value);
        sl.check_invariants();
    }
    assert_eq!(sl.node_count(), 1);
    assert!(sl.matches(b"a.b").is_empty());
}

#[test]
fn pruning_keeps_nodes_that_still_hold_something() {
    let mut sl = Sublist::new(0);
    let a = sl.insert(b"a", NOQ, 1);
    let abc = sl.insert(b"a.b.c", NOQ, 2);
    assert_eq!(sl.node_count(), 4);
    remove_ok(&mut sl, b"a.b.c", NOQ, abc, 2);
    // "a" holds a subscription, so only "b" and "c" go.
    assert_eq!(sl.node_count(), 2);
    sl.check_invariants();
    assert_eq!(plain_of(&mut sl, "a"), [1]);
    let abc = sl.insert(b"a.b.c", NOQ, 2);
    let abd = sl.insert(b"a.b.d", NOQ, 3);
    remove_ok(&mut sl, b"a.b.c", NOQ, abc, 2);
    // "b" still leads to "d".
    assert_eq!(sl.node_count(), 4);
    assert_eq!(plain_of(&mut sl, "a.b.d"), [3]);
    remove_ok(&mut sl, b"a", NOQ, a, 1);
    assert_eq!(sl.node_count(), 4);
    assert_eq!(plain_of(&mut sl, "a.b.d"), [3]);
    remove_ok(&mut sl, b"a.b.d", NOQ, abd, 3);
    assert_eq!(sl.node_count(), 1);
}

#[test]
fn invalid_subscription_subjects_never_match() {
    let mut sl = Sublist::new(16);
    let ids = [
        sl.insert(b"foo.>.bar", NOQ, 1),
        sl.insert(b"foo..bar", NOQ, 2),
        sl.insert(b"", NOQ, 3),
    ];
    assert_eq!(sl.len(), 3);
    for subject in ["foo.x.bar", "foo.bar", "foo", "foo.x"] {
        assert!(sl.matches(subject.as_bytes()).is_empty(), "{subject}");
    }
    remove_ok(&mut sl, b"foo.>.bar", NOQ, ids[0], 1);
    remove_ok(&mut sl, b"foo..bar", NOQ, ids[1], 2);
    remove_ok(&mut sl, b"", NOQ, ids[2], 3);
    assert_eq!(sl.node_count(), 1);
}
