//! The MySQL / MariaDB pipeline: lex, split and classify a text under every
//! `sql_mode` reading it could have, and keep only what all readings agree
//! on.
//!
//! The session's `sql_mode` (which an agent cannot change without `admin`,
//! but which the server's configuration may already have set) decides two
//! things about lexing: whether `\` escapes in strings
//! (`NO_BACKSLASH_ESCAPES`) and whether `"…"` is a string or an identifier
//! (`ANSI_QUOTES`). A text without `\` or `"` reads the same under all four
//! combinations; otherwise it is lexed under each, and:
//!
//! - a reading's statements are cut before the first one with an
//!   unterminated string, identifier or comment: the server rejects that
//!   statement, and runs nothing from it on;
//! - where another reading's statement has the same boundaries as the
//!   default reading's, the two classifications are merged (operations,
//!   tables and functions united, the wider access, bounded only if both
//!   are, complete only if both are);
//! - from the first statement whose boundaries differ, the default
//!   reading's statements are `unknown` and incomplete: the text hides a
//!   statement boundary in one of the readings.
//!
//! Tokens of a version-gated executable comment (`/*!50700 … */`, `/*M!
//! … */`) may or may not run: each statement holding some is classified
//! with and without them, and the two are merged the same way.

use crate::classify::{CharacterSetChange, Statement};
use crate::lexer::{Token, TokenKind};
use crate::mysql_lexer::{tokenize_mysql, MysqlMode, MysqlTokens};
use crate::mysql_split::split_mysql_tokens;
use crate::{Dialect, NoPrepared, PreparedLookup, SessionEffect};
use airlock_types::{Access, Operation, StatementClass};
use std::collections::HashMap;

/// One classified statement of one reading.
struct ReadStatement {
    start: usize,
    end: usize,
    unterminated: bool,
    class: StatementClass,
}

/// The readings `sql` must be checked under: the default first.
fn readings(sql: &str) -> Vec<MysqlMode> {
    let backslash = sql.contains('\\');
    let double_quote = sql.contains('"');
    let mut modes = vec![MysqlMode::DEFAULT];
    for backslash_escapes in [true, false] {
        for ansi_quotes in [false, true] {
            let mode = MysqlMode {
                backslash_escapes,
                ansi_quotes,
            };
            let differs = (!backslash_escapes && backslash) || (ansi_quotes && double_quote);
            if mode != MysqlMode::DEFAULT && differs {
                modes.push(mode);
            }
        }
    }
    modes
}

/// Classifies one statement's tokens, with and without optional tokens.
fn classify_tokens(
    sql: &str,
    tokens: &[Token],
    optional: &[bool],
    prepared: &dyn PreparedLookup,
) -> StatementClass {
    let full = Statement::with_dialect(sql, tokens, prepared, Dialect::Mysql).classify();
    if !optional.iter().any(|optional| *optional) {
        return full;
    }
    let skipped: Vec<Token> = tokens
        .iter()
        .zip(optional)
        .filter(|(_, optional)| !**optional)
        .map(|(token, _)| *token)
        .collect();
    if skipped.is_empty() {
        // Without the comment nothing runs.
        return full;
    }
    let without = Statement::with_dialect(sql, &skipped, prepared, Dialect::Mysql).classify();
    merge(full, &without)
}

/// The session's prepared statements, overlaid with those the text itself
/// prepares (or deallocates) before a later `EXECUTE`.
struct Overlay<'a> {
    base: &'a dyn PreparedLookup,
    local: HashMap<String, Option<StatementClass>>,
}

impl PreparedLookup for Overlay<'_> {
    fn prepared(&self, name: &str) -> Option<&StatementClass> {
        match self.local.get(name) {
            Some(local) => local.as_ref(),
            None => self.base.prepared(name),
        }
    }
}

/// The statements of `sql` under `mode`, classified in order.
fn read(sql: &str, mode: MysqlMode, prepared: &dyn PreparedLookup) -> Vec<ReadStatement> {
    let MysqlTokens { tokens, optional } = tokenize_mysql(sql, mode);
    let mut overlay = Overlay {
        base: prepared,
        local: HashMap::new(),
    };
    let mut statements = Vec::new();
    for statement in split_mysql_tokens(sql, &tokens) {
        let flags = optional
            .get(statement.first..statement.first + statement.tokens.len())
            .unwrap_or(&[]);
        let class = classify_tokens(sql, statement.tokens, flags, &overlay);
        let parsed = Statement::with_dialect(sql, statement.tokens, &NoPrepared, Dialect::Mysql);
        for effect in parsed.mysql_session_effects() {
            match effect {
                SessionEffect::Prepare(name) => {
                    let body = parsed.prepared_definition().map(|(_, _, class)| class);
                    overlay.local.insert(name, body);
                }
                SessionEffect::Deallocate(name) => {
                    overlay.local.insert(name, None);
                }
                _ => {}
            }
        }
        statements.push(ReadStatement {
            start: statement.start,
            end: statement.end,
            unterminated: statement
                .tokens
                .iter()
                .any(|token| token.kind == TokenKind::Unterminated),
            class,
        });
    }
    statements
}

/// Both classifications at once: what either does.
fn merge(mut into: StatementClass, other: &StatementClass) -> StatementClass {
    into.operations.extend(other.operations.iter().copied());
    into.access = Some(into.effective_access().max(other.effective_access()));
    into.tables_read.extend(other.tables_read.iter().cloned());
    into.tables_written
        .extend(other.tables_written.iter().cloned());
    into.functions.extend(other.functions.iter().cloned());
    into.unknown_functions
        .extend(other.unknown_functions.iter().cloned());
    into.has_where = match (into.has_where, other.has_where) {
        (Some(a), Some(b)) => Some(a && b),
        (a, b) => a.or(b),
    };
    into.complete &= other.complete;
    for list in [
        &mut into.tables_read,
        &mut into.tables_written,
        &mut into.functions,
        &mut into.unknown_functions,
    ] {
        list.sort();
        list.dedup();
    }
    into.operations.sort();
    into.operations.dedup();
    into
}

/// A statement whose boundaries depend on the reading.
fn doubtful(mut class: StatementClass) -> StatementClass {
    class.operations.push(Operation::Unknown);
    class.operations.sort();
    class.operations.dedup();
    class.access = Some(class.effective_access().max(Access::Write));
    class.complete = false;
    class
}

/// The statements of `sql` with their byte ranges, all readings merged.
fn classify_ranges(sql: &str, prepared: &dyn PreparedLookup) -> Vec<ReadStatement> {
    let modes = readings(sql);
    let mut primary = read(sql, MysqlMode::DEFAULT, prepared);
    for mode in modes.into_iter().skip(1) {
        let other = read(sql, mode, prepared);
        let mut disagree_from = None;
        for (index, statement) in other.iter().enumerate() {
            if statement.unterminated {
                // Rejected by the server in this reading: nothing from
                // here on runs.
                break;
            }
            match primary.get_mut(index) {
                Some(mine) if mine.start == statement.start && mine.end == statement.end => {
                    let class = std::mem::take(&mut mine.class);
                    mine.class = merge(class, &statement.class);
                }
                _ => {
                    disagree_from = Some(index.min(primary.len().saturating_sub(1)));
                    break;
                }
            }
        }
        if let Some(from) = disagree_from {
            for statement in primary.iter_mut().skip(from) {
                let class = std::mem::take(&mut statement.class);
                statement.class = doubtful(class);
            }
        }
    }
    primary
}

/// Classifies a MySQL text: one class per statement.
pub(crate) fn classify_mysql(sql: &str, prepared: &dyn PreparedLookup) -> Vec<StatementClass> {
    classify_ranges(sql, prepared)
        .into_iter()
        .map(|statement| statement.class)
        .collect()
}

/// The statement texts of `sql` (default reading). A statement that begins
/// inside an executable comment begins at the comment's `/*!` (and then
/// ends after its `*/`), so that the text is one the server would run.
pub(crate) fn split_mysql(sql: &str) -> Vec<&str> {
    let MysqlTokens { tokens, .. } = tokenize_mysql(sql, MysqlMode::DEFAULT);
    let mut previous_end = 0usize;
    split_mysql_tokens(sql, &tokens)
        .into_iter()
        .filter_map(|statement| {
            let (start, end) =
                extend_over_comment(sql, previous_end, statement.start, statement.end);
            previous_end = statement.end;
            sql.get(start..end)
        })
        .collect()
}

/// `start..end` widened over an executable-comment opener between
/// `previous_end` and `start` (and then over the `*/` after `end`).
fn extend_over_comment(sql: &str, previous_end: usize, start: usize, end: usize) -> (usize, usize) {
    let Some(before) = sql.get(previous_end..start) else {
        return (start, end);
    };
    let trimmed = before.trim_end_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_digit());
    let opener = ["/*!", "/*M!"]
        .iter()
        .find(|opener| trimmed.ends_with(*opener))
        .map(|opener| previous_end + trimmed.len() - opener.len());
    let Some(opener) = opener else {
        return (start, end);
    };
    let after = sql.get(end..).unwrap_or("");
    let spaces = after.len() - after.trim_start().len();
    let end = if after.trim_start().starts_with("*/") {
        end + spaces + 2
    } else {
        end
    };
    (opener, end)
}

/// Runs `each` on every statement of `sql` (default reading).
fn each_statement<T>(sql: &str, mut each: impl FnMut(&Statement<'_>) -> Vec<T>) -> Vec<T> {
    let MysqlTokens { tokens, .. } = tokenize_mysql(sql, MysqlMode::DEFAULT);
    let prepared = crate::NoPrepared;
    split_mysql_tokens(sql, &tokens)
        .into_iter()
        .flat_map(|statement| {
            each(&Statement::with_dialect(
                sql,
                statement.tokens,
                &prepared,
                Dialect::Mysql,
            ))
        })
        .collect()
}

/// The session effects of the statements of `sql`, in order.
pub(crate) fn mysql_session_effects(sql: &str) -> Vec<SessionEffect> {
    each_statement(sql, |statement| statement.mysql_session_effects())
}

/// The `PREPARE name FROM '…'` definitions of `sql`, in order.
pub(crate) fn mysql_prepared_definitions(sql: &str) -> Vec<(String, String, StatementClass)> {
    each_statement(sql, |statement| {
        statement.prepared_definition().into_iter().collect()
    })
}

/// The client files the `LOAD DATA LOCAL INFILE` statements of `sql` name
/// (see [`crate::mysql_local_infile_names`]): a name counts only where
/// every `sql_mode` reading finds it.
pub(crate) fn local_infile_names(sql: &str) -> Vec<String> {
    let mut found: Option<Vec<String>> = None;
    for mode in readings(sql) {
        let MysqlTokens { tokens, .. } = tokenize_mysql(sql, mode);
        let names: Vec<String> = split_mysql_tokens(sql, &tokens)
            .into_iter()
            .filter_map(|statement| {
                Statement::with_dialect(sql, statement.tokens, &NoPrepared, Dialect::Mysql)
                    .mysql_local_infile_name()
            })
            .collect();
        found = Some(match found {
            None => names,
            Some(earlier) => earlier
                .into_iter()
                .filter(|name| names.contains(name))
                .collect(),
        });
    }
    found.unwrap_or_default()
}

/// The character-set changes of `sql` under every reading (see
/// [`crate::mysql_character_set_changes`]).
pub(crate) fn character_set_changes_at(sql: &str, depth: usize) -> Vec<CharacterSetChange> {
    let mut changes = Vec::new();
    for mode in readings(sql) {
        let MysqlTokens { tokens, .. } = tokenize_mysql(sql, mode);
        for statement in split_mysql_tokens(sql, &tokens) {
            let parsed =
                Statement::with_dialect(sql, statement.tokens, &NoPrepared, Dialect::Mysql);
            for change in parsed.mysql_character_set_changes(depth) {
                if !changes.contains(&change) {
                    changes.push(change);
                }
            }
        }
    }
    changes
}
