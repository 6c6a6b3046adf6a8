//! The MCP server's methods, transport-neutral: one JSON-RPC message from
//! an authenticated [`Caller`] in, the response (if any) out. `initialize`
//! (version negotiation), `ping`, `tools/list`, `tools/call`; every other
//! request is `-32601`, every notification is accepted and dropped.
//!
//! Tool calls never decide: `query` and `describe` run in the gateway's own
//! PostgreSQL session ([`crate::sql`]), `list_connections` shows what the
//! caller's token is scoped to, `review_status` what the core's review
//! store says of the caller's own reviews. Every call is recorded
//! ([`crate::record`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use airlock_core::auth::Authenticated;
use airlock_core::GatewayState;
use airlock_mask::MaskPlan;
use airlock_types::{Protocol, Secret};

use crate::http_tool::HttpCall;
use crate::jsonrpc::{self, Message, RpcError, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::protocol::{initialize_result, negotiate};
use crate::record::{argument_mask, record_call, CallRecord};
use crate::session_id::SessionIds;
use crate::sql::{self, SqlCaller, SqlFailure, SqlRows};
use crate::table;
use crate::tools::{definitions, read_call, ArgumentError, HttpArguments, ToolCall};

/// Who calls: an authenticated identity, the token it presented (to log
/// in the sessions its SQL runs in) and what the token may reach.
pub struct Caller {
    pub authenticated: Authenticated,
    /// The connections an airlock token is scoped to; `None` for an OIDC
    /// token (admission decides per connection).
    pub scope: Option<Vec<String>>,
    pub token: Secret<String>,
    pub peer: SocketAddr,
}

/// airlock's MCP server: the core's state, session ids, the argument mask.
pub struct McpServer {
    pub state: Arc<GatewayState>,
    pub session_ids: SessionIds,
    argument_mask: Option<MaskPlan>,
}

/// A tool's answer: the result object, and what its record keeps.
struct Answered {
    result: Value,
    outcome: &'static str,
    message: Option<String>,
    review: Option<String>,
    rows: Option<u64>,
}

impl Answered {
    fn ok(structured: Value, text: String, rows: Option<u64>) -> Self {
        Self {
            result: json!({
                "content": [{"type": "text", "text": text}],
                "structuredContent": structured,
                "isError": false,
            }),
            outcome: "ok",
            message: None,
            review: None,
            rows,
        }
    }

    fn error(outcome: &'static str, message: String) -> Self {
        Self {
            result: json!({
                "content": [{"type": "text", "text": message}],
                "structuredContent": {"status": outcome, "message": message},
                "isError": true,
            }),
            outcome,
            message: Some(message),
            review: None,
            rows: None,
        }
    }
}

impl McpServer {
    pub fn new(state: Arc<GatewayState>) -> Self {
        let key = state.vault.derive_key("mcp-session");
        Self {
            state,
            session_ids: SessionIds::new(key),
            argument_mask: argument_mask(),
        }
    }

    /// Answers one message; `None` for notifications and responses.
    /// `progress`, when the transport can stream, receives the
    /// `notifications/progress` a call with a `progressToken` sends while
    /// it waits (a statement held for review).
    pub async fn handle(
        &self,
        caller: &Caller,
        message: Message,
        progress: Option<&Progress>,
    ) -> Option<Value> {
        let Message::Request { id, method, params } = message else {
            return None;
        };
        let stateless = crate::protocol::is_stateless(&params);
        let answered = match method.as_str() {
            "initialize" => Ok(initialize_result(negotiate(
                params.get("protocolVersion").and_then(Value::as_str),
            ))),
            "server/discover" => Ok(crate::protocol::discover_result()),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({"tools": definitions()})),
            "tools/call" => self.call_tool(caller, &params, progress).await,
            _ => Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!(
                    "method not found: {}",
                    method.chars().take(64).collect::<String>()
                ),
            )),
        };
        Some(match answered {
            Ok(mut result) => {
                if stateless {
                    crate::protocol::stamp_stateless(&method, &mut result);
                }
                jsonrpc::result(&id, result)
            }
            Err(error) => jsonrpc::error(&id, &error),
        })
    }

    async fn call_tool(
        &self,
        caller: &Caller,
        params: &Map<String, Value>,
        progress: Option<&Progress>,
    ) -> Result<Value, RpcError> {
        let started = Instant::now();
        let empty = Map::new();
        let arguments = params
            .get("arguments")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let (tool, connection, answered) = match read_call(params) {
            Err(ArgumentError::UnknownTool(name)) => {
                return Err(RpcError::new(
                    INVALID_PARAMS,
                    format!("unknown tool: {name}"),
                ))
            }
            Err(error @ ArgumentError::Invalid { tool, .. }) => {
                (tool, None, Answered::error("error", error.to_string()))
            }
            Ok(call) => {
                let notices = progress_token(params)
                    .zip(progress)
                    .map(|(token, sink)| forward_progress(token, sink.clone()));
                let answered = self.run_tool(caller, &call, notices).await;
                (call.name(), call.connection().map(str::to_string), answered)
            }
        };
        let identity = &caller.authenticated.identity.name;
        let record = CallRecord {
            tool,
            arguments,
            connection: connection.as_deref(),
            outcome: answered.outcome,
            message: answered.message.as_deref(),
            review: answered.review.as_deref(),
            rows: answered.rows,
            elapsed_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        let client = caller.peer.to_string();
        record_call(
            &self.state,
            self.argument_mask.as_ref(),
            identity,
            &client,
            &record,
        )
        .await;
        tracing::info!(tool, outcome = answered.outcome, identity = %identity, "MCP tool call");
        Ok(answered.result)
    }

    async fn run_tool(
        &self,
        caller: &Caller,
        call: &ToolCall,
        notices: Option<Notices>,
    ) -> Answered {
        match call {
            ToolCall::ListConnections => self.list_connections(caller),
            ToolCall::Query { connection, sql } => {
                self.run_sql(caller, connection, Some(sql), notices).await
            }
            ToolCall::Describe { connection } => {
                self.run_sql(caller, connection, None, notices).await
            }
            ToolCall::ReviewStatus { id } => self.review_status(caller, id).await,
            ToolCall::HttpRequest(arguments) => self.http_request(caller, arguments).await,
        }
    }

    fn list_connections(&self, caller: &Caller) -> Answered {
        let connections = match self.state.all_connections() {
            Ok(connections) => connections,
            Err(error) => {
                tracing::error!(%error, "store unavailable listing connections");
                return Answered::error(
                    "error",
                    "airlock: the gateway store is unavailable".into(),
                );
            }
        };
        let listed: Vec<Value> = connections
            .iter()
            .filter(|connection| {
                caller
                    .scope
                    .as_ref()
                    .is_none_or(|scope| scope.contains(&connection.name))
            })
            .map(|connection| {
                let tools: &[&str] = match connection.protocol {
                    Protocol::Postgres | Protocol::Mysql => &["query", "describe"],
                    Protocol::Http => &["http_request"],
                    _ => &[],
                };
                json!({
                    "name": connection.name,
                    "protocol": connection.protocol.as_str(),
                    "tags": connection.tags,
                    "tools": tools,
                    // A session needs a grant first (`airlock access request`).
                    "jit": connection.jit,
                })
            })
            .collect();
        let columns = vec![
            "name".to_string(),
            "protocol".to_string(),
            "tags".to_string(),
        ];
        let rows: Vec<Vec<Option<String>>> = listed
            .iter()
            .map(|entry| {
                vec![
                    entry["name"].as_str().map(str::to_string),
                    entry["protocol"].as_str().map(str::to_string),
                    Some(entry["tags"].to_string()),
                ]
            })
            .collect();
        let count = u64::try_from(listed.len()).unwrap_or(u64::MAX);
        Answered::ok(
            json!({"connections": listed}),
            table::render(&columns, &rows),
            Some(count),
        )
    }

    async fn run_sql(
        &self,
        caller: &Caller,
        connection: &str,
        text: Option<&str>,
        notices: Option<Notices>,
    ) -> Answered {
        // Outside the token's scope the session's own login refuses it, so
        // nothing here tells what such a connection is.
        let in_scope = caller
            .scope
            .as_ref()
            .is_none_or(|scope| scope.iter().any(|name| name == connection));
        let protocol = self
            .state
            .resolve_connection(connection)
            .ok()
            .flatten()
            .filter(|_| in_scope)
            .map(|resolved| resolved.protocol);
        if protocol
            .is_some_and(|protocol| !matches!(protocol, Protocol::Postgres | Protocol::Mysql))
        {
            return Answered::error(
                "error",
                format!("airlock: connection \"{connection}\" is not a SQL connection; the SQL tools serve PostgreSQL and MySQL connections"),
            );
        }
        let sql_caller = SqlCaller {
            identity: &caller.authenticated.identity.name,
            token: caller.token.expose(),
            peer: caller.peer,
        };
        let ran = if protocol == Some(Protocol::Mysql) {
            let text = text.unwrap_or(crate::mysql::DESCRIBE_SQL);
            crate::mysql::run(&self.state, &sql_caller, connection, text).await
        } else {
            let text = text.unwrap_or(sql::DESCRIBE_SQL);
            sql::run(&self.state, &sql_caller, connection, text, notices).await
        };
        match ran {
            Ok(rows) => rows_answer(connection, rows),
            Err(failure) => failure_answer(failure),
        }
    }

    async fn http_request(&self, caller: &Caller, arguments: &HttpArguments) -> Answered {
        let sql_caller = SqlCaller {
            identity: &caller.authenticated.identity.name,
            token: caller.token.expose(),
            peer: caller.peer,
        };
        let call = HttpCall {
            connection: &arguments.connection,
            method: &arguments.method,
            path: &arguments.path,
            body: arguments.body.as_deref(),
            content_type: arguments.content_type.as_deref(),
        };
        match crate::http_tool::run(&self.state, &sql_caller, &call).await {
            Ok(answer) => {
                let json_body = answer
                    .content_type
                    .as_deref()
                    .is_some_and(|media| media.contains("json"))
                    .then(|| serde_json::from_str::<Value>(&answer.body).ok())
                    .flatten();
                let text = format!("HTTP {}\n{}", answer.status, answer.body);
                let mut answered = Answered::ok(
                    json!({
                        "status": if answer.status < 400 { "ok" } else { "error" },
                        "http_status": answer.status,
                        "content_type": answer.content_type,
                        "body": json_body.unwrap_or(Value::String(answer.body)),
                    }),
                    text,
                    None,
                );
                if answer.status >= 400 {
                    answered.result["isError"] = json!(true);
                    answered.outcome = "error";
                }
                answered
            }
            Err(failure) => failure_answer(failure),
        }
    }

    async fn review_status(&self, caller: &Caller, id: &str) -> Answered {
        let state = Arc::clone(&self.state);
        let identity = caller.authenticated.identity.clone();
        let lookup = id.to_string();
        let found =
            tokio::task::spawn_blocking(move || state.show_review(Some(&identity), &lookup))
                .await
                .ok()
                .and_then(Result::ok)
                .filter(|review| review.identity == caller.authenticated.identity.name);
        let Some(review) = found else {
            return Answered::error("error", format!("review {id} not found"));
        };
        let structured = json!({
            "id": review.id,
            "status": review.status,
            "connection": review.connection,
            "rule": review.rule,
            "statement": review.statement,
            "created_at": review.created_at,
            "decided_at": review.decided_at,
            "valid_until": review.valid_until,
            "approve_command": format!("airlock review approve {}", review.id),
        });
        let text = format!(
            "review {} is {} (rule \"{}\", connection {})",
            review.id, review.status, review.rule, review.connection
        );
        Answered::ok(structured, text, None)
    }
}

/// Where a streaming transport takes the notifications a call sends
/// before its result.
pub type Progress = tokio::sync::mpsc::UnboundedSender<Value>;

/// The session notices of one call.
type Notices = tokio::sync::mpsc::UnboundedSender<String>;

/// The call's `_meta.progressToken` (a string or an integer).
pub fn progress_token(params: &Map<String, Value>) -> Option<Value> {
    params
        .get("_meta")
        .and_then(|meta| meta.get("progressToken"))
        .filter(|token| token.is_string() || token.is_i64() || token.is_u64())
        .cloned()
}

/// A sender for the session's notices that turns each into a
/// `notifications/progress` for `token` on `sink`.
fn forward_progress(token: Value, sink: Progress) -> Notices {
    let (notices, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut step = 0u64;
        while let Some(message) = received.recv().await {
            step += 1;
            let notification = json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": token, "progress": step, "message": message},
            });
            if sink.send(notification).is_err() {
                break;
            }
        }
    });
    notices
}

fn rows_answer(connection: &str, rows: SqlRows) -> Answered {
    let text = if rows.columns.is_empty() {
        format!("OK ({} rows affected)", rows.row_count)
    } else {
        table::render(&rows.columns, &rows.rows)
    };
    let count = rows.row_count;
    Answered::ok(
        json!({
            "status": "ok",
            "connection": connection,
            "columns": rows.columns,
            "rows": rows.rows,
            "row_count": rows.row_count,
            "truncated": rows.truncated,
        }),
        text,
        Some(count),
    )
}

fn failure_answer(failure: SqlFailure) -> Answered {
    match failure {
        SqlFailure::ReviewRequired { review_id, message } => {
            let approve = format!("airlock review approve {review_id}");
            let mut answered = Answered::ok(
                json!({
                    "status": "review_required",
                    "review_id": review_id,
                    "approve_command": approve,
                    "message": message,
                }),
                format!("{message}\nThe statement did not run. Once a reviewer approves ({approve}), run the same statement again."),
                None,
            );
            answered.outcome = "review_required";
            answered.message = Some(message);
            answered.review = Some(review_id);
            answered
        }
        SqlFailure::Denied { message } => Answered::error("denied", message),
        SqlFailure::Upstream { code, message } => {
            Answered::error("error", format!("ERROR {code}: {message}"))
        }
        SqlFailure::Internal(message) => Answered::error("error", format!("airlock: {message}")),
    }
}
