//! Protocol-neutral core types shared by every airlock crate.
//!
//! This crate owns the vocabulary of the one path: who is asking
//! ([`Identity`]), where to ([`ConnectionInfo`]), what they asked for
//! ([`command`]: SQL statements, HTTP and Kubernetes requests, MCP calls,
//! with the pure rules that classify each), and how secrets are carried
//! ([`Secret`]). It must never do I/O, and it depends on nothing but `serde`
//! and `serde_json` (MCP arguments are JSON values).

pub mod command;
mod identity;
mod secret;

pub use command::{
    effective_access, Access, Command, CommandKind, HttpRequest, KubernetesRequest, KubernetesVerb,
    McpCall, Operation, StatementClass,
};
pub use identity::{AuthMethod, ConnectionInfo, Identity, IdentityKind, Protocol};
pub use secret::Secret;
