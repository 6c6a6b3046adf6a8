//! The session's bookkeeping driven by arbitrary bytes, without sockets:
//! what the fuzz target `mysql_session` (and a property test here) runs.
//!
//! Each round decodes one client command with the session's capabilities
//! and does what the relay does with it before and after forwarding: reads
//! a `KILL` and maps its id through [`ConnectionIds`], looks for a refused
//! character-set change, classifies SQL text through the session's
//! SQL-level prepared statements and applies its effects
//! ([`SqlPrepared`]), keeps the binary-protocol statement table
//! ([`Statements`]) and decodes the parameters of an execution, then feeds
//! an upstream answer to the [`ResponseTracker`] for the command's kind.
//! None of it may panic, and the invariants the relay relies on must hold:
//! bounded tables, an `EXECUTE` of a name never prepared is incomplete, a
//! `KILL` maps only to the session's own identity.

use airlock_core::gate::Decision;
use airlock_mysql::command::Command;
use airlock_mysql::response::{ResponseKind, ResponseTracker};
use airlock_mysql::Capabilities;
use airlock_sql::{analyze, Dialect, PreparedLookup, SessionEffect};

use crate::kill::{kill_text, ConnectionIds, KillText};
use crate::sql_prepared::{SqlPrepared, MAX_SQL_PREPARED};
use crate::statements::{Prepared, Statements};

/// Rounds per input, so one input stays fast.
const MAX_ROUNDS: usize = 64;

/// Splits off a length-prefixed chunk (one byte of length, then bytes).
fn chunk<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&length, rest) = data.split_first()?;
    let length = usize::from(length).min(rest.len());
    let (taken, rest) = rest.split_at(length);
    *data = rest;
    Some(taken)
}

/// Runs the session bookkeeping over `data`; panics only when an invariant
/// breaks.
pub fn drive(mut data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    data = rest;
    let capabilities = Capabilities::PROTOCOL_41
        | Capabilities::SECURE_CONNECTION
        | Capabilities::PLUGIN_AUTH
        | Capabilities::MULTI_RESULTS
        | if flags & 1 == 1 {
            Capabilities::DEPRECATE_EOF
        } else {
            Capabilities::empty()
        };
    let ids = ConnectionIds::default();
    let mine = ids.allocate();
    let theirs = ids.allocate();
    ids.relaying(mine, "agent", "shop", 10);
    ids.relaying(theirs, "other", "shop", 20);
    let mut sql_prepared = SqlPrepared::default();
    let mut statements = Statements::default();
    let mut next_statement_id = 1u32;
    for _ in 0..MAX_ROUNDS {
        let (Some(packet), Some(answer)) = (chunk(&mut data), chunk(&mut data)) else {
            break;
        };
        let Ok(command) = Command::decode(packet, capabilities) else {
            continue;
        };
        match &command {
            Command::Query { query } | Command::StmtPrepare { query } => {
                let text = String::from_utf8_lossy(query);
                query_round(&text, &ids, &mut sql_prepared, flags & 2 == 2);
                if matches!(command, Command::StmtPrepare { .. }) && !statements.is_full() {
                    statements.prepared(next_statement_id, prepared(&text));
                    next_statement_id = next_statement_id.wrapping_add(1);
                }
            }
            Command::StmtExecute(execute) => {
                if let Some(statement) = statements.get(execute.statement_id) {
                    let _ = execute.parameters(
                        usize::from(statement.parameter_count),
                        statement.types.as_deref(),
                        &statement.long_data,
                    );
                }
            }
            Command::StmtClose { statement_id } => {
                statements.close(*statement_id);
            }
            Command::ResetConnection => {
                statements.clear();
                sql_prepared.clear();
            }
            Command::ProcessKill { connection_id } => {
                let thread = ids.upstream_thread((*connection_id).into(), "agent", "shop");
                assert!(matches!(thread, None | Some(10)), "{thread:?}");
            }
            _ => {}
        }
        if let Some(kind) = ResponseKind::for_command(&command) {
            let mut tracker = ResponseTracker::for_kind(kind, capabilities);
            let mut rest = answer;
            while let Some(packet) = chunk(&mut rest) {
                if tracker.feed(packet).is_err() || tracker.is_complete() {
                    break;
                }
            }
        }
        assert!(sql_prepared.len() <= MAX_SQL_PREPARED);
    }
}

/// A text: its `KILL`, its character-set changes, its classification
/// through the session's prepared names, and their update.
fn query_round(text: &str, ids: &ConnectionIds, sql_prepared: &mut SqlPrepared, failed: bool) {
    if let KillText::One(kill) = kill_text(text) {
        let thread = ids.upstream_thread(kill.id, "agent", "shop");
        assert!(
            matches!(thread, None | Some(10)),
            "a KILL mapped to another identity's thread: {thread:?}"
        );
    }
    let _ = crate::gate::unsafe_character_set(text);
    let analysis = analyze(Dialect::Mysql, text, &*sql_prepared);
    for effect in &analysis.effects {
        if let SessionEffect::Execute(name) = effect {
            if sql_prepared.prepared(name).is_none()
                && !analysis.prepares.iter().any(|d| &d.name == name)
            {
                assert!(
                    !analysis.command.complete(),
                    "EXECUTE of an unknown name classified complete: {text}"
                );
            }
        }
    }
    sql_prepared.apply(&analysis.effects, &analysis.prepares, failed);
}

fn prepared(text: &str) -> Prepared {
    Prepared {
        text: text.into(),
        decision: Decision::forward(),
        parameter_count: u16::try_from(text.bytes().filter(|byte| *byte == b'?').count())
            .unwrap_or(u16::MAX),
        types: None,
        long_data: Vec::new(),
        columns: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A client packet: a command byte and a text the SQL paths read.
    fn packet(command: u8, text: &str) -> Vec<u8> {
        let mut packet = vec![command];
        packet.extend_from_slice(text.as_bytes());
        let mut framed = vec![u8::try_from(packet.len()).unwrap_or(u8::MAX)];
        framed.extend(packet.into_iter().take(255));
        framed.push(0); // an empty answer
        framed
    }

    #[test]
    fn a_scripted_session_keeps_its_invariants() {
        let mut data = vec![0u8];
        for text in [
            "PREPARE s FROM 'SELECT 1'",
            "EXECUTE s",
            "PREPARE s FROM @q",
            "EXECUTE s",
            "KILL QUERY 10",
            "KILL QUERY 20",
            "SET NAMES gbk",
            "DEALLOCATE PREPARE s",
        ] {
            data.extend(packet(0x03, text));
        }
        data.extend(packet(0x16, "select ?"));
        drive(&data);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_sessions_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            drive(&data);
        }

        #[test]
        fn sql_shaped_sessions_never_panic(
            texts in proptest::collection::vec(
                "(PREPARE|EXECUTE|DEALLOCATE PREPARE|KILL|KILL QUERY|SET NAMES|SELECT) [a-z0-9@' ]{0,20}",
                0..12,
            ),
        ) {
            let mut data = vec![2u8];
            for text in &texts {
                data.extend(packet(0x03, text));
            }
            drive(&data);
        }
    }
}
