//! Validation owns the byte-level rules for subjects and queue group names (protocol spec
//! section 11); every check is one pass over the bytes and never allocates.

/// Bytes no token or queue name may contain: space, tab, CR, LF, FF, VT and NUL.
#[inline]
fn is_forbidden(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0)
}

/// Checks the subscription-subject rules; `None` if invalid, else whether it has a wildcard.
fn check_subject(s: &[u8]) -> Option<bool> {
    let mut wildcard = false;
    let mut tokens = s.split(|&b| b == b'.').peekable();
    // `split` yields one (empty) token for an empty slice, so "" fails the empty-token check.
    while let Some(token) = tokens.next() {
        if token.is_empty() || token.iter().any(|&b| is_forbidden(b)) {
            return None;
        }
        match token {
            b"*" => wildcard = true,
            b">" => {
                if tokens.peek().is_some() {
                    return None;
                }
                wildcard = true;
            }
            _ => {}
        }
    }
    Some(wildcard)
}

/// A subscription subject: one or more tokens separated by '.', no empty token, no whitespace
/// (space, tab, CR, LF, FF, VT) and no NUL in any token; '*' and '>' are wildcards only as whole
/// tokens and '>' only as the last token ("foo.>.bar" is invalid; "f*o" and "foo>" are literal tokens).
pub fn is_valid_subject(s: &[u8]) -> bool {
    check_subject(s).is_some()
}

/// A publish subject: valid and with no wildcard token.
pub fn is_valid_literal_subject(s: &[u8]) -> bool {
    check_subject(s) == Some(false)
}

/// A queue group name: non-empty, no whitespace, no NUL.
pub fn is_valid_queue_name(q: &[u8]) -> bool {
    !q.is_empty() && !q.iter().any(|&b| is_forbidden(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (subject, valid as a subscription subject, valid as a publish subject)
    const SUBJECTS: &[(&[u8], bool, bool)] = &[
        // Plain literals.
        (b"foo", true, true),
        (b"foo.bar", true, true),
        (b"foo.bar.baz.qux", true, true),
        (b"FOO.Bar", true, true),
        (b"_INBOX.abc123", true, true),
        (b"$SYS.REQ.SERVER.PING", true, true),
        (b"a-b_c:d/e", true, true),
        // Unicode tokens are ordinary bytes.
        ("smörgås.日本語.🦀".as_bytes(), true, true),
        ("ñ".as_bytes(), true, true),
        // Empty subject and empty tokens.
        (b"", false, false),
        (b".", false, false),
        (b"..", false, false),
        (b"foo.", false, false),
        (b".foo", false, false),
        (b"foo..bar", false, false),
        (b"foo.bar.", false, false),
        (b"*.", false, false),
        (b".>", false, false),
        // Whole-token wildcards.
        (b"*", true, false),
        (b">", true, false),
        (b"foo.*", true, false),
        (b"*.foo", true, false),
        (b"foo.*.bar", true, false),
        (b"*.*.*", true, false),
        (b"foo.>", true, false),
        (b"*.>", true, false),
        (b"foo.*.>", true, false),
        // '>' only as the last token.
        (b"foo.>.bar", false, false),
        (b">.foo", false, false),
        (b">.>", false, false),
        (b"foo.>.*", false, false),
        (b"foo.>.", false, false),
        // Wildcard characters inside a token are literal.
        (b"f*o", true, true),
        (b"foo>", true, true),
        (b">foo", true, true),
        (b"**", true, true),
        (b">>", true, true),
        (b"foo.f*o.b", true, true),
        (b"foo.bar>.baz", true, true),
        (b"foo.*>", true, true),
        // Whitespace and NUL anywhere in a token.
        (b"foo bar", false, false),
        (b" foo", false, false),
        (b"foo ", false, false),
        (b"foo.bar baz", false, false),
        (b"foo\tbar", false, false),
        (b"foo\rbar", false, false),
        (b"foo\nbar", false, false),
        (b"foo\r\n", false, false),
        (b"foo\x0cbar", false, false),
        (b"foo\x0bbar", false, false),
        (b"foo\0bar", false, false),
        (b"\0", false, false),
        (b"foo.*.\t", false, false),
        (b"foo.\0.>", false, false),
        (b"foo. .bar", false, false),
        (b"* ", false, false),
        (b"> ", false, false),
    ];

    #[test]
    fn subject_table() {
        for &(subject, valid, literal) in SUBJECTS {
            let shown = String::from_utf8_lossy(subject);
            assert_eq!(
                is_valid_subject(subject),
                valid,
                "is_valid_subject({shown:?})"
            );
            assert_eq!(
                is_valid_literal_subject(subject),
                literal,
                "is_valid_literal_subject({shown:?})"
            );
            // A literal subject is always a valid subscription subject.
            assert!(!literal || valid, "table row {shown:?} is inconsistent");
        }
    }

    #[test]
    fn queue_names() {
        let valid: &[&[u8]] = &[
            b"q",
            b"workers",
            b"Workers",
            b"q.with.dots",
            b"q..x",
            b"*",
            b">",
            "grüppe".as_bytes(),
        ];
        let invalid: &[&[u8]] = &[
            b"", b" ", b"q 1", b" q", b"q ", b"q\t", b"q\r", b"q\n", b"q\x0c", b"q\x0b", b"q\0",
            b"\0",
        ];
        for q in valid {
            assert!(is_valid_queue_name(q), "{:?}", String::from_utf8_lossy(q));
        }
        for q in invalid {
            assert!(!is_valid_queue_name(q), "{:?}", String::from_utf8_lossy(q));
        }
    }

    #[test]
    fn long_subjects() {
        let deep = b"a.".repeat(10_000);
        // Ends with '.', so the last token is empty.
        assert!(!is_valid_subject(&deep));
        let mut ok = deep.clone();
        ok.push(b'>');
        assert!(is_valid_subject(&ok));
        assert!(!is_valid_literal_subject(&ok));
        let mut lit = deep;
        lit.push(b'z');
        assert!(is_valid_literal_subject(&lit));
    }
}
