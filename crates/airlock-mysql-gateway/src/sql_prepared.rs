//! The session's SQL-level prepared statements (`PREPARE name FROM '…'`),
//! by name, as the gateway classified their text (pure). `EXECUTE name` is
//! classified through this table ([`airlock_sql::PreparedLookup`]), so it
//! is decided as the text the server runs; a name whose text the gateway
//! could not read (`PREPARE name FROM @var`) is absent, so its `EXECUTE`
//! is incomplete.
//!
//! The table follows what a forwarded text did ([`SqlPrepared::apply`]):
//! a `PREPARE` first drops the old statement of that name (as MySQL does,
//! even when the new one fails), and when the answer held an error every
//! name the text touches is forgotten, since a multi-statement text stops
//! at its first error and later `PREPARE`s may not have run.

use std::collections::HashMap;

use airlock_sql::{PreparedDefinition, PreparedLookup, SessionEffect};
use airlock_types::StatementClass;

/// SQL-level prepared statements a session may have through the gateway
/// (the server's own bound, `max_prepared_stmt_count`, is global). Past it
/// a new name is not remembered: its `EXECUTE` is incomplete.
pub const MAX_SQL_PREPARED: usize = 256;

/// The session's SQL-level prepared statements.
#[derive(Debug, Default, Clone)]
pub struct SqlPrepared {
    by_name: HashMap<String, StatementClass>,
}

impl SqlPrepared {
    /// Applies what a forwarded text did; `failed`: its answer held an
    /// error.
    pub fn apply(
        &mut self,
        effects: &[SessionEffect],
        prepares: &[PreparedDefinition],
        failed: bool,
    ) {
        let mut definitions = prepares.iter();
        for effect in effects {
            match effect {
                SessionEffect::Prepare(name) => {
                    self.by_name.remove(name);
                    let definition = definitions.by_ref().find(|d| &d.name == name);
                    if let (Some(definition), false) = (definition, failed) {
                        if self.by_name.len() < MAX_SQL_PREPARED {
                            self.by_name
                                .insert(name.clone(), definition.statement.clone());
                        }
                    }
                }
                SessionEffect::Deallocate(name) => {
                    self.by_name.remove(name);
                }
                SessionEffect::DeallocateAll => self.by_name.clear(),
                _ => {}
            }
        }
    }

    /// `COM_RESET_CONNECTION`: the server forgets every prepared statement.
    pub fn clear(&mut self) {
        self.by_name.clear();
    }

    /// How many names are known.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no name is known.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

impl PreparedLookup for SqlPrepared {
    fn prepared(&self, name: &str) -> Option<&StatementClass> {
        self.by_name.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_sql::{analyze, Dialect};
    use airlock_types::Access;

    fn run(table: &mut SqlPrepared, text: &str, failed: bool) -> airlock_types::Command {
        let analysis = analyze(Dialect::Mysql, text, &*table);
        table.apply(&analysis.effects, &analysis.prepares, failed);
        analysis.command
    }

    #[test]
    fn execute_is_classified_as_the_prepared_text() {
        let mut table = SqlPrepared::default();
        let unknown = run(&mut table, "EXECUTE s", false);
        assert!(!unknown.complete());
        run(&mut table, "PREPARE s FROM 'SELECT 1'", false);
        let read = analyze(Dialect::Mysql, "EXECUTE s", &table).command;
        assert!(read.complete());
        assert_eq!(read.access(), Access::Read);
        // Replaced by a write: EXECUTE is a write now.
        run(&mut table, "PREPARE s FROM 'DELETE FROM t'", false);
        let write = analyze(Dialect::Mysql, "EXECUTE s", &table).command;
        assert_eq!(write.access(), Access::Write);
        // Dynamic text: unknown, so EXECUTE is incomplete.
        run(&mut table, "PREPARE s FROM @q", false);
        assert!(!analyze(Dialect::Mysql, "EXECUTE s", &table)
            .command
            .complete());
        // A failed text forgets what it touched.
        run(&mut table, "PREPARE s FROM 'SELECT 1'", true);
        assert!(table.is_empty());
        run(&mut table, "PREPARE s FROM 'SELECT 1'", false);
        run(&mut table, "DEALLOCATE PREPARE s", false);
        assert!(table.is_empty());
    }
}
