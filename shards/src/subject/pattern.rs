//! The reference subject matcher: owns the rule for whether one subscription pattern matches
//! one published subject, checked pattern by pattern (input: a pattern and a literal subject;
//! output: a bool).
//!
//! The sublist answers the same question for all its patterns at once; this is the plain
//! one-pattern form, used where a single pattern is checked (reply subjects, the sublist's
//! cache invalidation) and as the model the sublist is tested against. `*` matches exactly
//! one token and `>` one or more trailing tokens, each only as a whole token.

/// Whether subscription `pattern` (with `*`/`>` wildcards) matches literal `subject`.
pub fn pattern_matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut subj = subject.split(|&b| b == b'.');
    for p in pattern.split(|&b| b == b'.') {
        match (p, subj.next()) {
            (b">", Some(_)) => return true,
            (_, None) => return false,
            (b"*", Some(_)) => {}
            (p, Some(s)) if p == s => {}
            _ => return false,
        }
    }
    subj.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn pattern_matching() {
        assert!(pattern_matches(b"_INBOX.abc.*", b"_INBOX.abc.1"));
        assert!(!pattern_matches(b"_INBOX.abc.*", b"_INBOX.abc.1.2"));
        assert!(pattern_matches(b"a.>", b"a.b.c"));
        assert!(!pattern_matches(b"a.>", b"a"));
        assert!(pattern_matches(b"a.b", b"a.b"));
        assert!(!pattern_matches(b"a.b", b"a.c"));
        assert!(!pattern_matches(b"a.b.c", b"a.b"));
    }

    #[test]
    fn agrees_with_the_spec_examples() {
        assert!(pattern_matches(b"foo.>", b"foo.bar"));
        assert!(pattern_matches(b"foo.>", b"foo.bar.baz"));
        assert!(!pattern_matches(b"foo.>", b"foo"));
        assert!(pattern_matches(b"foo.*", b"foo.bar"));
        assert!(!pattern_matches(b"foo.*", b"foo.bar.baz"));
        assert!(!pattern_matches(b"foo.*", b"foo"));
        assert!(pattern_matches(b"foo", b"foo"));
        assert!(!pattern_matches(b"foo", b"foo.bar"));
        assert!(pattern_matches(b">", b"a.b"));
        assert!(pattern_matches(b">", b"a"));
        assert!(pattern_matches(b"*", b"a"));
        assert!(!pattern_matches(b"*", b"a.b"));
        assert!(pattern_matches(b"*.b.>", b"a.b.c.d"));
        assert!(!pattern_matches(b"*.b.>", b"a.c.d"));
    }

    #[test]
    fn wildcard_characters_inside_tokens_are_literal() {
        assert!(pattern_matches(b"f*o", b"f*o"));
        assert!(!pattern_matches(b"f*o", b"fxo"));
        assert!(pattern_matches(b"foo>", b"foo>"));
        assert!(!pattern_matches(b"foo>", b"foo.x"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!pattern_matches(b"Foo.bar", b"foo.bar"));
        assert!(!pattern_matches(b"foo.*", b"FOO.bar"));
    }
}
