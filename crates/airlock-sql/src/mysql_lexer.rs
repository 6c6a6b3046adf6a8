//! The MySQL / MariaDB lexer: turns statement text into the same
//! [`Token`]s as the PostgreSQL lexer, under one `sql_mode` reading.
//!
//! It owns where strings, identifiers, variables and comments start and end
//! in MySQL's grammar (checked against MariaDB 10.11's lexer by the
//! differential test): `'…'` and `"…"` strings with `\` escapes and doubled
//! quotes, `` `…` `` identifiers with doubled backticks, `@user` / `@@system`
//! variables, `#` and `-- ` line comments (the dashes must be followed by a
//! space, a control character or the end: `1--1` is arithmetic), and
//! non-nesting `/* */` comments (`/*+ … */` optimizer hints are comments).
//!
//! Executable comments are code: the server runs the inside of `/*! … */`,
//! of `/*!NNNNN … */` when its version is at least NNNNN, and MariaDB runs
//! `/*M! … */` and `/*M!NNNNNN … */`. Their tokens are emitted as code;
//! those of a version-gated (or MariaDB-only) comment are marked *optional*
//! ([`MysqlTokens::optional`]): the classifier must be right both with and
//! without them. Two readings of such a comment can disagree on where it
//! ends (a string or a line comment inside that spans its `*/`, a nested
//! `/*`): then the rest of the text is one [`TokenKind::Ambiguous`] token.
//! A `;` inside an executable comment is a statement boundary surrounded by
//! `Ambiguous` markers, so neither side can be complete.
//!
//! Two `sql_mode` flags change lexing, and the text alone does not say
//! which the session has: `NO_BACKSLASH_ESCAPES` (a `\` in a string is a
//! plain character) and `ANSI_QUOTES` (`"…"` is an identifier). The caller
//! lexes once per [`MysqlMode`] and compares (see `mysql.rs`).
//!
//! Like the PostgreSQL lexer it never panics: every byte access goes through
//! `get`, and every step advances.

use std::ops::ControlFlow;

use crate::lexer::{Token, TokenKind};

/// The `sql_mode` flags that change how text is lexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MysqlMode {
    /// `\` escapes the next character in strings (off under
    /// `NO_BACKSLASH_ESCAPES`).
    pub(crate) backslash_escapes: bool,
    /// `"…"` is an identifier, not a string (`ANSI_QUOTES`).
    pub(crate) ansi_quotes: bool,
}

impl MysqlMode {
    /// The server default: backslash escapes, `"…"` strings.
    pub(crate) const DEFAULT: MysqlMode = MysqlMode {
        backslash_escapes: true,
        ansi_quotes: false,
    };
}

/// The tokens of a text and, per token, whether it comes from a
/// version-gated executable comment the server may not run.
#[derive(Debug, Clone, Default)]
pub(crate) struct MysqlTokens {
    pub(crate) tokens: Vec<Token>,
    pub(crate) optional: Vec<bool>,
}

impl MysqlTokens {
    fn push(&mut self, kind: TokenKind, start: usize, end: usize, optional: bool) {
        self.tokens.push(Token { kind, start, end });
        self.optional.push(optional);
    }
}

/// An open executable comment.
#[derive(Debug, Clone, Copy)]
struct ExecComment {
    /// Where `/*!` starts.
    opener: usize,
    /// Where the first `*/` after the opener starts: where a server that
    /// does not run the comment ends it.
    raw_end: usize,
    /// Version-gated or MariaDB-only: may not run.
    optional: bool,
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte == b'$' || byte >= 0x80
}

fn is_ident_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

/// After `--`: a comment only when followed by whitespace, a control
/// character or the end of the text.
fn dash_comment_follows(byte: Option<u8>) -> bool {
    match byte {
        None => true,
        Some(byte) => byte <= b' ' || byte == 0x7f,
    }
}

const MULTI_CHAR_OPERATORS: &[&[u8]] = &[
    b"<=>", b"->>", b"<=", b">=", b"<>", b"!=", b"<<", b">>", b"&&", b"||", b":=", b"->",
];

fn find_comment_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while pos + 1 < bytes.len() {
        if bytes.get(pos) == Some(&b'*') && bytes.get(pos + 1) == Some(&b'/') {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// Splits `sql` into tokens under `mode`, dropping whitespace and comments.
pub(crate) fn tokenize_mysql(sql: &str, mode: MysqlMode) -> MysqlTokens {
    let mut lexer = Lexer {
        bytes: sql.as_bytes(),
        mode,
        out: MysqlTokens::default(),
        exec: None,
        previous_identifier_end: None,
        after_identifier_dot: false,
        pos: 0,
    };
    while lexer.pos < lexer.bytes.len() {
        if lexer.step().is_break() {
            break;
        }
    }
    lexer.out
}

/// The state of one [`tokenize_mysql`] run.
struct Lexer<'a> {
    bytes: &'a [u8],
    mode: MysqlMode,
    out: MysqlTokens,
    exec: Option<ExecComment>,
    /// The end of the previous token when it was an identifier, so that
    /// `db.1t` lexes `1t` as an identifier.
    previous_identifier_end: Option<usize>,
    after_identifier_dot: bool,
    pos: usize,
}

impl Lexer<'_> {
    /// The byte at `index`, or 0 past the end.
    fn at(&self, index: usize) -> u8 {
        self.bytes.get(index).copied().unwrap_or(0)
    }

    /// One step at `pos`: a comment, whitespace or one token; `Break` when
    /// the rest of the text is already emitted.
    fn step(&mut self) -> ControlFlow<()> {
        let byte = self.at(self.pos);
        let start = self.pos;
        let optional = self.exec.is_some_and(|e| e.optional);
        if let Some(open) = self.exec {
            if self.pos == open.raw_end {
                // `*/`: the executable comment ends here in both readings.
                self.exec = None;
                self.pos += 2;
                self.previous_identifier_end = None;
                return ControlFlow::Continue(());
            }
            if self.pos > open.raw_end {
                return self.ambiguous(open);
            }
        }
        if byte.is_ascii_whitespace() {
            self.pos += 1;
            return ControlFlow::Continue(());
        }
        let line_comment = byte == b'#'
            || (byte == b'-'
                && self.at(self.pos + 1) == b'-'
                && dash_comment_follows(self.bytes.get(self.pos + 2).copied()));
        if line_comment {
            return self.line_comment();
        }
        if byte == b'/' && self.at(self.pos + 1) == b'*' {
            return self.block_comment(start, optional);
        }
        if byte == b';' && self.exec.is_some() {
            self.exec_semicolon();
            return ControlFlow::Continue(());
        }
        self.token(start, optional)
    }

    /// The readings of the open comment `open` disagree: the rest is
    /// ambiguous.
    fn ambiguous(&mut self, open: ExecComment) -> ControlFlow<()> {
        ambiguous_rest(&mut self.out, self.bytes, open.opener);
        ControlFlow::Break(())
    }

    /// A `#` or `-- ` comment up to the end of the line.
    fn line_comment(&mut self) -> ControlFlow<()> {
        while self.pos < self.bytes.len() && self.at(self.pos) != b'\n' {
            self.pos += 1;
        }
        if let Some(open) = self.exec {
            if self.pos > open.raw_end {
                return self.ambiguous(open);
            }
        }
        ControlFlow::Continue(())
    }

    /// A `/* … */` comment at `pos`: skipped, or an executable comment opened.
    fn block_comment(&mut self, start: usize, optional: bool) -> ControlFlow<()> {
        if let Some(open) = self.exec {
            // A comment inside an executable comment: the server that
            // skips the outer comment may end it elsewhere.
            return self.ambiguous(open);
        }
        let pos = self.pos;
        let executable =
            self.at(pos + 2) == b'!' || (self.at(pos + 2) == b'M' && self.at(pos + 3) == b'!');
        if !executable {
            match find_comment_end(self.bytes, pos + 2) {
                Some(end) => self.pos = end + 2,
                None => {
                    self.out
                        .push(TokenKind::Unterminated, start, self.bytes.len(), optional);
                    return ControlFlow::Break(());
                }
            }
            return ControlFlow::Continue(());
        }
        self.executable_comment(start, optional)
    }

    /// `/*!`, `/*!NNNNN`, `/*M!` or `/*M!NNNNNN` at `pos`: its content is code.
    fn executable_comment(&mut self, start: usize, optional: bool) -> ControlFlow<()> {
        let pos = self.pos;
        let mariadb_only = self.at(pos + 2) == b'M';
        let mut content = if mariadb_only { pos + 4 } else { pos + 3 };
        let mut digits = 0usize;
        while self.at(content + digits).is_ascii_digit() {
            digits += 1;
        }
        let Some(raw_end) = find_comment_end(self.bytes, content) else {
            self.out
                .push(TokenKind::Unterminated, start, self.bytes.len(), optional);
            return ControlFlow::Break(());
        };
        let gated = match (mariadb_only, digits) {
            (false, 0) => false,
            (false, 5) | (true, 0) | (true, 5) | (true, 6) => true,
            // Fewer digits are code; a sixth digit is part of the
            // version for MariaDB but code for MySQL.
            (false, 1..=4) => {
                digits = 0;
                false
            }
            _ => {
                self.out
                    .push(TokenKind::Ambiguous, start, content + digits, true);
                true
            }
        };
        content += digits;
        self.exec = Some(ExecComment {
            opener: start,
            raw_end,
            optional: gated,
        });
        self.pos = content;
        self.previous_identifier_end = None;
        ControlFlow::Continue(())
    }

    /// A `;` inside an executable comment.
    fn exec_semicolon(&mut self) {
        let pos = self.pos;
        // The server may end the statement here, or reject it.
        self.out.push(TokenKind::Ambiguous, pos, pos, true);
        self.out.push(TokenKind::Semicolon, pos, pos + 1, true);
        self.out.push(TokenKind::Ambiguous, pos + 1, pos + 1, true);
        self.pos += 1;
        self.previous_identifier_end = None;
    }

    /// One token (word, string, number, operator…) at `pos`.
    fn token(&mut self, start: usize, optional: bool) -> ControlFlow<()> {
        let pos = self.pos;
        let identifier_part = self.after_identifier_dot && is_ident_continue(self.at(pos));
        self.after_identifier_dot = false;
        let (kind, end) = if identifier_part {
            (TokenKind::Word, ident_run(self.bytes, pos))
        } else {
            lex_token(self.bytes, pos, self.mode, self.previous_identifier_end)
        };
        let end = end.max(pos + 1).min(self.bytes.len());
        if let Some(open) = self.exec {
            if end > open.raw_end {
                // The token spans the `*/` a skipping server ends the
                // comment at.
                return self.ambiguous(open);
            }
        }
        if kind == TokenKind::Unterminated {
            self.out.push(kind, start, self.bytes.len(), optional);
            return ControlFlow::Break(());
        }
        if kind == TokenKind::Dot && self.previous_identifier_end == Some(start) {
            self.after_identifier_dot = true;
        }
        self.previous_identifier_end = match kind {
            TokenKind::Word | TokenKind::QuotedIdent => Some(end),
            _ => None,
        };
        self.out.push(kind, start, end, optional);
        self.pos = end;
        ControlFlow::Continue(())
    }
}

/// The rest of the text from `from`, where the readings of an executable
/// comment disagree on where it ends: `Ambiguous` pieces split at *every*
/// `;` byte, a superset of the boundaries of any reading, so no reading's
/// statement can hide inside a piece (each piece is `unknown`).
fn ambiguous_rest(out: &mut MysqlTokens, bytes: &[u8], from: usize) {
    // Tokens already lexed inside the comment are part of the rest.
    let keep = out
        .tokens
        .iter()
        .position(|token| token.start >= from)
        .unwrap_or(out.tokens.len());
    out.tokens.truncate(keep);
    out.optional.truncate(keep);
    let mut start = from;
    let mut pos = from;
    while pos <= bytes.len() {
        let boundary = pos == bytes.len() || bytes.get(pos) == Some(&b';');
        if boundary {
            let mut piece = start;
            while bytes.get(piece).is_some_and(u8::is_ascii_whitespace) && piece < pos {
                piece += 1;
            }
            if piece < pos {
                out.push(TokenKind::Ambiguous, piece, pos, true);
            }
            if pos < bytes.len() {
                out.push(TokenKind::Semicolon, pos, pos + 1, true);
            }
            start = pos + 1;
        }
        pos += 1;
    }
}

/// The end of a run of identifier characters starting at `pos`.
fn ident_run(bytes: &[u8], pos: usize) -> usize {
    let mut end = pos;
    while bytes.get(end).copied().is_some_and(is_ident_continue) {
        end += 1;
    }
    end
}

/// One token starting at `pos` (not whitespace, not a comment).
fn lex_token(
    bytes: &[u8],
    pos: usize,
    mode: MysqlMode,
    previous_identifier_end: Option<usize>,
) -> (TokenKind, usize) {
    let at = |index: usize| -> u8 { bytes.get(index).copied().unwrap_or(0) };
    let byte = at(pos);
    match byte {
        b'\'' => lex_quoted(bytes, pos, mode.backslash_escapes, TokenKind::String),
        b'"' if mode.ansi_quotes => lex_quoted(bytes, pos, false, TokenKind::QuotedIdent),
        b'"' => lex_quoted(bytes, pos, mode.backslash_escapes, TokenKind::String),
        b'`' => lex_quoted(bytes, pos, false, TokenKind::QuotedIdent),
        b'n' | b'N' if at(pos + 1) == b'\'' => {
            lex_quoted(bytes, pos + 1, mode.backslash_escapes, TokenKind::String)
        }
        // Hex and bit strings: no escapes; anything but digits is an error.
        b'x' | b'X' | b'b' | b'B' if at(pos + 1) == b'\'' => {
            lex_quoted(bytes, pos + 1, false, TokenKind::String)
        }
        b'@' => lex_variable(bytes, pos, mode),
        b'?' => (TokenKind::Param, pos + 1),
        b'0'..=b'9' => lex_number_or_word(bytes, pos),
        b'.' if at(pos + 1).is_ascii_digit() && previous_identifier_end != Some(pos) => {
            (TokenKind::Number, lex_fraction(bytes, pos + 1))
        }
        b'(' => (TokenKind::LParen, pos + 1),
        b')' => (TokenKind::RParen, pos + 1),
        b',' => (TokenKind::Comma, pos + 1),
        b';' => (TokenKind::Semicolon, pos + 1),
        b'.' => (TokenKind::Dot, pos + 1),
        b':' if at(pos + 1) == b'=' => (TokenKind::Operator, pos + 2),
        b':' => (TokenKind::Colon, pos + 1),
        _ if is_ident_start(byte) => (TokenKind::Word, ident_run(bytes, pos)),
        b'+' | b'-' | b'*' | b'/' | b'<' | b'>' | b'=' | b'~' | b'!' | b'&' | b'|' | b'^'
        | b'%' => {
            let rest = bytes.get(pos..).unwrap_or(&[]);
            let length = MULTI_CHAR_OPERATORS
                .iter()
                .find(|operator| rest.starts_with(operator))
                .map_or(1, |operator| operator.len());
            (TokenKind::Operator, pos + length)
        }
        _ => (TokenKind::Other, pos + 1),
    }
}

/// A quoted string or identifier whose opening quote is at `quote`;
/// doubled quotes continue it, and with `escapes` a `\` takes the next byte.
fn lex_quoted(bytes: &[u8], quote: usize, escapes: bool, kind: TokenKind) -> (TokenKind, usize) {
    let Some(&quote_byte) = bytes.get(quote) else {
        return (TokenKind::Unterminated, bytes.len());
    };
    let mut pos = quote + 1;
    while let Some(&byte) = bytes.get(pos) {
        if escapes && byte == b'\\' {
            pos += 2;
            continue;
        }
        if byte == quote_byte {
            if bytes.get(pos + 1) == Some(&quote_byte) {
                pos += 2;
                continue;
            }
            return (kind, pos + 1);
        }
        pos += 1;
    }
    (TokenKind::Unterminated, bytes.len())
}

/// `@name`, `@'name'`, `` @`name` ``, `@@name`, `@@session.name`.
fn lex_variable(bytes: &[u8], at_sign: usize, mode: MysqlMode) -> (TokenKind, usize) {
    let at = |index: usize| -> u8 { bytes.get(index).copied().unwrap_or(0) };
    let system = at(at_sign + 1) == b'@';
    let name = if system { at_sign + 2 } else { at_sign + 1 };
    let mut end = name;
    loop {
        let byte = at(end);
        if matches!(byte, b'\'' | b'"' | b'`') {
            let escapes = byte != b'`' && mode.backslash_escapes;
            let (kind, quoted_end) = lex_quoted(bytes, end, escapes, TokenKind::Variable);
            if kind == TokenKind::Unterminated {
                return (kind, quoted_end);
            }
            end = quoted_end;
        } else if is_ident_continue(byte) {
            end = ident_run(bytes, end);
        } else {
            break;
        }
        // User variable names may contain `.`; system variables are
        // qualified by scope (`@@session.x`).
        if at(end) == b'.' && (is_ident_continue(at(end + 1)) || at(end + 1) == b'`') {
            end += 1;
            continue;
        }
        break;
    }
    if end == name {
        return (TokenKind::Other, at_sign + 1);
    }
    (TokenKind::Variable, end)
}

/// A number (`12`, `1.5`, `1e-3`, `0x1f`, `0b101`) or, when identifier
/// characters follow the digits, an identifier (`1abc`, `0xg`).
fn lex_number_or_word(bytes: &[u8], pos: usize) -> (TokenKind, usize) {
    let run_end = ident_run(bytes, pos);
    let run = bytes.get(pos..run_end).unwrap_or(&[]);
    if run.iter().all(u8::is_ascii_digit) {
        if bytes.get(run_end) == Some(&b'.') {
            return (TokenKind::Number, lex_fraction(bytes, run_end + 1));
        }
        return (TokenKind::Number, lex_exponent(bytes, run_end));
    }
    let prefixed = |prefix: u8, digit: fn(&u8) -> bool| {
        run.len() > 2
            && run.first() == Some(&b'0')
            && run.get(1) == Some(&prefix)
            && run.get(2..).is_some_and(|rest| rest.iter().all(digit))
    };
    if prefixed(b'x', u8::is_ascii_hexdigit) || prefixed(b'b', |d| matches!(d, b'0' | b'1')) {
        return (TokenKind::Number, run_end);
    }
    // `1e5`, or `1e` followed by a signed exponent.
    let digits = run.iter().take_while(|b| b.is_ascii_digit()).count();
    if let Some(exponent) = run.get(digits..) {
        if matches!(exponent.first(), Some(b'e' | b'E')) {
            let rest = exponent.get(1..).unwrap_or(&[]);
            if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) {
                return (TokenKind::Number, run_end);
            }
            if rest.is_empty() {
                let signed = lex_exponent(bytes, pos + digits);
                if signed > run_end {
                    return (TokenKind::Number, signed);
                }
            }
        }
    }
    (TokenKind::Word, run_end)
}

/// The digits after a decimal point at `pos`, then an exponent.
fn lex_fraction(bytes: &[u8], pos: usize) -> usize {
    let mut end = pos;
    while bytes.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    lex_exponent(bytes, end)
}

/// An optional exponent (`e5`, `E-3`) at `pos`.
fn lex_exponent(bytes: &[u8], pos: usize) -> usize {
    if !matches!(bytes.get(pos), Some(b'e' | b'E')) {
        return pos;
    }
    let mut digits = pos + 1;
    if matches!(bytes.get(digits), Some(b'+' | b'-')) {
        digits += 1;
    }
    if !bytes.get(digits).is_some_and(u8::is_ascii_digit) {
        return pos;
    }
    while bytes.get(digits).is_some_and(u8::is_ascii_digit) {
        digits += 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenKind::*;

    fn kinds(sql: &str, mode: MysqlMode) -> Vec<(TokenKind, &str, bool)> {
        let lexed = tokenize_mysql(sql, mode);
        lexed
            .tokens
            .iter()
            .zip(&lexed.optional)
            .map(|(t, optional)| (t.kind, &sql[t.start..t.end], *optional))
            .collect()
    }

    fn plain(sql: &str) -> Vec<(TokenKind, &str)> {
        kinds(sql, MysqlMode::DEFAULT)
            .into_iter()
            .map(|(kind, text, _)| (kind, text))
            .collect()
    }

    #[test]
    fn strings_identifiers_comments() {
        let cases: &[(&str, Vec<(TokenKind, &str)>)] = &[
            ("'a\\'b'", vec![(String, "'a\\'b'")]),
            ("'a''b'", vec![(String, "'a''b'")]),
            ("\"a\\\"b\"", vec![(String, "\"a\\\"b\"")]),
            ("`a``b`", vec![(QuotedIdent, "`a``b`")]),
            ("`a\\`", vec![(QuotedIdent, "`a\\`")]),
            ("# ;\nx", vec![(Word, "x")]),
            ("-- ;\nx", vec![(Word, "x")]),
            ("--\t;\nx", vec![(Word, "x")]),
            (
                "1--1",
                vec![
                    (Number, "1"),
                    (Operator, "-"),
                    (Operator, "-"),
                    (Number, "1"),
                ],
            ),
            ("x --", vec![(Word, "x")]),
            ("/* /* */ x", vec![(Word, "x")]),
            ("/*+ hint */ x", vec![(Word, "x")]),
            (
                "@a.b := 1",
                vec![(Variable, "@a.b"), (Operator, ":="), (Number, "1")],
            ),
            ("@@session.sql_mode", vec![(Variable, "@@session.sql_mode")]),
            ("@'x y'", vec![(Variable, "@'x y'")]),
            ("@ x", vec![(Other, "@"), (Word, "x")]),
            (
                "1e5 1e+5 0x1f 0b1 .5 1.5e-3",
                vec![
                    (Number, "1e5"),
                    (Number, "1e+5"),
                    (Number, "0x1f"),
                    (Number, "0b1"),
                    (Number, ".5"),
                    (Number, "1.5e-3"),
                ],
            ),
            ("1abc 0xg", vec![(Word, "1abc"), (Word, "0xg")]),
            ("db.1t", vec![(Word, "db"), (Dot, "."), (Word, "1t")]),
            (
                "X'41' N'a\\'b' _utf8mb4'c'",
                vec![
                    (String, "X'41'"),
                    (String, "N'a\\'b'"),
                    (Word, "_utf8mb4"),
                    (String, "'c'"),
                ],
            ),
            ("a<=>b", vec![(Word, "a"), (Operator, "<=>"), (Word, "b")]),
            ("'abc", vec![(Unterminated, "'abc")]),
            ("/* abc", vec![(Unterminated, "/* abc")]),
        ];
        for (sql, expected) in cases {
            assert_eq!(&plain(sql), expected, "{sql}");
        }
    }

    #[test]
    fn modes_change_strings() {
        let no_escapes = MysqlMode {
            backslash_escapes: false,
            ansi_quotes: false,
        };
        assert_eq!(
            kinds("'a\\' b", no_escapes),
            vec![(String, "'a\\'", false), (Word, "b", false)]
        );
        let ansi = MysqlMode {
            backslash_escapes: true,
            ansi_quotes: true,
        };
        assert_eq!(kinds("\"t\"", ansi), vec![(QuotedIdent, "\"t\"", false)]);
    }

    #[test]
    fn executable_comments_are_code() {
        assert_eq!(
            kinds("/*! DROP */", MysqlMode::DEFAULT),
            vec![(Word, "DROP", false)]
        );
        assert_eq!(
            kinds("/*!50000 DROP */ x", MysqlMode::DEFAULT),
            vec![(Word, "DROP", true), (Word, "x", false)]
        );
        assert_eq!(
            kinds("/*M!100500 DROP */", MysqlMode::DEFAULT),
            vec![(Word, "DROP", true)]
        );
        assert_eq!(
            kinds("/*M! DROP */", MysqlMode::DEFAULT),
            vec![(Word, "DROP", true)]
        );
        // A string spanning the `*/`: the readings disagree.
        let lexed = plain("SELECT 1 /*!99999 'a */ ; DROP TABLE t; -- ' */");
        assert_eq!(lexed.last().map(|t| t.0), Some(Ambiguous));
        assert_eq!(
            lexed.iter().filter(|t| t.0 == Semicolon).count(),
            2,
            "{lexed:?}"
        );
        let lexed = plain("SELECT 1 /*! ; DROP TABLE t */");
        assert!(lexed.contains(&(Semicolon, ";")));
        assert!(lexed.contains(&(Ambiguous, "")));
        assert_eq!(plain("/*! x"), vec![(Unterminated, "/*! x")]);
        assert_eq!(
            plain("/*! /* x */ y */").last().map(|t| t.0),
            Some(Ambiguous)
        );
    }
}
