//! Any bytes as subjects, patterns and queue names: validation never panics and agrees
//! with itself, and the one-pattern matcher agrees with the permission matchers.
//!
//! Input: three parts split at the first two 0xFF bytes: a pattern, a subject, a queue.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shards::auth::permissions::{covers, patterns_overlap};
use shards::subject::pattern::pattern_matches;
use shards::subject::validate::{is_valid_literal_subject, is_valid_queue_name, is_valid_subject};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let pattern = parts.next().unwrap_or_default();
    let subject = parts.next().unwrap_or_default();
    let queue = parts.next().unwrap_or_default();
    let _ = is_valid_queue_name(queue);

    let literal = is_valid_literal_subject(subject);
    if literal {
        assert!(is_valid_subject(subject));
        assert!(pattern_matches(subject, subject), "a literal subject matches itself");
        assert!(pattern_matches(b">", subject), "> matches every subject");
        assert!(covers(subject, subject));
    }
    if is_valid_subject(pattern) && literal {
        let m = pattern_matches(pattern, subject);
        // A pattern covering the subject matches it, and a match means they overlap.
        if covers(pattern, subject) {
            assert!(m, "{:?} covers {:?} but does not match it", pattern, subject);
        }
        if m {
            assert!(patterns_overlap(pattern, subject));
            assert!(patterns_overlap(subject, pattern), "overlap is symmetric");
        }
    }
    if is_valid_subject(pattern) && is_valid_subject(subject) {
        // Covering implies overlapping (both match what the narrower matches).
        if covers(pattern, subject) {
            assert!(patterns_overlap(pattern, subject));
        }
        assert_eq!(patterns_overlap(pattern, subject), patterns_overlap(subject, pattern));
    }
});
