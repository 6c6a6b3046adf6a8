//! Fuzz target: the SQL classifier must never panic, and must never report an
//! incomplete statement as read-only, whatever the input.
#![no_main]

use airlock_sql::{classify, prepared_definitions, split_statements, Dialect};
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
    }
});
