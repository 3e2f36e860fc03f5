//! Owns the SUB operation: the borrowed [`Subscribe`] view and the parsing of its argument line.
//!
//! `SUB <subject> [queue] <sid>`. The subject and queue are not validated here.

use super::errors::ProtoError;
use super::lex::split_args;

/// One subscription request from a client, borrowing the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// The subject (possibly with wildcards), as sent.
    pub subject: &'a [u8],
    /// The queue group, if any.
    pub queue: Option<&'a [u8]>,
    /// The client's subscription id, any non-whitespace token.
    pub sid: &'a [u8],
}

/// Parses the arguments after `SUB`: 2 or 3 whitespace-separated tokens.
pub(super) fn parse_sub_args(args: &[u8]) -> Result<Subscribe<'_>, ProtoError> {
    let spans = split_args::<3>(args).ok_or(ProtoError::BadArguments("SUB: too many arguments"))?;
    match spans.as_slice() {
        [subject, sid] => Ok(Subscribe {
            subject: subject.slice(args),
            queue: None,
            sid: sid.slice(args),
        }),
        [subject, queue, sid] => Ok(Subscribe {
            subject: subject.slice(args),
            queue: Some(queue.slice(args)),
            sid: sid.slice(args),
        }),
        _ => Err(ProtoError::BadArguments("SUB: too few arguments")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_with_and_without_queue() {
        assert_eq!(
            parse_sub_args(b" foo.* 1"),
            Ok(Subscribe {
                subject: b"foo.*",
                queue: None,
                sid: b"1"
            })
        );
        assert_eq!(
            parse_sub_args(b"\tfoo.>  \t workers\t42  "),
            Ok(Subscribe {
                subject: b"foo.>",
                queue: Some(b"workers"),
                sid: b"42"
            })
        );
    }

    #[test]
    fn sub_wrong_argument_counts() {
        for args in [&b""[..], b" ", b" a", b"\ta\t"] {
            assert_eq!(
                parse_sub_args(args),
                Err(ProtoError::BadArguments("SUB: too few arguments")),
                "{args:?}"
            );
        }
        assert_eq!(
            parse_sub_args(b" a q 1 2"),
            Err(ProtoError::BadArguments("SUB: too many arguments"))
        );
    }
}
