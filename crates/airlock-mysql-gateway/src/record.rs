//! What a MySQL session writes to the audit log, through the core's one
//! pair of records (`airlock_core::command_record`): the `command` event,
//! recorded before a command goes upstream (audit before forward), and
//! the `command.result` event with the sample rows as the client saw them
//! (masked). This module only says what a MySQL command is to that record.

use airlock_core::command_record;
use airlock_core::gate::Decision;
use airlock_store::NewEvent;

pub use airlock_core::command_record::{CommandResult, RecordScope as RecordingContext};

/// One command as it is recorded.
pub struct CommandEntry<'a> {
    pub seq: u64,
    /// The MySQL command (`query`, `prepare`, `execute`, `init_db` …).
    pub message: &'a str,
    pub text: &'a str,
    /// Bound values of an execution, rendered (masked by the record).
    pub values: &'a [Option<String>],
    pub decision: &'a Decision,
}

/// The `command` event. The statement text, the values and the refusal's
/// message pass through the decision's mask plan: literals are data too.
pub fn command_event(recording: &RecordingContext<'_>, entry: &CommandEntry<'_>) -> NewEvent {
    command_record::command_event(
        recording,
        &command_record::CommandEntry {
            seq: entry.seq,
            message: entry.message,
            text: entry.text,
            parameters: entry.values.len(),
            values: entry.values,
            decision: entry.decision,
            mask: entry.decision.mask.as_deref(),
            request: None,
            kubernetes: None,
        },
    )
}

/// The `command.result` event.
pub fn result_event(recording: &RecordingContext<'_>, result: &CommandResult) -> NewEvent {
    result.event(recording)
}
