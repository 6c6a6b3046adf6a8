//! An MCP (JSON-RPC) request as a command: [`McpCall`], and the pure rules
//! that classify it (DESIGN.md "One core, many protocols").
//!
//! `tools/call` writes unless the protocol crate marks the tool read-only
//! ([`McpCall::read_only`]: the connection lists it in `read_tools`, or it
//! trusts the annotations of a pinned tool definition; never the client's
//! word). Listing, reading resources, getting prompts, completion, ping,
//! initialize and notifications read; `logging/setLevel` writes (it changes
//! server state); a method this crate does not know is unclassified, so it
//! fails closed.
//!
//! A request the *server* sends the agent ([`McpCall::server_request`]):
//! `sampling/createMessage` and `elicitation/create` write (they make the
//! agent's model or user act on the server's behalf), `roots/list` and
//! `ping` read; any other server request is unclassified.

use super::{effective_access, Access};
use serde::{Deserialize, Serialize};

/// The MCP method that calls a tool.
pub const TOOLS_CALL: &str = "tools/call";

/// Client requests that only read.
const READ_METHODS: [&str; 11] = [
    "initialize",
    "ping",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// Client requests with an effect other than a tool call.
const WRITE_METHODS: [&str; 1] = ["logging/setLevel"];

/// Requests a server may send the agent, and whether each only reads.
const SERVER_METHODS: [(&str, bool); 4] = [
    ("sampling/createMessage", false),
    ("elicitation/create", false),
    ("roots/list", true),
    ("ping", true),
];

/// True when airlock knows what the server request `method` does.
pub fn mcp_server_method_known(method: &str) -> bool {
    SERVER_METHODS.iter().any(|(known, _)| *known == method)
}

/// True when airlock knows what `method` does.
pub fn mcp_method_known(method: &str) -> bool {
    method == TOOLS_CALL
        || READ_METHODS.contains(&method)
        || WRITE_METHODS.contains(&method)
        || method.starts_with("notifications/")
}

/// One MCP request or notification, as the policy engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpCall {
    /// The JSON-RPC method (`tools/call`, `resources/read`, …).
    pub method: String,
    /// For `tools/call`: the tool's name.
    pub tool: Option<String>,
    /// For `tools/call`: the tool's arguments as sent (`null` when none).
    pub arguments: serde_json::Value,
    /// The protocol crate knows this tool to be read-only (see the module
    /// documentation). No effect on other methods.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// A request the server sent towards the agent (sampling,
    /// elicitation, roots), not one of the agent's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server_request: bool,
}

impl McpCall {
    /// A `tools/call` of `tool` with `arguments`, not marked read-only.
    pub fn tool_call(tool: impl Into<String>, arguments: serde_json::Value) -> Self {
        Self {
            method: TOOLS_CALL.to_string(),
            tool: Some(tool.into()),
            arguments,
            read_only: false,
            server_request: false,
        }
    }

    /// Any other method, with no tool and no arguments.
    pub fn method(method: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            tool: None,
            arguments: serde_json::Value::Null,
            read_only: false,
            server_request: false,
        }
    }

    /// A request `method` the server sent towards the agent.
    pub fn server_request(method: impl Into<String>) -> Self {
        Self {
            server_request: true,
            ..Self::method(method)
        }
    }

    /// The access of the call (see the module documentation).
    pub fn access(&self) -> Access {
        if self.server_request {
            let reads = SERVER_METHODS
                .iter()
                .any(|(known, reads)| *known == self.method && *reads);
            return if reads { Access::Read } else { Access::Write };
        }
        if self.method == TOOLS_CALL {
            if self.read_only {
                Access::Read
            } else {
                Access::Write
            }
        } else if READ_METHODS.contains(&self.method.as_str())
            || self.method.starts_with("notifications/")
        {
            Access::Read
        } else {
            Access::Write
        }
    }

    /// A known method, and for `tools/call` a tool name.
    pub fn complete(&self) -> bool {
        if self.server_request {
            return mcp_server_method_known(&self.method);
        }
        mcp_method_known(&self.method) && (self.method != TOOLS_CALL || self.tool.is_some())
    }

    /// The access, never `Read` unless complete.
    pub fn effective_access(&self) -> Access {
        effective_access(self.access(), self.complete())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_classify() {
        let read_tool = McpCall {
            read_only: true,
            ..McpCall::tool_call("get_issue", json!({"number": 7}))
        };
        let nameless = McpCall {
            tool: None,
            ..McpCall::tool_call("x", json!({}))
        };
        let cases = [
            (
                McpCall::tool_call("merge_pull_request", json!({})),
                Access::Write,
                true,
            ),
            (read_tool, Access::Read, true),
            (McpCall::method("tools/list"), Access::Read, true),
            (McpCall::method("resources/read"), Access::Read, true),
            (McpCall::method("prompts/get"), Access::Read, true),
            (McpCall::method("initialize"), Access::Read, true),
            (
                McpCall::method("notifications/initialized"),
                Access::Read,
                true,
            ),
            (McpCall::method("logging/setLevel"), Access::Write, true),
            (McpCall::method("tasks/run"), Access::Write, false),
            (nameless, Access::Write, false),
            (
                McpCall::server_request("sampling/createMessage"),
                Access::Write,
                true,
            ),
            (
                McpCall::server_request("elicitation/create"),
                Access::Write,
                true,
            ),
            (McpCall::server_request("roots/list"), Access::Read, true),
            (McpCall::server_request("tools/list"), Access::Write, false),
            // A client request of a server method is not known.
            (McpCall::method("roots/list"), Access::Write, false),
        ];
        for (call, access, complete) in cases {
            assert_eq!(call.effective_access(), access, "{call:?}");
            assert_eq!(call.complete(), complete, "{call:?}");
        }
        // Read-only marks tools only.
        let marked = McpCall {
            read_only: true,
            ..McpCall::method("logging/setLevel")
        };
        assert_eq!(marked.access(), Access::Write);
    }
}
