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
    upstream: Option<UpstreamCancel>,
    kill: watch::Sender<Option<String>>,
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
        if let Ok(mut entries) = self.registry.entries.lock() {
            entries.remove(&self.process_id);
        }
    }
}

impl SessionRegistry {
    /// Registers a session and draws its client-facing cancel key.
    pub fn register(self: &Arc<Self>, summary: SessionSummary) -> Registration {
        let (sender, receiver) = watch::channel(None);
        let mut rng = rand::thread_rng();
        let secret_key: i32 = rng.gen();
        let mut entries = match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut process_id: i32 = rng.gen_range(1..i32::MAX);
        while entries.contains_key(&process_id) {
            process_id = rng.gen_range(1..i32::MAX);
        }
        entries.insert(
            process_id,
            Entry {
                summary,
                secret_key,
                upstream: None,
                kill: sender,
            },
        );
        Registration {
            registry: Arc::clone(self),
            process_id,
            secret_key,
            kill: receiver,
        }
    }

    /// Records the upstream's backend key for a session.
    pub fn set_upstream(&self, process_id: i32, upstream: UpstreamCancel) {
        if let Ok(mut entries) = self.entries.lock() {
            if let Some(entry) = entries.get_mut(&process_id) {
                entry.upstream = Some(upstream);
            }
        }
    }

    /// The upstream key for a client's cancel request, if the key matches.
    pub fn cancel_target(&self, process_id: i32, secret_key: i32) -> Option<UpstreamCancel> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&process_id)?;
        if entry.secret_key != secret_key {
            return None;
        }
        entry.upstream.clone()
    }

    /// Ends every live session of a token. Returns how many were told.
    pub fn kill_token(&self, token_id: &str, reason: &str) -> usize {
        let Ok(entries) = self.entries.lock() else {
            return 0;
        };
        let mut count = 0;
        for entry in entries.values() {
            if entry.summary.token_id == token_id {
                let _ = entry.kill.send(Some(reason.to_string()));
                count += 1;
            }
        }
        count
    }

    /// Ends every live session of `identity` on `connection`.
    pub fn kill_where(&self, identity: &str, connection: &str, reason: &str) -> usize {
        let Ok(entries) = self.entries.lock() else {
            return 0;
        };
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
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
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
        registry.set_upstream(
            registration.process_id,
            UpstreamCancel {
                address: "db:5432".into(),
                process_id: 77,
                secret_key: 88,
            },
        );
        let target = registry
            .cancel_target(registration.process_id, registration.secret_key)
            .unwrap();
        assert_eq!((target.process_id, target.secret_key), (77, 88));
        assert!(registry
            .cancel_target(
                registration.process_id,
                registration.secret_key.wrapping_add(1)
            )
            .is_none());
        let mut kill = registration.kill.clone();
        assert_eq!(registry.kill_token("tok_1", "revoked"), 1);
        assert!(kill.has_changed().unwrap());
        assert_eq!(kill.borrow_and_update().as_deref(), Some("revoked"));
        let process_id = registration.process_id;
        drop(registration);
        assert!(registry.is_empty());
        assert!(registry.cancel_target(process_id, 0).is_none());
    }
}
