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
    let mut push = |condition: String, held: Option<bool>| {
        if let Some(held) = held {
            conditions.push(ConditionResult { condition, held });
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
    push(
        format!(
            "identity.name matches {}",
            c.identity_name.as_ref().map_or("", |p| p.text.as_str())
        ),
        decide::identity_name_ok(c, input),
    );
    push(
        format!(
            "identity.kind in [{}]",
            c.identity_kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        decide::identity_kind_ok(c, input),
    );
    push(
        format!("identity.groups any of {:?}", c.identity_groups),
        decide::identity_groups_ok(c, input),
    );
    push(
        format!(
            "connection.name matches {}",
            c.connection_name.as_ref().map_or("", |p| p.text.as_str())
        ),
        decide::connection_name_ok(c, input),
    );
    push(
        format!("connection.tags include {:?}", c.connection_tags),
        decide::connection_tags_ok(c, input),
    );
    push(
        format!(
            "statements between {:?} and {:?}",
            c.statements_min, c.statements_max
        ),
        decide::statements_ok(c, count),
    );
    push("time window open".to_string(), decide::time_ok(c, input));
    let any = |check: &dyn Fn(&StatementClass) -> Option<bool>| -> Option<bool> {
        let results: Vec<Option<bool>> = statements.iter().map(check).collect();
        if results.iter().all(Option::is_none) {
            None
        } else {
            Some(results.contains(&Some(true)))
        }
    };
    push(
        format!(
            "access in [{}]",
            c.access
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        any(&|s| decide::access_ok(c, s)),
    );
    push(
        format!(
            "operations {quantifier} [{}]",
            c.operations
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        any(&|s| decide::operations_ok(c, s, cover_all)),
    );
    push(
        format!("tables {quantifier} [{}]", names(&c.tables)),
        any(&|s| decide::tables_ok(c, s, cover_all)),
    );
    push(
        format!("tables_written {quantifier} [{}]", names(&c.tables_written)),
        any(&|s| decide::tables_written_ok(c, s, cover_all)),
    );
    push(
        format!("functions {quantifier} [{}]", names(&c.functions)),
        any(&|s| decide::functions_ok(c, s, cover_all)),
    );
    push(
        format!("unknown_functions is {:?}", c.unknown_functions),
        any(&|s| decide::unknown_functions_ok(c, s)),
    );
    push(
        format!("has_where is {:?}", c.has_where),
        any(&|s| decide::has_where_ok(c, s)),
    );
    push(
        format!("complete is {:?}", c.complete),
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
    /// A human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let decision = &self.decision;
        let _ = writeln!(
            out,
            "decision: {} (policy v{}, {})",
            decision.verdict.name(),
            decision.policy_version,
            self.policy_source
        );
        if let Some(message) = decision.client_message() {
            let _ = writeln!(out, "  {message}");
        }
        for statement in &self.statements {
            let class = &statement.classification;
            let operations: Vec<&str> = class.operations.iter().map(|o| o.as_str()).collect();
            let _ = writeln!(
                out,
                "statement {}: {} [{}] access {} complete {} -> {}",
                statement.index + 1,
                operations.join(", "),
                class.tables_written.join(", "),
                class.effective_access(),
                class.complete,
                statement.verdict.name()
            );
            if !class.tables_read.is_empty() {
                let _ = writeln!(out, "  reads: {}", class.tables_read.join(", "));
            }
            if !class.functions.is_empty() {
                let _ = writeln!(out, "  functions: {}", class.functions.join(", "));
            }
            if !class.unknown_functions.is_empty() {
                let _ = writeln!(
                    out,
                    "  unknown functions: {}",
                    class.unknown_functions.join(", ")
                );
            }
            if let Some(has_where) = class.has_where {
                let _ = writeln!(out, "  has_where: {has_where}");
            }
            let _ = writeln!(
                out,
                "  matched rules: {}",
                statement.matched_rules.join(", ")
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
            for condition in &rule.conditions {
                let _ = writeln!(
                    out,
                    "  {} {}",
                    if condition.held { "✓" } else { "✗" },
                    condition.condition
                );
            }
        }
        if let Some(mask) = &decision.mask {
            let _ = writeln!(
                out,
                "mask: detectors [{}] columns [{}] style {:?}",
                mask.detectors.join(", "),
                mask.columns.join(", "),
                mask.style
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
