//! [`NotificationEvent`]: what the review core reports, and the event kinds.
//!
//! The event is data only. It is built by the caller, which is responsible
//! for masking: `summary` must already be the masked statement or the
//! access reason, because it leaves the gateway.

use serde::{Deserialize, Serialize};

/// The event kinds the review core emits.
pub mod kinds {
    /// A command is waiting for approval.
    pub const REVIEW_CREATED: &str = "review.created";
    /// A waiting command was approved.
    pub const REVIEW_APPROVED: &str = "review.approved";
    /// A waiting command was denied.
    pub const REVIEW_DENIED: &str = "review.denied";
    /// A waiting command expired without a decision.
    pub const REVIEW_EXPIRED: &str = "review.expired";
    /// An identity asked for access.
    pub const ACCESS_REQUESTED: &str = "access.requested";
    /// An access request was approved.
    pub const ACCESS_APPROVED: &str = "access.approved";
    /// An access request was denied.
    pub const ACCESS_DENIED: &str = "access.denied";

    /// Every kind above.
    pub const ALL: [&str; 7] = [
        REVIEW_CREATED,
        REVIEW_APPROVED,
        REVIEW_DENIED,
        REVIEW_EXPIRED,
        ACCESS_REQUESTED,
        ACCESS_APPROVED,
        ACCESS_DENIED,
    ];
}

/// One review or access-request event. Serialized as the `json` webhook
/// body, with `kind` written as `"event"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEvent {
    /// One of [`kinds`]: `review.created`, `access.requested`, ...
    #[serde(rename = "event")]
    pub kind: String,
    /// The review or access-request id, as the `airlock review|access`
    /// commands take it.
    pub id: String,
    /// The group whose members may decide; webhooks are routed on it.
    pub approver_group: String,
    /// The identity that ran the command or asked for access.
    pub identity: String,
    /// The connection the command or request targets.
    pub connection: String,
    /// The masked statement (reviews) or the stated reason (access requests).
    pub summary: String,
    /// The policy rule that asked for the review, when known.
    pub rule: Option<String>,
    /// The policy version that asked for the review, when known.
    pub policy_version: Option<i64>,
    /// When the review or request expires, Unix seconds.
    pub expires_at: Option<i64>,
    /// A link to the review in a UI, when the caller has one.
    pub url: Option<String>,
}

impl NotificationEvent {
    /// Whether this is an access-request event (`access.*`) rather than a
    /// command review.
    pub fn is_access_request(&self) -> bool {
        self.kind.starts_with("access.")
    }

    /// Whether the event asks someone to decide (`review.created`,
    /// `access.requested`), as opposed to reporting a decision.
    pub fn awaits_decision(&self) -> bool {
        self.kind == kinds::REVIEW_CREATED || self.kind == kinds::ACCESS_REQUESTED
    }
}
