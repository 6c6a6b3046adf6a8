//! MySQL statement splitting: where one statement of a multi-statement
//! text ends.
//!
//! A `;` token ends a statement (the lexer already swallowed those inside
//! strings, identifiers and comments, and turned those inside executable
//! comments into doubtful boundaries), except inside a compound statement:
//! a stored routine, trigger or event body (`CREATE PROCEDURE p() BEGIN …;
//! …; END`) or one of MariaDB's top-level compound statements (`BEGIN NOT
//! ATOMIC … END`, `IF … END IF`, labels, loops). There the splitter counts
//! block openers (`BEGIN`, `CASE`, `IF`, `LOOP`, `WHILE`, `REPEAT`, `FOR x
//! IN`) against `END`s.
//!
//! Security note: splitting too late would hide a statement inside the one
//! before it, so the counting errs towards splitting early (an opener is
//! only counted where a statement can start), and the classifier marks
//! every compound statement that contains a `;` incomplete: if the count is
//! wrong, what it swallowed is still not trusted.

use crate::lexer::{Token, TokenKind};
use crate::split::{push_statement, StatementTokens};

fn word_is(sql: &str, token: Option<&Token>, keyword: &str) -> bool {
    match token {
        Some(token) if token.kind == TokenKind::Word => sql
            .get(token.start..token.end)
            .is_some_and(|text| text.eq_ignore_ascii_case(keyword)),
        _ => false,
    }
}

fn word_in(sql: &str, token: Option<&Token>, keywords: &[&str]) -> bool {
    keywords.iter().any(|keyword| word_is(sql, token, keyword))
}

/// True when the statement starting at `tokens` is a compound statement or
/// a routine, trigger or event definition (whose body may hold `;`).
pub(crate) fn starts_compound(sql: &str, tokens: &[Token]) -> bool {
    let first = tokens.first();
    if word_in(
        sql,
        first,
        &["if", "case", "loop", "while", "repeat", "for"],
    ) {
        return true;
    }
    if word_is(sql, first, "begin") && word_is(sql, tokens.get(1), "not") {
        return true;
    }
    // `label: BEGIN …`.
    if matches!(
        first.map(|t| t.kind),
        Some(TokenKind::Word | TokenKind::QuotedIdent)
    ) && tokens.get(1).map(|t| t.kind) == Some(TokenKind::Colon)
    {
        return true;
    }
    if !word_is(sql, first, "create") {
        return false;
    }
    for token in tokens.iter().skip(1).take(16) {
        if token.kind == TokenKind::LParen {
            return false;
        }
        let token = Some(token);
        if word_in(sql, token, &["procedure", "function", "trigger", "event"]) {
            return true;
        }
        if word_in(
            sql,
            token,
            &[
                "table", "view", "index", "database", "schema", "user", "role", "server",
            ],
        ) {
            return false;
        }
    }
    false
}

/// Words after which a statement (and so a block opener) can start.
const STATEMENT_STARTS: &[&str] = &[
    "begin",
    "then",
    "else",
    "do",
    "loop",
    "repeat",
    "atomic",
    "row",
    "deterministic",
    "data",
    "invoker",
    "definer",
    "sql",
];

/// Whether the token at `index` can start a statement inside a body.
fn at_statement_start(sql: &str, tokens: &[Token], index: usize, statement_start: usize) -> bool {
    if index == statement_start {
        return true;
    }
    let Some(previous) = index.checked_sub(1).and_then(|i| tokens.get(i)) else {
        return true;
    };
    match previous.kind {
        TokenKind::Semicolon | TokenKind::Colon | TokenKind::RParen => true,
        TokenKind::Word => word_in(sql, Some(previous), STATEMENT_STARTS),
        _ => false,
    }
}

/// The change of block depth at token `index` of a compound statement.
fn block_step(sql: &str, tokens: &[Token], index: usize, statement_start: usize) -> isize {
    let token = tokens.get(index);
    let previous = index.checked_sub(1).and_then(|i| tokens.get(i));
    let next = tokens.get(index + 1);
    if word_is(sql, previous, "end") {
        // `END IF`, `END LOOP`, `END label`: part of the closer.
        return 0;
    }
    if word_is(sql, token, "end") {
        return -1;
    }
    if word_is(sql, token, "case") {
        return 1;
    }
    if word_in(sql, token, &["loop", "while"]) {
        return 1;
    }
    if word_is(sql, token, "begin") {
        let identifier_use = matches!(
            next.map(|t| t.kind),
            None | Some(
                TokenKind::Semicolon
                    | TokenKind::Operator
                    | TokenKind::Comma
                    | TokenKind::RParen
                    | TokenKind::Dot
            )
        );
        return if identifier_use { 0 } else { 1 };
    }
    if word_in(sql, token, &["if", "repeat"])
        && at_statement_start(sql, tokens, index, statement_start)
    {
        return 1;
    }
    if word_is(sql, token, "for") && word_is(sql, tokens.get(index + 2), "in") {
        return 1;
    }
    0
}

/// Splits the token stream of `sql` into MySQL statements.
pub(crate) fn split_mysql_tokens<'t>(sql: &str, tokens: &'t [Token]) -> Vec<StatementTokens<'t>> {
    let mut statements = Vec::new();
    let mut statement_start = 0usize;
    let mut compound = None::<bool>;
    let mut blocks = 0isize;
    for (index, token) in tokens.iter().enumerate() {
        if compound.is_none() {
            compound = Some(starts_compound(
                sql,
                tokens.get(statement_start..).unwrap_or(&[]),
            ));
            blocks = 0;
        }
        if compound == Some(true) && token.kind == TokenKind::Word {
            blocks = (blocks + block_step(sql, tokens, index, statement_start)).max(0);
        }
        if token.kind == TokenKind::Semicolon && blocks == 0 {
            push_statement(&mut statements, tokens, statement_start, index);
            statement_start = index + 1;
            compound = None;
        }
    }
    push_statement(&mut statements, tokens, statement_start, tokens.len());
    statements
}
