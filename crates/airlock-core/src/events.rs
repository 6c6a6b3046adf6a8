//! The audit event kinds: every kind of event airlock records, named in
//! one place.
//!
//! The names are the contract of the audit log (exports, `session replay`,
//! filters, SIEM queries): a kind is never renamed, only added. Every
//! record is built through [`event`], so the kind, the session and the
//! identity fields are filled the same way for every protocol.

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
}

impl EventKind {
    /// Every kind, in the order of this enum.
    pub const ALL: [EventKind; 28] = [
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
        Self::ConnectionAdd,
        Self::ConnectionRemove,
        Self::CredentialDelete,
        Self::CredentialRotate,
        Self::CredentialSet,
        Self::MfaEnroll,
        Self::PolicyApply,
        Self::ReviewCreated,
        Self::ReviewApprove,
        Self::ReviewDeny,
        Self::SessionEnd,
        Self::SessionRefused,
        Self::SessionStart,
        Self::SessionUpstreamFailed,
        Self::TokenIssue,
        Self::TokenRevoke,
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
            Self::ConnectionAdd => "connection.add",
            Self::ConnectionRemove => "connection.remove",
            Self::CredentialDelete => "credential.delete",
            Self::CredentialRotate => "credential.rotate",
            Self::CredentialSet => "credential.set",
            Self::MfaEnroll => "mfa.enroll",
            Self::PolicyApply => "policy.apply",
            Self::ReviewCreated => "review.created",
            Self::ReviewApprove => "review.approve",
            Self::ReviewDeny => "review.deny",
            Self::SessionEnd => "session.end",
            Self::SessionRefused => "session.refused",
            Self::SessionStart => "session.start",
            Self::SessionUpstreamFailed => "session.upstream_failed",
            Self::TokenIssue => "token.issue",
            Self::TokenRevoke => "token.revoke",
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
                "connection.add",
                "connection.remove",
                "credential.delete",
                "credential.rotate",
                "credential.set",
                "mfa.enroll",
                "policy.apply",
                "review.created",
                "review.approve",
                "review.deny",
                "session.end",
                "session.refused",
                "session.start",
                "session.upstream_failed",
                "token.issue",
                "token.revoke",
            ]
        );
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("session"), None);
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
