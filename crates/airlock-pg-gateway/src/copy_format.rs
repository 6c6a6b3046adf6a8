//! The output options of `COPY … TO STDOUT`, read from the statement text
//! (pure, bounded, never panics).
//!
//! `CopyOutResponse` says only "text" or "binary"; the delimiter, quote,
//! escape, NULL string and header a row was written with are in the
//! statement. The masker needs them to split a row into its fields, so this
//! module reads both the `WITH (option value, …)` syntax and the older
//! `[WITH] [BINARY] [DELIMITER [AS] 'x'] [NULL [AS] 'x'] [CSV [HEADER]
//! [QUOTE [AS] 'x'] [ESCAPE [AS] 'x'] [FORCE QUOTE …]]` one, for every
//! statement of a query text.
//!
//! It never guesses: a string constant it cannot decode with certainty (a
//! plain `'…'` holding a backslash, whose meaning depends on
//! `standard_conforming_strings`, `U&'…'`, an unknown `E'…'` escape), an
//! unknown option, an encoding other than UTF-8 or a single-byte one, or
//! any syntax it does not follow makes the statement's output
//! [`CopyOutput::Unknown`], which the tracker refuses under a mask plan.

use airlock_pg::copy::{CopyFormat, CopyKind};

/// The output one `COPY … TO STDOUT` statement will produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutput {
    Known(CopyFormat),
    /// A COPY whose options could not be read with certainty.
    Unknown,
}

/// Bound on the tokens read from one statement.
const MAX_TOKENS: usize = 100_000;
/// Bound on the COPY statements remembered for one query.
const MAX_COPIES: usize = 1_000;

/// The outputs of the `COPY … TO STDOUT` statements in `text`, in order
/// (statements that are not such a COPY produce nothing). Cheap for texts
/// that do not contain `copy`.
pub fn copy_outputs(text: &str) -> Vec<CopyOutput> {
    if !text
        .as_bytes()
        .windows(4)
        .any(|window| window.eq_ignore_ascii_case(b"copy"))
    {
        return Vec::new();
    }
    let mut outputs = Vec::new();
    for statement in airlock_sql::split_statements(airlock_sql::Dialect::Postgres, text) {
        if let Some(output) = parse_statement(statement) {
            if outputs.len() >= MAX_COPIES {
                outputs.push(CopyOutput::Unknown);
                break;
            }
            outputs.push(output);
        }
    }
    outputs
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An unquoted identifier or keyword, lowercased.
    Word(String),
    /// A quoted identifier.
    Quoted(String),
    /// A string constant; `None` when its value is not certain.
    Str(Option<String>),
    Number(String),
    Symbol(char),
}

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if tokens.len() > MAX_TOKENS {
            return None;
        }
        let rest = text.get(start..)?;
        if c.is_whitespace() {
            chars.next();
        } else if rest.starts_with("--") {
            while chars.next_if(|&(_, c)| c != '\n').is_some() {}
        } else if rest.starts_with("/*") {
            // Nested block comments.
            let mut depth = 0usize;
            let mut offset = 0;
            loop {
                let here = rest.get(offset..)?;
                if here.starts_with("/*") {
                    depth += 1;
                    offset += 2;
                } else if here.starts_with("*/") {
                    depth -= 1;
                    offset += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    offset += here.chars().next()?.len_utf8();
                }
            }
            while chars
                .next_if(|&(index, _)| index < start + offset)
                .is_some()
            {}
        } else if c == '\'' {
            let (value, length) = plain_string(rest)?;
            tokens.push(Token::Str(value));
            skip(&mut chars, start + length);
        } else if (c == 'e' || c == 'E') && rest.get(1..2) == Some("'") {
            let (value, length) = escape_string(rest.get(1..)?)?;
            tokens.push(Token::Str(value));
            skip(&mut chars, start + 1 + length);
        } else if matches!(c, 'u' | 'U' | 'b' | 'B' | 'x' | 'X' | 'n' | 'N')
            && (rest.get(1..2) == Some("'") || rest.get(1..3) == Some("&'"))
        {
            // Unicode-escaped, bit and national strings: not read.
            let quote = rest.find('\'')?;
            let (_, length) = plain_string(rest.get(quote..)?)?;
            tokens.push(Token::Str(None));
            skip(&mut chars, start + quote + length);
        } else if c == '$' && dollar_tag(rest).is_some() {
            let tag = dollar_tag(rest)?;
            let body = rest.get(tag.len()..)?;
            let end = body.find(tag)?;
            tokens.push(Token::Str(Some(body.get(..end)?.to_string())));
            skip(&mut chars, start + tag.len() + end + tag.len());
        } else if c == '"' {
            let mut value = String::new();
            let mut offset = 1;
            loop {
                let here = rest.get(offset..)?;
                if here.starts_with("\"\"") {
                    value.push('"');
                    offset += 2;
                } else if here.starts_with('"') {
                    offset += 1;
                    break;
                } else {
                    let next = here.chars().next()?;
                    value.push(next);
                    offset += next.len_utf8();
                }
            }
            tokens.push(Token::Quoted(value));
            skip(&mut chars, start + offset);
        } else if c.is_alphabetic() || c == '_' {
            let mut word = String::new();
            while let Some((_, c)) =
                chars.next_if(|&(_, c)| c.is_alphanumeric() || c == '_' || c == '$')
            {
                word.extend(c.to_lowercase());
            }
            tokens.push(Token::Word(word));
        } else if c.is_ascii_digit() {
            let mut number = String::new();
            while let Some((_, c)) = chars.next_if(|&(_, c)| c.is_ascii_alphanumeric() || c == '.')
            {
                number.push(c);
            }
            tokens.push(Token::Number(number));
        } else {
            tokens.push(Token::Symbol(c));
            chars.next();
        }
    }
    Some(tokens)
}

fn skip(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, end: usize) {
    while chars.next_if(|&(index, _)| index < end).is_some() {}
}

/// `$tag$` at the start of `text`.
fn dollar_tag(text: &str) -> Option<&str> {
    let after = text.get(1..)?;
    let end = after.find('$')?;
    let tag = after.get(..end)?;
    if tag.starts_with(|c: char| c.is_ascii_digit())
        || !tag.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return None;
    }
    text.get(..end + 2)
}

/// A `'…'` constant at the start of `text`: its value (`None` when it holds
/// a backslash, whose meaning depends on `standard_conforming_strings`) and
/// its length in bytes.
fn plain_string(text: &str) -> Option<(Option<String>, usize)> {
    let mut value = String::new();
    let mut offset = 1;
    loop {
        let here = text.get(offset..)?;
        if here.starts_with("''") {
            value.push('\'');
            offset += 2;
        } else if here.starts_with('\'') {
            offset += 1;
            break;
        } else {
            let next = here.chars().next()?;
            value.push(next);
            offset += next.len_utf8();
        }
    }
    let certain = !value.contains('\\');
    Some((certain.then_some(value), offset))
}

/// An `E'…'` constant (from its quote): value and length. Escapes other than
/// the simple ones, octal and hex make the value uncertain.
fn escape_string(text: &str) -> Option<(Option<String>, usize)> {
    let mut value = String::new();
    let mut certain = true;
    let mut chars = text.char_indices().skip(1).peekable();
    loop {
        let (index, c) = chars.next()?;
        match c {
            '\'' if chars.peek().map(|&(_, c)| c) == Some('\'') => {
                chars.next();
                value.push('\'');
            }
            '\'' => return Some((certain.then_some(value), index + 1)),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'b' => value.push('\u{8}'),
                    'f' => value.push('\u{c}'),
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    '0'..='7' => {
                        let mut code = escaped.to_digit(8)?;
                        for _ in 0..2 {
                            match chars.next_if(|&(_, c)| c.is_digit(8)) {
                                Some((_, digit)) => code = code * 8 + digit.to_digit(8)?,
                                None => break,
                            }
                        }
                        value.push(char::from_u32(code & 0xff)?);
                    }
                    'x' => {
                        let mut code = 0;
                        let mut digits = 0;
                        while digits < 2 {
                            match chars.next_if(|&(_, c)| c.is_ascii_hexdigit()) {
                                Some((_, digit)) => code = code * 16 + digit.to_digit(16)?,
                                None => break,
                            }
                            digits += 1;
                        }
                        if digits == 0 {
                            value.push('x');
                        } else {
                            value.push(char::from_u32(code)?);
                        }
                    }
                    'u' | 'U' => certain = false,
                    other => value.push(other),
                }
            }
            c => value.push(c),
        }
    }
}

/// `Some` for a `COPY … TO STDOUT` statement, `None` for anything else.
fn parse_statement(statement: &str) -> Option<CopyOutput> {
    let starts_with_copy = statement
        .trim_start()
        .get(..4)
        .is_some_and(|word| word.eq_ignore_ascii_case("copy"));
    let Some(tokens) = tokenize(statement) else {
        return starts_with_copy.then_some(CopyOutput::Unknown);
    };
    if tokens.first() != Some(&Token::Word("copy".into())) {
        return None;
    }
    let parser = Parser {
        tokens: &tokens,
        position: 1,
    };
    match parser.copy() {
        Parsed::NotOutput => None,
        Parsed::Output(format) => Some(CopyOutput::Known(format)),
        Parsed::Unknown => Some(CopyOutput::Unknown),
    }
}

enum Parsed {
    /// COPY FROM, or TO a file or program: no rows for the client.
    NotOutput,
    Output(CopyFormat),
    Unknown,
}

#[derive(Default)]
struct Options {
    kind: Option<CopyKind>,
    delimiter: Option<u8>,
    quote: Option<u8>,
    escape: Option<u8>,
    null: Option<Vec<u8>>,
    header: bool,
}

struct Parser<'t> {
    tokens: &'t [Token],
    position: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.position);
        self.position += 1;
        token
    }

    fn word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(found)) if found == word) {
            self.position += 1;
            return true;
        }
        false
    }

    fn symbol(&mut self, symbol: char) -> bool {
        if self.peek() == Some(&Token::Symbol(symbol)) {
            self.position += 1;
            return true;
        }
        false
    }

    /// Skips a parenthesised group (the opening parenthesis already read).
    fn skip_group(&mut self) -> bool {
        let mut depth = 1usize;
        while let Some(token) = self.next() {
            match token {
                Token::Symbol('(') => depth += 1,
                Token::Symbol(')') => {
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }

    fn name(&mut self) -> bool {
        matches!(self.next(), Some(Token::Word(_) | Token::Quoted(_)))
    }

    fn copy(mut self) -> Parsed {
        let mut options = Options::default();
        if self.symbol('(') {
            if !self.skip_group() {
                return Parsed::Unknown;
            }
        } else {
            if self.word("binary") {
                options.kind = Some(CopyKind::Binary);
            }
            if !self.name() {
                return Parsed::Unknown;
            }
            while self.symbol('.') {
                if !self.name() {
                    return Parsed::Unknown;
                }
            }
            if self.symbol('(') && !self.skip_group() {
                return Parsed::Unknown;
            }
        }
        if self.word("from") {
            return Parsed::NotOutput;
        }
        if !self.word("to") {
            return Parsed::Unknown;
        }
        if self.word("program") || matches!(self.peek(), Some(Token::Str(_))) {
            return Parsed::NotOutput;
        }
        if !self.word("stdout") {
            return Parsed::Unknown;
        }
        if self.word("using")
            && (!self.word("delimiters") || !self.single_byte(&mut options.delimiter))
        {
            return Parsed::Unknown;
        }
        self.word("with");
        let read = if self.symbol('(') {
            self.generic_options(&mut options)
        } else {
            self.legacy_options(&mut options)
        };
        if !read || self.peek().is_some() {
            return Parsed::Unknown;
        }
        let kind = options.kind.unwrap_or(CopyKind::Text);
        let defaults = CopyFormat::new(kind);
        let quote = options.quote.unwrap_or(defaults.quote);
        Parsed::Output(CopyFormat {
            kind,
            delimiter: options.delimiter.unwrap_or(defaults.delimiter),
            quote,
            escape: options.escape.unwrap_or(quote),
            null: options.null.unwrap_or(defaults.null),
            header: options.header,
        })
    }

    /// A string constant of exactly one byte.
    fn single_byte(&mut self, slot: &mut Option<u8>) -> bool {
        match self.next() {
            Some(Token::Str(Some(value))) if value.len() == 1 => {
                *slot = value.bytes().next();
                true
            }
            _ => false,
        }
    }

    fn string(&mut self) -> Option<String> {
        match self.next() {
            Some(Token::Str(Some(value))) => Some(value.clone()),
            _ => None,
        }
    }

    /// `( name [arg], … )`, the opening parenthesis already read.
    fn generic_options(&mut self, options: &mut Options) -> bool {
        loop {
            let name = match self.next() {
                Some(Token::Word(name) | Token::Quoted(name)) => name.to_lowercase(),
                _ => return false,
            };
            let read = match name.as_str() {
                "format" => match self.next() {
                    Some(Token::Word(value) | Token::Str(Some(value))) => {
                        match value.to_lowercase().as_str() {
                            "text" => options.kind = Some(CopyKind::Text),
                            "csv" => options.kind = Some(CopyKind::Csv),
                            "binary" => options.kind = Some(CopyKind::Binary),
                            _ => return false,
                        }
                        true
                    }
                    _ => false,
                },
                "delimiter" => self.single_byte(&mut options.delimiter),
                "quote" => self.single_byte(&mut options.quote),
                "escape" => self.single_byte(&mut options.escape),
                "null" => match self.string() {
                    Some(null) => {
                        options.null = Some(null.into_bytes());
                        true
                    }
                    None => false,
                },
                "header" => match self.peek() {
                    Some(Token::Symbol(',' | ')')) => {
                        options.header = true;
                        true
                    }
                    _ => match self.next() {
                        Some(
                            Token::Word(value) | Token::Str(Some(value)) | Token::Number(value),
                        ) => {
                            match value.to_lowercase().as_str() {
                                "true" | "on" | "1" => options.header = true,
                                "false" | "off" | "0" => options.header = false,
                                _ => return false,
                            }
                            true
                        }
                        _ => false,
                    },
                },
                "encoding" => self
                    .string()
                    .is_some_and(|encoding| safe_encoding(&encoding)),
                // Quoting is kept per field when rows are re-encoded, so
                // FORCE_QUOTE needs no reading; the others concern COPY FROM
                // or the server.
                "force_quote" | "force_not_null" | "force_null" | "freeze" | "on_error"
                | "log_verbosity" | "reject_limit" | "default" => self.skip_argument(),
                _ => false,
            };
            if !read {
                return false;
            }
            match self.next() {
                Some(Token::Symbol(',')) => continue,
                Some(Token::Symbol(')')) => return true,
                _ => return false,
            }
        }
    }

    /// An option argument: up to the next `,` or `)` at this level.
    fn skip_argument(&mut self) -> bool {
        loop {
            match self.peek() {
                None => return false,
                Some(Token::Symbol(',' | ')')) => return true,
                Some(Token::Symbol('(')) => {
                    self.position += 1;
                    if !self.skip_group() {
                        return false;
                    }
                }
                Some(Token::Str(None)) => return false,
                Some(_) => self.position += 1,
            }
        }
    }

    /// The pre-9.0 option list, up to the end of the statement.
    fn legacy_options(&mut self, options: &mut Options) -> bool {
        while let Some(token) = self.next() {
            let Token::Word(word) = token else {
                return false;
            };
            let read = match word.as_str() {
                "binary" => {
                    options.kind = Some(CopyKind::Binary);
                    true
                }
                "csv" => {
                    options.kind = Some(CopyKind::Csv);
                    true
                }
                "header" => {
                    options.header = true;
                    true
                }
                "freeze" => true,
                "delimiter" => {
                    self.word("as");
                    self.single_byte(&mut options.delimiter)
                }
                "quote" => {
                    self.word("as");
                    self.single_byte(&mut options.quote)
                }
                "escape" => {
                    self.word("as");
                    self.single_byte(&mut options.escape)
                }
                "null" => {
                    self.word("as");
                    match self.string() {
                        Some(null) => {
                            options.null = Some(null.into_bytes());
                            true
                        }
                        None => false,
                    }
                }
                "encoding" => self
                    .string()
                    .is_some_and(|encoding| safe_encoding(&encoding)),
                "force" => {
                    let _ = self.word("not");
                    if !(self.word("quote") || self.word("null")) {
                        return false;
                    }
                    if self.symbol('*') {
                        true
                    } else {
                        let mut read = self.name();
                        while read && self.symbol(',') {
                            read = self.name();
                        }
                        read
                    }
                }
                _ => false,
            };
            if !read {
                return false;
            }
        }
        true
    }
}

/// Encodings in which ASCII bytes are always ASCII characters (so a
/// delimiter or quote byte cannot be part of a multibyte character).
fn safe_encoding(encoding: &str) -> bool {
    let name: String = encoding
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(name.as_str(), "utf8" | "unicode" | "sqlascii")
        || name.starts_with("latin")
        || name.starts_with("iso8859")
        || name.starts_with("win125")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn format(
        kind: CopyKind,
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: &str,
        header: bool,
    ) -> CopyOutput {
        CopyOutput::Known(CopyFormat {
            kind,
            delimiter,
            quote,
            escape,
            null: null.as_bytes().to_vec(),
            header,
        })
    }

    #[test]
    fn options_are_read_from_both_syntaxes() {
        use CopyKind::*;
        let cases = [
            ("copy t to stdout", format(Text, b'\t', b'"', b'"', "\\N", false)),
            ("COPY (select 1) TO STDOUT WITH (FORMAT csv, QUOTE '@')", format(Csv, b',', b'@', b'@', "", false)),
            ("copy (select ')') to stdout (format 'csv', delimiter '@', header true, force_quote *)", format(Csv, b'@', b'"', b'"', "", true)),
            ("copy (select 1) to stdout with (format csv, quote '.', escape '@', force_quote (a, \"b\"))", format(Csv, b',', b'.', b'@', "", false)),
            ("copy t to stdout with (delimiter '@', null 'jane', header)", format(Text, b'@', b'"', b'"', "jane", true)),
            ("copy t to stdout with (delimiter E'\\t', null $$x$$)", format(Text, b'\t', b'"', b'"', "x", false)),
            ("copy customers to stdout csv quote as '@'", format(Csv, b',', b'@', b'@', "", false)),
            ("copy s.t (a, b) to stdout with csv header delimiter as '.' quote as '@' escape as '1' force quote a, b", format(Csv, b'.', b'@', b'1', "", true)),
            ("copy t to stdout delimiter '@' null as 'x'", format(Text, b'@', b'"', b'"', "x", false)),
            ("copy t to stdout using delimiters '|'", format(Text, b'|', b'"', b'"', "\\N", false)),
            ("copy binary t to stdout", format(Binary, b'\t', b'"', b'"', "\\N", false)),
            ("/* c */ copy -- x\n t to stdout (format binary)", format(Binary, b'\t', b'"', b'"', "\\N", false)),
            ("copy t to stdout (delimiter '''')", format(Text, b'\'', b'"', b'"', "\\N", false)),
        ];
        for (statement, expected) in cases {
            assert_eq!(copy_outputs(statement), [expected], "{statement}");
        }
    }

    #[test]
    fn uncertain_options_are_unknown_and_other_statements_nothing() {
        for statement in [
            "copy t to stdout (delimiter '\\t')",
            "copy t to stdout (delimiter U&'\\0040')",
            "copy t to stdout (format csv, quote E'\\u0040')",
            "copy t to stdout (mystery 1)",
            "copy t to stdout (format csv, encoding 'SJIS')",
            "copy t to stdout with oids",
            "copy t to stdout (format csv",
            "copy t to stdout (delimiter 'ab')",
            "copy (select 1 to stdout",
        ] {
            assert_eq!(
                copy_outputs(statement),
                [CopyOutput::Unknown],
                "{statement}"
            );
        }
        for statement in [
            "select 'copy'",
            "copy t from stdin",
            "copy t to '/tmp/x'",
            "copy t to program 'cat'",
            "select 1",
        ] {
            assert!(copy_outputs(statement).is_empty(), "{statement}");
        }
        assert_eq!(
            copy_outputs("select 1; copy a to stdout csv; copy b from stdin; copy c to stdout")
                .len(),
            2
        );
    }

    proptest! {
        #[test]
        fn hostile_statements_never_panic(text in "(copy|COPY|\\(|\\)|'|\"|\\$|\\$a\\$|E'|U&'|--|/\\*|\\*/|\\\\|,|;| |to|stdout|with|csv|quote|[a-z@.]){0,30}") {
            let _ = copy_outputs(&text);
        }
    }
}
