//! Routing rules: which subjects a log record goes to. Conditions in one rule AND
//! together, values in one condition OR together; a record goes to every matching
//! rule's subject, plus the `all` subject; a matching rule with `stop` ends the
//! evaluation. The keywords of all rules are found with one multi-pattern automaton
//! (aho-corasick, ASCII case-insensitive) in one pass over the message, so a thousand
//! keywords, in one rule or spread over many, cost about as much as one; regexes use the
//! `regex` crate (linear time) with a size limit.

use std::cell::{Cell, RefCell};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexBuilder};

use crate::logs::is_ingest;
use crate::logs::record::{canonical_level, Record};
use crate::subject::validate::is_valid_literal_subject;

/// The largest compiled regex a rule may have.
pub const REGEX_BYTES_MAX: usize = 1 << 20;
/// The most rules, and the most keywords one rule may list.
pub const RULES_MAX: usize = 1_000;
pub const KEYWORDS_MAX: usize = 10_000;
/// The most keywords of all rules together.
pub const KEYWORDS_TOTAL_MAX: usize = 100_000;
/// The longest subject a template may produce (longer ones are not routed).
pub const SUBJECT_BYTES_MAX: usize = 256;

/// One `[[logs.route]]` as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteConfig {
    /// The subject, with `{level}`, `{category}`, `{app}`, `{host}` or `{<field>}` in it.
    pub to: String,
    pub level: Vec<String>,
    pub category: Vec<String>,
    pub keyword: Vec<String>,
    pub regex: Option<String>,
    pub stop: bool,
}

/// Why a rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("logs.route[{index}]: {reason}")]
pub struct RuleError {
    pub index: usize,
    pub reason: String,
}

/// One piece of a subject template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// The subject as configured (the rule's name in monitoring).
    config_to: String,
    to: Vec<Piece>,
    levels: Vec<&'static str>,
    categories: Vec<String>,
    /// Its keywords are in the rules' automaton.
    has_keywords: bool,
    regex: Option<Regex>,
    stop: bool,
    counts: Cell<RuleCounts>,
}

/// What one rule did since the rules were loaded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RuleCounts {
    /// Records whose conditions it matched.
    pub matched: u64,
    /// Of those, the records sent to its subject (a templated subject that cannot be
    /// made from the record's fields sends nothing).
    pub routed: u64,
}

/// One rule's counts, for monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub index: usize,
    pub to: String,
    pub counts: RuleCounts,
}

/// The compiled rules, and the subject every record also goes to.
#[derive(Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    all: Option<String>,
    /// Every rule's keywords, and for each pattern the rule it belongs to.
    keywords: Option<AhoCorasick>,
    keyword_rule: Vec<u32>,
    /// Scratch: which rules' keywords the message holds.
    hits: RefCell<Vec<bool>>,
}

impl Rules {
    /// Compiles `configs`; the first bad rule is named with its index and the reason.
    pub fn compile(configs: &[RouteConfig], all: Option<&str>) -> Result<Rules, RuleError> {
        if configs.len() > RULES_MAX {
            return Err(RuleError {
                index: RULES_MAX,
                reason: format!("at most {RULES_MAX} rules"),
            });
        }
        if let Some(all) = all {
            if !is_valid_literal_subject(all.as_bytes()) {
                return Err(RuleError {
                    index: 0,
                    reason: format!("logs.all_subject {all:?} is not a subject"),
                });
            }
            if is_ingest(all) {
                return Err(RuleError {
                    index: 0,
                    reason: format!(
                        "logs.all_subject {all:?} is an ingest subject (logs would be routed again)"
                    ),
                });
            }
        }
        let rules: Vec<Rule> = configs
            .iter()
            .enumerate()
            .map(|(index, c)| Rule::compile(c).map_err(|reason| RuleError { index, reason }))
            .collect::<Result<_, _>>()?;
        let total: usize = configs.iter().map(|c| c.keyword.len()).sum();
        if total > KEYWORDS_TOTAL_MAX {
            return Err(RuleError {
                index: configs.len().saturating_sub(1),
                reason: format!("at most {KEYWORDS_TOTAL_MAX} keywords in all rules, got {total}"),
            });
        }
        let (patterns, keyword_rule): (Vec<&str>, Vec<u32>) = configs
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.keyword.iter().map(move |k| (k.as_str(), i as u32)))
            .unzip();
        let keywords = (!patterns.is_empty())
            .then(|| {
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| RuleError {
                        index: 0,
                        reason: format!("the keywords of all rules: {e}"),
                    })
            })
            .transpose()?;
        Ok(Rules {
            hits: RefCell::new(vec![false; rules.len()]),
            rules,
            all: all.map(str::to_string),
            keywords,
            keyword_rule,
        })
    }

    /// Notes in `hits` the rules whose keywords `message` holds (one pass for them all).
    fn find_keywords(&self, message: &str, hits: &mut [bool]) {
        hits.fill(false);
        if let Some(ac) = &self.keywords {
            for m in ac.find_overlapping_iter(message) {
                if let Some(&rule) = self.keyword_rule.get(m.pattern().as_usize()) {
                    if let Some(h) = hits.get_mut(rule as usize) {
                        *h = true;
                    }
                }
            }
        }
    }

    /// The subjects `record` goes to, each once, in rule order (the `all` subject last);
    /// each rule counts whether it matched and whether it routed.
    pub fn route(&self, record: &Record) -> Vec<String> {
        let mut subjects: Vec<String> = Vec::new();
        let mut hits = self.hits.borrow_mut();
        self.find_keywords(&record.message, &mut hits);
        for (rule, &keyword_hit) in self.rules.iter().zip(hits.iter()) {
            if !rule.matches(record, keyword_hit) {
                continue;
            }
            let subject = rule.subject(record);
            let mut counts = rule.counts.get();
            counts.matched += 1;
            counts.routed += u64::from(subject.is_some());
            rule.counts.set(counts);
            if let Some(s) = subject {
                if !subjects.contains(&s) {
                    subjects.push(s);
                }
            }
            if rule.stop {
                break;
            }
        }
        if let Some(all) = &self.all {
            if !subjects.contains(all) {
                subjects.push(all.clone());
            }
        }
        subjects
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Each rule's counts, in order.
    pub fn rows(&self) -> Vec<RuleRow> {
        self.rules
            .iter()
            .enumerate()
            .map(|(index, r)| RuleRow {
                index,
                to: r.config_to.clone(),
                counts: r.counts.get(),
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    fn compile(c: &RouteConfig) -> Result<Rule, String> {
        let to = template(&c.to)?;
        let levels = c
            .level
            .iter()
            .map(|l| {
                canonical_level(l).ok_or_else(|| {
                    format!("level {l:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if c.keyword.len() > KEYWORDS_MAX {
            return Err(format!(
                "at most {KEYWORDS_MAX} keywords, got {}",
                c.keyword.len()
            ));
        }
        if c.keyword.iter().any(String::is_empty) {
            return Err("a keyword is empty".into());
        }
        let regex = c
            .regex
            .as_deref()
            .map(|r| {
                RegexBuilder::new(r)
                    .size_limit(REGEX_BYTES_MAX)
                    .build()
                    .map_err(|e| format!("regex {r:?}: {e}"))
            })
            .transpose()?;
        Ok(Rule {
            config_to: c.to.clone(),
            counts: Cell::new(RuleCounts::default()),
            to,
            levels,
            categories: c.category.clone(),
            has_keywords: !c.keyword.is_empty(),
            regex,
            stop: c.stop,
        })
    }

    /// Whether `r` meets every condition (`keyword_hit`: its message holds one of the
    /// rule's keywords).
    fn matches(&self, r: &Record, keyword_hit: bool) -> bool {
        (self.levels.is_empty() || self.levels.contains(&r.level.as_str()))
            && (self.categories.is_empty()
                || r.category
                    .as_deref()
                    .is_some_and(|c| self.categories.iter().any(|w| w.eq_ignore_ascii_case(c))))
            && (!self.has_keywords || keyword_hit)
            && self
                .regex
                .as_ref()
                .map_or(true, |re| re.is_match(&r.message))
    }

    /// The rule's subject for `r`: each `{field}` is the record's value made one subject
    /// token (lower case; anything but letters, digits, `-` and `_` becomes `_`; `_` if
    /// missing). None if the result is not a usable subject.
    fn subject(&self, r: &Record) -> Option<String> {
        let mut out = String::new();
        for piece in &self.to {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => out.push_str(&token(field(r, f).as_deref())),
            }
        }
        (out.len() <= SUBJECT_BYTES_MAX
            && is_valid_literal_subject(out.as_bytes())
            && !is_ingest(&out))
        .then_some(out)
    }
}

/// The value of field `name` of `r`, as text.
fn field(r: &Record, name: &str) -> Option<String> {
    match name {
        "level" => Some(r.level.clone()),
        "category" => r.category.clone(),
        "app" => r.app.clone(),
        "host" => r.host.clone(),
        other => r.fields.get(other).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        }),
    }
}

/// `value` as one subject token.
pub fn token(value: Option<&str>) -> String {
    let t: String = value
        .unwrap_or("")
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

/// Splits `to` into text and `{field}` pieces; the text must make a subject.
fn template(to: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = to;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("to = {to:?}: a '{{' without its '}}'"));
        };
        let name = &rest[open + 1..open + close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("to = {to:?}: {{{name}}} is not a field name"));
        }
        pieces.push(Piece::Field(name.to_string()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    // With every field as a plain token, it must be a subject to publish to.
    let sample: String = pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.as_str(),
            Piece::Field(_) => "x",
        })
        .collect();
    if !is_valid_literal_subject(sample.as_bytes()) || sample.starts_with('$') {
        return Err(format!(
            "to = {to:?} is not a subject to publish to (tokens separated by '.', no wildcards, not starting with '$')"
        ));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::record::parse_line;

    fn rule(to: &str) -> RouteConfig {
        RouteConfig {
            to: to.into(),
            ..RouteConfig::default()
        }
    }

    fn route(rules: &Rules, line: &str) -> Vec<String> {
        let r = parse_line(line.as_bytes(), "2026-12-02T00:00:00Z", 4096).expect("record");
        rules.route(&r)
    }

    fn example() -> Rules {
        let rules = [
            RouteConfig {
                level: vec!["ERROR".into(), "fatal".into()],
                ..rule("logs.error")
            },
            RouteConfig {
                category: vec!["SECURITY".into()],
                keyword: vec!["auth".into(), "permission".into()],
                ..rule("logs.security")
            },
            RouteConfig {
                keyword: vec!["sql".into(), "database".into()],
                ..rule("logs.database")
            },
            RouteConfig {
                regex: Some(r"timeout after \d+ms".into()),
                ..rule("logs.{app}.{level}")
            },
        ];
        Rules::compile(&rules, Some("logs.all")).expect("valid")
    }

    #[test]
    fn conditions_and_together_values_or_together() {
        let r = example();
        assert_eq!(route(&r, "INFO hello"), ["logs.all"]);
        assert_eq!(route(&r, "FATAL [x] boom"), ["logs.error", "logs.all"]);
        // Category and keyword both needed.
        assert_eq!(
            route(&r, "INFO [security] AUTH failed"),
            ["logs.security", "logs.all"]
        );
        assert_eq!(route(&r, "INFO [web] auth failed"), ["logs.all"]);
        assert_eq!(
            route(&r, "WARN slow SQL query"),
            ["logs.database", "logs.all"]
        );
        let json = r#"{"level":"error","app":"API v2","message":"db timeout after 300ms"}"#;
        assert_eq!(
            route(&r, json),
            ["logs.error", "logs.api_v2.error", "logs.all"]
        );
        // A missing field is `_`.
        assert_eq!(
            route(&r, "INFO timeout after 5ms"),
            ["logs._.info", "logs.all"]
        );
    }

    #[test]
    fn stop_ends_the_evaluation() {
        let rules = [
            RouteConfig {
                level: vec!["DEBUG".into()],
                stop: true,
                ..rule("logs.debug.{category}")
            },
            rule("logs.everything"),
        ];
        let r = Rules::compile(&rules, None).expect("valid");
        assert_eq!(route(&r, "DEBUG [cache] miss"), ["logs.debug.cache"]);
        assert_eq!(route(&r, "INFO [cache] hit"), ["logs.everything"]);
        // The stopping rule matched twice (once above); the next one only for the INFO.
        let rec = parse_line(b"DEBUG x", "t", 100).expect("record");
        r.route(&rec);
        let matched: Vec<u64> = r.rows().iter().map(|row| row.counts.matched).collect();
        assert_eq!(matched, [2, 1]);
    }

    #[test]
    fn bad_rules_are_named_with_their_index() {
        let bad = |c: RouteConfig| {
            Rules::compile(&[rule("ok"), c], None)
                .expect_err("bad")
                .to_string()
        };
        assert!(bad(rule("logs.*")).starts_with("logs.route[1]: to = \"logs.*\""));
        assert!(bad(rule("logs.{")).contains("without its"));
        assert!(bad(rule("$SYS.x")).contains("not a subject"));
        let e = bad(RouteConfig {
            level: vec!["LOUD".into()],
            ..rule("a")
        });
        assert!(e.contains("level \"LOUD\""), "{e}");
        let e = bad(RouteConfig {
            regex: Some("(unclosed".into()),
            ..rule("a")
        });
        assert!(e.starts_with("logs.route[1]: regex"), "{e}");
        let e = bad(RouteConfig {
            regex: Some(r"\w{1000}\w{1000}\w{1000}".into()),
            ..rule("a")
        });
        assert!(e.contains("regex"), "{e}");
    }

    #[test]
    fn a_thousand_keywords_are_one_automaton() {
        let keywords: Vec<String> = (0..1000).map(|i| format!("kw{i:04}")).collect();
        let r = Rules::compile(
            &[RouteConfig {
                keyword: keywords,
                ..rule("logs.hit")
            }],
            None,
        )
        .expect("valid");
        assert_eq!(route(&r, "INFO found KW0999 here"), ["logs.hit"]);
        assert!(route(&r, "INFO nothing").is_empty());
    }

    #[test]
    fn each_rule_counts_what_it_matched_and_routed() {
        let r = example();
        route(&r, "ERROR [security] auth failed: timeout after 30ms");
        route(&r, "ERROR plain");
        // The template needs the app: missing, it becomes `_`, so it still routes.
        route(&r, "INFO timeout after 5ms");
        let rows = r.rows();
        let counts: Vec<(&str, u64, u64)> = rows
            .iter()
            .map(|row| (row.to.as_str(), row.counts.matched, row.counts.routed))
            .collect();
        assert_eq!(
            counts,
            [
                ("logs.error", 2, 2),
                ("logs.security", 1, 1),
                ("logs.database", 0, 0),
                ("logs.{app}.{level}", 2, 2),
            ]
        );
        // A template that makes an ingest subject matches and routes nowhere.
        let r = Rules::compile(&[rule("logs.{app}")], None).expect("valid");
        let line = r#"{"level":"INFO","app":"ingest","message":"m"}"#;
        assert!(route(&r, line).is_empty());
        assert_eq!(
            r.rows()[0].counts,
            RuleCounts {
                matched: 1,
                routed: 0
            }
        );
        let e = Rules::compile(&[], Some("logs.ingest.x")).expect_err("ingest as all");
        assert!(e.reason.contains("ingest subject"), "{e}");
    }

    #[test]
    fn tokens_are_sanitised() {
        assert_eq!(token(Some("API v2.1/α")), "api_v2_1__");
        assert_eq!(token(Some("")), "_");
        assert_eq!(token(None), "_");
    }
}
