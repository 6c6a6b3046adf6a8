//! Loading and validation: policy text → [`Policy`], or every problem.
//!
//! It owns the rule that a policy either loads completely or not at all, and
//! that a person fixing it sees *all* problems at once with their lines.
//!
//! Two passes: the file is deserialized strictly (unknown fields rejected);
//! if that fails, it is read again leniently, rule by rule, so a typo in one
//! rule does not hide the problems of the others. Semantic checks (operation
//! names, globs, durations, detectors, …) run over every rule that parsed.

use crate::error::{PolicyError, Problem};
use crate::model::{
    DetectorFile, HttpMatchFile, KubernetesMatchFile, Located, MaskFile, MatchFile, McpMatchFile,
    OneOrMany, PolicyFile, RuleFile, TimeMatchFile,
};
use crate::policy::{
    Conditions, CustomDetector, DefaultAction, HttpConditions, KubernetesConditions,
    MaskObligation, MaskStyle, McpConditions, Pattern, Policy, ReviewSpec, Rule, RuleAction,
    TimeWindow, Validator,
};
use airlock_types::command::http::HTTP_METHODS;
use airlock_types::{Access, IdentityKind, KubernetesVerb, Operation};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::collections::BTreeSet;
use std::time::Duration;

/// Detectors every policy may reference.
pub const BUILTIN_DETECTORS: &[&str] = &["email", "card", "iban", "ssn", "phone", "ip", "secret"];

/// The file format version this crate reads.
pub const FORMAT_VERSION: u64 = 1;

fn line_of(location: &Location, fallback: u64) -> u64 {
    match location.line() {
        0 => fallback,
        line => line,
    }
}

struct Checker<'a> {
    problems: Vec<Problem>,
    source_name: &'a str,
}

/// Where a problem is: a line and the rule it is in.
#[derive(Clone, Copy)]
struct Site<'r> {
    line: u64,
    rule: Option<&'r str>,
}

impl Checker<'_> {
    fn problem(&mut self, site: Site<'_>, message: String) {
        self.problems.push(Problem {
            line: site.line,
            rule: site.rule.map(str::to_string),
            message,
        });
    }

    fn at<'r>(&self, site: Site<'r>, value: &Located) -> Site<'r> {
        Site {
            line: line_of(&value.referenced, site.line),
            rule: site.rule,
        }
    }
}

/// The lenient second pass: rules as untyped values with their lines.
#[derive(Deserialize)]
struct LenientFile {
    #[serde(default)]
    version: Option<serde_json::Value>,
    #[serde(default)]
    default: Option<serde_json::Value>,
    #[serde(default)]
    rules: Vec<Spanned<serde_json::Value>>,
    #[serde(default)]
    detectors: Option<serde_json::Value>,
}

pub(crate) fn load(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
    let mut checker = Checker {
        problems: Vec::new(),
        source_name,
    };
    let policy = match serde_saphyr::from_str::<PolicyFile>(text) {
        Ok(file) => Some(compile(&mut checker, file)),
        Err(strict_error) => {
            lenient(&mut checker, text, &strict_error);
            None
        }
    };
    checker.problems.sort_by_key(|problem| problem.line);
    match policy {
        Some(policy) if checker.problems.is_empty() => Ok(policy),
        _ => {
            if checker.problems.is_empty() {
                checker.problems.push(Problem {
                    line: 0,
                    rule: None,
                    message: "policy could not be read".to_string(),
                });
            }
            Err(PolicyError {
                source_name: checker.source_name.to_string(),
                problems: checker.problems,
            })
        }
    }
}

/// Reports structural problems rule by rule, plus the semantic problems of
/// the rules that did parse.
fn lenient(checker: &mut Checker<'_>, text: &str, strict_error: &serde_saphyr::Error) {
    let strict_line = strict_error.location().map_or(0, |l| l.line());
    let strict_message = first_line(&strict_error.to_string());
    let Ok(file) = serde_saphyr::from_str::<LenientFile>(text) else {
        checker.problems.push(Problem {
            line: strict_line,
            rule: None,
            message: strict_message,
        });
        return;
    };
    let before = checker.problems.len();
    let mut rules = Vec::new();
    for value in file.rules {
        let line = line_of(&value.referenced, 0);
        let name = value
            .value
            .get("name")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        match serde_json::from_value::<RuleFile>(value.value) {
            Ok(rule) => rules.push((rule, line)),
            Err(error) => checker.problems.push(Problem {
                line,
                rule: name,
                message: error.to_string(),
            }),
        }
    }
    // Top-level fields, checked on their own.
    let top = serde_json::json!({
        "version": file.version,
        "default": file.default,
        "detectors": file.detectors.unwrap_or(serde_json::Value::Array(Vec::new())),
    });
    let top_result = serde_json::from_value::<PolicyFile>(top);
    let structural_found = checker.problems.len() > before;
    match top_result {
        Ok(mut top) => {
            top.rules = Vec::new();
            let detectors = compile_detectors(checker, &top.detectors);
            let known = known_detectors(&detectors);
            let mut names = BTreeSet::new();
            for (rule, line) in &rules {
                let _ = compile_rule(checker, rule, *line, &known, &detectors, &mut names);
            }
        }
        Err(error) => checker.problems.push(Problem {
            line: strict_line,
            rule: None,
            message: error.to_string(),
        }),
    }
    if !structural_found && checker.problems.len() == before {
        checker.problems.push(Problem {
            line: strict_line,
            rule: None,
            message: strict_message,
        });
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

fn compile(checker: &mut Checker<'_>, file: PolicyFile) -> Policy {
    let version_line = line_of(&file.version.referenced, 1);
    if file.version.value != FORMAT_VERSION {
        checker.problem(
            Site {
                line: version_line,
                rule: None,
            },
            format!(
                "version: unsupported policy format version {} (expected {FORMAT_VERSION})",
                file.version.value
            ),
        );
    }
    let default = match &file.default {
        None => DefaultAction::Deny,
        Some(value) => match value.value.as_str() {
            "deny" => DefaultAction::Deny,
            "allow" => DefaultAction::Allow,
            other => {
                let site = checker.at(
                    Site {
                        line: version_line,
                        rule: None,
                    },
                    value,
                );
                checker.problem(
                    site,
                    format!("default: must be \"deny\" or \"allow\", not \"{other}\""),
                );
                DefaultAction::Deny
            }
        },
    };
    let detectors = compile_detectors(checker, &file.detectors);
    let known = known_detectors(&detectors);
    let mut names = BTreeSet::new();
    let rules = file
        .rules
        .iter()
        .filter_map(|rule| {
            let line = line_of(&rule.name.referenced, 0);
            compile_rule(checker, rule, line, &known, &detectors, &mut names)
        })
        .collect();
    let access = compile_access(checker, &file.access);
    Policy {
        version: 0,
        source_name: checker.source_name.to_string(),
        default,
        rules,
        detectors,
        access,
    }
}

fn compile_access(
    checker: &mut Checker<'_>,
    files: &[crate::model::AccessRuleFile],
) -> Vec<crate::policy::AccessRule> {
    let mut names = BTreeSet::new();
    let mut rules = Vec::new();
    for file in files {
        let line = line_of(&file.name.referenced, 0);
        let name = file.name.value.clone();
        let site = Site {
            line,
            rule: Some(&name),
        };
        if name.trim().is_empty() {
            checker.problem(site, "access rule: name is empty".into());
        } else if !names.insert(name.clone()) {
            checker.problem(site, format!("access rule \"{name}\" is defined twice"));
        }
        let conditions = match &file.matcher {
            Some(matcher) => compile_match(checker, site, matcher),
            None => Conditions::default(),
        };
        if conditions.has_statement_conditions()
            || conditions.statements_max.is_some()
            || conditions.statements_min.is_some()
        {
            checker.problem(
                site,
                "access rules match on identity, connection and time only".into(),
            );
        }
        let standing = file.standing.unwrap_or(false);
        let auto_approve = file.auto_approve.unwrap_or(false);
        let max_duration = match &file.max_duration {
            Some(value) => match parse_duration(&value.value) {
                Some(duration) if !duration.is_zero() => duration,
                _ => {
                    let at = checker.at(site, value);
                    checker.problem(
                        at,
                        format!(
                            "max_duration: \"{}\" is not a duration like 30m or 8h",
                            value.value
                        ),
                    );
                    std::time::Duration::ZERO
                }
            },
            None => {
                if !standing {
                    checker.problem(
                        site,
                        "max_duration is required (unless the rule is standing)".into(),
                    );
                }
                std::time::Duration::ZERO
            }
        };
        let approvers = file
            .approvers
            .clone()
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        if approvers.is_empty() && !auto_approve && !standing {
            checker.problem(
                site,
                "approvers are required unless auto_approve or standing is set".into(),
            );
        }
        let min_approvals = file
            .min_approvals
            .as_ref()
            .map(|value| value.value)
            .unwrap_or(1);
        if min_approvals == 0 {
            checker.problem(site, "min_approvals must be at least 1".into());
        }
        rules.push(crate::policy::AccessRule {
            name,
            conditions,
            max_duration,
            approvers,
            min_approvals: min_approvals.max(1),
            require_mfa: file.require_mfa.unwrap_or(false),
            auto_approve,
            standing,
        });
    }
    rules
}

fn known_detectors(custom: &[CustomDetector]) -> Vec<String> {
    BUILTIN_DETECTORS
        .iter()
        .map(|name| name.to_string())
        .chain(custom.iter().map(|detector| detector.name.clone()))
        .collect()
}

fn parse_style(
    checker: &mut Checker<'_>,
    site: Site<'_>,
    field: &str,
    value: &Located,
) -> MaskStyle {
    match value.value.as_str() {
        "partial" => MaskStyle::Partial,
        "full" => MaskStyle::Full,
        "placeholder" => MaskStyle::Placeholder,
        other => {
            let site = checker.at(site, value);
            checker.problem(
                site,
                format!("{field}: unknown mask style \"{other}\" (partial, full, placeholder)"),
            );
            MaskStyle::Full
        }
    }
}

fn compile_detectors(checker: &mut Checker<'_>, files: &[DetectorFile]) -> Vec<CustomDetector> {
    let mut detectors: Vec<CustomDetector> = Vec::new();
    for file in files {
        let site = Site {
            line: line_of(&file.name.referenced, 0),
            rule: None,
        };
        let name = file.name.value.clone();
        if name.is_empty() {
            checker.problem(site, "detectors: a detector needs a name".to_string());
        }
        if BUILTIN_DETECTORS.contains(&name.as_str()) {
            checker.problem(
                site,
                format!("detectors: \"{name}\" is a built-in detector name"),
            );
        }
        if detectors.iter().any(|d| d.name == name) {
            checker.problem(site, format!("detectors: duplicate detector \"{name}\""));
        }
        if let Err(error) = regex::Regex::new(&file.regex.value) {
            let site = checker.at(site, &file.regex);
            checker.problem(
                site,
                format!(
                    "detectors.{name}.regex: invalid regular expression: {}",
                    first_line(&error.to_string())
                ),
            );
        }
        let validator = match file.validator.as_ref().map(|v| (v, v.value.as_str())) {
            None | Some((_, "none")) => Validator::None,
            Some((_, "luhn")) => Validator::Luhn,
            Some((_, "mod97")) => Validator::Mod97,
            Some((value, other)) => {
                let site = checker.at(site, value);
                checker.problem(
                    site,
                    format!("detectors.{name}.validator: unknown validator \"{other}\" (luhn, mod97, none)"),
                );
                Validator::None
            }
        };
        let style = file
            .style
            .as_ref()
            .map(|style| parse_style(checker, site, &format!("detectors.{name}.style"), style));
        detectors.push(CustomDetector {
            name,
            regex: file.regex.value.clone(),
            validator,
            context: file.context.clone().unwrap_or_default(),
            style,
        });
    }
    detectors
}

fn compile_rule(
    checker: &mut Checker<'_>,
    file: &RuleFile,
    line: u64,
    known_detectors: &[String],
    custom_detectors: &[CustomDetector],
    names: &mut BTreeSet<String>,
) -> Option<Rule> {
    let name = file.name.value.clone();
    let site = Site {
        line,
        rule: Some(name.as_str()),
    };
    let problems_before = checker.problems.len();
    if name.trim().is_empty() {
        checker.problem(site, "name: a rule needs a name".to_string());
    } else if !names.insert(name.clone()) {
        checker.problem(site, "name: duplicate rule name".to_string());
    }
    let conditions = match &file.matcher {
        Some(matcher) => compile_match(checker, site, matcher),
        None => Conditions::default(),
    };
    let review_fields = file.approvers.is_some()
        || file.wait.is_some()
        || file.require_mfa.is_some()
        || file.min_approvals.is_some();
    let action = match &file.action {
        None => None,
        Some(action) => match action.value.as_str() {
            "allow" => Some(RuleAction::Allow),
            "deny" => Some(RuleAction::Deny {
                message: file.message.clone(),
            }),
            "review" => Some(RuleAction::Review(compile_review(checker, site, file))),
            other => {
                let site = checker.at(site, action);
                checker.problem(
                    site,
                    format!("action: unknown action \"{other}\" (allow, deny, review)"),
                );
                None
            }
        },
    };
    let is_review = matches!(action, Some(RuleAction::Review(_)));
    if review_fields && !is_review && file.action.is_some() {
        checker.problem(
            site,
            "approvers, wait, require_mfa and min_approvals only apply to action: review"
                .to_string(),
        );
    }
    if file.message.is_some() && !matches!(action, Some(RuleAction::Deny { .. })) {
        checker.problem(site, "message: only applies to action: deny".to_string());
    }
    let mask = file
        .mask
        .as_ref()
        .map(|mask| compile_mask(checker, site, mask, known_detectors, custom_detectors));
    let rate_limit = file.rate_limit.as_ref().map(|limit| {
        if limit.per_minute.value == 0 {
            let line = line_of(&limit.per_minute.referenced, site.line);
            checker.problem(
                Site {
                    line,
                    rule: site.rule,
                },
                "rate_limit.per_minute: must be at least 1 (to block, use action: deny)"
                    .to_string(),
            );
        }
        limit.per_minute.value
    });
    if file.action.is_none() && mask.is_none() && rate_limit.is_none() {
        checker.problem(
            site,
            "rule does nothing: give it an action (allow, deny, review), a mask or a rate_limit"
                .to_string(),
        );
    }
    if checker.problems.len() > problems_before {
        return None;
    }
    Some(Rule {
        name,
        line,
        description: file.description.clone(),
        conditions,
        action,
        mask,
        rate_limit,
    })
}

fn compile_review(checker: &mut Checker<'_>, site: Site<'_>, file: &RuleFile) -> ReviewSpec {
    let approvers: Vec<String> = file
        .approvers
        .clone()
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .into_iter()
        .filter(|approver| !approver.trim().is_empty())
        .collect();
    if approvers.is_empty() {
        checker.problem(site, "approvers: a review rule needs approvers".to_string());
    }
    let wait = file
        .wait
        .as_ref()
        .and_then(|wait| match parse_duration(&wait.value) {
            Some(duration) => Some(duration),
            None => {
                let site = checker.at(site, wait);
                checker.problem(
                    site,
                    format!(
                        "wait: \"{}\" is not a duration (like 30s, 5m, 1h)",
                        wait.value
                    ),
                );
                None
            }
        });
    let min_approvals = match &file.min_approvals {
        None => 1,
        Some(value) => {
            if value.value == 0 {
                let line = line_of(&value.referenced, site.line);
                checker.problem(
                    Site {
                        line,
                        rule: site.rule,
                    },
                    "min_approvals: must be at least 1".to_string(),
                );
            }
            value.value
        }
    };
    ReviewSpec {
        approvers,
        wait,
        require_mfa: file.require_mfa.unwrap_or(false),
        min_approvals,
    }
}

/// `30s`, `5m`, `1h`, `250ms`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => return Some(Duration::from_millis(number)),
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3600)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

fn compile_pattern(
    checker: &mut Checker<'_>,
    site: Site<'_>,
    field: &str,
    value: &Located,
) -> Option<Pattern> {
    match globset::GlobBuilder::new(&value.value)
        .literal_separator(false)
        .build()
    {
        Ok(glob) => Some(Pattern {
            text: value.value.clone(),
            matcher: glob.compile_matcher(),
            base: None,
        }),
        Err(error) => {
            let site = checker.at(site, value);
            checker.problem(
                site,
                format!("{field}: bad glob \"{}\": {}", value.value, error.kind()),
            );
            None
        }
    }
}

fn compile_patterns(
    checker: &mut Checker<'_>,
    site: Site<'_>,
    field: &str,
    values: &Option<Vec<Located>>,
) -> Vec<Pattern> {
    values
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|value| compile_pattern(checker, site, field, value))
        .collect()
}

fn compile_match(checker: &mut Checker<'_>, site: Site<'_>, file: &MatchFile) -> Conditions {
    let mut conditions = Conditions::default();
    if let Some(identity) = &file.identity {
        conditions.identity_name = identity
            .name
            .as_ref()
            .and_then(|name| compile_pattern(checker, site, "match.identity.name", name));
        let kinds = identity.kind.clone();
        let kind_site = kinds.as_ref().map_or(site, |k| Site {
            line: line_of(&k.referenced, site.line),
            rule: site.rule,
        });
        for kind in kinds.map(|k| k.value.into_vec()).unwrap_or_default() {
            match IdentityKind::parse(&kind.value) {
                Some(parsed) => conditions.identity_kinds.push(parsed),
                None => {
                    let site = checker.at(kind_site, &kind);
                    checker.problem(
                        site,
                        format!(
                            "match.identity.kind: unknown kind \"{}\" (agent, human, service)",
                            kind.value
                        ),
                    );
                }
            }
        }
        conditions.identity_groups = identity.groups.clone().unwrap_or_default();
    }
    if let Some(connection) = &file.connection {
        conditions.connection_name = connection
            .name
            .as_ref()
            .and_then(|name| compile_pattern(checker, site, "match.connection.name", name));
        conditions.connection_tags = connection.tags.clone().unwrap_or_default();
    }
    let accesses = file.access.clone();
    let access_site = accesses.as_ref().map_or(site, |a| Site {
        line: line_of(&a.referenced, site.line),
        rule: site.rule,
    });
    for access in accesses.map(|a| a.value.into_vec()).unwrap_or_default() {
        match access.value.as_str() {
            "read" => conditions.access.push(Access::Read),
            "write" => conditions.access.push(Access::Write),
            "admin" => conditions.access.push(Access::Admin),
            other => {
                let site = checker.at(access_site, &access);
                checker.problem(
                    site,
                    format!("match.access: unknown access \"{other}\" (read, write, admin)"),
                );
            }
        }
    }
    for operation in file.operations.as_deref().unwrap_or_default() {
        if operation.value == "copy" {
            conditions.operations.push(Operation::CopyFrom);
            conditions.operations.push(Operation::CopyTo);
            continue;
        }
        match Operation::parse(&operation.value) {
            Some(parsed) => conditions.operations.push(parsed),
            None => {
                let site = checker.at(site, operation);
                checker.problem(
                    site,
                    format!(
                        "match.operations: unknown operation \"{}\"",
                        operation.value
                    ),
                );
            }
        }
    }
    conditions.tables = compile_patterns(checker, site, "match.tables", &file.tables);
    conditions.tables_written =
        compile_patterns(checker, site, "match.tables_written", &file.tables_written);
    conditions.functions = compile_patterns(checker, site, "match.functions", &file.functions);
    conditions.unknown_functions = file.unknown_functions;
    conditions.has_where = file.has_where;
    conditions.complete = file.complete;
    if let Some(statements) = &file.statements {
        conditions.statements_max = statements.max.as_ref().map(|max| max.value);
        conditions.statements_min = statements.min.as_ref().map(|min| min.value);
        if let (Some(min), Some(max)) = (conditions.statements_min, conditions.statements_max) {
            if min > max {
                checker.problem(
                    site,
                    "match.statements: min is greater than max".to_string(),
                );
            }
        }
        if conditions.statements_max == Some(0) {
            checker.problem(site, "match.statements.max: must be at least 1".to_string());
        }
    }
    if let Some(time) = &file.time {
        conditions.time = compile_time(checker, site, time);
    }
    check_one_protocol(checker, site, file);
    if let Some(http) = &file.http {
        let site = spanned_site(site, http);
        conditions.http = Some(compile_http(checker, site, &http.value));
    }
    if let Some(kubernetes) = &file.kubernetes {
        let site = spanned_site(site, kubernetes);
        conditions.kubernetes = Some(compile_kubernetes(checker, site, &kubernetes.value));
    }
    if let Some(mcp) = &file.mcp {
        let site = spanned_site(site, mcp);
        conditions.mcp = Some(compile_mcp(checker, site, &mcp.value));
    }
    conditions
}

fn spanned_site<'r, T>(site: Site<'r>, value: &Spanned<T>) -> Site<'r> {
    Site {
        line: line_of(&value.referenced, site.line),
        rule: site.rule,
    }
}

/// A command is of one protocol, so a rule whose conditions belong to two
/// (SQL's `operations` with `http`, or `http` with `kubernetes`) could never
/// match: that is a mistake in the file (a deny rule that silently never
/// applies), so it is refused. `access`, `identity`, `connection`,
/// `complete` and `time` belong to every protocol.
fn check_one_protocol(checker: &mut Checker<'_>, site: Site<'_>, file: &MatchFile) {
    let sql_fields = [
        ("operations", file.operations.is_some()),
        ("tables", file.tables.is_some()),
        ("tables_written", file.tables_written.is_some()),
        ("functions", file.functions.is_some()),
        ("unknown_functions", file.unknown_functions.is_some()),
        ("has_where", file.has_where.is_some()),
        ("statements", file.statements.is_some()),
    ];
    let mut families: Vec<(String, u64)> = Vec::new();
    if let Some((name, _)) = sql_fields.iter().find(|(_, present)| *present) {
        families.push((format!("`{name}` (SQL)"), site.line));
    }
    if let Some(http) = &file.http {
        families.push(("`http`".into(), spanned_site(site, http).line));
    }
    if let Some(kubernetes) = &file.kubernetes {
        families.push(("`kubernetes`".into(), spanned_site(site, kubernetes).line));
    }
    if let Some(mcp) = &file.mcp {
        families.push(("`mcp`".into(), spanned_site(site, mcp).line));
    }
    if families.len() > 1 {
        let names: Vec<&str> = families.iter().map(|(name, _)| name.as_str()).collect();
        let line = families
            .iter()
            .map(|(_, line)| *line)
            .max()
            .unwrap_or(site.line);
        checker.problem(
            Site {
                line,
                rule: site.rule,
            },
            format!(
                "match: {} are conditions of different protocols; a command is of one protocol, so the rule could never match (write one rule per protocol)",
                names.join(" and ")
            ),
        );
    }
}

fn compile_http(checker: &mut Checker<'_>, site: Site<'_>, file: &HttpMatchFile) -> HttpConditions {
    let mut methods = Vec::new();
    for method in file.methods.as_deref().unwrap_or_default() {
        let text = method.value.as_str();
        if HTTP_METHODS.contains(&text) {
            methods.push(text.to_string());
            continue;
        }
        let at = checker.at(site, method);
        let upper = text.to_ascii_uppercase();
        let message = if HTTP_METHODS.contains(&upper.as_str()) {
            format!(
                "match.http.methods: methods are case-sensitive: write \"{upper}\", not \"{text}\""
            )
        } else {
            format!(
                "match.http.methods: unknown method \"{text}\" ({})",
                HTTP_METHODS.join(", ")
            )
        };
        checker.problem(at, message);
    }
    let mut paths = Vec::new();
    for path in file.paths.as_deref().unwrap_or_default() {
        if !path.value.starts_with('/') {
            let at = checker.at(site, path);
            checker.problem(
                at,
                format!(
                    "match.http.paths: \"{}\" must start with / (paths are matched without scheme, host or query)",
                    path.value
                ),
            );
            continue;
        }
        if let Some(pattern) = compile_path_pattern(checker, site, path) {
            paths.push(pattern);
        }
    }
    HttpConditions { methods, paths }
}

/// An HTTP path glob: `*` stays within a segment, `**` spans segments, and
/// a trailing `/**` also matches the path without it.
fn compile_path_pattern(
    checker: &mut Checker<'_>,
    site: Site<'_>,
    value: &Located,
) -> Option<Pattern> {
    let build = |text: &str| {
        globset::GlobBuilder::new(text)
            .literal_separator(true)
            .build()
            .map(|glob| glob.compile_matcher())
    };
    match build(&value.value) {
        Ok(matcher) => {
            let base = value
                .value
                .strip_suffix("/**")
                .filter(|base| !base.is_empty())
                .and_then(|base| build(base).ok());
            Some(Pattern {
                text: value.value.clone(),
                matcher,
                base,
            })
        }
        Err(error) => {
            let at = checker.at(site, value);
            checker.problem(
                at,
                format!(
                    "match.http.paths: bad glob \"{}\": {}",
                    value.value,
                    error.kind()
                ),
            );
            None
        }
    }
}

fn compile_kubernetes(
    checker: &mut Checker<'_>,
    site: Site<'_>,
    file: &KubernetesMatchFile,
) -> KubernetesConditions {
    let mut verbs = Vec::new();
    for verb in file.verbs.as_deref().unwrap_or_default() {
        match KubernetesVerb::parse(&verb.value) {
            Some(parsed) => verbs.push(parsed),
            None => {
                let at = checker.at(site, verb);
                let names: Vec<&str> = KubernetesVerb::ALL.iter().map(|v| v.as_str()).collect();
                checker.problem(
                    at,
                    format!(
                        "match.kubernetes.verbs: unknown verb \"{}\" ({})",
                        verb.value,
                        names.join(", ")
                    ),
                );
            }
        }
    }
    for resource in file.resources.as_deref().unwrap_or_default() {
        if let Some((resource_name, subresource)) = resource.value.split_once('/') {
            let at = checker.at(site, resource);
            checker.problem(
                at,
                format!(
                    "match.kubernetes.resources: \"{}\" names a subresource: write resources: [{resource_name}] with subresources: [{subresource}]",
                    resource.value
                ),
            );
        }
    }
    let resources = file
        .resources
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|resource| !resource.value.contains('/'))
        .filter_map(|resource| {
            compile_pattern(checker, site, "match.kubernetes.resources", resource)
        })
        .collect();
    KubernetesConditions {
        verbs,
        groups: compile_patterns(checker, site, "match.kubernetes.groups", &file.groups),
        resources,
        subresources: compile_patterns(
            checker,
            site,
            "match.kubernetes.subresources",
            &file.subresources,
        ),
        namespaces: compile_patterns(
            checker,
            site,
            "match.kubernetes.namespaces",
            &file.namespaces,
        ),
        names: compile_patterns(checker, site, "match.kubernetes.names", &file.names),
        ports: compile_ports(checker, site, file.ports.as_deref().unwrap_or_default()),
    }
}

fn compile_ports(checker: &mut Checker<'_>, site: Site<'_>, ports: &[u32]) -> Vec<u16> {
    let mut out = Vec::new();
    for port in ports {
        match u16::try_from(*port) {
            Ok(valid @ 1..) => out.push(valid),
            _ => checker.problem(
                site,
                format!("match.kubernetes.ports: {port} is not a port (1-65535)"),
            ),
        }
    }
    out
}

fn compile_mcp(checker: &mut Checker<'_>, site: Site<'_>, file: &McpMatchFile) -> McpConditions {
    let tools = compile_patterns(checker, site, "match.mcp.tools", &file.tools);
    let methods = compile_patterns(checker, site, "match.mcp.methods", &file.methods);
    let mut arguments = Vec::new();
    for (name, value) in file.arguments.iter().flatten() {
        if name.trim().is_empty() {
            let at = checker.at(site, value);
            checker.problem(
                at,
                "match.mcp.arguments: an argument needs a name".to_string(),
            );
            continue;
        }
        let field = format!("match.mcp.arguments.{name}");
        if let Some(pattern) = compile_pattern(checker, site, &field, value) {
            arguments.push((name.clone(), pattern));
        }
    }
    McpConditions {
        tools,
        methods,
        arguments,
    }
}

/// Checks a JSON field rule: `$` then segments `.name`, `..name` (any
/// depth), `[*]`, `[N]`, `['name']` or `["name"]`, at least one; a `name`
/// after a dot may be a glob (`*`, `*token*`).
pub(crate) fn check_field_rule(rule: &str) -> Result<(), String> {
    let Some(mut rest) = rule.strip_prefix('$') else {
        return Err("must start with $ (like $..password or $.user.email)".into());
    };
    if rest.is_empty() {
        return Err("names no field (like $..password or $.user.email)".into());
    }
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let after = after.strip_prefix('.').unwrap_or(after);
            let end = after
                .find(|c: char| matches!(c, '.' | '[' | ']' | '\'' | '"') || c.is_whitespace())
                .unwrap_or(after.len());
            let (name, tail) = after.split_at(end);
            if name.is_empty() {
                return Err("a `.` must be followed by a field name or *".into());
            }
            globset::Glob::new(name)
                .map_err(|error| format!("bad glob \"{name}\": {}", error.kind()))?;
            rest = tail;
        } else if let Some(after) = rest.strip_prefix('[') {
            let close = after
                .find(']')
                .ok_or_else(|| "a `[` is not closed".to_string())?;
            let (inside, tail) = after.split_at(close);
            let quoted = |quote: char| {
                inside
                    .strip_prefix(quote)
                    .and_then(|text| text.strip_suffix(quote))
                    .is_some_and(|text| !text.is_empty() && !text.contains(quote))
            };
            let index = !inside.is_empty() && inside.bytes().all(|byte| byte.is_ascii_digit());
            if !(inside == "*" || index || quoted('\'') || quoted('"')) {
                return Err(format!("[{inside}] is not [*], an index or a quoted name"));
            }
            rest = tail.get(1..).unwrap_or("");
        } else {
            return Err(format!(
                "unexpected \"{rest}\" (segments are .name, ..name, [*], [N], ['name'])"
            ));
        }
    }
    Ok(())
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(name: &str) -> Option<usize> {
    let lower = name.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|day| lower == *day || (lower.len() > 3 && lower.starts_with(day)))
}

fn parse_minute(text: &str) -> Option<u32> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes > 0) {
        return None;
    }
    Some(hours * 60 + minutes)
}

fn compile_time(
    checker: &mut Checker<'_>,
    site: Site<'_>,
    file: &TimeMatchFile,
) -> Option<TimeWindow> {
    let mut valid = true;
    let mut days = 0u8;
    match &file.days {
        None => days = 0x7f,
        Some(list) => {
            for day in list {
                let range = match day.value.split_once('-') {
                    Some((from, to)) => day_index(from).zip(day_index(to)),
                    None => day_index(&day.value).map(|d| (d, d)),
                };
                match range {
                    Some((from, to)) => {
                        let mut current = from;
                        loop {
                            days |= 1 << current;
                            if current == to {
                                break;
                            }
                            current = (current + 1) % 7;
                        }
                    }
                    None => {
                        valid = false;
                        let site = checker.at(site, day);
                        checker.problem(
                            site,
                            format!(
                                "match.time.days: unknown day \"{}\" (mon … sun, or mon-fri)",
                                day.value
                            ),
                        );
                    }
                }
            }
        }
    }
    let mut minute = |value: &Option<Located>, field: &str, default: u32| match value {
        None => default,
        Some(text) => match parse_minute(&text.value) {
            Some(minute) => minute,
            None => {
                valid = false;
                let site = checker.at(site, text);
                checker.problem(
                    site,
                    format!(
                        "match.time.{field}: \"{}\" is not a time of day (HH:MM)",
                        text.value
                    ),
                );
                default
            }
        },
    };
    let from_minute = minute(&file.from, "from", 0);
    let to_minute = minute(&file.to, "to", 24 * 60);
    if let Some(timezone) = &file.timezone {
        if !timezone.value.eq_ignore_ascii_case("utc") {
            valid = false;
            let site = checker.at(site, timezone);
            checker.problem(
                site,
                format!(
                    "match.time.timezone: only UTC is supported, not \"{}\"",
                    timezone.value
                ),
            );
        }
    }
    valid.then_some(TimeWindow {
        days,
        from_minute,
        to_minute,
    })
}

fn compile_mask(
    checker: &mut Checker<'_>,
    site: Site<'_>,
    file: &MaskFile,
    known_detectors: &[String],
    custom_detectors: &[CustomDetector],
) -> MaskObligation {
    let mut detectors = Vec::new();
    let mut custom = Vec::new();
    for detector in file.detectors.as_deref().unwrap_or_default() {
        if !known_detectors.contains(&detector.value) {
            let site = checker.at(site, detector);
            checker.problem(
                site,
                format!(
                    "mask.detectors: unknown detector \"{}\" (built-in: {}; or define it under detectors:)",
                    detector.value,
                    BUILTIN_DETECTORS.join(", ")
                ),
            );
            continue;
        }
        detectors.push(detector.value.clone());
        if let Some(definition) = custom_detectors.iter().find(|d| d.name == detector.value) {
            custom.push(definition.clone());
        }
    }
    detectors.sort();
    detectors.dedup();
    let mut columns: Vec<String> = Vec::new();
    for column in file.columns.as_deref().unwrap_or_default() {
        if compile_pattern(checker, site, "mask.columns", column).is_some() {
            columns.push(column.value.clone());
        }
    }
    columns.sort();
    columns.dedup();
    let mut fields: Vec<String> = Vec::new();
    for field in file.fields.as_deref().unwrap_or_default() {
        match check_field_rule(&field.value) {
            Ok(()) => fields.push(field.value.clone()),
            Err(problem) => {
                let at = checker.at(site, field);
                checker.problem(at, format!("mask.fields: \"{}\" {problem}", field.value));
            }
        }
    }
    fields.sort();
    fields.dedup();
    if file.detectors.as_deref().unwrap_or_default().is_empty()
        && file.columns.as_deref().unwrap_or_default().is_empty()
        && file.fields.as_deref().unwrap_or_default().is_empty()
    {
        checker.problem(
            site,
            "mask: give detectors, columns or fields to mask".to_string(),
        );
    }
    let style = file.style.as_ref().map_or(MaskStyle::Full, |style| {
        parse_style(checker, site, "mask.style", style)
    });
    if file.placeholder.is_some() && style != MaskStyle::Placeholder {
        checker.problem(
            site,
            "mask.placeholder: only applies to style: placeholder".to_string(),
        );
    }
    MaskObligation {
        detectors,
        columns,
        fields,
        style,
        placeholder: file
            .placeholder
            .clone()
            .unwrap_or_else(|| "***".to_string()),
        custom_detectors: custom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("12"), Some(Duration::from_secs(12)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 weeks"), None);
    }

    #[test]
    fn field_rules() {
        let cases = [
            ("$..password", true),
            ("$.user.email", true),
            ("$.items[*].token", true),
            ("$.items[0].token", true),
            ("$['odd name'].x", true),
            ("$[\"a\"]", true),
            ("$..*token*", true),
            ("$.*", true),
            ("password", false),
            ("$", false),
            ("$.", false),
            ("$...x", false),
            ("$.a[", false),
            ("$.a[x]", false),
            ("$.a['']", false),
            ("$.a b", false),
            ("$.[a", false),
            ("$..pass[word", false),
        ];
        for (rule, valid) in cases {
            assert_eq!(
                check_field_rule(rule).is_ok(),
                valid,
                "{rule}: {:?}",
                check_field_rule(rule)
            );
        }
    }

    #[test]
    fn minutes() {
        assert_eq!(parse_minute("08:30"), Some(510));
        assert_eq!(parse_minute("24:00"), Some(1440));
        assert_eq!(parse_minute("25:00"), None);
        assert_eq!(parse_minute("8"), None);
    }
}
