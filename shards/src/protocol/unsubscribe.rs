//! Owns the UNSUB operation: the borrowed [`Unsubscribe`] view and the parsing of its argument line.
//!
//! `UNSUB <sid> [max_msgs]`.

use super::errors::ProtoError;
use super::lex::{parse_number, split_args, NumberError};

/// One unsubscribe request from a client, borrowing the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// The sid given in an earlier SUB.
    pub sid: &'a [u8],
    /// Auto-unsubscribe after this many deliveries in total; `None` removes the sub now.
    pub max_msgs: Option<u64>,
}

/// Parses the arguments after `UNSUB`: 1 or 2 whitespace-separated tokens.
pub(super) fn parse_unsub_args(args: &[u8]) -> Result<Unsubscribe<'_>, ProtoError> {
    let spans =
        split_args::<2>(args).ok_or(ProtoError::BadArguments("UNSUB: too many arguments"))?;
    match spans.as_slice() {
        [sid] => Ok(Unsubscribe {
            sid: sid.slice(args),
            max_msgs: None,
        }),
        [sid, max] => {
            let max = parse_number(max.slice(args)).map_err(|e| match e {
                NumberError::NotANumber => ProtoError::BadArguments("UNSUB: max is not a number"),
                NumberError::Overflow => ProtoError::BadArguments("UNSUB: max overflows"),
            })?;
            Ok(Unsubscribe {
                sid: sid.slice(args),
                max_msgs: Some(max),
            })
        }
        _ => Err(ProtoError::BadArguments("UNSUB: too few arguments")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsub_with_and_without_max() {
        assert_eq!(
            parse_unsub_args(b" 1"),
            Ok(Unsubscribe {
                sid: b"1",
                max_msgs: None
            })
        );
        assert_eq!(
            parse_unsub_args(b"\t\tabc  \t18446744073709551615 "),
            Ok(Unsubscribe {
                sid: b"abc",
                max_msgs: Some(u64::MAX)
            })
        );
        assert_eq!(
            parse_unsub_args(b" 1 0"),
            Ok(Unsubscribe {
                sid: b"1",
                max_msgs: Some(0)
            })
        );
    }

    #[test]
    fn unsub_errors() {
        assert_eq!(
            parse_unsub_args(b"  "),
            Err(ProtoError::BadArguments("UNSUB: too few arguments"))
        );
        assert_eq!(
            parse_unsub_args(b" 1 2 3"),
            Err(ProtoError::BadArguments("UNSUB: too many arguments"))
        );
        assert_eq!(
            parse_unsub_args(b" 1 two"),
            Err(ProtoError::BadArguments("UNSUB: max is not a number"))
        );
        assert_eq!(
            parse_unsub_args(b" 1 18446744073709551616"),
            Err(ProtoError::BadArguments("UNSUB: max overflows"))
        );
    }
}
