//! The `[history]` section: how many of each watched subject's last messages are kept
//! (for IRC joins and `$SC.HISTORY` requests), and which subjects are kept besides the
//! IRC channels.

use serde::Deserialize;
use shards::history::HistoryConfig;
use shards::subject::validate::is_valid_subject;

use super::ByteSize;

/// The most messages one subject may keep.
const MESSAGES_MAX: usize = 100_000;
/// The most patterns `history.subjects` may list.
const PATTERNS_MAX: usize = 1_000;

/// `[history]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySection {
    /// Messages kept per subject; 0 turns history off.
    pub messages: usize,
    /// Bytes kept per subject (headers and 64 bytes per message included).
    pub max_bytes: ByteSize,
    /// Bytes kept for all subjects together, split evenly between shards.
    pub budget: ByteSize,
    /// Subjects kept at once, all shards together.
    pub max_subjects: usize,
    /// Subjects kept whether or not an IRC channel has them (wildcards allowed).
    pub subjects: Vec<String>,
}

impl Default for HistorySection {
    fn default() -> Self {
        let h = HistoryConfig::default();
        HistorySection {
            messages: h.messages,
            max_bytes: ByteSize(h.subject_bytes_max as u64),
            budget: ByteSize(h.budget_bytes as u64),
            max_subjects: h.subjects_max,
            subjects: h.subjects,
        }
    }
}

impl HistorySection {
    /// The engine's view.
    pub fn engine(&self) -> HistoryConfig {
        let to_usize = |b: ByteSize| usize::try_from(b.0).unwrap_or(usize::MAX);
        HistoryConfig {
            messages: self.messages,
            subject_bytes_max: to_usize(self.max_bytes),
            budget_bytes: to_usize(self.budget),
            subjects_max: self.max_subjects,
            subjects: self.subjects.clone(),
        }
    }

    /// Checks the values: every bound within reason, every pattern a valid subject.
    pub fn validate(&self) -> Result<(), String> {
        if self.messages > MESSAGES_MAX {
            return Err(format!(
                "history.messages must be at most {MESSAGES_MAX}, got {}",
                self.messages
            ));
        }
        if self.max_bytes.0 < 1024 {
            return Err(format!(
                "history.max_bytes must be at least 1KiB, got {}",
                self.max_bytes.0
            ));
        }
        if self.budget.0 < self.max_bytes.0 {
            return Err(format!(
                "history.budget ({}) cannot be lower than history.max_bytes ({})",
                self.budget.0, self.max_bytes.0
            ));
        }
        if !(1..=10_000_000).contains(&self.max_subjects) {
            return Err(format!(
                "history.max_subjects must be from 1 to 10000000, got {}",
                self.max_subjects
            ));
        }
        if self.subjects.len() > PATTERNS_MAX {
            return Err(format!(
                "history.subjects may list at most {PATTERNS_MAX} subjects, got {}",
                self.subjects.len()
            ));
        }
        for (i, s) in self.subjects.iter().enumerate() {
            if !is_valid_subject(s.as_bytes()) || s.starts_with('$') {
                return Err(format!(
                    "history.subjects[{i}] is not a subject to keep: {s:?} (tokens separated \
                     by '.', wildcards '*' and a last '>', not starting with '$')"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HistorySection, String> {
        let h: HistorySection = toml::from_str(text).map_err(|e| e.to_string())?;
        h.validate().map(|()| h)
    }

    #[test]
    fn defaults_and_sizes() {
        let h = parse("max_bytes = \"64KiB\"\nsubjects = [\"logs.>\"]\n").expect("valid");
        assert_eq!(h.engine().subject_bytes_max, 64 * 1024);
        assert_eq!(h.engine().messages, 100);
        assert_eq!(h.engine().subjects, ["logs.>"]);
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse("subjects = [\"ok\", \"a..b\"]\n").expect_err("bad subject");
        assert!(e.contains("history.subjects[1]"), "{e}");
        let e = parse("subjects = [\"$SYS.>\"]\n").expect_err("$ subject");
        assert!(e.contains("history.subjects[0]"), "{e}");
        let e = parse("budget = \"1KiB\"\n").expect_err("budget");
        assert!(e.contains("history.budget"), "{e}");
        let e = parse("messages = 1000000\n").expect_err("messages");
        assert!(e.contains("history.messages"), "{e}");
    }
}
