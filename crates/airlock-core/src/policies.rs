//! Policy operations: apply a new version, roll back to an old one, and
//! refresh when another gateway sharing the store applied one (called by
//! [`crate::wakeups`] on a hint or its polling cadence).

use serde::Serialize;

use airlock_policy::Policy;
use airlock_store::StoreError;

pub use crate::live_policy::*;

use crate::error::AdminError;
use crate::state::GatewayState;

/// A policy version as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedPolicy {
    pub version: i64,
    pub rules: usize,
    pub sha256: String,
}

impl GatewayState {
    /// Reloads the live policy when the store has a newer version (another
    /// gateway applied one). Returns true when it changed.
    pub fn refresh_policy(&self) -> Result<bool, StoreError> {
        let stored = self.store.live_policy_version()?.unwrap_or(0);
        if stored == self.policy.current().version {
            return Ok(false);
        }
        if let Some(record) = self.store.live_policy()? {
            tracing::info!(version = record.version, "policy version now live");
            self.policy.replace(load_version(&record));
        }
        Ok(true)
    }

    /// Validates and stores a new version, live at once.
    pub fn apply_policy(
        &self,
        text: &str,
        comment: Option<&str>,
        source: &str,
    ) -> Result<AppliedPolicy, AdminError> {
        self.apply_policy_as(text, comment, source, "admin")
    }

    /// [`GatewayState::apply_policy`], recorded as done by `actor` (the
    /// person signed in to the web UI; `admin` for the admin token).
    pub fn apply_policy_as(
        &self,
        text: &str,
        comment: Option<&str>,
        source: &str,
        actor: &str,
    ) -> Result<AppliedPolicy, AdminError> {
        let policy = Policy::from_yaml(text, "policy")
            .map_err(|error| AdminError::Invalid(error.to_string()))?;
        let version = self.store.insert_policy_version(text, source, comment)?;
        let applied = crate::events::PolicyApplied {
            comment: comment.map(str::to_string),
            rules: policy.rules.len(),
            source: source.to_string(),
            version,
        };
        self.store
            .append_event(crate::events::record(None, Some(actor), &applied))?;
        self.refresh_policy()?;
        let record = self
            .store
            .policy_version(version)?
            .ok_or_else(|| AdminError::NotFound(format!("policy version {version}")))?;
        Ok(AppliedPolicy {
            version,
            rules: policy.rules.len(),
            sha256: record.sha256,
        })
    }

    /// Makes version `version` live again, as a new version.
    pub fn rollback_policy(&self, version: i64) -> Result<AppliedPolicy, AdminError> {
        self.rollback_policy_as(version, "admin", None)
    }

    /// [`GatewayState::rollback_policy`] by `actor`, whose name (and
    /// `note`, when given) the new version's comment keeps: the store
    /// records no other author.
    pub fn rollback_policy_as(
        &self,
        version: i64,
        actor: &str,
        note: Option<&str>,
    ) -> Result<AppliedPolicy, AdminError> {
        let record = self
            .store
            .policy_version(version)?
            .ok_or_else(|| AdminError::NotFound(format!("policy version {version} not found")))?;
        let text = record.text.unwrap_or_default();
        let mut comment = format!("rollback to v{version}");
        if actor != "admin" {
            comment.push_str(&format!(" by {actor}"));
        }
        if let Some(note) = note.map(str::trim).filter(|note| !note.is_empty()) {
            comment.push_str(": ");
            comment.push_str(note);
        }
        self.apply_policy_as(&text, Some(&comment), "rollback", actor)
    }
}
