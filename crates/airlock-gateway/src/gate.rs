//! The decision point as the relay sees it.
//!
//! For every `Query` and `Parse` the relay asks [`CommandGate::check`]
//! before a byte of it goes upstream. The gate classifies the text
//! (`airlock-sql`), asks the one pure decision function (`airlock-policy`)
//! with the live policy version, enforces rate limits, and returns a
//! [`GateDecision`]: forward (with the mask plan the policy obliges) or
//! refuse (with the client-visible error). Protocol code never decides.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

use airlock_mask::MaskPlan;
use airlock_pg::ErrorFields;
use airlock_policy::{decide, DecisionInput, RateKey, Verdict};
use airlock_sql::{classify_with, prepared_definitions, Dialect};
use airlock_store::now_unix;
use airlock_types::{Command, ConnectionInfo, Identity, StatementClass};

use crate::reviews::{fingerprint, ReviewOutcome, ReviewRequest};
use crate::state::GatewayState;

/// What the relay must do with one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    /// Send the command upstream unchanged.
    Forward,
    /// Do not send it; the client receives this error instead, at the point
    /// in the stream where the upstream's answer would have been.
    Refuse(ErrorFields),
}

/// The kind of command being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// A simple-protocol `Query` (one or more statements).
    SimpleQuery,
    /// An extended-protocol `Parse`.
    Parse,
    /// An extended-protocol `Execute` (decided at its `Parse`; recorded
    /// with the statement it runs).
    Execute,
}

/// A decision, with what the record keeps of it and the mask to apply.
#[derive(Clone)]
pub struct GateDecision {
    pub verdict: GateVerdict,
    /// Policy version, verdict, matched rules, classification.
    pub details: Value,
    /// Masking obligation for the command's results.
    pub mask: Option<Arc<MaskPlan>>,
    /// Set when the policy holds the command for a human: the relay
    /// resolves it (possibly waiting) before anything is forwarded.
    pub review: Option<ReviewRequest>,
}

impl GateDecision {
    /// An Execute of a statement decided at its Parse: it runs what was
    /// decided then (the relay applies the Parse's mask).
    pub fn inherited() -> Self {
        Self {
            verdict: GateVerdict::Forward,
            details: Value::Null,
            mask: None,
            review: None,
        }
    }

    fn refuse(code: &str, message: String, details: Value) -> Self {
        Self {
            verdict: GateVerdict::Refuse(ErrorFields {
                severity: "ERROR".into(),
                code: code.into(),
                message,
                detail: None,
                hint: None,
            }),
            details,
            mask: None,
            review: None,
        }
    }
}

/// True when `text` contains `word` (ASCII, case-insensitive) anywhere.
/// A cheap, allocation-free over-approximation: the classifier decides
/// what the statement really does.
/// Whether an Execute of the parsed `text` must be decided again: an SQL
/// `EXECUTE` inside runs whatever the session's PREPAREs say at that time.
/// The relay computes it once per Parse, not on every Execute.
pub fn decided_again_at_execute(text: &str) -> bool {
    mentions(text, b"execute")
}

fn mentions(text: &str, word: &[u8]) -> bool {
    text.as_bytes()
        .windows(word.len())
        .any(|window| window.eq_ignore_ascii_case(word))
}

/// Classifications kept per session, by statement text.
const CLASSIFICATION_CACHE: usize = 512;

/// Per-session decision point.
pub struct CommandGate {
    state: Arc<GatewayState>,
    identity: Identity,
    connection: ConnectionInfo,
    /// `PREPARE`d statements of this session, for `EXECUTE name`.
    prepared: HashMap<String, StatementClass>,
    cache: HashMap<String, Command>,
}

impl CommandGate {
    /// The gate for one session.
    pub fn new(state: Arc<GatewayState>, identity: Identity, connection: ConnectionInfo) -> Self {
        Self {
            state,
            identity,
            connection,
            prepared: HashMap::new(),
            cache: HashMap::new(),
        }
    }

    fn classify(&mut self, text: &str) -> Command {
        // A statement that EXECUTEs a prepared name depends on the session's
        // PREPAREs, which can change: never cache it. The whole text is
        // searched (an EXECUTE can follow other statements).
        let uses_session_state = mentions(text, b"execute");
        if !uses_session_state {
            if let Some(command) = self.cache.get(text) {
                return command.clone();
            }
        }
        let command = classify_with(Dialect::Postgres, text, &self.prepared);
        if !uses_session_state && text.len() <= 4096 {
            if self.cache.len() >= CLASSIFICATION_CACHE {
                self.cache.clear();
            }
            self.cache.insert(text.to_string(), command.clone());
        }
        command
    }

    /// Decides one command.
    pub fn check(&mut self, kind: CommandKind, text: &str) -> GateDecision {
        // An Execute runs what its Parse was decided on, unless the statement
        // is an SQL EXECUTE: what that runs depends on the session's PREPAREs
        // now, so it is decided again.
        if kind == CommandKind::Execute && !decided_again_at_execute(text) {
            return GateDecision::inherited();
        }
        let live = self.state.policy.current();
        let command = self.classify(text);
        let mut operations: Vec<&str> = command
            .statements
            .iter()
            .flat_map(|statement| statement.operations.iter().map(|op| op.as_str()))
            .collect();
        operations.sort_unstable();
        operations.dedup();
        let mut details = json!({
            "policy_version": live.version,
            "operations": operations,
            "access": command.access(),
            "complete": command.complete(),
            "statements": command.statements.len(),
        });
        let Some(policy) = &live.policy else {
            let problem = live
                .problem
                .clone()
                .unwrap_or_else(|| "no policy is loaded".into());
            details["verdict"] = json!("deny");
            return GateDecision::refuse(
                "42501",
                format!("airlock: command refused: {problem}"),
                details,
            );
        };
        let decision = decide(
            policy,
            &DecisionInput {
                identity: &self.identity,
                connection: &self.connection,
                command: &command,
                now_unix: now_unix(),
            },
        );
        details["verdict"] = json!(decision.verdict.name());
        details["rules"] = json!(decision
            .matched_rules
            .iter()
            .map(|rule| &rule.name)
            .collect::<Vec<_>>());
        match &decision.verdict {
            Verdict::Deny { rule, .. } => {
                details["rule"] = json!(rule);
                let message = decision
                    .client_message()
                    .unwrap_or_else(|| "blocked by policy".into());
                GateDecision::refuse("42501", message, details)
            }
            Verdict::Review {
                rule,
                approvers,
                wait,
                require_mfa,
                min_approvals,
            } => {
                details["rule"] = json!(rule);
                // The review shows the statement masked as its results would be.
                let statement = match decision
                    .mask
                    .as_ref()
                    .and_then(|obligation| live.mask_plan(obligation).ok())
                {
                    Some(plan) => plan
                        .mask_text(text, &mut airlock_mask::MaskStats::new())
                        .into_owned(),
                    None => text.to_string(),
                };
                let request = ReviewRequest {
                    rule: rule.clone(),
                    approvers: approvers.clone(),
                    wait: *wait,
                    require_mfa: *require_mfa,
                    min_approvals: *min_approvals,
                    policy_version: live.version,
                    statement,
                    fingerprint: fingerprint(text),
                    classification: details.clone(),
                };
                let mut refused = GateDecision::refuse(
                    "42501",
                    decision.client_message().unwrap_or_default(),
                    details,
                );
                refused.mask = decision
                    .mask
                    .as_ref()
                    .and_then(|obligation| live.mask_plan(obligation).ok());
                refused.review = Some(request);
                refused
            }
            Verdict::Allow => {
                if let Some(refusal) =
                    self.rate_limited(&decision.rate_limits, decision.policy_version)
                {
                    details["verdict"] = json!("rate_limited");
                    return GateDecision::refuse("53400", refusal, details);
                }
                let mask = match &decision.mask {
                    None => None,
                    Some(obligation) => match live.mask_plan(obligation) {
                        Ok(plan) => Some(plan),
                        Err(error) => {
                            // An obligation that cannot be carried out is a refusal.
                            return GateDecision::refuse(
                                "42501",
                                format!("airlock: command refused: the mask plan cannot be built: {error}"),
                                details,
                            );
                        }
                    },
                };
                if mentions(text, b"prepare") {
                    for definition in prepared_definitions(Dialect::Postgres, &command) {
                        if self.prepared.len() < 10_000
                            || self.prepared.contains_key(&definition.name)
                        {
                            self.prepared.insert(definition.name, definition.statement);
                        }
                    }
                }
                GateDecision {
                    verdict: GateVerdict::Forward,
                    details,
                    mask,
                    review: None,
                }
            }
        }
    }

    /// Resolves a decision that holds the command for review: waits when
    /// the rule says so, and turns the outcome into forward or refuse.
    pub async fn resolve(
        &self,
        mut decision: GateDecision,
        session_id: &str,
        notice: impl FnOnce(String),
    ) -> GateDecision {
        let Some(request) = decision.review.take() else {
            return decision;
        };
        let outcome = self
            .state
            .resolve_review(
                &self.identity,
                &self.connection.name,
                session_id,
                request,
                notice,
            )
            .await;
        match outcome {
            ReviewOutcome::Approved { review_id } => {
                decision.details["review"] = json!(review_id);
                decision.details["verdict"] = json!("approved");
                decision.verdict = GateVerdict::Forward;
            }
            ReviewOutcome::Refused { review_id, message } => {
                decision.details["review"] = json!(review_id);
                decision.verdict = GateVerdict::Refuse(ErrorFields {
                    severity: "ERROR".into(),
                    code: "42501".into(),
                    message,
                    detail: None,
                    hint: None,
                });
            }
        }
        decision
    }

    fn rate_limited(
        &self,
        limits: &[airlock_policy::RateLimitObligation],
        version: u64,
    ) -> Option<String> {
        if limits.is_empty() {
            return None;
        }
        let now = self.state.clock_seconds();
        let Ok(mut limiter) = self.state.rate_limiter.lock() else {
            return Some("airlock: command refused: the rate limiter is unavailable".into());
        };
        for limit in limits {
            let key = RateKey {
                identity: self.identity.name.clone(),
                connection: self.connection.name.clone(),
                rule: limit.rule.clone(),
            };
            if let Err(retry) = limiter.check(&key, limit.per_minute, now) {
                return Some(format!(
                    "rate limit exceeded by rule \"{}\" (policy v{version}): at most {} commands per minute for {} on {}; retry in {:.1} s",
                    limit.rule, limit.per_minute, self.identity.name, self.connection.name, retry.seconds
                ));
            }
        }
        None
    }
}
