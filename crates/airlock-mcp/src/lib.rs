//! airlock's own MCP server: agents reach airlock's tools
//! (`list_connections`, `query`, `describe`, `review_status`) over the
//! Model Context Protocol, under the same identity, policy, review, masking
//! and recording as a psql session.
//!
//! - [`jsonrpc`]: JSON-RPC 2.0 messages, sans-IO (bytes in, typed message
//!   or the error to answer out);
//! - [`protocol`]: the revisions served and what `initialize` answers;
//! - [`tools`]: tool definitions and argument reading; [`table`]: the
//!   compact text table of a result;
//! - [`server`]: the methods, transport-neutral; [`sql`]: SQL through the
//!   PostgreSQL gateway's own session (the one decision point stays
//!   there), [`mysql`]: likewise through the MySQL listener,
//!   [`http_tool`]: `http_request` through the HTTP listener; [`record`]:
//!   the `mcp.tool_call` event;
//! - [`http`]: Streamable HTTP at `/mcp` and the protected-resource
//!   metadata; [`session_id`]: HMAC-signed `Mcp-Session-Id`s any replica
//!   verifies; [`errors`]: every HTTP status and JSON-RPC error the
//!   endpoint answers itself; [`routing`]: the stateless revision's
//!   routing headers (`Mcp-Method`, `Mcp-Name`) checked against the body.
//! - [`proxy`]: the MCP proxy in front of other MCP servers
//!   (`protocol: mcp` connections at `/<connection>/mcp`).
//!
//! Architecture invariants: this crate never decides whether SQL runs (the
//! PostgreSQL session it opens asks the gate); it never sees an upstream
//! credential; a tool refusal is a tool result (`isError`), never a
//! protocol error; a malformed message is a JSON-RPC error, never a panic.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

pub mod errors;
pub mod http;
pub mod http_tool;
pub mod jsonrpc;
pub mod mysql;
pub mod protocol;
pub mod proxy;
pub mod record;
pub mod routing;
pub mod server;
pub mod session_id;
pub mod sql;
pub mod table;
pub mod tools;

pub use server::McpServer;

/// The body type of every response (the HTTP gateway's `ClientBody`).
pub type McpBody = BoxBody<Bytes, std::io::Error>;
