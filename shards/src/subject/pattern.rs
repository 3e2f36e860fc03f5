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

/// The pattern matching exactly the subjects both `a` and `b` match, if any (the
/// intersection of two patterns is always one pattern, or nothing).
pub fn intersect(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let ta: Vec<&[u8]> = a.split(|&c| c == b'.').collect();
    let tb: Vec<&[u8]> = b.split(|&c| c == b'.').collect();
    let mut out: Vec<&[u8]> = Vec::with_capacity(ta.len().max(tb.len()));
    for i in 0.. {
        match (ta.get(i).copied(), tb.get(i).copied()) {
            (None, None) => break,
            (Some(b">"), _) => {
                // `>` takes one token or more: the other's rest, or `>` itself.
                let rest = tb.get(i..).filter(|r| !r.is_empty())?;
                out.extend_from_slice(rest);
                break;
            }
            (_, Some(b">")) => {
                out.extend_from_slice(ta.get(i..).filter(|r| !r.is_empty())?);
                break;
            }
            (Some(x), Some(y)) if x == y || y == b"*" => out.push(x),
            (Some(b"*"), Some(y)) => out.push(y),
            _ => return None,
        }
    }
    Some(out.join(&b'.'))
}

#[cfg(test)]
mod tests {
    use super::{intersect, pattern_matches};

    #[test]
    fn intersections() {
        let i = |a: &str, b: &str| {
            intersect(a.as_bytes(), b.as_bytes()).map(|v| String::from_utf8(v).expect("utf8"))
        };
        assert_eq!(i("a.>", "a.b.*"), Some("a.b.*".into()));
        assert_eq!(i("a.b.*", "a.>"), Some("a.b.*".into()));
        assert_eq!(i(">", "x"), Some("x".into()));
        assert_eq!(i(">", ">"), Some(">".into()));
        assert_eq!(i("a.*.c", "a.b.*"), Some("a.b.c".into()));
        assert_eq!(i("*.b", "a.>"), Some("a.b".into()));
        assert_eq!(i("a.b", "a.c"), None);
        assert_eq!(i("a.>", "a"), None);
        assert_eq!(i("a.*", "a.b.c"), None);
        assert_eq!(i("a.b", "a.b"), Some("a.b".into()));
        // Every subject the intersection matches, both match; and the other way round.
        let subjects = ["a", "a.b", "a.b.c", "a.x.c", "b.b", "a.b.c.d"];
        let patterns = ["a.>", "a.*", "*.b", "a.*.c", ">", "a.b.>", "*.*.c", "a.b"];
        for p in patterns {
            for q in patterns {
                let both = intersect(p.as_bytes(), q.as_bytes());
                for s in subjects {
                    let want = pattern_matches(p.as_bytes(), s.as_bytes())
                        && pattern_matches(q.as_bytes(), s.as_bytes());
                    let got = both
                        .as_deref()
                        .is_some_and(|x| pattern_matches(x, s.as_bytes()));
                    assert_eq!(got, want, "{p} ∩ {q} on {s}: {both:?}");
                }
            }
        }
    }

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
