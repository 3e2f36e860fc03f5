//! Nicknames and channel names: which are valid, how they compare, and how a channel maps
//! to a subject. The server advertises `CASEMAPPING=ascii`: names compare after ASCII
//! lower-casing. The IRC channel `#X` is the subject `ascii_lower(X)`, so only subjects
//! that are already lower-case ASCII appear on IRC; `#a.*` and `#a.>` are read-only
//! channels that aggregate every subject they match.

/// Why a channel name cannot be used (the session answers `403`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// Not `#` followed by a subject.
    NotAChannel,
    TooLong,
    /// A byte neither IRC nor NATS allows in a name (space, comma, control, non-ASCII).
    BadByte,
    /// Empty tokens, or a wildcard that is not a whole token (`>` only last).
    BadSubject,
    /// `$…` subjects (`$SYS`, `$SC`…) belong to the server.
    Reserved,
}

impl ChannelError {
    /// The reason shown with `403`.
    pub fn text(self) -> &'static str {
        match self {
            ChannelError::NotAChannel => "No such channel (channel names start with #)",
            ChannelError::TooLong => "No such channel (name too long)",
            ChannelError::BadByte => "No such channel (use ASCII letters, digits, dots and dashes)",
            ChannelError::BadSubject => "No such channel (not a valid subject)",
            ChannelError::Reserved => "No such channel ($ subjects are reserved)",
        }
    }
}

/// A channel, by its subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Channel {
    /// The subject (or pattern, for an aggregate channel), lower-case ASCII.
    subject: String,
}

impl Channel {
    /// The channel named `name` (`#` included), at most `len_max` bytes long.
    pub fn parse(name: &[u8], len_max: usize) -> Result<Channel, ChannelError> {
        let Some(rest) = name.strip_prefix(b"#") else {
            return Err(ChannelError::NotAChannel);
        };
        if name.len() > len_max {
            return Err(ChannelError::TooLong);
        }
        if rest.is_empty() {
            return Err(ChannelError::BadSubject);
        }
        if rest
            .iter()
            .any(|&b| !b.is_ascii_graphic() || matches!(b, b',' | b':'))
        {
            return Err(ChannelError::BadByte);
        }
        if rest[0] == b'$' {
            return Err(ChannelError::Reserved);
        }
        let subject = rest.to_ascii_lowercase();
        let tokens: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
        let last = tokens.len() - 1;
        for (i, token) in tokens.iter().enumerate() {
            let wildcard_inside = token.len() > 1 && token.iter().any(|&b| b == b'*' || b == b'>');
            if token.is_empty() || wildcard_inside || (*token == b">" && i != last) {
                return Err(ChannelError::BadSubject);
            }
        }
        match String::from_utf8(subject) {
            Ok(subject) => Ok(Channel { subject }),
            // ASCII throughout, checked above.
            Err(_) => Err(ChannelError::BadByte),
        }
    }

    /// The channel for `subject`, if it is IRC-addressable (lower-case ASCII, no `$`).
    pub fn for_subject(subject: &[u8], len_max: usize) -> Option<Channel> {
        let addressable = subject
            .iter()
            .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase());
        if !addressable {
            return None;
        }
        let mut name = Vec::with_capacity(subject.len() + 1);
        name.push(b'#');
        name.extend_from_slice(subject);
        Channel::parse(&name, len_max).ok()
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `#` and the subject: the canonical name the server uses in every reply.
    pub fn name(&self) -> String {
        format!("#{}", self.subject)
    }

    /// A read-only channel that aggregates the subjects its pattern matches.
    pub fn is_aggregate(&self) -> bool {
        is_pattern(self.subject.as_bytes())
    }
}

/// Whether `subject` has wildcard tokens.
pub fn is_pattern(subject: &[u8]) -> bool {
    subject
        .split(|&b| b == b'.')
        .any(|t| t == b"*" || t == b">")
}

/// Why a nickname cannot be used (the session answers `432`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NickError {
    Empty,
    TooLong,
    /// A byte outside letters, digits and `_-[]\^{}|` and backtick, or a leading `-`.
    BadByte,
}

/// Checks a nickname: letters, digits and `_-[]\^{}|` and backtick, not starting with `-`,
/// at most `len_max` bytes. Generous on purpose: a client that gets `432` during
/// registration may give up (irssi) or retry a hundred variants (weechat), so only real
/// garbage is refused. A leading digit is allowed.
pub fn check_nick(nick: &[u8], len_max: usize) -> Result<&str, NickError> {
    if nick.is_empty() {
        return Err(NickError::Empty);
    }
    if nick.len() > len_max {
        return Err(NickError::TooLong);
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_-[]\\^{}|`".contains(&b);
    if nick[0] == b'-' || !nick.iter().all(|&b| allowed(b)) {
        return Err(NickError::BadByte);
    }
    std::str::from_utf8(nick).map_err(|_| NickError::BadByte)
}

/// The key nicknames compare by under `CASEMAPPING=ascii`.
pub fn nick_key(nick: &str) -> String {
    nick.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_lower_case_subjects() {
        let c = Channel::parse(b"#LOGS.Error", 64).expect("valid");
        assert_eq!(c.subject(), "logs.error");
        assert_eq!(c.name(), "#logs.error");
        assert!(!c.is_aggregate());
        assert!(Channel::parse(b"#logs.*", 64)
            .expect("valid")
            .is_aggregate());
        assert!(Channel::parse(b"#logs.>", 64)
            .expect("valid")
            .is_aggregate());
        assert!(Channel::parse(b"#room-1_a", 64).is_ok());
    }

    #[test]
    fn bad_channels_say_why() {
        let bad = |n: &[u8]| Channel::parse(n, 16).unwrap_err();
        assert_eq!(bad(b"room"), ChannelError::NotAChannel);
        assert_eq!(bad(b"&room"), ChannelError::NotAChannel);
        assert_eq!(bad(b"#"), ChannelError::BadSubject);
        assert_eq!(bad(b"#a..b"), ChannelError::BadSubject);
        assert_eq!(bad(b"#a."), ChannelError::BadSubject);
        assert_eq!(bad(b"#a.>.b"), ChannelError::BadSubject);
        assert_eq!(bad(b"#a.b*"), ChannelError::BadSubject);
        assert_eq!(bad(b"#a,b"), ChannelError::BadByte);
        assert_eq!(bad(b"#a\x07"), ChannelError::BadByte);
        assert_eq!(bad("#é".as_bytes()), ChannelError::BadByte);
        assert_eq!(bad(b"#$SYS.x"), ChannelError::Reserved);
        assert_eq!(bad(b"#abcdefghijklmnop"), ChannelError::TooLong);
    }

    #[test]
    fn only_lower_case_subjects_have_a_channel() {
        assert_eq!(
            Channel::for_subject(b"room.lobby", 64).map(|c| c.name()),
            Some("#room.lobby".into())
        );
        assert_eq!(Channel::for_subject(b"Room.lobby", 64), None);
        assert_eq!(Channel::for_subject(b"$SC.x", 64), None);
        assert_eq!(Channel::for_subject("é".as_bytes(), 64), None);
    }

    #[test]
    fn nicks() {
        assert_eq!(check_nick(b"alice", 30), Ok("alice"));
        assert_eq!(check_nick(b"9lives", 30), Ok("9lives"));
        assert_eq!(check_nick(b"[away]_`x|y^", 30), Ok("[away]_`x|y^"));
        assert_eq!(check_nick(b"", 30), Err(NickError::Empty));
        assert_eq!(check_nick(b"-x", 30), Err(NickError::BadByte));
        for bad in [
            &b"a b"[..],
            b"a,b",
            b"a*",
            b"a!",
            b"a@b",
            b"#a",
            b":a",
            b"$a",
            b"a.b",
        ] {
            assert_eq!(check_nick(bad, 30), Err(NickError::BadByte), "{bad:?}");
        }
        assert_eq!(check_nick(b"abcdef", 5), Err(NickError::TooLong));
        assert_eq!(nick_key("AlIcE[]"), "alice[]");
    }
}
