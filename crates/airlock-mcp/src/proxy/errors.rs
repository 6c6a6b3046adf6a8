//! The one place the proxy turns a refusal, an admission refusal or an
//! upstream failure into what the agent reads: a refused `tools/call` is a
//! tool result with `isError: true` naming the rule (the model reads it and
//! can act on it); a refused request of another method, or a session that
//! cannot start, is a JSON-RPC error (`-32001`, the MCP servers' custom
//! range) whose `data` says why.

use serde_json::{json, Value};

use airlock_core::admission::AdmissionRefusal;
use airlock_core::gate::Refusal;
use airlock_types::command::mcp::TOOLS_CALL;

use crate::proxy::message::tool_refusal;
use crate::proxy::upstream::UpstreamError;

/// The JSON-RPC code of every refusal of the gateway.
pub const REFUSED: i64 = -32001;

/// A stable name of a refusal, for `structuredContent.status` and `data`.
pub fn status(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Denied { .. } => "denied",
        Refusal::Review { .. } => "review_required",
        Refusal::RateLimited { .. } => "rate_limited",
        Refusal::RecordingUnavailable { .. } => "recording_unavailable",
        Refusal::Unavailable { .. } => "unavailable",
        Refusal::Syntax { .. } => "invalid",
        Refusal::UnknownObject { .. } => "unknown_object",
    }
}

fn review_id(refusal: &Refusal) -> Option<&str> {
    match refusal {
        Refusal::Review { review_id, .. } => review_id.as_deref(),
        _ => None,
    }
}

/// The answer to a refused request `id` of `method`.
pub fn refused(id: &Value, method: &str, refusal: &Refusal) -> Value {
    let review = review_id(refusal);
    if method == TOOLS_CALL {
        return json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": tool_refusal(refusal.message(), status(refusal), review),
        });
    }
    let mut data = json!({"status": status(refusal)});
    if let Some(review) = review {
        data["review"] = json!(review);
        data["approve"] = json!(format!("airlock review approve {review}"));
    }
    error(id, REFUSED, refusal.message(), Some(data))
}

/// A JSON-RPC error answer.
pub fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// A session that was not admitted.
pub fn admission(id: &Value, refusal: &AdmissionRefusal) -> Value {
    let status = match refusal {
        AdmissionRefusal::SessionLimit { .. } => "session_limit",
        AdmissionRefusal::UnknownConnection { .. } | AdmissionRefusal::WrongProtocol { .. } => {
            "unknown_connection"
        }
        AdmissionRefusal::NoGrant { .. } => "no_grant",
        AdmissionRefusal::StoreUnavailable => "unavailable",
        AdmissionRefusal::CredentialMissing { .. }
        | AdmissionRefusal::CredentialUnreadable { .. } => "connection_not_ready",
        AdmissionRefusal::RecordingUnavailable => "recording_unavailable",
    };
    error(
        id,
        REFUSED,
        &refusal.to_string(),
        Some(json!({"status": status})),
    )
}

/// The upstream did not answer (its words are not passed on: they may
/// describe the inside).
pub fn upstream(id: &Value, failure: &UpstreamError) -> Value {
    let message = match failure {
        UpstreamError::Timeout(_) => "airlock: the MCP server did not answer in time".to_string(),
        UpstreamError::Gone => "airlock: the MCP server ended; start a new session".to_string(),
        UpstreamError::Unreachable(_) => "airlock: the MCP server cannot be reached".to_string(),
        UpstreamError::BadAnswer => "airlock: the MCP server's answer cannot be read".to_string(),
        UpstreamError::Refused(401 | 403) => {
            "airlock: the MCP server refused the gateway's credential; ask an admin to check the connection's credential".to_string()
        }
        UpstreamError::Refused(status) => {
            format!("airlock: the MCP server refused the request (HTTP {status})")
        }
    };
    let mut data = json!({"status": "upstream_failed"});
    if let UpstreamError::Refused(status) = failure {
        data["http_status"] = json!(status);
    }
    error(id, -32603, &message, Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_get_tool_errors_other_methods_protocol_errors() {
        let denied = Refusal::Denied {
            message: "airlock: denied by rule \"no-writes\"".into(),
        };
        let tool = refused(&json!(4), "tools/call", &denied);
        assert_eq!(tool["id"], 4);
        assert_eq!(tool["result"]["isError"], true);
        assert!(tool["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no-writes"));
        let review = Refusal::Review {
            review_id: Some("r-1".into()),
            message: "held".into(),
        };
        let held = refused(&json!("x"), "tools/call", &review);
        assert_eq!(held["result"]["structuredContent"]["review"], "r-1");
        let read = refused(&json!("y"), "resources/read", &denied);
        assert_eq!(read["error"]["code"], REFUSED);
        assert_eq!(read["error"]["data"]["status"], "denied");
    }
}
