//! Authentication of clients: token checks and credential-spraying
//! protection.
//!
//! [`authenticate_token`] is the one place that turns a presented token into
//! an [`Identity`]; every protocol calls it. Failures carry a precise reason
//! for the audit log, but clients only ever see one generic message so that
//! no answer reveals whether an identity or token exists.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airlock_store::{hash_token, now_unix, Store, StoreError, TokenRecord};
use airlock_types::{AuthMethod, Identity, IdentityKind};

/// Why a token was refused (for the audit log, never for the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    UnknownToken,
    Expired,
    Revoked,
    IdentityMismatch,
    OutOfScope,
    Malformed,
    /// An OIDC token that does not validate (signature, claims, issuer).
    OidcInvalid,
    /// The OIDC provider could not be reached to vouch for the token.
    OidcUnavailable,
}

impl AuthFailure {
    /// Stable name for audit events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownToken => "unknown_token",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::IdentityMismatch => "identity_mismatch",
            Self::OutOfScope => "out_of_scope",
            Self::Malformed => "malformed",
            Self::OidcInvalid => "oidc_invalid",
            Self::OidcUnavailable => "oidc_provider_unavailable",
        }
    }
}

/// A successfully authenticated token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    pub token_id: String,
}

/// Checks `token` for `user` on `connection`.
pub fn authenticate_token(
    store: &Store,
    token: &str,
    user: &str,
    connection: &str,
) -> Result<Result<Authenticated, AuthFailure>, StoreError> {
    if token.is_empty() || token.len() > 4096 {
        return Ok(Err(AuthFailure::Malformed));
    }
    let Some(record) = store.token_by_hash(&hash_token(token))? else {
        return Ok(Err(AuthFailure::UnknownToken));
    };
    Ok(check_record(&record, user, connection, now_unix()))
}

fn check_record(
    record: &TokenRecord,
    user: &str,
    connection: &str,
    now: i64,
) -> Result<Authenticated, AuthFailure> {
    if record.revoked_at.is_some() {
        return Err(AuthFailure::Revoked);
    }
    if record.expires_at <= now {
        return Err(AuthFailure::Expired);
    }
    if record.identity != user {
        return Err(AuthFailure::IdentityMismatch);
    }
    if !record.connections.iter().any(|scope| scope == connection) {
        return Err(AuthFailure::OutOfScope);
    }
    let kind = IdentityKind::parse(&record.kind).ok_or(AuthFailure::Malformed)?;
    Ok(Authenticated {
        identity: Identity {
            name: record.identity.clone(),
            kind,
            groups: record.groups.clone(),
            auth_method: AuthMethod::AirlockToken {
                token_id: record.id.clone(),
            },
            expires_at: record.expires_at,
        },
        token_id: record.id.clone(),
    })
}

/// What recording a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Failures from this source within the window, this one included.
    pub source_failures: usize,
    /// Failures for this identity within the window, this one included.
    pub identity_failures: usize,
    /// True when this failure locked the source out.
    pub locked_now: bool,
}

#[derive(Debug, Default)]
struct Counters {
    sources: HashMap<IpAddr, (VecDeque<Instant>, Option<Instant>)>,
    identities: HashMap<String, VecDeque<Instant>>,
}

/// Counts failed authentications per source address and per identity, and
/// locks out a source that crosses the threshold.
///
/// State is per process; with several replicas each counts on its own.
#[derive(Debug)]
pub struct SprayGuard {
    threshold: usize,
    window: Duration,
    lockout: Duration,
    counters: Mutex<Counters>,
}

/// Entries kept before stale ones are pruned (bounds memory under attack).
const MAX_TRACKED: usize = 100_000;

impl SprayGuard {
    /// A guard locking a source for `lockout` after `threshold` failures
    /// within `window`.
    pub fn new(threshold: u32, window: Duration, lockout: Duration) -> Self {
        Self {
            threshold: usize::try_from(threshold).unwrap_or(usize::MAX).max(1),
            window,
            lockout,
            counters: Mutex::new(Counters::default()),
        }
    }

    /// `Err(remaining)` while `source` is locked out.
    pub fn check(&self, source: IpAddr) -> Result<(), Duration> {
        self.check_at(source, Instant::now())
    }

    fn check_at(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(counters) = self.counters.lock() else {
            return Ok(());
        };
        match counters.sources.get(&source).and_then(|(_, until)| *until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub fn record_failure(&self, source: IpAddr, identity: &str) -> FailureOutcome {
        self.record_failure_at(source, identity, Instant::now())
    }

    fn record_failure_at(&self, source: IpAddr, identity: &str, now: Instant) -> FailureOutcome {
        let Ok(mut counters) = self.counters.lock() else {
            return FailureOutcome {
                source_failures: 0,
                identity_failures: 0,
                locked_now: false,
            };
        };
        if counters.sources.len() > MAX_TRACKED || counters.identities.len() > MAX_TRACKED {
            let horizon = self.window + self.lockout;
            counters.sources.retain(|_, (failures, until)| {
                until.is_some_and(|until| until > now)
                    || failures
                        .back()
                        .is_some_and(|last| now.duration_since(*last) < horizon)
            });
            counters.identities.retain(|_, failures| {
                failures
                    .back()
                    .is_some_and(|last| now.duration_since(*last) < horizon)
            });
        }
        let window = self.window;
        let prune = |failures: &mut VecDeque<Instant>| {
            while failures
                .front()
                .is_some_and(|first| now.duration_since(*first) >= window)
            {
                failures.pop_front();
            }
        };
        let identity_failures = {
            let failures = counters.identities.entry(identity.to_string()).or_default();
            prune(failures);
            failures.push_back(now);
            failures.len()
        };
        let (failures, until) = counters.sources.entry(source).or_default();
        prune(failures);
        failures.push_back(now);
        let source_failures = failures.len();
        let already_locked = until.is_some_and(|until| until > now);
        let locked_now = !already_locked && source_failures >= self.threshold;
        if locked_now {
            *until = Some(now + self.lockout);
            failures.clear();
        }
        FailureOutcome {
            source_failures,
            identity_failures,
            locked_now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: i64) -> TokenRecord {
        TokenRecord {
            id: "tok_1".into(),
            hash: String::new(),
            identity: "agent-7".into(),
            kind: "agent".into(),
            groups: vec!["agents".into()],
            connections: vec!["pg".into()],
            created_at: 0,
            expires_at,
            revoked_at: None,
        }
    }

    #[test]
    fn token_checks() {
        let ok = record(100);
        assert!(check_record(&ok, "agent-7", "pg", 50).is_ok());
        assert_eq!(
            check_record(&ok, "agent-7", "pg", 100).unwrap_err(),
            AuthFailure::Expired
        );
        assert_eq!(
            check_record(&ok, "agent-8", "pg", 50).unwrap_err(),
            AuthFailure::IdentityMismatch
        );
        assert_eq!(
            check_record(&ok, "agent-7", "other", 50).unwrap_err(),
            AuthFailure::OutOfScope
        );
        let mut revoked = record(100);
        revoked.revoked_at = Some(1);
        assert_eq!(
            check_record(&revoked, "agent-7", "pg", 50).unwrap_err(),
            AuthFailure::Revoked
        );
    }

    #[test]
    fn locks_a_source_after_the_threshold_and_releases_it() {
        let guard = SprayGuard::new(3, Duration::from_secs(60), Duration::from_secs(300));
        let source: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let start = Instant::now();
        for attempt in 1..=2 {
            let outcome = guard.record_failure_at(source, "agent-7", start);
            assert_eq!(outcome.source_failures, attempt);
            assert!(!outcome.locked_now);
        }
        assert!(guard.check_at(source, start).is_ok());
        assert!(guard.record_failure_at(source, "agent-8", start).locked_now);
        assert!(guard
            .check_at(source, start + Duration::from_secs(299))
            .is_err());
        assert!(guard.check_at(other, start).is_ok());
        assert!(guard
            .check_at(source, start + Duration::from_secs(301))
            .is_ok());
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let guard = SprayGuard::new(2, Duration::from_secs(60), Duration::from_secs(300));
        let source: IpAddr = "10.0.0.1".parse().unwrap();
        let start = Instant::now();
        guard.record_failure_at(source, "a", start);
        let outcome = guard.record_failure_at(source, "a", start + Duration::from_secs(61));
        assert_eq!(outcome.source_failures, 1);
        assert!(!outcome.locked_now);
        assert_eq!(outcome.identity_failures, 1);
    }
}
