//! Matching: literal, `*` and `>` patterns, queue groups merged by name, invalid subjects,
//! very deep subjects and a large index.

use super::*;

#[test]
fn literal_matches_only_itself() {
    let mut sl = Sublist::new(64);
    sl.insert(b"foo.bar", NOQ, 1);
    sl.insert(b"foo", NOQ, 2);
    sl.insert(b"foo.bar.baz", NOQ, 3);
    sl.insert(b"Foo.bar", NOQ, 4);
    assert_eq!(plain_of(&mut sl, "foo.bar"), [1]);
    assert_eq!(plain_of(&mut sl, "foo"), [2]);
    assert_eq!(plain_of(&mut sl, "foo.bar.baz"), [3]);
    assert_eq!(plain_of(&mut sl, "Foo.bar"), [4]);
    assert_eq!(plain_of(&mut sl, "foo.baz"), [0u32; 0]);
    assert_eq!(plain_of(&mut sl, "bar"), [0u32; 0]);
    assert_eq!(plain_of(&mut sl, "foo.bar.baz.qux"), [0u32; 0]);
    assert_eq!(sl.len(), 4);
    assert!(!sl.is_empty());
    assert!(sl.matches(b"nothing").is_empty());
}

#[test]
fn wildcard_chars_inside_tokens_are_literal() {
    let mut sl = Sublist::new(64);
    sl.insert(b"f*o.b", NOQ, 1);
    sl.insert(b"foo>", NOQ, 2);
    sl.insert(b">", NOQ, 3);
    assert_eq!(plain_of(&mut sl, "f*o.b"), [1, 3]);
    assert_eq!(plain_of(&mut sl, "fxo.b"), [3]);
    assert_eq!(plain_of(&mut sl, "foo>"), [2, 3]);
    assert_eq!(plain_of(&mut sl, "foo.x"), [3]);
}

#[test]
fn star_in_each_position() {
    let mut sl = Sublist::new(64);
    sl.insert(b"*.b.c", NOQ, 1);
    sl.insert(b"a.*.c", NOQ, 2);
    sl.insert(b"a.b.*", NOQ, 3);
    sl.insert(b"*.*.*", NOQ, 4);
    sl.insert(b"*", NOQ, 5);
    sl.insert(b"a.*", NOQ, 6);
    assert_eq!(plain_of(&mut sl, "a.b.c"), [1, 2, 3, 4]);
    assert_eq!(plain_of(&mut sl, "x.b.c"), [1, 4]);
    assert_eq!(plain_of(&mut sl, "a.x.c"), [2, 4]);
    assert_eq!(plain_of(&mut sl, "a.b.x"), [3, 4]);
    assert_eq!(plain_of(&mut sl, "x.y.z"), [4]);
    assert_eq!(plain_of(&mut sl, "a"), [5]);
    assert_eq!(plain_of(&mut sl, "a.b"), [6]);
    assert_eq!(plain_of(&mut sl, "b.b"), [0u32; 0]);
    // '*' matches exactly one token, never zero or two.
    assert_eq!(plain_of(&mut sl, "a.b.c.d"), [0u32; 0]);
}

#[test]
fn full_wildcard_needs_one_or_more_tokens() {
    let mut sl = Sublist::new(64);
    sl.insert(b"foo.>", NOQ, 1);
    sl.insert(b">", NOQ, 2);
    sl.insert(b"foo.*.>", NOQ, 3);
    assert_eq!(plain_of(&mut sl, "foo"), [2]);
    assert_eq!(plain_of(&mut sl, "foo.bar"), [1, 2]);
    assert_eq!(plain_of(&mut sl, "foo.bar.baz"), [1, 2, 3]);
    assert_eq!(plain_of(&mut sl, "foo.bar.baz.qux.quux"), [1, 2, 3]);
    assert_eq!(plain_of(&mut sl, "bar.foo"), [2]);
    assert_eq!(plain_of(&mut sl, "x"), [2]);
}

#[test]
fn subscription_matching_two_patterns_appears_twice() {
    let mut sl = Sublist::new(64);
    sl.insert(b"foo.*", NOQ, 7);
    sl.insert(b"foo.>", NOQ, 7);
    sl.insert(b"foo.bar", NOQ, 7);
    assert_eq!(plain_of(&mut sl, "foo.bar"), [7, 7, 7]);
    assert_eq!(plain_of(&mut sl, "foo.baz"), [7, 7]);
    assert_eq!(plain_of(&mut sl, "foo.baz.x"), [7]);
}

#[test]
fn queue_groups_merge_by_name_across_patterns() {
    let mut sl = Sublist::new(64);
    sl.insert(b"foo.*", q("q1"), 1);
    sl.insert(b"foo.>", q("q1"), 2);
    sl.insert(b"foo.bar", q("q1"), 3);
    sl.insert(b"foo.bar", q("q2"), 4);
    sl.insert(b"foo.*", q("q2"), 5);
    sl.insert(b"foo.>", q("Q1"), 6);
    let m = sl.matches(b"foo.bar");
    assert!(m.plain.is_empty());
    assert_eq!(m.queues.len(), 3);
    assert_eq!(
        queues_sorted(&m),
        groups(&[("q1", &[1, 2, 3]), ("q2", &[4, 5]), ("Q1", &[6])])
    );
    let m = sl.matches(b"foo.baz.qux");
    assert_eq!(queues_sorted(&m), groups(&[("q1", &[2]), ("Q1", &[6])]));
}

#[test]
fn plain_and_queue_results_together() {
    let mut sl = Sublist::new(64);
    sl.insert(b"orders.*", NOQ, 1);
    sl.insert(b"orders.new", NOQ, 2);
    sl.insert(b"orders.new", q("workers"), 3);
    sl.insert(b"orders.new", q("workers"), 4);
    sl.insert(b"orders.>", q("audit"), 5);
    let m = sl.matches(b"orders.new");
    assert_eq!(plain_sorted(&m), [1, 2]);
    assert_eq!(
        queues_sorted(&m),
        groups(&[("workers", &[3, 4]), ("audit", &[5])])
    );
    // The same value may be both a plain and a queue subscription.
    sl.insert(b"orders.new", q("workers"), 1);
    let m = sl.matches(b"orders.new");
    assert_eq!(plain_sorted(&m), [1, 2]);
    assert_eq!(
        queues_sorted(&m),
        groups(&[("workers", &[1, 3, 4]), ("audit", &[5])])
    );
}

#[test]
fn invalid_publish_subjects_match_nothing() {
    let mut sl = Sublist::new(16);
    sl.insert(b">", NOQ, 1);
    sl.insert(b"*", NOQ, 2);
    sl.insert(b"foo.*", NOQ, 3);
    sl.insert(b"foo.>", NOQ, 4);
    sl.insert(b"*.*", q("g"), 5);
    let invalid: &[&[u8]] = &[
        b"",
        b".",
        b"foo.",
        b".foo",
        b"foo..bar",
        b"*",
        b">",
        b"foo.*",
        b"foo.>",
        b"*.bar",
        b"foo.>.bar",
        b"foo bar",
        b"foo.b\tr",
        b"foo\0",
    ];
    for subject in invalid {
        let m = sl.matches(subject);
        assert!(m.is_empty(), "{:?}", String::from_utf8_lossy(subject));
    }
    assert_eq!(sl.cache_len(), 0, "invalid subjects must not be cached");
    assert_eq!(sl.walks, 0);
    // Sanity: the same subscriptions do match valid subjects.
    assert_eq!(plain_of(&mut sl, "foo.bar"), [1, 3, 4]);
}

/// A subject far deeper than any recursion could handle on a 2 MB test-thread stack.
#[test]
fn very_deep_subjects_do_not_overflow_the_stack() {
    const DEPTH: usize = 200_000;
    let mut subject = b"a.".repeat(DEPTH - 1);
    subject.push(b'a');
    let mut pattern = b"*.".repeat(DEPTH - 1);
    pattern.push(b'>');
    let mut sl = Sublist::new(4);
    let deep = sl.insert(&subject, NOQ, 1);
    sl.insert(&pattern, NOQ, 2);
    assert_eq!(sl.node_count(), 1 + 2 * DEPTH);
    let mut longer = subject.clone();
    longer.extend_from_slice(b".b.c");
    let mut shorter = b"a.".repeat(DEPTH - 2);
    shorter.push(b'a');
    // The pattern's '>' is its DEPTH-th token, so it needs at least DEPTH tokens.
    assert_eq!(plain_sorted(&sl.matches(&subject)), [1, 2]);
    assert_eq!(plain_sorted(&sl.matches(&longer)), [2]);
    assert!(sl.matches(&shorter).is_empty());
    remove_ok(&mut sl, &subject, NOQ, deep, 1);
    assert_eq!(sl.node_count(), 1 + DEPTH);
    // Dropping the sublist drops the remaining deep chain.
    drop(sl);
}

#[test]
fn ten_thousand_subscriptions() {
    let mut sl = Sublist::new(1024);
    let ids: Vec<EntryId> = (0..10_000u32)
        .map(|i| sl.insert(format!("bench.{i}.data").as_bytes(), NOQ, i))
        .collect();
    sl.insert(b"bench.*.data", NOQ, 100_000);
    sl.insert(b"bench.>", NOQ, 100_001);
    sl.insert(b"bench.5000.*", NOQ, 100_002);
    sl.insert(b"bench.*.data", q("workers"), 200_000);
    sl.insert(b"bench.*.*", q("workers"), 200_001);
    assert_eq!(sl.len(), 10_005);
    sl.check_invariants();

    let m = sl.matches(b"bench.5000.data");
    assert_eq!(plain_sorted(&m), [5000, 100_000, 100_001, 100_002]);
    assert_eq!(
        queues_sorted(&m),
        groups(&[("workers", &[200_000, 200_001])])
    );
    assert_eq!(plain_of(&mut sl, "bench.0.data"), [0, 100_000, 100_001]);
    assert_eq!(
        plain_of(&mut sl, "bench.9999.data"),
        [9999, 100_000, 100_001]
    );
    assert_eq!(plain_of(&mut sl, "bench.10000.data"), [100_000, 100_001]);
    assert_eq!(plain_of(&mut sl, "bench.5000.other"), [100_001, 100_002]);
    assert_eq!(plain_of(&mut sl, "bench.1.data.x"), [100_001]);
    assert!(sl.matches(b"bench").is_empty());
    assert!(sl.matches(b"other.1.data").is_empty());

    for (i, id) in (0..10_000u32).zip(ids) {
        remove_ok(&mut sl, format!("bench.{i}.data").as_bytes(), NOQ, id, i);
    }
    assert_eq!(sl.len(), 5);
    sl.check_invariants();
    assert_eq!(
        plain_of(&mut sl, "bench.5000.data"),
        [100_000, 100_001, 100_002]
    );
    // What is left: root, bench, the '*' and '5000' and '>' children, and their children.
    assert_eq!(sl.node_count(), 8);
    // The root's literal map gave its memory back.
    let Some(bench) = sl.root.literals.get(&b"bench"[..]) else {
        panic!("bench node missing");
    };
    let Some(level) = bench.next.as_deref() else {
        panic!("bench has no next level");
    };
    assert!(
        level.literals.capacity() < 64,
        "{}",
        level.literals.capacity()
    );
}
