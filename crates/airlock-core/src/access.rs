//! Just-in-time access: requests for time-bound grants (decided by the
//! policy's `access` rules, approved like reviews), grants, and admission of
//! sessions to `jit` connections.

use serde_json::{json, Value};
use std::time::Duration;

use airlock_policy::{decide_access, standing_access, AccessDecision};
use airlock_store::{now_unix, GrantRecord, NewEvent, NewReview};
use airlock_types::Identity;

use crate::duration::{format_duration, parse_duration};
use crate::error::AdminError;
use crate::events::{record, AccessDenied, AccessGrantedByPolicy, AccessRequested, AccessRevoked};
use crate::state::{GatewayState, ResolvedConnection};

/// Why a session may use a `jit` connection.
#[derive(Debug, Clone)]
pub enum Admission {
    /// A standing access rule.
    Standing { rule: String },
    /// A grant, until it expires.
    Grant(GrantRecord),
}

impl GatewayState {
    /// Whether `identity` may open a session on `connection` now.
    pub fn admit(
        &self,
        identity: &Identity,
        connection: &ResolvedConnection,
    ) -> Result<Option<Admission>, AdminError> {
        if let Some(policy) = &self.policy.current().policy {
            let info = self.connection_info(connection);
            if let Some(rule) = standing_access(policy, identity, &info, now_unix()) {
                return Ok(Some(Admission::Standing { rule }));
            }
        }
        Ok(self
            .store
            .active_grant(&identity.name, &connection.name)?
            .map(Admission::Grant))
    }

    /// Asks for `duration` of access to `connection`: granted at once,
    /// refused, or a pending request for approvers.
    pub fn request_access(
        &self,
        identity: &Identity,
        connection: &str,
        duration: &str,
        reason: &str,
    ) -> Result<Value, AdminError> {
        let duration = parse_duration(duration).map_err(AdminError::Invalid)?;
        if duration.is_zero() {
            return Err(AdminError::Invalid(
                "duration must be longer than zero".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(AdminError::Invalid("a reason is required".into()));
        }
        let resolved = self.resolve_connection(connection)?.ok_or_else(|| {
            AdminError::NotFound(format!("connection {connection:?} is not configured"))
        })?;
        let live = self.policy.current();
        let policy = live.policy.as_ref().ok_or_else(|| {
            AdminError::Forbidden("no policy is loaded; access cannot be requested".into())
        })?;
        let info = self.connection_info(&resolved);
        let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 2);
        let decision = decide_access(policy, identity, &info, duration, now_unix());
        let audit = |payload: &dyn Fn() -> NewEvent| self.store.append_event(payload());
        let by = Some(identity.name.as_str());
        match decision {
            AccessDecision::Denied { message } => {
                audit(&|| {
                    record(
                        None,
                        by,
                        &AccessDenied {
                            connection: connection.to_string(),
                            duration_seconds: seconds,
                            reason: reason.to_string(),
                            why: message.clone(),
                        },
                    )
                })?;
                Err(AdminError::Forbidden(message))
            }
            AccessDecision::AutoApproved { rule } => {
                let grant = self
                    .store
                    .create_grant(&identity.name, connection, &rule, seconds)?;
                self.metrics.access_granted(connection, "policy");
                audit(&|| {
                    record(
                        None,
                        by,
                        &AccessGrantedByPolicy {
                            approved_by: "policy",
                            connection: connection.to_string(),
                            expires_at: grant.expires_at,
                            grant_id: grant.id.clone(),
                            reason: reason.to_string(),
                            rule: rule.clone(),
                        },
                    )
                })?;
                Ok(
                    json!({"status": "granted", "grant_id": grant.id, "expires_at": grant.expires_at, "rule": rule}),
                )
            }
            AccessDecision::NeedsApproval {
                rule,
                approvers,
                min_approvals,
                require_mfa,
            } => {
                let pending_ttl =
                    i64::try_from(self.settings.review_pending_ttl.as_secs()).unwrap_or(3600);
                let bytes: [u8; 4] = rand::random();
                let review = self.store.create_or_find_review(&NewReview {
                    id: format!("r-{}", hex::encode(bytes)),
                    identity: identity.name.clone(),
                    connection: connection.to_string(),
                    statement: format!(
                        "access to {connection} for {}: {reason}",
                        format_duration(Duration::from_secs(duration.as_secs()))
                    ),
                    fingerprint: format!("access:{connection}"),
                    classification: json!({"kind": "access"}),
                    rule: rule.clone(),
                    policy_version: live.version,
                    approvers,
                    min_approvals: i64::from(min_approvals),
                    require_mfa,
                    session_id: None,
                    expires_at: now_unix() + pending_ttl,
                    kind: "access".into(),
                    duration_seconds: Some(seconds),
                })?;
                audit(&|| {
                    record(
                        None,
                        by,
                        &AccessRequested {
                            approvers: review.approvers.clone(),
                            connection: connection.to_string(),
                            duration_seconds: seconds,
                            reason: reason.to_string(),
                            review_id: review.id.clone(),
                            rule: rule.clone(),
                        },
                    )
                })?;
                self.metrics.review_created("access", connection, &rule);
                self.notify_review("access.requested", &review);
                Ok(json!({
                    "status": "pending", "request_id": review.id, "rule": rule, "approvers": review.approvers,
                    "approve_with": format!("airlock review approve {}", review.id),
                }))
            }
        }
    }

    /// Grants (all, or active only) and pending access requests: every one
    /// for the admin (`viewer` `None`); for a person or agent, its own
    /// grants and the requests it made or may decide.
    pub fn list_access(
        &self,
        viewer: Option<&airlock_types::Identity>,
        active_only: bool,
    ) -> Result<Value, AdminError> {
        let grants: Vec<_> = self
            .store
            .grants(active_only)?
            .into_iter()
            .filter(|grant| viewer.is_none_or(|viewer| grant.identity == viewer.name))
            .collect();
        let requests: Vec<_> = self
            .list_reviews(viewer, Some("pending"), 1000)?
            .into_iter()
            .filter(|review| review.kind == "access")
            .collect();
        Ok(json!({"grants": grants, "requests": requests}))
    }

    /// Revokes a grant and closes the sessions it admitted.
    pub fn revoke_grant(&self, id: &str) -> Result<Value, AdminError> {
        self.revoke_grant_as(id, "admin")
    }

    /// [`GatewayState::revoke_grant`], recorded as done by `actor`.
    pub fn revoke_grant_as(&self, id: &str, actor: &str) -> Result<Value, AdminError> {
        let grant = self.store.revoke_grant(id)?;
        let closed = self.sessions.kill_where(
            &grant.identity,
            &grant.connection,
            "the access grant was revoked",
        );
        self.store.append_event(record(
            None,
            Some(actor),
            &AccessRevoked {
                connection: grant.connection.clone(),
                grant_id: id.to_string(),
                identity: grant.identity.clone(),
                sessions_closed: closed,
            },
        ))?;
        Ok(json!({"revoked": id, "sessions_closed": closed}))
    }
}
