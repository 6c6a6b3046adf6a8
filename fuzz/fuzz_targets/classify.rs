//! Fuzz target: the SQL classifier must never panic, and must never report an
//! incomplete statement as read-only, whatever the input. The syntax check
//! (PostgreSQL's grammar, asked when the classifier gives up) must never
//! crash or hang either, and its position must lie within the text.
#![no_main]

use airlock_sql::{classify, prepared_definitions, split_statements, syntax_error, Dialect};
use airlock_types::Access;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let command = classify(Dialect::Postgres, sql);
        for statement in &command.statements {
            assert!(statement.complete || statement.access != Some(Access::Read));
        }
        let _ = split_statements(Dialect::Postgres, sql);
        let _ = prepared_definitions(Dialect::Postgres, &command);
        if let Some(error) = syntax_error(sql) {
            assert!(!error.message.is_empty());
            if let Some(position) = error.position {
                let characters = sql.chars().count() as u64;
                assert!(position >= 1 && u64::from(position) <= characters + 1);
            }
        }
    }
});
