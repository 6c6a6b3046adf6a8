//! The upstream MCP server of one proxied session, whatever its
//! transport: requests sent with the gateway's own ids and matched to
//! their answers, notifications sent on, and what the server sends on its
//! own (notifications, which go to the agent's open answer stream, and
//! server-to-client requests, refused here: see [`refuse_server_request`]).
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

/// The state the transports and the session share.
#[derive(Default)]
pub struct Correlation {
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    /// Where server notifications go while an agent's answer stream is
    /// open (`None`: dropped).
    notifications: Mutex<Option<mpsc::Sender<Value>>>,
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

    /// Fails every pending request (the server is gone).
    pub fn close(&self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
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
            (Some(method), Some(id)) => Some(refuse_server_request(method, id)),
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
/// elicitation, roots, ping …): refused. The gateway keeps no stream
/// towards the agent outside its answers, so it cannot relay them, and a
/// server must not make the agent's model or user act on its behalf
/// unseen.
pub fn refuse_server_request(method: &str, id: &Value) -> Value {
    tracing::info!(method, "refused a server-to-client MCP request");
    if method == "ping" {
        return json!({"jsonrpc": "2.0", "id": id, "result": {}});
    }
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32601,
            "message": format!("airlock: server-to-client requests ({method}) are not relayed to the agent"),
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
}
