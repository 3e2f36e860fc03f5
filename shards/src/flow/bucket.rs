//! Token buckets: a publisher may send `rate` messages (or bytes) per second on average,
//! `burst` at once. The clock is an argument, so the rules are tested without sleeping,
//! and the refill rate takes a scale (the load factor, see `flow::load`) on every call.

use std::time::{Duration, Instant};

/// One bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket at `now`. `burst` below one second's worth is raised to one token.
    pub fn new(rate_per_sec: u64, burst: u64, now: Instant) -> Self {
        let burst = (burst.max(1)) as f64;
        Bucket {
            rate: rate_per_sec as f64,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Refills for the time since the last call, at `rate × scale`.
    fn refill(&mut self, now: Instant, scale: f64) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate * scale).min(self.burst);
    }

    /// How long until `n` tokens are there, at `now` with the rate scaled by `scale`
    /// (zero when they are there already). Takes nothing.
    pub fn wait_for(&mut self, n: u64, now: Instant, scale: f64) -> Duration {
        self.refill(now, scale);
        // A cost larger than the burst can never be met at once: let it take the whole
        // bucket (and run into debt) rather than wait forever.
        let need = (n as f64).min(self.burst);
        if self.tokens >= need {
            return Duration::ZERO;
        }
        let rate = self.rate * scale;
        if rate <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64((need - self.tokens) / rate)
    }

    /// Takes `n` tokens (the caller checked `wait_for` first); may leave a debt when `n`
    /// is over the burst.
    pub fn take(&mut self, n: u64) {
        self.tokens -= n as f64;
    }

    /// Tokens there now (after the last refill).
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_full_bucket_gives_its_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, 100, t0);
        for _ in 0..100 {
            assert_eq!(b.wait_for(1, t0, 1.0), Duration::ZERO);
            b.take(1);
        }
        // Empty: one more token takes a millisecond at 1000/s.
        let w = b.wait_for(1, t0, 1.0);
        assert!((w.as_secs_f64() - 0.001).abs() < 1e-9, "{w:?}");
        assert_eq!(b.wait_for(1, t0 + MS, 1.0), Duration::ZERO);
    }

    #[test]
    fn over_one_second_the_rate_holds() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, 10, t0);
        let mut now = t0;
        let mut sent = 0;
        while now < t0 + Duration::from_secs(1) {
            let w = b.wait_for(1, now, 1.0);
            if w.is_zero() {
                b.take(1);
                sent += 1;
            } else {
                now += w;
            }
        }
        assert!((1000..=1011).contains(&sent), "{sent}");
    }

    #[test]
    fn the_scale_slows_the_refill() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, 1, t0);
        b.take(1);
        let full = b.wait_for(1, t0, 1.0);
        let quarter = b.wait_for(1, t0, 0.25);
        assert!((quarter.as_secs_f64() / full.as_secs_f64() - 4.0).abs() < 1e-6);
        assert_eq!(b.wait_for(1, t0 + 4 * MS, 0.25), Duration::ZERO);
    }

    #[test]
    fn a_cost_over_the_burst_goes_into_debt_instead_of_waiting_forever() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100, 10, t0);
        assert_eq!(b.wait_for(50, t0, 1.0), Duration::ZERO);
        b.take(50);
        assert!(b.tokens() < 0.0);
        // The debt is paid back at the rate: 40 tokens short plus 10 for the next full.
        let w = b.wait_for(10, t0, 1.0);
        assert!((w.as_secs_f64() - 0.5).abs() < 1e-9, "{w:?}");
    }
}
