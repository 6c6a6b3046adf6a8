//! Requests the server of a proxied session sends towards the agent
//! (`sampling/createMessage`, `elicitation/create`, `roots/list`), in
//! phases: decide (the core's gate, as an `McpCall` with `server_request`
//! set, so `mcp: {methods: [...]}` and `access` rules apply; a review held
//! as for the agent's own requests), record before relay, relay (to the
//! agent's open answer stream under a gateway id, the params masked under
//! the decision's plan), answer the server (the agent's answer, masked
//! likewise, under the server's own id), record the result.
//!
//! A refused request is answered to the server with a JSON-RPC error
//! naming the rule; the agent never sees it. So is one the agent cannot
//! get: no answer stream of its is open (the server asked outside a
//! request of the agent, or the agent takes JSON answers), or it does not
//! answer within the session's answer timeout. `ping` never comes here:
//! the gateway, the server's peer, answers it ([`crate::proxy::upstream`]).

use std::sync::{Arc, Weak};
use std::time::Instant;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use airlock_core::command_record::CommandResult;
use airlock_core::gate::{Limits, Refusal, Verdict};
use airlock_types::command::{CommandKind, McpCall};
use airlock_types::Command;

use crate::proxy::errors;
use crate::proxy::relay;
use crate::proxy::session::ProxySession;
use crate::proxy::upstream::{RelayFailure, SERVER_REQUEST_QUEUE};
use crate::proxy::McpProxy;

/// Starts the task that decides the server requests of `session`; it ends
/// with the session (its queue is closed when the server is).
pub fn start(proxy: &Arc<McpProxy>, session: &Arc<ProxySession>) {
    let (sink, requests) = mpsc::channel(SERVER_REQUEST_QUEUE);
    session.correlation.take_server_requests(Some(sink));
    tokio::spawn(serve(Arc::clone(proxy), Arc::downgrade(session), requests));
}

async fn serve(
    proxy: Arc<McpProxy>,
    session: Weak<ProxySession>,
    mut requests: mpsc::Receiver<Value>,
) {
    while let Some(request) = requests.recv().await {
        let Some(session) = session.upgrade() else {
            return;
        };
        // Each on its own: a request waiting for the agent (or a review)
        // must not hold up the next.
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let reply = decide_and_relay(&proxy, &session, request).await;
            if let Err(error) = session.server.send(&reply).await {
                tracing::debug!(%error, "the answer to the MCP server's request was not sent");
            }
        });
    }
}

/// The answer to one server request.
async fn decide_and_relay(proxy: &Arc<McpProxy>, session: &ProxySession, request: Value) -> Value {
    let started = Instant::now();
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let params = request.get("params").cloned();
    let seq = session.next_seq();
    let shown = json!({"direction": "server_to_agent", "method": method, "params": params});
    let command = Command::new(
        shown.to_string(),
        CommandKind::Mcp(McpCall::server_request(method.as_str())),
    );
    let mut decision = session.gate.decide(&command, Limits::Now, &command.text);
    if decision.review.is_some() {
        decision = session
            .gate
            .resolve(decision, &session.id, |notice| {
                tracing::info!(%notice, "MCP server request held for review");
            })
            .await;
    }
    if let Err(refused) = relay::record_command(proxy, session, seq, &command, &decision).await {
        decision = refused;
    }
    if let Verdict::Refuse(refusal) = &decision.verdict {
        session.count_refused();
        tracing::info!(method, "refused a server-to-client MCP request");
        relay::record_result(proxy, session, finished(seq, "refused", started)).await;
        return errors::refused(&id, &method, refusal);
    }
    let mut params = params;
    if let Some(params) = params.as_mut() {
        if relay::mask_value(&decision, params).is_err() {
            return refuse_unavailable(proxy, session, seq, started, &id, &method).await;
        }
    }
    let (agent_id, receiver) = match session.correlation.relay_to_agent(&method, params.as_ref()) {
        Ok(relayed) => relayed,
        Err(failure) => {
            let message = match failure {
                RelayFailure::NoStream => {
                    "airlock: the agent has no open stream to receive this request"
                }
                RelayFailure::Busy => {
                    "airlock: too many requests wait for the agent; try again later"
                }
            };
            relay::record_result(proxy, session, finished(seq, "error", started)).await;
            return errors::error(
                &id,
                errors::REFUSED,
                message,
                Some(json!({"status": "not_relayed"})),
            );
        }
    };
    let answered = match tokio::time::timeout(proxy.answer_timeout, receiver).await {
        Ok(Ok(answered)) => answered,
        _ => {
            session.correlation.forget_agent(&agent_id);
            relay::record_result(proxy, session, finished(seq, "error", started)).await;
            return errors::error(
                &id,
                errors::REFUSED,
                "airlock: the agent did not answer the request in time",
                Some(json!({"status": "timeout"})),
            );
        }
    };
    let mut reply = Map::new();
    reply.insert("jsonrpc".into(), json!("2.0"));
    reply.insert("id".into(), id.clone());
    for part in ["result", "error"] {
        if let Some(value) = answered.get(part) {
            reply.insert(part.into(), value.clone());
        }
    }
    if !(reply.contains_key("result") || reply.contains_key("error")) {
        reply.insert(
            "error".into(),
            json!({"code": -32603, "message": "airlock: the agent's answer cannot be read"}),
        );
    }
    let mut reply = Value::Object(reply);
    let mut result = CommandResult::new(seq, "ok");
    if reply.get("error").is_some() {
        result.status = "error";
    }
    for part in ["result", "error"] {
        if let Some(value) = reply.get_mut(part) {
            if relay::mask_value(&decision, value).is_err() {
                return refuse_unavailable(proxy, session, seq, started, &id, &method).await;
            }
        }
    }
    relay::finish_result(&mut result, &method, &reply, started);
    relay::record_result(proxy, session, result).await;
    reply
}

fn finished(seq: u64, status: &'static str, started: Instant) -> CommandResult {
    let mut result = CommandResult::new(seq, status);
    result.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    result
}

async fn refuse_unavailable(
    proxy: &McpProxy,
    session: &ProxySession,
    seq: u64,
    started: Instant,
    id: &Value,
    method: &str,
) -> Value {
    relay::record_result(proxy, session, finished(seq, "error", started)).await;
    let refusal = Refusal::Unavailable {
        message: "airlock: the request cannot be masked; refused".into(),
    };
    errors::refused(id, method, &refusal)
}
