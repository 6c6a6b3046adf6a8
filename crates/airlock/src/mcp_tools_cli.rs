//! `airlock mcp tools list|diff|approve`: the MCP proxy's pinned tool
//! definitions, through the admin API (`/api/v1/mcp/tools`).

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::cli::{McpToolsCommand, OutputFormat};
use crate::client::AdminClient;
use crate::output::{outln, print_list, print_object};

const PIN_COLUMNS: &[(&str, &str)] = &[
    ("tool", "tool"),
    ("state", "state"),
    ("fingerprint", "fingerprint"),
    ("pending_fingerprint", "waiting"),
    ("pinned_at", "pinned"),
];

fn pins(client: &AdminClient, connection: &str) -> Result<Value> {
    let mut query = String::new();
    for byte in connection.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            query.push(char::from(byte));
        } else {
            query.push_str(&format!("%{byte:02X}"));
        }
    }
    let mut list = client.get(&format!("/mcp/tools?connection={query}"))?;
    if let Some(items) = list.as_array_mut() {
        for item in items {
            let state = if item["pending_fingerprint"].is_null() {
                "pinned"
            } else {
                "changed: approve to offer it"
            };
            item["state"] = json!(state);
        }
    }
    Ok(list)
}

/// A definition as indented JSON lines.
fn lines(definition: &Value) -> Vec<String> {
    let parsed = definition
        .as_str()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .unwrap_or(Value::Null);
    serde_json::to_string_pretty(&parsed)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The pinned and the waiting definition, line by line: `-` only in the
/// pinned one, `+` only in the waiting one.
fn print_diff(pin: &Value) {
    let pinned = lines(&pin["definition"]);
    let waiting = lines(&pin["pending_definition"]);
    outln!("--- pinned  {}", pin["fingerprint"].as_str().unwrap_or(""));
    outln!(
        "+++ waiting {}",
        pin["pending_fingerprint"].as_str().unwrap_or("")
    );
    for line in &pinned {
        if !waiting.contains(line) {
            outln!("-{line}");
        }
    }
    for line in &waiting {
        if pinned.contains(line) {
            outln!(" {line}");
        } else {
            outln!("+{line}");
        }
    }
}

/// Runs one `airlock mcp tools` command.
pub fn run(command: McpToolsCommand, client: &AdminClient, format: OutputFormat) -> Result<()> {
    match command {
        McpToolsCommand::List { connection } => {
            print_list(format, &pins(client, &connection)?, PIN_COLUMNS);
        }
        McpToolsCommand::Diff { connection, tool } => {
            let list = pins(client, &connection)?;
            let Some(pin) = list
                .as_array()
                .and_then(|items| items.iter().find(|item| item["tool"] == tool.as_str()))
            else {
                bail!("{connection} has no pinned tool {tool:?}");
            };
            if format == OutputFormat::Json {
                outln!("{pin}");
            } else if pin["pending_fingerprint"].is_null() {
                outln!(
                    "{tool}: unchanged since pinned ({})",
                    pin["fingerprint"].as_str().unwrap_or("")
                );
            } else {
                print_diff(pin);
            }
        }
        McpToolsCommand::Approve {
            connection,
            tool,
            fingerprint,
        } => {
            let approved = client.post(
                "/mcp/tools/approve",
                &json!({"connection": connection, "tool": tool, "fingerprint": fingerprint}),
            )?;
            print_object(
                format,
                &approved,
                &[("tool", "approved"), ("fingerprint", "fingerprint")],
            );
        }
    }
    Ok(())
}
