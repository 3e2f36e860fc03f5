//! Failed authentications per client address, so guessing passwords is slow: after
//! `delay_after` failures within `window`, each further failure is answered only after
//! `delay`; after `ban_after`, the address is refused outright for `ban`. A success
//! clears the address's record. Shared by all shards; at most [`TRACKED_ADDRESSES_MAX`]
//! addresses are remembered (the stalest are forgotten first).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses whose failures are remembered at once.
pub const TRACKED_ADDRESSES_MAX: usize = 65_536;

/// How failed attempts are slowed and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Failures after which each further failure is delayed (0: never).
    pub delay_after: u32,
    pub delay: Duration,
    /// Failures after which the address is refused for `ban` (0: never).
    pub ban_after: u32,
    pub ban: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            delay_after: 3,
            delay: Duration::from_secs(1),
            ban_after: 10,
            ban: Duration::from_secs(300),
            window: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    banned_until: Option<Instant>,
}

/// What a failure costs the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Failures counted within the window, this one included.
    pub failures: u32,
    /// How long to wait before answering.
    pub delay: Duration,
    /// This failure got the address banned.
    pub banned: bool,
}

/// Failures by address, all shards.
#[derive(Debug, Default)]
pub struct Failures {
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl Failures {
    /// Counts a failure from `ip` under `policy`.
    pub fn failed(&self, ip: IpAddr, policy: &FailurePolicy) -> Verdict {
        let now = Instant::now();
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= TRACKED_ADDRESSES_MAX && !records.contains_key(&ip) {
            forget_stalest(&mut records, now, policy);
        }
        let r = records.entry(ip).or_insert(Record {
            failures: 0,
            last: now,
            banned_until: None,
        });
        if now.duration_since(r.last) > policy.window {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last = now;
        let banned = policy.ban_after > 0 && r.failures >= policy.ban_after;
        if banned {
            r.banned_until = Some(now + policy.ban);
        }
        let delay = if policy.delay_after > 0 && r.failures > policy.delay_after {
            policy.delay
        } else {
            Duration::ZERO
        };
        Verdict {
            failures: r.failures,
            delay,
            banned,
        }
    }

    /// `ip` authenticated: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.remove(&ip);
    }

    /// How much longer `ip` is refused, if it is.
    pub fn banned(&self, ip: IpAddr) -> Option<Duration> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let until = records.get(&ip)?.banned_until?;
        until.checked_duration_since(Instant::now())
    }

    /// Addresses with a record now.
    pub fn tracked(&self) -> usize {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Makes room: drops the records past their window and ban, then, if none were, the
/// oldest half.
fn forget_stalest(records: &mut HashMap<IpAddr, Record>, now: Instant, policy: &FailurePolicy) {
    records.retain(|_, r| {
        now.duration_since(r.last) <= policy.window || r.banned_until.is_some_and(|u| u > now)
    });
    if records.len() >= TRACKED_ADDRESSES_MAX {
        let mut ages: Vec<Instant> = records.values().map(|r| r.last).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        records.retain(|_, r| r.last > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn failures_are_delayed_then_banned_and_a_success_clears_them() {
        let policy = FailurePolicy {
            delay_after: 2,
            delay: Duration::from_millis(500),
            ban_after: 4,
            ban: Duration::from_secs(60),
            window: Duration::from_secs(60),
        };
        let f = Failures::default();
        let a = ip(1);
        assert_eq!(f.failed(a, &policy).delay, Duration::ZERO);
        assert_eq!(f.failed(a, &policy).delay, Duration::ZERO);
        let third = f.failed(a, &policy);
        assert_eq!((third.delay, third.banned), (policy.delay, false));
        assert!(f.banned(a).is_none());
        let fourth = f.failed(a, &policy);
        assert!(fourth.banned);
        assert!(f
            .banned(a)
            .is_some_and(|left| left > Duration::from_secs(59)));
        assert!(f.banned(ip(2)).is_none(), "other addresses are not touched");
        f.succeeded(a);
        assert!(f.banned(a).is_none());
        assert_eq!(f.failed(a, &policy).failures, 1);
    }

    #[test]
    fn zero_turns_delay_and_ban_off() {
        let policy = FailurePolicy {
            delay_after: 0,
            ban_after: 0,
            ..FailurePolicy::default()
        };
        let f = Failures::default();
        for _ in 0..100 {
            let v = f.failed(ip(7), &policy);
            assert_eq!((v.delay, v.banned), (Duration::ZERO, false));
        }
    }

    #[test]
    fn the_table_stays_bounded() {
        let policy = FailurePolicy::default();
        let f = Failures::default();
        for n in 0..(TRACKED_ADDRESSES_MAX as u32 + 1000) {
            f.failed(ip(n), &policy);
        }
        assert!(f.tracked() <= TRACKED_ADDRESSES_MAX);
    }
}
