//! A PostgreSQL text's *shape*: its tokens with every string and numeric
//! constant replaced by a placeholder, so texts that differ only in their
//! constants (`... WHERE aid = 17` and `... WHERE aid = 42`) share one key
//! under which a gateway may cache their analysis.
//!
//! This module owns the two halves of that question, built on the same
//! [`lexer`](crate::lexer) the classifier uses (so "what is a constant" is
//! never answered twice):
//! - [`Shape::of`]: the key (every token's kind and exact text, constants
//!   as their kind alone; whitespace and comments, which the lexer drops,
//!   are not part of it) and the text with its constants replaced by
//!   positional parameters `$1 … $n`;
//! - [`Shape::holds_for_every_constant`]: whether an analysis of the text
//!   is the one the parameterised text gets. The parameterised text is what
//!   a client's `Parse` would carry, and its analysis must already hold for
//!   every value a `Bind` could give (the classifier fails closed on a
//!   parameter it cannot see through), so an analysis equal to it holds for
//!   every text of the same shape. A classification that reads a constant
//!   (a `set_config('role', …)`, a `COPY … FROM 'file'`) differs from the
//!   parameterised one and is not shared.
//!
//! Equal constants share one placeholder (`$1 = $1`): the classifier
//! compares token texts (an expression compared to itself does not bound a
//! `DELETE`), so the key keeps which constants are equal.
//!
//! Texts it does not give a shape: those without constants (the exact text
//! is the key already), with parameters of their own, with tokens whose
//! extent depends on the session (an ambiguous or unterminated string, a
//! stray byte), `EXPLAIN` (whose options are constants it reads) and those
//! with more than [`MAX_CONSTANTS`] distinct constants.

use crate::lexer::{tokenize, TokenKind};
use crate::Analysis;

/// Distinct constants a shared text may hold (a longer one, a bulk
/// `INSERT` say, is analysed by itself).
const MAX_CONSTANTS: usize = 64;

/// A text's shape key and its parameterised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Every token as its kind and length-prefixed text, constants as
    /// their kind alone: equal keys mean equal token sequences up to the
    /// constants' values.
    pub key: String,
    /// The text with each constant replaced by `$1 … $n`, everything else
    /// (comments and whitespace too) byte for byte.
    pub parameterized: String,
}

fn kind_tag(kind: TokenKind) -> char {
    match kind {
        TokenKind::Word => 'w',
        TokenKind::QuotedIdent => 'q',
        TokenKind::UnicodeQuotedIdent => 'u',
        TokenKind::String => 'S',
        TokenKind::AmbiguousString => 'A',
        TokenKind::Unterminated => 'U',
        TokenKind::Number => 'N',
        TokenKind::Param => 'p',
        TokenKind::Operator => 'o',
        TokenKind::LParen => '(',
        TokenKind::RParen => ')',
        TokenKind::LBracket => '[',
        TokenKind::RBracket => ']',
        TokenKind::Comma => ',',
        TokenKind::Semicolon => ';',
        TokenKind::Dot => '.',
        TokenKind::Colon => ':',
        TokenKind::DoubleColon => 'c',
        TokenKind::Other => 'x',
        TokenKind::Variable => 'v',
        TokenKind::Ambiguous => 'a',
    }
}

impl Shape {
    /// The shape of `sql`, or `None` when it has no constant or a token
    /// that rules sharing out (see the module comment).
    pub fn of(sql: &str) -> Option<Shape> {
        let tokens = tokenize(sql);
        let mut key = String::with_capacity(sql.len() + tokens.len() * 3);
        let mut parameterized = String::with_capacity(sql.len());
        let mut copied = 0usize;
        // Each distinct constant text, in order of first appearance: equal
        // constants share a placeholder, because the classifier compares
        // texts (`WHERE id + 1 = id + 1` compares an expression to itself,
        // `WHERE id + 1 = id + 2` does not).
        let mut constants: Vec<&str> = Vec::new();
        for token in &tokens {
            let text = sql.get(token.start..token.end)?;
            match token.kind {
                TokenKind::String | TokenKind::Number => {
                    let number = match constants.iter().position(|known| *known == text) {
                        Some(at) => at + 1,
                        None if constants.len() < MAX_CONSTANTS => {
                            constants.push(text);
                            constants.len()
                        }
                        None => return None,
                    };
                    key.push(kind_tag(token.kind));
                    key.push_str(&number.to_string());
                    key.push(':');
                    parameterized.push_str(sql.get(copied..token.start)?);
                    parameterized.push('$');
                    parameterized.push_str(&number.to_string());
                    copied = token.end;
                }
                // EXPLAIN reads its options' constants (`ANALYZE 'off'`).
                TokenKind::Word if text.eq_ignore_ascii_case("explain") => return None,
                TokenKind::Param
                | TokenKind::AmbiguousString
                | TokenKind::Unterminated
                | TokenKind::Other
                | TokenKind::Variable
                | TokenKind::Ambiguous => return None,
                kind => {
                    key.push(kind_tag(kind));
                    key.push_str(&text.len().to_string());
                    key.push(':');
                    key.push_str(text);
                }
            }
        }
        if constants.is_empty() {
            return None;
        }
        parameterized.push_str(sql.get(copied..)?);
        Some(Shape { key, parameterized })
    }

    /// Whether `analysis` (of a text of this shape) may stand for every text
    /// of the shape: it touches no session state (no session effect,
    /// `PREPARE` or `DECLARE`), is complete, and classifies exactly as the
    /// parameterised text does (`of_parameterized`, its analysis).
    pub fn holds_for_every_constant(analysis: &Analysis, of_parameterized: &Analysis) -> bool {
        let stateless = |analysis: &Analysis| {
            analysis.effects.is_empty()
                && analysis.prepares.is_empty()
                && analysis.declares.is_empty()
                && analysis.command.complete()
        };
        stateless(analysis)
            && stateless(of_parameterized)
            && analysis.command.kind == of_parameterized.command.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{analyze, Dialect, NoPrepared};

    fn shared(sql: &str) -> bool {
        let Some(shape) = Shape::of(sql) else {
            return false;
        };
        let analysis = analyze(Dialect::Postgres, sql, &NoPrepared);
        let parameterized = analyze(Dialect::Postgres, &shape.parameterized, &NoPrepared);
        Shape::holds_for_every_constant(&analysis, &parameterized)
    }

    #[test]
    fn constants_are_replaced_and_everything_else_kept() {
        let shape =
            Shape::of("SELECT abalance FROM t WHERE aid = 17 and b = 'x''y' -- c\n").unwrap();
        assert_eq!(
            shape.parameterized,
            "SELECT abalance FROM t WHERE aid = $1 and b = $2 -- c\n"
        );
        let other = Shape::of("SELECT abalance FROM t WHERE aid = 4242 and b = E'\\n'").unwrap();
        assert_eq!(shape.key, other.key);
    }

    #[test]
    fn texts_that_differ_outside_constants_have_other_keys() {
        let base = Shape::of("select a from t where id = 1").unwrap().key;
        for other in [
            "select b from t where id = 1",
            "select a from u where id = 1",
            "select a from t where id < 1",
            "select a from \"t\" where id = 1",
            "select a from t where id = 1; drop table t",
            "select a from t where id = -1",
            "select a from t where id = 1 :: int",
        ] {
            assert_ne!(Shape::of(other).unwrap().key, base, "{other}");
        }
        // Comments and white space are not tokens: the classifier never
        // sees them, so neither does the key.
        let spaced = Shape::of("select  a /* 'x' */ from t\nwhere id=2 -- 'y'").unwrap();
        assert_eq!(spaced.key, base);
    }

    #[test]
    fn no_shape_without_constants_or_with_session_dependent_tokens() {
        for sql in [
            "select a from t",
            "select $1",
            "select 'a\\' from t",
            "select 'unterminated",
            "select 1 \\",
        ] {
            assert_eq!(Shape::of(sql), None, "{sql}");
        }
    }

    #[test]
    fn quotes_inside_comments_and_dollar_quotes_do_not_shift_the_key() {
        // The lexer, not a byte scan, finds the constants: a quote in a
        // comment cannot swallow the statement after it into a "constant".
        let with_comment = Shape::of("select 1 -- '\n; drop table t; select '1'").unwrap();
        let plain = Shape::of("select 1; select '1'").unwrap();
        assert_ne!(with_comment.key, plain.key);
        assert!(with_comment.key.contains("w4:drop"));
        let dollar = Shape::of("select $$ ' $$, 2").unwrap();
        assert_eq!(dollar.parameterized, "select $1, $2");
    }

    #[test]
    fn reads_and_plain_writes_are_shared() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = 88123;",
            "UPDATE pgbench_accounts SET abalance = abalance + -4211 WHERE aid = 1;",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 77, 12, CURRENT_TIMESTAMP);",
            "select * from orders where email = 'a@b.c' limit 10",
            "delete from t where id in (1, 2, 3)",
        ] {
            assert!(shared(sql), "{sql}");
        }
    }

    #[test]
    fn classifications_that_read_a_constant_are_not_shared() {
        for sql in [
            "select set_config('role', 'admin', false)",
            "select set_config('application_name', 'x', false)",
            "set search_path = 'public'",
            "copy t from '/etc/passwd'",
            "prepare p as select 1",
            "declare c cursor for select 1",
            "do $$ begin perform 1; end $$",
            "select pg_read_file('/etc/passwd')",
        ] {
            let Some(shape) = Shape::of(sql) else {
                continue;
            };
            let analysis = analyze(Dialect::Postgres, sql, &NoPrepared);
            let parameterized = analyze(Dialect::Postgres, &shape.parameterized, &NoPrepared);
            if Shape::holds_for_every_constant(&analysis, &parameterized) {
                // Shared only if the classification is the one every value
                // of the constants gets.
                for other in ["'role'", "'x'", "'/etc/shadow'", "1"] {
                    let variant = shape.parameterized.replace("$1", other);
                    let varied = analyze(Dialect::Postgres, &variant, &NoPrepared);
                    assert_eq!(
                        varied.command.kind, analysis.command.kind,
                        "{sql} / {variant}"
                    );
                }
            }
        }
    }

    #[test]
    fn equal_constants_keep_their_equality_in_the_key() {
        // `id + 1 = id + 1` compares an expression to itself: no bound.
        let tautology = Shape::of("delete from t where id + 1 = id + 1").unwrap();
        let bounded = Shape::of("delete from t where id + 1 = id + 2").unwrap();
        assert_ne!(tautology.key, bounded.key);
        assert_eq!(
            tautology.parameterized,
            "delete from t where id + $1 = id + $1"
        );
        assert!(shared("delete from t where id + 1 = id + 2"));
        let unbounded = analyze(
            Dialect::Postgres,
            "delete from t where id + 1 = id + 1",
            &NoPrepared,
        );
        assert_eq!(unbounded.command.statements()[0].has_where, Some(false));
    }

    #[test]
    fn explain_is_not_shared() {
        assert_eq!(
            Shape::of("explain (analyze 'off') delete from t where id = 1"),
            None
        );
    }

    const TEMPLATES: &[&str] = &[
        "delete from t where {} = {}",
        "delete from t where id + {} = id + {}",
        "delete from t where id = {} or {} = {}",
        "update t set a = {} where {} = {} or id = {}",
        "select * from t where a = {} and b = {}",
        "select set_config({}, {}, false)",
        "copy t from {}",
        "select {}::regclass, {}",
        "insert into t values ({}, {}) returning {}",
        "select * from t limit {} offset {}",
        "select {} from t where {} < {}",
    ];

    const CONSTANTS: &[&str] = &[
        "1", "2", "0", "01", "1.0", "-1", "'a'", "'b'", "'1'", "'off'", "E'a'", "$$a$$", "'role'",
    ];

    fn fill(template: &str, picks: &[usize]) -> String {
        let mut out = String::new();
        let mut pieces = template.split("{}");
        out.push_str(pieces.next().unwrap_or(""));
        for (piece, pick) in pieces.zip(picks.iter().cycle()) {
            out.push_str(CONSTANTS[pick % CONSTANTS.len()]);
            out.push_str(piece);
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Whatever the constants: a text that shares the shape of one
        /// whose analysis is shared gets exactly that analysis from the
        /// classifier itself.
        #[test]
        fn a_shared_analysis_is_every_same_shaped_texts_own(
            template in 0..TEMPLATES.len(),
            first in proptest::collection::vec(0usize..CONSTANTS.len(), 4),
            second in proptest::collection::vec(0usize..CONSTANTS.len(), 4),
        ) {
            let one = fill(TEMPLATES[template], &first);
            let other = fill(TEMPLATES[template], &second);
            if let (Some(a), Some(b)) = (Shape::of(&one), Shape::of(&other)) {
                if a.key == b.key && shared(&one) {
                    let left = analyze(Dialect::Postgres, &one, &NoPrepared);
                    let right = analyze(Dialect::Postgres, &other, &NoPrepared);
                    proptest::prop_assert_eq!(left.command.kind, right.command.kind, "{} / {}", one, other);
                    proptest::prop_assert_eq!(left.effects, right.effects);
                }
            }
        }
    }
}
