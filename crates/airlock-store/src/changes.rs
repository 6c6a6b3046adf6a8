//! Change hints: what a store that several replicas share tells each of
//! them when another one wrote something they act on (a policy version, a
//! review decision, a revoked token, a grant, a lockout).
//!
//! A hint is never the state itself: a receiver re-reads what the hint
//! names from the store, and every [`StoreChange::Resync`] (the listener
//! connected again, or a receiver fell behind) means "re-read everything".
//! A hint may be lost (a connection drops between a commit and its
//! notification), so every receiver keeps polling as well, only less
//! often while the feed is live ([`ChangeFeed::is_live`]): a lost hint
//! delays a decision, it never loses one.
//!
//! The wire form is the payload of PostgreSQL's `NOTIFY` on
//! [`CHANNEL`]; [`StoreChange::from_payload`] is pure and reads any text
//! (an unknown one is a resync).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

/// The `LISTEN` / `NOTIFY` channel of the shared store.
pub const CHANNEL: &str = "airlock_changes";

/// Hints kept for a receiver that is behind; one further behind gets a
/// resync (`broadcast`'s lag) instead of the hints it missed.
const BUFFERED_HINTS: usize = 1024;

/// Longest token id a hint carries (ids are short; a longer payload is
/// not ours and reads as a resync).
const MAX_ID_BYTES: usize = 128;

/// What changed in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    /// A policy version was applied.
    Policy,
    /// A review was created, decided or used.
    Review,
    /// The token with this id was revoked.
    TokenRevoked(String),
    /// An access grant was created or revoked.
    Grants,
    /// A login lockout started or was lifted.
    Lockouts,
    /// Hints may have been missed: re-read everything.
    Resync,
}

impl StoreChange {
    /// The `NOTIFY` payload for this change.
    pub fn payload(&self) -> String {
        match self {
            Self::Policy => "policy".into(),
            Self::Review => "review".into(),
            Self::TokenRevoked(id) => format!("token:{id}"),
            Self::Grants => "grants".into(),
            Self::Lockouts => "lockouts".into(),
            Self::Resync => "resync".into(),
        }
    }

    /// The change a payload names; anything else is a resync (a hint we
    /// cannot read must make receivers re-read, never nothing).
    pub fn from_payload(payload: &str) -> Self {
        match payload {
            "policy" => Self::Policy,
            "review" => Self::Review,
            "grants" => Self::Grants,
            "lockouts" => Self::Lockouts,
            other => match other.strip_prefix("token:") {
                Some(id) if !id.is_empty() && id.len() <= MAX_ID_BYTES => {
                    Self::TokenRevoked(id.to_string())
                }
                _ => Self::Resync,
            },
        }
    }
}

/// Where a store publishes its hints and receivers subscribe to them.
#[derive(Debug)]
pub struct ChangeFeed {
    sender: broadcast::Sender<StoreChange>,
    live: AtomicBool,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(BUFFERED_HINTS);
        Self {
            sender,
            live: AtomicBool::new(false),
        }
    }
}

impl ChangeFeed {
    /// A feed with no subscriber, not live.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Hints from now on. A receiver told `Lagged` must resync.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreChange> {
        self.sender.subscribe()
    }

    /// True while hints arrive (the store's listener is connected):
    /// receivers may poll less often.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Hands a hint to every subscriber (none listening is fine).
    pub fn publish(&self, change: StoreChange) {
        let _ = self.sender.send(change);
    }

    /// Marks the feed live (hints arrive) or not. Going live publishes a
    /// resync: what changed while no hint could arrive must be re-read.
    pub fn set_live(&self, live: bool) {
        let was = self.live.swap(live, Ordering::AcqRel);
        if live && !was {
            self.publish(StoreChange::Resync);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_resync() {
        for change in [
            StoreChange::Policy,
            StoreChange::Review,
            StoreChange::TokenRevoked("tok_1".into()),
            StoreChange::Grants,
            StoreChange::Lockouts,
            StoreChange::Resync,
        ] {
            assert_eq!(StoreChange::from_payload(&change.payload()), change);
        }
        for other in [
            "",
            "token:",
            "Policy",
            "review:x",
            "\0",
            &"token:".repeat(40),
        ] {
            assert_eq!(
                StoreChange::from_payload(other),
                StoreChange::Resync,
                "{other:?}"
            );
        }
    }

    #[test]
    fn going_live_asks_for_a_resync() {
        let feed = ChangeFeed::new();
        let mut receiver = feed.subscribe();
        assert!(!feed.is_live());
        feed.set_live(true);
        assert!(feed.is_live());
        assert_eq!(receiver.try_recv().unwrap(), StoreChange::Resync);
        feed.set_live(true);
        assert!(receiver.try_recv().is_err(), "no second resync while live");
        feed.set_live(false);
        feed.publish(StoreChange::Policy);
        assert_eq!(receiver.try_recv().unwrap(), StoreChange::Policy);
    }
}
