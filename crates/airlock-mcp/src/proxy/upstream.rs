//! The upstream MCP server of one proxied session, whatever its
//! transport: requests sent with the gateway's own ids and matched to
//! their answers, notifications sent on, and what the server sends on its
//! own (notifications, which go to the agent's open answer stream, and
//! server-to-client requests, handed to the session's
//! [`crate::proxy::server_requests`] task, which the gate decides; refused
//! here when no task takes them: see [`refuse_server_request`]), and the
//! agent's answers to the server requests relayed to it.
//!
//! The transports ([`crate::proxy::stdio`], [`crate::proxy::remote`]) only
//! move messages; this module owns the correlation, so it is the same for
//! both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the MCP server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the MCP server is gone")]
    Gone,
    #[error("the MCP server cannot be reached: {0}")]
    Unreachable(String),
    #[error("the MCP server's answer is not a JSON-RPC message")]
    BadAnswer,
    /// A `url:` server answered with this HTTP status (its body is not
    /// passed on).
    #[error("the MCP server refused the request (HTTP {0})")]
    Refused(u16),
}

/// Notifications the agent's answer stream may hold before new ones are
/// dropped (a server that floods cannot grow the gateway's memory).
pub const NOTIFICATION_QUEUE: usize = 256;

/// Server requests waiting for a decision before new ones are refused.
pub const SERVER_REQUEST_QUEUE: usize = 16;

/// Server requests relayed to the agent and not yet answered, at most.
pub const AGENT_PENDING: usize = 16;

/// The prefix of the ids the gateway gives the server requests it relays
/// to the agent (the server's own ids never reach the agent).
const AGENT_ID_PREFIX: &str = "airlock-";

/// The state the transports and the session share.
#[derive(Default)]
pub struct Correlation {
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    /// Where server notifications go while an agent's answer stream is
    /// open (`None`: dropped).
    notifications: Mutex<Option<mpsc::Sender<Value>>>,
    /// Where server requests go to be decided (`None`: refused here).
    server_requests: Mutex<Option<mpsc::Sender<Value>>>,
    next_agent_id: AtomicU64,
    /// Server requests relayed to the agent, by the gateway's id.
    agent_pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
}

/// Why a server request could not be relayed to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayFailure {
    /// No answer stream of the agent is open to carry it.
    NoStream,
    /// Too many relayed requests wait for the agent, or its stream is full.
    Busy,
}

impl Correlation {
    /// A new id and the receiver of its answer.
    pub fn register(&self) -> (u64, oneshot::Receiver<Value>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, sender);
        (id, receiver)
    }

    /// Forgets a request that will not be answered (timed out, not sent).
    pub fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Fails every pending request (the server is gone), and ends the
    /// session's server request task.
    pub fn close(&self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.agent_pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.take_server_requests(None);
    }

    /// Sets (or clears) where server requests go to be decided.
    pub fn take_server_requests(&self, sink: Option<mpsc::Sender<Value>>) {
        *self
            .server_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = sink;
    }

    /// Sends a server request (already decided) to the agent's open answer
    /// stream under a gateway id; the receiver of the agent's answer.
    pub fn relay_to_agent(
        &self,
        method: &str,
        params: Option<&Value>,
    ) -> Result<(String, oneshot::Receiver<Value>), RelayFailure> {
        let sink = self
            .notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(RelayFailure::NoStream)?;
        let id = format!(
            "{AGENT_ID_PREFIX}{}",
            self.next_agent_id.fetch_add(1, Ordering::Relaxed) + 1
        );
        let (sender, receiver) = oneshot::channel();
        {
            let mut pending = self
                .agent_pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if pending.len() >= AGENT_PENDING {
                return Err(RelayFailure::Busy);
            }
            pending.insert(id.clone(), sender);
        }
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params.clone();
        }
        if sink.try_send(message).is_err() {
            self.forget_agent(&id);
            return Err(RelayFailure::Busy);
        }
        Ok((id, receiver))
    }

    /// Forgets a relayed request the agent did not answer in time.
    pub fn forget_agent(&self, id: &str) {
        self.agent_pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// The agent's answer to a relayed request; false when no relayed
    /// request has that id (dropped).
    pub fn agent_answer(&self, id: &Value, message: Value) -> bool {
        let waiter = id.as_str().and_then(|id| {
            self.agent_pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id)
        });
        match waiter {
            Some(waiter) => waiter.send(message).is_ok(),
            None => false,
        }
    }

    /// Sets (or clears) where notifications go.
    pub fn stream_notifications(&self, sink: Option<mpsc::Sender<Value>>) {
        *self
            .notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = sink;
    }

    /// One message the server sent. Returns what to answer the server
    /// itself (a refusal of its request), if anything.
    pub fn incoming(&self, message: Value) -> Option<Value> {
        let Value::Object(object) = &message else {
            return None;
        };
        let id = object.get("id");
        match (object.get("method").and_then(Value::as_str), id) {
            (Some("ping"), Some(id)) => Some(json!({"jsonrpc": "2.0", "id": id, "result": {}})),
            (Some(method), Some(id)) => {
                let sink = self
                    .server_requests
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                match sink {
                    Some(sink) => match sink.try_send(message.clone()) {
                        Ok(()) => None,
                        Err(_) => Some(refuse_server_request(method, id)),
                    },
                    None => Some(refuse_server_request(method, id)),
                }
            }
            (Some(_), None) => {
                let sink = self
                    .notifications
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(sink) = sink {
                    let _ = sink.try_send(message);
                }
                None
            }
            (None, Some(id)) => {
                let waiter = id.as_u64().and_then(|id| {
                    self.pending
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id)
                });
                if let Some(waiter) = waiter {
                    let _ = waiter.send(message);
                }
                None
            }
            (None, None) => None,
        }
    }
}

/// The answer to a request the server sent the agent (sampling,
/// elicitation, roots …) that no decision task took (the session is
/// ending, or too many wait): refused, since a server must not make the
/// agent's model or user act on its behalf undecided. A `ping` is the
/// gateway's own to answer: it is the server's peer.
pub fn refuse_server_request(method: &str, id: &Value) -> Value {
    tracing::info!(method, "refused a server-to-client MCP request");
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32601,
            "message": format!("airlock: server-to-client requests ({method}) are not relayed to the agent now"),
        },
    })
}

/// Waits for the answer to request `id`.
pub async fn answer(
    correlation: &Arc<Correlation>,
    id: u64,
    receiver: oneshot::Receiver<Value>,
    timeout: Duration,
) -> Result<Value, UpstreamError> {
    match tokio::time::timeout(timeout, receiver).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(UpstreamError::Gone),
        Err(_) => {
            correlation.forget(id);
            Err(UpstreamError::Timeout(timeout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_find_their_requests_and_server_requests_are_refused() {
        let correlation = Correlation::default();
        let (id, mut receiver) = correlation.register();
        assert_eq!(
            correlation.incoming(json!({"jsonrpc": "2.0", "id": id + 5, "result": {}})),
            None
        );
        assert!(receiver.try_recv().is_err());
        assert_eq!(
            correlation.incoming(json!({"jsonrpc": "2.0", "id": id, "result": {"ok": 1}})),
            None
        );
        assert_eq!(receiver.try_recv().unwrap()["result"]["ok"], 1);
        let refused = correlation
            .incoming(json!({"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage"}))
            .unwrap();
        assert_eq!(refused["id"], "s1");
        assert_eq!(refused["error"]["code"], -32601);
        let pong = correlation
            .incoming(json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
            .unwrap();
        assert_eq!(pong["result"], json!({}));
        // With a decision task, server requests go to it.
        let (decide, mut decided) = mpsc::channel(1);
        correlation.take_server_requests(Some(decide));
        let sampling = json!({"jsonrpc": "2.0", "id": 4, "method": "sampling/createMessage"});
        assert_eq!(correlation.incoming(sampling.clone()), None);
        assert_eq!(decided.try_recv().unwrap(), sampling);
        // Full queue: refused, never queued unbounded.
        assert_eq!(correlation.incoming(sampling.clone()), None);
        assert!(correlation.incoming(sampling).is_some());
        let (sink, mut stream) = mpsc::channel(1);
        correlation.stream_notifications(Some(sink));
        correlation.incoming(json!({"jsonrpc": "2.0", "method": "notifications/message"}));
        correlation.incoming(json!({"jsonrpc": "2.0", "method": "notifications/message"}));
        assert!(stream.try_recv().is_ok());
        assert!(
            stream.try_recv().is_err(),
            "bounded: the second was dropped"
        );
    }

    #[test]
    fn relayed_requests_take_gateway_ids_and_only_their_answers_land() {
        let correlation = Correlation::default();
        assert_eq!(
            correlation
                .relay_to_agent("sampling/createMessage", None)
                .unwrap_err(),
            RelayFailure::NoStream
        );
        let (sink, mut stream) = mpsc::channel(4);
        correlation.stream_notifications(Some(sink));
        let params = json!({"maxTokens": 5});
        let (id, mut receiver) = correlation
            .relay_to_agent("sampling/createMessage", Some(&params))
            .unwrap();
        let sent = stream.try_recv().unwrap();
        assert_eq!(sent["id"], json!(id));
        assert_eq!(sent["params"], params);
        assert!(!correlation.agent_answer(&json!("airlock-999"), json!({})));
        assert!(!correlation.agent_answer(&json!(1), json!({})));
        assert!(receiver.try_recv().is_err());
        assert!(correlation.agent_answer(&json!(id), json!({"result": {"ok": 1}})));
        assert_eq!(receiver.try_recv().unwrap()["result"]["ok"], 1);
        assert!(
            !correlation.agent_answer(&json!(id), json!({})),
            "answered once"
        );
    }
}
