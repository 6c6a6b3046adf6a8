//! The command gate: the one place where a protocol asks whether a
//! command runs.
//!
//! A protocol crate turns what it read off the wire into a
//! [`Command`] (classified its own way: SQL statements, an HTTP request, an
//! MCP call) and asks [`Gate::decide`]. The gate asks the one pure decision
//! function (`airlock-policy`) under the live policy version, applies rate
//! limits, builds the review request a human will see, and answers with a
//! [`Decision`]: forward (with the mask plan the policy obliges) or refuse
//! with a [`Refusal`]. A refusal is protocol-neutral: each protocol crate has
//! one `errors` module that turns it into its own error (SQLSTATE, MySQL
//! error code, HTTP status, JSON-RPC error). Protocol code never decides.

use std::sync::Arc;

use airlock_mask::MaskPlan;
/// Why a protocol refused a command before the gate ([`Gate::rejected`]).
pub use airlock_metrics::Rejection;
use airlock_metrics::{CommandMeter, CommandVerdict};
use airlock_policy::{
    decide, DecisionInput, RateKey, RateLimitObligation, Verdict as PolicyVerdict,
};
use airlock_store::now_unix;
use airlock_types::{Access, Command, ConnectionInfo, Identity};

pub use crate::details::{Classification, Details};
use crate::reviews::{fingerprint, ReviewOutcome, ReviewRequest};
use crate::state::GatewayState;

mod preview;
pub use preview::{Preview, RateLimitState};

/// Why a command does not run. Every variant carries the message the client
/// sees; the protocol's `errors` module picks the protocol's own code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A rule (or the policy's default) denies it; this includes a command
    /// the classifier was not sure of and no rule allows incomplete.
    Denied { message: String },
    /// A rule holds it for a human: the review is pending, timed out or was
    /// rejected. `review_id` is known once a review exists.
    Review {
        review_id: Option<String>,
        message: String,
    },
    /// A rate limit is exhausted; the message says when to retry.
    RateLimited { message: String },
    /// The command could not be recorded before it would run (audit before
    /// forward), or the recorder refuses every command.
    RecordingUnavailable { message: String },
    /// No policy is loaded, or an obligation (a mask plan) cannot be built.
    Unavailable { message: String },
    /// The text does not parse: the grammar's own message, and the
    /// 1-based character position of the error when known.
    Syntax {
        message: String,
        position: Option<u32>,
    },
    /// The command names a server-side object (prepared statement, portal,
    /// cursor) the gateway has not seen created, so it cannot say what runs.
    UnknownObject { object: Object, message: String },
}

/// The kinds of server-side objects a command may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    PreparedStatement,
    Portal,
}

impl Refusal {
    /// The message the client sees.
    pub fn message(&self) -> &str {
        match self {
            Self::Denied { message }
            | Self::Review { message, .. }
            | Self::RateLimited { message }
            | Self::RecordingUnavailable { message }
            | Self::Unavailable { message }
            | Self::Syntax { message, .. }
            | Self::UnknownObject { message, .. } => message,
        }
    }
}

/// Forward or refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send the command upstream.
    Forward,
    /// Do not send it; the client gets this refusal in its place.
    Refuse(Refusal),
}

/// When a decision's rate limits are consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// Now: the command runs once (a simple query, an HTTP request).
    Now,
    /// At each execution ([`Gate::admit`]): the command is prepared now and
    /// may run many times (an extended-protocol `Parse`).
    AtEachExecution,
}

/// A decision, with what the record keeps of it and the mask to apply.
#[derive(Clone)]
pub struct Decision {
    pub verdict: Verdict,
    /// Policy version, verdict, matched rules, classification: what the
    /// command record keeps of the decision.
    pub details: Details,
    /// Masking obligation for the command's results.
    pub mask: Option<Arc<MaskPlan>>,
    /// The obligation's JSON field rules (`$..password`), for the
    /// protocols whose results are JSON bodies; empty otherwise.
    pub mask_fields: Vec<String>,
    /// Set when the policy holds the command for a human: the protocol
    /// resolves it ([`Gate::resolve`]) before anything is forwarded.
    pub review: Option<ReviewRequest>,
    /// The policy version the decision was taken under.
    pub version: i64,
    /// Rate limits still to consume ([`Limits::AtEachExecution`]).
    pub rate_limits: Vec<RateLimitObligation>,
    /// The command only reads: its access is `read` and its classification
    /// complete. Under `recording.sync: writes` its record need not be on
    /// disk before it runs (see [`crate::recorder::Effect`]). False unless
    /// [`Gate::decide`] saw such a command, so a decision built any other
    /// way waits for the disk.
    pub reads_only: bool,
}

impl Decision {
    /// Forward with nothing attached: a command decided before (an
    /// execution of a prepared statement) or one that runs nothing.
    pub fn forward() -> Self {
        Self {
            verdict: Verdict::Forward,
            details: Details::default(),
            mask: None,
            mask_fields: Vec::new(),
            review: None,
            version: 0,
            rate_limits: Vec::new(),
            reads_only: false,
        }
    }

    /// A refusal, with what the record keeps of it.
    pub fn refuse(refusal: Refusal, details: impl Into<Details>) -> Self {
        Self {
            verdict: Verdict::Refuse(refusal),
            details: details.into(),
            ..Self::forward()
        }
    }

    /// The same decision, taken under policy `version`.
    fn at(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// True when the command goes upstream.
    pub fn forwards(&self) -> bool {
        self.verdict == Verdict::Forward
    }
}

/// A refusal because the gate cannot decide (no policy, a mask plan that
/// cannot be built).
fn unavailable(message: String, details: Details) -> Decision {
    Decision::refuse(Refusal::Unavailable { message }, details)
}

/// What reviewers are asked for a command a review rule holds: the text
/// masked as its results would be, and what an approval binds.
fn review_request(
    verdict: &PolicyVerdict,
    mask: Option<&MaskPlan>,
    shown: &str,
    details: &Details,
    version: i64,
) -> Option<ReviewRequest> {
    let PolicyVerdict::Review {
        rule,
        approvers,
        wait,
        require_mfa,
        min_approvals,
    } = verdict
    else {
        return None;
    };
    let statement = match mask {
        Some(plan) => plan
            .mask_text(shown, &mut airlock_mask::MaskStats::new())
            .into_owned(),
        None => shown.to_string(),
    };
    Some(ReviewRequest {
        rule: rule.clone(),
        approvers: approvers.clone(),
        wait: *wait,
        require_mfa: *require_mfa,
        min_approvals: *min_approvals,
        policy_version: version,
        statement,
        fingerprint: fingerprint(shown),
        classification: details.to_value(),
    })
}

/// "retry in 40 ms" / "retry in 2.5 s": never "0.0 s", always rounded up.
fn retry_hint(seconds: f64) -> String {
    if seconds < 1.0 {
        let millis = (seconds * 1000.0).ceil().max(1.0);
        format!("{millis:.0} ms")
    } else {
        format!("{:.1} s", (seconds * 10.0).ceil() / 10.0)
    }
}

/// What a client refused by rate limit `limit` is told.
fn rate_limit_message(
    limit: &RateLimitObligation,
    version: u64,
    identity: &str,
    connection: &str,
    retry_seconds: f64,
) -> String {
    format!(
        "rate limit exceeded by rule \"{}\" (policy v{version}): at most {} commands per minute for {identity} on {connection}; retry in {}",
        limit.rule,
        limit.per_minute,
        retry_hint(retry_seconds)
    )
}

/// The decision point of one session: who asks, on which connection.
pub struct Gate {
    state: Arc<GatewayState>,
    identity: Identity,
    connection: ConnectionInfo,
    /// The session's command counters, looked up once (`None` under
    /// `metrics.enabled: false`).
    meter: Option<CommandMeter>,
}

/// The metrics verdict of a decision, and the rule that refused it.
fn verdict_of(decision: &Decision) -> (CommandVerdict, Option<&str>) {
    // Looked up for refusals only: an allowed command costs no map lookup.
    let rule = || decision.details.rule();
    match &decision.verdict {
        Verdict::Forward => (CommandVerdict::Allow, None),
        Verdict::Refuse(Refusal::Denied { .. }) => (CommandVerdict::Deny, rule()),
        Verdict::Refuse(Refusal::Review { .. }) => (CommandVerdict::Review, rule()),
        // The rule is counted where the limit refused (`rate_limited`).
        Verdict::Refuse(Refusal::RateLimited { .. }) => (CommandVerdict::RateLimited, None),
        Verdict::Refuse(_) => (CommandVerdict::Unavailable, None),
    }
}

/// The rule that allowed a command: the first allow rule that matched
/// (`None`: the policy's default allowed it).
fn allowing_rule(matched: &[airlock_policy::MatchedRule]) -> Option<&str> {
    matched
        .iter()
        .find(|rule| rule.action == airlock_policy::MatchedAction::Allow)
        .map(|rule| rule.name.as_str())
}

impl Gate {
    /// The gate for one session.
    pub fn new(state: Arc<GatewayState>, identity: Identity, connection: ConnectionInfo) -> Self {
        let meter = state.config.metrics.enabled.then(|| {
            CommandMeter::new(
                &state.metrics,
                connection.protocol.as_str(),
                &connection.name,
                &identity.name,
            )
        });
        Self {
            meter,
            state,
            identity,
            connection,
        }
    }

    /// The policy version live now (an atomic read, no lock).
    pub fn live_version(&self) -> i64 {
        self.state.policy.current_version()
    }

    /// What the record keeps of a command's classification.
    pub fn classification(command: &Command, version: i64) -> Details {
        Details::classified(Classification::of(command, version))
    }

    /// Decides one command under the live policy. `shown` is what a
    /// reviewer would see of it (the protocol may add what the command runs
    /// indirectly, e.g. the body of an SQL `EXECUTE`); it is masked as the
    /// results would be, and an approval binds exactly it.
    pub fn decide(&self, command: &Command, limits: Limits, shown: &str) -> Decision {
        let started = self.meter.as_ref().map(|_| std::time::Instant::now());
        let mut decision = self.decide_under_policy(command, limits, shown, true);
        decision.reads_only = command.access() == Access::Read && command.complete();
        if let (Some(meter), Some(started)) = (&self.meter, started) {
            let (verdict, rule) = verdict_of(&decision);
            meter.decided(verdict, started.elapsed());
            if let Some(rule) = rule {
                meter.refused_by_rule(rule, verdict);
            }
        }
        decision
    }

    /// As [`Gate::decide`], counted nowhere: for a command the protocol
    /// refuses before the gate whatever the policy says (a syntax error),
    /// whose record still needs the policy's mask plan. The protocol
    /// counts it with [`Gate::rejected`].
    pub fn decide_unmetered(&self, command: &Command, limits: Limits, shown: &str) -> Decision {
        let mut decision = self.decide_under_policy(command, limits, shown, false);
        decision.reads_only = command.access() == Access::Read && command.complete();
        decision
    }

    /// A command the protocol refused before the gate decided it (a syntax
    /// error, an unknown prepared statement, a command it does not relay, a
    /// protocol violation): counted as `verdict="rejected"` with `reason`.
    pub fn rejected(&self, reason: Rejection) {
        if let Some(meter) = &self.meter {
            meter.rejected(reason);
        }
    }

    /// The session's command counters: a protocol reports what the
    /// upstream answered through it ([`CommandMeter::answered`]).
    pub fn meter(&self) -> Option<&CommandMeter> {
        self.meter.as_ref()
    }

    /// The decision under the live policy; `metered` counts an allowed
    /// command under the rule that allowed it.
    fn decide_under_policy(
        &self,
        command: &Command,
        limits: Limits,
        shown: &str,
        metered: bool,
    ) -> Decision {
        let live = self.state.policy.current();
        let mut details = Self::classification(command, live.version);
        let Some(policy) = &live.policy else {
            let problem = live
                .problem
                .clone()
                .unwrap_or_else(|| "no policy is loaded".into());
            details.set_verdict("deny");
            return unavailable(format!("airlock: command refused: {problem}"), details)
                .at(live.version);
        };
        let decision = decide(
            policy,
            &DecisionInput {
                identity: &self.identity,
                connection: &self.connection,
                command,
                now_unix: now_unix(),
            },
        );
        details.set_verdict(decision.verdict.name());
        details.rules = Some(
            decision
                .matched_rules
                .iter()
                .map(|rule| rule.name.clone())
                .collect(),
        );
        // The mask obligation, compiled once: every verdict needs it (the
        // record of a refused command and a review show the text masked as
        // results would be). One that cannot be carried out is a refusal.
        let mask = match decision
            .mask
            .as_ref()
            .map(|obligation| live.mask_plan(obligation))
        {
            None => None,
            Some(Ok(plan)) => Some(plan),
            Some(Err(error)) => {
                return unavailable(
                    format!("airlock: command refused: the mask plan cannot be built: {error}"),
                    details,
                )
                .at(live.version)
            }
        };
        let mask_fields = decision
            .mask
            .as_ref()
            .map(|obligation| obligation.fields.clone())
            .unwrap_or_default();
        let decided = match &decision.verdict {
            PolicyVerdict::Deny { rule, .. } => {
                details.rule = rule.clone();
                let message = decision
                    .client_message()
                    .unwrap_or_else(|| "blocked by policy".into());
                Decision::refuse(Refusal::Denied { message }, details)
            }
            PolicyVerdict::Review { rule, .. } => {
                details.rule = Some(rule.clone());
                let mut held = Decision::refuse(
                    Refusal::Review {
                        review_id: None,
                        message: decision.client_message().unwrap_or_default(),
                    },
                    details,
                );
                held.review = review_request(
                    &decision.verdict,
                    mask.as_deref(),
                    shown,
                    &held.details,
                    live.version,
                );
                held.rate_limits = decision.rate_limits.clone();
                held
            }
            PolicyVerdict::Allow => {
                if limits == Limits::Now {
                    if let Some(message) =
                        self.rate_limited(&decision.rate_limits, decision.policy_version)
                    {
                        details.set_verdict("rate_limited");
                        let mut refused =
                            Decision::refuse(Refusal::RateLimited { message }, details);
                        refused.mask = mask;
                        refused.mask_fields = mask_fields;
                        return refused;
                    }
                }
                if let (Some(meter), true) = (&self.meter, metered) {
                    meter.allowed_by(allowing_rule(&decision.matched_rules));
                }
                let mut allowed = Decision::forward();
                allowed.details = details;
                allowed.rate_limits = match limits {
                    Limits::AtEachExecution => decision.rate_limits.clone(),
                    Limits::Now => Vec::new(),
                };
                allowed
            }
        };
        let mut decided = decided.at(live.version);
        decided.mask = mask;
        decided.mask_fields = mask_fields;
        decided
    }

    /// Resolves a decision that holds the command for review: waits when
    /// the rule says so, and turns the outcome into forward or refuse.
    pub async fn resolve(
        &self,
        mut decision: Decision,
        session_id: &str,
        notice: impl FnOnce(String),
    ) -> Decision {
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
                decision.details.review = Some(review_id.clone());
                decision.details.set_verdict("approved");
                decision.verdict = Verdict::Forward;
            }
            ReviewOutcome::Refused { review_id, message } => {
                decision.details.review = review_id.clone();
                decision.verdict = Verdict::Refuse(Refusal::Review { review_id, message });
            }
        }
        decision
    }

    /// Consumes the rate limits of one execution of a prepared command;
    /// the refusal when one is exceeded.
    pub fn admit(&self, limits: &[RateLimitObligation], version: i64) -> Option<Decision> {
        self.rate_limited(limits, u64::try_from(version).unwrap_or(0))
            .map(|message| {
                Decision::refuse(
                    Refusal::RateLimited { message },
                    Details::verdict("rate_limited"),
                )
            })
    }

    /// The review of one execution of a prepared command held for review:
    /// the approver sees, and the approval binds, `shown` (the command with
    /// the values bound to it), masked with `mask`.
    pub fn review_execution(
        &self,
        template: &ReviewRequest,
        shown: String,
        mask: Option<&MaskPlan>,
    ) -> Decision {
        let mut request = template.clone();
        request.fingerprint = fingerprint(&shown);
        request.statement = match mask {
            Some(plan) => plan
                .mask_text(&shown, &mut airlock_mask::MaskStats::new())
                .into_owned(),
            None => shown,
        };
        let mut decision = Decision::refuse(
            Refusal::Review {
                review_id: None,
                message: "review required".into(),
            },
            template.classification.clone(),
        );
        decision.review = Some(request);
        decision.version = template.policy_version;
        decision
    }

    fn rate_limited(&self, limits: &[RateLimitObligation], version: u64) -> Option<String> {
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
                self.state.metrics.rate_limited(&limit.rule);
                if let Some(meter) = &self.meter {
                    meter.refused_by_rule(&limit.rule, CommandVerdict::RateLimited);
                }
                return Some(rate_limit_message(
                    limit,
                    version,
                    &self.identity.name,
                    &self.connection.name,
                    retry.seconds,
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_hints_show_a_real_time() {
        assert_eq!(retry_hint(0.0001), "1 ms");
        assert_eq!(retry_hint(0.04), "40 ms");
        assert_eq!(retry_hint(0.0999), "100 ms");
        assert_eq!(retry_hint(2.41), "2.5 s");
    }

    #[test]
    fn every_refusal_carries_its_message() {
        let refusals = [
            Refusal::Denied {
                message: "a".into(),
            },
            Refusal::Review {
                review_id: Some("r-1".into()),
                message: "b".into(),
            },
            Refusal::RateLimited {
                message: "c".into(),
            },
            Refusal::RecordingUnavailable {
                message: "d".into(),
            },
            Refusal::Unavailable {
                message: "e".into(),
            },
            Refusal::Syntax {
                message: "f".into(),
                position: Some(3),
            },
            Refusal::UnknownObject {
                object: Object::Portal,
                message: "g".into(),
            },
        ];
        let messages: Vec<&str> = refusals.iter().map(Refusal::message).collect();
        assert_eq!(messages, ["a", "b", "c", "d", "e", "f", "g"]);
    }
}
