//! Owns reading one IRC line: its command, its parameters and the trailing one, borrowed
//! from the read buffer, for the `irc` scenario's clients.

/// A line split into its command, the parameters before the trailing one, and the
/// trailing one (`:` removed; empty when there is none).
pub struct Line<'a> {
    pub command: &'a [u8],
    pub middle: &'a [u8],
    pub trailing: &'a [u8],
}

impl<'a> Line<'a> {
    pub fn parse(line: &'a [u8]) -> Line<'a> {
        let mut rest = line;
        if rest.first() == Some(&b':') {
            rest = memchr::memchr(b' ', rest).map_or(&[][..], |i| &rest[i + 1..]);
        }
        let (command, params) = match memchr::memchr(b' ', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let (middle, trailing) = if params.first() == Some(&b':') {
            (&[][..], &params[1..])
        } else {
            // The trailing parameter starts at the first " :".
            let colon = memchr::memchr_iter(b':', params).find(|&i| i > 0 && params[i - 1] == b' ');
            match colon {
                Some(i) => (&params[..i - 1], &params[i + 1..]),
                None => (params, &[][..]),
            }
        };
        Line {
            command,
            middle,
            trailing,
        }
    }

    /// The first parameter.
    pub fn target(&self) -> &'a [u8] {
        let first = self.middle.split(|&b| b == b' ').next().unwrap_or_default();
        if first.is_empty() {
            self.trailing
        } else {
            first
        }
    }

    /// An error numeric (4xx or 5xx) other than 422 (no MOTD, which is not an error).
    pub fn is_error_numeric(&self) -> bool {
        matches!(self.command, [b'4' | b'5', b'0'..=b'9', b'0'..=b'9']) && self.command != b"422"
    }

    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(self.command).into_owned();
        for part in [self.middle, self.trailing] {
            if !part.is_empty() {
                s.push(' ');
                s.push_str(&String::from_utf8_lossy(part));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_command_and_parameters() {
        let l = Line::parse(b":pb1!~pb1@127.0.0.1 PRIVMSG #bench :7 123 abc :d");
        assert_eq!(l.command, b"PRIVMSG");
        assert_eq!(l.target(), b"#bench");
        assert_eq!(l.trailing, b"7 123 abc :d");
        let l = Line::parse(b"PING :irc.example");
        assert_eq!((l.command, l.target()), (&b"PING"[..], &b"irc.example"[..]));
        let l = Line::parse(b"PING token");
        assert_eq!(l.target(), b"token");
        let l = Line::parse(b":s 433 * b1 :Nickname already in use");
        assert!(l.is_error_numeric());
        assert!(!Line::parse(b":s 422 b1 :MOTD File is missing").is_error_numeric());
        assert!(!Line::parse(b":s 366 b1 #bench :End").is_error_numeric());
        assert_eq!(
            Line::parse(b"ERROR :Closing Link").trailing,
            b"Closing Link"
        );
    }
}
