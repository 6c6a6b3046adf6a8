//! The policy file as written: serde structs mirroring the YAML.
//!
//! This module owns the file format only. Every struct rejects unknown
//! fields, and every field is documented: this is the user-facing contract of
//! `policy.yaml`. Values are kept as written (strings, with their source
//! location where useful); [`crate::validate`] turns them into the checked
//! [`crate::Policy`] and reports every problem at once.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// A string with its location in the policy file.
pub(crate) type Located = Spanned<String>;

/// One value or a list of values (`access: read` or `access: [read, write]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list of values.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(value) => vec![value],
            Self::Many(values) => values,
        }
    }
}

/// The whole policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    /// File format version; must be `1`. (The store assigns the policy's own
    /// revision number separately, see `Policy::version`.)
    pub(crate) version: Spanned<u64>,
    /// What happens when no allow, deny or review rule matches: `deny`
    /// (default) or `allow`. Incomplete classifications are denied either way.
    #[serde(default)]
    pub(crate) default: Option<Located>,
    /// The rules, in order. Every matching rule counts.
    #[serde(default)]
    pub(crate) rules: Vec<RuleFile>,
    /// Custom data detectors for masking, in addition to the built-in ones.
    #[serde(default)]
    pub(crate) detectors: Vec<DetectorFile>,
    /// Just-in-time access: who may request a time-bound grant to which
    /// connections, for how long, approved by whom.
    #[serde(default)]
    pub(crate) access: Vec<AccessRuleFile>,
}

/// One access rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessRuleFile {
    /// Unique name among access rules.
    pub(crate) name: Located,
    /// Free text for humans.
    #[serde(default)]
    #[allow(dead_code)] // read by people, not by the gateway
    pub(crate) description: Option<String>,
    /// Who and which connections (identity, connection and time conditions
    /// only). Absent: everyone, every connection.
    #[serde(default, rename = "match")]
    pub(crate) matcher: Option<MatchFile>,
    /// The longest grant that may be requested (`30m`, `8h`). Required
    /// unless `standing`.
    #[serde(default)]
    pub(crate) max_duration: Option<Located>,
    /// Who approves requests (one group or a list). Required unless
    /// `auto_approve` or `standing`.
    #[serde(default)]
    pub(crate) approvers: Option<OneOrMany<String>>,
    /// Distinct approvals needed (default 1).
    #[serde(default)]
    pub(crate) min_approvals: Option<Spanned<u32>>,
    /// Approvers must confirm with a TOTP code.
    #[serde(default)]
    pub(crate) require_mfa: Option<bool>,
    /// Grant requests up to `max_duration` without a person.
    #[serde(default)]
    pub(crate) auto_approve: Option<bool>,
    /// Admit matching identities to just-in-time connections with no grant
    /// at all (standing access).
    #[serde(default)]
    pub(crate) standing: Option<bool>,
}

/// One rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    /// Unique rule name, shown in decisions, audit records and client errors.
    pub(crate) name: Located,
    /// Free text for humans.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// When the rule applies. Absent: always.
    #[serde(default, rename = "match")]
    pub(crate) matcher: Option<MatchFile>,
    /// `allow`, `deny` or `review`. Absent: the rule only adds obligations
    /// (`mask`, `rate_limit`).
    #[serde(default)]
    pub(crate) action: Option<Located>,
    /// For `deny`: the message the client sees. `{connection}` and
    /// `{operation}` are replaced. Default: "<OPERATION> is not allowed on
    /// <connection>".
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// For `review`: who may approve (one group or a list).
    #[serde(default)]
    pub(crate) approvers: Option<OneOrMany<String>>,
    /// For `review`: how long the client is held waiting for an approval
    /// before it is told to retry (`30s`, `5m`, `1h`).
    #[serde(default)]
    pub(crate) wait: Option<Located>,
    /// For `review`: approvers must have authenticated with MFA.
    #[serde(default)]
    pub(crate) require_mfa: Option<bool>,
    /// For `review`: how many distinct approvals are needed (default 1).
    #[serde(default)]
    pub(crate) min_approvals: Option<Spanned<u32>>,
    /// Obligation: mask result data.
    #[serde(default)]
    pub(crate) mask: Option<MaskFile>,
    /// Obligation: limit the rate of matching commands.
    #[serde(default)]
    pub(crate) rate_limit: Option<RateLimitFile>,
}

/// The conditions of a rule. All present conditions must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchFile {
    /// Who is asking.
    #[serde(default)]
    pub(crate) identity: Option<IdentityMatchFile>,
    /// Which connection.
    #[serde(default)]
    pub(crate) connection: Option<ConnectionMatchFile>,
    /// Statement access: `read`, `write`, `admin`, or a list (any of).
    #[serde(default)]
    pub(crate) access: Option<Spanned<OneOrMany<Located>>>,
    /// Statement operations (see DESIGN.md; `copy` means `copy_from` and
    /// `copy_to`).
    #[serde(default)]
    pub(crate) operations: Option<Vec<Located>>,
    /// Globs over the tables a statement reads or writes.
    #[serde(default)]
    pub(crate) tables: Option<Vec<Located>>,
    /// Globs over the tables a statement writes.
    #[serde(default)]
    pub(crate) tables_written: Option<Vec<Located>>,
    /// Globs over the functions a statement calls.
    #[serde(default)]
    pub(crate) functions: Option<Vec<Located>>,
    /// True: the statement calls functions not known to be side-effect free.
    /// False: it calls none.
    #[serde(default)]
    pub(crate) unknown_functions: Option<bool>,
    /// For UPDATE/DELETE: whether a WHERE clause bounds every one of them.
    #[serde(default)]
    pub(crate) has_where: Option<bool>,
    /// Whether the classifier was sure. `complete: false` is the only way
    /// (with `operations: [unknown]`) to allow an incomplete classification.
    #[serde(default)]
    pub(crate) complete: Option<bool>,
    /// Conditions on the number of statements in one command.
    #[serde(default)]
    pub(crate) statements: Option<StatementsMatchFile>,
    /// A time window (UTC).
    #[serde(default)]
    pub(crate) time: Option<TimeMatchFile>,
    /// HTTP request conditions; they hold for HTTP commands only.
    #[serde(default)]
    pub(crate) http: Option<Spanned<HttpMatchFile>>,
    /// Kubernetes API request conditions; they hold for Kubernetes commands
    /// only.
    #[serde(default)]
    pub(crate) kubernetes: Option<Spanned<KubernetesMatchFile>>,
    /// MCP call conditions; they hold for MCP commands only.
    #[serde(default)]
    pub(crate) mcp: Option<Spanned<McpMatchFile>>,
}

/// HTTP request conditions. `http: {}` matches every HTTP request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpMatchFile {
    /// Methods, in capitals (`GET`, `POST`, …; any of).
    #[serde(default)]
    pub(crate) methods: Option<Vec<Located>>,
    /// Globs over the request path (any of): `*` stays within one segment,
    /// `**` spans segments, and a trailing `/**` also matches the path
    /// itself (`/v1/invoices/**` matches `/v1/invoices`).
    #[serde(default)]
    pub(crate) paths: Option<Vec<Located>>,
}

/// Kubernetes API request conditions (each list: any of; all present lists
/// must hold). `kubernetes: {}` matches every Kubernetes request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KubernetesMatchFile {
    /// Verbs: get, list, watch, create, update, patch, delete,
    /// deletecollection, exec, attach, portforward, proxy.
    #[serde(default)]
    pub(crate) verbs: Option<Vec<Located>>,
    /// Globs over the API group (`""` is the core group, `apps`, …).
    #[serde(default)]
    pub(crate) groups: Option<Vec<Located>>,
    /// Globs over the resource (`secrets`, `pods`, `*`).
    #[serde(default)]
    pub(crate) resources: Option<Vec<Located>>,
    /// Globs over the subresource (`exec`, `log`, `status`); a request
    /// without one does not match.
    #[serde(default)]
    pub(crate) subresources: Option<Vec<Located>>,
    /// Globs over the namespace (`"*"`: any namespace); a cluster-scoped
    /// request has none and does not match.
    #[serde(default)]
    pub(crate) namespaces: Option<Vec<Located>>,
    /// Globs over the object's name; a request without one (list, create)
    /// does not match.
    #[serde(default)]
    pub(crate) names: Option<Vec<Located>>,
    /// Pod ports of a `portforward` (1–65535). Only port-forwards match:
    /// an allow rule when every port asked is listed, a deny or review
    /// rule when any is. kubectl's tunnel names no port when it opens, so
    /// its opening matches allow rules only, and each forwarded connection
    /// is then decided with its port.
    #[serde(default)]
    pub(crate) ports: Option<Vec<u32>>,
}

/// MCP call conditions. `mcp: {}` matches every MCP request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct McpMatchFile {
    /// Globs over the tool name of a `tools/call` (any of); other methods
    /// do not match.
    #[serde(default)]
    pub(crate) tools: Option<Vec<Located>>,
    /// Globs over the JSON-RPC method (any of): `tools/call`,
    /// `resources/read`, or a request the server sends the agent
    /// (`sampling/createMessage`, `elicitation/create`, `roots/list`).
    #[serde(default)]
    pub(crate) methods: Option<Vec<Located>>,
    /// Argument name → glob over its value; every one listed must be
    /// present and match (strings as they are, numbers and booleans as
    /// written in JSON; objects, arrays and null never match).
    #[serde(default)]
    pub(crate) arguments: Option<BTreeMap<String, Located>>,
}

/// Identity conditions.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentityMatchFile {
    /// Glob over the identity name.
    #[serde(default)]
    pub(crate) name: Option<Located>,
    /// `agent`, `human`, `service`, or a list (any of).
    #[serde(default)]
    pub(crate) kind: Option<Spanned<OneOrMany<Located>>>,
    /// The identity belongs to any of these groups.
    #[serde(default)]
    pub(crate) groups: Option<Vec<String>>,
}

/// Connection conditions.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionMatchFile {
    /// Glob over the connection name.
    #[serde(default)]
    pub(crate) name: Option<Located>,
    /// Every listed tag must be present with this value.
    #[serde(default)]
    pub(crate) tags: Option<BTreeMap<String, String>>,
}

/// Conditions on the statement count of a command.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatementsMatchFile {
    /// Matches commands with at most this many statements.
    #[serde(default)]
    pub(crate) max: Option<Spanned<u32>>,
    /// Matches commands with at least this many statements.
    #[serde(default)]
    pub(crate) min: Option<Spanned<u32>>,
}

/// A weekly time window, evaluated in UTC.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeMatchFile {
    /// Days the window is open: `mon` … `sun`. Absent: every day.
    #[serde(default)]
    pub(crate) days: Option<Vec<Located>>,
    /// Opening time `HH:MM` (inclusive). Absent: 00:00.
    #[serde(default)]
    pub(crate) from: Option<Located>,
    /// Closing time `HH:MM` (exclusive). Absent: 24:00. A window with
    /// `to` before `from` spans midnight.
    #[serde(default)]
    pub(crate) to: Option<Located>,
    /// Only `UTC` is supported.
    #[serde(default)]
    pub(crate) timezone: Option<Located>,
}

/// A mask obligation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaskFile {
    /// Detectors to run over result values (built-in: email, card, iban,
    /// ssn, phone, ip, secret; or custom ones from `detectors:`).
    #[serde(default)]
    pub(crate) detectors: Option<Vec<Located>>,
    /// Globs over column names whose values are masked entirely.
    #[serde(default)]
    pub(crate) columns: Option<Vec<Located>>,
    /// JSON field rules for JSON bodies (HTTP, Kubernetes and MCP
    /// responses): `$..password` (a field at any depth), `$.user.email`,
    /// `$.items[*].token`; field names may be globs (`$..*token*`). Checked
    /// now; the protocol crates that carry JSON bodies apply them.
    #[serde(default)]
    pub(crate) fields: Option<Vec<Located>>,
    /// `partial` (keep a hint such as the last digits), `full` (mask every
    /// character) or `placeholder` (replace by `placeholder`).
    #[serde(default)]
    pub(crate) style: Option<Located>,
    /// The replacement text for `style: placeholder` (default `***`).
    #[serde(default)]
    pub(crate) placeholder: Option<String>,
}

/// A rate-limit obligation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitFile {
    /// Matching commands allowed per minute, per identity and connection.
    pub(crate) per_minute: Spanned<u32>,
}

/// A custom detector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectorFile {
    /// Detector name, referenced from `mask.detectors`.
    pub(crate) name: Located,
    /// Regular expression (Rust `regex` syntax) a value must match.
    pub(crate) regex: Located,
    /// Checksum a match must pass: `luhn`, `mod97` or `none` (default).
    #[serde(default)]
    pub(crate) validator: Option<Located>,
    /// Words that must appear near the value (in the column name) for a
    /// match to count.
    #[serde(default)]
    pub(crate) context: Option<Vec<String>>,
    /// Mask style for this detector's matches (overrides the rule's).
    #[serde(default)]
    pub(crate) style: Option<Located>,
}
