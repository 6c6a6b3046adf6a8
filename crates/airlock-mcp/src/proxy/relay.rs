//! One request of a proxied session, in phases: decide (the core's gate;
//! a review held or answered with its id), record before forward (the
//! core's `command` record), forward (the gateway's id, the value decided
//! on), answer (the agent's id restored; `tools/list` filtered to the tools
//! the identity may call; the result masked under the decision's plan),
//! record the result (`command.result`, the masked result as its sample).
//!
//! Notifications from the agent are sent on (a cancellation only for a
//! request the gateway forwarded, under the gateway's id); nothing the
//! agent sends reaches the server without passing here.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use airlock_core::command_record::{self, CommandEntry, CommandResult, HttpOutcome, RecordScope};
use airlock_core::gate::{Decision, Limits, Refusal, Verdict};
use airlock_core::recorder::Effect;
use airlock_mask::json::JsonMasker;
use airlock_mask::MaskStats;
use airlock_types::command::{CommandKind, McpCall};
use airlock_types::Command;

use crate::proxy::errors;
use crate::proxy::message::{self, upstream_request};
use crate::proxy::pins;
use crate::proxy::session::ProxySession;
use crate::proxy::upstream::{answer, UpstreamError};
use crate::proxy::McpProxy;

/// Bytes of a masked result kept in its record.
const RESULT_SAMPLE_BYTES: usize = 4096;

/// Methods whose results are definitions, not data: not masked (a tool's
/// schema must reach the agent as the server wrote it).
const DEFINITIONS: [&str; 2] = ["initialize", "tools/list"];

/// One request to relay.
pub struct Request<'a> {
    pub id: &'a Value,
    pub method: &'a str,
    pub params: &'a Map<String, Value>,
    pub message: Map<String, Value>,
}

/// A request owned, to relay from a task of its own (a streamed answer).
pub struct OwnedRequest {
    pub id: Value,
    pub method: String,
    pub params: Map<String, Value>,
    pub message: Map<String, Value>,
}

impl Request<'_> {
    /// The request, owned.
    pub fn into_owned(self) -> OwnedRequest {
        OwnedRequest {
            id: self.id.clone(),
            method: self.method.to_string(),
            params: self.params.clone(),
            message: self.message,
        }
    }
}

impl OwnedRequest {
    /// The request, borrowed (its message moved).
    pub fn borrowed(&self) -> Request<'_> {
        Request {
            id: &self.id,
            method: &self.method,
            params: &self.params,
            message: self.message.clone(),
        }
    }
}

fn scope<'s>(proxy: &McpProxy, session: &'s ProxySession) -> RecordScope<'s> {
    let recording = &proxy.state.config.recording;
    RecordScope {
        session_id: &session.id,
        identity: &session.identity,
        connection: &session.connection,
        sample_rows: recording.sample_rows,
        sample_bytes: recording.sample_bytes,
        max_statement_bytes: recording.max_statement_bytes,
    }
}

/// Relays one request; the answer for the agent.
pub async fn request(proxy: &Arc<McpProxy>, session: &ProxySession, request: Request<'_>) -> Value {
    let started = Instant::now();
    let seq = session.next_seq();
    let command = message::command(request.method, request.params, &session.target.read_tools);
    let mut decision = match held_tool(proxy, session, &command).await {
        Some(refused) => refused,
        None => session.gate.decide(&command, Limits::Now, &command.text),
    };
    if decision.review.is_some() {
        decision = session
            .gate
            .resolve(decision, &session.id, |notice| {
                tracing::info!(%notice, "MCP request held for review");
            })
            .await;
    }
    if let Err(refused) = record_command(proxy, session, seq, &command, &decision).await {
        decision = refused;
    }
    if let Verdict::Refuse(refusal) = &decision.verdict {
        session.count_refused();
        return errors::refused(request.id, request.method, refusal);
    }
    let (upstream_id, receiver) = session.correlation.register();
    let sent = upstream_request(request.message, upstream_id);
    let answered = match session.server.send(&sent).await {
        Ok(()) => {
            answer(
                &session.correlation,
                upstream_id,
                receiver,
                proxy.answer_timeout,
            )
            .await
        }
        Err(error) => {
            session.correlation.forget(upstream_id);
            Err(error)
        }
    };
    let mut answered = match answered.and_then(|value| as_answer(value, request.id)) {
        Ok(answered) => answered,
        Err(failure) => {
            record_result(proxy, session, failure_result(seq, started, &failure)).await;
            return errors::upstream(request.id, &failure);
        }
    };
    if request.method == "tools/list" {
        filter_tools(proxy, session, &mut answered).await;
    }
    let mut result = CommandResult::new(seq, "ok");
    if answered.get("error").is_some() {
        result.status = "error";
    }
    if !DEFINITIONS.contains(&request.method) {
        if let Err(message) = mask_answer(&decision, &mut answered, &mut result) {
            record_result(proxy, session, CommandResult::new(seq, "error")).await;
            let refusal = Refusal::Unavailable { message };
            return errors::refused(request.id, request.method, &refusal);
        }
    }
    finish_result(&mut result, request.method, &answered, started);
    record_result(proxy, session, result).await;
    answered
}

/// The server's answer under the agent's id; it must be a response.
fn as_answer(value: Value, id: &Value) -> Result<Value, UpstreamError> {
    let Value::Object(mut object) = value else {
        return Err(UpstreamError::BadAnswer);
    };
    if !(object.contains_key("result") || object.contains_key("error")) {
        return Err(UpstreamError::BadAnswer);
    }
    object.insert("id".into(), id.clone());
    object.insert("jsonrpc".into(), json!("2.0"));
    Ok(Value::Object(object))
}

/// The refusal of a call of a tool whose definition changed since it was
/// pinned ([`pins`]), before the policy is asked.
async fn held_tool(
    proxy: &McpProxy,
    session: &ProxySession,
    command: &Command,
) -> Option<Decision> {
    let CommandKind::Mcp(McpCall {
        tool: Some(tool), ..
    }) = &command.kind
    else {
        return None;
    };
    let message = pins::call_refusal(&proxy.state, &session.connection, tool).await?;
    let mut refused = Decision::refuse(
        Refusal::Denied { message },
        json!({"verdict": "deny", "reason": "tool_changed"}),
    );
    refused.version = session.gate.live_version();
    Some(refused)
}

/// Hides the tools a call of which (with no arguments) the policy denies,
/// and those whose definition changed since pinned: the agent is not
/// offered what it may never call. A tool that needs a review, or that
/// arguments decide, stays listed; every call is decided again when made.
async fn filter_tools(proxy: &McpProxy, session: &ProxySession, answered: &mut Value) {
    let Some(tools) = answered
        .get_mut("result")
        .and_then(|result| result.get_mut("tools"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let mut offered = Vec::with_capacity(tools.len());
    for tool in tools.drain(..) {
        let listed = pins::check_listed(
            &proxy.state,
            &session.id,
            &session.identity,
            &session.connection,
            &tool,
        )
        .await;
        if listed == pins::Listed::Offered {
            offered.push(tool);
        }
    }
    offered.retain(|tool| {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return false;
        };
        let call = McpCall {
            read_only: session.target.read_tools.iter().any(|read| read == name),
            ..McpCall::tool_call(name, json!({}))
        };
        let command = Command::new(format!("tools/list {name}"), CommandKind::Mcp(call));
        let decision = session.gate.decide(&command, Limits::AtEachExecution, "");
        !matches!(decision.verdict, Verdict::Refuse(Refusal::Denied { .. }))
    });
    *tools = offered;
}

/// Masks the answer (result or error) under the decision's plan and field
/// rules; the refusal's message when a field rule cannot be compiled.
fn mask_answer(
    decision: &Decision,
    answered: &mut Value,
    result: &mut CommandResult,
) -> Result<(), String> {
    let Some(plan) = decision.mask.as_deref() else {
        return Ok(());
    };
    let masker = JsonMasker::new(plan, &decision.mask_fields)
        .map_err(|_| "airlock: the result cannot be masked; refused".to_string())?;
    let mut stats = MaskStats::new();
    for part in ["result", "error"] {
        if let Some(value) = answered.get_mut(part) {
            masker.mask(value, &mut stats);
        }
    }
    result.count_masked(&stats);
    Ok(())
}

/// Masks one value under the decision's plan and field rules (none: as it
/// is); `Err` when a field rule cannot be compiled.
pub(crate) fn mask_value(decision: &Decision, value: &mut Value) -> Result<(), ()> {
    let Some(plan) = decision.mask.as_deref() else {
        return Ok(());
    };
    let masker = JsonMasker::new(plan, &decision.mask_fields).map_err(|_| ())?;
    masker.mask(value, &mut MaskStats::new());
    Ok(())
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The result's tag, duration and sample (the answer as the agent got it,
/// cut).
pub(crate) fn finish_result(
    result: &mut CommandResult,
    method: &str,
    answered: &Value,
    started: Instant,
) {
    let text = answered
        .get("result")
        .or_else(|| answered.get("error"))
        .map(Value::to_string)
        .unwrap_or_default();
    let (sample, _) = command_record::cut(&text, RESULT_SAMPLE_BYTES);
    let tool_error = answered
        .pointer("/result/isError")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if tool_error {
        result.status = "error";
    }
    result.tags = vec![format!("MCP {method}")];
    result.duration_us = elapsed_us(started);
    result.http = Some(HttpOutcome {
        http_status: None,
        bytes: u64::try_from(text.len()).unwrap_or(u64::MAX),
        body_sample: sample.to_string(),
    });
}

fn failure_result(seq: u64, started: Instant, failure: &UpstreamError) -> CommandResult {
    let mut result = CommandResult::new(seq, "error");
    result.error_message = Some(failure.to_string());
    result.duration_us = elapsed_us(started);
    result
}

/// Audit before forward: the `command` event, awaited (arguments masked
/// by the decision's plan, or every built-in detector when it has none).
/// The refusal when it could not be written.
pub(crate) async fn record_command(
    proxy: &McpProxy,
    session: &ProxySession,
    seq: u64,
    command: &Command,
    decision: &Decision,
) -> Result<(), Decision> {
    let state = &proxy.state;
    if !state.config.recording.enabled {
        return Ok(());
    }
    let mask = decision.mask.as_deref().or(proxy.argument_mask.as_ref());
    let event = command_record::command_event(
        &scope(proxy, session),
        &CommandEntry {
            seq,
            message: "mcp",
            text: &command.text,
            parameters: 0,
            values: &[],
            decision,
            mask,
            request: None,
            kubernetes: None,
        },
    );
    // Under `recording.sync: writes` a read is forwarded once journaled; a
    // call with an effect once its record is on disk.
    let effect = if decision.reads_only {
        Effect::ReadOnly
    } else {
        Effect::Effectful
    };
    state
        .recorder
        .record_as(vec![event], effect)
        .await
        .map_err(|error| {
            tracing::error!(%error, "refusing the MCP request: audit write failed");
            let mut refused = Decision::refuse(
                Refusal::RecordingUnavailable {
                    message: "airlock: the audit log cannot be written; the request is refused"
                        .into(),
                },
                decision.details.clone(),
            );
            refused.version = decision.version;
            refused
        })
}

pub(crate) async fn record_result(proxy: &McpProxy, session: &ProxySession, result: CommandResult) {
    if !proxy.state.config.recording.enabled {
        return;
    }
    let event = result.event(&scope(proxy, session));
    proxy.state.recorder.record_later(vec![event]).await;
}

/// True for a notification of the agent the server may get: one of the
/// `notifications/…` methods, which ask nothing of the server. Anything
/// else without an id (`tools/call` sent as a notification) is dropped: a
/// server that ran it would run it undecided. `notifications/cancelled`
/// names a request by the agent's id, which the server never saw: dropped
/// too (the gateway times the request out itself).
pub fn notification_relayed(method: &str) -> bool {
    method.starts_with("notifications/") && method != "notifications/cancelled"
}

/// Sends a notification of the agent on, if [`notification_relayed`].
pub async fn notification(session: &ProxySession, method: &str, message: Map<String, Value>) {
    if !notification_relayed(method) {
        tracing::debug!(method, "agent notification not relayed");
        return;
    }
    let mut message = message;
    message.insert("jsonrpc".into(), json!("2.0"));
    if let Err(error) = session.server.send(&Value::Object(message)).await {
        tracing::debug!(%error, "notification not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_notifications_are_relayed_without_an_id() {
        assert!(notification_relayed("notifications/initialized"));
        assert!(notification_relayed("notifications/roots/list_changed"));
        assert!(!notification_relayed("notifications/cancelled"));
        assert!(!notification_relayed("tools/call"));
        assert!(!notification_relayed("Notifications/initialized"));
    }
}
