//! `airlock mcp serve --stdio`: airlock's MCP server for a local agent.
//!
//! A thin transport: each newline-delimited JSON-RPC message read from
//! standard input is POSTed to the gateway's `/mcp` endpoint with the
//! caller's own token (`AIRLOCK_TOKEN` or the one `airlock login` stored),
//! and the answer is written to standard output. Nothing is decided here
//! and no store is opened: authentication, policy, reviews, masking and
//! recording are the gateway's, the same as for Streamable HTTP clients.
//! The session id and protocol version the gateway hands out are sent back
//! on every later message; an answer streamed as server-sent events
//! (progress while a statement waits for review, then the result) is
//! written message by message. Log lines go to standard error only.

use anyhow::{anyhow, Result};
use serde_json::{json, Value};
use std::io::BufRead as _;

use crate::cli::McpServeArgs;
use crate::output::outln;

/// Largest message read from standard input (the gateway's own bound).
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The relay's state across messages.
struct Relay {
    agent: ureq::Agent,
    endpoint: String,
    token: String,
    session_id: Option<String>,
    protocol_version: Option<String>,
}

pub fn run(args: &McpServeArgs, token: Option<&str>) -> Result<()> {
    if !args.stdio {
        return Err(anyhow!(
            "only --stdio is served by this command; Streamable HTTP is served by `airlock serve` at https://<gateway>:18080/mcp"
        ));
    }
    let token = token.filter(|token| !token.is_empty()).ok_or_else(|| {
        anyhow!("airlock mcp serve needs your own token: set AIRLOCK_TOKEN or run `airlock login`")
    })?;
    let mut relay = Relay {
        agent: ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(15 * 60))
            .build(),
        endpoint: format!("{}/mcp", args.gateway.trim_end_matches('/')),
        token: token.to_string(),
        session_id: None,
        protocol_version: None,
    };
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(answer) = relay.relay(line) {
            outln!("{answer}");
        }
    }
    Ok(())
}

impl Relay {
    /// Relays one message; the line to answer with, if any.
    fn relay(&mut self, line: &str) -> Option<String> {
        let id = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|message| message.get("id").cloned());
        if line.len() > MAX_LINE_BYTES {
            return Some(rpc_error(id, -32600, "the message is larger than 1 MiB").to_string());
        }
        let mut request = self
            .agent
            .post(&self.endpoint)
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", "application/json")
            .set("Accept", "application/json, text/event-stream");
        if let Some(session) = &self.session_id {
            request = request.set("Mcp-Session-Id", session);
        }
        if let Some(version) = &self.protocol_version {
            request = request.set("MCP-Protocol-Version", version);
        }
        let response = match request.send_string(line) {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_default();
                return id.map(|id| refused(id, status, &body).to_string());
            }
            Err(error) => {
                eprintln!("airlock mcp: the gateway cannot be reached: {error}");
                return id.map(|id| {
                    rpc_error(Some(id), -32603, "airlock: the gateway cannot be reached")
                        .to_string()
                });
            }
        };
        if let Some(session) = response.header("Mcp-Session-Id") {
            self.session_id = Some(session.to_string());
        }
        if response.content_type() == "text/event-stream" {
            // Progress notifications, then the result: each event's data
            // line is one message, written as it arrives.
            let reader = std::io::BufReader::new(response.into_reader());
            for line in reader.lines().map_while(Result::ok) {
                if let Some(data) = line.strip_prefix("data: ") {
                    outln!("{data}");
                }
            }
            return None;
        }
        let body = response.into_string().unwrap_or_default();
        if body.is_empty() {
            return None;
        }
        if let Some(version) = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|answer| {
                answer["result"]["protocolVersion"]
                    .as_str()
                    .map(str::to_string)
            })
        {
            self.protocol_version = Some(version);
        }
        Some(body)
    }
}

fn rpc_error(id: Option<Value>, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id.unwrap_or(Value::Null), "error": {"code": code, "message": message}})
}

/// A gateway refusal (401, 429, 400 …) as a JSON-RPC error for `id`: the
/// gateway's own JSON-RPC error when it sent one, its message otherwise.
fn refused(id: Value, status: u16, body: &str) -> Value {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if let Some(error) = parsed
        .get("error")
        .filter(|error| error.get("code").is_some())
    {
        return json!({"jsonrpc": "2.0", "id": id, "error": error});
    }
    let message = parsed["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("airlock: the gateway answered HTTP {status}"));
    rpc_error(Some(id), -32001, &message)
}
