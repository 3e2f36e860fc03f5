//! The router's part in flow control: it classifies each message once, by subject (its
//! slow-consumer policy and priority travel with it to every outbox), and it tells a
//! front-end whether a publish fits the publisher's rate limits now or how long until it
//! does (the front-end then stops reading that connection, see `shard::run_loop`).

use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::flow::{Classifier, FlowConfig, MsgClass, RateLimit, RateRule};
use crate::route::Router;

/// The flow-control state of one router.
#[derive(Debug)]
pub struct RouterFlow {
    classifier: Classifier,
    limit: RateLimit,
    rules: Vec<RateRule>,
    /// Whether any rate limit exists (if not, publishes skip the buckets entirely).
    limited: bool,
    /// Bumped by every configuration change, so connections rebuild their buckets.
    generation: u64,
    /// The refill factor f(L), set by the load sampler.
    scale: f64,
}

impl RouterFlow {
    pub fn new(config: &FlowConfig) -> Self {
        RouterFlow {
            classifier: Classifier::new(config),
            limit: config.rate_limit.clone(),
            rules: config.rate_rules.clone(),
            limited: !config.rate_limit.is_unlimited() || !config.rate_rules.is_empty(),
            generation: 1,
            scale: 1.0,
        }
    }
}

impl Router {
    /// Puts a new flow configuration in force (a reload): new rules, fresh buckets.
    pub fn set_flow(&mut self, config: &FlowConfig) {
        let generation = self.flow.generation + 1;
        let scale = self.flow.scale;
        self.flow = RouterFlow {
            generation,
            scale,
            ..RouterFlow::new(config)
        };
    }

    /// Charges the run blocks shared from now on to the shard's memory budget.
    pub fn set_accounting(&mut self, counter: std::sync::Arc<std::sync::atomic::AtomicI64>) {
        self.run.set_accounting(counter);
    }

    /// The factor rate limits refill at now, f(L).
    pub fn set_rate_scale(&mut self, scale: f64) {
        self.flow.scale = scale;
    }

    pub fn rate_scale(&self) -> f64 {
        self.flow.scale
    }

    /// How a message to `subject` is treated.
    #[inline]
    pub(super) fn classify(&mut self, subject: &[u8]) -> MsgClass {
        self.flow.classifier.classify(subject)
    }

    /// Whether `conn` may publish `len` bytes to `subject` now (its tokens are then
    /// taken) or must wait: returns how long (zero: go ahead).
    #[inline]
    pub fn admit(&mut self, conn: &Conn, subject: &[u8], len: usize) -> Duration {
        let f = &mut self.flow;
        if !f.limited {
            return Duration::ZERO;
        }
        let matched = if f.classifier.has_rate_rules() {
            Some(f.classifier.rate_rules(subject))
        } else {
            None
        };
        let matched = matched.as_ref().map_or(&[][..], |m| &m.plain[..]);
        conn.throttle().admit(
            f.generation,
            &f.limit,
            &f.rules,
            matched,
            len,
            Instant::now(),
            f.scale,
        )
    }
}
