//! Subject permissions: which subjects a user may publish to and subscribe to, as
//! nats-server has them. Each direction has an optional allow list (absent: everything)
//! and a deny list; deny wins. Entries may hold wildcards; a subscribe entry may name a
//! queue group (`"orders.* workers"`), which then limits the queue groups a subscription
//! to those subjects may use. `allow_responses` lets a user publish to the reply
//! subjects of the requests delivered to it (see [`super::responses`]).
//!
//! A connection checks its publishes through a [`PublishCache`]: the answer for a subject
//! is worked out once and kept (up to [`PERMISSION_CACHE_MAX`] subjects).

use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::subject::pattern::pattern_matches;

/// Subjects whose publish verdict one connection keeps (nats-server keeps 128).
pub const PERMISSION_CACHE_MAX: usize = 128;

/// `allow_responses` as written: how many replies each request allows, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePermission {
    /// Publishes allowed to one reply subject (nats-server's default: 1).
    pub max: u32,
    /// How long after the request the reply is allowed (zero: no limit; default 2 min).
    pub expires: Duration,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        ResponsePermission {
            max: 1,
            expires: Duration::from_secs(120),
        }
    }
}

/// One direction's lists as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    /// None: everything is allowed (unless denied).
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
}

/// A user's permissions as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionsConfig {
    pub publish: Option<SubjectPermission>,
    pub subscribe: Option<SubjectPermission>,
    pub responses: Option<ResponsePermission>,
}

/// Why a permission entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error("{direction} permission entry \"{entry}\" is not a valid subject")]
    BadSubject {
        direction: &'static str,
        entry: String,
    },
    #[error(
        "{direction} permission entry \"{entry}\": only subscribe entries may name a queue group"
    )]
    QueueOnPublish {
        direction: &'static str,
        entry: String,
    },
}

/// One list entry: a subject pattern and, for subscribe entries, an optional queue group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    subject: Box<[u8]>,
    queue: Option<Box<[u8]>>,
}

/// One direction, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    allow: Option<Vec<Entry>>,
    deny: Vec<Entry>,
}

/// What matched a subject in one list: plain entries, and the queue groups of queue entries.
struct Matched<'a> {
    plain: bool,
    queues: Vec<&'a [u8]>,
}

impl Rules {
    fn compile(
        p: &SubjectPermission,
        direction: &'static str,
        queues: bool,
    ) -> Result<Rules, PermissionError> {
        let entries = |list: &[String]| {
            list.iter()
                .map(|e| entry(e, direction, queues))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Rules {
            allow: p.allow.as_deref().map(entries).transpose()?,
            deny: entries(&p.deny)?,
        })
    }

    fn matched<'a>(list: &'a [Entry], subject: &[u8]) -> Matched<'a> {
        Rules::matched_by(list, subject, pattern_matches)
    }

    /// The entries `covers(entry, subject)` says yes to.
    fn matched_by<'a>(
        list: &'a [Entry],
        subject: &[u8],
        covers: fn(&[u8], &[u8]) -> bool,
    ) -> Matched<'a> {
        let mut m = Matched {
            plain: false,
            queues: Vec::new(),
        };
        for e in list {
            if covers(&e.subject, subject) {
                match &e.queue {
                    None => m.plain = true,
                    Some(q) => m.queues.push(q),
                }
            }
        }
        m
    }

    /// Whether a publish to `subject` is allowed by the lists.
    pub fn allows(&self, subject: &[u8]) -> bool {
        let allowed = match &self.allow {
            Some(list) => Rules::matched(list, subject).plain,
            None => true,
        };
        allowed && !Rules::matched(&self.deny, subject).plain
    }

    /// Whether a subscription to `subject` (in `queue`, if given) is allowed: nats-server's
    /// `canSubscribe`. A queue entry that matches decides for subscriptions in a queue.
    ///
    /// One difference, on the safe side: a wildcard subscription is allowed only by an
    /// entry that covers every subject it can receive (`baz.*` does not allow `baz.>`,
    /// which nats-server lets through).
    pub fn allows_subscription(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let mut allowed = true;
        if let Some(list) = &self.allow {
            let m = Rules::matched_by(list, subject, covers);
            allowed = m.plain;
            if let Some(q) = queue {
                if !m.queues.is_empty() {
                    allowed = queue_matches(q, &m.queues);
                }
            }
        }
        if allowed {
            let m = Rules::matched(&self.deny, subject);
            allowed = !m.plain;
            if let Some(q) = queue {
                if !m.queues.is_empty() {
                    allowed = !queue_matches(q, &m.queues);
                }
            }
        }
        allowed
    }

    /// Whether some subject `pattern` can receive is denied: then each message is checked
    /// against the deny list when it is delivered (a subscription to `orders.>` with
    /// `orders.secret` denied receives everything but `orders.secret`).
    pub fn deny_overlaps(&self, pattern: &[u8]) -> bool {
        self.deny
            .iter()
            .any(|e| e.queue.is_none() && patterns_overlap(&e.subject, pattern))
    }

    /// Whether anything is denied.
    pub fn has_deny(&self) -> bool {
        !self.deny.is_empty()
    }

    /// Whether a message on `subject` is denied (the delivery-time check).
    pub fn denies(&self, subject: &[u8]) -> bool {
        Rules::matched(&self.deny, subject).plain
    }
}

fn entry(text: &str, direction: &'static str, queues: bool) -> Result<Entry, PermissionError> {
    let bad = || PermissionError::BadSubject {
        direction,
        entry: text.into(),
    };
    let mut words = text.split_whitespace();
    let subject = words.next().ok_or_else(bad)?;
    let queue = words.next();
    if words.next().is_some() || !crate::subject::validate::is_valid_subject(subject.as_bytes()) {
        return Err(bad());
    }
    if queue.is_some() && !queues {
        return Err(PermissionError::QueueOnPublish {
            direction,
            entry: text.into(),
        });
    }
    Ok(Entry {
        subject: subject.as_bytes().into(),
        queue: queue.map(|q| q.as_bytes().into()),
    })
}

/// nats-server's `queueMatches`: the queue is one of `queues`, literally or by their
/// wildcards.
fn queue_matches(queue: &[u8], queues: &[&[u8]]) -> bool {
    queues
        .iter()
        .any(|q| *q == queue || pattern_matches(q, queue))
}

/// Whether every subject `pattern` matches also matches `entry`.
pub fn covers(entry: &[u8], pattern: &[u8]) -> bool {
    let mut e = entry.split(|&c| c == b'.');
    let mut p = pattern.split(|&c| c == b'.');
    loop {
        match (e.next(), p.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) => return true,
            (Some(b"*"), Some(t)) if t != b">" => {}
            (Some(x), Some(y)) if x == y && y != b"*" && y != b">" => {}
            _ => return false,
        }
    }
}

/// Whether some literal subject matches both patterns.
pub fn patterns_overlap(a: &[u8], b: &[u8]) -> bool {
    let mut a = a.split(|&c| c == b'.');
    let mut b = b.split(|&c| c == b'.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) | (Some(_), Some(b">")) => return true,
            (Some(x), Some(y)) if x == y || x == b"*" || y == b"*" => {}
            _ => return false,
        }
    }
}

/// A user's permissions, compiled; shared by all its connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// None: every publish is allowed.
    pub publish: Option<Rules>,
    /// None: every subscription is allowed.
    pub subscribe: Option<Rules>,
    pub responses: Option<ResponsePermission>,
}

impl Permissions {
    pub fn compile(cfg: &PermissionsConfig) -> Result<Permissions, PermissionError> {
        let mut publish = cfg
            .publish
            .as_ref()
            .map(|p| Rules::compile(p, "publish", false))
            .transpose()?;
        if cfg.responses.is_some() {
            // As nats-server: with allow_responses, publishes not explicitly allowed are
            // refused (replies excepted).
            let rules = publish.get_or_insert_with(Rules::default);
            rules.allow.get_or_insert_with(Vec::new);
        }
        Ok(Permissions {
            publish,
            subscribe: cfg
                .subscribe
                .as_ref()
                .map(|p| Rules::compile(p, "subscribe", true))
                .transpose()?,
            responses: cfg.responses,
        })
    }

    /// Whether a subscription to `subject` in `queue` is allowed.
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.subscribe
            .as_ref()
            .map_or(true, |r| r.allows_subscription(subject, queue))
    }

    /// Whether messages to a subscription on `pattern` must be checked one by one against
    /// the subscribe deny list.
    pub fn filters_deliveries(&self, pattern: &[u8]) -> bool {
        self.subscribe
            .as_ref()
            .is_some_and(|r| r.deny_overlaps(pattern))
    }
}

/// One connection's publish verdicts, kept per subject.
#[derive(Debug, Default)]
pub struct PublishCache {
    verdicts: FxHashMap<Box<[u8]>, bool>,
}

impl PublishCache {
    /// Whether `rules` allow a publish to `subject`, from the cache when it was asked before.
    #[inline]
    pub fn allows(&mut self, rules: &Rules, subject: &[u8]) -> bool {
        if let Some(&v) = self.verdicts.get(subject) {
            return v;
        }
        let v = rules.allows(subject);
        if self.verdicts.len() >= PERMISSION_CACHE_MAX {
            self.verdicts.clear();
        }
        self.verdicts.insert(subject.into(), v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn perms(
        publish: Option<(Option<&[&str]>, &[&str])>,
        subscribe: Option<(Option<&[&str]>, &[&str])>,
    ) -> Permissions {
        let side = |p: Option<(Option<&[&str]>, &[&str])>| {
            p.map(|(allow, deny)| SubjectPermission {
                allow: allow.map(list),
                deny: list(deny),
            })
        };
        Permissions::compile(&PermissionsConfig {
            publish: side(publish),
            subscribe: side(subscribe),
            responses: None,
        })
        .expect("valid")
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = perms(Some((Some(&["orders.>"]), &["orders.secret"])), None);
        let rules = p.publish.as_ref().expect("publish rules");
        assert!(rules.allows(b"orders.new"));
        assert!(rules.allows(b"orders.a.b"));
        assert!(!rules.allows(b"orders.secret"));
        assert!(!rules.allows(b"payments.new"));
        assert!(p.can_subscribe(b"anything", None));
    }

    #[test]
    fn no_allow_list_allows_all_but_the_denied() {
        let p = perms(None, Some((None, &["admin.>"])));
        assert!(p.can_subscribe(b"foo", None));
        assert!(!p.can_subscribe(b"admin.x", None));
        assert!(!p.can_subscribe(b"admin.>", None));
        // A wildcard that merely includes denied subjects is allowed; its deliveries are
        // filtered.
        assert!(p.can_subscribe(b">", None));
        assert!(p.filters_deliveries(b">"));
        assert!(p.filters_deliveries(b"*.x"));
        assert!(!p.filters_deliveries(b"foo.*"));
    }

    #[test]
    fn wildcard_subscriptions_need_a_wildcard_allow_entry() {
        let p = perms(None, Some((Some(&["foo.bar", "baz.*"]), &[])));
        assert!(p.can_subscribe(b"foo.bar", None));
        assert!(!p.can_subscribe(b"foo.*", None));
        assert!(p.can_subscribe(b"baz.*", None));
        assert!(p.can_subscribe(b"baz.q", None));
        assert!(!p.can_subscribe(b"baz.>", None));
    }

    #[test]
    fn queue_entries_limit_queue_groups() {
        let p = perms(None, Some((Some(&["jobs.* workers", "news"]), &[])));
        assert!(p.can_subscribe(b"jobs.a", Some(b"workers")));
        assert!(!p.can_subscribe(b"jobs.a", Some(b"others")));
        assert!(!p.can_subscribe(b"jobs.a", None));
        assert!(p.can_subscribe(b"news", None));
        assert!(p.can_subscribe(b"news", Some(b"any")));

        let p = perms(None, Some((None, &["jobs.> spies"])));
        assert!(p.can_subscribe(b"jobs.a", None));
        assert!(p.can_subscribe(b"jobs.a", Some(b"workers")));
        assert!(!p.can_subscribe(b"jobs.a", Some(b"spies")));

        let p = perms(None, Some((Some(&["jobs.* v1.*"]), &[])));
        assert!(p.can_subscribe(b"jobs.a", Some(b"v1.blue")));
        assert!(p.can_subscribe(b"jobs.a", Some(b"v1.*")));
        assert!(!p.can_subscribe(b"jobs.a", Some(b"v2.blue")));
    }

    #[test]
    fn allow_responses_refuses_other_publishes() {
        let p = Permissions::compile(&PermissionsConfig {
            responses: Some(ResponsePermission::default()),
            ..PermissionsConfig::default()
        })
        .expect("valid");
        let rules = p.publish.as_ref().expect("an empty allow list");
        assert!(!rules.allows(b"anything"));
    }

    #[test]
    fn bad_entries_are_named() {
        let e = Permissions::compile(&PermissionsConfig {
            publish: Some(SubjectPermission {
                allow: Some(list(&["a..b"])),
                deny: vec![],
            }),
            ..PermissionsConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "publish permission entry \"a..b\" is not a valid subject"
        );
        let e = Permissions::compile(&PermissionsConfig {
            publish: Some(SubjectPermission {
                allow: Some(list(&["a q"])),
                deny: vec![],
            }),
            ..PermissionsConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("queue group"), "{e}");
    }

    #[test]
    fn covering() {
        assert!(covers(b"a.>", b"a.*"));
        assert!(covers(b"a.>", b"a.b.>"));
        assert!(covers(b"a.*", b"a.*"));
        assert!(covers(b"a.*", b"a.b"));
        assert!(!covers(b"a.*", b"a.>"));
        assert!(!covers(b"a.b", b"a.*"));
        assert!(!covers(b"a.>", b"a"));
        assert!(covers(b">", b"x.>"));
        assert!(!covers(b"a.b", b"a.b.c"));
    }

    #[test]
    fn overlap() {
        assert!(patterns_overlap(b"a.*", b"*.b"));
        assert!(patterns_overlap(b"a.>", b"a.b.c"));
        assert!(!patterns_overlap(b"a.>", b"a"));
        assert!(!patterns_overlap(b"a.b", b"a.c"));
        assert!(!patterns_overlap(b"a.*", b"a.b.c"));
        assert!(patterns_overlap(b">", b"x"));
    }

    #[test]
    fn the_cache_answers_like_the_rules_and_stays_bounded() {
        let p = perms(Some((Some(&["a.*"]), &["a.x"])), None);
        let rules = p.publish.as_ref().expect("rules");
        let mut cache = PublishCache::default();
        for i in 0..1000 {
            let s = format!("a.{i}");
            assert_eq!(
                cache.allows(rules, s.as_bytes()),
                rules.allows(s.as_bytes())
            );
            assert!(cache.verdicts.len() <= PERMISSION_CACHE_MAX);
        }
        assert!(!cache.allows(rules, b"a.x"));
        assert!(!cache.allows(rules, b"a.x"));
    }
}
