//! Human review of commands: turning a `review` decision into a stored
//! review, holding the command while a person decides (with a notice to the
//! client naming the review), and the approvers' side: who may decide, MFA,
//! distinct approvals.
//!
//! The state lives in the store, so a decision taken through any gateway
//! sharing it releases a command waiting on another: a waiting command
//! re-reads its review on every hint of the store's feed
//! ([`crate::wakeups`]) and on a polling fallback.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

use airlock_store::{now_unix, NewReview, ReviewRecord};
use airlock_types::Identity;

use crate::error::AdminError;
use crate::events::{record, AccessGrantedByReview, MfaEnrolled, ReviewCreated, ReviewDecided};
use crate::state::GatewayState;

/// What the policy asked for, handed from the gate to the waiting logic.
#[derive(Debug, Clone)]
pub struct ReviewRequest {
    pub rule: String,
    pub approvers: Vec<String>,
    pub wait: Option<Duration>,
    pub require_mfa: bool,
    pub min_approvals: u32,
    pub policy_version: i64,
    /// The statement, masked.
    pub statement: String,
    pub fingerprint: String,
    pub classification: Value,
}

/// How a held command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// An approval was used: run it.
    Approved { review_id: String },
    /// Not (yet) approved: the client's error message.
    Refused {
        review_id: Option<String>,
        message: String,
    },
}

/// The normalised fingerprint of a statement: runs of white space folded,
/// trailing semicolons dropped. An approval covers exactly this text.
pub fn fingerprint(statement: &str) -> String {
    let folded: Vec<&str> = statement.split_whitespace().collect();
    let folded = folded.join(" ");
    let trimmed = folded.trim_end_matches([';', ' ']);
    hex::encode(Sha256::digest(trimmed.as_bytes()))
}

fn new_review_id() -> String {
    let bytes: [u8; 4] = rand::random();
    format!("r-{}", hex::encode(bytes))
}

impl GatewayState {
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&GatewayState) -> Result<T, airlock_store::StoreError> + Send + 'static,
    ) -> Result<T, String> {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&state))
            .await
            .map_err(|_| "internal error".to_string())?
            .map_err(|error| error.to_string())
    }

    /// Resolves a `review` decision for `identity`'s command: uses a valid
    /// approval, or creates (or finds) the review and, when the rule says
    /// `wait`, holds the command until a decision or the time-out.
    /// `notice` is called once with the text to show the client while it
    /// waits.
    pub async fn resolve_review(
        self: &Arc<Self>,
        identity: &Identity,
        connection: &str,
        session_id: &str,
        request: ReviewRequest,
        notice: impl FnOnce(String),
    ) -> ReviewOutcome {
        match self
            .consume_approval(identity, connection, &request.fingerprint)
            .await
        {
            Ok(Some(review_id)) => return ReviewOutcome::Approved { review_id },
            Ok(None) => {}
            Err(error) => {
                return ReviewOutcome::Refused {
                    review_id: None,
                    message: format!(
                        "airlock: command refused: the review store is unavailable: {error}"
                    ),
                }
            }
        }
        let review = match self
            .open_review(identity, connection, session_id, &request)
            .await
        {
            Ok(review) => review,
            Err(refused) => return refused,
        };
        let how = format!("approve with: airlock review approve {}", review.id);
        let header = format!(
            "review {} required by rule \"{}\" (policy v{})",
            review.id, request.rule, request.policy_version
        );
        let Some(wait) = request.wait.filter(|wait| !wait.is_zero()) else {
            return ReviewOutcome::Refused {
                review_id: Some(review.id),
                message: format!("{header}; {how}"),
            };
        };
        notice(format!(
            "{header}: waiting up to {} s for a decision; {how}",
            wait.as_secs()
        ));
        let deadline = tokio::time::Instant::now() + wait;
        let decided = self
            .await_decision(
                identity,
                connection,
                &request.fingerprint,
                &review.id,
                deadline,
            )
            .await;
        decided.unwrap_or_else(|| ReviewOutcome::Refused {
            review_id: Some(review.id.clone()),
            message: format!(
                "review {} was not approved within {} s; it stays pending: run the command again once it is approved ({how})",
                review.id,
                wait.as_secs()
            ),
        })
    }

    /// Uses up a valid approval of this exact command, if there is one.
    async fn consume_approval(
        self: &Arc<Self>,
        identity: &Identity,
        connection: &str,
        fingerprint: &str,
    ) -> Result<Option<String>, String> {
        let (who, where_, print) = (
            identity.name.clone(),
            connection.to_string(),
            fingerprint.to_string(),
        );
        self.blocking(move |state| state.store.consume_approval(&who, &where_, &print))
            .await
    }

    /// Creates the review of a held command (or finds the pending one of the
    /// same command), recorded (`review.created`) and announced to the
    /// webhooks when new. A review that cannot be created or recorded
    /// refuses the command.
    async fn open_review(
        self: &Arc<Self>,
        identity: &Identity,
        connection: &str,
        session_id: &str,
        request: &ReviewRequest,
    ) -> Result<ReviewRecord, ReviewOutcome> {
        let pending_ttl = i64::try_from(self.settings.review_pending_ttl.as_secs()).unwrap_or(3600);
        let new = NewReview {
            id: new_review_id(),
            identity: identity.name.clone(),
            connection: connection.to_string(),
            statement: request.statement.clone(),
            fingerprint: request.fingerprint.clone(),
            classification: request.classification.clone(),
            rule: request.rule.clone(),
            policy_version: request.policy_version,
            approvers: request.approvers.clone(),
            min_approvals: i64::from(request.min_approvals.max(1)),
            require_mfa: request.require_mfa,
            session_id: Some(session_id.to_string()),
            expires_at: now_unix() + pending_ttl,
            kind: "command".into(),
            duration_seconds: None,
        };
        let created_id = new.id.clone();
        let review = self
            .blocking(move |state| state.store.create_or_find_review(&new))
            .await
            .map_err(|error| ReviewOutcome::Refused {
                review_id: None,
                message: format!("airlock: command refused: the review cannot be created: {error}"),
            })?;
        if review.id == created_id {
            let created = ReviewCreated {
                approvers: review.approvers.clone(),
                classification: review.classification.clone(),
                connection: connection.to_string(),
                expires_at: review.expires_at,
                min_approvals: review.min_approvals,
                policy_version: review.policy_version,
                require_mfa: review.require_mfa,
                review_id: review.id.clone(),
                rule: review.rule.clone(),
                statement: review.statement.clone(),
            };
            let event = record(Some(session_id), Some(&identity.name), &created);
            if let Err(error) = self.recorder.record(vec![event]).await {
                return Err(ReviewOutcome::Refused {
                    review_id: Some(review.id),
                    message: format!("airlock: command refused: {error}"),
                });
            }
            self.metrics
                .review_created("command", connection, &review.rule);
            self.reviews_changed.notify_waiters();
            self.notify_review("review.created", &review);
        }
        Ok(review)
    }

    /// Polls the review until it is decided or expires: approved (and its
    /// approval used), denied or expired; `None` at `deadline`. (Not a
    /// timeout around the poll: one must never drop an approval it has
    /// just used.)
    async fn await_decision(
        self: &Arc<Self>,
        identity: &Identity,
        connection: &str,
        fingerprint: &str,
        review_id: &str,
        deadline: tokio::time::Instant,
    ) -> Option<ReviewOutcome> {
        let mut wakeups = self.review_wakeups.subscribe();
        loop {
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            // A hint that some review changed, or the polling cadence
            // (often without a live feed, rarely with one), whichever first.
            let poll = self.cadence().review;
            tokio::select! {
                _ = wakeups.changed() => {}
                () = tokio::time::sleep(poll) => {}
            }
            let id = review_id.to_string();
            let current = self.blocking(move |state| state.store.review(&id)).await;
            let current = match current {
                Ok(current) => current,
                // A store hiccup while waiting: ask again.
                Err(_) => continue,
            };
            match current.as_ref().map(|review| review.status.as_str()) {
                Some("approved") => {
                    if let Ok(Some(review_id)) = self
                        .consume_approval(identity, connection, fingerprint)
                        .await
                    {
                        return Some(ReviewOutcome::Approved { review_id });
                    }
                }
                Some("denied") => {
                    let reason = current
                        .and_then(|review| review.reason)
                        .unwrap_or_else(|| "no reason given".into());
                    return Some(ReviewOutcome::Refused {
                        review_id: Some(review_id.to_string()),
                        message: format!("review {review_id} was denied: {reason}"),
                    });
                }
                Some("expired") | None => {
                    return Some(ReviewOutcome::Refused {
                        review_id: Some(review_id.to_string()),
                        message: format!("review {review_id} expired before anyone approved it"),
                    });
                }
                _ => {}
            }
        }
    }

    /// Reviews `viewer` may see, newest first: all of them for the admin
    /// (`None`); for a person or agent, the reviews it requested and those
    /// it may decide (one of its groups is an approver group). Statements
    /// and session ids of other identities' reviews are not theirs to read.
    pub fn list_reviews(
        &self,
        viewer: Option<&Identity>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReviewRecord>, AdminError> {
        let viewer = viewer.map(|identity| (identity.name.as_str(), identity.groups.as_slice()));
        Ok(self.store.reviews_visible_to(status, limit, viewer)?)
    }

    /// One review, when `viewer` may see it (see [`Self::list_reviews`]);
    /// one it may not see is "not found", so its existence is not revealed.
    pub fn show_review(
        &self,
        viewer: Option<&Identity>,
        id: &str,
    ) -> Result<ReviewRecord, AdminError> {
        self.store
            .review(id)?
            .filter(|review| viewer.is_none_or(|viewer| review_visible_to(review, viewer)))
            .ok_or_else(|| AdminError::NotFound(format!("review {id} not found")))
    }

    /// Records an approver's decision after checking that they may take it:
    /// member of an approver group, not the requester, with a valid TOTP
    /// code when the rule requires MFA.
    pub fn decide_review(
        &self,
        approver: &Identity,
        id: &str,
        approve: bool,
        comment: Option<&str>,
        totp: Option<&str>,
    ) -> Result<Value, AdminError> {
        let review = self
            .store
            .review(id)?
            .filter(|review| review_visible_to(review, approver))
            .ok_or_else(|| AdminError::NotFound(format!("review {id} not found")))?;
        if approver.name == review.identity {
            return Err(AdminError::Forbidden(format!(
                "{} requested review {id} and cannot decide it",
                approver.name
            )));
        }
        if !approver
            .groups
            .iter()
            .any(|group| review.approvers.contains(group))
        {
            return Err(AdminError::Forbidden(format!(
                "{} is not in an approver group of review {id} ({})",
                approver.name,
                review.approvers.join(", ")
            )));
        }
        let mfa = if review.require_mfa && approve {
            let code = totp.ok_or_else(|| {
                AdminError::Forbidden(format!(
                    "review {id} requires MFA: pass a TOTP code (--totp)"
                ))
            })?;
            self.verify_totp(&approver.name, code)?;
            true
        } else {
            false
        };
        let validity = i64::try_from(self.settings.review_validity.as_secs()).unwrap_or(900);
        let outcome =
            self.store
                .decide_review(id, &approver.name, approve, comment, mfa, validity, 1)?;
        let decided = ReviewDecided {
            approved: approve,
            approvals: outcome.approvals,
            comment: comment.map(str::to_string),
            mfa,
            min_approvals: outcome.min_approvals,
            requester: review.identity.clone(),
            review_id: id.to_string(),
            status: outcome.status.clone(),
        };
        self.store.append_event(record(
            review.session_id.as_deref(),
            Some(&approver.name),
            &decided,
        ))?;
        if let Some(grant) = &outcome.grant {
            self.metrics.access_granted(&grant.connection, "review");
            let granted = AccessGrantedByReview {
                approved_by: approver.name.clone(),
                connection: grant.connection.clone(),
                expires_at: grant.expires_at,
                grant_id: grant.id.clone(),
                review_id: id.to_string(),
                rule: grant.rule.clone(),
            };
            self.store
                .append_event(record(None, Some(&grant.identity), &granted))?;
        }
        self.reviews_changed.notify_waiters();
        // A command held in this process re-reads its review now rather
        // than at its next poll.
        self.review_wakeups.wake();
        if outcome.status != "pending" {
            let waited = now_unix().saturating_sub(review.created_at);
            self.metrics.review_decided(
                &outcome.status,
                std::time::Duration::from_secs(u64::try_from(waited).unwrap_or(0)),
            );
            if let Some(updated) = self.store.review(id)? {
                self.notify_review(&format!("review.{}", outcome.status), &updated);
            }
        }
        Ok(serde_json::to_value(outcome).unwrap_or_default())
    }

    /// Sends a review event to the configured webhooks (never blocks).
    pub fn notify_review(&self, kind: &str, review: &ReviewRecord) {
        tracing::info!(review = %review.id, kind, "review event");
        crate::notifications::notify_review(self, kind, review);
    }
}

impl GatewayState {
    /// Checks an approver's TOTP code against their enrolled secret; a code
    /// (time step) is accepted once.
    pub fn verify_totp(&self, identity: &str, code: &str) -> Result<(), AdminError> {
        let airlock_store::MfaSecretRecord {
            nonce,
            ciphertext,
            last_step,
        } = self.store.mfa_secret(identity)?.ok_or_else(|| {
            AdminError::Forbidden(format!(
                "{identity} has no MFA enrolled: run `airlock mfa enroll`"
            ))
        })?;
        let secret =
            self.vault
                .decrypt(&format!("mfa:{identity}"), identity, &nonce, &ciphertext)?;
        let secret = airlock_mfa::TotpSecret::from_base32(secret.expose())
            .map_err(|_| AdminError::Forbidden("the enrolled MFA secret is unreadable".into()))?;
        let now = u64::try_from(now_unix()).unwrap_or(0);
        let last = last_step.and_then(|step| u64::try_from(step).ok());
        let step = airlock_mfa::verify(&secret, code, now, 1, last)
            .map_err(|error| AdminError::Forbidden(format!("MFA code refused: {error}")))?;
        if !self
            .store
            .use_mfa_step(identity, i64::try_from(step).unwrap_or(i64::MAX))?
        {
            return Err(AdminError::Forbidden(
                "MFA code refused: it was already used".into(),
            ));
        }
        Ok(())
    }

    /// Enrolls a human identity for TOTP: returns the `otpauth://` URI,
    /// shown once. Re-enrolling replaces the secret.
    pub fn enroll_mfa(&self, identity: &Identity) -> Result<Value, AdminError> {
        if identity.kind != airlock_types::IdentityKind::Human {
            return Err(AdminError::Forbidden(format!(
                "{} is a {}: only human identities enroll for MFA",
                identity.name, identity.kind
            )));
        }
        let secret = airlock_mfa::TotpSecret::generate();
        let encoded = secret.to_base32();
        let (nonce, ciphertext) =
            self.vault
                .encrypt(&format!("mfa:{}", identity.name), &identity.name, &encoded)?;
        self.store
            .set_mfa_secret(&identity.name, &nonce, &ciphertext)?;
        self.store
            .append_event(record(None, Some(&identity.name), &MfaEnrolled {}))?;
        Ok(json!({
            "identity": identity.name,
            "otpauth_uri": airlock_mfa::otpauth_uri(&secret, "airlock", &identity.name),
        }))
    }
}

/// Whether `viewer` may see `review`: it requested it, or it may decide it.
pub fn review_visible_to(review: &ReviewRecord, viewer: &Identity) -> bool {
    review.identity == viewer.name
        || viewer
            .groups
            .iter()
            .any(|group| review.approvers.contains(group))
}
