//! Whether a new connection may stay, before anything it sends is read: its address is
//! not refused for failed logins ([`crate::auth::Failures`]), it is under
//! `limits.max_connections_per_ip`, and the server is under `limits.accept_rate`. Shared
//! by all shards and ports; a refused connection is told why in its front-end's words
//! and closed (see [`Refused`] and `CloseReason`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::auth::Failures;
use crate::close::CloseReason;
use crate::limits::Limits;

/// Why a connection was refused at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address failed to log in too often and is refused for a while.
    Banned,
    /// Its address has `max_connections_per_ip` connections already.
    PerIp,
    /// Connections arrive faster than `accept_rate`.
    Rate,
}

impl Refused {
    pub fn close_reason(self) -> CloseReason {
        match self {
            Refused::Banned => CloseReason::AuthBanned,
            Refused::PerIp => CloseReason::MaxConnectionsPerIp,
            Refused::Rate => CloseReason::AcceptRate,
        }
    }
}

/// Connections per address and the accept bucket, all shards.
#[derive(Debug, Default)]
pub struct Admission {
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    bucket: Mutex<Bucket>,
}

#[derive(Debug, Default)]
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl Admission {
    /// Admits a connection from `ip` under `limits`, or says why not. An admitted
    /// connection with an address must be [`Admission::release`]d when it closes.
    pub fn admit(
        &self,
        ip: Option<IpAddr>,
        limits: &Limits,
        failures: &Failures,
    ) -> Result<(), Refused> {
        if let Some(ip) = ip {
            if failures.banned(ip).is_some() {
                return Err(Refused::Banned);
            }
        }
        if limits.accept_rate > 0 && !self.take_token(limits) {
            return Err(Refused::Rate);
        }
        if let Some(ip) = ip {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_ip.entry(ip).or_insert(0);
            if limits.connections_per_ip_max > 0 && *n as usize >= limits.connections_per_ip_max {
                if *n == 0 {
                    per_ip.remove(&ip);
                }
                return Err(Refused::PerIp);
            }
            *n += 1;
        }
        Ok(())
    }

    /// An admitted connection from `ip` closed.
    pub fn release(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Open connections from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        let per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        per_ip.get(&ip).copied().unwrap_or(0)
    }

    fn take_token(&self, limits: &Limits) -> bool {
        let now = Instant::now();
        let burst = f64::from(limits.accept_burst.max(1));
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let tokens = match b.last {
            None => burst,
            Some(last) => {
                let refill = now.duration_since(last).as_secs_f64() * f64::from(limits.accept_rate);
                (b.tokens + refill).min(burst)
            }
        };
        b.last = Some(now);
        if tokens >= 1.0 {
            b.tokens = tokens - 1.0;
            true
        } else {
            b.tokens = tokens;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::FailurePolicy;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let limits = Limits {
            connections_per_ip_max: 2,
            ..Limits::default()
        };
        let (a, f) = (Admission::default(), Failures::default());
        assert_eq!(a.admit(ip(1), &limits, &f), Ok(()));
        assert_eq!(a.admit(ip(1), &limits, &f), Ok(()));
        assert_eq!(a.admit(ip(1), &limits, &f), Err(Refused::PerIp));
        assert_eq!(a.admit(ip(2), &limits, &f), Ok(()));
        a.release(IpAddr::from([10, 0, 0, 1]));
        assert_eq!(a.admit(ip(1), &limits, &f), Ok(()));
        assert_eq!(a.open_from(IpAddr::from([10, 0, 0, 1])), 2);
    }

    #[test]
    fn the_accept_rate_allows_a_burst_then_refuses() {
        let limits = Limits {
            accept_rate: 1,
            accept_burst: 5,
            ..Limits::default()
        };
        let (a, f) = (Admission::default(), Failures::default());
        let admitted = (0..20)
            .filter(|_| a.admit(None, &limits, &f).is_ok())
            .count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn a_banned_address_is_refused() {
        let policy = FailurePolicy {
            ban_after: 1,
            ..FailurePolicy::default()
        };
        let (a, f) = (Admission::default(), Failures::default());
        let addr = IpAddr::from([10, 0, 0, 9]);
        f.failed(addr, &policy);
        assert_eq!(
            a.admit(Some(addr), &Limits::default(), &f),
            Err(Refused::Banned)
        );
        assert_eq!(a.admit(ip(8), &Limits::default(), &f), Ok(()));
    }
}
