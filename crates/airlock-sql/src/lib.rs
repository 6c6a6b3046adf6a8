//! PostgreSQL-dialect SQL classifier for airlock.
//!
//! This crate owns one question: *what does this SQL text do?* It splits a
//! (possibly multi-statement) text into statements and classifies each into
//! an [`airlock_types::StatementClass`]: operations, access (`read`, `write`,
//! `admin`), tables read and written, functions called, whether UPDATE and
//! DELETE are bounded by a WHERE, and whether the classifier is sure
//! (`complete`).
//!
//! When the classifier gives up, [`syntax_error`] asks PostgreSQL's real
//! grammar (libpg_query) whether the text parses at all, so a typo can be
//! answered as PostgreSQL's own syntax error (`42601`) rather than a policy
//! refusal.
//!
//! It never decides whether a statement may run (that is `airlock-policy`),
//! does no I/O (but for libpg_query's redirection of stderr during a
//! syntax check, see [`syntax_error`]), and must never panic on any input: the lexer and classifier
//! only use bounds-checked access, and nesting is bounded.
//!
//! # Classification rules worth knowing
//! - A statement the classifier does not fully understand is `complete:
//!   false`, with `unknown` among its operations when it cannot tell what it
//!   is; it is never `read`.
//! - `DO` and `CALL` run code the classifier cannot see: operation `do` /
//!   `call`, access `write`, always `complete: false` (only a rule matching
//!   `complete: false` can allow them).
//! - Functions not known to be side-effect free (see [`functions`]) are listed
//!   in `unknown_functions` and make the statement at least `write`.
//! - `SET` of a setting in [`PRIVILEGED_SETTINGS`] (role, session
//!   authorization, read-only guards, `search_path`, lexing-relevant
//!   settings) and `SET ROLE` / `SET SESSION AUTHORIZATION` / `SET SCHEMA`
//!   (an alias of `search_path`) / `SET NAMES` / `RESET ALL` are `admin`
//!   (as is `set_config(…)`, whatever the setting); other `SET` is `write`;
//!   `SHOW` is `read`.
//! - `has_where` is true for an UPDATE or DELETE only when its top-level
//!   WHERE clause can bound it: a WHERE with a top-level `OR` branch that
//!   references no column (`WHERE true`, `WHERE 1=1 OR id=1`) or compares an
//!   expression to itself (`WHERE id = id`) counts as no WHERE (see
//!   `classify/predicate.rs` for the exact rule and its limits).
//! - Transaction control (`BEGIN`, `COMMIT`, `SAVEPOINT` …) is operation
//!   `transaction` with access `read`: it changes no data by itself (the
//!   statements inside the transaction are classified on their own).
//!   `COMMIT PREPARED` / `ROLLBACK PREPARED` are `write`.
//! - `EXPLAIN` without `ANALYZE` is `explain` + `read` (the statement is only
//!   planned; unknown functions still make it `write`, as planning may
//!   evaluate a function declared `IMMUTABLE`); `EXPLAIN ANALYZE` carries the
//!   inner statement's operations and access.
//! - `COPY … FROM STDIN` is `copy_from` + `write`, `COPY … TO STDOUT` is
//!   `copy_to` + `read`; a server-side file or `PROGRAM` makes either `admin`.
//! - Row locks (`SELECT … FOR UPDATE`) add operation `lock` and `write`;
//!   `LOCK TABLE` lists the locked tables as written.
//! - `PREPARE` is `prepare` + `read` (nothing runs); `EXECUTE` takes the
//!   classification of the prepared statement through [`PreparedLookup`], and
//!   is incomplete when the name is unknown.
//!
//! # Known limits
//! The classifier sees text, not the catalog: user-defined operators, casts,
//! triggers, rules, views, row-level-security policies and functions called
//! in attribute notation (`t.f` for `f(t)`) run code it cannot see. Policies
//! that must be strict about those should restrict DDL (which is `write`).

#![deny(clippy::indexing_slicing)]

mod classify;
pub mod functions;
mod lexer;
mod mysql;
mod mysql_lexer;
mod mysql_split;
mod split;
mod syntax;

use airlock_types::{Command, Operation, StatementClass};
use std::collections::HashMap;

pub use classify::{
    MYSQL_PRIVILEGED_SETTINGS, MYSQL_PRIVILEGED_SETTING_PREFIXES, PRIVILEGED_SETTINGS,
};
pub use functions::{function_effect, FunctionEffect};
pub use syntax::{
    syntax_error, SyntaxError, CHECK_TIMEOUT, MAX_CHECKED_BYTES, MAX_CHECKED_GLOBAL_WORDS,
    MAX_QUEUED_CHECKS,
};

/// The SQL dialect of the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL (fully implemented).
    Postgres,
    /// MySQL / MariaDB (see the crate doc for its rules).
    Mysql,
}

/// The prepared statements of a session, by name, so `EXECUTE name` can be
/// classified as what was prepared.
pub trait PreparedLookup {
    /// The classification remembered for `PREPARE name AS …`.
    fn prepared(&self, name: &str) -> Option<&StatementClass>;

    /// The classification of the query of cursor `name` (`DECLARE name
    /// CURSOR FOR query`), for `FETCH` and `MOVE`. Without one, a `FETCH`
    /// is incomplete: its rows could come from anything.
    fn cursor(&self, _name: &str) -> Option<&StatementClass> {
        None
    }
}

/// A session with no prepared statements.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPrepared;

impl PreparedLookup for NoPrepared {
    fn prepared(&self, _name: &str) -> Option<&StatementClass> {
        None
    }
}

impl PreparedLookup for HashMap<String, StatementClass> {
    fn prepared(&self, name: &str) -> Option<&StatementClass> {
        self.get(name)
    }
}

/// A statement prepared with `PREPARE name AS body`: what a session should
/// remember to classify a later `EXECUTE name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedDefinition {
    /// The prepared statement's name (lowercased unless quoted).
    pub name: String,
    /// The body's text, as the server will run it.
    pub body: String,
    /// The classification of the body.
    pub statement: StatementClass,
}

/// Classifies `sql` with no prepared statements known.
pub fn classify(dialect: Dialect, sql: &str) -> Command {
    classify_with(dialect, sql, &NoPrepared)
}

/// Classifies `sql`, resolving `EXECUTE name` through `prepared`.
pub fn classify_with(dialect: Dialect, sql: &str, prepared: &dyn PreparedLookup) -> Command {
    let statements = match dialect {
        Dialect::Postgres => {
            let tokens = lexer::tokenize(sql);
            split::split_tokens(sql, &tokens)
                .into_iter()
                .map(|statement| {
                    classify::Statement::new(sql, statement.tokens, prepared).classify()
                })
                .collect()
        }
        Dialect::Mysql => mysql::classify_mysql(sql, prepared),
    };
    Command::sql(sql, statements)
}

/// Splits `sql` into statement texts (without the terminating `;`, comments
/// before the first token excluded). Empty statements are dropped. For
/// [`Dialect::Mysql`] the boundaries are those of the default `sql_mode`
/// reading (a text whose boundaries depend on the mode is classified
/// incomplete).
pub fn split_statements(dialect: Dialect, sql: &str) -> Vec<&str> {
    match dialect {
        Dialect::Postgres => {
            let tokens = lexer::tokenize(sql);
            split::split_tokens(sql, &tokens)
                .into_iter()
                .filter_map(|statement| sql.get(statement.start..statement.end))
                .collect()
        }
        Dialect::Mysql => mysql::split_mysql(sql),
    }
}

/// The `PREPARE name AS body` definitions in a classified command, in order,
/// for the session to remember (a later `PREPARE` of the same name replaces
/// an earlier one, as in PostgreSQL after `DEALLOCATE`).
pub fn prepared_definitions(dialect: Dialect, command: &Command) -> Vec<PreparedDefinition> {
    let has_prepare = command
        .statements()
        .iter()
        .any(|statement| statement.operations.contains(&Operation::Prepare));
    if !has_prepare {
        return Vec::new();
    }
    let sql = command.text.as_str();
    if dialect == Dialect::Mysql {
        return mysql::mysql_prepared_definitions(sql)
            .into_iter()
            .map(|(name, body, statement)| PreparedDefinition {
                name,
                body,
                statement,
            })
            .collect();
    }
    let tokens = lexer::tokenize(sql);
    split::split_tokens(sql, &tokens)
        .into_iter()
        .filter_map(|statement| {
            classify::Statement::new(sql, statement.tokens, &NoPrepared).prepared_definition()
        })
        .map(|(name, body, statement)| PreparedDefinition {
            name,
            body,
            statement,
        })
        .collect()
}

/// What a statement does to the session's named server-side objects
/// (prepared statements, which SQL and the extended protocol share, and
/// portals, which SQL cursors and protocol portals share).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEffect {
    /// `PREPARE name AS …`.
    Prepare(String),
    /// `DEALLOCATE [PREPARE] name`.
    Deallocate(String),
    /// `DEALLOCATE ALL`, or a `DEALLOCATE` or `PREPARE` whose name cannot
    /// be read.
    DeallocateAll,
    /// `DISCARD ALL`: every prepared statement and portal.
    DiscardAll,
    /// `CLOSE name`.
    Close(String),
    /// `CLOSE ALL`, or a `CLOSE` or `DECLARE` whose name cannot be read.
    CloseAll,
    /// `DECLARE name … CURSOR`: a portal of that name.
    Declare(String),
    /// `EXECUTE name`: runs what the session prepared under that name.
    Execute(String),
    /// MySQL `USE db`: unqualified table names now name tables of `db`
    /// (lowercased). A gateway that matches qualified table names must
    /// track it, starting from the database of the handshake.
    UseDatabase(String),
    /// MySQL: the statement assigns user variable `@name` (lowercased):
    /// `SET @a = …`, `@a := …`, `SELECT … INTO @a`. Its value is no longer
    /// what the session last knew (see `PREPARE … FROM @a`).
    SetUserVariable(String),
}

/// The [`SessionEffect`]s of the statements in `sql`, in order.
pub fn session_effects(dialect: Dialect, sql: &str) -> Vec<SessionEffect> {
    if dialect == Dialect::Mysql {
        return mysql::mysql_session_effects(sql);
    }
    let tokens = lexer::tokenize(sql);
    split::split_tokens(sql, &tokens)
        .into_iter()
        .filter_map(|statement| {
            classify::Statement::new(sql, statement.tokens, &NoPrepared).session_effect()
        })
        .collect()
}
