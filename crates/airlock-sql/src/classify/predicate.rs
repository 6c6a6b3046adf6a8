//! Whether the WHERE clause of an UPDATE or DELETE actually bounds it.
//!
//! A policy such as "UPDATE and DELETE need a WHERE clause" means "must not
//! touch every row". `DELETE FROM t WHERE true` has a WHERE clause but no
//! bound, so a clause only counts as bounding (`has_where: true`) when this
//! module finds no way for it to be trivially true. The rule, kept simple so
//! it can be explained in one sentence:
//!
//! > A WHERE clause does **not** bound the statement when one of its
//! > top-level `OR` branches (looking inside enclosing parentheses) is made
//! > only of conditions that reference no column (`true`, `1=1`, `'a'='a'`,
//! > `NOT false`, `(true)`, `random() < 2`, `EXISTS (SELECT 1)`), or of
//! > conditions that compare an expression to itself (`id = id`).
//!
//! A *column reference* is any name that is not a keyword, a function name
//! (a name followed by `(`), a type name (after `::`, after `AS` inside
//! `CAST`, or before a string literal as in `date '2024-01-01'`). Names inside
//! subqueries count (`EXISTS (SELECT 1 FROM u)` references `u`).
//!
//! Known limit (documented in the README): a condition that references a
//! column yet is always true (`id > -2147483649`, `id IS NOT NULL` on a NOT
//! NULL column, `name LIKE '%'`, `NOT (id = 1 AND false)`, an uncorrelated
//! `EXISTS (SELECT 1 FROM u)`) still counts as bounding: telling those apart
//! needs the catalog and the data, which the classifier does not have.
//!
//! MySQL differences (`Dialect::Mysql`): `||` and `XOR` separate like
//! `OR` (`||` is `OR` unless `PIPES_AS_CONCAT`; splitting there is the
//! stricter reading either way, and `a XOR true` matches almost every row),
//! `&&` joins like `AND`, `<=>` (null-safe equality) is reflexive, more words
//! are operators or keywords rather than columns (`DIV`, `REGEXP`,
//! `INTERVAL 1 DAY` …), `@variables` are not columns, and the clause ends at
//! a top-level `ORDER BY` or `LIMIT`.
//!
//! Like the rest of the classifier it never panics: every access is
//! bounds-checked and recursion into parentheses is bounded by
//! [`MAX_NESTING`] (deeper input counts as unbounded: fail closed).

use super::{Statement, MAX_NESTING};
use crate::lexer::TokenKind;

/// Words that, inside a condition, are never a column reference.
const CONDITION_KEYWORDS: &[&str] = &[
    "all",
    "and",
    "any",
    "array",
    "as",
    "asymmetric",
    "between",
    "case",
    "cast",
    "collate",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "distinct",
    "else",
    "end",
    "escape",
    "exists",
    "false",
    "from",
    "ilike",
    "in",
    "is",
    "isnull",
    "like",
    "localtime",
    "localtimestamp",
    "not",
    "notnull",
    "null",
    "or",
    "overlaps",
    "row",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "then",
    "to",
    "true",
    "unknown",
    "user",
    "values",
    "when",
];

/// MySQL words that, inside a condition, are never a column reference.
const MYSQL_CONDITION_KEYWORDS: &[&str] = &[
    "binary",
    "day",
    "day_hour",
    "day_microsecond",
    "day_minute",
    "day_second",
    "div",
    "hour",
    "hour_microsecond",
    "hour_minute",
    "hour_second",
    "interval",
    "microsecond",
    "minute",
    "minute_microsecond",
    "minute_second",
    "mod",
    "month",
    "quarter",
    "regexp",
    "rlike",
    "second",
    "second_microsecond",
    "sounds",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "week",
    "xor",
    "year",
    "year_month",
];

/// Words that continue a type name after its first word (`character
/// varying`, `double precision`, `timestamp with time zone`).
const TYPE_CONTINUATIONS: &[&str] = &["precision", "time", "varying", "with", "without", "zone"];

/// Comparison operators that are true when both sides are the same
/// (non-null) expression.
const REFLEXIVE_OPERATORS: &[&str] = &["=", ">=", "<="];

/// Comparison operators that are not (`id <> id` is never true).
const OTHER_COMPARISONS: &[&str] = &["<", ">", "<>", "!="];

impl Statement<'_> {
    /// Whether the WHERE clause starting at token `from` (just after the
    /// `WHERE` keyword) bounds the statement; the clause ends at a top-level
    /// `RETURNING` or at `to`.
    pub(super) fn where_bounds(&self, from: usize, to: usize) -> bool {
        if self.kw(from, "current") && self.kw(from + 1, "of") {
            // `WHERE CURRENT OF cursor`: exactly one row.
            return true;
        }
        let mut end = self.find_word(from, to, "returning").unwrap_or(to);
        if self.is_mysql() {
            // `… WHERE c ORDER BY x LIMIT 1`: the clause ends before them.
            for keyword in ["order", "limit"] {
                if let Some(at) = self.find_word(from, end, keyword) {
                    end = at;
                }
            }
        }
        !self.may_match_every_row(from, end, 0)
    }

    /// A disjunction: unbounded when any top-level `OR` branch is.
    fn may_match_every_row(&self, from: usize, to: usize, depth: usize) -> bool {
        if depth > MAX_NESTING {
            return true;
        }
        self.split_on(from, to, "or")
            .into_iter()
            .any(|(start, end)| self.branch_unbounded(start, end, depth))
    }

    /// A conjunction: unbounded only when every `AND` factor is.
    fn branch_unbounded(&self, from: usize, to: usize, depth: usize) -> bool {
        self.split_on(from, to, "and")
            .into_iter()
            .all(|(start, end)| self.factor_unbounded(start, end, depth))
    }

    fn factor_unbounded(&self, from: usize, to: usize, depth: usize) -> bool {
        if from >= to {
            return true;
        }
        if self.kind(from) == Some(TokenKind::LParen) && self.close_of(from, to) + 1 == to {
            // `( … )` around the whole factor: look inside.
            return self.may_match_every_row(from + 1, to - 1, depth + 1);
        }
        !self.references_column(from, to) || self.compares_to_itself(from, to)
    }

    /// The top-level (outside parentheses and `CASE … END`) pieces of
    /// `from..to` separated by the keyword `separator` (`and` or `or`). The
    /// `AND` of `BETWEEN x AND y` does not separate.
    fn split_on(&self, from: usize, to: usize, separator: &str) -> Vec<(usize, usize)> {
        let mut pieces = Vec::new();
        let mut start = from;
        let mut case_depth = 0usize;
        let mut pending_between = 0usize;
        let mut index = from;
        while index < to {
            if self.kind(index) == Some(TokenKind::LParen) {
                index = self.close_of(index, to) + 1;
                continue;
            }
            if self.kw(index, "case") {
                case_depth += 1;
            } else if self.kw(index, "end") {
                case_depth = case_depth.saturating_sub(1);
            } else if case_depth == 0 && self.kw(index, "between") {
                pending_between += 1;
            } else if case_depth == 0 && self.kw(index, "and") && pending_between > 0 {
                pending_between -= 1;
                index += 1;
                continue;
            }
            if case_depth == 0
                && (self.kw(index, separator) || self.mysql_separator(index, separator))
            {
                pieces.push((start, index));
                start = index + 1;
            }
            index += 1;
        }
        pieces.push((start, to));
        pieces
    }

    /// MySQL's other spellings of a separator: `||` and `XOR` for `OR`,
    /// `&&` for `AND`.
    fn mysql_separator(&self, index: usize, separator: &str) -> bool {
        if !self.is_mysql() {
            return false;
        }
        let operator = self.kind(index) == Some(TokenKind::Operator);
        match separator {
            "or" => (operator && self.text(index) == "||") || self.kw(index, "xor"),
            "and" => operator && self.text(index) == "&&",
            _ => false,
        }
    }

    /// True when some token in `from..to` is a column (or table) name.
    fn references_column(&self, from: usize, to: usize) -> bool {
        let mut index = from;
        while index < to {
            match self.kind(index) {
                Some(TokenKind::DoubleColon) => {
                    index = self.skip_type(index + 1, to);
                    continue;
                }
                Some(TokenKind::Word | TokenKind::QuotedIdent | TokenKind::UnicodeQuotedIdent) => {}
                _ => {
                    index += 1;
                    continue;
                }
            }
            if self.kind(index) == Some(TokenKind::Word) {
                let mut buffer = [0u8; 32];
                if let Some(word) = self.word(index, &mut buffer) {
                    if CONDITION_KEYWORDS.contains(&word)
                        || (self.is_mysql() && MYSQL_CONDITION_KEYWORDS.contains(&word))
                    {
                        if word == "as" {
                            // `CAST(x AS type)`.
                            index = self.skip_type(index + 1, to);
                        } else {
                            index += 1;
                        }
                        continue;
                    }
                    if word == "time" && self.kw(index + 1, "zone") {
                        // `AT TIME ZONE`.
                        index += 2;
                        continue;
                    }
                    if word == "at" && self.kw(index + 1, "time") {
                        index += 1;
                        continue;
                    }
                }
                if self.kind(index + 1) == Some(TokenKind::String) {
                    // A typed literal: `date '2024-01-01'`.
                    index += 1;
                    continue;
                }
            }
            match self.qualified_name_end(index) {
                Some(after) if self.kind(after) == Some(TokenKind::LParen) => {
                    // A function name; its arguments are scanned next.
                    index = after;
                }
                _ => return true,
            }
        }
        false
    }

    /// Skips a type name starting at `index`: a qualified name, its
    /// continuation words, modifiers in parentheses and array brackets.
    fn skip_type(&self, index: usize, to: usize) -> usize {
        let mut index = self.qualified_name_end(index).unwrap_or(index);
        while index < to {
            if self.is_one_of(index, TYPE_CONTINUATIONS) {
                index += 1;
            } else if self.kind(index) == Some(TokenKind::LParen) {
                index = self.close_of(index, to) + 1;
            } else if matches!(
                self.kind(index),
                Some(TokenKind::LBracket | TokenKind::RBracket | TokenKind::Number)
            ) {
                index += 1;
            } else {
                break;
            }
        }
        index
    }

    /// True when `from..to` is `expr op expr` with the same expression on
    /// both sides of a reflexive comparison (`id = id`, `a.b >= a.b`).
    fn compares_to_itself(&self, from: usize, to: usize) -> bool {
        let mut index = from;
        while index < to {
            if self.kind(index) == Some(TokenKind::LParen) {
                index = self.close_of(index, to) + 1;
                continue;
            }
            if self.kind(index) == Some(TokenKind::Operator) {
                let operator = self.text(index);
                if REFLEXIVE_OPERATORS.contains(&operator) || (self.is_mysql() && operator == "<=>")
                {
                    return index > from && self.same_tokens(from, index, index + 1, to);
                }
                if OTHER_COMPARISONS.contains(&operator) {
                    return false;
                }
            }
            index += 1;
        }
        false
    }

    /// True when token ranges `a..a_end` and `b..b_end` have the same text
    /// (words compared case-insensitively).
    fn same_tokens(&self, a: usize, a_end: usize, b: usize, b_end: usize) -> bool {
        if a_end.saturating_sub(a) != b_end.saturating_sub(b) {
            return false;
        }
        (a..a_end).zip(b..b_end).all(|(left, right)| {
            self.kind(left) == self.kind(right)
                && if self.kind(left) == Some(TokenKind::Word) {
                    self.text(left).eq_ignore_ascii_case(self.text(right))
                } else {
                    self.text(left) == self.text(right)
                }
        })
    }
}
