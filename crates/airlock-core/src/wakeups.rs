//! Acting on what other replicas sharing the store wrote: the live policy
//! version, review decisions (held commands wait on [`ReviewWakeups`]),
//! revoked tokens and revoked grants (their live sessions here are
//! closed), lockouts.
//!
//! The store's change feed (PostgreSQL `LISTEN`) is a hint only: on every
//! hint and every resync (the listener connected again, or this task fell
//! behind) the state is re-read from the store, never taken from the
//! hint. Polling stays as the fallback: every [`Cadence`] interval the
//! same re-reads run anyway, often while no feed is live (SQLite, or the
//! listener is down), rarely while one is. A lost hint only delays.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use airlock_store::{ChangeFeed, StoreChange};

use crate::state::GatewayState;

/// How often each re-read runs without a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// The live policy version.
    pub policy: Duration,
    /// Revoked tokens and grants of live sessions.
    pub sessions: Duration,
    /// A held command's review.
    pub review: Duration,
}

impl Cadence {
    /// With no live feed: a change elsewhere is seen within these.
    pub const POLLING: Cadence = Cadence {
        policy: Duration::from_millis(500),
        sessions: Duration::from_millis(1000),
        review: Duration::from_millis(200),
    };

    /// With a live feed, hints come at once: polling only covers a hint
    /// lost around a reconnect.
    pub const HINTED: Cadence = Cadence {
        policy: Duration::from_secs(5),
        sessions: Duration::from_secs(5),
        review: Duration::from_secs(2),
    };

    /// The cadence for the store's feed as it is now.
    pub fn for_feed(feed: Option<&ChangeFeed>) -> Cadence {
        if feed.is_some_and(ChangeFeed::is_live) {
            Self::HINTED
        } else {
            Self::POLLING
        }
    }
}

/// Wakes commands held for review when a review may have been decided
/// elsewhere: a generation number that every hint bumps.
#[derive(Debug)]
pub struct ReviewWakeups {
    generation: watch::Sender<u64>,
}

impl Default for ReviewWakeups {
    fn default() -> Self {
        Self {
            generation: watch::channel(0).0,
        }
    }
}

impl ReviewWakeups {
    /// A receiver that sees the next wake-up.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Tells every held command to re-read its review.
    pub fn wake(&self) {
        self.generation.send_modify(|generation| {
            *generation = generation.wrapping_add(1);
        });
    }
}

impl GatewayState {
    /// The cadence of re-reads now.
    pub fn cadence(&self) -> Cadence {
        Cadence::for_feed(self.store.change_feed().as_deref())
    }

    /// Closes the live sessions here whose token was revoked through any
    /// replica (one store read for all of them). Returns how many were
    /// told to close.
    pub fn close_revoked_sessions(&self) -> Result<usize, airlock_store::StoreError> {
        let ids: BTreeSet<String> = self
            .sessions
            .list()
            .into_iter()
            .map(|session| session.token_id)
            .filter(|id| !id.starts_with("oidc:"))
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = ids.into_iter().collect();
        let mut closed = 0;
        for id in self.store.revoked_among(&ids)? {
            closed += self.sessions.kill_token(&id, "the token was revoked");
        }
        Ok(closed)
    }

    /// Closes the live sessions here that a JIT grant admitted when the
    /// identity no longer holds an active grant for the connection although
    /// the session's grant has not reached its end (it was revoked, through
    /// any replica).
    pub fn close_ungranted_sessions(&self) -> Result<usize, airlock_store::StoreError> {
        // Whole seconds, like the grants' own times; a grant that reaches
        // its end meanwhile is left to the session's expiry timer.
        let now = airlock_store::now_unix();
        let granted: BTreeSet<(String, String)> =
            self.sessions.granted_pairs(now).into_iter().collect();
        let mut closed = 0;
        for (identity, connection) in granted {
            if self.store.active_grant(&identity, &connection)?.is_none() {
                closed += self.sessions.kill_where_granted(
                    &identity,
                    &connection,
                    now + 1,
                    "the access grant was revoked",
                );
            }
        }
        Ok(closed)
    }
}

/// What one round re-reads.
#[derive(Debug, Default, Clone, Copy)]
struct Rereads {
    policy: bool,
    tokens: bool,
    grants: bool,
    reviews: bool,
}

impl Rereads {
    const ALL: Rereads = Rereads {
        policy: true,
        tokens: true,
        grants: true,
        reviews: true,
    };

    fn for_change(change: &StoreChange) -> Rereads {
        match change {
            StoreChange::Policy => Rereads {
                policy: true,
                ..Rereads::default()
            },
            StoreChange::Review => Rereads {
                reviews: true,
                ..Rereads::default()
            },
            StoreChange::TokenRevoked(_) => Rereads {
                tokens: true,
                ..Rereads::default()
            },
            StoreChange::Grants => Rereads {
                grants: true,
                ..Rereads::default()
            },
            // Lockouts are read from the store at every login.
            StoreChange::Lockouts => Rereads::default(),
            StoreChange::Resync => Rereads::ALL,
        }
    }
}

/// Runs for the life of the gateway: re-reads on every hint of the
/// store's feed and on the fallback cadence.
pub async fn run_wakeups(state: Arc<GatewayState>) {
    let feed = state.store.change_feed();
    let mut hints = feed.as_ref().map(|feed| feed.subscribe());
    let mut last_policy = tokio::time::Instant::now();
    let mut last_sessions = tokio::time::Instant::now();
    loop {
        let cadence = state.cadence();
        let next_policy = last_policy + cadence.policy;
        let next_sessions = last_sessions + cadence.sessions;
        let hint = async {
            match hints.as_mut() {
                Some(hints) => Some(hints.recv().await),
                None => std::future::pending().await,
            }
        };
        let rereads = tokio::select! {
            received = hint => match received {
                Some(Ok(change)) => Rereads::for_change(&change),
                // Fell behind or the feed ended: re-read everything.
                Some(Err(RecvError::Lagged(_))) => Rereads::ALL,
                Some(Err(RecvError::Closed)) | None => {
                    hints = None;
                    Rereads::ALL
                }
            },
            () = tokio::time::sleep_until(next_policy.min(next_sessions)) => {
                let now = tokio::time::Instant::now();
                Rereads {
                    policy: now >= next_policy,
                    tokens: now >= next_sessions,
                    grants: now >= next_sessions,
                    reviews: false,
                }
            }
        };
        if rereads.reviews {
            state.review_wakeups.wake();
        }
        if rereads.policy {
            last_policy = tokio::time::Instant::now();
        }
        if rereads.tokens || rereads.grants {
            last_sessions = tokio::time::Instant::now();
        }
        if !(rereads.policy || rereads.tokens || rereads.grants) {
            continue;
        }
        let worker = Arc::clone(&state);
        let done = tokio::task::spawn_blocking(move || reread(&worker, rereads)).await;
        if done.is_err() {
            tracing::warn!("a re-read of the shared state failed");
        }
    }
}

fn reread(state: &GatewayState, rereads: Rereads) {
    if rereads.policy {
        if let Err(error) = state.refresh_policy() {
            tracing::warn!(%error, "cannot check for a new policy version");
        }
    }
    if rereads.tokens {
        match state.close_revoked_sessions() {
            Ok(0) => {}
            Ok(closed) => tracing::info!(closed, "closed sessions of tokens revoked elsewhere"),
            Err(error) => tracing::warn!(%error, "cannot check live sessions' tokens"),
        }
    }
    if rereads.grants {
        match state.close_ungranted_sessions() {
            Ok(0) => {}
            Ok(closed) => tracing::info!(closed, "closed sessions of grants revoked elsewhere"),
            Err(error) => tracing::warn!(%error, "cannot check live sessions' grants"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_feed_polls_rarely_and_none_polls_often() {
        assert_eq!(Cadence::for_feed(None), Cadence::POLLING);
        let feed = ChangeFeed::new();
        assert_eq!(Cadence::for_feed(Some(&feed)), Cadence::POLLING);
        feed.set_live(true);
        assert_eq!(Cadence::for_feed(Some(&feed)), Cadence::HINTED);
        assert!(Cadence::POLLING.policy <= Duration::from_millis(500));
        assert!(Cadence::POLLING.review <= Duration::from_millis(200));
    }

    #[test]
    fn a_resync_rereads_everything_and_a_hint_only_its_part() {
        let all = Rereads::for_change(&StoreChange::Resync);
        assert!(all.policy && all.tokens && all.grants && all.reviews);
        let token = Rereads::for_change(&StoreChange::TokenRevoked("tok_1".into()));
        assert!(token.tokens && !token.policy && !token.reviews && !token.grants);
        let policy = Rereads::for_change(&StoreChange::Policy);
        assert!(policy.policy && !policy.tokens);
    }

    #[tokio::test]
    async fn a_wake_up_reaches_every_waiter() {
        let wakeups = ReviewWakeups::default();
        let mut first = wakeups.subscribe();
        let mut second = wakeups.subscribe();
        wakeups.wake();
        first.changed().await.unwrap();
        second.changed().await.unwrap();
    }
}
