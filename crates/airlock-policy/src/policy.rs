//! The checked policy: what [`crate::decide`] evaluates.
//!
//! Values here are already validated (operations parsed, globs compiled,
//! durations and time windows parsed), so evaluation cannot fail. Building
//! one is the job of [`crate::validate`] via [`Policy::from_yaml`].

use crate::error::PolicyError;
use airlock_types::{Access, IdentityKind, KubernetesVerb, Operation};
use globset::GlobMatcher;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What happens when no allow, deny or review rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    /// Allow (complete classifications only).
    Allow,
    /// Deny.
    Deny,
}

/// A loaded, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The policy revision, assigned by the store (shown as `policy vN`).
    /// `from_yaml` sets 0; the caller sets the stored revision.
    pub version: u64,
    /// The file name used in messages.
    pub source_name: String,
    /// The default action.
    pub default: DefaultAction,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// Custom detectors defined in the policy.
    pub detectors: Vec<CustomDetector>,
    /// Just-in-time access rules, in file order.
    pub access: Vec<AccessRule>,
}

/// One checked access rule.
#[derive(Debug, Clone)]
pub struct AccessRule {
    /// Unique name.
    pub name: String,
    /// Identity, connection and time conditions.
    pub conditions: Conditions,
    /// Longest grant (zero for standing-only rules).
    pub max_duration: std::time::Duration,
    /// Approver groups.
    pub approvers: Vec<String>,
    /// Distinct approvals needed.
    pub min_approvals: u32,
    /// Approvers confirm with TOTP.
    pub require_mfa: bool,
    /// Granted without a person.
    pub auto_approve: bool,
    /// Admits without a grant.
    pub standing: bool,
}

impl Policy {
    /// Parses and validates a policy. `source_name` appears in error
    /// messages (`policy.yaml:12: …`).
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        crate::validate::load(text, source_name)
    }

    /// Reads and validates a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let source_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let text = std::fs::read_to_string(path).map_err(|error| {
            PolicyError::single(
                &source_name,
                0,
                format!("cannot read policy file {}: {error}", path.display()),
            )
        })?;
        Self::from_yaml(&text, &source_name)
    }

    /// The rule with this name.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.name == name)
    }
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Line of the rule in the file.
    pub line: u64,
    /// Free text.
    pub description: Option<String>,
    /// When it applies.
    pub conditions: Conditions,
    /// Its action, if any.
    pub action: Option<RuleAction>,
    /// Its mask obligation, if any.
    pub mask: Option<MaskObligation>,
    /// Its rate limit (commands per minute), if any.
    pub rate_limit: Option<u32>,
}

impl Rule {
    /// True when the rule explicitly targets incomplete classifications
    /// (`complete: false` or `operations: [unknown]`).
    pub fn explicitly_matches_incomplete(&self) -> bool {
        self.conditions.complete == Some(false)
            || self.conditions.operations.contains(&Operation::Unknown)
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RuleAction {
    /// Let the statement run.
    Allow,
    /// Refuse it, with an optional message template.
    Deny {
        /// `{connection}` and `{operation}` are replaced.
        message: Option<String>,
    },
    /// Hold it for a human.
    Review(ReviewSpec),
}

impl RuleAction {
    /// `allow`, `deny` or `review`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny { .. } => "deny",
            Self::Review(_) => "review",
        }
    }
}

/// How a review is run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewSpec {
    /// Groups or people who may approve.
    pub approvers: Vec<String>,
    /// How long the client is held before being told to retry.
    pub wait: Option<Duration>,
    /// Approvers must have used MFA.
    pub require_mfa: bool,
    /// Distinct approvals needed.
    pub min_approvals: u32,
}

/// A compiled glob with its source text.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// As written.
    pub text: String,
    pub(crate) matcher: GlobMatcher,
    /// For an HTTP path glob ending in `/**`: the glob without it, so the
    /// path itself matches too.
    pub(crate) base: Option<GlobMatcher>,
}

impl Pattern {
    /// True when `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        self.matcher.is_match(value) || self.base.as_ref().is_some_and(|base| base.is_match(value))
    }
}

/// A weekly UTC time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Bit `n` set: day `n` (Monday = 0) is open.
    pub days: u8,
    /// Opening minute of the day (inclusive).
    pub from_minute: u32,
    /// Closing minute of the day (exclusive); before `from_minute` spans
    /// midnight.
    pub to_minute: u32,
}

impl TimeWindow {
    /// True when `now_unix` (seconds, UTC) is inside the window.
    pub fn contains(&self, now_unix: i64) -> bool {
        let days_since_epoch = now_unix.div_euclid(86_400);
        // 1970-01-01 was a Thursday (Monday = 0 → Thursday = 3).
        let weekday = (days_since_epoch + 3).rem_euclid(7);
        let minute = u32::try_from(now_unix.rem_euclid(86_400) / 60).unwrap_or(0);
        let day_open = |day: i64| self.days & (1u8 << (day as u8 % 7)) != 0;
        if self.from_minute <= self.to_minute {
            day_open(weekday) && minute >= self.from_minute && minute < self.to_minute
        } else {
            // Spans midnight: the late part belongs to today, the early part
            // to the window that opened yesterday.
            (day_open(weekday) && minute >= self.from_minute)
                || (day_open((weekday + 6) % 7) && minute < self.to_minute)
        }
    }
}

/// The conditions of a rule; absent ones always hold.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Glob over the identity name.
    pub identity_name: Option<Pattern>,
    /// Identity kinds (any of).
    pub identity_kinds: Vec<IdentityKind>,
    /// Identity groups (any of).
    pub identity_groups: Vec<String>,
    /// Glob over the connection name.
    pub connection_name: Option<Pattern>,
    /// Required connection tags.
    pub connection_tags: BTreeMap<String, String>,
    /// Statement access (any of).
    pub access: Vec<Access>,
    /// Statement operations.
    pub operations: Vec<Operation>,
    /// Tables read or written.
    pub tables: Vec<Pattern>,
    /// Tables written.
    pub tables_written: Vec<Pattern>,
    /// Functions called.
    pub functions: Vec<Pattern>,
    /// Unknown functions present (true) or absent (false).
    pub unknown_functions: Option<bool>,
    /// UPDATE/DELETE bounded (true) or not (false).
    pub has_where: Option<bool>,
    /// Classification complete or not.
    pub complete: Option<bool>,
    /// At most this many statements.
    pub statements_max: Option<u32>,
    /// At least this many statements.
    pub statements_min: Option<u32>,
    /// Time window.
    pub time: Option<TimeWindow>,
    /// HTTP request conditions (HTTP commands only).
    pub http: Option<HttpConditions>,
    /// Kubernetes request conditions (Kubernetes commands only).
    pub kubernetes: Option<KubernetesConditions>,
    /// MCP call conditions (MCP commands only).
    pub mcp: Option<McpConditions>,
}

/// `match.http`: every non-empty list must hold (each: any of).
#[derive(Debug, Clone, Default)]
pub struct HttpConditions {
    /// Methods, in capitals.
    pub methods: Vec<String>,
    /// Path globs.
    pub paths: Vec<Pattern>,
}

/// `match.kubernetes`: every non-empty list must hold (each: any of).
#[derive(Debug, Clone, Default)]
pub struct KubernetesConditions {
    /// Verbs.
    pub verbs: Vec<KubernetesVerb>,
    /// API group globs (`""` is the core group).
    pub groups: Vec<Pattern>,
    /// Resource globs.
    pub resources: Vec<Pattern>,
    /// Subresource globs (requests without one never match).
    pub subresources: Vec<Pattern>,
    /// Namespace globs (cluster-scoped requests never match).
    pub namespaces: Vec<Pattern>,
    /// Object name globs (requests without a name never match).
    pub names: Vec<Pattern>,
    /// Pod ports (port-forwards only; see `KubernetesMatchFile::ports`).
    pub ports: Vec<u16>,
}

/// `match.mcp`: every present condition must hold.
#[derive(Debug, Clone, Default)]
pub struct McpConditions {
    /// Tool name globs (any of; only `tools/call` has a tool).
    pub tools: Vec<Pattern>,
    /// JSON-RPC method globs (any of).
    pub methods: Vec<Pattern>,
    /// Argument name and the glob its value must match (all of).
    pub arguments: Vec<(String, Pattern)>,
}

impl Conditions {
    /// True when the rule has conditions on what the command does
    /// (statement-level SQL conditions, or an `http`, `kubernetes` or `mcp`
    /// condition).
    pub fn has_statement_conditions(&self) -> bool {
        self.http.is_some()
            || self.kubernetes.is_some()
            || self.mcp.is_some()
            || !self.access.is_empty()
            || !self.operations.is_empty()
            || !self.tables.is_empty()
            || !self.tables_written.is_empty()
            || !self.functions.is_empty()
            || self.unknown_functions.is_some()
            || self.has_where.is_some()
            || self.complete.is_some()
    }
}

/// How masked values are rendered, from least to most hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskStyle {
    /// Keep a hint (last digits, domain).
    Partial,
    /// Mask every character, keeping the length.
    Full,
    /// Replace by a fixed placeholder, hiding the length too.
    Placeholder,
}

impl MaskStyle {
    /// The name used in policy files (`partial`, `full`, `placeholder`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Partial => "partial",
            Self::Full => "full",
            Self::Placeholder => "placeholder",
        }
    }
}

/// A checksum a detector match must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// No checksum.
    None,
    /// Luhn (payment cards).
    Luhn,
    /// ISO 7064 mod 97 (IBAN).
    Mod97,
}

/// A detector defined in the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomDetector {
    /// Name referenced from `mask.detectors`.
    pub name: String,
    /// Regular expression (validated to compile).
    pub regex: String,
    /// Checksum.
    pub validator: Validator,
    /// Context words.
    pub context: Vec<String>,
    /// Style override.
    pub style: Option<MaskStyle>,
}

/// What must be masked in results: the merge of every matching rule's mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskObligation {
    /// Detector names (built-in or custom), sorted.
    pub detectors: Vec<String>,
    /// Column-name globs masked entirely, sorted.
    pub columns: Vec<String>,
    /// JSON field rules (`$..password`) for JSON bodies, sorted; applied by
    /// the protocol crates that carry JSON bodies, not by the SQL path.
    /// Left out of the JSON when empty, so SQL-only obligations read as
    /// they always did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The most hiding style of the merged rules.
    pub style: MaskStyle,
    /// Placeholder text for `placeholder` style.
    pub placeholder: String,
    /// Definitions of the custom detectors referenced.
    pub custom_detectors: Vec<CustomDetector>,
}

impl MaskObligation {
    /// Merges another rule's mask into this one.
    pub(crate) fn merge(&mut self, other: &MaskObligation) {
        self.detectors.extend(other.detectors.iter().cloned());
        self.detectors.sort();
        self.detectors.dedup();
        self.columns.extend(other.columns.iter().cloned());
        self.columns.sort();
        self.columns.dedup();
        self.fields.extend(other.fields.iter().cloned());
        self.fields.sort();
        self.fields.dedup();
        if other.style > self.style {
            self.style = other.style;
            self.placeholder = other.placeholder.clone();
        }
        for detector in &other.custom_detectors {
            if !self.custom_detectors.contains(detector) {
                self.custom_detectors.push(detector.clone());
            }
        }
    }
}
