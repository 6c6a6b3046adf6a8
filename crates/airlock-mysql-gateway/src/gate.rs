//! The SQL side of the command gate for MySQL: every statement text a
//! command carries (`COM_QUERY`, `COM_STMT_PREPARE`, and the commands that
//! amount to a statement: `COM_INIT_DB` is `USE db`, `COM_FIELD_LIST` is
//! `SHOW COLUMNS FROM t`) is classified with the MySQL dialect (cached by
//! text) and decided by the core's [`Gate`]. Protocol code never decides.
//!
//! The text is read as UTF-8 with invalid bytes replaced: the session's
//! character set is one where every byte of a quote, backslash or comment
//! is ASCII and no multi-byte character contains one (see
//! [`crate::charset`]), so the replacement cannot change where a string or
//! a statement ends.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use airlock_core::gate::{Decision, Gate, Limits};
use airlock_core::state::GatewayState;
use airlock_sql::{classify, Dialect};
use airlock_types::{Command, ConnectionInfo, Identity};

/// Classifications kept per session, by statement text.
const CLASSIFICATION_CACHE: usize = 512;
/// Longest text whose classification is cached.
const CACHED_TEXT_BYTES: usize = 4096;

/// One session's decision point for SQL texts.
pub struct MySqlGate {
    core: Gate,
    cache: HashMap<String, Command>,
}

impl MySqlGate {
    pub fn new(state: Arc<GatewayState>, identity: Identity, connection: ConnectionInfo) -> Self {
        Self {
            core: Gate::new(state, identity, connection),
            cache: HashMap::new(),
        }
    }

    /// The core's gate (reviews, rate limits per execution).
    pub fn core(&self) -> &Gate {
        &self.core
    }

    fn classify(&mut self, text: &str) -> Command {
        if let Some(command) = self.cache.get(text) {
            return command.clone();
        }
        // SQL-level `EXECUTE name` is classified without the session's
        // `PREPARE`s (they are not tracked): it is incomplete, so only a
        // rule that allows `complete: false` lets it run.
        let command = classify(Dialect::Mysql, text);
        if text.len() <= CACHED_TEXT_BYTES {
            if self.cache.len() >= CLASSIFICATION_CACHE {
                self.cache.clear();
            }
            self.cache.insert(text.to_string(), command.clone());
        }
        command
    }

    /// Decides one statement text. Rate limits are consumed now
    /// ([`Limits::Now`]) or at each execution of a prepared statement.
    pub fn decide(&mut self, text: &str, limits: Limits) -> Decision {
        if text
            .bytes()
            .all(|byte| byte.is_ascii_whitespace() || byte == b';')
        {
            // Nothing that can hide anything: the server answers "Query was
            // empty" and runs nothing.
            let mut empty = Decision::forward();
            empty.details = json!({"verdict": "empty"});
            empty.version = self.core.live_version();
            return empty;
        }
        let command = self.classify(text);
        self.core.decide(&command, limits, text)
    }
}

/// The statement a `COM_INIT_DB` amounts to: it changes what unqualified
/// names mean, so it is decided as the `USE` it is.
pub fn init_db_statement(schema: &[u8]) -> String {
    format!("USE {}", quote_identifier(schema))
}

/// The statement a `COM_FIELD_LIST` amounts to (it reads a table's column
/// definitions).
pub fn field_list_statement(table: &[u8]) -> String {
    format!("SHOW COLUMNS FROM {}", quote_identifier(table))
}

/// A backquoted identifier, inner backquotes doubled (what the server reads
/// back as the same name).
fn quote_identifier(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_become_the_statements_they_are() {
        assert_eq!(init_db_statement(b"shop"), "USE `shop`");
        assert_eq!(init_db_statement(b"a`b"), "USE `a``b`");
        assert_eq!(
            field_list_statement(b"t`; DROP TABLE x; --"),
            "SHOW COLUMNS FROM `t``; DROP TABLE x; --`"
        );
        let classified = classify(Dialect::Mysql, &field_list_statement(b"t`; DROP TABLE x"));
        assert_eq!(classified.statements().len(), 1);
    }
}
