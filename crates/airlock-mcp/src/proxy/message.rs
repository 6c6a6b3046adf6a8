//! What one message from the agent is, sans-IO: the JSON-RPC envelope read
//! from bytes into a [`ClientMessage`] (the parsed value kept whole, so
//! unknown methods and fields pass through), the `Command` the gate
//! decides it as, and the value that goes upstream.
//!
//! Security notes: the gateway forwards its own serialization of the value
//! it decided on, never the agent's bytes, so a duplicated key or an odd
//! encoding cannot make the upstream read a different tool than the gate
//! saw; the agent's request id is replaced by the gateway's own (restored
//! on the answer), so an agent cannot make an answer land on another
//! request. Batches are refused (the revisions served removed them).

use serde_json::{json, Map, Value};

use airlock_types::command::mcp::TOOLS_CALL;
use airlock_types::command::{CommandKind, McpCall};
use airlock_types::Command;

use crate::jsonrpc::{RpcError, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR};

/// One message from the agent, read.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// A request: answered under `id`.
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
        /// The whole message as parsed (unknown fields included).
        message: Map<String, Value>,
    },
    /// A notification: never answered.
    Notification {
        method: String,
        message: Map<String, Value>,
    },
    /// A response to a server-to-client request the gateway relayed (the
    /// gateway's id for it; the whole message as parsed).
    Response {
        id: Value,
        message: Map<String, Value>,
    },
}

/// A message that cannot be relayed: the error, under `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub id: Value,
    pub error: RpcError,
}

fn unreadable(id: Value, code: i64, message: &str) -> Unreadable {
    Unreadable {
        id,
        error: RpcError::new(code, message),
    }
}

/// Reads one message. Never panics.
pub fn read(bytes: &[u8]) -> Result<ClientMessage, Unreadable> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| {
        unreadable(
            Value::Null,
            PARSE_ERROR,
            "parse error: the body is not JSON",
        )
    })?;
    let mut message = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(unreadable(
                Value::Null,
                INVALID_REQUEST,
                "invalid request: batches are not supported",
            ))
        }
        _ => {
            return Err(unreadable(
                Value::Null,
                INVALID_REQUEST,
                "invalid request: not a JSON-RPC object",
            ))
        }
    };
    let id = match message.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
        Some(_) => {
            return Err(unreadable(
                Value::Null,
                INVALID_REQUEST,
                "invalid request: id must be a string or a number",
            ))
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(unreadable(
            answer_id,
            INVALID_REQUEST,
            "invalid request: jsonrpc must be \"2.0\"",
        ));
    }
    let method = match message.get("method") {
        Some(Value::String(method)) => method.clone(),
        Some(_) => {
            return Err(unreadable(
                answer_id,
                INVALID_REQUEST,
                "invalid request: method must be a string",
            ))
        }
        None if message.contains_key("result") || message.contains_key("error") => {
            if let Some(id) = id {
                return Ok(ClientMessage::Response { id, message });
            }
            return Err(unreadable(
                answer_id,
                INVALID_REQUEST,
                "invalid request: a response needs an id",
            ));
        }
        None => {
            return Err(unreadable(
                answer_id,
                INVALID_REQUEST,
                "invalid request: method is missing",
            ))
        }
    };
    let params = match message.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => {
            return Err(unreadable(
                answer_id,
                INVALID_PARAMS,
                "invalid params: params must be an object",
            ))
        }
    };
    match id {
        Some(id) => {
            if method == TOOLS_CALL && !matches!(params.get("name"), Some(Value::String(_))) {
                return Err(unreadable(
                    id,
                    INVALID_PARAMS,
                    "invalid params: tools/call needs a tool name",
                ));
            }
            Ok(ClientMessage::Request {
                id,
                method,
                params,
                message,
            })
        }
        None => {
            // A notification carries no id; make sure none is sent on.
            message.remove("id");
            Ok(ClientMessage::Notification { method, message })
        }
    }
}

/// The command the gate decides for a request: a `tools/call` by tool
/// name and arguments (read-only when the connection lists the tool in
/// `read_tools`); `resources/read` with `{"uri"}` and `prompts/get` with
/// `{"name", "arguments"}` as arguments, so `mcp.arguments` conditions
/// apply to them; any other method by name alone.
pub fn command(method: &str, params: &Map<String, Value>, read_tools: &[String]) -> Command {
    let call = match method {
        TOOLS_CALL => {
            let tool = params
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
            let read_only = read_tools.contains(&tool);
            McpCall {
                read_only,
                ..McpCall::tool_call(tool, arguments)
            }
        }
        "resources/read" => McpCall {
            arguments: json!({"uri": params.get("uri").cloned().unwrap_or(Value::Null)}),
            ..McpCall::method(method)
        },
        "prompts/get" => McpCall {
            arguments: json!({
                "name": params.get("name").cloned().unwrap_or(Value::Null),
                "arguments": params.get("arguments").cloned().unwrap_or(Value::Null),
            }),
            ..McpCall::method(method)
        },
        _ => McpCall::method(method),
    };
    let shown = shown_text(method, params);
    Command::new(shown, CommandKind::Mcp(call))
}

/// What a reviewer and the record see of a request: the method and its
/// params as compact JSON.
pub fn shown_text(method: &str, params: &Map<String, Value>) -> String {
    json!({"method": method, "params": params}).to_string()
}

/// The request as the upstream gets it: the agent's message with the
/// gateway's own `id`.
pub fn upstream_request(mut message: Map<String, Value>, upstream_id: u64) -> Value {
    message.insert("id".into(), json!(upstream_id));
    message.insert("jsonrpc".into(), json!("2.0"));
    Value::Object(message)
}

/// A refused `tools/call` as the agent sees it: a tool result with
/// `isError: true` (not a protocol error), naming why.
pub fn tool_refusal(message: &str, status: &str, review: Option<&str>) -> Value {
    let mut structured = json!({"status": status, "message": message});
    if let Some(review) = review {
        structured["review"] = json!(review);
        structured["approve"] = json!(format!("airlock review approve {review}"));
    }
    json!({
        "content": [{"type": "text", "text": message}],
        "structuredContent": structured,
        "isError": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let call = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"write_file","arguments":{"path":"/x"},"_meta":{"k":1}},"extra":true}"#;
        let ClientMessage::Request {
            id,
            method,
            params,
            message,
        } = read(call).unwrap()
        else {
            panic!("a request")
        };
        assert_eq!((id, method.as_str()), (json!("a"), "tools/call"));
        assert_eq!(message["extra"], json!(true));
        let command = command(&method, &params, &[]);
        let CommandKind::Mcp(mcp) = &command.kind else {
            panic!("mcp")
        };
        assert_eq!(mcp.tool.as_deref(), Some("write_file"));
        assert_eq!(mcp.arguments["path"], "/x");
        let forwarded = upstream_request(message, 7);
        assert_eq!(forwarded["id"], json!(7));
        assert_eq!(forwarded["extra"], json!(true));

        for (bytes, code) in [
            (&b"{"[..], PARSE_ERROR),
            (
                b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
                INVALID_REQUEST,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
                INVALID_REQUEST,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":3}}",
                INVALID_PARAMS,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":[1]}",
                INVALID_PARAMS,
            ),
            (
                b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}",
                INVALID_REQUEST,
            ),
        ] {
            assert_eq!(
                read(bytes).unwrap_err().error.code,
                code,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Duplicate keys: the last one is what the gate sees and what is sent.
        let twice = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"write_file"}}"#;
        let ClientMessage::Request {
            params, message, ..
        } = read(twice).unwrap()
        else {
            panic!("a request")
        };
        assert_eq!(params["name"], "write_file");
        assert_eq!(upstream_request(message, 1)["params"]["name"], "write_file");
        assert_eq!(
            read(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap(),
            ClientMessage::Response {
                id: json!(3),
                message: json!({"jsonrpc": "2.0", "id": 3, "result": {}})
                    .as_object()
                    .unwrap()
                    .clone(),
            }
        );
    }

    #[test]
    fn resources_and_prompts_are_decided_by_uri_and_name() {
        let params = json!({"uri": "file:///etc/passwd"});
        let read = command("resources/read", params.as_object().unwrap(), &[]);
        let CommandKind::Mcp(mcp) = &read.kind else {
            panic!("mcp")
        };
        assert_eq!(mcp.arguments["uri"], "file:///etc/passwd");
        let read_only = command(
            "tools/call",
            json!({"name": "list_directory"}).as_object().unwrap(),
            &["list_directory".into()],
        );
        assert_eq!(read_only.access(), airlock_types::command::Access::Read);
    }

    use proptest::prelude::*;

    /// JSON-ish fragments a hostile agent may put around a tools/call.
    fn id() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..1000).prop_map(|n| n.to_string()),
            "[a-z]{0,6}".prop_map(|s| format!("\"{s}\"")),
            Just("null".to_string()),
            Just("1.5".to_string()),
            Just("{}".to_string()),
            Just("[1]".to_string()),
            Just("true".to_string()),
        ]
    }

    fn tool_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\"write_file\"".to_string()),
            Just("\"write_\\u0066ile\"".to_string()),
            Just("\"read_file\",\"name\":\"write_file\"".to_string()),
            Just("\"write_file\",\"name\":\"read_file\"".to_string()),
            Just("\"WRITE_FILE\"".to_string()),
            Just("3".to_string()),
            Just("null".to_string()),
        ]
    }

    proptest! {
        /// Whatever the shape (ids as strings, numbers or worse, unknown
        /// fields, duplicated names, escapes, batches, no id), a message
        /// is refused, or the tool the gate decides is exactly the tool
        /// the upstream would get: a denied `write_file` cannot reach the
        /// server under another reading.
        #[test]
        fn the_tool_decided_is_the_tool_forwarded(
            id in id(),
            name in tool_name(),
            unknown in "[a-z]{0,5}",
            batch in any::<bool>(),
            with_id in any::<bool>(),
        ) {
            let id_part = if with_id { format!("\"id\":{id},") } else { String::new() };
            let one = format!(
                r#"{{"jsonrpc":"2.0",{id_part}"method":"tools/call","{unknown}x":1,"params":{{"name":{name},"arguments":{{"path":"/x"}}}}}}"#
            );
            let text = if batch { format!("[{one}]") } else { one };
            match read(text.as_bytes()) {
                Err(_) | Ok(ClientMessage::Response { .. }) => {}
                Ok(ClientMessage::Notification { method, message }) => {
                    // Never relayed: only notifications/* pass (relay).
                    prop_assert_eq!(method, "tools/call");
                    prop_assert!(!message.contains_key("id"));
                }
                Ok(ClientMessage::Request { method, params, message, .. }) => {
                    let command = command(&method, &params, &[]);
                    let CommandKind::Mcp(decided) = &command.kind else {
                        return Err(TestCaseError::fail("not an MCP command"));
                    };
                    let forwarded = upstream_request(message, 1);
                    prop_assert_eq!(forwarded["method"].as_str(), Some(decided.method.as_str()));
                    prop_assert_eq!(forwarded["params"]["name"].as_str(), decided.tool.as_deref());
                    prop_assert_eq!(&forwarded["params"]["arguments"], &decided.arguments);
                    let decided_write = decided.tool.as_deref() == Some("write_file");
                    prop_assert_eq!(decided_write, forwarded["params"]["name"] == "write_file");
                }
            }
        }
    }
}
