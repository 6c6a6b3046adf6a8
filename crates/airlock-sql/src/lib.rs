//! SQL classifier for airlock: PostgreSQL, and MySQL / MariaDB
//! ([`Dialect::Mysql`], rules below).
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
//!
//! # MySQL / MariaDB
//! The same API and the same meaning of access, `complete`, tables,
//! functions and `has_where`; the shared classifier walks SELECT bodies,
//! CTEs, joins and WHERE clauses for both dialects. What differs:
//!
//! **Lexing** (`mysql_lexer.rs`, checked against MariaDB by
//! `tests/mysql_server.rs`): `` `identifiers` `` with doubled backticks, `#`
//! comments, `-- ` comments only when the dashes are followed by
//! whitespace, a control character or the end (`1--1` is arithmetic),
//! non-nesting `/* */`, `'…'`/`"…"` strings with `\` escapes and doubled
//! quotes, `@user` and `@@system` variables, `X'…'`, `B'…'`, `N'…'`,
//! `_charset'…'`, `0x…`, `0b…`, identifiers that start with a digit.
//! - Executable comments are code. `/*! … */` always runs; the contents of
//!   version-gated `/*!NNNNN … */` and of MariaDB's `/*M! … */` may or may
//!   not run, so a statement holding them is classified both with and
//!   without them and the two are merged (`DELETE FROM t /*!99999 WHERE id
//!   = 1 */` is unbounded). A `;` inside an executable comment is a
//!   boundary and makes both sides `unknown` and incomplete; where the
//!   readings disagree on where the comment ends (a string or comment
//!   inside that spans its `*/`, a nested `/*`, a six-digit `/*!` version),
//!   the rest of the text is `unknown`, split at every `;`. `/*+ … */`
//!   hints are comments.
//! - `sql_mode` changes lexing (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`) and
//!   the server may already run with either: a text holding a `\` or a
//!   `"` is lexed under all four combinations, and it is complete only if
//!   every reading splits it the same way (a reading in which a string
//!   runs unterminated is rejected by the server and runs nothing);
//!   classifications are merged (so `FROM "t"` reads table `t`). `'it\'s'`
//!   is complete; `SELECT 'a\';DROP TABLE t;--'` is not.
//! - `DELIMITER` and `\` commands are client commands: `unknown`.
//!
//! **Splitting** (`mysql_split.rs`): at `;`, except inside the body of a
//! routine, trigger or event, or of MariaDB's top-level compound
//! statements (`BEGIN NOT ATOMIC`, `IF`, loops, labels), where block
//! openers are counted against `END`. Such a statement with a `;` inside is
//! never complete, so a miscount cannot hide a statement.
//!
//! **Classification** (`classify/mysql.rs`, `classify/mysql_set.rs`):
//! - `SELECT … INTO OUTFILE|DUMPFILE` is `copy_to` + `admin` (a server
//!   file); `INTO @var` stays `read`. `FOR UPDATE`, `FOR SHARE` and `LOCK IN
//!   SHARE MODE` add `lock` + `write`. `DUAL` is not a table.
//! - `INSERT`/`REPLACE` (INTO optional); REPLACE adds `delete`, `ON
//!   DUPLICATE KEY UPDATE` adds `update`, both bounded (`has_where: true`)
//!   by the inserted keys. Multi-table UPDATE and DELETE report *every*
//!   table of their table references as written (targets may be aliases),
//!   and the WHERE clause ends at a top-level `ORDER BY` or `LIMIT`; `||`
//!   and `XOR` split like `OR`, `<=>` compares to itself.
//! - `LOAD DATA|XML LOCAL INFILE` is `copy_from` + `write`; without LOCAL
//!   (a server file) `admin`. `LOAD_FILE()` is `admin`.
//! - `SHOW`, `DESCRIBE`/`DESC`/`EXPLAIN table`, `HELP` are `read` (`show`).
//!   `EXPLAIN stmt` is `explain`; it is `write` when the statement writes
//!   (MariaDB refuses it in a read-only transaction). `EXPLAIN ANALYZE stmt`
//!   and MariaDB's `ANALYZE stmt` run the statement and carry its
//!   classification; `ANALYZE|OPTIMIZE|REPAIR|CHECK TABLE` are
//!   `maintenance` + `admin`; `CHECKSUM TABLE` is `read`.
//! - `USE db` is `other` + `read` with the session effect
//!   [`SessionEffect::UseDatabase`]: table names are reported as written,
//!   and a gateway that matches qualified names must qualify unqualified
//!   ones with the current database.
//! - User variables (`SET @a = …`, `@a := …`, `SELECT … INTO @a`) are
//!   `read`: they only change the session's scratch values, reported as
//!   [`SessionEffect::SetUserVariable`]; their value expression decides
//!   (`SET @a = SLEEP(1)` is `write`). They matter to `PREPARE s FROM @a`,
//!   which is always incomplete.
//! - `SET` of a system variable is `write`; `admin` for GLOBAL/PERSIST, for
//!   [`MYSQL_PRIVILEGED_SETTINGS`] and [`MYSQL_PRIVILEGED_SETTING_PREFIXES`]
//!   (`sql_mode`, character sets, `foreign_key_checks`, `unique_checks`,
//!   `sql_safe_updates`, `sql_log_bin`, `transaction_read_only` …), for `SET
//!   NAMES` / `CHARACTER SET` / `CHARSET` (a multibyte client character set
//!   such as GBK or SJIS can swallow the `\` of an escaped quote), `SET
//!   PASSWORD`, `SET ROLE`, `SET DEFAULT ROLE`, and for `SET TRANSACTION
//!   READ WRITE` (it undoes a read-only guard). Every item of a `SET` list
//!   counts; `/*!` forms and `SET STATEMENT … FOR stmt` too. `autocommit` is
//!   an ordinary `write` setting: it changes when writes are committed, not
//!   what may run.
//! - Transaction control (`START TRANSACTION [READ ONLY|READ WRITE|WITH
//!   CONSISTENT SNAPSHOT]`, `BEGIN [WORK]`, `COMMIT`, `ROLLBACK`,
//!   `SAVEPOINT`, `RELEASE`, `XA START|END|PREPARE|RECOVER`) is
//!   `transaction` + `read`; `XA COMMIT|ROLLBACK` are `write`. `LOCK
//!   TABLES` is `lock` + `write` with every locked table written; `UNLOCK
//!   TABLES` is `lock` + `read`.
//! - DDL (`CREATE|ALTER|DROP|TRUNCATE|RENAME` of tables, views, indexes,
//!   sequences, databases, routines, triggers, events) is `write`; a
//!   `DEFINER =` clause or a UDF's `SONAME` makes it `admin`. Users, roles,
//!   servers, `GRANT`, `REVOKE`, `FLUSH`, `RESET`, `PURGE`, `KILL`,
//!   `SHUTDOWN`, `INSTALL`/`UNINSTALL`, `CHANGE MASTER`, `START|STOP
//!   SLAVE|REPLICA`, `BINLOG`, `CACHE INDEX`, `LOAD INDEX`, `BACKUP` are
//!   `admin`.
//! - `CALL` is `call` + `write`, incomplete. `DO expr` is `select`, decided
//!   by its functions. Compound statements are `do` + `write`, incomplete.
//! - `PREPARE s FROM '…'` classifies the quoted text (one statement, no
//!   backslash in it, else incomplete) and is remembered through
//!   [`prepared_definitions`]; `PREPARE s FROM @var` is incomplete.
//!   `EXECUTE s [USING …]` takes the classification through
//!   [`PreparedLookup`] (or from a `PREPARE` earlier in the same text);
//!   MariaDB's `EXECUTE IMMEDIATE '…'` classifies the text. `DEALLOCATE |
//!   DROP PREPARE` is `other` + `read`.
//! - `HANDLER t OPEN` reads `t`; `HANDLER h READ` is incomplete (`h` may be
//!   an alias of any table).
//! - Functions: the MySQL lists in [`functions`] (`SLEEP`, `BENCHMARK`,
//!   `GET_LOCK`, `RELEASE_LOCK`, `RELEASE_ALL_LOCKS`, `NEXTVAL`, `SETVAL`,
//!   `LASTVAL` are `write`: they hold the server or shared state); stored
//!   functions and UDFs are unknown, hence `write`.
//! - Names: table, column and function names are lowercased, quoted or
//!   not, and reported qualified as written (`db.t`). On a server with
//!   `lower_case_table_names = 0` tables differing only in case are reported
//!   as the same name (the stricter choice for deny rules).
//!
//! Known limits of the MySQL dialect: the classifier assumes the client
//! character set is one where `\` and `'` are never the second byte of a
//! multibyte character (UTF-8, latin1: the gateway must not let the
//! handshake choose GBK, SJIS, BIG5 or CP932); `sql_mode`s other than the
//! two lexing flags (`ORACLE`, `PIPES_AS_CONCAT`, `IGNORE_SPACE`,
//! `HIGH_NOT_PRECEDENCE`) may change parsing; compound statements and
//! routine bodies are not classified inside; DDL walks may list index or
//! type names as unknown functions.

#![deny(clippy::indexing_slicing)]

mod classify;
pub mod functions;
mod lexer;
mod mysql;
mod mysql_lexer;
mod mysql_split;
mod shape;
mod split;
mod syntax;

use airlock_types::{Command, Operation, StatementClass};
use std::collections::HashMap;

pub use classify::{
    is_ascii_safe_character_set, CharacterSetChange, MYSQL_ASCII_SAFE_CHARACTER_SETS,
    MYSQL_PRIVILEGED_SETTINGS, MYSQL_PRIVILEGED_SETTING_PREFIXES, PRIVILEGED_SETTINGS,
};
pub use functions::{function_effect, FunctionEffect};
pub use shape::Shape;
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

/// Everything a gateway needs of one text: its classification and, per
/// statement, what it does to the session's named objects, the `PREPARE`
/// definitions it holds and the cursors it declares.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The classified command.
    pub command: Command,
    /// The [`SessionEffect`]s of its statements, in order.
    pub effects: Vec<SessionEffect>,
    /// Its `PREPARE` definitions, in order (see [`prepared_definitions`]).
    pub prepares: Vec<PreparedDefinition>,
    /// The cursors it `DECLARE`s, with the classification of their
    /// queries.
    pub declares: Vec<(String, StatementClass)>,
}

/// Classifies `sql` and finds its session effects, `PREPARE` definitions
/// and declared cursors. For [`Dialect::Postgres`] the text is tokenised
/// and split once for all of them (before, each was a pass of its own).
/// MySQL texts are read under several `sql_mode`s by the classifier, so
/// their effects and definitions come from the default reading, as
/// [`session_effects`] and [`prepared_definitions`] give them.
pub fn analyze(dialect: Dialect, sql: &str, prepared: &dyn PreparedLookup) -> Analysis {
    if dialect == Dialect::Mysql {
        let command = classify_with(dialect, sql, prepared);
        let effects = session_effects(dialect, sql);
        let prepares = prepared_definitions(dialect, &command);
        return Analysis {
            command,
            effects,
            prepares,
            declares: Vec::new(),
        };
    }
    let tokens = lexer::tokenize(sql);
    let mut statements = Vec::new();
    let mut effects = Vec::new();
    let mut prepares = Vec::new();
    let mut declares = Vec::new();
    for split in split::split_tokens(sql, &tokens) {
        let statement = classify::Statement::new(sql, split.tokens, prepared);
        let class = statement.classify();
        let effect = statement.session_effect();
        if class.operations.contains(&Operation::Prepare) {
            // The body is classified as `PREPARE` alone would be: without
            // the session's prepared statements.
            let definition =
                classify::Statement::new(sql, split.tokens, &NoPrepared).prepared_definition();
            if let Some((name, body, statement)) = definition {
                prepares.push(PreparedDefinition {
                    name,
                    body,
                    statement,
                });
            }
        }
        if let Some(SessionEffect::Declare(name)) = &effect {
            declares.push((name.clone(), class.clone()));
        }
        effects.extend(effect);
        statements.push(class);
    }
    Analysis {
        command: Command::sql(sql, statements),
        effects,
        prepares,
        declares,
    }
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

/// The MySQL character-set changes in `sql` (`SET NAMES`, `SET CHARACTER
/// SET`, `character_set_client` and its kin, also inside `SET STATEMENT`
/// and the text of `PREPARE … FROM '…'` / `EXECUTE IMMEDIATE '…'`), under
/// every `sql_mode` reading, executable comments counted as present. A
/// gateway refuses a text with a change that is not
/// [`CharacterSetChange::is_ascii_safe`]: after it, the classifier and the
/// server could read a statement differently.
pub fn mysql_character_set_changes(sql: &str) -> Vec<CharacterSetChange> {
    mysql::character_set_changes_at(sql, 0)
}

/// The client files that the `LOAD DATA|XML … LOCAL INFILE 'name'`
/// statements of MySQL text `sql` name, in order: what a server may ask
/// the client for while running it. Only plain single-quoted names without
/// backslashes or quotes count, and only where every `sql_mode` reading
/// finds them; a gateway lets the server read no other file.
pub fn mysql_local_infile_names(sql: &str) -> Vec<String> {
    mysql::local_infile_names(sql)
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
