//! A publisher's rate limits: the buckets of one connection, for every limit that applies
//! to it (`rate_limit` for all its publishes, plus one pair per `[[rate_limit.rule]]` its
//! subjects fall under, made the first time it publishes there). A publish passes when
//! every bucket it draws from has its tokens; otherwise the caller is told how long until
//! they are there and stops reading the connection meanwhile, so TCP pushes back and
//! nothing is lost. Refills run at `rate × f(L)` (see [`crate::flow::Scale`]).
//!
//! The clock is an argument everywhere: the rules are tested without sleeping.

use std::time::{Duration, Instant};

use crate::flow::{Bucket, RateLimit, RateRule};

/// The burst a limit gets when none is set: a tenth of a second's worth, at least one.
pub fn default_burst(rate_per_sec: u64) -> u64 {
    (rate_per_sec / 10).max(1)
}

/// The message and byte buckets of one limit (either may be unlimited).
#[derive(Debug, Clone)]
struct Pair {
    msgs: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Pair {
    fn new(limit: &RateLimit, now: Instant) -> Self {
        let bucket = |rate: u64, burst: u64| {
            (rate > 0).then(|| {
                let burst = if burst == 0 {
                    default_burst(rate)
                } else {
                    burst
                };
                Bucket::new(rate, burst, now)
            })
        };
        Pair {
            msgs: bucket(limit.msgs_per_sec, limit.burst_msgs),
            bytes: bucket(limit.bytes_per_sec, limit.burst_bytes),
        }
    }

    fn wait(&mut self, len: u64, now: Instant, scale: f64) -> Duration {
        let m = self
            .msgs
            .as_mut()
            .map_or(Duration::ZERO, |b| b.wait_for(1, now, scale));
        let b = self
            .bytes
            .as_mut()
            .map_or(Duration::ZERO, |b| b.wait_for(len, now, scale));
        m.max(b)
    }

    fn take(&mut self, len: u64) {
        if let Some(b) = &mut self.msgs {
            b.take(1);
        }
        if let Some(b) = &mut self.bytes {
            b.take(len);
        }
    }
}

/// One connection's rate-limit state, and the time it spent throttled.
#[derive(Debug, Default)]
pub struct Throttle {
    /// The configuration generation the buckets were made for (0: none yet).
    generation: u64,
    all: Option<Pair>,
    /// By rule index; made on first use.
    rules: Vec<Option<Pair>>,
    episodes: u64,
    throttled: Duration,
}

impl Throttle {
    /// How long until a publish of `len` bytes fits every limit that applies to it: the
    /// connection's (`limit`) and those of `matched` (indexes into `rules`). When it fits
    /// now, its tokens are taken and the answer is zero. `generation` names the
    /// configuration: when it changes (a reload), the buckets start over, full.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        generation: u64,
        limit: &RateLimit,
        rules: &[RateRule],
        matched: &[u32],
        len: usize,
        now: Instant,
        scale: f64,
    ) -> Duration {
        if self.generation != generation {
            self.generation = generation;
            self.all = (!limit.is_unlimited()).then(|| Pair::new(limit, now));
            self.rules.clear();
        }
        let len = len as u64;
        let mut wait = self
            .all
            .as_mut()
            .map_or(Duration::ZERO, |p| p.wait(len, now, scale));
        for &i in matched {
            let i = i as usize;
            let Some(rule) = rules.get(i) else {
                debug_assert!(false, "a matched rule index is in range");
                continue;
            };
            if self.rules.len() <= i {
                self.rules.resize(i + 1, None);
            }
            let pair = self.rules[i].get_or_insert_with(|| Pair::new(&rule.limit, now));
            wait = wait.max(pair.wait(len, now, scale));
        }
        if wait.is_zero() {
            if let Some(p) = &mut self.all {
                p.take(len);
            }
            for &i in matched {
                if let Some(Some(p)) = self.rules.get_mut(i as usize) {
                    p.take(len);
                }
            }
        }
        wait
    }

    /// The connection was not read for `d` because of its limits.
    pub fn note_throttled(&mut self, d: Duration) {
        self.episodes += 1;
        self.throttled += d;
    }

    /// Pauses so far, and their total time.
    pub fn throttled(&self) -> (u64, Duration) {
        (self.episodes, self.throttled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limit(msgs: u64, bytes: u64) -> RateLimit {
        RateLimit {
            msgs_per_sec: msgs,
            bytes_per_sec: bytes,
            ..RateLimit::default()
        }
    }

    /// Publishes of `len` bytes for `secs` seconds of simulated time, as fast as allowed.
    fn run(
        t: &mut Throttle,
        limit: &RateLimit,
        rules: &[RateRule],
        matched: &[u32],
        secs: f64,
        scale: f64,
    ) -> u64 {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs_f64(secs);
        let (mut now, mut sent) = (t0, 0);
        while now < end {
            let w = t.admit(1, limit, rules, matched, 100, now, scale);
            if w.is_zero() {
                sent += 1;
            } else {
                now += w;
            }
        }
        sent
    }

    #[test]
    fn the_default_burst_is_a_tenth_of_a_second() {
        assert_eq!(default_burst(1000), 100);
        assert_eq!(default_burst(5), 1);
    }

    #[test]
    fn messages_per_second_hold_over_three_seconds() {
        let mut t = Throttle::default();
        let sent = run(&mut t, &limit(1000, 0), &[], &[], 3.0, 1.0);
        // The burst (100) plus three seconds of refill (give or take float rounding).
        assert!((3099..=3101).contains(&sent), "{sent}");
    }

    #[test]
    fn bytes_per_second_bind_when_tighter() {
        let mut t = Throttle::default();
        // 100-byte messages at 10 000 B/s: 100 msgs/s, though the message limit is 1000.
        let sent = run(&mut t, &limit(1000, 10_000), &[], &[], 2.0, 1.0);
        assert!((200..=211).contains(&sent), "{sent}");
    }

    #[test]
    fn the_load_scale_slows_the_rate() {
        let mut t = Throttle::default();
        let sent = run(&mut t, &limit(1000, 0), &[], &[], 2.0, 0.25);
        assert!(
            (599..=601).contains(&sent),
            "100 of burst + 2 s × 250/s: {sent}"
        );
    }

    #[test]
    fn a_rule_limits_only_its_subjects_and_the_tighter_limit_wins() {
        let rules = vec![RateRule {
            subjects: "logs.>".into(),
            limit: limit(50, 0),
        }];
        let mut t = Throttle::default();
        let sent = run(&mut t, &limit(0, 0), &rules, &[0], 1.0, 1.0);
        assert!((54..=55).contains(&sent), "5 of burst + 50: {sent}");
        let (mut t, now) = (Throttle::default(), Instant::now());
        let free = (0..10_000).all(|_| {
            t.admit(1, &limit(0, 0), &rules, &[], 100, now, 1.0)
                .is_zero()
        });
        assert!(free, "unlimited elsewhere");
    }

    #[test]
    fn a_new_generation_starts_full() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        let l = limit(10, 0);
        assert!(t.admit(1, &l, &[], &[], 1, t0, 1.0).is_zero());
        assert!(
            !t.admit(1, &l, &[], &[], 1, t0, 1.0).is_zero(),
            "burst of 1 spent"
        );
        let l = limit(1000, 0);
        assert!(t.admit(2, &l, &[], &[], 1, t0 + MS, 1.0).is_zero());
        t.note_throttled(5 * MS);
        assert_eq!(t.throttled(), (1, 5 * MS));
    }
}
