//! Statement splitting: where one statement of a multi-statement text ends.
//!
//! It owns the rule for statement boundaries: a `;` token (never one inside a
//! string, quoted identifier, dollar-quoted body or comment, which the lexer
//! already swallowed) at parenthesis depth zero and outside a SQL-standard
//! function body (`BEGIN ATOMIC … END`). Parentheses matter because rule
//! actions (`CREATE RULE … DO (INSERT …; DELETE …)`) hold semicolons.
//! Empty statements (a lone `;`) are dropped.

use crate::lexer::{Token, TokenKind};

/// One statement: its byte range in the source and its tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatementTokens<'t> {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// The index of the statement's first token in the text's tokens.
    pub(crate) first: usize,
    pub(crate) tokens: &'t [Token],
}

fn is_word(sql: &str, token: Option<&Token>, keyword: &str) -> bool {
    match token {
        Some(token) if token.kind == TokenKind::Word => sql
            .get(token.start..token.end)
            .is_some_and(|text| text.eq_ignore_ascii_case(keyword)),
        _ => false,
    }
}

/// True when the statement starting at `tokens` is `CREATE [OR REPLACE]
/// FUNCTION|PROCEDURE`, the only statements with `BEGIN ATOMIC` bodies.
fn starts_routine_definition(sql: &str, tokens: &[Token]) -> bool {
    if !is_word(sql, tokens.first(), "create") {
        return false;
    }
    let mut index = 1;
    if is_word(sql, tokens.get(1), "or") && is_word(sql, tokens.get(2), "replace") {
        index = 3;
    }
    is_word(sql, tokens.get(index), "function") || is_word(sql, tokens.get(index), "procedure")
}

/// Splits the token stream of `sql` into statements.
pub(crate) fn split_tokens<'t>(sql: &str, tokens: &'t [Token]) -> Vec<StatementTokens<'t>> {
    let mut statements = Vec::new();
    let mut statement_start = 0usize;
    let mut depth = 0usize;
    let mut atomic_depth = 0usize;
    let mut routine = None::<bool>;
    for (index, token) in tokens.iter().enumerate() {
        if routine.is_none() {
            routine = Some(starts_routine_definition(
                sql,
                tokens.get(statement_start..).unwrap_or(&[]),
            ));
        }
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            TokenKind::Word if routine == Some(true) && depth == 0 => {
                let opens_atomic = is_word(sql, Some(token), "begin")
                    && is_word(sql, tokens.get(index + 1), "atomic");
                let opens_case = atomic_depth > 0 && is_word(sql, Some(token), "case");
                if opens_atomic || opens_case {
                    atomic_depth += 1;
                } else if atomic_depth > 0 && is_word(sql, Some(token), "end") {
                    atomic_depth -= 1;
                }
            }
            TokenKind::Semicolon if depth == 0 && atomic_depth == 0 => {
                push_statement(&mut statements, tokens, statement_start, index);
                statement_start = index + 1;
                routine = None;
            }
            _ => {}
        }
    }
    push_statement(&mut statements, tokens, statement_start, tokens.len());
    statements
}

pub(crate) fn push_statement<'t>(
    statements: &mut Vec<StatementTokens<'t>>,
    tokens: &'t [Token],
    from: usize,
    to: usize,
) {
    let slice = tokens.get(from..to).unwrap_or(&[]);
    if let (Some(first), Some(last)) = (slice.first(), slice.last()) {
        statements.push(StatementTokens {
            start: first.start,
            end: last.end,
            first: from,
            tokens: slice,
        });
    }
}
