//! The audit event kinds: every kind of event airlock records, named in
//! one place.
//!
//! The names are the contract of the audit log (exports, `session replay`,
//! filters, SIEM queries): a kind is never renamed, only added. Every
//! payload is a type here that knows its kind ([`Payload`]), and every
//! record is built through [`record`], so the kind, the session and the
//! identity fields are filled the same way for every protocol, and a
//! payload cannot be recorded under another kind's name. (The command and
//! result records, `command` and `command.result`, are built by the
//! protocol crates' recorders from their own payload types through
//! [`event`].)

use serde::Serialize;

use airlock_store::{EventData, NewEvent};

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `access.denied`: An access request the policy refused.
    AccessDenied,
    /// `access.grant`: An access grant created (by policy or approval).
    AccessGrant,
    /// `access.request`: An access request waiting for approvers.
    AccessRequest,
    /// `access.refused`: A session refused for want of an access grant.
    AccessRefused,
    /// `access.revoke`: An access grant revoked.
    AccessRevoke,
    /// `admin.token_rotated`: The admin token replaced.
    AdminTokenRotated,
    /// `audit.prune`: Events older than the retention pruned.
    AuditPrune,
    /// `auth.failure`: A token that did not authenticate.
    AuthFailure,
    /// `auth.lockout`: A source or identity locked out after repeated failures.
    AuthLockout,
    /// `auth.unlock`: A lockout lifted by an admin.
    AuthUnlock,
    /// `command`: A command, recorded before it is forwarded (or refused).
    Command,
    /// `command.result`: What a forwarded command returned (masked samples).
    CommandResult,
    /// `command.stream`: What a relayed stream (a Kubernetes exec or attach terminal) carried, in order, with timestamps.
    CommandStream,
    /// `connection.add`: A run-time connection added.
    ConnectionAdd,
    /// `connection.remove`: A run-time connection removed.
    ConnectionRemove,
    /// `credential.delete`: A stored credential deleted.
    CredentialDelete,
    /// `credential.rotate`: A stored credential rotated.
    CredentialRotate,
    /// `credential.set`: A stored credential set.
    CredentialSet,
    /// `mcp.tool_call`: A call of a tool of airlock's own MCP server, with its outcome.
    McpToolCall,
    /// `mcp.tool_changed`: A proxied MCP server listed a tool whose definition differs from the pinned one.
    McpToolChanged,
    /// `mcp.tool_approved`: An admin approved a changed MCP tool definition.
    McpToolApproved,
    /// `mfa.enroll`: An approver enrolled a TOTP secret.
    MfaEnroll,
    /// `policy.apply`: A policy version applied (or rolled back to).
    PolicyApply,
    /// `review.created`: A command held for review.
    ReviewCreated,
    /// `review.approve`: A review approved.
    ReviewApprove,
    /// `review.deny`: A review denied.
    ReviewDeny,
    /// `session.end`: A session ended, with how.
    SessionEnd,
    /// `session.kill`: A live session ended by a person (the kill switch), with the reason.
    SessionKill,
    /// `session.refused`: A session refused at admission (limits).
    SessionRefused,
    /// `session.start`: A session admitted, before its upstream is opened.
    SessionStart,
    /// `session.upstream_failed`: A session whose upstream login failed.
    SessionUpstreamFailed,
    /// `token.issue`: A token issued.
    TokenIssue,
    /// `token.revoke`: A token revoked.
    TokenRevoke,
    /// `ui.sign_in`: A person signed in to the web UI.
    UiSignIn,
    /// `ui.sign_out`: A person signed out of the web UI.
    UiSignOut,
}

impl EventKind {
    /// Every kind, in the order of this enum.
    pub const ALL: [EventKind; 35] = [
        Self::AccessDenied,
        Self::AccessGrant,
        Self::AccessRequest,
        Self::AccessRefused,
        Self::AccessRevoke,
        Self::AdminTokenRotated,
        Self::AuditPrune,
        Self::AuthFailure,
        Self::AuthLockout,
        Self::AuthUnlock,
        Self::Command,
        Self::CommandResult,
        Self::CommandStream,
        Self::ConnectionAdd,
        Self::ConnectionRemove,
        Self::CredentialDelete,
        Self::CredentialRotate,
        Self::CredentialSet,
        Self::McpToolCall,
        Self::McpToolChanged,
        Self::McpToolApproved,
        Self::MfaEnroll,
        Self::PolicyApply,
        Self::ReviewCreated,
        Self::ReviewApprove,
        Self::ReviewDeny,
        Self::SessionEnd,
        Self::SessionKill,
        Self::SessionRefused,
        Self::SessionStart,
        Self::SessionUpstreamFailed,
        Self::TokenIssue,
        Self::TokenRevoke,
        Self::UiSignIn,
        Self::UiSignOut,
    ];

    /// The recorded name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "access.denied",
            Self::AccessGrant => "access.grant",
            Self::AccessRequest => "access.request",
            Self::AccessRefused => "access.refused",
            Self::AccessRevoke => "access.revoke",
            Self::AdminTokenRotated => "admin.token_rotated",
            Self::AuditPrune => "audit.prune",
            Self::AuthFailure => "auth.failure",
            Self::AuthLockout => "auth.lockout",
            Self::AuthUnlock => "auth.unlock",
            Self::Command => "command",
            Self::CommandResult => "command.result",
            Self::CommandStream => "command.stream",
            Self::ConnectionAdd => "connection.add",
            Self::ConnectionRemove => "connection.remove",
            Self::CredentialDelete => "credential.delete",
            Self::CredentialRotate => "credential.rotate",
            Self::CredentialSet => "credential.set",
            Self::McpToolCall => "mcp.tool_call",
            Self::McpToolChanged => "mcp.tool_changed",
            Self::McpToolApproved => "mcp.tool_approved",
            Self::MfaEnroll => "mfa.enroll",
            Self::PolicyApply => "policy.apply",
            Self::ReviewCreated => "review.created",
            Self::ReviewApprove => "review.approve",
            Self::ReviewDeny => "review.deny",
            Self::SessionEnd => "session.end",
            Self::SessionKill => "session.kill",
            Self::SessionRefused => "session.refused",
            Self::SessionStart => "session.start",
            Self::SessionUpstreamFailed => "session.upstream_failed",
            Self::TokenIssue => "token.issue",
            Self::TokenRevoke => "token.revoke",
            Self::UiSignIn => "ui.sign_in",
            Self::UiSignOut => "ui.sign_out",
        }
    }

    /// The kind recorded under `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl From<EventKind> for String {
    fn from(kind: EventKind) -> Self {
        kind.as_str().to_string()
    }
}

// The payloads of the session events, the same for every protocol. Fields
// are in alphabetical order: a struct serializes in field order, and these
// records were written from `json!` maps (sorted keys) before, so the
// recorded JSON text is unchanged.

/// `session.start`: who was admitted where, before the upstream is opened.
#[derive(Debug, Clone, Serialize)]
pub struct SessionStart {
    /// PostgreSQL's `application_name` (or the protocol's equivalent).
    pub application_name: Option<String>,
    pub client_address: String,
    pub connection: String,
    pub credential_version: i64,
    pub groups: Vec<String>,
    pub identity_kind: airlock_types::IdentityKind,
    pub protocol: &'static str,
    pub tls: bool,
    pub token_id: String,
}

/// `session.end`: how a session ended and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct SessionEnd {
    pub bytes_from_client: u64,
    pub bytes_from_upstream: u64,
    pub commands: u64,
    pub connection: String,
    pub detail: Option<String>,
    pub duration_ms: u64,
    /// A stable name: `client`, `killed`, `upstream_failed`, …
    pub ended_by: &'static str,
    pub refused: u64,
}

/// `session.refused`: a session refused at admission by a limit.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRefused {
    pub client_address: String,
    pub connection: String,
    pub limit: usize,
    pub reason: &'static str,
    pub setting: &'static str,
}

/// `session.upstream_failed`: the upstream login failed (the inside's
/// words, for the audit log only).
#[derive(Debug, Clone, Serialize)]
pub struct SessionUpstreamFailed {
    pub connection: String,
    pub error: String,
}

/// `auth.failure`: a token that did not authenticate, and why (never told
/// to the client).
#[derive(Debug, Clone, Serialize)]
pub struct AuthFailed {
    pub client_address: String,
    pub connection: String,
    pub identity_failures: usize,
    pub protocol: &'static str,
    pub reason: &'static str,
    pub source_failures: usize,
}

/// `auth.lockout`: a source or identity locked out after repeated failures.
#[derive(Debug, Clone, Serialize)]
pub struct LockedOut {
    /// The source's IP address (no port).
    pub client_address: String,
    pub lockout_seconds: u64,
    pub protocol: &'static str,
    pub scope: &'static str,
}

/// `access.refused`: a session refused for want of an access grant.
#[derive(Debug, Clone, Serialize)]
pub struct AccessRefused {
    pub client_address: String,
    pub connection: String,
}

/// `access.denied`: an access request the policy refused.
#[derive(Debug, Clone, Serialize)]
pub struct AccessDenied {
    pub connection: String,
    pub duration_seconds: i64,
    pub reason: String,
    /// The policy's message.
    pub why: String,
}

/// `access.grant` by policy: an access request the policy approved.
#[derive(Debug, Clone, Serialize)]
pub struct AccessGrantedByPolicy {
    pub approved_by: &'static str,
    pub connection: String,
    pub expires_at: i64,
    pub grant_id: String,
    pub reason: String,
    pub rule: String,
}

/// `access.grant` by approval: an access request approvers approved.
#[derive(Debug, Clone, Serialize)]
pub struct AccessGrantedByReview {
    pub approved_by: String,
    pub connection: String,
    pub expires_at: i64,
    pub grant_id: String,
    pub review_id: String,
    pub rule: String,
}

/// `access.request`: an access request waiting for approvers.
#[derive(Debug, Clone, Serialize)]
pub struct AccessRequested {
    pub approvers: Vec<String>,
    pub connection: String,
    pub duration_seconds: i64,
    pub reason: String,
    pub review_id: String,
    pub rule: String,
}

/// `access.revoke`: an access grant revoked.
#[derive(Debug, Clone, Serialize)]
pub struct AccessRevoked {
    pub connection: String,
    pub grant_id: String,
    pub identity: String,
    pub sessions_closed: usize,
}

/// `admin.token_rotated`: the admin token replaced.
#[derive(Debug, Clone, Serialize)]
pub struct AdminTokenRotated {
    /// Whether airlock generated the new token (else it came from the
    /// environment).
    pub generated: bool,
}

/// `audit.prune`: events older than the retention pruned.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPruned {
    pub pruned_events: u64,
    pub through_id: Option<i64>,
}

/// `auth.failure` on the admin API: a bearer token that is no admin or
/// personal token.
#[derive(Debug, Clone, Serialize)]
pub struct ApiAuthFailed {
    pub client_address: String,
    pub protocol: &'static str,
    pub reason: &'static str,
    pub source_failures: usize,
}

/// `auth.unlock`: lockouts lifted by an admin.
#[derive(Debug, Clone, Serialize)]
pub struct AuthUnlocked {
    pub identity: Option<String>,
    pub lockouts_ended: usize,
    pub source: Option<String>,
}

/// `connection.add`: a run-time connection added.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionAdded {
    pub address: String,
    pub connection: String,
    pub database: String,
}

/// `connection.remove`: a run-time connection removed.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRemoved {
    pub connection: String,
    pub sessions_closed: usize,
}

/// `credential.delete`: a stored credential deleted.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialDeleted {
    pub credential: String,
}

/// `credential.rotate`: a stored credential's secret replaced.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialRotated {
    pub credential: String,
    pub version: i64,
}

/// `credential.set`: a credential stored (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct CredentialSet {
    pub credential: String,
    pub username: String,
    pub version: i64,
}

/// `mfa.enroll`: an approver enrolled a TOTP secret (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct MfaEnrolled {}

/// `policy.apply`: a policy version applied (or rolled back to).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyApplied {
    pub comment: Option<String>,
    pub rules: usize,
    pub source: String,
    pub version: i64,
}

/// `review.created`: a command held for review.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewCreated {
    pub approvers: Vec<String>,
    pub classification: serde_json::Value,
    pub connection: String,
    pub expires_at: i64,
    pub min_approvals: i64,
    pub policy_version: i64,
    pub require_mfa: bool,
    pub review_id: String,
    pub rule: String,
    /// The statement, masked.
    pub statement: String,
}

/// `review.approve` or `review.deny`: one approver's decision.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewDecided {
    /// Which of the two kinds (not a field of the record).
    #[serde(skip)]
    pub approved: bool,
    pub approvals: i64,
    pub comment: Option<String>,
    pub mfa: bool,
    pub min_approvals: i64,
    pub requester: String,
    pub review_id: String,
    pub status: String,
}

/// `token.issue`: a token issued (never its value).
#[derive(Debug, Clone, Serialize)]
pub struct TokenIssued {
    pub connections: Vec<String>,
    pub expires_at: i64,
    pub groups: Vec<String>,
    /// The person who issued it through the web UI (absent: the admin
    /// token, or an exchange).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<String>,
    pub kind: String,
    pub token_id: String,
}

/// `token.revoke`: a token revoked.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRevoked {
    pub already_revoked: bool,
    pub sessions_closed: usize,
    pub token_id: String,
}

/// `session.kill`: a live session ended by a person through the kill
/// switch (the session's own `session.end` follows, reason `killed`).
#[derive(Debug, Clone, Serialize)]
pub struct SessionKilled {
    pub connection: String,
    pub ended_by: String,
    pub reason: String,
}

/// `ui.sign_in`: a person signed in to the web UI (the token it was
/// made with is named by its id, never shown).
#[derive(Debug, Clone, Serialize)]
pub struct UiSignedIn {
    pub client_address: String,
    pub groups: Vec<String>,
    pub method: String,
    pub roles: Vec<String>,
    pub token_id: Option<String>,
}

/// `ui.sign_out`: a person signed out of the web UI.
#[derive(Debug, Clone, Serialize)]
pub struct UiSignedOut {
    pub client_address: String,
}

/// `mcp.tool_call`: one call of a tool of airlock's own MCP server (the
/// SQL it ran is recorded by its own session's `command` events).
#[derive(Debug, Clone, Serialize)]
pub struct McpToolCalled {
    /// The tool's arguments, masked by every detector.
    pub arguments: serde_json::Value,
    pub client_address: String,
    /// The connection the call used, when it names one.
    pub connection: Option<String>,
    pub elapsed_us: u64,
    /// The refusal or error message, masked.
    pub message: Option<String>,
    /// `ok`, `denied`, `review_required`, `error`.
    pub outcome: &'static str,
    /// The review a held statement waits for.
    pub review: Option<String>,
    /// Rows returned (a query or describe), already masked by the session
    /// that ran it.
    pub rows: Option<u64>,
    pub tool: String,
}

/// `command.stream`: a part of the transcript of a relayed stream (a
/// Kubernetes `exec` or `attach` terminal): the bytes each channel carried
/// (stdin, stdout, stderr, error, resize) in order, each with its offset
/// from the stream's start, as the client saw them (credential echoes
/// replaced). A session's transcript is bounded: once its budget is
/// spent, `truncated` is set and nothing more is kept.
#[derive(Debug, Clone, Serialize)]
pub struct CommandStream {
    pub chunks: Vec<StreamChunk>,
    pub connection: String,
    /// The `command` event the stream belongs to.
    pub seq: u64,
    pub truncated: bool,
}

/// One piece of a stream's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamChunk {
    /// Milliseconds since the stream started.
    pub at_ms: u64,
    /// `stdin`, `stdout`, `stderr`, `error`, `resize`.
    pub channel: &'static str,
    /// The bytes as UTF-8 (invalid sequences replaced).
    pub data: String,
}

/// `mcp.tool_changed`: a proxied server listed a tool whose definition
/// differs from the pinned one; the tool is hidden and refused until an
/// admin approves the new definition.
#[derive(Debug, Clone, Serialize)]
pub struct McpToolChanged {
    pub connection: String,
    /// SHA-256 of the new definition's canonical JSON.
    pub fingerprint: String,
    /// SHA-256 of the pinned definition's.
    pub pinned_fingerprint: String,
    pub tool: String,
}

/// `mcp.tool_approved`: an admin approved a changed tool definition.
#[derive(Debug, Clone, Serialize)]
pub struct McpToolApproved {
    pub connection: String,
    pub fingerprint: String,
    pub tool: String,
}

/// An audit payload: what one kind of event records (no secret, masked
/// data only), tied to its kind.
pub trait Payload: Serialize + std::fmt::Debug {
    /// The kind recorded for this payload.
    fn kind(&self) -> EventKind;
}

/// Ties payload types to the one kind each records.
macro_rules! payload_kinds {
    ($($payload:ident => $kind:ident),* $(,)?) => {
        $(impl Payload for $payload {
            fn kind(&self) -> EventKind {
                EventKind::$kind
            }
        })*
    };
}

payload_kinds!(
    AccessDenied => AccessDenied,
    AccessGrantedByPolicy => AccessGrant,
    AccessGrantedByReview => AccessGrant,
    AccessRequested => AccessRequest,
    AccessRefused => AccessRefused,
    AccessRevoked => AccessRevoke,
    AdminTokenRotated => AdminTokenRotated,
    AuditPruned => AuditPrune,
    ApiAuthFailed => AuthFailure,
    AuthFailed => AuthFailure,
    LockedOut => AuthLockout,
    AuthUnlocked => AuthUnlock,
    ConnectionAdded => ConnectionAdd,
    ConnectionRemoved => ConnectionRemove,
    CredentialDeleted => CredentialDelete,
    CredentialRotated => CredentialRotate,
    CredentialSet => CredentialSet,
    CommandStream => CommandStream,
    McpToolCalled => McpToolCall,
    McpToolChanged => McpToolChanged,
    McpToolApproved => McpToolApproved,
    MfaEnrolled => MfaEnroll,
    PolicyApplied => PolicyApply,
    ReviewCreated => ReviewCreated,
    SessionEnd => SessionEnd,
    SessionRefused => SessionRefused,
    SessionStart => SessionStart,
    SessionUpstreamFailed => SessionUpstreamFailed,
    TokenIssued => TokenIssue,
    TokenRevoked => TokenRevoke,
    SessionKilled => SessionKill,
    UiSignedIn => UiSignIn,
    UiSignedOut => UiSignOut,
);

impl Payload for ReviewDecided {
    fn kind(&self) -> EventKind {
        if self.approved {
            EventKind::ReviewApprove
        } else {
            EventKind::ReviewDeny
        }
    }
}

/// The record of a typed payload: the one way core events are built.
pub fn record(
    session_id: Option<&str>,
    identity: Option<&str>,
    payload: &impl Payload,
) -> NewEvent {
    event(payload.kind(), session_id, identity, payload)
}

/// A record of `kind` with a serializable payload (which must hold no
/// secret and only masked data).
pub fn event(
    kind: EventKind,
    session_id: Option<&str>,
    identity: Option<&str>,
    data: &(impl Serialize + std::fmt::Debug),
) -> NewEvent {
    NewEvent {
        kind: kind.into(),
        session_id: session_id.map(str::to_string),
        identity: identity.map(str::to_string),
        data: EventData::from_serialize(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorded names are the audit log's contract: this list changes
    /// only by additions.
    #[test]
    fn kinds_keep_their_recorded_names() {
        let names: Vec<&str> = EventKind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(
            names,
            [
                "access.denied",
                "access.grant",
                "access.request",
                "access.refused",
                "access.revoke",
                "admin.token_rotated",
                "audit.prune",
                "auth.failure",
                "auth.lockout",
                "auth.unlock",
                "command",
                "command.result",
                "command.stream",
                "connection.add",
                "connection.remove",
                "credential.delete",
                "credential.rotate",
                "credential.set",
                "mcp.tool_call",
                "mcp.tool_changed",
                "mcp.tool_approved",
                "mfa.enroll",
                "policy.apply",
                "review.created",
                "review.approve",
                "review.deny",
                "session.end",
                "session.kill",
                "session.refused",
                "session.start",
                "session.upstream_failed",
                "token.issue",
                "token.revoke",
                "ui.sign_in",
                "ui.sign_out",
            ]
        );
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("session"), None);
    }

    /// The typed payloads write the same JSON text as the `json!` maps
    /// they replaced (old and new records read alike).
    #[test]
    fn session_payloads_serialize_as_before() {
        let start = SessionStart {
            application_name: Some("psql".into()),
            client_address: "127.0.0.1:5000".into(),
            connection: "prod".into(),
            credential_version: 2,
            groups: vec!["g".into()],
            identity_kind: airlock_types::IdentityKind::Agent,
            protocol: "postgres",
            tls: true,
            token_id: "t-1".into(),
        };
        let before = serde_json::json!({
            "protocol": "postgres", "token_id": "t-1", "identity_kind": "agent",
            "groups": ["g"], "connection": "prod", "client_address": "127.0.0.1:5000",
            "tls": true, "application_name": "psql", "credential_version": 2,
        });
        assert_eq!(serde_json::to_string(&start).unwrap(), before.to_string());
        let end = SessionEnd {
            bytes_from_client: 1,
            bytes_from_upstream: 2,
            commands: 3,
            connection: "prod".into(),
            detail: None,
            duration_ms: 4,
            ended_by: "client",
            refused: 5,
        };
        let before = serde_json::json!({
            "connection": "prod", "ended_by": "client", "detail": null, "duration_ms": 4,
            "bytes_from_client": 1, "bytes_from_upstream": 2, "commands": 3, "refused": 5,
        });
        assert_eq!(serde_json::to_string(&end).unwrap(), before.to_string());
        let refused = SessionRefused {
            client_address: "c".into(),
            connection: "prod".into(),
            limit: 2,
            reason: "session_limit",
            setting: "limits.max_sessions_per_identity",
        };
        let before = serde_json::json!({
            "connection": "prod", "client_address": "c", "reason": "session_limit",
            "setting": "limits.max_sessions_per_identity", "limit": 2,
        });
        assert_eq!(serde_json::to_string(&refused).unwrap(), before.to_string());
        let failed = SessionUpstreamFailed {
            connection: "prod".into(),
            error: "e".into(),
        };
        let before = serde_json::json!({"connection": "prod", "error": "e"});
        assert_eq!(serde_json::to_string(&failed).unwrap(), before.to_string());
        let failed = AuthFailed {
            client_address: "c".into(),
            connection: "prod".into(),
            identity_failures: 1,
            protocol: "postgres",
            reason: "expired",
            source_failures: 2,
        };
        let before = serde_json::json!({
            "protocol": "postgres", "client_address": "c", "connection": "prod",
            "reason": "expired", "source_failures": 2, "identity_failures": 1,
        });
        assert_eq!(serde_json::to_string(&failed).unwrap(), before.to_string());
        let locked = LockedOut {
            client_address: "127.0.0.1".into(),
            lockout_seconds: 60,
            protocol: "postgres",
            scope: "source",
        };
        let before = serde_json::json!({
            "protocol": "postgres", "client_address": "127.0.0.1", "scope": "source",
            "lockout_seconds": 60,
        });
        assert_eq!(serde_json::to_string(&locked).unwrap(), before.to_string());
        let access = AccessRefused {
            client_address: "c".into(),
            connection: "prod".into(),
        };
        let before = serde_json::json!({"connection": "prod", "client_address": "c"});
        assert_eq!(serde_json::to_string(&access).unwrap(), before.to_string());
    }

    #[test]
    fn events_carry_kind_session_and_identity() {
        let recorded = event(
            EventKind::SessionStart,
            Some("s-1"),
            Some("agent-7"),
            &serde_json::json!({"connection": "prod"}),
        );
        assert_eq!(recorded.kind, "session.start");
        assert_eq!(recorded.session_id.as_deref(), Some("s-1"));
        assert_eq!(recorded.identity.as_deref(), Some("agent-7"));
    }
}
