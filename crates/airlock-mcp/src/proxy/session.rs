//! One proxied agent session: admitted by the core (one `session.start`
//! per MCP session, not per request), its stdio server started with the
//! credentials admission decrypted (or its `url:` server's client holding
//! the decrypted credential for its request headers), its commands
//! decided by one `Gate`, and
//! its end: `DELETE`, [`crate::proxy::IDLE_TIMEOUT`] without a request, a
//! kill switch (token revoked, `airlock session kill`), the access grant
//! expiring, or the server exiting. Whatever ends it kills the child and
//! records `session.end` once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use airlock_core::admission::{AdmissionRefusal, AdmissionRequest, AdmittedSession, SessionCounts};
use airlock_core::auth::Authenticated;
use airlock_core::gate::Gate;
use airlock_types::Protocol;

use serde_json::Value;

use crate::proxy::errors;
use crate::proxy::remote::RemoteServer;
use crate::proxy::stdio::StdioServer;
use crate::proxy::transport::ServerTransport;
use crate::proxy::upstream::{Correlation, UpstreamError};
use crate::proxy::{McpProxy, ProxyTarget};

/// Why a session did not start.
#[derive(Debug)]
pub enum StartFailure {
    Admission(AdmissionRefusal),
    Upstream(UpstreamError),
    /// The gateway holds [`crate::proxy::MAX_SESSIONS`] already.
    Full,
}

impl StartFailure {
    /// What the agent reads, under `id`.
    pub fn answer(&self, id: &Value) -> Value {
        match self {
            Self::Admission(refusal) => errors::admission(id, refusal),
            Self::Upstream(failure) => errors::upstream(id, failure),
            Self::Full => errors::error(
                id,
                errors::REFUSED,
                "airlock: too many MCP sessions; try again later",
                None,
            ),
        }
    }
}

/// A live proxied session.
pub struct ProxySession {
    /// The `Mcp-Session-Id` (random, 128 bits) and the audit session id.
    pub id: String,
    pub identity: String,
    pub connection: String,
    pub target: ProxyTarget,
    pub gate: Gate,
    pub correlation: Arc<Correlation>,
    pub server: ServerTransport,
    /// The server's `initialize` result, for a session the gateway itself
    /// initialized (the stateless revision's `server/discover`).
    pub upstream_initialize: std::sync::OnceLock<Value>,
    admitted: tokio::sync::Mutex<Option<AdmittedSession>>,
    seq: AtomicU64,
    refused: AtomicU64,
    last_used: Mutex<Instant>,
    ended: AtomicBool,
}

fn new_session_id() -> String {
    format!("s-{}", hex::encode(rand::random::<[u8; 16]>()))
}

impl ProxySession {
    /// Admits the caller to `connection` and starts its server.
    pub async fn start(
        proxy: &Arc<McpProxy>,
        authenticated: &Authenticated,
        connection: &str,
        peer: SocketAddr,
        tls: bool,
    ) -> Result<Arc<Self>, StartFailure> {
        let target = proxy.targets.get(connection).cloned().ok_or_else(|| {
            StartFailure::Admission(AdmissionRefusal::UnknownConnection {
                connection: connection.to_string(),
            })
        })?;
        let state = &proxy.state;
        let id = new_session_id();
        let admission = AdmissionRequest {
            protocol: Protocol::Mcp,
            authenticated,
            connection,
            session_id: &id,
            peer,
            tls,
            started: Instant::now(),
        };
        let admitted = state
            .admit_session(&admission)
            .await
            .map_err(StartFailure::Admission)?;
        let (admitted, login) = admitted
            .open(state, &admission, None)
            .await
            .map_err(StartFailure::Admission)?;
        let correlation = Arc::new(Correlation::default());
        let server = match &target.remote {
            Some(remote) => RemoteServer::new(
                remote.clone(),
                target.inject.as_ref(),
                &login.username,
                &login.password,
                Arc::clone(&correlation),
                // A server answering with JSON sends its head only with
                // the result: the answer's own timeout applies.
                proxy.upstream_timeout.max(proxy.answer_timeout),
            )
            .map(ServerTransport::Remote),
            None => StdioServer::spawn(
                &target.command,
                &login.environment,
                Arc::clone(&correlation),
            )
            .map(|server| ServerTransport::Stdio(Box::new(server))),
        };
        let server = match server {
            Ok(server) => server,
            Err(error) => {
                tracing::warn!(%error, connection, "cannot start the MCP server");
                admitted
                    .record_upstream_failure(
                        Some(error.to_string()),
                        "the MCP server cannot be started",
                    )
                    .await;
                return Err(StartFailure::Upstream(error));
            }
        };
        drop(login);
        let gate = Gate::new(
            Arc::clone(state),
            authenticated.identity.clone(),
            state.connection_info(&admitted.connection),
        );
        let session = Arc::new(Self {
            id,
            identity: authenticated.identity.name.clone(),
            connection: connection.to_string(),
            target,
            gate,
            correlation,
            server,
            upstream_initialize: std::sync::OnceLock::new(),
            admitted: tokio::sync::Mutex::new(Some(admitted)),
            seq: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_used: Mutex::new(Instant::now()),
            ended: AtomicBool::new(false),
        });
        if !proxy.insert(Arc::clone(&session)) {
            session
                .finish("refused", Some("too many MCP sessions".into()))
                .await;
            return Err(StartFailure::Full);
        }
        crate::proxy::server_requests::start(proxy, &session);
        tokio::spawn(watch_life(Arc::clone(proxy), Arc::clone(&session)));
        Ok(session)
    }

    /// The next command number, and marks the session used.
    pub fn next_seq(&self) -> u64 {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a refused command.
    pub fn count_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }

    /// Kills the child and records `session.end` (once).
    pub async fn finish(&self, ended_by: &'static str, detail: Option<String>) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        self.server.kill().await;
        self.correlation.close();
        let admitted = self.admitted.lock().await.take();
        if let Some(admitted) = admitted {
            let counts = SessionCounts {
                commands: self.seq.load(Ordering::Relaxed),
                refused: self.refused.load(Ordering::Relaxed),
                ..SessionCounts::default()
            };
            admitted.record_end(ended_by, detail, counts).await;
        }
    }

    /// When the access grant the session was admitted under expires.
    async fn grant_expires_at(&self) -> Option<i64> {
        self.admitted
            .lock()
            .await
            .as_ref()
            .and_then(|admitted| admitted.grant_expires_at)
    }

    async fn kill_switch(&self) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        self.admitted
            .lock()
            .await
            .as_ref()
            .map(|admitted| admitted.registration.kill.clone())
    }
}

/// Ends the session when its server exits, a kill switch fires, it is
/// idle too long or its grant expires.
async fn watch_life(proxy: Arc<McpProxy>, session: Arc<ProxySession>) {
    let mut exited = session.server.exited();
    let Some(mut kill) = session.kill_switch().await else {
        return;
    };
    let grant_expires_at = session.grant_expires_at().await;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (ended_by, detail) = loop {
        tokio::select! {
            _ = exited.wait_for(|gone| *gone) => break ("upstream_closed", Some("the MCP server exited".to_string())),
            changed = kill.changed() => {
                let reason = kill.borrow().clone();
                if changed.is_err() || reason.is_some() {
                    break ("killed", reason);
                }
            }
            _ = tick.tick() => {
                if session.idle_for() >= proxy.idle_timeout {
                    break ("idle_timeout", None);
                }
                if grant_expires_at.is_some_and(|at| at <= now_unix()) {
                    break ("grant_expired", None);
                }
            }
        }
    };
    proxy.end(&session.id, ended_by, detail).await;
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
