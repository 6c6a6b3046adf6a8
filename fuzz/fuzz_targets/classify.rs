//! Fuzz target: the SQL classifier must never panic, and must never report an
//! incomplete statement as read-only, whatever the input, in either dialect
//! (PostgreSQL and MySQL / MariaDB). The syntax check (PostgreSQL's grammar,
//! asked when the classifier gives up) must never crash or hang either, and
//! its position must lie within the text.
#![no_main]

use airlock_sql::{
    classify, prepared_definitions, session_effects, split_statements, syntax_error, Dialect,
};
use airlock_types::Access;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        for dialect in [Dialect::Postgres, Dialect::Mysql] {
            let command = classify(dialect, sql);
            for statement in command.statements() {
                assert!(statement.complete || statement.access != Some(Access::Read));
            }
            let statements = split_statements(dialect, sql);
            if dialect == Dialect::Mysql {
                // One classification per statement the splitter reports.
                assert_eq!(statements.len(), command.statements().len());
            }
            let _ = prepared_definitions(dialect, &command);
            let _ = session_effects(dialect, sql);
        }
        if let Some(error) = syntax_error(sql) {
            assert!(!error.message.is_empty());
            if let Some(position) = error.position {
                let characters = sql.chars().count() as u64;
                assert!(position >= 1 && u64::from(position) <= characters + 1);
            }
        }
    }
});
