//! Review and access-request notifications: turning review records into
//! `airlock_notify` events, one per approver group (webhooks are routed on
//! the group). Delivery never blocks the caller.

use airlock_notify::{event::kinds, NotificationEvent};
use airlock_store::ReviewRecord;

use crate::state::GatewayState;

/// Maps a review transition to the notification kind.
fn kind_for(kind: &str, review: &ReviewRecord) -> Option<&'static str> {
    let access = review.kind == "access";
    Some(match (kind, access) {
        ("review.created", false) => kinds::REVIEW_CREATED,
        ("access.requested", _) | ("review.created", true) => kinds::ACCESS_REQUESTED,
        ("review.approved", false) => kinds::REVIEW_APPROVED,
        ("review.approved", true) => kinds::ACCESS_APPROVED,
        ("review.denied", false) => kinds::REVIEW_DENIED,
        ("review.denied", true) => kinds::ACCESS_DENIED,
        ("review.expired", false) => kinds::REVIEW_EXPIRED,
        _ => return None,
    })
}

/// Hands a review event to the notifier.
pub fn notify_review(state: &GatewayState, kind: &str, review: &ReviewRecord) {
    let Some(kind) = kind_for(kind, review) else {
        return;
    };
    for group in &review.approvers {
        state.notifier.notify(NotificationEvent {
            kind: kind.to_string(),
            id: review.id.clone(),
            approver_group: group.clone(),
            identity: review.identity.clone(),
            connection: review.connection.clone(),
            summary: review.statement.clone(),
            rule: Some(review.rule.clone()),
            policy_version: Some(review.policy_version),
            expires_at: Some(review.expires_at),
            url: None,
        });
    }
}
