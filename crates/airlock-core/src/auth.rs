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

use airlock_store::prelude::*;
use airlock_store::{hash_token, now_unix, StoreError, TokenRecord};
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
    store: &dyn StoreBackend,
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

/// Checks a token presented without a claimed identity (an HTTP
/// `Authorization: Bearer`): the token names its identity itself; it must
/// be valid, unexpired, unrevoked and scoped to `connection`.
pub fn authenticate_bearer(
    store: &dyn StoreBackend,
    token: &str,
    connection: &str,
) -> Result<Result<Authenticated, AuthFailure>, StoreError> {
    if token.is_empty() || token.len() > 4096 {
        return Ok(Err(AuthFailure::Malformed));
    }
    let Some(record) = store.token_by_hash(&hash_token(token))? else {
        return Ok(Err(AuthFailure::UnknownToken));
    };
    let identity = record.identity.clone();
    Ok(check_record(&record, &identity, connection, now_unix()))
}

/// Checks a bearer token without naming a connection (airlock's own MCP
/// server, which reaches several): valid, unexpired, unrevoked and scoped
/// to at least one connection; returns the connections it is scoped to.
/// Every session it then opens is checked against its connection again.
pub fn authenticate_bearer_any(
    store: &dyn StoreBackend,
    token: &str,
) -> Result<Result<(Authenticated, Vec<String>), AuthFailure>, StoreError> {
    if token.is_empty() || token.len() > 4096 {
        return Ok(Err(AuthFailure::Malformed));
    }
    let Some(record) = store.token_by_hash(&hash_token(token))? else {
        return Ok(Err(AuthFailure::UnknownToken));
    };
    let Some(first) = record.connections.first() else {
        return Ok(Err(AuthFailure::OutOfScope));
    };
    Ok(check_record(&record, &record.identity, first, now_unix())
        .map(|authenticated| (authenticated, record.connections.clone())))
}

/// Checks a stored token for `connection` now, for the identity it names:
/// the checks every login runs once the token is found (revoked, expired,
/// scope). The explain playground names a token by its id this way.
pub fn check_token_record(
    record: &TokenRecord,
    connection: &str,
) -> Result<Authenticated, AuthFailure> {
    check_record(record, &record.identity, connection, now_unix())
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

/// What a lockout covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    /// One claimed identity from one source address: other identities
    /// behind the same address (a NAT, a shared runner) are not affected.
    Identity,
    /// Every identity from one source address: the source tried too many
    /// identities (spraying).
    Source,
}

impl LockScope {
    /// Stable name for audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Source => "source",
        }
    }
}

/// Why [`SprayGuard::check`] refuses an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// What the lock covers.
    pub scope: LockScope,
    /// How long it still lasts.
    pub remaining: Duration,
}

/// What recording a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Failures from this source within the window, this one included.
    pub source_failures: usize,
    /// Failures for this identity within the window (from any source), this
    /// one included.
    pub identity_failures: usize,
    /// `Some(scope)` when this failure started a lockout.
    pub locked_now: Option<LockScope>,
}

/// Failures within the window and the end of a lockout, for one key.
#[derive(Debug, Default)]
struct Tally {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

impl Tally {
    fn locked_at(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Drops failures older than `window`, records one at `now` and locks
    /// for `lockout` when `threshold` is reached. True when it locked now.
    fn fail(
        &mut self,
        now: Instant,
        window: Duration,
        threshold: usize,
        lockout: Duration,
    ) -> bool {
        while self
            .failures
            .front()
            .is_some_and(|first| now.duration_since(*first) >= window)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        let locked_now = self.locked_at(now).is_none() && self.failures.len() >= threshold;
        if locked_now {
            self.locked_until = Some(now + lockout);
            self.failures.clear();
        }
        locked_now
    }

    fn stale(&self, now: Instant, horizon: Duration) -> bool {
        self.locked_at(now).is_none()
            && self
                .failures
                .back()
                .is_none_or(|last| now.duration_since(*last) >= horizon)
    }
}

#[derive(Debug, Default)]
struct Counters {
    /// Per source address, every identity together.
    sources: HashMap<IpAddr, Tally>,
    /// Per source address and claimed identity.
    pairs: HashMap<(IpAddr, String), Tally>,
    /// Per identity from any source: reported in audit events, never locks
    /// (locking an identity everywhere would let anyone lock anyone out).
    identities: HashMap<String, VecDeque<Instant>>,
}

/// Counts failed authentications and locks out who crosses a threshold.
///
/// Two limits, so that one agent's failures do not lock out every other
/// agent behind the same address, while spraying identities from one
/// address is still stopped:
/// - `threshold` failures for one claimed identity from one source lock that
///   (source, identity) pair;
/// - `source_threshold` failures from one source, whatever identities were
///   claimed, lock the whole source.
///
/// A protocol with no claimed identity (the admin API's bearer tokens)
/// records its failures under an empty identity, so `threshold` applies to
/// the source. State is per process; with several replicas each counts on
/// its own. [`SprayGuard::unlock`] ends lockouts early.
#[derive(Debug)]
pub struct SprayGuard {
    threshold: usize,
    source_threshold: usize,
    window: Duration,
    lockout: Duration,
    counters: Mutex<Counters>,
}

/// Entries kept before stale ones are pruned (bounds memory under attack).
const MAX_TRACKED: usize = 100_000;

impl SprayGuard {
    /// A guard locking a (source, identity) pair for `lockout` after
    /// `threshold` failures within `window`, and a whole source after
    /// `source_threshold` failures (at least `threshold`).
    pub fn new(threshold: u32, source_threshold: u32, window: Duration, lockout: Duration) -> Self {
        let threshold = usize::try_from(threshold).unwrap_or(usize::MAX).max(1);
        let source_threshold = usize::try_from(source_threshold)
            .unwrap_or(usize::MAX)
            .max(threshold);
        Self {
            threshold,
            source_threshold,
            window,
            lockout,
            counters: Mutex::new(Counters::default()),
        }
    }

    /// The counters. A panic elsewhere while they were held (poisoning)
    /// leaves plain counts behind: they are used as they are, so lockouts
    /// keep holding (fail closed) rather than being skipped.
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sources and (source, identity) pairs locked out now (a scan of the
    /// tracked entries: for the metrics scrape, not a hot path).
    pub fn active_lockouts(&self) -> usize {
        let now = Instant::now();
        let counters = self.counters();
        counters
            .sources
            .values()
            .chain(counters.pairs.values())
            .filter(|tally| tally.locked_at(now).is_some())
            .count()
    }

    /// How long a lockout lasts.
    pub fn lockout(&self) -> Duration {
        self.lockout
    }

    /// `Err` while `source` as a whole, or `identity` from `source`, is
    /// locked out.
    pub fn check(&self, source: IpAddr, identity: &str) -> Result<(), Locked> {
        self.check_at(source, identity, Instant::now())
    }

    fn check_at(&self, source: IpAddr, identity: &str, now: Instant) -> Result<(), Locked> {
        let counters = self.counters();
        if let Some(remaining) = counters
            .sources
            .get(&source)
            .and_then(|tally| tally.locked_at(now))
        {
            return Err(Locked {
                scope: LockScope::Source,
                remaining,
            });
        }
        match counters
            .pairs
            .get(&(source, identity.to_string()))
            .and_then(|tally| tally.locked_at(now))
        {
            Some(remaining) => Err(Locked {
                scope: LockScope::Identity,
                remaining,
            }),
            None => Ok(()),
        }
    }

    /// Records a failed attempt by `identity` (as claimed) from `source`.
    pub fn record_failure(&self, source: IpAddr, identity: &str) -> FailureOutcome {
        self.record_failure_at(source, identity, Instant::now())
    }

    fn record_failure_at(&self, source: IpAddr, identity: &str, now: Instant) -> FailureOutcome {
        let mut counters = self.counters();
        let counters = &mut *counters;
        let horizon = self.window + self.lockout;
        if counters.sources.len() > MAX_TRACKED
            || counters.pairs.len() > MAX_TRACKED
            || counters.identities.len() > MAX_TRACKED
        {
            counters
                .sources
                .retain(|_, tally| !tally.stale(now, horizon));
            counters.pairs.retain(|_, tally| !tally.stale(now, horizon));
            counters.identities.retain(|_, failures| {
                failures
                    .back()
                    .is_some_and(|last| now.duration_since(*last) < horizon)
            });
        }
        let window = self.window;
        let identity_failures = {
            let failures = counters.identities.entry(identity.to_string()).or_default();
            while failures
                .front()
                .is_some_and(|first| now.duration_since(*first) >= window)
            {
                failures.pop_front();
            }
            failures.push_back(now);
            failures.len()
        };
        let source_tally = counters.sources.entry(source).or_default();
        let source_locked = source_tally.fail(now, window, self.source_threshold, self.lockout);
        // A lock restarts the tally: report the failures that led to it.
        let source_failures = if source_locked {
            self.source_threshold
        } else {
            source_tally.failures.len()
        };
        let pair_tally = counters
            .pairs
            .entry((source, identity.to_string()))
            .or_default();
        let pair_locked = pair_tally.fail(now, window, self.threshold, self.lockout);
        let locked_now = if source_locked {
            Some(LockScope::Source)
        } else if pair_locked {
            Some(LockScope::Identity)
        } else {
            None
        };
        FailureOutcome {
            source_failures,
            identity_failures,
            locked_now,
        }
    }

    /// Ends lockouts and forgets the failures counted towards them: those of
    /// `source` (every identity from it, and the source as a whole) when
    /// only `source` is given, those of `identity` (from every source, not
    /// whole-source locks) when only `identity` is given, that one pair
    /// when both are, everything when neither is. Returns how many active
    /// lockouts ended.
    pub fn unlock(&self, source: Option<IpAddr>, identity: Option<&str>) -> usize {
        let now = Instant::now();
        let mut counters = self.counters();
        let mut ended = 0;
        let mut count = |tally: &Tally| {
            if tally.locked_at(now).is_some() {
                ended += 1;
            }
        };
        counters
            .pairs
            .retain(|(pair_source, pair_identity), tally| {
                let matches = source.is_none_or(|source| source == *pair_source)
                    && identity.is_none_or(|identity| identity == pair_identity);
                if matches {
                    count(tally);
                }
                !matches
            });
        if identity.is_none() {
            counters.sources.retain(|tally_source, tally| {
                let matches = source.is_none_or(|source| source == *tally_source);
                if matches {
                    count(tally);
                }
                !matches
            });
        }
        ended
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
        let guard = SprayGuard::new(3, 3, Duration::from_secs(60), Duration::from_secs(300));
        let source: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let start = Instant::now();
        for attempt in 1..=2 {
            let outcome = guard.record_failure_at(source, "agent-7", start);
            assert_eq!(outcome.source_failures, attempt);
            assert_eq!(outcome.locked_now, None);
        }
        assert!(guard.check_at(source, "agent-7", start).is_ok());
        assert_eq!(
            guard.record_failure_at(source, "agent-8", start).locked_now,
            Some(LockScope::Source)
        );
        let locked = guard
            .check_at(source, "agent-9", start + Duration::from_secs(299))
            .unwrap_err();
        assert_eq!(locked.scope, LockScope::Source);
        assert!(guard.check_at(other, "agent-7", start).is_ok());
        assert!(guard
            .check_at(source, "agent-7", start + Duration::from_secs(301))
            .is_ok());
    }

    #[test]
    fn a_lockout_holds_after_a_panic_poisoned_the_counters() {
        let guard = std::sync::Arc::new(SprayGuard::new(
            2,
            2,
            Duration::from_secs(60),
            Duration::from_secs(300),
        ));
        let source: IpAddr = "10.0.0.1".parse().unwrap();
        let start = Instant::now();
        guard.record_failure_at(source, "a", start);
        guard.record_failure_at(source, "a", start);
        let poisoner = std::sync::Arc::clone(&guard);
        let _ = std::thread::spawn(move || {
            let _held = poisoner.counters.lock();
            panic!("poison the counters");
        })
        .join();
        assert!(guard.counters.is_poisoned());
        assert!(guard.check_at(source, "a", start).is_err());
        // And failures keep counting.
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        guard.record_failure_at(other, "b", start);
        assert_eq!(
            guard.record_failure_at(other, "b", start).locked_now,
            Some(LockScope::Source)
        );
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let guard = SprayGuard::new(2, 2, Duration::from_secs(60), Duration::from_secs(300));
        let source: IpAddr = "10.0.0.1".parse().unwrap();
        let start = Instant::now();
        guard.record_failure_at(source, "a", start);
        let outcome = guard.record_failure_at(source, "a", start + Duration::from_secs(61));
        assert_eq!(outcome.source_failures, 1);
        assert_eq!(outcome.locked_now, None);
        assert_eq!(outcome.identity_failures, 1);
    }

    #[test]
    fn one_identity_failing_does_not_lock_out_its_neighbours() {
        let guard = SprayGuard::new(3, 5, Duration::from_secs(60), Duration::from_secs(300));
        let nat: IpAddr = "10.0.0.1".parse().unwrap();
        let start = Instant::now();
        for _ in 0..2 {
            assert_eq!(
                guard.record_failure_at(nat, "agent-x", start).locked_now,
                None
            );
        }
        assert_eq!(
            guard.record_failure_at(nat, "agent-x", start).locked_now,
            Some(LockScope::Identity)
        );
        let locked = guard.check_at(nat, "agent-x", start).unwrap_err();
        assert_eq!(locked.scope, LockScope::Identity);
        assert!(guard.check_at(nat, "agent-7", start).is_ok());
        // Spraying other identities from the same source locks the source.
        assert_eq!(
            guard.record_failure_at(nat, "agent-y", start).locked_now,
            None
        );
        assert_eq!(
            guard.record_failure_at(nat, "agent-z", start).locked_now,
            Some(LockScope::Source)
        );
        assert_eq!(
            guard.check_at(nat, "agent-7", start).unwrap_err().scope,
            LockScope::Source
        );
    }

    #[test]
    fn unlock_ends_lockouts_by_source_or_identity() {
        let guard = SprayGuard::new(1, 3, Duration::from_secs(60), Duration::from_secs(300));
        let first: IpAddr = "10.0.0.1".parse().unwrap();
        let second: IpAddr = "10.0.0.2".parse().unwrap();
        guard.record_failure(first, "agent-x");
        guard.record_failure(second, "agent-x");
        guard.record_failure(second, "agent-y");
        assert!(guard.check(first, "agent-x").is_err());
        assert_eq!(guard.unlock(Some(first), Some("agent-y")), 0);
        assert_eq!(guard.unlock(None, Some("agent-x")), 2);
        assert!(guard.check(first, "agent-x").is_ok());
        assert!(guard.check(second, "agent-x").is_ok());
        assert!(guard.check(second, "agent-y").is_err());
        assert_eq!(guard.unlock(Some(second), None), 1);
        assert!(guard.check(second, "agent-y").is_ok());
        for identity in ["a", "b", "c"] {
            guard.record_failure(first, identity);
        }
        assert_eq!(
            guard.check(first, "d").unwrap_err().scope,
            LockScope::Source
        );
        assert!(guard.unlock(None, None) >= 1);
        assert!(guard.check(first, "d").is_ok());
    }
}
