//! `rate_limit`: a token bucket per client address; requests beyond it get 429.
//!
//! One bucket for everyone would let a single client's burst lock every other client out,
//! the liveness probe included. So each client address (each /64 for IPv6, which hands a
//! host that many) has its own bucket, and the table of buckets is bounded: when it is full,
//! buckets that have refilled (the same as new) are dropped first, then the one used least
//! recently. A dropped bucket only means that client starts again from a full one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most client buckets kept at once.
const MAX_CLIENTS: usize = 4096;

/// At most `burst` requests at once per client, refilled one per `interval`.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// Every client starts with a full bucket.
    pub fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `client`'s bucket if one is left.
    pub fn allow(&self, client: IpAddr) -> bool {
        self.allow_at(client, Instant::now())
    }

    /// How many client buckets are kept now.
    pub fn clients(&self) -> usize {
        self.lock().len()
    }

    fn allow_at(&self, client: IpAddr, now: Instant) -> bool {
        let key = bucket_key(client);
        let mut buckets = self.lock();
        if !buckets.contains_key(&key) && buckets.len() >= MAX_CLIENTS {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let tokens = (bucket.tokens + self.refill(bucket.last, now)).min(self.burst);
        bucket.last = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            true
        } else {
            bucket.tokens = tokens;
            false
        }
    }

    fn refill(&self, since: Instant, now: Instant) -> f64 {
        if self.interval.is_zero() {
            return self.burst;
        }
        now.saturating_duration_since(since).as_secs_f64() / self.interval.as_secs_f64()
    }

    fn make_room(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        buckets.retain(|_, b| b.tokens + self.refill(b.last, now) < self.burst);
        if buckets.len() >= MAX_CLIENTS
            && let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(&ip, _)| ip)
        {
            buckets.remove(&oldest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// IPv4 (also when mapped into IPv6) by address, IPv6 by /64.
fn bucket_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new(Duration::from_secs(1), 2);
        let t0 = Instant::now();
        assert!(limiter.allow_at(A, t0));
        assert!(limiter.allow_at(A, t0));
        assert!(!limiter.allow_at(A, t0));
        assert!(limiter.allow_at(A, t0 + Duration::from_millis(1100)));
        assert!(!limiter.allow_at(A, t0 + Duration::from_millis(1200)));
    }

    #[test]
    fn one_clients_burst_leaves_the_others_their_own() {
        let limiter = RateLimiter::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        for _ in 0..100 {
            limiter.allow_at(A, t0);
        }
        assert!(!limiter.allow_at(A, t0));
        assert!(limiter.allow_at(B, t0));
        assert!(limiter.allow_at(B, t0));
    }

    #[test]
    fn an_ipv6_host_is_one_client_per_64() {
        let limiter = RateLimiter::new(Duration::from_secs(60), 1);
        let t0 = Instant::now();
        assert!(limiter.allow_at("2001:db8::1".parse().unwrap(), t0));
        assert!(!limiter.allow_at("2001:db8::ffff:1".parse().unwrap(), t0));
        assert!(limiter.allow_at("2001:db8:0:1::1".parse().unwrap(), t0));
        assert!(limiter.allow_at("::ffff:10.0.0.1".parse().unwrap(), t0));
        assert!(!limiter.allow_at(A, t0), "mapped IPv4 is the same client");
    }

    #[test]
    fn the_table_of_clients_stays_bounded() {
        let limiter = RateLimiter::new(Duration::from_secs(60), 5);
        let t0 = Instant::now();
        for n in 0..(3 * MAX_CLIENTS as u32) {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            assert!(limiter.allow_at(client, t0 + Duration::from_micros(u64::from(n))));
        }
        assert!(limiter.clients() <= MAX_CLIENTS);
    }
}
