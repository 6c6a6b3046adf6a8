//! Who is asking ([`Identity`]) and where to ([`ConnectionInfo`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What kind of principal an identity is. Policies match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// An autonomous agent (AI agent, script, bot).
    Agent,
    /// A person.
    Human,
    /// A service acting on its own behalf.
    Service,
}

impl IdentityKind {
    /// The lowercase name used in config, policy and CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Human => "human",
            Self::Service => "service",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "agent" => Some(Self::Agent),
            "human" => Some(Self::Human),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an identity proved who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A token airlock issued, by its id.
    AirlockToken { token_id: String },
    /// An OIDC token from a configured issuer.
    Oidc { issuer: String },
}

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The identity name (PostgreSQL user name, token subject).
    pub name: String,
    /// Agent, human or service.
    pub kind: IdentityKind,
    /// Groups the identity belongs to, used by policy rules.
    pub groups: Vec<String>,
    /// How it authenticated.
    pub auth_method: AuthMethod,
    /// When its credential stops being valid, in Unix seconds.
    pub expires_at: i64,
}

/// The wire protocol of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// PostgreSQL v3.
    Postgres,
    /// MySQL / MariaDB.
    Mysql,
    /// HTTP APIs.
    Http,
    /// The Kubernetes API (HTTP, with requests classified by verb and
    /// resource).
    Kubernetes,
    /// Model Context Protocol servers.
    Mcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Protocol {
    /// Every protocol, in declaration order.
    pub const ALL: [Protocol; 5] = [
        Self::Postgres,
        Self::Mysql,
        Self::Http,
        Self::Kubernetes,
        Self::Mcp,
    ];

    /// The protocol named `name` in config (`postgres`, `mysql`, …).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|protocol| protocol.as_str() == name)
    }

    /// The lowercase name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Http => "http",
            Self::Kubernetes => "kubernetes",
            Self::Mcp => "mcp",
        }
    }
}

/// What the policy engine knows about a connection: its name and tags.
/// Addresses and credentials are deliberately absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Connection name (`prod-pg`).
    pub name: String,
    /// Its wire protocol.
    pub protocol: Protocol,
    /// Free-form labels (`env: prod`).
    pub tags: BTreeMap<String, String>,
}
