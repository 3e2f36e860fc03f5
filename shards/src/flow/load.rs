//! The load figure L of a shard, in [0, 1]: every `load.sample_interval` the shard mixes
//! its CPU busy fraction, its memory pressure (bytes it holds queued, over its share of
//! `memory.budget`) and its network pressure (the share of its connections above their
//! high watermark), weighted (`load.weights`, 0.4/0.4/0.2 by default), and smooths the
//! result with an exponentially weighted moving average so it does not oscillate. Shards
//! publish their L, so a process-wide L (their mean) is known too.
//!
//! [`Scale::factor`] turns L into the factor token buckets refill at: `scale_max` up to
//! `load_low`, `scale_min` from `load_high`, linear in between.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the load figure is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    pub sample_interval: Duration,
    pub weight_cpu: f64,
    pub weight_memory: f64,
    pub weight_network: f64,
    /// Weight of a new sample in the moving average (0 < smoothing ≤ 1).
    pub smoothing: f64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            sample_interval: Duration::from_millis(250),
            weight_cpu: 0.4,
            weight_memory: 0.4,
            weight_network: 0.2,
            smoothing: 0.3,
        }
    }
}

/// How the load scales token bucket refill rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Factor at or under `load_low`.
    pub scale_max: f64,
    /// Factor at or over `load_high`.
    pub scale_min: f64,
    pub load_low: f64,
    pub load_high: f64,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            scale_max: 1.0,
            scale_min: 0.25,
            load_low: 0.5,
            load_high: 0.9,
        }
    }
}

impl Scale {
    /// The refill factor at load `l`.
    pub fn factor(&self, l: f64) -> f64 {
        if l <= self.load_low {
            self.scale_max
        } else if l >= self.load_high {
            self.scale_min
        } else {
            let t = (l - self.load_low) / (self.load_high - self.load_low);
            self.scale_max + t * (self.scale_min - self.scale_max)
        }
    }
}

/// One sample's inputs, each in [0, 1].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    pub cpu: f64,
    pub memory: f64,
    pub network: f64,
}

/// A shard's smoothed load.
#[derive(Debug)]
pub struct LoadMeter {
    config: LoadConfig,
    value: f64,
    last: Pressure,
}

impl LoadMeter {
    pub fn new(config: LoadConfig) -> Self {
        LoadMeter {
            config,
            value: 0.0,
            last: Pressure::default(),
        }
    }

    /// Takes one sample; returns the smoothed L.
    pub fn sample(&mut self, p: Pressure) -> f64 {
        let c = &self.config;
        let total = c.weight_cpu + c.weight_memory + c.weight_network;
        let raw = if total <= 0.0 {
            0.0
        } else {
            (c.weight_cpu * p.cpu.clamp(0.0, 1.0)
                + c.weight_memory * p.memory.clamp(0.0, 1.0)
                + c.weight_network * p.network.clamp(0.0, 1.0))
                / total
        };
        self.value += c.smoothing.clamp(0.0, 1.0) * (raw - self.value);
        self.last = p;
        self.value
    }

    pub fn value(&self) -> f64 {
        self.value
    }

    /// Takes new weights and smoothing (a reload); the current value stays.
    pub fn set_config(&mut self, config: LoadConfig) {
        self.config = config;
    }

    /// The sample interval in force.
    pub fn interval(&self) -> Duration {
        self.config.sample_interval
    }

    /// The inputs of the last sample.
    pub fn last(&self) -> Pressure {
        self.last
    }
}

/// Every shard's L, readable from any thread (f64 bits in atomics).
#[derive(Debug, Clone)]
pub struct SharedLoad(Arc<[AtomicU64]>);

impl SharedLoad {
    pub fn new(shards: usize) -> Self {
        SharedLoad(
            (0..shards)
                .map(|_| AtomicU64::new(0f64.to_bits()))
                .collect(),
        )
    }

    pub fn set(&self, shard: usize, l: f64) {
        if let Some(slot) = self.0.get(shard) {
            slot.store(l.to_bits(), Ordering::Relaxed);
        }
    }

    pub fn get(&self, shard: usize) -> f64 {
        self.0
            .get(shard)
            .map_or(0.0, |s| f64::from_bits(s.load(Ordering::Relaxed)))
    }

    /// The process-wide L: the mean over the shards.
    pub fn process(&self) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let sum: f64 = (0..self.0.len()).map(|i| self.get(i)).sum();
        sum / self.0.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_factor_is_piecewise_linear() {
        let s = Scale::default();
        assert_eq!(s.factor(0.0), 1.0);
        assert_eq!(s.factor(0.5), 1.0);
        assert!((s.factor(0.7) - 0.625).abs() < 1e-12);
        assert_eq!(s.factor(0.9), 0.25);
        assert_eq!(s.factor(1.0), 0.25);
    }

    #[test]
    fn the_load_is_weighted_and_smoothed() {
        let mut m = LoadMeter::new(LoadConfig::default());
        let full = Pressure {
            cpu: 1.0,
            memory: 0.5,
            network: 0.0,
        };
        // Raw: 0.4 × 1 + 0.4 × 0.5 + 0.2 × 0 = 0.6; the average moves 30% of the way.
        assert!((m.sample(full) - 0.18).abs() < 1e-12);
        for _ in 0..60 {
            m.sample(full);
        }
        assert!((m.value() - 0.6).abs() < 1e-6, "converges to the raw value");
        // A single idle sample does not drop it to zero.
        assert!(m.sample(Pressure::default()) > 0.4);
    }

    #[test]
    fn shards_share_their_load() {
        let shared = SharedLoad::new(2);
        shared.set(0, 0.8);
        shared.set(1, 0.2);
        assert!((shared.process() - 0.5).abs() < 1e-12);
        assert_eq!(shared.get(7), 0.0, "out of range is zero, not a panic");
    }
}
