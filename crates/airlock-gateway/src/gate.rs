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
use airlock_policy::{decide, DecisionInput, RateKey, RateLimitObligation, Verdict};
use airlock_sql::{
    classify_with, prepared_definitions, session_effects, Dialect, PreparedDefinition,
    PreparedLookup, SessionEffect,
};
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
    /// resolves it (possibly waiting) before anything is forwarded. For a
    /// `Parse` it is resolved at each `Execute`, with the parameters.
    pub review: Option<ReviewRequest>,
    /// The policy version the decision was taken under.
    pub version: i64,
    /// Rate limits the policy obliges. Consumed by the check for a simple
    /// query; for a `Parse`, consumed at each `Execute` ([`CommandGate::admit`]).
    pub rate_limits: Vec<RateLimitObligation>,
    /// What the command does to the session's named statements and portals.
    pub effects: Vec<SessionEffect>,
    /// `PREPARE` definitions in the command (name, body, classification).
    pub prepares: Vec<PreparedDefinition>,
    /// The command may open or close cursors out of the gateway's sight
    /// (procedural code, unknown functions): every named portal is forgotten.
    pub touches_cursors: bool,
    /// Cursors the command declares, with what their queries read.
    pub declares: Vec<(String, StatementClass)>,
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
            version: 0,
            rate_limits: Vec::new(),
            effects: Vec::new(),
            prepares: Vec::new(),
            touches_cursors: false,
            declares: Vec::new(),
        }
    }

    /// A refusal with a client-visible error.
    pub fn refuse(code: &str, message: String, details: Value) -> Self {
        Self {
            verdict: GateVerdict::Refuse(ErrorFields {
                severity: "ERROR".into(),
                code: code.into(),
                message,
                detail: None,
                hint: None,
            }),
            ..Self::inherited_with(details)
        }
    }

    fn inherited_with(details: Value) -> Self {
        Self {
            details,
            ..Self::inherited()
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
    // `FETCH` and `MOVE` read what the session's cursors were declared for.
    mentions(text, b"execute") || mentions(text, b"fetch") || mentions(text, b"move")
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

/// The session effects of `text`, computed only when a word that can have
/// one appears.
fn session_effects_of(text: &str) -> Vec<SessionEffect> {
    // One pass: the words start with `c`, `d`, `e` or `p`.
    const WORDS: [&[u8]; 6] = [
        b"deallocate",
        b"discard",
        b"close",
        b"declare",
        b"prepare",
        b"execute",
    ];
    let bytes = text.as_bytes();
    let found = bytes.iter().enumerate().any(|(at, byte)| {
        matches!(byte.to_ascii_lowercase(), b'c' | b'd' | b'e' | b'p')
            && WORDS.iter().any(|word| {
                bytes
                    .get(at..at + word.len())
                    .is_some_and(|window| window.eq_ignore_ascii_case(word))
            })
    });
    if found {
        session_effects(Dialect::Postgres, text)
    } else {
        Vec::new()
    }
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
    cache: HashMap<String, Command>,
}

/// The session's prepared statements as an SQL `EXECUTE` sees them: each
/// name's classification and body text (shown to reviewers).
#[derive(Default)]
pub struct PreparedView {
    pub statements: HashMap<String, (StatementClass, Arc<str>)>,
    /// SQL cursors by name: the classification of their query, for `FETCH`.
    pub cursors: HashMap<String, StatementClass>,
}

impl PreparedLookup for PreparedView {
    fn prepared(&self, name: &str) -> Option<&StatementClass> {
        self.statements.get(name).map(|(class, _)| class)
    }

    fn cursor(&self, name: &str) -> Option<&StatementClass> {
        self.cursors.get(name)
    }
}

/// The cursors `DECLARE`d in `command`, with the classification of their
/// queries.
fn declared_cursors(command: &Command) -> Vec<(String, StatementClass)> {
    airlock_sql::split_statements(Dialect::Postgres, &command.text)
        .into_iter()
        .zip(command.statements())
        .filter_map(|(text, class)| {
            match session_effects(Dialect::Postgres, text).into_iter().next() {
                Some(SessionEffect::Declare(name)) => Some((name, class.clone())),
                _ => None,
            }
        })
        .collect()
}

impl CommandGate {
    /// The gate for one session.
    pub fn new(state: Arc<GatewayState>, identity: Identity, connection: ConnectionInfo) -> Self {
        Self {
            state,
            identity,
            connection,
            cache: HashMap::new(),
        }
    }

    /// The policy version live now.
    pub fn live_version(&self) -> i64 {
        self.state.policy.current_version()
    }

    fn classify(&mut self, text: &str, prepared: &PreparedView) -> Command {
        // A statement that EXECUTEs a prepared name depends on the session's
        // PREPAREs, which can change: never cache it. The whole text is
        // searched (an EXECUTE can follow other statements).
        let uses_session_state = decided_again_at_execute(text);
        if !uses_session_state {
            if let Some(command) = self.cache.get(text) {
                return command.clone();
            }
        }
        let command = classify_with(Dialect::Postgres, text, prepared);
        if !uses_session_state && text.len() <= 4096 {
            if self.cache.len() >= CLASSIFICATION_CACHE {
                self.cache.clear();
            }
            self.cache.insert(text.to_string(), command.clone());
        }
        command
    }

    /// Decides one command. `prepared` resolves SQL `EXECUTE name` (only
    /// consulted when the text mentions `execute`). Rate limits are consumed
    /// here for a simple query or a re-decided `Execute`; a `Parse` returns
    /// them for [`CommandGate::admit`] at each of its executions.
    pub fn check(
        &mut self,
        kind: CommandKind,
        text: &str,
        prepared: &PreparedView,
    ) -> GateDecision {
        // Nothing but white space and semicolons: PostgreSQL answers
        // EmptyQueryResponse and runs nothing. (Comments alone are still
        // classified: only bytes that cannot hide anything pass here.)
        if text
            .bytes()
            .all(|byte| byte.is_ascii_whitespace() || byte == b';')
        {
            let mut empty = GateDecision::inherited_with(json!({"verdict": "empty"}));
            empty.version = self.live_version();
            return empty;
        }
        let live = self.state.policy.current();
        let command = self.classify(text, prepared);
        let mut operations: Vec<&str> = command
            .statements()
            .iter()
            .flat_map(|statement| statement.operations.iter().map(|op| op.as_str()))
            .collect();
        operations.sort_unstable();
        operations.dedup();
        let mut tables: Vec<&str> = command
            .statements()
            .iter()
            .flat_map(|statement| {
                statement
                    .tables_read
                    .iter()
                    .chain(&statement.tables_written)
                    .map(String::as_str)
            })
            .collect();
        tables.sort_unstable();
        tables.dedup();
        let mut details = json!({
            "policy_version": live.version,
            "operations": operations,
            "tables": tables,
            "access": command.access(),
            "complete": command.complete(),
            "statements": command.statements().len(),
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
        let effects = session_effects_of(text);
        let touches_cursors = command.statements().iter().any(|statement| {
            !statement.unknown_functions.is_empty()
                || statement.operations.iter().any(|op| {
                    matches!(
                        op,
                        airlock_types::Operation::Do
                            | airlock_types::Operation::Call
                            | airlock_types::Operation::Unknown
                    )
                })
        });
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
                let mut refused = GateDecision::refuse("42501", message, details);
                refused.version = live.version;
                refused
            }
            // A simple query that only prepares runs nothing: what it
            // prepares is reviewed at each EXECUTE, with what it runs.
            Verdict::Review { .. }
                if kind == CommandKind::SimpleQuery
                    && command.statements().iter().all(|statement| {
                        statement
                            .operations
                            .contains(&airlock_types::Operation::Prepare)
                    }) =>
            {
                details["verdict"] = json!("allow");
                details["review_at"] = json!("execute");
                let mask = decision
                    .mask
                    .as_ref()
                    .and_then(|obligation| live.mask_plan(obligation).ok());
                GateDecision {
                    verdict: GateVerdict::Forward,
                    details,
                    mask,
                    review: None,
                    version: live.version,
                    rate_limits: Vec::new(),
                    effects,
                    prepares: prepared_definitions(Dialect::Postgres, &command),
                    touches_cursors,
                    declares: Vec::new(),
                }
            }
            Verdict::Review {
                rule,
                approvers,
                wait,
                require_mfa,
                min_approvals,
            } => {
                details["rule"] = json!(rule);
                // The review shows, and its approval binds, what will run:
                // an SQL EXECUTE is shown with the body it executes.
                let mut shown = text.to_string();
                for effect in &effects {
                    if let SessionEffect::Execute(name) = effect {
                        let body = prepared
                            .statements
                            .get(name)
                            .map(|(_, body)| body.as_ref())
                            .unwrap_or("(unknown)");
                        shown.push_str(&format!("\n-- EXECUTE {name} runs: {body}"));
                    }
                }
                // The review shows the statement masked as its results would be.
                let statement = match decision
                    .mask
                    .as_ref()
                    .and_then(|obligation| live.mask_plan(obligation).ok())
                {
                    Some(plan) => plan
                        .mask_text(&shown, &mut airlock_mask::MaskStats::new())
                        .into_owned(),
                    None => shown.clone(),
                };
                let request = ReviewRequest {
                    rule: rule.clone(),
                    approvers: approvers.clone(),
                    wait: *wait,
                    require_mfa: *require_mfa,
                    min_approvals: *min_approvals,
                    policy_version: live.version,
                    statement,
                    fingerprint: fingerprint(&shown),
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
                refused.version = live.version;
                refused.rate_limits = decision.rate_limits.clone();
                refused.effects = effects;
                refused.prepares = prepared_definitions(Dialect::Postgres, &command);
                refused.touches_cursors = touches_cursors;
                refused
            }
            Verdict::Allow => {
                if kind != CommandKind::Parse {
                    if let Some(refusal) =
                        self.rate_limited(&decision.rate_limits, decision.policy_version)
                    {
                        details["verdict"] = json!("rate_limited");
                        return GateDecision::refuse("53400", refusal, details);
                    }
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
                let prepares = if mentions(text, b"prepare") {
                    prepared_definitions(Dialect::Postgres, &command)
                } else {
                    Vec::new()
                };
                GateDecision {
                    verdict: GateVerdict::Forward,
                    details,
                    mask,
                    review: None,
                    version: live.version,
                    rate_limits: if kind == CommandKind::Parse {
                        decision.rate_limits.clone()
                    } else {
                        Vec::new()
                    },
                    declares: if effects
                        .iter()
                        .any(|effect| matches!(effect, SessionEffect::Declare(_)))
                    {
                        declared_cursors(&command)
                    } else {
                        Vec::new()
                    },
                    effects,
                    prepares,
                    touches_cursors,
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

    /// Consumes the rate limits of one execution of a parsed statement;
    /// the refusal when one is exceeded.
    pub fn admit(&self, limits: &[RateLimitObligation], version: i64) -> Option<GateDecision> {
        self.rate_limited(limits, u64::try_from(version).unwrap_or(0))
            .map(|refusal| {
                GateDecision::refuse("53400", refusal, json!({"verdict": "rate_limited"}))
            })
    }

    /// The review of one execution of a parsed statement held for review:
    /// the approver sees, and the approval binds, the statement with the
    /// values bound to it.
    pub fn review_execution(
        &self,
        template: &ReviewRequest,
        text: &str,
        parameters: &[Option<String>],
        mask: Option<&MaskPlan>,
    ) -> GateDecision {
        let mut shown = text.to_string();
        if !parameters.is_empty() {
            let values: Vec<String> = parameters
                .iter()
                .enumerate()
                .map(|(index, value)| match value {
                    Some(value) => format!("${} = '{}'", index + 1, value.replace('\'', "''")),
                    None => format!("${} = NULL", index + 1),
                })
                .collect();
            shown.push_str(&format!("\n-- with {}", values.join(", ")));
        }
        let mut request = template.clone();
        request.fingerprint = fingerprint(&shown);
        request.statement = match mask {
            Some(plan) => plan
                .mask_text(&shown, &mut airlock_mask::MaskStats::new())
                .into_owned(),
            None => shown,
        };
        let mut decision = GateDecision::refuse(
            "42501",
            "review required".into(),
            template.classification.clone(),
        );
        decision.review = Some(request);
        decision.version = template.policy_version;
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
                    "rate limit exceeded by rule \"{}\" (policy v{version}): at most {} commands per minute for {} on {}; retry in {}",
                    limit.rule, limit.per_minute, self.identity.name, self.connection.name, retry_hint(retry.seconds)
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_hints_show_a_real_time() {
        assert_eq!(super::retry_hint(0.0001), "1 ms");
        assert_eq!(super::retry_hint(0.04), "40 ms");
        assert_eq!(super::retry_hint(0.0999), "100 ms");
        assert_eq!(super::retry_hint(2.41), "2.5 s");
    }
}
