//! MySQL `SET`: which assignments are privileged.
//!
//! A MySQL `SET` is a comma-separated list, and every item is judged:
//! `SET @a = 1, sql_mode = ''` is as privileged as its worst item. An item
//! is `admin` when it changes a setting of [`MYSQL_PRIVILEGED_SETTINGS`]
//! (or of a prefix family in [`MYSQL_PRIVILEGED_SETTING_PREFIXES`]), when
//! it is GLOBAL or PERSIST (server-wide), or when it is `SET PASSWORD`,
//! `SET ROLE`, `SET DEFAULT ROLE`, a character-set change to a set that is
//! not ASCII-safe (see [`super::mysql_charset`]; to a safe one it is
//! `write`), or a
//! transaction characteristic `READ WRITE` (it undoes a read-only guard). A
//! user variable (`@a = …`) only changes the session's scratch values: the
//! item is `read` and its value expression decides. Other session
//! variables are `write`. An item whose shape is not understood is `admin`
//! and incomplete.
//!
//! MariaDB's `SET STATEMENT assignments FOR statement` judges the
//! assignments the same way and classifies the statement.

use super::{Builder, Mode, Statement};
use crate::lexer::TokenKind;
use airlock_types::{Access, Operation};

/// MySQL / MariaDB session variables whose change alters what later
/// statements may do, how the classifier must read them, or what the audit
/// trail and integrity checks see. Changing them is `admin`.
pub const MYSQL_PRIVILEGED_SETTINGS: &[&str] = &[
    // How statement text is lexed and parsed.
    "sql_mode",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
    "names",
    // Read-only guards and safety nets.
    "transaction_read_only",
    "tx_read_only",
    "read_only",
    "sql_safe_updates",
    "sql_select_limit",
    "max_statement_time",
    "max_execution_time",
    // Integrity checks.
    "foreign_key_checks",
    "unique_checks",
    "check_constraint_checks",
    // Audit, logging and replication.
    "sql_log_bin",
    "sql_log_off",
    "general_log",
    "skip_replication",
    "pseudo_slave_mode",
    "pseudo_thread_id",
    "server_id",
    "timestamp",
    // Who the session acts as and what it may load.
    "role",
    "default_role",
    "password",
    "local_infile",
    "secure_file_priv",
    "plugin_dir",
    "debug",
    "debug_dbug",
    "debug_sync",
    "session_track_system_variables",
];

/// Families of privileged variables (logging, binary log, replication,
/// audit plugins, Galera).
pub const MYSQL_PRIVILEGED_SETTING_PREFIXES: &[&str] = &[
    "binlog_",
    "gtid_",
    "log_",
    "rpl_",
    "server_audit",
    "slave_",
    "replica_",
    "slow_query_log",
    "wsrep_",
];

fn privileged(name: &str) -> bool {
    MYSQL_PRIVILEGED_SETTINGS.contains(&name)
        || MYSQL_PRIVILEGED_SETTING_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// The access of assigning `@@scope.name` (given without `@@`), and
/// whether its shape is understood.
fn system_variable_access(system: &str) -> (Access, bool) {
    let mut parts = system.split('.');
    let first = parts.next().unwrap_or("");
    let (scope, name) = match parts.next() {
        Some(name) => (first, name),
        None => ("", first),
    };
    let name = name.trim_matches('`');
    if parts.next().is_some() || matches!(scope, "global" | "persist" | "persist_only") {
        return (Access::Admin, true);
    }
    if !matches!(scope, "" | "session" | "local") {
        return (Access::Admin, false);
    }
    if privileged(name) {
        (Access::Admin, true)
    } else {
        (Access::Write, true)
    }
}

impl Statement<'_> {
    /// A character-set item (`NAMES x`, `CHARACTER SET x`,
    /// `character_set_client = x` …): an ordinary setting (`write`) when
    /// the new set is ASCII-safe (a gateway refuses the others), `admin`
    /// otherwise. False when the item is not one.
    fn mysql_character_set_item(&self, builder: &mut Builder, from: usize, to: usize) -> bool {
        let mut found = Vec::new();
        self.character_set_items(from, to, &mut found);
        let Some(change) = found.first() else {
            return false;
        };
        builder.raise(if change.is_ascii_safe() {
            Access::Write
        } else {
            Access::Admin
        });
        true
    }

    /// `SET item, item, …` (tokens `from..to`).
    pub(super) fn mysql_set(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Set, Access::Read);
        if self.kw(from, "statement") {
            // `SET STATEMENT a = 1, … FOR statement`.
            let Some(for_at) = self.find_word(from + 1, to, "for") else {
                builder.incomplete();
                builder.raise(Access::Admin);
                return;
            };
            self.mysql_set_list(builder, from + 1, for_at);
            self.statement(builder, for_at + 1, to);
            return;
        }
        let scoped = self.is_one_of(
            from,
            &["global", "session", "local", "persist", "persist_only"],
        );
        if self.kw(from, "transaction") || (scoped && self.kw(from + 1, "transaction")) {
            // `SET [scope] TRANSACTION characteristic, …`: one item.
            self.mysql_set_item(builder, from, to);
            return;
        }
        self.mysql_set_list(builder, from, to);
    }

    /// Judges every top-level comma-separated item of `from..to`.
    fn mysql_set_list(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut start = from;
        let mut index = from;
        while index <= to {
            if index < to && self.kind(index) == Some(TokenKind::LParen) {
                index = self.close_of(index, to) + 1;
                continue;
            }
            if index == to || self.kind(index) == Some(TokenKind::Comma) {
                if start >= index {
                    builder.incomplete();
                    builder.raise(Access::Admin);
                } else {
                    self.mysql_set_item(builder, start, index);
                }
                start = index + 1;
            }
            index += 1;
        }
    }

    /// One assignment `from..to`.
    fn mysql_set_item(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut index = from;
        let mut buffer = [0u8; 32];
        match self.word(index, &mut buffer) {
            Some("global" | "persist" | "persist_only") => {
                // Server-wide.
                builder.raise(Access::Admin);
                index += 1;
            }
            Some("session" | "local") => index += 1,
            Some("names" | "charset" | "character") => {
                self.mysql_character_set_item(builder, from, to);
                return;
            }
            Some("password" | "role" | "default") => {
                // DEFAULT ROLE ….
                builder.raise(Access::Admin);
                return;
            }
            _ => {}
        }
        if self.mysql_character_set_item(builder, from, to) {
            return;
        }
        if self.kw(index, "transaction") {
            // Transaction characteristics; READ WRITE undoes a read-only
            // guard, like `transaction_read_only = 0`.
            let mut position = index;
            let mut read_write = false;
            while position + 1 < to {
                read_write |= self.kw(position, "read") && self.kw(position + 1, "write");
                position += 1;
            }
            builder.raise(if read_write {
                Access::Admin
            } else {
                Access::Write
            });
            return;
        }
        let value_at = match self.kind(index) {
            Some(TokenKind::Variable) => {
                // A user variable (`@a`) only changes the session's
                // scratch values; a system variable (`@@[scope.]name`) is
                // judged like `SET [scope] name`.
                let text = self.text(index).to_ascii_lowercase();
                if let Some(system) = text.strip_prefix("@@") {
                    let (access, sure) = system_variable_access(system);
                    builder.raise(access);
                    if !sure {
                        builder.incomplete();
                    }
                }
                index + 1
            }
            _ => match self.qualified_name(index) {
                Some((name, after)) => {
                    if name.contains('.') || privileged(&name) {
                        builder.raise(Access::Admin);
                    } else {
                        builder.raise(Access::Write);
                    }
                    after
                }
                None => {
                    builder.raise(Access::Admin);
                    builder.incomplete();
                    return;
                }
            },
        };
        let assigns = self.kind(value_at) == Some(TokenKind::Operator)
            && matches!(self.text(value_at), "=" | ":=");
        if !assigns || value_at + 1 >= to {
            builder.raise(Access::Admin);
            builder.incomplete();
            return;
        }
        // The value is an expression: functions and subqueries count.
        self.walk(builder, value_at + 1, to, Mode::QUERY);
    }
}
