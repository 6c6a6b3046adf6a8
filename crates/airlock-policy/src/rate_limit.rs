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
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        bucket.tokens = refilled(bucket, per_minute, now);
        bucket.updated = bucket.updated.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(retry_after(bucket.tokens, per_minute))
        }
    }

    /// What [`RateLimiter::check`] would answer at `now`, taking nothing:
    /// the whole tokens left in `key`'s bucket, or how long to wait. For
    /// showing a limit's state (the explain playground) without spending
    /// the budget of the identity it shows.
    pub fn peek(&self, key: &RateKey, per_minute: u32, now: f64) -> Result<u32, RetryAfter> {
        if per_minute == 0 {
            return Err(RetryAfter { seconds: 60.0 });
        }
        let tokens = self
            .buckets
            .get(key)
            .map_or(f64::from(per_minute), |bucket| {
                refilled(bucket, per_minute, now)
            });
        if tokens >= 1.0 {
            // Bounded by `per_minute`, so the cast cannot overflow.
            Ok(tokens.floor().min(f64::from(per_minute)) as u32)
        } else {
            Err(retry_after(tokens, per_minute))
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

/// The tokens in `bucket` at `now`: refilled at `per_minute / 60` a
/// second up to `per_minute`; a clock that goes backwards refills nothing.
fn refilled(bucket: &Bucket, per_minute: u32, now: f64) -> f64 {
    let capacity = f64::from(per_minute);
    let elapsed = (now - bucket.updated).max(0.0);
    (bucket.tokens + elapsed * capacity / 60.0).min(capacity)
}

/// How long until a bucket holding `tokens` has one.
fn retry_after(tokens: f64, per_minute: u32) -> RetryAfter {
    RetryAfter {
        seconds: (1.0 - tokens) / (f64::from(per_minute) / 60.0),
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

    #[test]
    fn peeking_takes_nothing() {
        let mut limiter = RateLimiter::new();
        assert_eq!(limiter.peek(&key(), 3, 100.0), Ok(3));
        assert!(limiter.is_empty(), "a peek creates no bucket");
        for left in [2, 1, 0] {
            assert!(limiter.check(&key(), 3, 100.0).is_ok());
            if left > 0 {
                assert_eq!(limiter.peek(&key(), 3, 100.0), Ok(left));
            }
        }
        for _ in 0..5 {
            let retry = limiter.peek(&key(), 3, 100.0).unwrap_err();
            assert!((retry.seconds - 20.0).abs() < 1e-9, "{retry:?}");
        }
        assert_eq!(
            limiter.check(&key(), 3, 100.0).unwrap_err(),
            limiter.peek(&key(), 3, 100.0).unwrap_err()
        );
        assert_eq!(limiter.peek(&key(), 3, 120.0), Ok(1));
        assert!(limiter.peek(&key(), 0, 120.0).is_err());
    }
}
