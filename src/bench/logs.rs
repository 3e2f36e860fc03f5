//! The `logs` scenario's workload: 20 routing rules (levels, keywords, a regex), the logs
//! sent (a deterministic mix that each rule selects a share of), how many copies each log
//! makes, and the same routing written for shardcast (`[logs]`) and for rsyslog
//! (RainerScript filters and `omfwd` actions), so both relays do the same work.

use std::fmt::Write as _;

use crate::bench::args::LogInputArg;

/// Services named in the logs (`svcN:`), one keyword rule each.
const SERVICES: usize = 15;
/// Where every log also goes.
pub const ALL_SUBJECT: &str = "logs.all";

/// What a rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The level is one of these.
    Levels(Vec<&'static str>),
    /// The message holds one of these (ASCII case-insensitive).
    Keywords(Vec<String>),
    /// The message matches this regex (also a POSIX ERE, for rsyslog).
    Regex(&'static str),
}

/// One routing rule of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchRule {
    pub to: String,
    pub condition: Condition,
}

/// The 20 rules, in order.
pub fn rules() -> Vec<BenchRule> {
    let mut rules = vec![
        BenchRule {
            to: "logs.error".into(),
            condition: Condition::Levels(vec!["ERROR", "FATAL"]),
        },
        BenchRule {
            to: "logs.warn".into(),
            condition: Condition::Levels(vec!["WARN"]),
        },
        BenchRule {
            to: "logs.security".into(),
            condition: Condition::Keywords(vec!["auth".into(), "permission".into()]),
        },
        BenchRule {
            to: "logs.database".into(),
            condition: Condition::Keywords(vec!["sql".into(), "database".into()]),
        },
        BenchRule {
            to: "logs.timeouts".into(),
            condition: Condition::Regex("timeout after [0-9]+ms"),
        },
    ];
    rules.extend((0..SERVICES).map(|k| BenchRule {
        to: format!("logs.svc.s{k}"),
        condition: Condition::Keywords(vec![format!("svc{k}:")]),
    }));
    rules
}

/// Every subject a log can be routed to: the rules' and `logs.all`.
pub fn subjects() -> Vec<String> {
    let mut s: Vec<String> = rules().into_iter().map(|r| r.to).collect();
    s.push(ALL_SUBJECT.into());
    s
}

/// Log `i`: its level and its message.
pub fn log(i: u64) -> (&'static str, String) {
    let level = match i % 10 {
        0 => "ERROR",
        1 => "WARN",
        5 if i % 100 == 5 => "FATAL",
        _ => "INFO",
    };
    let mut msg = format!(
        "svc{}: request {i} handled for client {}",
        i % SERVICES as u64,
        i * 7919 % 10007
    );
    if i % 7 == 0 {
        msg.push_str(", auth token refreshed");
    }
    if i % 5 == 0 {
        msg.push_str(", sql select took 4ms");
    }
    if i % 11 == 0 {
        msg.push_str(&format!(", upstream timeout after {}ms", 100 + i % 900));
    }
    (level, msg)
}

/// The copies log `i` makes: one per matching rule, plus `logs.all`.
pub fn copies(i: u64, rules: &[BenchRule]) -> u64 {
    let (level, msg) = log(i);
    let lower = msg.to_ascii_lowercase();
    let matched = rules
        .iter()
        .filter(|r| match &r.condition {
            Condition::Levels(l) => l.contains(&level),
            Condition::Keywords(k) => k.iter().any(|w| lower.contains(&w.to_ascii_lowercase())),
            Condition::Regex(_) => has_timeout(&msg),
        })
        .count();
    matched as u64 + 1
}

/// What the regex rule matches, without a regex engine in the generator.
fn has_timeout(msg: &str) -> bool {
    msg.split("timeout after ").skip(1).any(|rest| {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with("ms")
    })
}

/// The syslog severity of a level (RFC 5424).
fn severity(level: &str) -> u8 {
    match level {
        "FATAL" => 2,
        "ERROR" => 3,
        "WARN" => 4,
        "DEBUG" => 7,
        _ => 6,
    }
}

/// Log `i` as `input` carries it, without the framing (`\n`, or a NATS PUB).
pub fn line(i: u64, input: LogInputArg) -> String {
    let (level, msg) = log(i);
    match input {
        LogInputArg::Nats | LogInputArg::Tcp => format!("{level} {msg}"),
        LogInputArg::SyslogTcp | LogInputArg::SyslogUdp => {
            // Facility user (1): PRI = 8 + severity.
            let pri = 8 + u16::from(severity(level));
            format!("<{pri}>1 2026-12-02T10:00:00.000Z benchhost bench - - - {msg}")
        }
    }
}

/// The `[logs]` section (and its rules) shardcast needs for the scenario.
pub fn shardcast_config() -> String {
    let mut out = String::from("[logs]\nenabled = true\n");
    let quoted = |v: &[String]| {
        v.iter()
            .map(|w| format!("{w:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for r in rules() {
        let _ = write!(out, "\n[[logs.route]]\nto = {:?}\n", r.to);
        let _ = match &r.condition {
            Condition::Levels(l) => {
                let l: Vec<String> = l.iter().map(|s| s.to_string()).collect();
                writeln!(out, "level = [{}]", quoted(&l))
            }
            Condition::Keywords(k) => writeln!(out, "keyword = [{}]", quoted(k)),
            Condition::Regex(re) => writeln!(out, "regex = '{re}'"),
        };
    }
    out
}

/// The same routing for rsyslog: syslog over TCP and UDP on `port`, each rule's matches (and
/// every message, for `logs.all`) forwarded over TCP to 127.0.0.1:`sink` by `watchers`
/// actions, so each copy reaches `watchers` connections as it reaches `watchers` NATS
/// subscribers in shardcast.
pub fn rsyslog_config(port: u16, sink: u16, watchers: usize, work_dir: &str) -> String {
    let mut out = format!(
        "global(workDirectory=\"{work_dir}\" maxMessageSize=\"64k\")\n\
         module(load=\"imtcp\")\n\
         module(load=\"imudp\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"route\")\n\
         input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"route\" rcvbufSize=\"4m\")\n\
         ruleset(name=\"route\") {{\n"
    );
    let actions = |out: &mut String, indent: &str| {
        for _ in 0..watchers {
            let _ = writeln!(
                out,
                "{indent}action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{sink}\" protocol=\"tcp\")"
            );
        }
    };
    for r in rules() {
        let test = match &r.condition {
            Condition::Levels(l) => l
                .iter()
                .map(|lv| format!("$syslogseverity == {}", severity(lv)))
                .collect::<Vec<_>>()
                .join(" or "),
            Condition::Keywords(k) => k
                .iter()
                .map(|w| format!("$msg contains_i {w:?}"))
                .collect::<Vec<_>>()
                .join(" or "),
            Condition::Regex(re) => format!("re_match($msg, {re:?})"),
        };
        let _ = writeln!(out, "  # {}\n  if {test} then {{", r.to);
        actions(&mut out, "    ");
        out.push_str("  }\n");
    }
    let _ = writeln!(out, "  # {ALL_SUBJECT}");
    actions(&mut out, "  ");
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_rules_each_select_some_logs() {
        let rules = rules();
        assert_eq!(rules.len(), 20);
        for (n, r) in rules.iter().enumerate() {
            let single = [r.clone()];
            let hits = (0..1000).filter(|&i| copies(i, &single) == 2).count();
            assert!(
                hits > 0 && hits < 1000,
                "rule {n} ({}) selects {hits}",
                r.to
            );
        }
        // A log matches its service, maybe an error/warn, auth, sql, timeout: 2 to 7 copies.
        let total: u64 = (0..1000).map(|i| copies(i, &rules)).sum();
        assert!((2000..7000).contains(&total), "{total}");
    }

    #[test]
    fn the_shardcast_config_is_valid_and_routes_as_counted() {
        let section: toml::Value = toml::from_str(&shardcast_config()).expect("TOML");
        let logs: crate::config::logs::LogsSection = section["logs"]
            .clone()
            .try_into()
            .expect("a [logs] section");
        logs.validate().expect("valid rules");
        let engine = logs.engine();
        let compiled =
            shards::logs::Rules::compile(&engine.routes, Some(ALL_SUBJECT)).expect("rules");
        let rules = rules();
        for i in 0..500 {
            let (level, msg) = log(i);
            let text = format!("{level} {msg}");
            let record = shards::logs::parse_line(text.as_bytes(), "t", 4096).expect("record");
            assert_eq!(
                compiled.route(&record).len() as u64,
                copies(i, &rules),
                "log {i}: {text}"
            );
        }
    }

    #[test]
    fn the_rsyslog_config_has_a_filter_per_rule_and_three_actions_each() {
        let conf = rsyslog_config(5514, 6000, 3, "/tmp/x");
        assert_eq!(conf.matches("if ").count(), 20);
        assert_eq!(conf.matches("type=\"omfwd\"").count(), 21 * 3);
        assert!(
            conf.contains("re_match($msg, \"timeout after [0-9]+ms\")"),
            "{conf}"
        );
        assert!(
            conf.contains("$syslogseverity == 3 or $syslogseverity == 2"),
            "{conf}"
        );
    }
}
