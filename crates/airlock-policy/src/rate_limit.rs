//! A pure token-bucket rate limiter.
//!
//! It owns the arithmetic of rate limits and nothing else: no clock (the
//! caller passes `now` in seconds, from any monotonic source), no locking
//! (the caller wraps it as it needs). Each key (identity, connection, rule)
//! has a bucket holding up to `per_minute` tokens, refilled at
//! `per_minute / 60` tokens per second; each command takes one.

use std::collections::HashMap;

/// Whose budget a command spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// Identity name.
    pub identity: String,
    /// Connection name.
    pub connection: String,
    /// The rule that sets the limit.
    pub rule: String,
}

/// Refused: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryAfter {
    /// Seconds until one token is available.
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: f64,
}

/// Token buckets by key.
#[derive(Debug, Default, Clone)]
pub struct RateLimiter {
    buckets: HashMap<RateKey, Bucket>,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one token from `key`'s bucket at time `now` (seconds), or says
    /// how long to wait. A limit of 0 always refuses.
    pub fn check(&mut self, key: &RateKey, per_minute: u32, now: f64) -> Result<(), RetryAfter> {
        if per_minute == 0 {
            return Err(RetryAfter { seconds: 60.0 });
        }
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        // A clock that goes backwards refills nothing.
        let elapsed = (now - bucket.updated).max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = bucket.updated.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(RetryAfter {
                seconds: (1.0 - bucket.tokens) / rate,
            })
        }
    }

    /// Forgets buckets idle for `idle_seconds` (they would be full again).
    pub fn forget_idle(&mut self, now: f64, idle_seconds: f64) {
        self.buckets
            .retain(|_, bucket| now - bucket.updated < idle_seconds);
    }

    /// Number of tracked keys.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RateKey {
        RateKey {
            identity: "agent-7".into(),
            connection: "prod-pg".into(),
            rule: "agent-rate".into(),
        }
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let mut limiter = RateLimiter::new();
        for _ in 0..60 {
            assert!(limiter.check(&key(), 60, 100.0).is_ok());
        }
        let retry = limiter.check(&key(), 60, 100.0).unwrap_err();
        assert!((retry.seconds - 1.0).abs() < 1e-9, "{retry:?}");
        assert!(limiter.check(&key(), 60, 100.5).is_err());
        assert!(limiter.check(&key(), 60, 101.0).is_ok());
        // Other keys have their own budget.
        let other = RateKey {
            identity: "agent-8".into(),
            ..key()
        };
        assert!(limiter.check(&other, 60, 101.0).is_ok());
        // Clock going backwards does not refill.
        assert!(limiter.check(&key(), 60, 50.0).is_err());
        assert!(limiter.check(&key(), 0, 200.0).is_err());
        limiter.forget_idle(1000.0, 60.0);
        assert!(limiter.is_empty());
    }
}
