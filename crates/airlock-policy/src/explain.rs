//! Explain: why a decision came out as it did, as a serializable report with
//! a human text rendering.
//!
//! It owns presentation only: the decision itself comes from
//! [`crate::decide`], and every condition is evaluated by the same functions
//! `decide` uses, so an explanation cannot disagree with the decision.

use crate::decide::{self, evaluate, Decision, DecisionInput, Trace, Verdict};
use crate::policy::{Policy, Rule, RuleAction};
use airlock_types::StatementClass;
use serde::Serialize;
use std::fmt::Write as _;

/// One condition of a rule and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionResult {
    /// The condition, as a short text (`identity.kind in [agent]`).
    pub condition: String,
    /// The condition in words, for people (`identity kind is agent`); not
    /// part of the JSON report, which keeps `condition` stable for scripts.
    #[serde(skip)]
    pub text: String,
    /// Whether it held (for statement conditions: for at least one
    /// statement).
    pub held: bool,
}

/// One rule's part in the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleExplanation {
    /// Rule name.
    pub name: String,
    /// Line in the policy file.
    pub line: u64,
    /// `allow`, `deny`, `review`, or `obligation`.
    pub action: String,
    /// Whether it matched at least one statement.
    pub matched: bool,
    /// Each condition and whether it held.
    pub conditions: Vec<ConditionResult>,
}

/// One statement: its classification, verdict and matching rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementExplanation {
    /// Position in the command (0-based).
    pub index: usize,
    /// What the classifier found.
    pub classification: StatementClass,
    /// This statement's own verdict.
    pub verdict: Verdict,
    /// Rules that matched it.
    pub matched_rules: Vec<String>,
}

/// The full report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The policy file name.
    pub policy_source: String,
    /// The decision (with its obligations, including the mask plan).
    pub decision: Decision,
    /// Per statement.
    pub statements: Vec<StatementExplanation>,
    /// Per rule, in policy order.
    pub rules: Vec<RuleExplanation>,
}

/// Explains the decision for `input`.
pub fn explain(policy: &Policy, input: &DecisionInput<'_>) -> Explanation {
    let mut trace = Trace::default();
    let decision = evaluate(policy, input, Some(&mut trace));
    let statements = trace
        .statements
        .into_iter()
        .enumerate()
        .map(|(index, (verdict, matched_rules))| StatementExplanation {
            index,
            classification: input
                .command
                .statements
                .get(index)
                .cloned()
                .unwrap_or_default(),
            verdict,
            matched_rules,
        })
        .collect();
    let rules = policy
        .rules
        .iter()
        .map(|rule| explain_rule(rule, input, &decision))
        .collect();
    Explanation {
        policy_source: policy.source_name.clone(),
        decision,
        statements,
        rules,
    }
}

fn explain_rule(rule: &Rule, input: &DecisionInput<'_>, decision: &Decision) -> RuleExplanation {
    let c = &rule.conditions;
    let cover_all = matches!(rule.action, Some(RuleAction::Allow));
    let statements = &input.command.statements;
    let count = u32::try_from(statements.len()).unwrap_or(u32::MAX);
    let mut conditions = Vec::new();
    let mut push = |condition: String, text: String, held: Option<bool>| {
        if let Some(held) = held {
            conditions.push(ConditionResult {
                condition,
                text,
                held,
            });
        }
    };
    let names = |patterns: &[crate::policy::Pattern]| {
        patterns
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let quantifier = if cover_all { "all in" } else { "any in" };
    // People read "every operation is one of …" for an allow rule (it must
    // cover every statement's operations) and "an operation is one of …"
    // for the others (one is enough).
    let every = |article: &'static str| if cover_all { "every" } else { article };
    let identity_name = c.identity_name.as_ref().map_or("", |p| p.text.as_str());
    push(
        format!("identity.name matches {identity_name}"),
        format!("identity name matches {identity_name}"),
        decide::identity_name_ok(c, input),
    );
    let kinds: Vec<&str> = c.identity_kinds.iter().map(|k| k.as_str()).collect();
    push(
        format!("identity.kind in [{}]", kinds.join(", ")),
        format!("identity kind is {}", one_of(&kinds)),
        decide::identity_kind_ok(c, input),
    );
    let groups: Vec<&str> = c.identity_groups.iter().map(String::as_str).collect();
    push(
        format!("identity.groups any of {:?}", c.identity_groups),
        format!("identity is in group {}", one_of(&groups)),
        decide::identity_groups_ok(c, input),
    );
    let connection_name = c.connection_name.as_ref().map_or("", |p| p.text.as_str());
    push(
        format!("connection.name matches {connection_name}"),
        format!("connection name matches {connection_name}"),
        decide::connection_name_ok(c, input),
    );
    let tags: Vec<String> = c
        .connection_tags
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    push(
        format!("connection.tags include {:?}", c.connection_tags),
        format!("connection has tags {}", tags.join(", ")),
        decide::connection_tags_ok(c, input),
    );
    let statement_count = match (c.statements_min, c.statements_max) {
        (Some(min), Some(max)) => format!("between {min} and {max} statements"),
        (Some(min), None) => format!("at least {min} statements"),
        (None, Some(max)) => format!("at most {max} statements"),
        (None, None) => "any number of statements".to_string(),
    };
    push(
        format!(
            "statements between {:?} and {:?}",
            c.statements_min, c.statements_max
        ),
        statement_count,
        decide::statements_ok(c, count),
    );
    push(
        "time window open".to_string(),
        "inside the rule's time window".to_string(),
        decide::time_ok(c, input),
    );
    let any = |check: &dyn Fn(&StatementClass) -> Option<bool>| -> Option<bool> {
        let results: Vec<Option<bool>> = statements.iter().map(check).collect();
        if results.iter().all(Option::is_none) {
            None
        } else {
            Some(results.contains(&Some(true)))
        }
    };
    let access: Vec<&str> = c.access.iter().map(|a| a.as_str()).collect();
    push(
        format!("access in [{}]", access.join(", ")),
        format!("access is {}", one_of(&access)),
        any(&|s| decide::access_ok(c, s)),
    );
    let operations: Vec<&str> = c.operations.iter().map(|o| o.as_str()).collect();
    push(
        format!("operations {quantifier} [{}]", operations.join(", ")),
        format!("{} operation is {}", every("an"), one_of(&operations)),
        any(&|s| decide::operations_ok(c, s, cover_all)),
    );
    let pattern_names = |patterns: &[crate::policy::Pattern]| -> Vec<String> {
        patterns.iter().map(|p| p.text.clone()).collect()
    };
    let tables = pattern_names(&c.tables);
    push(
        format!("tables {quantifier} [{}]", names(&c.tables)),
        format!("{} table matches {}", every("a"), one_of(&tables)),
        any(&|s| decide::tables_ok(c, s, cover_all)),
    );
    let tables_written = pattern_names(&c.tables_written);
    push(
        format!("tables_written {quantifier} [{}]", names(&c.tables_written)),
        format!(
            "{} table written matches {}",
            every("a"),
            one_of(&tables_written)
        ),
        any(&|s| decide::tables_written_ok(c, s, cover_all)),
    );
    let functions = pattern_names(&c.functions);
    push(
        format!("functions {quantifier} [{}]", names(&c.functions)),
        format!(
            "{} function called matches {}",
            every("a"),
            one_of(&functions)
        ),
        any(&|s| decide::functions_ok(c, s, cover_all)),
    );
    push(
        format!("unknown_functions is {:?}", c.unknown_functions),
        match c.unknown_functions {
            Some(true) => "calls a function not known to be safe".to_string(),
            _ => "calls only functions known to be safe".to_string(),
        },
        any(&|s| decide::unknown_functions_ok(c, s)),
    );
    push(
        format!("has_where is {:?}", c.has_where),
        match c.has_where {
            Some(false) => "UPDATE or DELETE without a WHERE clause".to_string(),
            _ => "UPDATE or DELETE with a WHERE clause".to_string(),
        },
        any(&|s| decide::has_where_ok(c, s)),
    );
    push(
        format!("complete is {:?}", c.complete),
        match c.complete {
            Some(false) => "the statement could not be fully classified".to_string(),
            _ => "the statement was fully classified".to_string(),
        },
        any(&|s| decide::complete_ok(c, s)),
    );
    let action = rule
        .action
        .as_ref()
        .map_or("obligation", RuleAction::name)
        .to_string();
    RuleExplanation {
        name: rule.name.clone(),
        line: rule.line,
        action,
        matched: decision.matched_rules.iter().any(|m| m.name == rule.name),
        conditions,
    }
}

impl Explanation {
    /// A human-readable rendering: plain words, no Rust notation (the
    /// JSON report keeps the machine names).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let decision = &self.decision;
        // A policy read from a file has no store version (0): say so rather
        // than "v0", which reads like a version that was applied.
        let (origin, message_origin) = if decision.policy_version == 0 {
            (
                format!("file {}, not applied", self.policy_source),
                format!("file {}", self.policy_source),
            )
        } else {
            (
                format!(
                    "policy v{}, {}",
                    decision.policy_version, self.policy_source
                ),
                format!("policy v{}", decision.policy_version),
            )
        };
        let _ = writeln!(out, "decision: {} ({origin})", decision.verdict.name());
        if let Some(message) = decision.client_message() {
            let message = message.replace(
                &format!("policy v{}", decision.policy_version),
                &message_origin,
            );
            let _ = writeln!(out, "  {message}");
        }
        for statement in &self.statements {
            let class = &statement.classification;
            let operations: Vec<&str> = class.operations.iter().map(|o| o.as_str()).collect();
            let _ = writeln!(
                out,
                "statement {}: {} ({} access{}) -> {}",
                statement.index + 1,
                if operations.is_empty() {
                    "no known operation".to_string()
                } else {
                    operations.join(", ")
                },
                class.effective_access(),
                if class.complete {
                    ""
                } else {
                    ", not fully classified"
                },
                statement.verdict.name()
            );
            if !class.tables_read.is_empty() {
                let _ = writeln!(out, "  reads: {}", class.tables_read.join(", "));
            }
            if !class.tables_written.is_empty() {
                let _ = writeln!(out, "  writes: {}", class.tables_written.join(", "));
            }
            if !class.functions.is_empty() {
                let _ = writeln!(out, "  calls: {}", class.functions.join(", "));
            }
            if !class.unknown_functions.is_empty() {
                let _ = writeln!(
                    out,
                    "  functions not known to be safe: {}",
                    class.unknown_functions.join(", ")
                );
            }
            match class.has_where {
                Some(true) => {
                    let _ = writeln!(out, "  WHERE clause: yes");
                }
                Some(false) => {
                    let _ = writeln!(out, "  WHERE clause: none (every row)");
                }
                None => {}
            }
            let _ = writeln!(
                out,
                "  matched rules: {}",
                if statement.matched_rules.is_empty() {
                    "none (the default applies)".to_string()
                } else {
                    statement.matched_rules.join(", ")
                }
            );
        }
        for rule in &self.rules {
            let _ = writeln!(
                out,
                "rule \"{}\" (line {}, {}): {}",
                rule.name,
                rule.line,
                rule.action,
                if rule.matched { "matched" } else { "no match" }
            );
            if rule.conditions.is_empty() {
                let _ = writeln!(out, "  ✓ no conditions (matches everything)");
            }
            for condition in &rule.conditions {
                let _ = writeln!(
                    out,
                    "  {} {}",
                    if condition.held { "✓" } else { "✗" },
                    condition.text
                );
            }
        }
        if let Some(mask) = &decision.mask {
            let _ = writeln!(
                out,
                "mask: detectors {}; columns {}; style {}",
                list_or_none(&mask.detectors),
                list_or_none(&mask.columns),
                mask.style.name()
            );
        }
        for limit in &decision.rate_limits {
            let _ = writeln!(
                out,
                "rate limit: {} per minute (rule \"{}\")",
                limit.per_minute, limit.rule
            );
        }
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }
}

/// `a`, `a or b`, `a, b or c`; `(none)` when empty.
fn one_of<T: AsRef<str>>(items: &[T]) -> String {
    match items {
        [] => "(none)".to_string(),
        [only] => only.as_ref().to_string(),
        [rest @ .., last] => format!(
            "{} or {}",
            rest.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

/// `a, b`; `none` when empty.
fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}
