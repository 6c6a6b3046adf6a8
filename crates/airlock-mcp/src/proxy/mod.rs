//! The MCP proxy: `protocol: mcp` connections, reached by agents at
//! `https://gw:18080/<connection>/mcp` (Streamable HTTP), relayed to a stdio
//! server the gateway starts per agent session (`command:`) or to a remote
//! server (`url:`, Streamable HTTP or the legacy HTTP+SSE transport).
//!
//! - [`endpoint`]: the HTTP side (authentication on every request, the
//!   `Mcp-Session-Id` of a live session, bounded bodies, JSON or event
//!   stream answers);
//! - [`session`]: one agent session: admission (the core's, with the
//!   connection's credentials decrypted for the child only), the upstream,
//!   its end (DELETE, idle timeout, kill switch, grant expiry, the server
//!   exiting), `session.end` recorded;
//! - [`relay`]: one request through the gate (decide, review, record before
//!   forward), upstream, masked, recorded; `tools/list` filtered;
//! - [`stateless`]: the stateless revision (2026-07-28) in front of a
//!   handshake-only server: the gateway's own session carries it;
//! - [`message`]: the JSON-RPC envelope and the command, sans-IO;
//! - [`pins`]: tool definitions pinned against rug pulls;
//! - [`upstream`]: ids and answers, notifications, server-to-client
//!   requests handed on; [`server_requests`]: those decided by the gate,
//!   relayed to the agent or refused; [`transport`]: the server either way;
//!   [`stdio`]: the child process; [`remote`]: a `url:` server
//!   ([`http_client`]: its target and requests, [`sse`]: event streams);
//! - [`errors`]: every refusal as the agent reads it.
//!
//! Architecture invariants: the proxy never decides (the gate does); a
//! request is forwarded only after its `command` record is journaled and
//! only as the value the gate decided on; the upstream's secrets reach only
//! the child's environment or the remote server's request headers, never
//! the agent (a remote answer echoing them is scrubbed), a log line or a
//! record; a
//! result under a mask plan is masked before it leaves, or refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use airlock_core::http_config::InjectConfig;
use airlock_core::GatewayState;
use airlock_mask::MaskPlan;

use http_client::{RemoteTarget, TargetError};

pub mod endpoint;
pub mod errors;
pub mod http_client;
pub mod message;
pub mod pins;
pub mod relay;
pub mod remote;
pub mod server_requests;
pub mod session;
pub mod sse;
pub mod stateless;
pub mod stdio;
pub mod transport;
pub mod upstream;

use session::ProxySession;

/// A session without a request for this long ends (its child is killed).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one request may wait for the server's answer (a review's wait
/// is before it).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Live proxied sessions the gateway holds at most (each is a process).
pub const MAX_SESSIONS: usize = 256;

/// One `protocol: mcp` connection as the proxy serves it.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    /// The stdio server's program and arguments (empty for a `url:`).
    pub command: Vec<String>,
    /// The `url:` server.
    pub remote: Option<RemoteTarget>,
    /// How a `url:` server gets the connection's credential.
    pub inject: Option<InjectConfig>,
    /// Tools the connection marks read-only.
    pub read_tools: Vec<String>,
}

/// The proxy: the core's state, every MCP connection, the live sessions.
pub struct McpProxy {
    pub state: Arc<GatewayState>,
    pub targets: BTreeMap<String, ProxyTarget>,
    sessions: Mutex<HashMap<String, Arc<ProxySession>>>,
    /// The gateway's own sessions carrying stateless requests, by
    /// (identity, connection): the live session's id.
    pub(crate) kept: tokio::sync::Mutex<HashMap<(String, String), String>>,
    pub idle_timeout: Duration,
    pub answer_timeout: Duration,
    /// Connecting to a `url:` server and receiving an answer's head.
    pub upstream_timeout: Duration,
    /// Masks recorded arguments when the decision has no plan: every
    /// built-in detector (compiled once: it is costly).
    pub argument_mask: Option<MaskPlan>,
}

impl McpProxy {
    /// The proxy for every `protocol: mcp` connection of the configuration
    /// (a `url:` connection's TLS material is loaded here: a problem stops
    /// start-up). `upstream_timeout`: connecting to a `url:` server and its
    /// answer's head.
    pub fn new(state: Arc<GatewayState>, upstream_timeout: Duration) -> Result<Self, TargetError> {
        let mut targets = BTreeMap::new();
        for connection in state
            .config
            .connections
            .iter()
            .filter(|connection| connection.protocol == "mcp")
        {
            let remote = match connection.url {
                Some(_) if connection.command.is_empty() => {
                    Some(RemoteTarget::of(connection, &state.config_path)?)
                }
                _ => None,
            };
            targets.insert(
                connection.name.clone(),
                ProxyTarget {
                    command: connection.command.clone(),
                    remote,
                    inject: connection.inject.clone(),
                    read_tools: connection.read_tools.clone(),
                },
            );
        }
        Ok(Self {
            state,
            targets,
            sessions: Mutex::new(HashMap::new()),
            kept: tokio::sync::Mutex::new(HashMap::new()),
            idle_timeout: IDLE_TIMEOUT,
            answer_timeout: ANSWER_TIMEOUT,
            upstream_timeout,
            argument_mask: crate::record::argument_mask(),
        })
    }

    /// True when `path` is below an MCP connection (`/<connection>/…`).
    pub fn serves(&self, path: &str) -> bool {
        let name = path.trim_start_matches('/').split('/').next().unwrap_or("");
        self.targets.contains_key(name)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ProxySession>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live session `id`.
    pub fn session(&self, id: &str) -> Option<Arc<ProxySession>> {
        self.sessions().get(id).cloned()
    }

    /// Holds a new session; `false` when the gateway holds too many.
    fn insert(&self, session: Arc<ProxySession>) -> bool {
        let mut sessions = self.sessions();
        if sessions.len() >= MAX_SESSIONS {
            return false;
        }
        sessions.insert(session.id.clone(), session);
        true
    }

    /// Ends session `id` (once): the child killed, `session.end` recorded.
    pub async fn end(&self, id: &str, ended_by: &'static str, detail: Option<String>) {
        let session = self.sessions().remove(id);
        if let Some(session) = session {
            session.finish(ended_by, detail).await;
        }
    }

    /// How many sessions are live.
    pub fn live_sessions(&self) -> usize {
        self.sessions().len()
    }
}
