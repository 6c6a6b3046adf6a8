//! Plain records read from and written to the store, whatever the backend.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The SHA-256 of a token, hex-encoded: what the store keeps instead of it.
/// Tokens carry 256 bits of entropy, so a fast hash is enough (no password
/// stretching needed) and lookups stay O(1).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A stored upstream credential: the password stays encrypted here.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub name: String,
    pub username: String,
    /// What the secret is: [`credential_kind::PASSWORD`] (a password, API
    /// key or token sent as the connection says) or
    /// [`credential_kind::CLIENT_CERTIFICATE`] (a PEM certificate chain
    /// and key presented with mutual TLS).
    pub kind: String,
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

/// A review as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewRecord {
    pub id: String,
    /// `pending`, `approved`, `denied`, `expired`, `used`.
    pub status: String,
    pub identity: String,
    pub connection: String,
    /// The statement, masked.
    pub statement: String,
    pub fingerprint: String,
    pub classification: serde_json::Value,
    pub rule: String,
    pub policy_version: i64,
    pub approvers: Vec<String>,
    pub min_approvals: i64,
    pub require_mfa: bool,
    pub session_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub valid_until: Option<i64>,
    pub uses_left: i64,
    pub reason: Option<String>,
    /// `command` or `access` (a request for a grant).
    pub kind: String,
    /// For access requests: the grant's length.
    pub duration_seconds: Option<i64>,
    pub decisions: Vec<ReviewDecision>,
}

/// The pending reviews at a glance: how many, and when the oldest was
/// created (what the metrics export; no review is read whole).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingReviews {
    /// Reviews pending and not yet expired.
    pub count: u64,
    /// `created_at` of the oldest of them (`None`: none pending).
    pub oldest_created_at: Option<i64>,
}

/// An approver's encrypted TOTP secret.
#[derive(Debug, Clone)]
pub struct MfaSecretRecord {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    /// The last time step accepted (codes at or before it are replays).
    pub last_step: Option<i64>,
}

/// A pinned MCP tool definition, and the pending one that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolPinRecord {
    pub connection: String,
    pub tool: String,
    /// SHA-256 (hex) of the pinned definition's canonical JSON.
    pub fingerprint: String,
    /// The pinned definition (canonical JSON).
    pub definition: String,
    pub pinned_at: i64,
    /// Who approved the pinned definition (`None`: pinned when first seen).
    pub approved_by: Option<String>,
    /// A later definition that differs, held until approved.
    pub pending_fingerprint: Option<String>,
    pub pending_definition: Option<String>,
    pub pending_since: Option<i64>,
}

/// A time-bound grant of access to a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantRecord {
    pub id: String,
    pub identity: String,
    pub connection: String,
    pub review_id: Option<String>,
    pub rule: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// One approver's decision.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewDecision {
    pub approver: String,
    /// `approve` or `deny`.
    pub decision: String,
    pub comment: Option<String>,
    pub mfa: bool,
    pub created_at: i64,
}

/// A review to create.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub id: String,
    pub identity: String,
    pub connection: String,
    pub statement: String,
    pub fingerprint: String,
    pub classification: serde_json::Value,
    pub rule: String,
    pub policy_version: i64,
    pub approvers: Vec<String>,
    pub min_approvals: i64,
    pub require_mfa: bool,
    pub session_id: Option<String>,
    pub expires_at: i64,
    /// `command` or `access`.
    pub kind: String,
    /// For access requests: the grant's length.
    pub duration_seconds: Option<i64>,
}

/// What recording a decision led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionOutcome {
    /// The review's status afterwards.
    pub status: String,
    /// Distinct approvals so far.
    pub approvals: i64,
    pub min_approvals: i64,
    /// The grant an approved access request created.
    pub grant: Option<GrantRecord>,
}

/// One failed login, with the limits to apply (the gateway's settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailure {
    /// What was logged in to: `login` (the protocol listeners) or `api`
    /// (the admin API's bearer tokens), counted apart.
    pub realm: String,
    /// The client's address.
    pub source: String,
    /// The identity claimed (empty when none is).
    pub identity: String,
    /// Failures count for this long.
    pub window_micros: i64,
    /// Failures of one identity from one source that lock that pair.
    pub threshold: i64,
    /// Failures from one source, any identity, that lock the source.
    pub source_threshold: i64,
    /// How long a lockout lasts.
    pub lockout_micros: i64,
}

/// What a failure added up to, across every process sharing the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginTally {
    /// Failures from the source within the window, this one included.
    pub source_failures: i64,
    /// Failures of the identity from any source within the window.
    pub identity_failures: i64,
    /// `source` or `identity` when this failure started a lockout.
    pub locked_now: Option<String>,
}

/// An active lockout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLockout {
    /// `source` (every identity from it) or `identity` (one pair).
    pub scope: String,
    /// When it ends (store clock).
    pub until_micros: i64,
}

/// The kinds of stored credential (the `kind` column).
pub mod credential_kind {
    /// A password, API key or token (the default; rows from before the
    /// column existed are this unless they were client certificates).
    pub const PASSWORD: &str = "password";
    /// A PEM certificate chain and private key for mutual TLS.
    pub const CLIENT_CERTIFICATE: &str = "client_certificate";
}
