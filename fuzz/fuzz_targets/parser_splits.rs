//! Any bytes, split anywhere: the client protocol parser, fed the way a connection's
//! reader feeds it (append a piece, parse until it needs more, drop what was consumed),
//! finds the same operations and the same error as when it gets all the bytes at once,
//! never consumes nothing, and never asks for fewer bytes than it has.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shards::protocol::{Parsed, Parser};

/// Small limits, so the fuzzer reaches them.
const CONTROL_LINE_MAX: usize = 256;
const PAYLOAD_MAX: usize = 1024;

/// The operations found (their Debug text: owned and comparable) and the error, if any.
fn feed<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<String>, Option<String>) {
    let mut parser = Parser::new(CONTROL_LINE_MAX, PAYLOAD_MAX);
    let mut buf: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match parser.parse(&buf) {
                Ok(Parsed::Op { op, consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len(), "consumed {consumed} of {}", buf.len());
                    ops.push(format!("{op:?}"));
                    buf.drain(..consumed);
                }
                Ok(Parsed::NeedMore { needed_bytes }) => {
                    assert!(
                        needed_bytes == 0 || needed_bytes > buf.len(),
                        "needs {needed_bytes} with {} buffered",
                        buf.len()
                    );
                    assert!(
                        needed_bytes <= CONTROL_LINE_MAX + PAYLOAD_MAX + 2 + buf.len(),
                        "needs {needed_bytes}: more than a whole operation"
                    );
                    break;
                }
                Err(e) => return (ops, Some(format!("{e:?}"))),
            }
        }
    }
    (ops, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = feed([input]);
    // Pieces of 1..=seed%64+1 bytes, their sizes drawn from the input's own bytes.
    let max = usize::from(seed % 64) + 1;
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < input.len() {
        let size = 1 + usize::from(input[i % input.len()]) % max;
        let end = (at + size).min(input.len());
        pieces.push(&input[at..end]);
        at = end;
        i += 1;
    }
    assert_eq!(feed(pieces), whole, "split into pieces of at most {max}");
    assert_eq!(feed(input.chunks(1)), whole, "byte by byte");
});
