//! The prepared statements of one session, by the id the server gave them
//! (pure). Each one keeps the decision taken at `COM_STMT_PREPARE`, so an
//! execution runs only what was decided then: an id the gateway has not
//! seen prepared is unknown and refused, whatever the server would say.

use std::collections::HashMap;
use std::sync::Arc;

use airlock_core::gate::Decision;
use airlock_mysql::column::ColumnDefinition;
use airlock_mysql::row::ValueType;

/// Most statements one session may hold (MySQL's own
/// `max_prepared_stmt_count` defaults to 16382 for the whole server).
pub const MAX_STATEMENTS: usize = 4096;

/// MariaDB's id for "the statement prepared just before" (pipelined
/// prepare and execute).
pub const LAST_PREPARED: u32 = u32::MAX;

/// One prepared statement.
#[derive(Clone)]
pub struct Prepared {
    pub text: Arc<str>,
    /// The decision at prepare: mask plan, per-execution rate limits, the
    /// review template when executions are held for review.
    pub decision: Decision,
    pub parameter_count: u16,
    /// The parameter types of the last execution (a client may not resend
    /// them).
    pub types: Option<Vec<ValueType>>,
    /// Parameters sent with `COM_STMT_SEND_LONG_DATA` since the last
    /// execution.
    pub long_data: Vec<u16>,
    /// The columns of the last execution's result (for `COM_STMT_FETCH`).
    pub columns: Vec<ColumnDefinition>,
}

/// The session's prepared statements.
#[derive(Default)]
pub struct Statements {
    by_id: HashMap<u32, Prepared>,
    /// The last prepare that succeeded; `None` after one that failed or was
    /// refused (so MariaDB's "last prepared" id cannot reach an older one).
    last: Option<u32>,
}

impl Statements {
    /// Whether another statement may be prepared.
    pub fn is_full(&self) -> bool {
        self.by_id.len() >= MAX_STATEMENTS
    }

    /// The server confirmed a prepare.
    pub fn prepared(&mut self, statement_id: u32, statement: Prepared) {
        self.by_id.insert(statement_id, statement);
        self.last = Some(statement_id);
    }

    /// A prepare failed or was refused.
    pub fn prepare_failed(&mut self) {
        self.last = None;
    }

    /// The id a command names, resolved (`LAST_PREPARED` included).
    pub fn resolve(&self, statement_id: u32) -> Option<u32> {
        let id = if statement_id == LAST_PREPARED {
            self.last?
        } else {
            statement_id
        };
        self.by_id.contains_key(&id).then_some(id)
    }

    pub fn get(&self, statement_id: u32) -> Option<&Prepared> {
        self.resolve(statement_id)
            .and_then(|id| self.by_id.get(&id))
    }

    pub fn get_mut(&mut self, statement_id: u32) -> Option<&mut Prepared> {
        let id = self.resolve(statement_id)?;
        self.by_id.get_mut(&id)
    }

    pub fn close(&mut self, statement_id: u32) -> bool {
        let Some(id) = self.resolve(statement_id) else {
            return false;
        };
        if self.last == Some(id) {
            self.last = None;
        }
        self.by_id.remove(&id).is_some()
    }

    /// `COM_RESET_CONNECTION` and `COM_CHANGE_USER` drop every statement.
    pub fn clear(&mut self) {
        self.by_id.clear();
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Prepared {
        Prepared {
            text: "select ?".into(),
            decision: Decision::forward(),
            parameter_count: 1,
            types: None,
            long_data: Vec::new(),
            columns: Vec::new(),
        }
    }

    #[test]
    fn only_ids_seen_prepared_resolve() {
        let mut statements = Statements::default();
        assert_eq!(statements.resolve(1), None);
        assert_eq!(statements.resolve(LAST_PREPARED), None);
        statements.prepared(7, statement());
        assert_eq!(statements.resolve(7), Some(7));
        assert_eq!(statements.resolve(LAST_PREPARED), Some(7));
        assert_eq!(statements.resolve(8), None);
        // A refused prepare: "the last prepared" must not fall back to 7.
        statements.prepare_failed();
        assert_eq!(statements.resolve(LAST_PREPARED), None);
        assert_eq!(statements.resolve(7), Some(7));
        assert!(statements.close(7));
        assert_eq!(statements.resolve(7), None);
    }
}
