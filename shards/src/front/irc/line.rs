//! One line of the IRC client protocol (RFC 1459 §2.3, as modern clients send it): finds
//! the line's end in the read buffer and splits it into a command and its parameters,
//! borrowing both from the buffer. Tags (`@…`) and a source (`:…`) a client may send are
//! skipped, a lone `\n` ends a line as well as `\r\n`, empty lines and repeated spaces are
//! tolerated. A line longer than [`LINE_BYTES_MAX`] is reported so the session can answer
//! `417` and skip it.

/// The longest line, CRLF included (RFC 1459 §2.3.1).
pub const LINE_BYTES_MAX: usize = 512;
/// Parameters a line may carry (RFC 2812 §2.3.1: 14 middle ones and a trailing one).
pub const PARAMS_MAX: usize = 15;

/// A parsed line, borrowing from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// As sent; compare with [`Line::is`].
    pub command: &'a [u8],
    params: [&'a [u8]; PARAMS_MAX],
    params_len: usize,
}

impl<'a> Line<'a> {
    /// Whether the command is `name` (IRC commands are case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.command.eq_ignore_ascii_case(name.as_bytes())
    }

    pub fn params(&self) -> &[&'a [u8]] {
        &self.params[..self.params_len]
    }

    /// Parameter `i`, if present.
    pub fn param(&self, i: usize) -> Option<&'a [u8]> {
        self.params().get(i).copied()
    }
}

/// What [`next_line`] found at the start of the input.
// Returned by value and matched at once, never stored: boxing the line would allocate
// for every line instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Scan<'a> {
    /// A line, and the bytes it took (its line end included).
    Line(Line<'a>, usize),
    /// A line with no command (empty, or only tags and a source): skip these bytes.
    Blank(usize),
    /// No line end yet, and what is there still fits a line: wait for more.
    NeedMore,
    /// More than [`LINE_BYTES_MAX`] bytes without a line end: drop these bytes and the
    /// rest of the line (see [`skip_rest`]).
    TooLong(usize),
}

/// Looks for one line at the start of `data`.
pub fn next_line(data: &[u8]) -> Scan<'_> {
    let Some(end) = data.iter().position(|&b| b == b'\n') else {
        return if data.len() >= LINE_BYTES_MAX {
            Scan::TooLong(data.len())
        } else {
            Scan::NeedMore
        };
    };
    if end + 1 > LINE_BYTES_MAX {
        return Scan::TooLong(end + 1);
    }
    let mut text = &data[..end];
    if let Some(stripped) = text.strip_suffix(b"\r") {
        text = stripped;
    }
    match parse(text) {
        Some(line) => Scan::Line(line, end + 1),
        None => Scan::Blank(end + 1),
    }
}

/// While skipping an over-long line: the bytes of `data` to drop, and whether the line
/// ended there.
pub fn skip_rest(data: &[u8]) -> (usize, bool) {
    match data.iter().position(|&b| b == b'\n') {
        Some(end) => (end + 1, true),
        None => (data.len(), false),
    }
}

/// Splits one line (without its line end) into command and parameters.
fn parse(mut text: &[u8]) -> Option<Line<'_>> {
    text = skip_spaces(text);
    // Tags and source, which we never asked for and do not use.
    for lead in [b'@', b':'] {
        if text.first() == Some(&lead) {
            let word_end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
            text = skip_spaces(&text[word_end..]);
        }
    }
    let command_end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    let command = &text[..command_end];
    if command.is_empty() {
        return None;
    }
    let mut line = Line {
        command,
        params: [&[]; PARAMS_MAX],
        params_len: 0,
    };
    let mut rest = skip_spaces(&text[command_end..]);
    while !rest.is_empty() && line.params_len < PARAMS_MAX {
        if rest[0] == b':' || line.params_len == PARAMS_MAX - 1 {
            // The trailing parameter takes the rest of the line, spaces included.
            let trailing = rest.strip_prefix(b":").unwrap_or(rest);
            line.params[line.params_len] = trailing;
            line.params_len += 1;
            break;
        }
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        line.params[line.params_len] = &rest[..end];
        line.params_len += 1;
        rest = skip_spaces(&rest[end..]);
    }
    Some(line)
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(input: &[u8]) -> (String, Vec<String>) {
        match next_line(input) {
            Scan::Line(l, n) => {
                assert_eq!(n, input.len());
                (
                    String::from_utf8_lossy(l.command).into_owned(),
                    l.params()
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect(),
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_and_parameters() {
        assert_eq!(
            line(b"PRIVMSG #a.b :hello  there\r\n"),
            ("PRIVMSG".into(), vec!["#a.b".into(), "hello  there".into()])
        );
        assert_eq!(
            line(b"user root 0 * :Real Name\n"),
            (
                "user".into(),
                vec!["root".into(), "0".into(), "*".into(), "Real Name".into()]
            )
        );
        // irssi's `LIST ` with a trailing space; tags and a source are skipped.
        assert_eq!(line(b"LIST \r\n"), ("LIST".into(), vec![]));
        assert_eq!(
            line(b"@time=x :nick!u@h  JOIN   #a,#b\r\n"),
            ("JOIN".into(), vec!["#a,#b".into()])
        );
        // An empty trailing parameter is a parameter.
        assert_eq!(
            line(b"TOPIC #a :\r\n"),
            ("TOPIC".into(), vec!["#a".into(), "".into()])
        );
        let parsed = next_line(b"ping x\r\n");
        assert!(matches!(parsed, Scan::Line(ref l, 8) if l.is("PING")));
    }

    #[test]
    fn the_fifteenth_parameter_takes_the_rest() {
        let input = b"X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\r\n";
        let (_, params) = line(input);
        assert_eq!(params.len(), PARAMS_MAX);
        assert_eq!(params[14], "15 16");
    }

    #[test]
    fn blank_lines_partial_lines_and_long_lines() {
        assert_eq!(next_line(b"\r\n"), Scan::Blank(2));
        assert_eq!(next_line(b"   \n"), Scan::Blank(4));
        assert_eq!(next_line(b":src\r\n"), Scan::Blank(6));
        assert_eq!(next_line(b"PRIVMSG #a :no end yet"), Scan::NeedMore);
        let long = vec![b'a'; LINE_BYTES_MAX];
        assert_eq!(next_line(&long), Scan::TooLong(LINE_BYTES_MAX));
        let mut ended = vec![b'a'; LINE_BYTES_MAX];
        ended.push(b'\n');
        assert_eq!(next_line(&ended), Scan::TooLong(LINE_BYTES_MAX + 1));
        let mut just = vec![b'a'; LINE_BYTES_MAX - 2];
        just.extend_from_slice(b"\r\n");
        assert!(matches!(next_line(&just), Scan::Line(_, n) if n == LINE_BYTES_MAX));
        assert_eq!(skip_rest(b"aaa\r\nNICK x\r\n"), (5, true));
        assert_eq!(skip_rest(b"aaa"), (3, false));
    }

    #[test]
    fn any_split_of_a_stream_gives_the_same_lines() {
        let stream = b"NICK a\r\nUSER a 0 * :A\nJOIN #x\r\n\r\nPRIVMSG #x :hi there\r\n";
        let whole = lines_of(&[stream]);
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(lines_of(&[a, b]), whole, "split at {cut}");
        }
    }

    /// Feeds `parts` one after another as a reader would, collecting each line's text.
    fn lines_of(parts: &[&[u8]]) -> Vec<String> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for part in parts {
            buf.extend_from_slice(part);
            loop {
                match next_line(&buf) {
                    Scan::Line(l, n) => {
                        out.push(format!("{:?}", (l.command, l.params())));
                        buf.drain(..n);
                    }
                    Scan::Blank(n) | Scan::TooLong(n) => {
                        buf.drain(..n);
                    }
                    Scan::NeedMore => break,
                }
            }
        }
        out
    }
}
