//! Subjects: owns the rules for what a subject or queue name may be, and the per-shard
//! subscription trie that maps a published subject to the subscriptions it reaches.
//!
//! Subjects are byte slices and case-sensitive. A subject is one or more tokens separated
//! by `.`; `*` (exactly one token) and `>` (one or more trailing tokens) are wildcards only
//! as whole tokens. [`validate`] holds the byte-level rules (protocol spec section 11),
//! [`pattern`] the one-pattern matcher, [`sublist`] the trie and its bounded match cache,
//! modelled on nats-server's `server/sublist.go`. Queue groups are merged by name across
//! matching patterns, so a caller can deliver exactly one copy per group (spec section 12).

pub mod pattern;
pub mod sublist;
pub mod validate;

pub use pattern::pattern_matches;
pub use sublist::{EntryId, Match, QueueMatch, Sublist};
