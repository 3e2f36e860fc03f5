//! Owns the byte-level lexing every NATS operation shares: argument separators, trimming,
//! splitting an argument line into spans without allocating, and strict decimal numbers.
//! The parser and the per-operation files use it; it uses none of them.

/// Whether `b` separates arguments.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing spaces and tabs.
pub(crate) fn trim_ws(s: &[u8]) -> &[u8] {
    let Some(first) = s.iter().position(|&b| !is_ws(b)) else {
        return &[];
    };
    let last = s.iter().rposition(|&b| !is_ws(b)).unwrap_or(first);
    &s[first..=last]
}

/// A byte range of an argument inside a line or buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    const EMPTY: Span = Span { start: 0, end: 0 };

    /// The bytes of this span in `buf`, the buffer (or a copy of it) it was found in.
    pub(crate) fn slice(self, buf: &[u8]) -> &[u8] {
        &buf[self.start..self.end]
    }

    /// The same span `by` bytes further on.
    pub(crate) fn shifted(self, by: usize) -> Span {
        Span {
            start: self.start.saturating_add(by),
            end: self.end.saturating_add(by),
        }
    }
}

/// Up to `N` whitespace-separated arguments of a line.
pub(crate) struct Args<const N: usize> {
    spans: [Span; N],
    len: usize,
}

impl<const N: usize> Args<N> {
    /// The arguments found, in order.
    pub(crate) fn as_slice(&self) -> &[Span] {
        &self.spans[..self.len]
    }
}

/// Splits `s` on runs of spaces and tabs, without allocating. `None` if it has more than `N` arguments.
pub(crate) fn split_args<const N: usize>(s: &[u8]) -> Option<Args<N>> {
    let mut args = Args {
        spans: [Span::EMPTY; N],
        len: 0,
    };
    let mut token_start = None;
    let ends = s.iter().map(|&b| is_ws(b)).chain(std::iter::once(true));
    for (i, ws) in ends.enumerate() {
        match (ws, token_start) {
            (true, Some(start)) => {
                *args.spans.get_mut(args.len)? = Span { start, end: i };
                args.len = args.len.saturating_add(1);
                token_start = None;
            }
            (false, None) => token_start = Some(i),
            _ => {}
        }
    }
    Some(args)
}

/// Why a size argument was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Empty, or a byte other than an ASCII digit (signs included).
    NotANumber,
    /// Too large for the target type.
    Overflow,
}

/// Parses a decimal unsigned number made only of ASCII digits.
pub(crate) fn parse_number(s: &[u8]) -> Result<u64, NumberError> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(NumberError::NotANumber);
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d.saturating_sub(b'0'))))
            .ok_or(NumberError::Overflow)
    })
}

/// Parses a decimal size made only of ASCII digits.
pub(crate) fn parse_size(s: &[u8]) -> Result<usize, NumberError> {
    usize::try_from(parse_number(s)?).map_err(|_| NumberError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(trim_ws(b" \t a b \t"), b"a b");
        assert_eq!(trim_ws(b" \t "), b"");
        assert_eq!(trim_ws(b""), b"");
        assert_eq!(parse_number(b"0"), Ok(0));
        assert_eq!(parse_number(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_number(b"18446744073709551616"),
            Err(NumberError::Overflow)
        );
        assert_eq!(parse_number(b""), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"1 "), Err(NumberError::NotANumber));
        let a = split_args::<2>(b"  x\t\ty  ");
        let spans: Vec<&[u8]> = a
            .as_ref()
            .map(|a| {
                a.as_slice()
                    .iter()
                    .map(|s| s.slice(b"  x\t\ty  "))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(spans, vec![&b"x"[..], b"y"]);
        assert!(split_args::<2>(b"x y z").is_none());
        assert!(split_args::<2>(b"").is_some_and(|a| a.as_slice().is_empty()));
    }
}
