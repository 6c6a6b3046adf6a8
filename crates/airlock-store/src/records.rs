//! Plain records read from and written to the store.

use serde::Serialize;
use std::collections::BTreeMap;

/// A stored upstream credential: the password stays encrypted here.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub name: String,
    pub username: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    /// Incremented by every rotation.
    pub version: i64,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
}

/// A connection added at run time (`airlock connection add`).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRecord {
    pub name: String,
    pub protocol: String,
    pub address: String,
    pub database: String,
    pub credential: String,
    pub tags: BTreeMap<String, String>,
    /// `disable`, `prefer` or `require`.
    pub tls: String,
    pub created_at: i64,
}

/// An issued token. Only the hash of the token is kept.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub id: String,
    #[serde(skip)]
    pub hash: String,
    pub identity: String,
    pub kind: String,
    pub groups: Vec<String>,
    pub connections: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// One stored policy version.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyVersionRecord {
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub sha256: String,
    /// Where it came from: `config`, `apply`, `rollback`.
    pub source: String,
    pub comment: Option<String>,
    pub created_at: i64,
}
