//! A client's login, the same for every protocol: the lockout check before
//! a token is even asked for, the token check (an OIDC JWT when issuers are
//! configured and it looks like one, an airlock token otherwise), and the
//! record of every failure (`auth.failure`, `auth.lockout`) with the
//! spraying counters.
//!
//! How the token arrives (a PostgreSQL password message, the MySQL auth
//! exchange, `Authorization: Bearer`) is the protocol's business; so is
//! the wording of a [`LoginRefusal`] in its dialect. The client never
//! learns why a token failed: one generic refusal for every reason.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use airlock_store::{LoginFailure, LoginTally};
use airlock_types::Protocol;

use crate::auth::{
    authenticate_bearer, authenticate_bearer_any, authenticate_token, AuthFailure, Authenticated,
    FailureOutcome, LockScope,
};
use crate::events::{record, AuthFailed, LockedOut};
use crate::state::GatewayState;

/// The store's realm of the protocol listeners' failed logins.
pub const LOGIN_REALM: &str = "login";

/// The store's realm of the admin API's failed bearer tokens.
pub const API_REALM: &str = "api";

/// How long a lockout ending at `until_micros` (store clock, which every
/// replica reads from the system) still lasts.
pub fn remaining(until_micros: i64) -> Duration {
    let left = until_micros.saturating_sub(airlock_store::now_micros());
    Duration::from_micros(u64::try_from(left).unwrap_or(0))
}

/// This process's count and the store's, as one outcome: the larger
/// counts, and a lockout started by either (the store's is every
/// replica's; the local one holds when the store could not count).
pub fn merge_tallies(local: FailureOutcome, shared: Option<LoginTally>) -> FailureOutcome {
    let Some(shared) = shared else {
        return local;
    };
    let count = |value: i64| usize::try_from(value).unwrap_or(0);
    let shared_lock = match shared.locked_now.as_deref() {
        Some("source") => Some(LockScope::Source),
        Some(_) => Some(LockScope::Identity),
        None => None,
    };
    FailureOutcome {
        source_failures: local.source_failures.max(count(shared.source_failures)),
        identity_failures: local.identity_failures.max(count(shared.identity_failures)),
        locked_now: shared_lock.or(local.locked_now),
    }
}

/// Who logs in where, over which protocol.
#[derive(Debug, Clone, Copy)]
pub struct LoginAttempt<'a> {
    pub protocol: Protocol,
    /// The identity the client claims (its user name).
    pub user: &'a str,
    /// The connection it names.
    pub connection: &'a str,
    pub session_id: &'a str,
    pub peer: SocketAddr,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// The source, or the identity from it, is locked out.
    #[error(
        "airlock: too many failed authentication attempts{whom} from {source}; try again in {seconds} s",
        whom = match scope { LockScope::Source => String::new(), LockScope::Identity => format!(" for user \"{user}\"") },
        source = peer.ip(),
        seconds = remaining.as_secs().max(1)
    )]
    LockedOut {
        scope: LockScope,
        user: String,
        peer: SocketAddr,
        remaining: Duration,
    },
    /// The token did not authenticate (whatever the reason).
    #[error(
        "airlock: authentication failed for user \"{user}\" on connection \"{connection}\": \
         the token is invalid, expired, revoked or not valid for this connection"
    )]
    Failed { user: String, connection: String },
    /// The store could not be read.
    #[error("airlock: the gateway store is unavailable; try again later")]
    StoreUnavailable,
}

impl GatewayState {
    /// Refuses an attempt from a locked-out source or identity: asked
    /// before the client sends its token.
    pub fn check_lockout(&self, attempt: &LoginAttempt<'_>) -> Result<(), LoginRefusal> {
        self.spray_guard
            .check(attempt.peer.ip(), attempt.user)
            .map_err(|locked| LoginRefusal::LockedOut {
                scope: locked.scope,
                user: attempt.user.to_string(),
                peer: attempt.peer,
                remaining: locked.remaining,
            })
    }

    /// Checks the presented token for the attempt; a failure is counted
    /// against the source and identity and recorded.
    pub async fn log_in(
        &self,
        attempt: &LoginAttempt<'_>,
        token: String,
    ) -> Result<Authenticated, LoginRefusal> {
        match self.check_token(attempt, token).await? {
            Ok(authenticated) => Ok(authenticated),
            Err(failure) => {
                self.record_login_failure(attempt, failure).await;
                Err(LoginRefusal::Failed {
                    user: attempt.user.to_string(),
                    connection: attempt.connection.to_string(),
                })
            }
        }
    }

    /// Checks a token that names its identity itself (an HTTP
    /// `Authorization: Bearer`; `attempt.user` is empty, no identity is
    /// claimed). Failures count against the source (and the empty claimed
    /// identity) and are recorded exactly like [`GatewayState::log_in`]'s.
    pub async fn log_in_bearer(
        &self,
        attempt: &LoginAttempt<'_>,
        token: String,
    ) -> Result<Authenticated, LoginRefusal> {
        match self.check_token_claimed(attempt, token, None).await? {
            Ok(authenticated) => Ok(authenticated),
            Err(failure) => {
                self.record_login_failure(attempt, failure).await;
                Err(LoginRefusal::Failed {
                    user: attempt.user.to_string(),
                    connection: attempt.connection.to_string(),
                })
            }
        }
    }

    /// Checks a bearer token that names no connection (airlock's own MCP
    /// server): an OIDC JWT may reach any connection (`None`; admission
    /// decides per connection), an airlock token the connections it is
    /// scoped to. Failures are counted and recorded like
    /// [`GatewayState::log_in`]'s.
    pub async fn log_in_bearer_any(
        &self,
        attempt: &LoginAttempt<'_>,
        token: String,
    ) -> Result<(Authenticated, Option<Vec<String>>), LoginRefusal> {
        self.check_shared_lockout(attempt).await?;
        let checked = if let (Some(validator), true) = (
            &self.oidc,
            airlock_oidc::OidcValidator::looks_like_jwt(&token),
        ) {
            match validator.validate(&token).await {
                Ok(validated) => Ok((
                    Authenticated {
                        token_id: format!("oidc:{}", validated.issuer_name),
                        identity: validated.identity,
                    },
                    None,
                )),
                Err(error) => {
                    tracing::info!(%error, "OIDC token refused");
                    Err(if error.is_provider_failure() {
                        AuthFailure::OidcUnavailable
                    } else {
                        AuthFailure::OidcInvalid
                    })
                }
            }
        } else {
            let store = Arc::clone(&self.store);
            tokio::task::spawn_blocking(move || authenticate_bearer_any(&*store, &token))
                .await
                .map_err(|_| LoginRefusal::StoreUnavailable)?
                .map_err(|error| {
                    tracing::error!(%error, "store unavailable during authentication");
                    LoginRefusal::StoreUnavailable
                })?
                .map(|(authenticated, scopes)| (authenticated, Some(scopes)))
        };
        match checked {
            Ok(done) => Ok(done),
            Err(failure) => {
                self.record_login_failure(attempt, failure).await;
                Err(LoginRefusal::Failed {
                    user: attempt.user.to_string(),
                    connection: attempt.connection.to_string(),
                })
            }
        }
    }

    async fn check_token(
        &self,
        attempt: &LoginAttempt<'_>,
        token: String,
    ) -> Result<Result<Authenticated, AuthFailure>, LoginRefusal> {
        self.check_token_claimed(attempt, token, Some(attempt.user))
            .await
    }

    /// The token check; `claimed` is the identity the client named, `None`
    /// when the token alone names it.
    async fn check_token_claimed(
        &self,
        attempt: &LoginAttempt<'_>,
        token: String,
        claimed: Option<&str>,
    ) -> Result<Result<Authenticated, AuthFailure>, LoginRefusal> {
        self.check_shared_lockout(attempt).await?;
        if let (Some(validator), true) = (
            &self.oidc,
            airlock_oidc::OidcValidator::looks_like_jwt(&token),
        ) {
            return Ok(match validator.validate(&token).await {
                Ok(validated) if claimed.is_none_or(|user| validated.identity.name == user) => {
                    Ok(Authenticated {
                        token_id: format!("oidc:{}", validated.issuer_name),
                        identity: validated.identity,
                    })
                }
                Ok(_) => Err(AuthFailure::IdentityMismatch),
                Err(error) => {
                    tracing::info!(%error, "OIDC token refused");
                    Err(if error.is_provider_failure() {
                        AuthFailure::OidcUnavailable
                    } else {
                        AuthFailure::OidcInvalid
                    })
                }
            });
        }
        let store = Arc::clone(&self.store);
        let (lookup_user, lookup_connection) =
            (claimed.map(str::to_string), attempt.connection.to_string());
        tokio::task::spawn_blocking(move || match lookup_user {
            Some(user) => authenticate_token(&*store, &token, &user, &lookup_connection),
            None => authenticate_bearer(&*store, &token, &lookup_connection),
        })
        .await
        .map_err(|_| LoginRefusal::StoreUnavailable)?
        .map_err(|error| {
            tracing::error!(%error, "store unavailable during authentication");
            LoginRefusal::StoreUnavailable
        })
    }

    /// Refuses the attempt while the store holds a lockout of its source
    /// or (source, identity), whichever replica counted the failures: asked
    /// before the token is checked, so a locked-out pair learns nothing,
    /// not even from a right token. A store that cannot answer refuses.
    async fn check_shared_lockout(&self, attempt: &LoginAttempt<'_>) -> Result<(), LoginRefusal> {
        let store = Arc::clone(&self.store);
        let (source, user) = (attempt.peer.ip().to_string(), attempt.user.to_string());
        let lockout =
            tokio::task::spawn_blocking(move || store.login_lockout(LOGIN_REALM, &source, &user))
                .await
                .map_err(|_| LoginRefusal::StoreUnavailable)?
                .map_err(|error| {
                    tracing::error!(%error, "store unavailable during the lockout check");
                    LoginRefusal::StoreUnavailable
                })?;
        match lockout {
            None => Ok(()),
            Some(lockout) => Err(LoginRefusal::LockedOut {
                scope: if lockout.scope == "source" {
                    LockScope::Source
                } else {
                    LockScope::Identity
                },
                user: attempt.user.to_string(),
                peer: attempt.peer,
                remaining: remaining(lockout.until_micros),
            }),
        }
    }

    /// Counts a failure in the store, for every replica; `None` when the
    /// store cannot (the local count still holds).
    async fn record_shared_failure(&self, attempt: &LoginAttempt<'_>) -> Option<LoginTally> {
        let store = Arc::clone(&self.store);
        let failure = self.login_failure(LOGIN_REALM, attempt.peer.ip(), attempt.user);
        match tokio::task::spawn_blocking(move || store.record_login_failure(&failure)).await {
            Ok(Ok(tally)) => Some(tally),
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot count a failed login in the store");
                None
            }
            Err(_) => None,
        }
    }

    /// How long the admin API's `source` is still locked out in the store
    /// (by any replica's count); `None` when it is not, or when the store
    /// cannot say (the token check that follows needs the store and fails
    /// closed on its own).
    pub async fn shared_api_lockout(&self, source: IpAddr) -> Option<Duration> {
        let store = Arc::clone(&self.store);
        let source = source.to_string();
        match tokio::task::spawn_blocking(move || store.login_lockout(API_REALM, &source, "")).await
        {
            Ok(Ok(lockout)) => lockout.map(|lockout| remaining(lockout.until_micros)),
            _ => None,
        }
    }

    /// Counts a wrong admin API token from `source` in the store (every
    /// wrong token from one source together, as the API's own guard does).
    pub async fn record_shared_api_failure(&self, source: IpAddr) -> Option<LoginTally> {
        let store = Arc::clone(&self.store);
        let failure = self.login_failure(API_REALM, source, "");
        match tokio::task::spawn_blocking(move || store.record_login_failure(&failure)).await {
            Ok(Ok(tally)) => Some(tally),
            _ => None,
        }
    }

    /// A failure with this gateway's lockout settings.
    pub fn login_failure(&self, realm: &str, source: IpAddr, identity: &str) -> LoginFailure {
        let micros = |duration: Duration| i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        LoginFailure {
            realm: realm.to_string(),
            source: source.to_string(),
            identity: identity.to_string(),
            window_micros: micros(self.settings.lockout_window),
            threshold: i64::from(self.config.auth.lockout_threshold.max(1)),
            source_threshold: i64::from(self.config.auth.source_threshold()),
            lockout_micros: micros(self.settings.lockout_duration),
        }
    }

    async fn record_login_failure(&self, attempt: &LoginAttempt<'_>, failure: AuthFailure) {
        let (peer, user) = (attempt.peer, attempt.user);
        let local = self.spray_guard.record_failure(peer.ip(), user);
        let outcome = merge_tallies(local, self.record_shared_failure(attempt).await);
        let protocol = attempt.protocol.as_str();
        self.metrics.auth_failed(protocol, failure.as_str(), user);
        tracing::warn!(
            client = %peer, identity = %user, connection = %attempt.connection,
            reason = failure.as_str(), source_failures = outcome.source_failures,
            "authentication failed"
        );
        let failed = AuthFailed {
            client_address: peer.to_string(),
            connection: attempt.connection.to_string(),
            identity_failures: outcome.identity_failures,
            protocol: attempt.protocol.as_str(),
            reason: failure.as_str(),
            source_failures: outcome.source_failures,
        };
        let mut events = vec![record(Some(attempt.session_id), Some(user), &failed)];
        if let Some(scope) = outcome.locked_now {
            self.metrics.locked_out(protocol, scope.as_str());
            tracing::warn!(client = %peer, identity = %user, scope = scope.as_str(),
                "locked out after repeated authentication failures");
            let locked = LockedOut {
                client_address: peer.ip().to_string(),
                lockout_seconds: self.settings.lockout_duration.as_secs(),
                protocol: attempt.protocol.as_str(),
                scope: scope.as_str(),
            };
            events.push(record(Some(attempt.session_id), Some(user), &locked));
        }
        if let Err(error) = self.recorder.record(events).await {
            tracing::error!(%error, "could not record an authentication failure");
        }
    }
}
