//! What a MySQL session writes to the audit log: the `command` event,
//! recorded before a command goes upstream (audit before forward), and
//! the `command.result` event with the sample rows as the client saw them
//! (masked). Field names are those of the PostgreSQL gateway's records, so
//! `airlock session show`, `replay` and `export` read both alike.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use airlock_core::events::EventKind;
use airlock_core::gate::{Decision, Verdict};
use airlock_mask::{MaskPlan, MaskStats};
use airlock_store::{EventData, NewEvent};

/// Who and where, for every record of a session.
pub struct RecordingContext<'a> {
    pub session_id: &'a str,
    pub identity: &'a str,
    pub connection: &'a str,
    pub sample_rows: usize,
    pub sample_bytes: usize,
    pub max_statement_bytes: usize,
}

#[derive(Debug, serde::Serialize)]
struct CommandRecord<'a> {
    seq: u64,
    connection: &'a str,
    /// The MySQL command (`query`, `prepare`, `execute`, `init_db` …).
    message: &'a str,
    statement: &'a str,
    parameters: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<&'a [Option<String>]>,
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_masked: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
}

/// One command as it is recorded.
pub struct CommandEntry<'a> {
    pub seq: u64,
    pub message: &'a str,
    pub text: &'a str,
    /// Bound values of an execution, rendered (masked here).
    pub values: &'a [Option<String>],
    pub decision: &'a Decision,
}

/// The `command` event. The statement text, the values and the refusal's
/// message pass through the decision's mask plan: literals are data too.
pub fn command_event(recording: &RecordingContext<'_>, entry: &CommandEntry<'_>) -> NewEvent {
    let mask = entry.decision.mask.as_deref();
    let (statement, truncated) = cut(entry.text, recording.max_statement_bytes);
    let mut masked = MaskStats::new();
    let statement = mask_with(mask, statement, &mut masked);
    let values: Vec<Option<String>> = entry
        .values
        .iter()
        .map(|value| {
            value
                .as_deref()
                .map(|value| mask_with(mask, value, &mut masked))
        })
        .collect();
    let refusal = match &entry.decision.verdict {
        Verdict::Forward => None,
        Verdict::Refuse(refusal) => Some(mask_with(mask, refusal.message(), &mut MaskStats::new())),
    };
    let details = &entry.decision.details;
    let record = CommandRecord {
        seq: entry.seq,
        connection: recording.connection,
        message: entry.message,
        statement: &statement,
        parameters: entry.values.len(),
        values: (!values.is_empty()).then_some(values.as_slice()),
        decision: if refusal.is_some() {
            "refuse"
        } else {
            "forward"
        },
        policy: (!details.is_null()).then_some(details),
        statement_masked: (!masked.is_empty()).then(|| masked.total()),
        statement_truncated: truncated.then_some(true),
        statement_sha256: truncated.then(|| hex::encode(Sha256::digest(entry.text.as_bytes()))),
        refusal: refusal.as_deref(),
    };
    event(
        recording,
        EventKind::Command,
        EventData::from_serialize(&record),
    )
}

fn mask_with(mask: Option<&MaskPlan>, text: &str, stats: &mut MaskStats) -> String {
    match mask {
        Some(plan) => plan.mask_text(text, stats).into_owned(),
        None => text.to_string(),
    }
}

/// The longest prefix of `text` within `max` bytes, on a char boundary.
fn cut(text: &str, max: usize) -> (&str, bool) {
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
    /// `ok` or `error`.
    pub status: &'static str,
    /// One per result: `SELECT 3` for a result set, `OK 1` (rows affected)
    /// for an OK.
    pub tags: Vec<String>,
    /// Rows returned or affected.
    pub rows: u64,
    pub duration_us: u64,
    pub error_code: Option<String>,
    /// The server's message, masked.
    pub error_message: Option<String>,
    /// Column names of the first result set.
    pub columns: Vec<String>,
    /// The first rows as the client saw them (masked).
    pub sample: Vec<Vec<Option<String>>>,
    pub sample_truncated: bool,
    /// Values masked, per detector (`column` for column rules).
    pub masked: BTreeMap<String, u64>,
    #[serde(skip)]
    sample_bytes: usize,
}

impl CommandResult {
    pub fn new(seq: u64) -> Self {
        Self {
            seq,
            status: "ok",
            ..Self::default()
        }
    }

    /// Adds a row (as the client saw it) to the sample, within the bounds.
    pub fn sample_row(&mut self, row: Vec<Option<String>>, recording: &RecordingContext<'_>) {
        let size: usize = row.iter().flatten().map(String::len).sum();
        if self.sample.len() >= recording.sample_rows
            || self.sample_bytes + size > recording.sample_bytes
        {
            self.sample_truncated = true;
            return;
        }
        self.sample_bytes += size;
        self.sample.push(row);
    }

    /// Adds what a masker counted.
    pub fn count_masked(&mut self, stats: &MaskStats) {
        for (detector, count) in stats.iter() {
            *self.masked.entry(detector.to_string()).or_default() += count;
        }
    }
}

/// The `command.result` event.
pub fn result_event(recording: &RecordingContext<'_>, result: &CommandResult) -> NewEvent {
    event(
        recording,
        EventKind::CommandResult,
        EventData::from_serialize(result),
    )
}

fn event(recording: &RecordingContext<'_>, kind: EventKind, data: EventData) -> NewEvent {
    NewEvent {
        kind: kind.into(),
        session_id: Some(recording.session_id.to_string()),
        identity: Some(recording.identity.to_string()),
        data,
    }
}
