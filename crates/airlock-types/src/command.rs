//! The protocol-neutral view of one request: [`Command`], what it carries
//! ([`CommandKind`]: SQL statements with their [`StatementClass`]es, an
//! [`HttpRequest`], a [`KubernetesRequest`] or an [`McpCall`]), and the one
//! meaning of [`Access`] and completeness across all of them.
//!
//! The vocabulary is the user-facing contract of DESIGN.md: operation,
//! verb and access names appear in policy files and must stay stable. The
//! pure classification rules of each non-SQL protocol live beside its
//! request type ([`http`], [`kubernetes`], [`mcp`]), so a protocol crate
//! builds a command by calling them and the policy engine reads the result;
//! neither decides the classification on its own.

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod http;
pub mod kubernetes;
pub mod mcp;

pub use http::HttpRequest;
pub use kubernetes::{KubernetesRequest, KubernetesVerb};
pub use mcp::McpCall;

/// What a statement does, as named in policy files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Truncate,
    CopyFrom,
    CopyTo,
    Create,
    Alter,
    Drop,
    Grant,
    Revoke,
    Call,
    Do,
    Prepare,
    Execute,
    Set,
    Show,
    Explain,
    Transaction,
    Lock,
    Maintenance,
    Listen,
    Notify,
    Other,
    Unknown,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Operation; 27] = [
        Self::Select,
        Self::Insert,
        Self::Update,
        Self::Delete,
        Self::Merge,
        Self::Truncate,
        Self::CopyFrom,
        Self::CopyTo,
        Self::Create,
        Self::Alter,
        Self::Drop,
        Self::Grant,
        Self::Revoke,
        Self::Call,
        Self::Do,
        Self::Prepare,
        Self::Execute,
        Self::Set,
        Self::Show,
        Self::Explain,
        Self::Transaction,
        Self::Lock,
        Self::Maintenance,
        Self::Listen,
        Self::Notify,
        Self::Other,
        Self::Unknown,
    ];

    /// The snake_case name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Merge => "merge",
            Self::Truncate => "truncate",
            Self::CopyFrom => "copy_from",
            Self::CopyTo => "copy_to",
            Self::Create => "create",
            Self::Alter => "alter",
            Self::Drop => "drop",
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::Call => "call",
            Self::Do => "do",
            Self::Prepare => "prepare",
            Self::Execute => "execute",
            Self::Set => "set",
            Self::Show => "show",
            Self::Explain => "explain",
            Self::Transaction => "transaction",
            Self::Lock => "lock",
            Self::Maintenance => "maintenance",
            Self::Listen => "listen",
            Self::Notify => "notify",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }

    /// Parses a policy-file name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == text)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a statement reaches, ordered: `Read < Write < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Only returns rows; no effect on data, schema, session or server.
    Read,
    /// Any effect beyond returning rows (DML, DDL, side-effecting functions,
    /// locks, maintenance, NOTIFY).
    Write,
    /// Roles, grants, privilege-changing settings, server control, server-side
    /// file or program access.
    Admin,
}

impl Access {
    /// The snake_case name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classification of one statement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatementClass {
    /// Every operation the statement performs, including ones nested in
    /// CTEs, `EXPLAIN ANALYZE` and the like. Sorted, no duplicates.
    pub operations: Vec<Operation>,
    /// The widest access of any operation or function in the statement.
    /// Never `Read` when `complete` is false.
    pub access: Option<Access>,
    /// Tables (as written, lowercased unless quoted) the statement reads.
    pub tables_read: Vec<String>,
    /// Tables the statement writes (insert, update, delete, DDL targets …).
    pub tables_written: Vec<String>,
    /// Functions the statement calls (lowercased, schema-qualified as written).
    pub functions: Vec<String>,
    /// Functions called that the classifier does not know to be side-effect
    /// free; a policy may deny or review them.
    pub unknown_functions: Vec<String>,
    /// For UPDATE/DELETE: whether a WHERE clause bounds it. `None` when the
    /// statement is neither.
    pub has_where: Option<bool>,
    /// False when the classifier is not sure what the statement does.
    pub complete: bool,
}

impl StatementClass {
    /// The effective access: an incomplete classification is never `Read`.
    pub fn effective_access(&self) -> Access {
        match (self.access, self.complete) {
            (Some(Access::Read), true) => Access::Read,
            (Some(Access::Admin), _) => Access::Admin,
            _ => Access::Write,
        }
    }
}

/// One request from a client, as the policy engine sees it.
///
/// Serialized as `{"text": …, "statements": […]}` for SQL (the shape audit
/// records and reviews have always had), `{"text": …, "http": {…}}`,
/// `{"text": …, "kubernetes": {…}}` or `{"text": …, "mcp": {…}}` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Command {
    /// The request as the client sent it, for records and reviewers: the
    /// full statement text for SQL, `METHOD path` for HTTP and Kubernetes,
    /// the JSON-RPC request for MCP.
    pub text: String,
    /// What the request is, classified.
    #[serde(flatten)]
    pub kind: CommandKind,
}

/// What one command carries: exactly one protocol family's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// SQL (PostgreSQL, MySQL): one entry per statement of the text.
    #[serde(rename = "statements")]
    Sql(Vec<StatementClass>),
    /// A plain HTTP API request.
    Http(HttpRequest),
    /// A Kubernetes API request.
    Kubernetes(KubernetesRequest),
    /// An MCP (JSON-RPC) request or notification.
    Mcp(McpCall),
}

impl Default for CommandKind {
    fn default() -> Self {
        Self::Sql(Vec::new())
    }
}

impl CommandKind {
    /// The protocol family as named in policy files and messages: `sql`,
    /// `http`, `kubernetes` or `mcp`.
    pub fn family(&self) -> &'static str {
        match self {
            Self::Sql(_) => "sql",
            Self::Http(_) => "http",
            Self::Kubernetes(_) => "kubernetes",
            Self::Mcp(_) => "mcp",
        }
    }
}

/// The access of a request whose classification may be unsure: an
/// incomplete classification is never `Read` (it counts as at least a write).
pub fn effective_access(access: Access, complete: bool) -> Access {
    if complete {
        access
    } else {
        access.max(Access::Write)
    }
}

impl Command {
    /// A SQL command: `text` and one classification per statement in it.
    pub fn sql(text: impl Into<String>, statements: Vec<StatementClass>) -> Self {
        Self {
            text: text.into(),
            kind: CommandKind::Sql(statements),
        }
    }

    /// A command of any kind.
    pub fn new(text: impl Into<String>, kind: CommandKind) -> Self {
        Self {
            text: text.into(),
            kind,
        }
    }

    /// The SQL statements' classifications; empty for other protocols.
    pub fn statements(&self) -> &[StatementClass] {
        match &self.kind {
            CommandKind::Sql(statements) => statements,
            _ => &[],
        }
    }

    /// True when the command was classified with certainty: every SQL
    /// statement (and there is at least one), or the one HTTP, Kubernetes
    /// or MCP request.
    pub fn complete(&self) -> bool {
        match &self.kind {
            CommandKind::Sql(statements) => {
                !statements.is_empty() && statements.iter().all(|s| s.complete)
            }
            CommandKind::Http(request) => request.complete(),
            CommandKind::Kubernetes(request) => request.complete,
            CommandKind::Mcp(call) => call.complete(),
        }
    }

    /// The widest access of the command, never `Read` unless complete: for
    /// SQL the widest of any statement (`Write` for an empty command, which
    /// the classifier never produces for non-empty text); otherwise the
    /// request's.
    pub fn access(&self) -> Access {
        match &self.kind {
            CommandKind::Sql(statements) => statements
                .iter()
                .map(StatementClass::effective_access)
                .max()
                .unwrap_or(Access::Write),
            CommandKind::Http(request) => request.effective_access(),
            CommandKind::Kubernetes(request) => request.effective_access(),
            CommandKind::Mcp(call) => call.effective_access(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
        }
        assert_eq!(Operation::parse("copy"), None);
    }

    #[test]
    fn incomplete_is_never_read() {
        let statement = StatementClass {
            access: Some(Access::Read),
            complete: false,
            ..Default::default()
        };
        assert_eq!(statement.effective_access(), Access::Write);
        let command = Command::sql("x", vec![statement]);
        assert_eq!(command.access(), Access::Write);
        assert!(!command.complete());
    }

    /// The JSON shape of a SQL command is the one records always had.
    #[test]
    fn sql_commands_serialize_as_before() {
        let command = Command::sql(
            "select 1",
            vec![StatementClass {
                operations: vec![Operation::Select],
                access: Some(Access::Read),
                complete: true,
                ..Default::default()
            }],
        );
        let json = serde_json::to_value(&command).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "text": "select 1",
                "statements": [{
                    "operations": ["select"], "access": "read", "tables_read": [],
                    "tables_written": [], "functions": [], "unknown_functions": [],
                    "has_where": null, "complete": true
                }]
            })
        );
        let back: Command = serde_json::from_value(json).unwrap();
        assert_eq!(back, command);
    }

    #[test]
    fn other_kinds_serialize_under_their_family() {
        let command = Command::new(
            "GET /v1/invoices",
            CommandKind::Http(HttpRequest::new("GET", "/v1/invoices")),
        );
        let json = serde_json::to_value(&command).unwrap();
        assert_eq!(json["http"]["method"], "GET");
        assert_eq!(json["http"]["path"], "/v1/invoices");
        assert!(json.get("statements").is_none());
        let back: Command = serde_json::from_value(json).unwrap();
        assert_eq!(back, command);
        assert_eq!(back.kind.family(), "http");
        assert!(back.statements().is_empty());
    }

    #[test]
    fn incomplete_requests_are_never_read() {
        assert_eq!(effective_access(Access::Read, false), Access::Write);
        assert_eq!(effective_access(Access::Admin, false), Access::Admin);
        assert_eq!(effective_access(Access::Read, true), Access::Read);
        let sneaky = Command::new(
            "GET /v1/./admin",
            CommandKind::Http(HttpRequest::new("GET", "/v1/./admin")),
        );
        assert!(!sneaky.complete());
        assert_eq!(sneaky.access(), Access::Write);
    }
}
