//! The one decision function: identity + connection + classified command →
//! [`Decision`].
//!
//! It owns the evaluation semantics, and is pure: same inputs, same
//! decision, no clock, no I/O.
//!
//! # Semantics
//! - A rule's *command-level* conditions (identity, connection, statement
//!   count, time window) are checked once per command; its *statement-level*
//!   conditions (access, operations, tables, functions, has_where, complete,
//!   http, kubernetes, mcp) per statement. A rule without statement-level
//!   conditions matches every statement of a command whose command-level
//!   conditions hold.
//! - A command of HTTP, Kubernetes or MCP is one request, evaluated as one
//!   statement. `access`, `complete`, `identity`, `connection` and `time`
//!   mean the same for every protocol. A protocol's own conditions never
//!   hold for a command of another protocol: `http` holds for HTTP requests
//!   only, `kubernetes` for Kubernetes requests, `mcp` for MCP calls, and
//!   the SQL conditions (`operations`, `tables`, `tables_written`,
//!   `functions`, `unknown_functions`, `has_where`, `statements`) for SQL
//!   only.
//! - List conditions read differently by action, so that an allow rule can
//!   never let through more than it names:
//!   for `allow` rules, `operations`, `tables`, `tables_written` and
//!   `functions` must *cover* the statement (every operation, table or
//!   function of the statement is listed, and there is at least one); for
//!   `deny` and `review` rules and for obligations, touching *any* listed
//!   item is enough.
//! - Per statement, every matching rule counts: deny beats review beats
//!   allow; no matching allow/deny/review rule → the policy's `default`.
//! - An incomplete statement (`complete: false`, or operation `unknown`) is
//!   only allowed (or sent to review) by a rule that explicitly matches it
//!   (`complete: false` or `operations: [unknown]`); otherwise it is denied,
//!   whatever the default. Deny rules apply to it as usual.
//! - The command's verdict is the most restrictive of its statements'
//!   verdicts: one denied statement denies the whole command. An empty
//!   command is denied.
//! - Obligations (mask, rate limit) come from every rule that matches any
//!   statement; masks are merged (union of detectors and columns, most hiding
//!   style).

use crate::policy::{Conditions, MaskObligation, Policy, Rule, RuleAction};
use airlock_types::{
    Access, Command, CommandKind, ConnectionInfo, HttpRequest, Identity, KubernetesRequest,
    KubernetesVerb, McpCall, Operation, StatementClass,
};
use serde::Serialize;
use std::time::Duration;

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// Who is asking.
    pub identity: &'a Identity,
    /// Where to.
    pub connection: &'a ConnectionInfo,
    /// What they asked for, classified.
    pub command: &'a Command,
    /// Now, in Unix seconds (UTC), for time windows.
    pub now_unix: i64,
}

/// The outcome for a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Run it (with the obligations of the decision).
    Allow,
    /// Refuse it.
    Deny {
        /// The deny rule, or `None` for the default or an incomplete
        /// classification.
        rule: Option<String>,
        /// Why, for the client.
        message: String,
    },
    /// Hold it for a human.
    Review {
        /// The (first) review rule.
        rule: String,
        /// Who may approve (union over matching review rules).
        approvers: Vec<String>,
        /// How long to hold the client (longest over matching rules).
        wait: Option<Duration>,
        /// Approvers need MFA (if any matching rule says so).
        require_mfa: bool,
        /// Approvals needed (largest over matching rules).
        min_approvals: u32,
    },
}

impl Verdict {
    fn rank(&self) -> u8 {
        match self {
            Self::Allow => 0,
            Self::Review { .. } => 1,
            Self::Deny { .. } => 2,
        }
    }

    /// `allow`, `deny` or `review`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny { .. } => "deny",
            Self::Review { .. } => "review",
        }
    }
}

/// What kind of part a matching rule played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedAction {
    /// An allow rule.
    Allow,
    /// A deny rule.
    Deny,
    /// A review rule.
    Review,
    /// A rule with only obligations (mask, rate limit).
    Obligation,
}

/// A rule that matched at least one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedRule {
    /// Rule name.
    pub name: String,
    /// Its action.
    pub action: MatchedAction,
}

/// A rate limit that applies to the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimitObligation {
    /// The rule that sets it (part of the limiter key).
    pub rule: String,
    /// Commands per minute.
    pub per_minute: u32,
}

/// The decision for one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allow, deny or review.
    pub verdict: Verdict,
    /// Every rule that matched, in policy order.
    pub matched_rules: Vec<MatchedRule>,
    /// What to mask in results, if anything.
    pub mask: Option<MaskObligation>,
    /// Rate limits to enforce.
    pub rate_limits: Vec<RateLimitObligation>,
    /// The policy revision that decided.
    pub policy_version: u64,
}

impl Decision {
    /// The error text a client sees for a deny or review, e.g.
    /// `blocked by rule "no-ddl-in-prod" (policy v7): DROP is not allowed on
    /// prod-pg`. `None` for allow.
    pub fn client_message(&self) -> Option<String> {
        let version = self.policy_version;
        match &self.verdict {
            Verdict::Allow => None,
            Verdict::Deny {
                rule: Some(rule),
                message,
            } => Some(format!(
                "blocked by rule \"{rule}\" (policy v{version}): {message}"
            )),
            Verdict::Deny {
                rule: None,
                message,
            } => Some(format!("blocked by policy v{version}: {message}")),
            Verdict::Review { rule, .. } => Some(format!(
                "review required by rule \"{rule}\" (policy v{version})"
            )),
        }
    }

    /// The client text once a review exists: `review r-3f9c required by rule
    /// "agent-writes" (policy v7); approve with: airlock review approve
    /// r-3f9c`. `None` unless the verdict is review.
    pub fn review_message(&self, review_id: &str) -> Option<String> {
        match &self.verdict {
            Verdict::Review { rule, .. } => Some(format!(
                "review {review_id} required by rule \"{rule}\" (policy v{}); approve with: airlock review approve {review_id}",
                self.policy_version
            )),
            _ => None,
        }
    }
}

/// Decides a command.
pub fn decide(policy: &Policy, input: &DecisionInput<'_>) -> Decision {
    evaluate(policy, input, None)
}

/// Per-statement detail, collected only when explaining.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    /// For each statement: its verdict and the rules that matched it.
    pub(crate) statements: Vec<(Verdict, Vec<String>)>,
}

fn synthetic_unknown() -> StatementClass {
    StatementClass {
        operations: vec![Operation::Unknown],
        access: Some(airlock_types::Access::Write),
        complete: false,
        ..StatementClass::default()
    }
}

/// What statement-level conditions are checked against: one SQL
/// statement, or the one request of a command of another protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit<'a> {
    /// A SQL statement.
    Statement(&'a StatementClass),
    /// An HTTP request.
    Http(&'a HttpRequest),
    /// A Kubernetes request.
    Kubernetes(&'a KubernetesRequest),
    /// An MCP call.
    Mcp(&'a McpCall),
}

impl<'a> Unit<'a> {
    /// The units of `command`: its statements, or its one request. `empty`
    /// stands in for the statements of an empty SQL command.
    pub(crate) fn of(command: &'a Command, empty: &'a StatementClass) -> Vec<Unit<'a>> {
        match &command.kind {
            CommandKind::Sql(statements) if statements.is_empty() => vec![Unit::Statement(empty)],
            CommandKind::Sql(statements) => statements.iter().map(Unit::Statement).collect(),
            CommandKind::Http(request) => vec![Unit::Http(request)],
            CommandKind::Kubernetes(request) => vec![Unit::Kubernetes(request)],
            CommandKind::Mcp(call) => vec![Unit::Mcp(call)],
        }
    }

    fn statement(self) -> Option<&'a StatementClass> {
        match self {
            Self::Statement(statement) => Some(statement),
            _ => None,
        }
    }

    /// The access, never `Read` unless complete.
    pub(crate) fn effective_access(self) -> Access {
        match self {
            Self::Statement(statement) => statement.effective_access(),
            Self::Http(request) => request.effective_access(),
            Self::Kubernetes(request) => request.effective_access(),
            Self::Mcp(call) => call.effective_access(),
        }
    }

    /// Classified with certainty (for SQL: and no `unknown` operation).
    pub(crate) fn complete(self) -> bool {
        match self {
            Self::Statement(statement) => {
                statement.complete && !statement.operations.contains(&Operation::Unknown)
            }
            Self::Http(request) => request.complete(),
            Self::Kubernetes(request) => request.complete,
            Self::Mcp(call) => call.complete(),
        }
    }
}

pub(crate) fn evaluate(
    policy: &Policy,
    input: &DecisionInput<'_>,
    mut trace: Option<&mut Trace>,
) -> Decision {
    let command = input.command;
    let empty_statement = synthetic_unknown();
    let units = Unit::of(command, &empty_statement);
    let statement_count = match &command.kind {
        CommandKind::Sql(_) => Some(u32::try_from(units.len()).unwrap_or(u32::MAX)),
        _ => None,
    };
    let applicable: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(|rule| command_matches(&rule.conditions, input, statement_count))
        .collect();

    let mut matched = vec![false; applicable.len()];
    let mut verdict = Verdict::Allow;
    for &statement in &units {
        let mut statement_rules = Vec::new();
        let statement_verdict = decide_statement(
            policy,
            input,
            statement,
            &applicable,
            &mut matched,
            trace.is_some().then_some(&mut statement_rules),
        );
        if let Some(trace) = trace.as_deref_mut() {
            trace
                .statements
                .push((statement_verdict.clone(), statement_rules));
        }
        verdict = combine(verdict, statement_verdict);
    }
    let (matched_rules, mask, rate_limits) = obligations(&applicable, &matched);
    Decision {
        verdict,
        matched_rules,
        mask,
        rate_limits,
        policy_version: policy.version,
    }
}

/// The verdict on one statement (or request) under the rules that apply to
/// the command; marks the rules that match it in `matched`, and names them
/// in `traced` when explaining.
fn decide_statement(
    policy: &Policy,
    input: &DecisionInput<'_>,
    statement: Unit<'_>,
    applicable: &[&Rule],
    matched: &mut [bool],
    mut traced: Option<&mut Vec<String>>,
) -> Verdict {
    let incomplete = !statement.complete();
    let mut deny: Option<&Rule> = None;
    let mut reviews: Vec<&Rule> = Vec::new();
    let mut allowed = false;
    for (index, rule) in applicable.iter().enumerate() {
        let cover_all = matches!(rule.action, Some(RuleAction::Allow));
        if !statement_matches(&rule.conditions, statement, cover_all) {
            continue;
        }
        if let Some(flag) = matched.get_mut(index) {
            *flag = true;
        }
        if let Some(traced) = traced.as_deref_mut() {
            traced.push(rule.name.clone());
        }
        let counts = !incomplete || rule.explicitly_matches_incomplete();
        match &rule.action {
            Some(RuleAction::Deny { .. }) => {
                deny.get_or_insert(rule);
            }
            Some(RuleAction::Review(_)) if counts => reviews.push(rule),
            Some(RuleAction::Allow) if counts => allowed = true,
            _ => {}
        }
    }
    if let Some(rule) = deny {
        let template = match &rule.action {
            Some(RuleAction::Deny { message }) => message.as_deref(),
            _ => None,
        };
        Verdict::Deny {
            rule: Some(rule.name.clone()),
            message: render_message(template, statement, input.connection),
        }
    } else if !reviews.is_empty() {
        merge_reviews(&reviews)
    } else if allowed {
        Verdict::Allow
    } else if incomplete {
        Verdict::Deny {
            rule: None,
            message: format!(
                "the statement could not be classified with certainty, and no rule allows unclassified statements on {}",
                input.connection.name
            ),
        }
    } else if policy.default == crate::policy::DefaultAction::Allow {
        Verdict::Allow
    } else {
        Verdict::Deny {
            rule: None,
            message: format!(
                "no rule allows {} on {}{}",
                operation_label(statement),
                input.connection.name,
                unknown_functions_note(statement)
            ),
        }
    }
}

/// What the matched rules oblige: their names and actions, the merged mask
/// obligation, the rate limits.
fn obligations(
    applicable: &[&Rule],
    matched: &[bool],
) -> (
    Vec<MatchedRule>,
    Option<MaskObligation>,
    Vec<RateLimitObligation>,
) {
    let mut matched_rules = Vec::new();
    let mut mask: Option<MaskObligation> = None;
    let mut rate_limits = Vec::new();
    for (rule, was_matched) in applicable.iter().zip(matched) {
        if !was_matched {
            continue;
        }
        let action = match &rule.action {
            Some(RuleAction::Allow) => MatchedAction::Allow,
            Some(RuleAction::Deny { .. }) => MatchedAction::Deny,
            Some(RuleAction::Review(_)) => MatchedAction::Review,
            None => MatchedAction::Obligation,
        };
        matched_rules.push(MatchedRule {
            name: rule.name.clone(),
            action,
        });
        if let Some(rule_mask) = &rule.mask {
            match &mut mask {
                Some(existing) => existing.merge(rule_mask),
                None => mask = Some(rule_mask.clone()),
            }
        }
        if let Some(per_minute) = rule.rate_limit {
            rate_limits.push(RateLimitObligation {
                rule: rule.name.clone(),
                per_minute,
            });
        }
    }
    (matched_rules, mask, rate_limits)
}

/// The more restrictive verdict; reviews merge.
fn combine(current: Verdict, next: Verdict) -> Verdict {
    match (&current, &next) {
        (
            Verdict::Review {
                rule,
                approvers,
                wait,
                require_mfa,
                min_approvals,
            },
            Verdict::Review {
                approvers: more_approvers,
                wait: other_wait,
                require_mfa: other_mfa,
                min_approvals: other_min,
                ..
            },
        ) => {
            let mut all = approvers.clone();
            for approver in more_approvers {
                if !all.contains(approver) {
                    all.push(approver.clone());
                }
            }
            Verdict::Review {
                rule: rule.clone(),
                approvers: all,
                wait: (*wait).max(*other_wait),
                require_mfa: *require_mfa || *other_mfa,
                min_approvals: (*min_approvals).max(*other_min),
            }
        }
        _ if next.rank() > current.rank() => next,
        _ => current,
    }
}

fn merge_reviews(rules: &[&Rule]) -> Verdict {
    let mut merged: Option<Verdict> = None;
    for rule in rules {
        if let Some(RuleAction::Review(spec)) = &rule.action {
            let verdict = Verdict::Review {
                rule: rule.name.clone(),
                approvers: spec.approvers.clone(),
                wait: spec.wait,
                require_mfa: spec.require_mfa,
                min_approvals: spec.min_approvals,
            };
            merged = Some(match merged {
                Some(existing) => combine(existing, verdict),
                None => verdict,
            });
        }
    }
    merged.unwrap_or(Verdict::Allow)
}

/// Why a statement that only reads counts as more: the unknown functions
/// it calls (`; it calls f(), which the classifier does not know, so it
/// counts as a write`), or nothing.
fn unknown_functions_note(unit: Unit<'_>) -> String {
    let Some(statement) = unit.statement() else {
        return String::new();
    };
    if statement.unknown_functions.is_empty() {
        return String::new();
    }
    let mut names: Vec<&str> = statement
        .unknown_functions
        .iter()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names.dedup();
    let shown: Vec<String> = names
        .iter()
        .take(5)
        .map(|name| format!("{name}()"))
        .collect();
    let more = names.len().saturating_sub(5);
    format!(
        "; it calls {}{}, which the classifier does not know, so it counts as a write \
         (allow them with a rule on `functions` or `unknown_functions`)",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// `DROP`, `UPDATE, DELETE`: the statement's operations for messages;
/// `POST /v1/invoices` for HTTP, `DELETE secrets` or `EXEC pods/exec` for
/// Kubernetes, `tool merge_pull_request` or the method for MCP.
fn operation_label(unit: Unit<'_>) -> String {
    let statement = match unit {
        Unit::Statement(statement) => statement,
        Unit::Http(request) => return format!("{} {}", request.method, request.path),
        Unit::Kubernetes(request) => {
            return format!(
                "{} {}",
                request.verb.as_str().to_ascii_uppercase(),
                request.resource_path()
            )
        }
        Unit::Mcp(call) => {
            return match &call.tool {
                Some(tool) => format!("tool {tool}"),
                None => call.method.clone(),
            }
        }
    };
    let labels: Vec<String> = statement
        .operations
        .iter()
        .map(|operation| operation.as_str().replace('_', " ").to_ascii_uppercase())
        .collect();
    if labels.is_empty() {
        "UNKNOWN".to_string()
    } else {
        labels.join(", ")
    }
}

fn render_message(
    template: Option<&str>,
    statement: Unit<'_>,
    connection: &ConnectionInfo,
) -> String {
    let operation = operation_label(statement);
    match template {
        Some(template) => template
            .replace("{connection}", &connection.name)
            .replace("{operation}", &operation),
        None => format!("{operation} is not allowed on {}", connection.name),
    }
}

// ----- conditions --------------------------------------------------------
//
// Each condition has one function returning `None` when the rule does not
// set it; `decide` and `explain` both use these, so they cannot drift apart.

pub(crate) fn identity_name_ok(c: &Conditions, input: &DecisionInput<'_>) -> Option<bool> {
    c.identity_name
        .as_ref()
        .map(|pattern| pattern.matches(&input.identity.name))
}

pub(crate) fn identity_kind_ok(c: &Conditions, input: &DecisionInput<'_>) -> Option<bool> {
    (!c.identity_kinds.is_empty()).then(|| c.identity_kinds.contains(&input.identity.kind))
}

pub(crate) fn identity_groups_ok(c: &Conditions, input: &DecisionInput<'_>) -> Option<bool> {
    (!c.identity_groups.is_empty()).then(|| {
        c.identity_groups
            .iter()
            .any(|group| input.identity.groups.contains(group))
    })
}

pub(crate) fn connection_name_ok(c: &Conditions, input: &DecisionInput<'_>) -> Option<bool> {
    c.connection_name
        .as_ref()
        .map(|pattern| pattern.matches(&input.connection.name))
}

pub(crate) fn connection_tags_ok(c: &Conditions, input: &DecisionInput<'_>) -> Option<bool> {
    (!c.connection_tags.is_empty()).then(|| {
        c.connection_tags
            .iter()
            .all(|(key, value)| input.connection.tags.get(key) == Some(value))
    })
}

/// `count` is `None` for a command that is not SQL (the statement count
/// is a SQL condition).
pub(crate) fn statements_ok(c: &Conditions, count: Option<u32>) -> Option<bool> {
    if c.statements_max.is_none() && c.statements_min.is_none() {
        return None;
    }
    let Some(count) = count else {
        return Some(false);
    };
    Some(
        c.statements_max.is_none_or(|max| count <= max)
            && c.statements_min.is_none_or(|min| count >= min),
    )
}

pub(crate) fn time_ok(c: &Conditions, input: &DecisionInput<'_>) -> Option<bool> {
    c.time.map(|window| window.contains(input.now_unix))
}

fn command_matches(c: &Conditions, input: &DecisionInput<'_>, count: Option<u32>) -> bool {
    [
        identity_name_ok(c, input),
        identity_kind_ok(c, input),
        identity_groups_ok(c, input),
        connection_name_ok(c, input),
        connection_tags_ok(c, input),
        statements_ok(c, count),
        time_ok(c, input),
    ]
    .into_iter()
    .all(|result| result != Some(false))
}

/// `any`: at least one value matches; `cover_all`: there is at least one
/// value and every value matches.
fn list_ok<T>(values: &[T], cover_all: bool, mut matches: impl FnMut(&T) -> bool) -> bool {
    if cover_all {
        !values.is_empty() && values.iter().all(&mut matches)
    } else {
        values.iter().any(matches)
    }
}

pub(crate) fn access_ok(c: &Conditions, unit: Unit<'_>) -> Option<bool> {
    (!c.access.is_empty()).then(|| c.access.contains(&unit.effective_access()))
}

/// A SQL-only condition: `check` on a statement; never holds for a request
/// of another protocol.
fn sql_only(unit: Unit<'_>, check: impl FnOnce(&StatementClass) -> bool) -> bool {
    unit.statement().is_some_and(check)
}

pub(crate) fn operations_ok(c: &Conditions, unit: Unit<'_>, cover_all: bool) -> Option<bool> {
    (!c.operations.is_empty()).then(|| {
        sql_only(unit, |s| {
            list_ok(&s.operations, cover_all, |op| c.operations.contains(op))
        })
    })
}

pub(crate) fn tables_ok(c: &Conditions, unit: Unit<'_>, cover_all: bool) -> Option<bool> {
    (!c.tables.is_empty()).then(|| {
        sql_only(unit, |s| {
            let all: Vec<&String> = s.tables_read.iter().chain(&s.tables_written).collect();
            list_ok(&all, cover_all, |table| {
                c.tables.iter().any(|pattern| pattern.matches(table))
            })
        })
    })
}

pub(crate) fn tables_written_ok(c: &Conditions, unit: Unit<'_>, cover_all: bool) -> Option<bool> {
    (!c.tables_written.is_empty()).then(|| {
        sql_only(unit, |s| {
            list_ok(&s.tables_written, cover_all, |table| {
                c.tables_written
                    .iter()
                    .any(|pattern| pattern.matches(table))
            })
        })
    })
}

pub(crate) fn functions_ok(c: &Conditions, unit: Unit<'_>, cover_all: bool) -> Option<bool> {
    (!c.functions.is_empty()).then(|| {
        sql_only(unit, |s| {
            list_ok(&s.functions, cover_all, |function| {
                c.functions.iter().any(|pattern| pattern.matches(function))
            })
        })
    })
}

pub(crate) fn unknown_functions_ok(c: &Conditions, unit: Unit<'_>) -> Option<bool> {
    c.unknown_functions.map(|wanted| {
        sql_only(unit, |s| {
            let present = !s.unknown_functions.is_empty();
            wanted == present
        })
    })
}

pub(crate) fn has_where_ok(c: &Conditions, unit: Unit<'_>) -> Option<bool> {
    c.has_where
        .map(|wanted| sql_only(unit, |s| s.has_where == Some(wanted)))
}

pub(crate) fn complete_ok(c: &Conditions, unit: Unit<'_>) -> Option<bool> {
    c.complete.map(|wanted| wanted == unit.complete())
}

/// Any pattern matches `value`; true when there are no patterns.
fn any_pattern(patterns: &[crate::policy::Pattern], value: Option<&str>) -> bool {
    patterns.is_empty() || value.is_some_and(|value| patterns.iter().any(|p| p.matches(value)))
}

pub(crate) fn http_ok(c: &Conditions, unit: Unit<'_>) -> Option<bool> {
    c.http.as_ref().map(|http| match unit {
        Unit::Http(request) => {
            (http.methods.is_empty() || http.methods.contains(&request.method))
                && any_pattern(&http.paths, Some(&request.path))
        }
        _ => false,
    })
}

/// `kubernetes.ports`: port-forwards only; an allow rule (`cover_all`)
/// needs every port asked listed (none asked yet: kubectl's tunnel, whose
/// connections are each decided with their port), any other rule any.
pub(crate) fn ports_ok(ports: &[u16], request: &KubernetesRequest, cover_all: bool) -> bool {
    if ports.is_empty() {
        return true;
    }
    if request.verb != KubernetesVerb::PortForward {
        return false;
    }
    if cover_all {
        request.ports.iter().all(|port| ports.contains(port))
    } else {
        request.ports.iter().any(|port| ports.contains(port))
    }
}

pub(crate) fn kubernetes_ok(c: &Conditions, unit: Unit<'_>, cover_all: bool) -> Option<bool> {
    c.kubernetes.as_ref().map(|k| match unit {
        Unit::Kubernetes(request) => {
            (k.verbs.is_empty() || k.verbs.contains(&request.verb))
                && ports_ok(&k.ports, request, cover_all)
                && any_pattern(&k.groups, Some(&request.group))
                && any_pattern(&k.resources, Some(&request.resource))
                && any_pattern(&k.subresources, request.subresource.as_deref())
                && any_pattern(&k.namespaces, request.namespace.as_deref())
                && any_pattern(&k.names, request.name.as_deref())
        }
        _ => false,
    })
}

/// An argument's value as a glob sees it: a string as it is, a number or
/// boolean as written in JSON; `None` for objects, arrays and null.
fn argument_text(value: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        serde_json::Value::String(text) => Some(std::borrow::Cow::Borrowed(text)),
        serde_json::Value::Number(number) => Some(std::borrow::Cow::Owned(number.to_string())),
        serde_json::Value::Bool(flag) => Some(std::borrow::Cow::Owned(flag.to_string())),
        _ => None,
    }
}

pub(crate) fn mcp_argument_ok(
    call: &McpCall,
    name: &str,
    pattern: &crate::policy::Pattern,
) -> bool {
    call.arguments
        .get(name)
        .and_then(argument_text)
        .is_some_and(|text| pattern.matches(&text))
}

pub(crate) fn mcp_ok(c: &Conditions, unit: Unit<'_>) -> Option<bool> {
    c.mcp.as_ref().map(|mcp| match unit {
        Unit::Mcp(call) => {
            any_pattern(&mcp.tools, call.tool.as_deref())
                && any_pattern(&mcp.methods, Some(&call.method))
                && mcp
                    .arguments
                    .iter()
                    .all(|(name, pattern)| mcp_argument_ok(call, name, pattern))
        }
        _ => false,
    })
}

pub(crate) fn statement_matches(c: &Conditions, unit: Unit<'_>, cover_all: bool) -> bool {
    [
        access_ok(c, unit),
        operations_ok(c, unit, cover_all),
        tables_ok(c, unit, cover_all),
        tables_written_ok(c, unit, cover_all),
        functions_ok(c, unit, cover_all),
        unknown_functions_ok(c, unit),
        has_where_ok(c, unit),
        complete_ok(c, unit),
        http_ok(c, unit),
        kubernetes_ok(c, unit, cover_all),
        mcp_ok(c, unit),
    ]
    .into_iter()
    .all(|result| result != Some(false))
}

/// What the policy says about a request for just-in-time access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum AccessDecision {
    /// No rule lets this identity ask for this, or for this long.
    Denied { message: String },
    /// Granted at once by an `auto_approve` rule.
    AutoApproved { rule: String },
    /// Needs people to approve.
    NeedsApproval {
        rule: String,
        approvers: Vec<String>,
        min_approvals: u32,
        require_mfa: bool,
    },
}

fn access_rule_matches(rule: &crate::policy::AccessRule, input: &DecisionInput<'_>) -> bool {
    let c = &rule.conditions;
    [
        identity_name_ok(c, input),
        identity_kind_ok(c, input),
        identity_groups_ok(c, input),
        connection_name_ok(c, input),
        connection_tags_ok(c, input),
        time_ok(c, input),
    ]
    .into_iter()
    .all(|result| result != Some(false))
}

/// Decides a request for `duration` of access to `connection`. Among the
/// matching rules that allow the duration, an `auto_approve` one wins;
/// otherwise the first one names the approvers.
pub fn decide_access(
    policy: &Policy,
    identity: &Identity,
    connection: &ConnectionInfo,
    duration: Duration,
    now_unix: i64,
) -> AccessDecision {
    let command = Command::default();
    let input = DecisionInput {
        identity,
        connection,
        command: &command,
        now_unix,
    };
    let matching: Vec<&crate::policy::AccessRule> = policy
        .access
        .iter()
        .filter(|rule| !rule.max_duration.is_zero() && access_rule_matches(rule, &input))
        .collect();
    if matching.is_empty() {
        return AccessDecision::Denied {
            message: format!(
                "no access rule lets {} request access to {}",
                identity.name, connection.name
            ),
        };
    }
    let long_enough: Vec<&&crate::policy::AccessRule> = matching
        .iter()
        .filter(|rule| rule.max_duration >= duration)
        .collect();
    let Some(first) = long_enough.first() else {
        let longest = matching
            .iter()
            .map(|rule| rule.max_duration)
            .max()
            .unwrap_or_default();
        return AccessDecision::Denied {
            message: format!(
                "{} may request at most {} s of access to {}",
                identity.name,
                longest.as_secs(),
                connection.name
            ),
        };
    };
    if let Some(auto) = long_enough.iter().find(|rule| rule.auto_approve) {
        return AccessDecision::AutoApproved {
            rule: auto.name.clone(),
        };
    }
    AccessDecision::NeedsApproval {
        rule: first.name.clone(),
        approvers: first.approvers.clone(),
        min_approvals: first.min_approvals,
        require_mfa: first.require_mfa,
    }
}

/// The standing access rule admitting `identity` to `connection` without a
/// grant, if any.
pub fn standing_access(
    policy: &Policy,
    identity: &Identity,
    connection: &ConnectionInfo,
    now_unix: i64,
) -> Option<String> {
    let command = Command::default();
    let input = DecisionInput {
        identity,
        connection,
        command: &command,
        now_unix,
    };
    policy
        .access
        .iter()
        .find(|rule| rule.standing && access_rule_matches(rule, &input))
        .map(|rule| rule.name.clone())
}
