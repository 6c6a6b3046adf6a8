//! Live sessions: who is connected, the cancel keys handed to clients, and
//! the kill switch that revocation pulls.
//!
//! Clients never see an upstream's backend key: each session gets a
//! gateway-issued (process id, secret key) pair, and a `CancelRequest` is
//! mapped back to the upstream's own key here.

use rand::Rng;
use serde::Serialize;
use std::collections::HashMap;

use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What a client's cancel key maps to.
#[derive(Debug, Clone)]
pub struct UpstreamCancel {
    pub address: String,
    pub process_id: i32,
    pub secret_key: i32,
}

/// A live session, as listed by the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSummary {
    pub session_id: String,
    pub identity: String,
    pub token_id: String,
    pub connection: String,
    pub client_address: String,
    pub tls: bool,
    pub started_at: i64,
}

struct Entry {
    summary: SessionSummary,
    secret_key: i32,
    /// The process id the client was told: the upstream backend's own once
    /// it is known (so `pg_backend_pid()` and notification senders match),
    /// the registry's id before.
    client_process_id: i32,
    upstream: Option<UpstreamCancel>,
    kill: watch::Sender<Option<String>>,
    /// Admitted under a JIT grant (not a standing rule) that ends then
    /// (Unix seconds): closed early when no grant is left before that.
    granted_until: Option<i64>,
}

/// The registry of live sessions.
#[derive(Default)]
pub struct SessionRegistry {
    entries: Mutex<HashMap<i32, Entry>>,
}

/// Removes its session from the registry when dropped, however the session
/// ends.
pub struct Registration {
    registry: Arc<SessionRegistry>,
    /// The process id given to the client.
    pub process_id: i32,
    /// The secret key given to the client.
    pub secret_key: i32,
    /// Fires with a reason when the session must end (token revoked …).
    pub kill: watch::Receiver<Option<String>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.entries().remove(&self.process_id);
    }
}

/// Limits checked when a session is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Live sessions one identity may hold.
    pub per_identity: usize,
    /// Live sessions one connection may carry.
    pub per_connection: usize,
}

/// Which limit refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReached {
    /// The identity already holds this many live sessions.
    PerIdentity(usize),
    /// The connection already carries this many live sessions.
    PerConnection(usize),
}

impl LimitReached {
    /// The configuration setting that sets the limit.
    pub fn setting(self) -> &'static str {
        match self {
            Self::PerIdentity(_) => "limits.max_sessions_per_identity",
            Self::PerConnection(_) => "limits.max_sessions_per_connection",
        }
    }

    /// The limit's value.
    pub fn limit(self) -> usize {
        match self {
            Self::PerIdentity(limit) | Self::PerConnection(limit) => limit,
        }
    }
}

impl SessionRegistry {
    /// The live sessions. A panic elsewhere while they were held leaves a
    /// usable map: it is used as it is, so kill switches keep reaching
    /// every session (never silently skipped).
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a session and draws its client-facing cancel key.
    pub fn register(self: &Arc<Self>, summary: SessionSummary) -> Registration {
        let mut entries = self.entries();
        self.insert(&mut entries, summary)
    }

    /// Registers a session unless its identity or its connection already
    /// has `limits` live sessions. Counting and inserting happen under one
    /// lock, so concurrent admissions cannot overshoot a limit.
    pub fn try_register(
        self: &Arc<Self>,
        summary: SessionSummary,
        limits: SessionLimits,
    ) -> Result<Registration, LimitReached> {
        let mut entries = self.entries();
        let (mut by_identity, mut by_connection) = (0usize, 0usize);
        for entry in entries.values() {
            if entry.summary.identity == summary.identity {
                by_identity += 1;
            }
            if entry.summary.connection == summary.connection {
                by_connection += 1;
            }
        }
        if by_identity >= limits.per_identity {
            return Err(LimitReached::PerIdentity(limits.per_identity));
        }
        if by_connection >= limits.per_connection {
            return Err(LimitReached::PerConnection(limits.per_connection));
        }
        Ok(self.insert(&mut entries, summary))
    }

    fn insert(
        self: &Arc<Self>,
        entries: &mut HashMap<i32, Entry>,
        summary: SessionSummary,
    ) -> Registration {
        let (sender, receiver) = watch::channel(None);
        let mut rng = rand::thread_rng();
        let secret_key: i32 = rng.gen();
        let mut process_id: i32 = rng.gen_range(1..i32::MAX);
        while entries.contains_key(&process_id) {
            process_id = rng.gen_range(1..i32::MAX);
        }
        entries.insert(
            process_id,
            Entry {
                summary,
                secret_key,
                client_process_id: process_id,
                upstream: None,
                kill: sender,
                granted_until: None,
            },
        );
        Registration {
            registry: Arc::clone(self),
            process_id,
            secret_key,
            kill: receiver,
        }
    }

    /// Records the upstream's backend key for a session. Returns the
    /// process id to give the client: the upstream's (the secret key stays
    /// the gateway's own, so the upstream's never leaves the gateway).
    pub fn set_upstream(&self, process_id: i32, upstream: UpstreamCancel) -> i32 {
        let client = upstream.process_id;
        if let Some(entry) = self.entries().get_mut(&process_id) {
            entry.client_process_id = client;
            entry.upstream = Some(upstream);
            return client;
        }
        process_id
    }

    /// The upstream key for a client's cancel request, if the key matches:
    /// the process id the client was told and the gateway's secret key.
    pub fn cancel_target(&self, process_id: i32, secret_key: i32) -> Option<UpstreamCancel> {
        let entries = self.entries();
        entries
            .values()
            .find(|entry| entry.client_process_id == process_id && entry.secret_key == secret_key)
            .and_then(|entry| entry.upstream.clone())
    }

    /// Ends every live session of a token. Returns how many were told.
    pub fn kill_token(&self, token_id: &str, reason: &str) -> usize {
        let entries = self.entries();
        let mut count = 0;
        for entry in entries.values() {
            if entry.summary.token_id == token_id {
                let _ = entry.kill.send(Some(reason.to_string()));
                count += 1;
            }
        }
        count
    }

    /// Marks a session as admitted under a JIT grant ending at
    /// `expires_at` (Unix seconds).
    pub fn set_granted(&self, process_id: i32, expires_at: i64) {
        if let Some(entry) = self.entries().get_mut(&process_id) {
            entry.granted_until = Some(expires_at);
        }
    }

    /// (identity, connection) of every live session a grant admitted whose
    /// grant has not expired by `now` (an expired one ends its session by
    /// its own timer, recorded as expired, not revoked).
    pub fn granted_pairs(&self, now: i64) -> Vec<(String, String)> {
        self.entries()
            .values()
            .filter(|entry| entry.granted_until.is_some_and(|until| until > now))
            .map(|entry| {
                (
                    entry.summary.identity.clone(),
                    entry.summary.connection.clone(),
                )
            })
            .collect()
    }

    /// Ends every live session of `identity` on `connection` that a grant
    /// not expired by `now` admitted (not those a standing rule admits).
    pub fn kill_where_granted(
        &self,
        identity: &str,
        connection: &str,
        now: i64,
        reason: &str,
    ) -> usize {
        let entries = self.entries();
        let mut count = 0;
        for entry in entries.values() {
            if entry.granted_until.is_some_and(|until| until > now)
                && entry.summary.identity == identity
                && entry.summary.connection == connection
            {
                let _ = entry.kill.send(Some(reason.to_string()));
                count += 1;
            }
        }
        count
    }

    /// Ends the live session `session_id` (the kill switch of one session).
    /// Returns whether it is live in this process: sessions are held by
    /// the gateway process that accepted them.
    pub fn kill_session(&self, session_id: &str, reason: &str) -> bool {
        let entries = self.entries();
        let mut found = false;
        for entry in entries.values() {
            if entry.summary.session_id == session_id {
                let _ = entry.kill.send(Some(reason.to_string()));
                found = true;
            }
        }
        found
    }

    /// Ends every live session of `identity` on `connection`.
    pub fn kill_where(&self, identity: &str, connection: &str, reason: &str) -> usize {
        let entries = self.entries();
        let mut count = 0;
        for entry in entries.values() {
            if entry.summary.identity == identity && entry.summary.connection == connection {
                let _ = entry.kill.send(Some(reason.to_string()));
                count += 1;
            }
        }
        count
    }

    /// Live sessions, oldest first.
    pub fn list(&self) -> Vec<SessionSummary> {
        let entries = self.entries();
        let mut sessions: Vec<_> = entries
            .values()
            .map(|entry| entry.summary.clone())
            .collect();
        sessions.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then(a.session_id.cmp(&b.session_id))
        });
        sessions
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .map(|entries| entries.len())
            .unwrap_or(0)
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddr;

    #[test]
    fn only_sessions_of_unexpired_grants_are_closed_as_revoked() {
        let registry = Arc::new(SessionRegistry::default());
        let session = |id: &str| SessionSummary {
            session_id: id.into(),
            identity: "agent-9".into(),
            token_id: "tok_9".into(),
            connection: "pg-jit".into(),
            client_address: "127.0.0.1:5000".into(),
            tls: false,
            started_at: 0,
        };
        let granted = registry.register(session("granted"));
        let expired = registry.register(session("expired"));
        let standing = registry.register(session("standing"));
        registry.set_granted(granted.process_id, 200);
        registry.set_granted(expired.process_id, 100);
        assert_eq!(
            registry.granted_pairs(100),
            vec![("agent-9".to_string(), "pg-jit".to_string())]
        );
        assert_eq!(
            registry.kill_where_granted("agent-9", "pg-jit", 101, "revoked"),
            1
        );
        assert!(granted.kill.has_changed().unwrap());
        assert!(!expired.kill.has_changed().unwrap());
        assert!(!standing.kill.has_changed().unwrap());
    }

    #[test]
    fn cancel_keys_map_and_unregister_on_drop() {
        let registry = Arc::new(SessionRegistry::default());
        let address: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let registration = registry.register(SessionSummary {
            session_id: "s1".into(),
            identity: "agent-7".into(),
            token_id: "tok_1".into(),
            connection: "pg".into(),
            client_address: address.to_string(),
            tls: false,
            started_at: 0,
        });
        let client_pid = registry.set_upstream(
            registration.process_id,
            UpstreamCancel {
                address: "db:5432".into(),
                process_id: 77,
                secret_key: 88,
            },
        );
        // The client is told the upstream's pid, with the gateway's key.
        assert_eq!(client_pid, 77);
        let target = registry
            .cancel_target(client_pid, registration.secret_key)
            .unwrap();
        assert_eq!((target.process_id, target.secret_key), (77, 88));
        assert!(
            registry.cancel_target(77, 88).is_none(),
            "the upstream's key is not accepted"
        );
        assert!(registry
            .cancel_target(client_pid, registration.secret_key.wrapping_add(1))
            .is_none());
        let mut kill = registration.kill.clone();
        assert_eq!(registry.kill_token("tok_1", "revoked"), 1);
        assert!(kill.has_changed().unwrap());
        assert_eq!(kill.borrow_and_update().as_deref(), Some("revoked"));
        let secret_key = registration.secret_key;
        drop(registration);
        assert!(registry.is_empty());
        assert!(registry.cancel_target(client_pid, secret_key).is_none());
    }

    fn summary(identity: &str, connection: &str) -> SessionSummary {
        SessionSummary {
            session_id: format!("s-{identity}"),
            identity: identity.into(),
            token_id: "tok".into(),
            connection: connection.into(),
            client_address: "127.0.0.1:5000".into(),
            tls: false,
            started_at: 0,
        }
    }

    #[test]
    fn limits_count_live_sessions_per_identity_and_connection() {
        let registry = Arc::new(SessionRegistry::default());
        let limits = SessionLimits {
            per_identity: 2,
            per_connection: 3,
        };
        let first = registry.try_register(summary("a", "pg"), limits).unwrap();
        let _second = registry
            .try_register(summary("a", "other"), limits)
            .unwrap();
        assert_eq!(
            registry.try_register(summary("a", "pg"), limits).err(),
            Some(LimitReached::PerIdentity(2))
        );
        let _third = registry.try_register(summary("b", "pg"), limits).unwrap();
        let _fourth = registry.try_register(summary("c", "pg"), limits).unwrap();
        let refused = registry.try_register(summary("d", "pg"), limits).err();
        assert_eq!(refused, Some(LimitReached::PerConnection(3)));
        assert_eq!(
            refused.map(LimitReached::setting),
            Some("limits.max_sessions_per_connection")
        );
        assert_eq!(registry.len(), 4, "a refused session is not registered");
        drop(first);
        assert!(registry.try_register(summary("a", "pg"), limits).is_ok());
    }
}
