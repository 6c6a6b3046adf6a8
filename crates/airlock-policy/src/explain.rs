//! Explain: why a decision came out as it did, as a serializable report with
//! a human text rendering.
//!
//! It owns presentation only: the decision itself comes from
//! [`crate::decide`], and every condition is evaluated by the same functions
//! `decide` uses, so an explanation cannot disagree with the decision.

use crate::decide::{self, evaluate, Decision, DecisionInput, Trace, Unit, Verdict};
use crate::policy::{Policy, Rule, RuleAction};
use airlock_types::{CommandKind, StatementClass};
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

/// One statement (or the one request of a command that is not SQL): its
/// classification, verdict and matching rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementExplanation {
    /// Position in the command (0-based).
    pub index: usize,
    /// What the SQL classifier found; `None` for other protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<StatementClass>,
    /// The HTTP, Kubernetes or MCP request (`{"http": {…}}` …); `None` for
    /// SQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<CommandKind>,
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
        .map(|(index, (verdict, matched_rules))| {
            let (classification, request) = match &input.command.kind {
                CommandKind::Sql(statements) => (
                    Some(statements.get(index).cloned().unwrap_or_default()),
                    None,
                ),
                other => (None, Some(other.clone())),
            };
            StatementExplanation {
                index,
                classification,
                request,
                verdict,
                matched_rules,
            }
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
    let empty = StatementClass::default();
    let units = Unit::of(input.command, &empty);
    let count = match &input.command.kind {
        CommandKind::Sql(statements) => Some(u32::try_from(statements.len()).unwrap_or(u32::MAX)),
        _ => None,
    };
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
    let any = |check: &UnitCheck<'_>| -> Option<bool> {
        let results: Vec<Option<bool>> = units.iter().map(|unit| check(*unit)).collect();
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
    explain_protocol_conditions(c, &mut push, &any, cover_all);
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

/// One condition checked on one statement or request (`None`: not set).
type UnitCheck<'c> = dyn Fn(Unit<'_>) -> Option<bool> + 'c;

/// The `http`, `kubernetes` and `mcp` conditions: first whether the
/// command is of that protocol at all, then each list.
fn explain_protocol_conditions(
    c: &crate::policy::Conditions,
    push: &mut impl FnMut(String, String, Option<bool>),
    any: &dyn Fn(&UnitCheck<'_>) -> Option<bool>,
    cover_all: bool,
) {
    let texts = |patterns: &[crate::policy::Pattern]| -> Vec<String> {
        patterns.iter().map(|p| p.text.clone()).collect()
    };
    if let Some(http) = &c.http {
        push(
            "http".to_string(),
            "the command is an HTTP request".to_string(),
            any(&|unit| Some(matches!(unit, Unit::Http(_)))),
        );
        if !http.methods.is_empty() {
            push(
                format!("http.methods in [{}]", http.methods.join(", ")),
                format!("HTTP method is {}", one_of(&http.methods)),
                any(&|unit| match unit {
                    Unit::Http(request) => Some(http.methods.contains(&request.method)),
                    _ => Some(false),
                }),
            );
        }
        if !http.paths.is_empty() {
            let paths = texts(&http.paths);
            push(
                format!("http.paths match [{}]", paths.join(", ")),
                format!("HTTP path matches {}", one_of(&paths)),
                any(&|unit| match unit {
                    Unit::Http(request) => {
                        Some(http.paths.iter().any(|p| p.matches(&request.path)))
                    }
                    _ => Some(false),
                }),
            );
        }
    }
    if let Some(k) = &c.kubernetes {
        push(
            "kubernetes".to_string(),
            "the command is a Kubernetes request".to_string(),
            any(&|unit| Some(matches!(unit, Unit::Kubernetes(_)))),
        );
        if !k.verbs.is_empty() {
            let verbs: Vec<&str> = k.verbs.iter().map(|v| v.as_str()).collect();
            push(
                format!("kubernetes.verbs in [{}]", verbs.join(", ")),
                format!("Kubernetes verb is {}", one_of(&verbs)),
                any(&|unit| match unit {
                    Unit::Kubernetes(request) => Some(k.verbs.contains(&request.verb)),
                    _ => Some(false),
                }),
            );
        }
        type Field = fn(&airlock_types::KubernetesRequest) -> Option<&str>;
        let lists: [(&str, &str, &[crate::policy::Pattern], Field); 5] = [
            ("groups", "API group", &k.groups, |r| Some(&r.group)),
            ("resources", "resource", &k.resources, |r| Some(&r.resource)),
            ("subresources", "subresource", &k.subresources, |r| {
                r.subresource.as_deref()
            }),
            ("namespaces", "namespace", &k.namespaces, |r| {
                r.namespace.as_deref()
            }),
            ("names", "object name", &k.names, |r| r.name.as_deref()),
        ];
        for (field, words, patterns, value) in lists {
            if patterns.is_empty() {
                continue;
            }
            let shown = texts(patterns);
            push(
                format!("kubernetes.{field} match [{}]", shown.join(", ")),
                format!("Kubernetes {words} matches {}", one_of(&shown)),
                any(&|unit| match unit {
                    Unit::Kubernetes(request) => {
                        Some(value(request).is_some_and(|v| patterns.iter().any(|p| p.matches(v))))
                    }
                    _ => Some(false),
                }),
            );
        }
        if !k.ports.is_empty() {
            let shown: Vec<String> = k.ports.iter().map(u16::to_string).collect();
            let quantifier = if cover_all { "all in" } else { "any in" };
            let each = if cover_all { "every" } else { "a" };
            push(
                format!("kubernetes.ports {quantifier} [{}]", shown.join(", ")),
                format!("port-forward to {each} port {}", one_of(&shown)),
                any(&|unit| match unit {
                    Unit::Kubernetes(request) => {
                        Some(decide::ports_ok(&k.ports, request, cover_all))
                    }
                    _ => Some(false),
                }),
            );
        }
    }
    if let Some(mcp) = &c.mcp {
        push(
            "mcp".to_string(),
            "the command is an MCP call".to_string(),
            any(&|unit| Some(matches!(unit, Unit::Mcp(_)))),
        );
        if !mcp.tools.is_empty() {
            let tools = texts(&mcp.tools);
            push(
                format!("mcp.tools match [{}]", tools.join(", ")),
                format!("MCP tool matches {}", one_of(&tools)),
                any(&|unit| match unit {
                    Unit::Mcp(call) => Some(
                        call.tool
                            .as_deref()
                            .is_some_and(|tool| mcp.tools.iter().any(|p| p.matches(tool))),
                    ),
                    _ => Some(false),
                }),
            );
        }
        if !mcp.methods.is_empty() {
            let methods = texts(&mcp.methods);
            push(
                format!("mcp.methods match [{}]", methods.join(", ")),
                format!("MCP method matches {}", one_of(&methods)),
                any(&|unit| match unit {
                    Unit::Mcp(call) => Some(mcp.methods.iter().any(|p| p.matches(&call.method))),
                    _ => Some(false),
                }),
            );
        }
        for (name, pattern) in &mcp.arguments {
            push(
                format!("mcp.arguments.{name} matches {}", pattern.text),
                format!("MCP argument {name} matches {}", pattern.text),
                any(&|unit| match unit {
                    Unit::Mcp(call) => Some(decide::mcp_argument_ok(call, name, pattern)),
                    _ => Some(false),
                }),
            );
        }
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
            if let Some(request) = &statement.request {
                let _ = writeln!(
                    out,
                    "request: {} -> {}",
                    request_summary(request),
                    statement.verdict.name()
                );
                let _ = writeln!(
                    out,
                    "  matched rules: {}",
                    if statement.matched_rules.is_empty() {
                        "none (the default applies)".to_string()
                    } else {
                        statement.matched_rules.join(", ")
                    }
                );
                continue;
            }
            let Some(class) = &statement.classification else {
                continue;
            };
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
            let fields = if mask.fields.is_empty() {
                String::new()
            } else {
                format!("; JSON fields {}", mask.fields.join(", "))
            };
            let _ = writeln!(
                out,
                "mask: detectors {}; columns {}{fields}; style {}",
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

/// One line for an HTTP, Kubernetes or MCP request: what it is, its access,
/// and whether it was fully classified.
fn request_summary(request: &CommandKind) -> String {
    let (what, access, complete) = match request {
        CommandKind::Sql(_) => ("SQL".to_string(), airlock_types::Access::Write, true),
        CommandKind::Http(r) => (
            format!("HTTP {} {}", r.method, r.path),
            r.effective_access(),
            r.complete(),
        ),
        CommandKind::Kubernetes(r) => {
            let mut what = format!("Kubernetes {} {}", r.verb, r.resource_path());
            if !r.group.is_empty() {
                what.push_str(&format!(" (group {})", r.group));
            }
            if let Some(name) = &r.name {
                what.push_str(&format!(" {name}"));
            }
            if let Some(namespace) = &r.namespace {
                what.push_str(&format!(" in namespace {namespace}"));
            }
            (what, r.effective_access(), r.complete)
        }
        CommandKind::Mcp(call) => (
            match &call.tool {
                Some(tool) => format!("MCP {} {tool}", call.method),
                None => format!("MCP {}", call.method),
            },
            call.effective_access(),
            call.complete(),
        ),
    };
    format!(
        "{what} ({access} access{})",
        if complete {
            ""
        } else {
            ", not fully classified"
        }
    )
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
