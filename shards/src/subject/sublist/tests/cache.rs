//! The match cache: hits share one `Rc`, it stays bounded, and an insert or remove replaces
//! exactly the cached results it changes.

use std::rc::Rc;

use super::*;

#[test]
fn cache_hit_returns_the_same_rc() {
    let mut sl = Sublist::new(16);
    sl.insert(b"foo.*", NOQ, 1);
    let first = sl.matches(b"foo.bar");
    assert_eq!(sl.walks, 1);
    assert_eq!(sl.cache_len(), 1);
    let second = sl.matches(b"foo.bar");
    assert!(Rc::ptr_eq(&first, &second));
    assert_eq!(sl.walks, 1, "a cache hit must not walk the trie");
    // A different subject is a miss.
    let other = sl.matches(b"foo.baz");
    assert_eq!(sl.walks, 2);
    assert!(!Rc::ptr_eq(&first, &other));
    assert_eq!(sl.cache_len(), 2);
    // Subjects matching nothing are cached too.
    assert!(sl.matches(b"nope").is_empty());
    assert!(sl.matches(b"nope").is_empty());
    assert_eq!(sl.walks, 3);
}

#[test]
fn cache_disabled_with_zero() {
    let mut sl = Sublist::new(0);
    sl.insert(b"foo", NOQ, 1);
    let first = sl.matches(b"foo");
    let second = sl.matches(b"foo");
    assert_eq!(sl.cache_len(), 0);
    assert_eq!(sl.walks, 2);
    assert_eq!(*first, *second);
}

#[test]
fn cache_invalidated_by_insert_and_remove() {
    let mut sl = Sublist::new(16);
    let one = sl.insert(b"foo.bar", NOQ, 1);
    let before = sl.matches(b"foo.bar");
    assert_eq!(plain_sorted(&before), [1]);
    // Insert under a wildcard that matches the cached subject.
    let two = sl.insert(b"foo.*", NOQ, 2);
    assert_eq!(sl.cache_len(), 0);
    let after = sl.matches(b"foo.bar");
    assert!(!Rc::ptr_eq(&before, &after));
    assert_eq!(plain_sorted(&after), [1, 2]);
    // The old result is unchanged for whoever still holds it.
    assert_eq!(plain_sorted(&before), [1]);
    let three = sl.insert(b"foo.bar", q("g"), 3);
    assert_eq!(
        queues_sorted(&sl.matches(b"foo.bar")),
        groups(&[("g", &[3])])
    );
    // Remove.
    sl.matches(b"foo.bar");
    remove_ok(&mut sl, b"foo.bar", NOQ, one, 1);
    let m = sl.matches(b"foo.bar");
    assert_eq!(plain_sorted(&m), [2]);
    remove_ok(&mut sl, b"foo.bar", q("g"), three, 3);
    assert!(sl.matches(b"foo.bar").queues.is_empty());
    remove_ok(&mut sl, b"foo.*", NOQ, two, 2);
    assert!(sl.matches(b"foo.bar").is_empty());
    // A failed remove changes nothing, not even the cached Rc.
    sl.insert(b"foo.bar", NOQ, 4);
    let cached = sl.matches(b"foo.bar");
    assert_eq!(sl.remove(b"foo.bar", NOQ, one), None);
    assert!(Rc::ptr_eq(&sl.matches(b"foo.bar"), &cached));
}

/// Caches three subjects and returns their results: `foo.bar`, `foo.baz` and `x.y`.
fn cache_three(sl: &mut Sublist<u32>) -> [Rc<Match<u32>>; 3] {
    [
        sl.matches(b"foo.bar"),
        sl.matches(b"foo.baz"),
        sl.matches(b"x.y"),
    ]
}

/// Which of `foo.bar`, `foo.baz` and `x.y` still return the Rc they returned before.
fn kept(sl: &mut Sublist<u32>, before: &[Rc<Match<u32>>; 3]) -> [bool; 3] {
    let now = cache_three(sl);
    [0, 1, 2].map(|i| Rc::ptr_eq(&before[i], &now[i]))
}

#[test]
fn unrelated_inserts_and_removes_keep_the_cached_rc() {
    let mut sl = Sublist::new(64);
    sl.insert(b"foo.bar", NOQ, 1);
    sl.insert(b"foo.*", q("g"), 2);
    sl.insert(b"x.>", NOQ, 3);
    let before = cache_three(&mut sl);
    let walks = sl.walks;
    // None of these patterns matches any of the three subjects.
    let unrelated: &[(&[u8], Q<'_>)] = &[
        (b"foo", NOQ),
        (b"foo.bar.baz", NOQ),
        (b"foo.*.*", q("g")),
        (b"x", NOQ),
        (b"y.>", NOQ),
        (b"*.*.>", NOQ),
        (b"*", q("h")),
        (b"bar.*", NOQ),
    ];
    let ids: Vec<EntryId> = unrelated
        .iter()
        .map(|&(subject, queue)| sl.insert(subject, queue, 9))
        .collect();
    assert_eq!(kept(&mut sl, &before), [true; 3]);
    for (&(subject, queue), &id) in unrelated.iter().zip(&ids) {
        remove_ok(&mut sl, subject, queue, id, 9);
    }
    assert_eq!(kept(&mut sl, &before), [true; 3]);
    assert_eq!(sl.walks, walks, "unaffected subjects must stay cached");
    // A subject that matches nothing keeps the shared empty result across unrelated changes.
    let nothing = sl.matches(b"nobody.home");
    let id = sl.insert(b"somebody.home", NOQ, 5);
    remove_ok(&mut sl, b"somebody.home", NOQ, id, 5);
    assert!(Rc::ptr_eq(&nothing, &sl.matches(b"nobody.home")));
}

#[test]
fn related_inserts_and_removes_replace_the_cached_rc() {
    // (pattern, queue, which of foo.bar / foo.baz / x.y it matches)
    let related: &[(&[u8], Q<'_>, [bool; 3])] = &[
        (b"foo.bar", NOQ, [true, false, false]),
        (b"foo.baz", q("g"), [false, true, false]),
        (b"x.y", q("g"), [false, false, true]),
        (b"foo.*", NOQ, [true, true, false]),
        (b"*.bar", q("g"), [true, false, false]),
        (b"foo.>", NOQ, [true, true, false]),
        (b"*.*", NOQ, [true, true, true]),
        (b">", q("h"), [true, true, true]),
        (b"x.*", NOQ, [false, false, true]),
    ];
    for &(pattern, queue, affected) in related {
        let shown = String::from_utf8_lossy(pattern);
        let mut sl = Sublist::new(64);
        sl.insert(b"foo.*", NOQ, 1);
        let before = cache_three(&mut sl);
        let id = sl.insert(pattern, queue, 2);
        let after_insert = cache_three(&mut sl);
        let want = affected.map(|a| !a);
        assert_eq!(kept(&mut sl, &before), want, "insert {shown}");
        for (i, m) in after_insert.iter().enumerate() {
            let has = m.plain.contains(&2) || m.queues.iter().any(|g| g.members.contains(&2));
            assert_eq!(has, affected[i], "insert {shown}: result {i}");
        }
        remove_ok(&mut sl, pattern, queue, id, 2);
        assert_eq!(kept(&mut sl, &after_insert), want, "remove {shown}");
        assert_eq!(
            cache_three(&mut sl),
            before,
            "remove {shown} restores the matches"
        );
    }
}

#[test]
fn cache_is_bounded() {
    for max in [1usize, 2, 3, 7, 64] {
        let mut sl = Sublist::new(max);
        sl.insert(b"s.>", NOQ, 1);
        sl.insert(b"s.5", NOQ, 2);
        for i in 0..max + 10 {
            let subject = format!("s.{i}");
            let m = sl.matches(subject.as_bytes());
            assert!(
                sl.cache_len() <= max,
                "cache_len {} > {max}",
                sl.cache_len()
            );
            let want: &[u32] = if i == 5 { &[1, 2] } else { &[1] };
            assert_eq!(plain_sorted(&m), want);
        }
        assert!(sl.cache_len() >= 1);
        // Entries that survived eviction still give correct results.
        for i in 0..max + 10 {
            let subject = format!("s.{i}");
            let want: &[u32] = if i == 5 { &[1, 2] } else { &[1] };
            assert_eq!(plain_of(&mut sl, &subject), want);
            assert!(sl.cache_len() <= max);
        }
    }
}
