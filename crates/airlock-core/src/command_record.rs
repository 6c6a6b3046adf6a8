//! The two records every protocol writes for a command: `command`, before
//! the command goes upstream (or with its refusal), and `command.result`,
//! what it returned as the client saw it. One payload type each, for every
//! protocol, so `airlock session show`, `replay` and `export` read all of
//! them alike.
//!
//! What is data is masked here, with the decision's mask plan: the
//! statement text (literals are data), the bound values, and a refusal's
//! message (a parser's "at or near …" quotes the statement). The protocol
//! crate says what its command and its values are; it never builds the
//! record itself.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use airlock_mask::{MaskPlan, MaskStats};
use airlock_store::{EventData, NewEvent};

use crate::details::Details;
use crate::events::EventKind;
use crate::gate::{Decision, Verdict};

/// Who and where, for every record of a session, and the bounds of what
/// a record keeps.
#[derive(Debug, Clone, Copy)]
pub struct RecordScope<'a> {
    pub session_id: &'a str,
    pub identity: &'a str,
    pub connection: &'a str,
    /// Rows kept in a result's sample.
    pub sample_rows: usize,
    /// Bytes kept in a result's sample.
    pub sample_bytes: usize,
    /// Bytes of statement text kept (and the budget of the bound values).
    pub max_statement_bytes: usize,
}

/// One command as the protocol saw it.
pub struct CommandEntry<'a> {
    /// The command's number in its session.
    pub seq: u64,
    /// What kind of message carried it (`query`, `parse`, `execute`,
    /// `prepare`, `init_db`, `http` …).
    pub message: &'a str,
    /// The statement (for HTTP: `METHOD path?query`), unmasked.
    pub text: &'a str,
    /// How many parameters the command binds.
    pub parameters: usize,
    /// The bound values as text (NULL as `None`), unmasked: masked here,
    /// each cut at [`MAX_VALUE_CHARS`], in all within the statement budget.
    pub values: &'a [Option<String>],
    pub decision: &'a Decision,
    /// The plan that masks the statement and its values (the decision's,
    /// or that of the statement an execution runs).
    pub mask: Option<&'a MaskPlan>,
    /// For HTTP: the method and the path as requested (the path masked).
    pub request: Option<(&'a str, &'a str)>,
    /// For Kubernetes: the request as the gate saw it (verb, resource,
    /// namespace …), its names already masked by the protocol crate.
    pub kubernetes: Option<Value>,
}

/// Characters of one bound value kept in the record.
pub const MAX_VALUE_CHARS: usize = 256;

#[derive(Debug, serde::Serialize)]
struct CommandPayload<'a> {
    seq: u64,
    connection: &'a str,
    message: &'a str,
    statement: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    parameters: usize,
    /// The bound values, masked (NULL as `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<&'a [Option<String>]>,
    /// `forward` or `refuse`.
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a Details>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_masked: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes: Option<&'a Value>,
}

/// The `command` event of `entry`.
pub fn command_event(scope: &RecordScope<'_>, entry: &CommandEntry<'_>) -> NewEvent {
    let mask = entry.mask;
    let (statement, truncated) = cut(entry.text, scope.max_statement_bytes);
    let mut masked = MaskStats::new();
    let statement = mask_with(mask, statement, &mut masked);
    let values = mask_values(entry.values, mask, scope.max_statement_bytes, &mut masked);
    let refusal = match &entry.decision.verdict {
        Verdict::Forward => None,
        Verdict::Refuse(refusal) => Some(mask_with(mask, refusal.message(), &mut MaskStats::new())),
    };
    let path = entry
        .request
        .map(|(_, path)| mask_with(mask, path, &mut MaskStats::new()));
    let details = &entry.decision.details;
    let payload = CommandPayload {
        seq: entry.seq,
        connection: scope.connection,
        message: entry.message,
        statement: &statement,
        method: entry.request.map(|(method, _)| method),
        path: path.as_deref(),
        parameters: entry.parameters,
        values: (!values.is_empty()).then_some(values.as_slice()),
        decision: if refusal.is_some() {
            "refuse"
        } else {
            "forward"
        },
        policy: (!details.is_empty()).then_some(details),
        statement_masked: (!masked.is_empty()).then(|| masked.total()),
        statement_truncated: truncated.then_some(true),
        statement_sha256: truncated.then(|| hex::encode(Sha256::digest(entry.text.as_bytes()))),
        refusal: refusal.as_deref(),
        kubernetes: entry.kubernetes.as_ref(),
    };
    event(
        scope,
        EventKind::Command,
        EventData::from_serialize(&payload),
    )
}

/// The values as recorded: each masked, cut at [`MAX_VALUE_CHARS`], and
/// once `budget` bytes are used, one `…` for the rest.
pub fn mask_values(
    values: &[Option<String>],
    mask: Option<&MaskPlan>,
    budget: usize,
    stats: &mut MaskStats,
) -> Vec<Option<String>> {
    let mut used = 0usize;
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        let Some(value) = value else {
            out.push(None);
            continue;
        };
        // Masked whole, then cut: a cut could split a value a detector
        // would otherwise have seen.
        let mut text = mask_with(mask, value, stats);
        if text.chars().count() > MAX_VALUE_CHARS {
            text = text.chars().take(MAX_VALUE_CHARS).collect::<String>() + "…";
        }
        used += text.len();
        if used > budget {
            out.push(Some("…".into()));
            break;
        }
        out.push(Some(text));
    }
    out
}

fn mask_with(mask: Option<&MaskPlan>, text: &str, stats: &mut MaskStats) -> String {
    match mask {
        Some(plan) => plan.mask_text(text, stats).into_owned(),
        None => text.to_string(),
    }
}

/// The longest prefix of `text` within `max` bytes, on a char boundary,
/// and whether it is shorter than `text`.
pub fn cut(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    (text.get(..end).unwrap_or(""), true)
}

/// The recorded outcome of one command.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CommandResult {
    pub seq: u64,
    /// `ok`, `error`, or `skipped` (an earlier error in a pipeline meant
    /// the upstream never ran it).
    pub status: &'static str,
    /// One per result: `SELECT 3`, `INSERT 0 1`, `OK 1`, `HTTP 200`.
    pub tags: Vec<String>,
    /// Rows returned or affected.
    pub rows: u64,
    pub duration_us: u64,
    pub error_code: Option<String>,
    /// The server's message, masked.
    pub error_message: Option<String>,
    /// Column names of the first result set.
    pub columns: Vec<String>,
    /// The first rows as the client saw them (masked), as text (binary
    /// values as `\x…` hex).
    pub sample: Vec<Vec<Option<String>>>,
    /// True when rows were left out of the sample.
    pub sample_truncated: bool,
    /// Values masked, per detector (`column` for column rules, `field`
    /// for JSON field rules).
    pub masked: BTreeMap<String, u64>,
    /// HTTP only: what the response was.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpOutcome>,
    #[serde(skip)]
    sample_used: usize,
}

/// What an HTTP response amounted to.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HttpOutcome {
    /// The upstream's status (`None` when it never answered).
    pub http_status: Option<u16>,
    /// Bytes of the response body sent to the client.
    pub bytes: u64,
    /// The first bytes of the body as the client got them (masked, the
    /// credential scrubbed), as text.
    pub body_sample: String,
}

impl CommandResult {
    /// An outcome of command `seq` with `status`, nothing counted yet.
    pub fn new(seq: u64, status: &'static str) -> Self {
        Self {
            seq,
            status,
            ..Self::default()
        }
    }

    /// Adds a row (as the client saw it) to the sample, within the scope's
    /// bounds; past them the sample is marked truncated.
    pub fn sample_row(&mut self, row: Vec<Option<String>>, scope: &RecordScope<'_>) {
        let size: usize = row.iter().flatten().map(String::len).sum();
        if self.sample.len() >= scope.sample_rows || self.sample_used + size > scope.sample_bytes {
            self.sample_truncated = true;
            return;
        }
        self.sample_used += size;
        self.sample.push(row);
    }

    /// Adds what a masker counted.
    pub fn count_masked(&mut self, stats: &MaskStats) {
        for (detector, count) in stats.iter() {
            *self.masked.entry(detector.to_string()).or_default() += count;
        }
    }

    /// The `command.result` event.
    pub fn event(&self, scope: &RecordScope<'_>) -> NewEvent {
        event(
            scope,
            EventKind::CommandResult,
            EventData::from_serialize(self),
        )
    }
}

fn event(scope: &RecordScope<'_>, kind: EventKind, data: EventData) -> NewEvent {
    NewEvent {
        kind: kind.into(),
        session_id: Some(scope.session_id.to_string()),
        identity: Some(scope.identity.to_string()),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Refusal;

    fn scope() -> RecordScope<'static> {
        RecordScope {
            session_id: "s-1",
            identity: "agent-7",
            connection: "db",
            sample_rows: 2,
            sample_bytes: 10,
            max_statement_bytes: 40,
        }
    }

    fn email_plan() -> MaskPlan {
        MaskPlan::compile(&airlock_mask::MaskSpec {
            detectors: vec!["email".into()],
            ..Default::default()
        })
        .unwrap()
    }

    fn data(event: &NewEvent) -> Value {
        serde_json::from_str(event.data.as_str()).unwrap()
    }

    #[test]
    fn the_statement_values_and_refusal_are_masked_and_bounded() {
        let plan = email_plan();
        let decision = Decision::refuse(
            Refusal::Denied {
                message: "no: a@example.com".into(),
            },
            Value::Null,
        );
        let long = format!("{}x@example.org", "v".repeat(300));
        let values = vec![Some("b@example.com".to_string()), None, Some(long)];
        let entry = CommandEntry {
            seq: 3,
            message: "execute",
            text: "select 'c@example.com' || repeat('x', 100)",
            parameters: 3,
            values: &values,
            decision: &decision,
            mask: Some(&plan),
            request: None,
            kubernetes: None,
        };
        let event = command_event(&scope(), &entry);
        assert_eq!(event.kind, "command");
        let text = event.data.as_str();
        assert!(!text.contains("@example."), "{text}");
        let data = data(&event);
        assert_eq!(data["decision"], "refuse");
        assert_eq!(data["statement_truncated"], true);
        assert_eq!(data["parameters"], 3);
        assert!(data["statement"].as_str().unwrap().len() <= 40);
        assert_eq!(data["values"][1], Value::Null);
        // The budget is spent by the long value: the rest is `…`.
        assert_eq!(data["values"][2], "…");
        assert!(data.get("method").is_none());
    }

    #[test]
    fn a_value_is_masked_before_it_is_cut() {
        let plan = email_plan();
        let value = format!("{}someone@example.com", "a".repeat(250));
        let out = mask_values(
            &[Some(value)],
            Some(&plan),
            usize::MAX,
            &mut MaskStats::new(),
        );
        let kept = out[0].as_deref().unwrap();
        assert!(!kept.contains("someone"), "{kept}");
        assert!(kept.chars().count() <= MAX_VALUE_CHARS + 1);
    }

    #[test]
    fn results_keep_a_bounded_sample_and_http_fields_only_for_http() {
        let mut result = CommandResult::new(1, "ok");
        result.sample_row(vec![Some("12345".into())], &scope());
        result.sample_row(vec![Some("123456".into())], &scope());
        assert_eq!(result.sample.len(), 1);
        assert!(result.sample_truncated);
        let sql = data(&result.event(&scope()));
        assert!(sql.get("http_status").is_none() && sql.get("sample_used").is_none());
        result.http = Some(HttpOutcome {
            http_status: Some(200),
            bytes: 5,
            body_sample: "hello".into(),
        });
        let http = data(&result.event(&scope()));
        assert_eq!(http["http_status"], 200);
        assert_eq!(http["bytes"], 5);
    }
}
