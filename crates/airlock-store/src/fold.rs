//! One stored row per command: a `command.result` indexed in the same
//! batch as its `command` is folded into that command's row (as its
//! `result` field) instead of taking a chained row of its own.
//!
//! The journal still holds both records (the command's is written before
//! the command runs; the result is only known after), so record-before-
//! forward is untouched; only the copy into the event log is halved. A
//! result whose command was indexed in an earlier batch (a long-running
//! statement) stays a `command.result` event of its own: readers take the
//! result from either place ([`EventRecord::command_result`]).
//!
//! Folding is textual and only for the payloads the gateway itself writes
//! (`{"seq":N,…}` objects, same session and identity), so it costs no
//! JSON parse; anything else is left exactly as it was.

use std::collections::HashMap;

use serde_json::Value;

use crate::events::{EventData, EventRecord, NewEvent};

/// The kind of a command's record.
pub const COMMAND: &str = "command";
/// The kind of a command's outcome.
pub const COMMAND_RESULT: &str = "command.result";

/// Folds every `command.result` whose `command` comes earlier in `events`
/// into that command's data. Order and timestamps of everything else are
/// kept; a folded result's own timestamp is dropped (its `duration_us`
/// says when it ended).
pub fn fold_results(events: Vec<(i64, NewEvent)>) -> Vec<(i64, NewEvent)> {
    let mut out: Vec<(i64, NewEvent)> = Vec::with_capacity(events.len());
    // (session, seq) → the index in `out` of the command waiting for its
    // result.
    let mut open: HashMap<(String, u64), usize> = HashMap::new();
    for (ts, event) in events {
        let key = event
            .session_id
            .as_deref()
            .zip(leading_seq(event.data.as_str()));
        match (event.kind.as_str(), key) {
            (COMMAND, Some((session, seq))) => {
                open.insert((session.to_string(), seq), out.len());
                out.push((ts, event));
            }
            (COMMAND_RESULT, Some((session, seq))) => {
                let target = open
                    .remove(&(session.to_string(), seq))
                    .and_then(|index| out.get_mut(index))
                    .filter(|(_, command)| command.identity == event.identity);
                match target {
                    Some((_, command)) => fold_into(command, &event.data),
                    None => out.push((ts, event)),
                }
            }
            _ => out.push((ts, event)),
        }
    }
    out
}

/// Appends `,"result":<result>` inside the command's JSON object.
fn fold_into(command: &mut NewEvent, result: &EventData) {
    let text = command.data.as_str();
    let Some(body) = text.strip_suffix('}') else {
        return;
    };
    let mut folded = String::with_capacity(text.len() + result.as_str().len() + 11);
    folded.push_str(body);
    folded.push_str(",\"result\":");
    folded.push_str(result.as_str());
    folded.push('}');
    command.data = EventData::from_json_text(folded);
}

/// The `seq` of a payload the gateway wrote: an object whose first field
/// is `"seq"` with an unsigned integer, ended by `,` or `}` and the object
/// closed at the end of the text.
fn leading_seq(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("{\"seq\":")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let after = rest.as_bytes().get(digits)?;
    if digits == 0 || digits > 19 || !matches!(after, b',' | b'}') || !text.ends_with('}') {
        return None;
    }
    rest.get(..digits)?.parse().ok()
}

impl EventRecord {
    /// A command's result: folded into a `command` event, or the data of
    /// a `command.result` event.
    pub fn command_result(&self) -> Option<&Value> {
        match self.kind.as_str() {
            COMMAND => self.data.get("result"),
            COMMAND_RESULT => Some(&self.data),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event whose payload is `{"seq":seq,…rest}`, as the gateway
    /// writes them (`serde_json::json!` would sort `seq` among the rest).
    fn event(kind: &str, session: &str, identity: &str, seq: u64, rest: &str) -> (i64, NewEvent) {
        let data = if rest.is_empty() {
            format!("{{\"seq\":{seq}}}")
        } else {
            format!("{{\"seq\":{seq},{rest}}}")
        };
        (
            1,
            NewEvent {
                kind: kind.into(),
                session_id: Some(session.into()),
                identity: Some(identity.into()),
                data: EventData::from_json_text(data),
            },
        )
    }

    fn data(events: &[(i64, NewEvent)]) -> Vec<(String, Value)> {
        events
            .iter()
            .map(|(_, event)| {
                (
                    event.kind.clone(),
                    serde_json::from_str(event.data.as_str()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_result_after_its_command_is_folded_into_it() {
        let events = vec![
            event("command", "s1", "a", 1, r#""statement":"SELECT 1""#),
            event("command", "s2", "a", 1, r#""statement":"SELECT 2""#),
            event("command.result", "s1", "a", 1, r#""rows":1"#),
            event("session.end", "s1", "a", 1, r#""reason":"x""#),
        ];
        let folded = data(&fold_results(events));
        assert_eq!(folded.len(), 3);
        assert_eq!(folded[0].0, "command");
        assert_eq!(folded[0].1["statement"], "SELECT 1");
        assert_eq!(
            folded[0].1["result"],
            serde_json::json!({"seq": 1, "rows": 1})
        );
        assert!(folded[1].1.get("result").is_none());
        assert_eq!(folded[2].0, "session.end");
    }

    #[test]
    fn results_without_their_command_in_the_batch_stay_events() {
        let events = vec![
            // Its command was indexed in an earlier batch.
            event("command.result", "s1", "a", 7, r#""rows":1"#),
            // Another session's command with the same number.
            event("command", "s2", "a", 8, ""),
            event("command.result", "s1", "a", 8, ""),
            // A second result for one command is not folded twice.
            event("command", "s3", "a", 1, ""),
            event("command.result", "s3", "a", 1, r#""n":1"#),
            event("command.result", "s3", "a", 1, r#""n":2"#),
            // Another identity under the same session id is never merged.
            event("command", "s4", "a", 1, ""),
            event("command.result", "s4", "b", 1, ""),
        ];
        let folded = data(&fold_results(events));
        let kinds: Vec<&str> = folded.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "command.result",
                "command",
                "command.result",
                "command",
                "command.result",
                "command",
                "command.result"
            ]
        );
        assert_eq!(folded[3].1["result"]["n"], 1);
        assert_eq!(folded[4].1["n"], 2);
        assert!(folded[5].1.get("result").is_none());
    }

    #[test]
    fn only_payloads_that_start_with_their_seq_are_read() {
        assert_eq!(leading_seq(r#"{"seq":12,"a":1}"#), Some(12));
        assert_eq!(leading_seq(r#"{"seq":0}"#), Some(0));
        for text in [
            r#"{"a":1,"seq":12}"#,
            r#"{"seq":"12"}"#,
            r#"{"seq":-1}"#,
            r#"{"seq":12.5}"#,
            r#"{"seq":}"#,
            r#"{"seq":12"#,
            r#"{"seq":99999999999999999999}"#,
            "",
        ] {
            assert_eq!(leading_seq(text), None, "{text}");
        }
    }

    #[test]
    fn a_folded_result_is_read_back_from_either_form() {
        let folded = fold_results(vec![
            event("command", "s1", "a", 1, ""),
            event("command.result", "s1", "a", 1, r#""rows":3"#),
        ]);
        let (_, command) = &folded[0];
        let record = EventRecord {
            id: 1,
            ts_micros: 1,
            kind: command.kind.clone(),
            session_id: command.session_id.clone(),
            identity: command.identity.clone(),
            data: serde_json::from_str(command.data.as_str()).unwrap(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        assert_eq!(record.command_result().unwrap()["rows"], 3);
        let result = EventRecord {
            kind: "command.result".into(),
            data: serde_json::json!({"seq": 2, "rows": 4}),
            ..record.clone()
        };
        assert_eq!(result.command_result().unwrap()["rows"], 4);
    }
}
