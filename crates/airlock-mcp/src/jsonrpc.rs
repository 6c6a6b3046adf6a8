//! JSON-RPC 2.0 messages, sans-IO: bytes in, a typed [`Message`] or the
//! error to answer out; and the response objects the server writes.
//!
//! It never panics on hostile input and never echoes more of a bad message
//! than its `id`. Batches (JSON arrays) are refused: the MCP revisions
//! served here (2025-06-18 and later) removed them.

use serde_json::{json, Map, Value};

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Valid JSON, not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Parameters that do not fit the method.
pub const INVALID_PARAMS: i64 = -32602;
/// The server failed.
pub const INTERNAL_ERROR: i64 = -32603;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// One message a client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: it is answered with the same `id`.
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
    },
    /// A notification: never answered.
    Notification { method: String },
    /// A response to a request of the server's (this server sends none):
    /// accepted and dropped.
    Response,
}

/// A message that cannot be served, with the `id` to answer it under
/// (`null` when it has none or it cannot be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub id: Value,
    pub error: RpcError,
}

fn rejected(id: Value, code: i64, message: &str) -> Rejected {
    Rejected {
        id,
        error: RpcError::new(code, message),
    }
}

/// Reads one message.
pub fn parse(bytes: &[u8]) -> Result<Message, Rejected> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| {
        rejected(
            Value::Null,
            PARSE_ERROR,
            "parse error: the body is not JSON",
        )
    })?;
    let object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(rejected(
                Value::Null,
                INVALID_REQUEST,
                "invalid request: batches are not supported",
            ))
        }
        _ => {
            return Err(rejected(
                Value::Null,
                INVALID_REQUEST,
                "invalid request: not a JSON-RPC object",
            ))
        }
    };
    let id = match object.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
        Some(_) => {
            return Err(rejected(
                Value::Null,
                INVALID_REQUEST,
                "invalid request: id must be a string or a number",
            ))
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(rejected(
            answer_id,
            INVALID_REQUEST,
            "invalid request: jsonrpc must be \"2.0\"",
        ));
    }
    let Some(method) = object.get("method") else {
        if id.is_some() && (object.contains_key("result") || object.contains_key("error")) {
            return Ok(Message::Response);
        }
        return Err(rejected(
            answer_id,
            INVALID_REQUEST,
            "invalid request: method is missing",
        ));
    };
    let Some(method) = method.as_str() else {
        return Err(rejected(
            answer_id,
            INVALID_REQUEST,
            "invalid request: method must be a string",
        ));
    };
    let params = match object.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => {
            return Err(rejected(
                answer_id,
                INVALID_PARAMS,
                "invalid params: params must be an object",
            ))
        }
    };
    Ok(match id {
        Some(id) => Message::Request {
            id,
            method: method.to_string(),
            params,
        },
        None => Message::Notification {
            method: method.to_string(),
        },
    })
}

/// A success response.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response.
pub fn error(id: &Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": error.code, "message": error.message}})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::strategy::Strategy as _;

    #[test]
    fn messages_and_rejections() {
        let cases: &[(&str, Result<&str, i64>)] = &[
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, Ok("request")),
            (
                r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}"#,
                Ok("request"),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                Ok("notification"),
            ),
            (r#"{"jsonrpc":"2.0","id":3,"result":{}}"#, Ok("response")),
            (r#"{"jsonrpc":"2.0","id":1,"method":"#, Err(PARSE_ERROR)),
            ("\u{0}\u{ff}", Err(PARSE_ERROR)),
            ("", Err(PARSE_ERROR)),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                Err(INVALID_REQUEST),
            ),
            ("42", Err(INVALID_REQUEST)),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                Err(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                Err(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                Err(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                Err(INVALID_REQUEST),
            ),
            (r#"{"jsonrpc":"2.0","id":1}"#, Err(INVALID_REQUEST)),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#,
                Err(INVALID_PARAMS),
            ),
        ];
        for (text, expected) in cases {
            let parsed = parse(text.as_bytes());
            match (parsed, expected) {
                (Ok(Message::Request { .. }), Ok("request"))
                | (Ok(Message::Notification { .. }), Ok("notification"))
                | (Ok(Message::Response), Ok("response")) => {}
                (Err(rejected), Err(code)) => assert_eq!(rejected.error.code, *code, "{text}"),
                (other, _) => panic!("{text}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        /// Whatever arrives, it is a message or a rejection, never a
        /// panic; a rejection's id is always one a response may carry.
        #[test]
        fn any_bytes_are_read_or_rejected(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Err(rejected) = parse(&bytes) {
                proptest::prop_assert!(rejected.id.is_null() || rejected.id.is_string() || rejected.id.is_number());
            }
        }

        /// JSON objects of any shape around a method: ids of every JSON
        /// type, unknown fields; requests keep their id exactly.
        #[test]
        fn any_object_shape_is_read_or_rejected(
            id in proptest::prop_oneof![
                proptest::strategy::Just(json!(null)),
                proptest::num::i64::ANY.prop_map(|n| json!(n)),
                "[a-z0-9-]{0,12}".prop_map(|s| json!(s)),
                proptest::strategy::Just(json!({"x": 1})),
                proptest::strategy::Just(json!([1])),
                proptest::strategy::Just(json!(true)),
            ],
            method in "[a-z/_]{0,20}",
            extra in "[a-z]{1,8}",
        ) {
            let message = json!({"jsonrpc": "2.0", "id": id.clone(), "method": method, extra: [1, {"y": null}]});
            let parsed = parse(message.to_string().as_bytes());
            if let Ok(Message::Request { id: read, .. }) = parsed {
                proptest::prop_assert_eq!(read, id);
            }
        }
    }

    #[test]
    fn a_rejection_keeps_a_readable_id() {
        let rejected = parse(br#"{"jsonrpc":"1.0","id":"x-1","method":"ping"}"#).unwrap_err();
        assert_eq!(rejected.id, json!("x-1"));
        let answer = error(&rejected.id, &rejected.error);
        assert_eq!(answer["error"]["code"], json!(INVALID_REQUEST));
    }
}
