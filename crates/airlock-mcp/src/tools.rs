//! The tools: their definitions (JSON schemas, annotations) as
//! `tools/list` shows them, and the reading of a `tools/call`'s arguments
//! into a typed [`ToolCall`]. Pure.

use serde_json::{json, Map, Value};

/// Largest SQL text a `query` takes.
pub const MAX_SQL_BYTES: usize = 256 * 1024;

/// A call, its arguments read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    ListConnections,
    Query { connection: String, sql: String },
    Describe { connection: String },
    ReviewStatus { id: String },
    HttpRequest(HttpArguments),
}

/// The arguments of `http_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpArguments {
    pub connection: String,
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub content_type: Option<String>,
}

/// Methods `http_request` sends.
pub const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"];

impl ToolCall {
    /// The tool's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ListConnections => "list_connections",
            Self::Query { .. } => "query",
            Self::Describe { .. } => "describe",
            Self::ReviewStatus { .. } => "review_status",
            Self::HttpRequest(_) => "http_request",
        }
    }

    /// The connection it uses, when it names one.
    pub fn connection(&self) -> Option<&str> {
        match self {
            Self::Query { connection, .. } | Self::Describe { connection } => Some(connection),
            Self::HttpRequest(arguments) => Some(&arguments.connection),
            Self::ListConnections | Self::ReviewStatus { .. } => None,
        }
    }
}

/// Why a call's arguments cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// No such tool: a protocol error (`-32602`), as the specification says.
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    /// The arguments do not fit the schema: a tool error the model can fix.
    #[error("invalid arguments for {tool}: {message}")]
    Invalid { tool: &'static str, message: String },
}

fn text_argument(
    arguments: &Map<String, Value>,
    tool: &'static str,
    name: &str,
    max_bytes: usize,
) -> Result<String, ArgumentError> {
    match arguments.get(name) {
        Some(Value::String(text)) if !text.trim().is_empty() && text.len() <= max_bytes => {
            Ok(text.clone())
        }
        Some(Value::String(text)) if text.len() > max_bytes => Err(ArgumentError::Invalid {
            tool,
            message: format!("{name} is longer than {max_bytes} bytes"),
        }),
        _ => Err(ArgumentError::Invalid {
            tool,
            message: format!("{name} must be a non-empty string"),
        }),
    }
}

/// Reads a `tools/call`: `name` and `arguments`.
pub fn read_call(params: &Map<String, Value>) -> Result<ToolCall, ArgumentError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let empty = Map::new();
    let arguments = match params.get("arguments") {
        Some(Value::Object(arguments)) => arguments,
        _ => &empty,
    };
    match name {
        "list_connections" => Ok(ToolCall::ListConnections),
        "query" => Ok(ToolCall::Query {
            connection: text_argument(arguments, "query", "connection", 256)?,
            sql: text_argument(arguments, "query", "sql", MAX_SQL_BYTES)?,
        }),
        "describe" => Ok(ToolCall::Describe {
            connection: text_argument(arguments, "describe", "connection", 256)?,
        }),
        "review_status" => Ok(ToolCall::ReviewStatus {
            id: text_argument(arguments, "review_status", "id", 64)?,
        }),
        "http_request" => read_http(arguments).map(ToolCall::HttpRequest),
        other => Err(ArgumentError::UnknownTool(other.chars().take(64).collect())),
    }
}

fn read_http(arguments: &Map<String, Value>) -> Result<HttpArguments, ArgumentError> {
    let invalid = |message: &str| ArgumentError::Invalid {
        tool: "http_request",
        message: message.to_string(),
    };
    let connection = text_argument(arguments, "http_request", "connection", 256)?;
    if !connection
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid("connection must be a connection name"));
    }
    let method = text_argument(arguments, "http_request", "method", 16)?.to_ascii_uppercase();
    if !HTTP_METHODS.contains(&method.as_str()) {
        return Err(invalid(
            "method must be one of GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE",
        ));
    }
    let path = text_argument(arguments, "http_request", "path", 8 * 1024)?;
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(invalid(
            "path must start with / and hold no spaces or control characters",
        ));
    }
    let optional = |name: &str| match arguments.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.len() <= MAX_SQL_BYTES => Ok(Some(text.clone())),
        Some(_) => Err(invalid(&format!(
            "{name} must be a string of at most {MAX_SQL_BYTES} bytes"
        ))),
    };
    Ok(HttpArguments {
        connection,
        method,
        path,
        body: optional("body")?,
        content_type: optional("content_type")?,
    })
}

fn rows_output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "review_required", "denied", "error"]},
            "connection": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "array"}},
            "row_count": {"type": "integer"},
            "truncated": {"type": "boolean"},
            "command_tag": {"type": "string"},
            "review_id": {"type": "string"},
            "approve_command": {"type": "string"},
            "message": {"type": "string"}
        },
        "required": ["status"]
    })
}

/// What `tools/list` answers.
pub fn definitions() -> Value {
    json!([
        {
            "name": "list_connections",
            "title": "List connections",
            "description": "The connections this identity may reach through airlock: name, protocol and tags (never credentials).",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
            "outputSchema": {
                "type": "object",
                "properties": {"connections": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "protocol": {"type": "string"},
                        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                        "tools": {"type": "array", "items": {"type": "string"}},
                        "jit": {"type": "boolean", "description": "sessions need an access grant first"}
                    },
                    "required": ["name", "protocol", "tags"]
                }}},
                "required": ["connections"]
            },
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        },
        {
            "name": "query",
            "title": "Run SQL",
            "description": "Runs SQL on a PostgreSQL or MySQL/MariaDB connection through airlock: classified, decided by policy (allow, deny, or hold for human review), recorded, and masked exactly as a psql or mysql session. A denied statement is a tool error naming the rule; a held one returns status review_required with the review id and the approve command.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "connection": {"type": "string", "description": "A connection name from list_connections"},
                    "sql": {"type": "string", "description": "The SQL text (one or more statements)"}
                },
                "required": ["connection", "sql"],
                "additionalProperties": false
            },
            "outputSchema": rows_output_schema(),
            "annotations": {"readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": false}
        },
        {
            "name": "describe",
            "title": "Describe tables",
            "description": "Tables and columns of a PostgreSQL or MySQL connection (information_schema), through the same path as query.",
            "inputSchema": {
                "type": "object",
                "properties": {"connection": {"type": "string"}},
                "required": ["connection"],
                "additionalProperties": false
            },
            "outputSchema": rows_output_schema(),
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        },
        {
            "name": "http_request",
            "title": "HTTP request",
            "description": "Sends an HTTP request to an HTTP API connection through airlock (https://gw/<connection><path>): decided by policy (allow, deny, or hold for review), the stored credential injected by the gateway, the response masked and recorded.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "connection": {"type": "string"},
                    "method": {"type": "string", "enum": HTTP_METHODS},
                    "path": {"type": "string", "description": "Path and query below the connection's URL, starting with /"},
                    "body": {"type": "string"},
                    "content_type": {"type": "string"}
                },
                "required": ["connection", "method", "path"],
                "additionalProperties": false
            },
            "outputSchema": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "http_status": {"type": "integer"},
                    "content_type": {"type": "string"},
                    "body": {},
                    "review_id": {"type": "string"},
                    "approve_command": {"type": "string"},
                    "message": {"type": "string"}
                },
                "required": ["status"]
            },
            "annotations": {"readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true}
        },
        {
            "name": "review_status",
            "title": "Review status",
            "description": "The state of a review this identity created (pending, approved, denied, expired, used).",
            "inputSchema": {
                "type": "object",
                "properties": {"id": {"type": "string", "description": "A review id such as r-3f9c0a12"}},
                "required": ["id"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }
    ])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn calls_are_read_or_refused() {
        assert_eq!(
            read_call(&params(
                json!({"name": "query", "arguments": {"connection": "c", "sql": "select 1"}})
            )),
            Ok(ToolCall::Query {
                connection: "c".into(),
                sql: "select 1".into()
            })
        );
        assert_eq!(
            read_call(&params(json!({"name": "list_connections"}))),
            Ok(ToolCall::ListConnections)
        );
        assert!(matches!(
            read_call(&params(
                json!({"name": "query", "arguments": {"connection": "c", "sql": 7}})
            )),
            Err(ArgumentError::Invalid { tool: "query", .. })
        ));
        assert!(matches!(
            read_call(&params(json!({"name": "query", "arguments": "x"}))),
            Err(ArgumentError::Invalid { .. })
        ));
        assert!(matches!(
            read_call(&params(json!({"name": "drop_all"}))),
            Err(ArgumentError::UnknownTool(_))
        ));
        assert!(matches!(
            read_call(&params(json!({}))),
            Err(ArgumentError::UnknownTool(_))
        ));
    }

    #[test]
    fn every_definition_has_schemas_and_annotations() {
        for tool in definitions().as_array().unwrap() {
            assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
            assert!(tool["annotations"]["readOnlyHint"].is_boolean(), "{tool}");
            assert!(
                tool["annotations"]["destructiveHint"].is_boolean(),
                "{tool}"
            );
        }
    }
}
