//! The PostgreSQL lexer: turns statement text into [`Token`]s.
//!
//! It owns the one question every later stage depends on: where do strings,
//! quoted identifiers and comments start and end. It follows PostgreSQL's
//! `scan.l` for the forms a client can send: `--` and nested `/* */`
//! comments, `'…'` with `''` doubling, `E'…'` with backslash escapes, `U&'…'`
//! and `U&"…"`, `"…"` identifiers with `""` doubling, dollar quoting
//! (`$$…$$`, `$tag$…$tag$`), positional parameters (`$1`), numbers and
//! operators. Comments are dropped.
//!
//! It must never panic, whatever the input: every byte access goes through
//! `get`, and every token covers at least one byte, so the loop always ends.
//!
//! Security note: a standard string containing an odd run of backslashes
//! before a quote (`'a\'…'`) lexes differently when the session has
//! `standard_conforming_strings = off`; such a string is marked
//! [`TokenKind::AmbiguousString`] so the classifier reports the statement as
//! incomplete instead of guessing where the string ends.

/// What kind of token a byte range is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An unquoted identifier or keyword (compared case-insensitively).
    Word,
    /// A `"quoted"` identifier; the text includes the quotes.
    QuotedIdent,
    /// A `U&"…"` identifier, whose value needs unicode unescaping.
    UnicodeQuotedIdent,
    /// A string constant of any form (`'…'`, `E'…'`, `U&'…'`, `B'…'`, `$$…$$`).
    String,
    /// A standard string whose end depends on `standard_conforming_strings`.
    AmbiguousString,
    /// A string, quoted identifier or comment that runs to the end of input.
    Unterminated,
    /// A numeric constant.
    Number,
    /// A positional parameter `$n`.
    Param,
    /// An operator (`=`, `<>`, `||`, `->>`, …).
    Operator,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Semicolon,
    Dot,
    Colon,
    DoubleColon,
    /// Any other byte (a stray `\`, a lone `$`, …).
    Other,
    /// MySQL only: a user variable (`@name`, `@'name'`) or a system
    /// variable (`@@name`, `@@session.name`).
    Variable,
    /// MySQL only: a point where the server's reading cannot be known
    /// (a `;` inside an executable comment, or the rest of a text after
    /// an executable comment whose end depends on whether it runs). Makes
    /// its statement incomplete and `unknown`.
    Ambiguous,
}

/// One token: its kind and its byte range in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

fn is_ident_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

fn is_operator_byte(byte: u8) -> bool {
    matches!(
        byte,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

/// Splits `sql` into tokens, dropping whitespace and comments.
pub(crate) fn tokenize(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::with_capacity(bytes.len() / 4 + 4);
    let mut pos = 0usize;
    let at = |index: usize| -> u8 { bytes.get(index).copied().unwrap_or(0) };
    while pos < bytes.len() {
        let byte = at(pos);
        let start = pos;
        // Whitespace.
        if byte.is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        // `--` line comment.
        if byte == b'-' && at(pos + 1) == b'-' {
            while pos < bytes.len() && at(pos) != b'\n' && at(pos) != b'\r' {
                pos += 1;
            }
            continue;
        }
        // Nested block comment.
        if byte == b'/' && at(pos + 1) == b'*' {
            let mut depth = 0usize;
            let mut terminated = false;
            while pos < bytes.len() {
                if at(pos) == b'/' && at(pos + 1) == b'*' {
                    depth += 1;
                    pos += 2;
                } else if at(pos) == b'*' && at(pos + 1) == b'/' {
                    depth = depth.saturating_sub(1);
                    pos += 2;
                    if depth == 0 {
                        terminated = true;
                        break;
                    }
                } else {
                    pos += 1;
                }
            }
            if !terminated {
                tokens.push(Token {
                    kind: TokenKind::Unterminated,
                    start,
                    end: bytes.len(),
                });
            }
            continue;
        }
        let (kind, end) = match byte {
            b'\'' => lex_standard_string(bytes, pos),
            b'"' => lex_quoted_ident(bytes, pos, TokenKind::QuotedIdent),
            b'e' | b'E' if at(pos + 1) == b'\'' => lex_escape_string(bytes, pos + 1),
            b'u' | b'U' if at(pos + 1) == b'&' && at(pos + 2) == b'\'' => {
                let (kind, end) = lex_standard_string(bytes, pos + 2);
                // In U&'' strings the backslash starts a unicode escape, not a
                // quote escape, regardless of standard_conforming_strings.
                let kind = if kind == TokenKind::AmbiguousString {
                    TokenKind::String
                } else {
                    kind
                };
                (kind, end)
            }
            b'u' | b'U' if at(pos + 1) == b'&' && at(pos + 2) == b'"' => {
                lex_quoted_ident(bytes, pos + 2, TokenKind::UnicodeQuotedIdent)
            }
            // Bit-string, hex-string and national-character constants.
            b'b' | b'B' | b'x' | b'X' | b'n' | b'N' if at(pos + 1) == b'\'' => {
                lex_standard_string(bytes, pos + 1)
            }
            b'$' => lex_dollar(bytes, pos),
            b'0'..=b'9' => (TokenKind::Number, lex_number(bytes, pos)),
            b'.' if at(pos + 1).is_ascii_digit() => (TokenKind::Number, lex_number(bytes, pos)),
            b'(' => (TokenKind::LParen, pos + 1),
            b')' => (TokenKind::RParen, pos + 1),
            b'[' => (TokenKind::LBracket, pos + 1),
            b']' => (TokenKind::RBracket, pos + 1),
            b',' => (TokenKind::Comma, pos + 1),
            b';' => (TokenKind::Semicolon, pos + 1),
            b'.' => (TokenKind::Dot, pos + 1),
            b':' if at(pos + 1) == b':' => (TokenKind::DoubleColon, pos + 2),
            b':' => (TokenKind::Colon, pos + 1),
            _ if is_ident_start(byte) => {
                let mut end = pos + 1;
                while end < bytes.len() && is_ident_continue(at(end)) {
                    end += 1;
                }
                (TokenKind::Word, end)
            }
            _ if is_operator_byte(byte) => {
                let mut end = pos + 1;
                while end < bytes.len() && is_operator_byte(at(end)) {
                    // An operator never contains the start of a comment.
                    if (at(end) == b'-' && at(end + 1) == b'-')
                        || (at(end) == b'/' && at(end + 1) == b'*')
                    {
                        break;
                    }
                    end += 1;
                }
                (TokenKind::Operator, end)
            }
            _ => {
                // Any other byte, skipping UTF-8 continuation bytes is not
                // needed: bytes >= 0x80 are identifier bytes above.
                (TokenKind::Other, pos + 1)
            }
        };
        let end = end.max(pos + 1).min(bytes.len());
        tokens.push(Token { kind, start, end });
        pos = end;
    }
    tokens
}

/// A `'…'` string starting at `quote` (the opening quote). Returns the kind
/// and the end (exclusive).
fn lex_standard_string(bytes: &[u8], quote: usize) -> (TokenKind, usize) {
    let mut pos = quote + 1;
    let mut ambiguous = false;
    let mut backslashes = 0usize;
    while let Some(&byte) = bytes.get(pos) {
        if byte == b'\'' {
            if backslashes % 2 == 1 {
                ambiguous = true;
            }
            if bytes.get(pos + 1) == Some(&b'\'') {
                pos += 2;
                backslashes = 0;
                continue;
            }
            let kind = if ambiguous {
                TokenKind::AmbiguousString
            } else {
                TokenKind::String
            };
            return (kind, pos + 1);
        }
        if byte == b'\\' {
            backslashes += 1;
        } else {
            backslashes = 0;
        }
        pos += 1;
    }
    (TokenKind::Unterminated, bytes.len())
}

/// An `E'…'` string; `quote` is the opening quote after the `E`.
fn lex_escape_string(bytes: &[u8], quote: usize) -> (TokenKind, usize) {
    let mut pos = quote + 1;
    while let Some(&byte) = bytes.get(pos) {
        match byte {
            b'\\' => pos += 2,
            b'\'' => {
                if bytes.get(pos + 1) == Some(&b'\'') {
                    pos += 2;
                } else {
                    return (TokenKind::String, pos + 1);
                }
            }
            _ => pos += 1,
        }
    }
    (TokenKind::Unterminated, bytes.len())
}

/// A `"…"` identifier; `quote` is the opening quote.
fn lex_quoted_ident(bytes: &[u8], quote: usize, kind: TokenKind) -> (TokenKind, usize) {
    let mut pos = quote + 1;
    while let Some(&byte) = bytes.get(pos) {
        if byte == b'"' {
            if bytes.get(pos + 1) == Some(&b'"') {
                pos += 2;
                continue;
            }
            return (kind, pos + 1);
        }
        pos += 1;
    }
    (TokenKind::Unterminated, bytes.len())
}

/// `$n`, `$tag$…$tag$`, or a lone `$`.
fn lex_dollar(bytes: &[u8], dollar: usize) -> (TokenKind, usize) {
    let next = bytes.get(dollar + 1).copied().unwrap_or(0);
    if next.is_ascii_digit() {
        let mut end = dollar + 1;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        return (TokenKind::Param, end);
    }
    // The opening delimiter: `$` [tag] `$`, tag = ident start then ident
    // characters without `$`.
    let mut tag_end = dollar + 1;
    if is_ident_start(next) {
        tag_end += 1;
        while bytes
            .get(tag_end)
            .is_some_and(|&b| is_ident_continue(b) && b != b'$')
        {
            tag_end += 1;
        }
    }
    if bytes.get(tag_end) != Some(&b'$') {
        return (TokenKind::Other, dollar + 1);
    }
    let delimiter = match bytes.get(dollar..=tag_end) {
        Some(delimiter) => delimiter,
        None => return (TokenKind::Other, dollar + 1),
    };
    let body_start = tag_end + 1;
    let mut pos = body_start;
    while pos < bytes.len() {
        if bytes.get(pos) == Some(&b'$')
            && bytes
                .get(pos..pos + delimiter.len())
                .is_some_and(|candidate| candidate == delimiter)
        {
            return (TokenKind::String, pos + delimiter.len());
        }
        pos += 1;
    }
    (TokenKind::Unterminated, bytes.len())
}

/// Digits, a decimal point, an exponent, `0x`/`0o`/`0b` prefixes and `_`
/// separators. Over-consuming identifier characters is harmless here.
fn lex_number(bytes: &[u8], start: usize) -> usize {
    let mut pos = start;
    while let Some(&byte) = bytes.get(pos) {
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            pos += 1;
        } else if byte == b'.' {
            // `1..2` is not a number followed by a number; stop before `..`.
            if bytes.get(pos + 1) == Some(&b'.') {
                break;
            }
            pos += 1;
        } else if (byte == b'+' || byte == b'-')
            && pos > start
            && matches!(bytes.get(pos - 1), Some(b'e' | b'E'))
            && bytes.get(pos + 1).is_some_and(u8::is_ascii_digit)
        {
            pos += 1;
        } else {
            break;
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(TokenKind, &str)> {
        tokenize(sql)
            .into_iter()
            .map(|t| (t.kind, &sql[t.start..t.end]))
            .collect()
    }

    #[test]
    fn strings_and_comments() {
        use TokenKind::*;
        let cases: &[(&str, Vec<(TokenKind, &str)>)] = &[
            ("'a''b'", vec![(String, "'a''b'")]),
            ("E'a\\'b'", vec![(String, "E'a\\'b'")]),
            ("U&'d\\0061t'", vec![(String, "U&'d\\0061t'")]),
            ("U&\"x\"", vec![(UnicodeQuotedIdent, "U&\"x\"")]),
            ("\"a\"\"b\"", vec![(QuotedIdent, "\"a\"\"b\"")]),
            ("$$a;b$$", vec![(String, "$$a;b$$")]),
            ("$fn$ $$ ; $fn$", vec![(String, "$fn$ $$ ; $fn$")]),
            ("$1", vec![(Param, "$1")]),
            ("a$b$", vec![(Word, "a$b$")]),
            ("/* /* */ ; */ x", vec![(Word, "x")]),
            ("-- ;\nx", vec![(Word, "x")]),
            ("'a\\' b", vec![(AmbiguousString, "'a\\'"), (Word, "b")]),
            ("'a\\\\'", vec![(String, "'a\\\\'")]),
            ("'abc", vec![(Unterminated, "'abc")]),
            ("/* abc", vec![(Unterminated, "/* abc")]),
            (
                "a::int",
                vec![(Word, "a"), (DoubleColon, "::"), (Word, "int")],
            ),
            ("1.5e-3", vec![(Number, "1.5e-3")]),
            ("a<>--x\n", vec![(Word, "a"), (Operator, "<>")]),
        ];
        for (sql, expected) in cases {
            assert_eq!(&kinds(sql), expected, "{sql}");
        }
    }
}
