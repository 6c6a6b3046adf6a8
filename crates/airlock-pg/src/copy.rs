//! Rows of `COPY … TO STDOUT` in the text and CSV formats, with the
//! options that shape them (delimiter, quote, escape, NULL string): one
//! `CopyData` row decoded into its fields, unescaped, and encoded back with
//! the same options, so each field can be masked on its own whatever quote
//! or delimiter the statement chose.
//!
//! PostgreSQL sends one `CopyData` message per row; a row is its fields and
//! a final newline. The options are not on the wire (`CopyOutResponse`
//! says only text or binary): the caller reads them from the statement.
//!
//! Architecture invariant: total; a row that does not parse with the given
//! options is an error, never a panic or a guess.

use crate::PgCodecError;

/// The overall format of a COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    Text,
    Csv,
    Binary,
}

/// The options that determine how COPY rows are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    pub kind: CopyKind,
    pub delimiter: u8,
    /// CSV only.
    pub quote: u8,
    /// CSV only; defaults to the quote.
    pub escape: u8,
    /// The string written for NULL.
    pub null: Vec<u8>,
    /// Whether the first row holds the column names.
    pub header: bool,
}

impl CopyFormat {
    /// The defaults of `kind`.
    pub fn new(kind: CopyKind) -> Self {
        match kind {
            CopyKind::Csv => Self {
                kind,
                delimiter: b',',
                quote: b'"',
                escape: b'"',
                null: Vec::new(),
                header: false,
            },
            CopyKind::Text | CopyKind::Binary => Self {
                kind,
                delimiter: b'\t',
                quote: b'"',
                escape: b'"',
                null: b"\\N".to_vec(),
                header: false,
            },
        }
    }
}

/// One field of a COPY row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyField {
    /// The unescaped value; `None` is NULL.
    pub value: Option<Vec<u8>>,
    /// CSV: the field was quoted (kept quoted when re-encoded, which
    /// preserves `FORCE_QUOTE`).
    pub quoted: bool,
}

const MAX_FIELDS: usize = 1664 * 2;

/// Decodes one text or CSV row (with its final newline). Returns the fields
/// and the line ending (`\n` or `\r\n`).
pub fn decode_copy_row<'a>(
    format: &CopyFormat,
    row: &'a [u8],
) -> Result<(Vec<CopyField>, &'a [u8]), PgCodecError> {
    let malformed = PgCodecError::Malformed { what: "COPY row" };
    let (content, line_end) = if let Some(content) = row.strip_suffix(b"\r\n") {
        (content, row.get(content.len()..).unwrap_or_default())
    } else if let Some(content) = row.strip_suffix(b"\n") {
        (content, row.get(content.len()..).unwrap_or_default())
    } else {
        return Err(malformed);
    };
    let fields = match format.kind {
        CopyKind::Text => decode_text_fields(format, content)?,
        CopyKind::Csv => decode_csv_fields(format, content)?,
        CopyKind::Binary => return Err(malformed),
    };
    Ok((fields, line_end))
}

fn decode_text_fields(format: &CopyFormat, content: &[u8]) -> Result<Vec<CopyField>, PgCodecError> {
    let malformed = PgCodecError::Malformed {
        what: "COPY text row",
    };
    let mut fields = Vec::new();
    let mut rest = content;
    loop {
        if fields.len() >= MAX_FIELDS {
            return Err(malformed);
        }
        // The raw field: up to an unescaped delimiter.
        let mut end = 0;
        let mut escaped = false;
        for &byte in rest {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == format.delimiter {
                break;
            } else if byte == b'\n' || byte == b'\r' {
                return Err(malformed);
            }
            end += 1;
        }
        if escaped {
            return Err(malformed);
        }
        let raw = rest.get(..end).unwrap_or_default();
        let value = if raw == format.null.as_slice() {
            None
        } else {
            Some(unescape_text(raw))
        };
        fields.push(CopyField {
            value,
            quoted: false,
        });
        match rest.get(end..) {
            Some([_, tail @ ..]) => rest = tail,
            _ => break,
        }
    }
    Ok(fields)
}

/// Undoes the backslash escapes of the text format.
fn unescape_text(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let Some((&next, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        match next {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                for _ in 0..2 {
                    match rest.split_first() {
                        Some((&digit @ b'0'..=b'7', tail)) => {
                            value = value * 8 + u32::from(digit - b'0');
                            rest = tail;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(value & 0xff).unwrap_or(0));
            }
            b'x' if rest.first().is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u32;
                for _ in 0..2 {
                    match rest.split_first() {
                        Some((&digit, tail)) if digit.is_ascii_hexdigit() => {
                            value = value * 16 + char::from(digit).to_digit(16).unwrap_or(0);
                            rest = tail;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(value).unwrap_or(0));
            }
            other => out.push(other),
        }
    }
    out
}

fn decode_csv_fields(format: &CopyFormat, content: &[u8]) -> Result<Vec<CopyField>, PgCodecError> {
    let malformed = PgCodecError::Malformed {
        what: "COPY CSV row",
    };
    let (quote, escape) = (format.quote, format.escape);
    let mut fields = Vec::new();
    let mut index = 0;
    loop {
        if fields.len() >= MAX_FIELDS {
            return Err(malformed);
        }
        let mut value = Vec::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut ended_by_delimiter = false;
        while let Some(&byte) = content.get(index) {
            index += 1;
            if in_quotes {
                let next = content.get(index).copied();
                if byte == escape
                    && (next == Some(quote) || (escape != quote && next == Some(escape)))
                {
                    value.extend(next);
                    index += 1;
                } else if byte == quote {
                    in_quotes = false;
                } else {
                    value.push(byte);
                }
            } else if byte == format.delimiter {
                ended_by_delimiter = true;
                break;
            } else if byte == quote {
                in_quotes = true;
                quoted = true;
            } else if byte == b'\n' || byte == b'\r' {
                return Err(malformed);
            } else {
                value.push(byte);
            }
        }
        if in_quotes {
            return Err(malformed);
        }
        let value = if !quoted && value == format.null {
            None
        } else {
            Some(value)
        };
        fields.push(CopyField { value, quoted });
        if !ended_by_delimiter {
            break;
        }
    }
    Ok(fields)
}

/// Encodes `fields` as one row with `format` and `line_end`.
pub fn encode_copy_row(
    format: &CopyFormat,
    fields: &[CopyField],
    line_end: &[u8],
    out: &mut Vec<u8>,
) {
    let single = fields.len() == 1;
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push(format.delimiter);
        }
        let Some(value) = &field.value else {
            out.extend_from_slice(&format.null);
            continue;
        };
        match format.kind {
            CopyKind::Csv => encode_csv_field(format, value, field.quoted, single, out),
            CopyKind::Text | CopyKind::Binary => encode_text_field(format, value, out),
        }
    }
    out.extend_from_slice(line_end);
}

fn encode_text_field(format: &CopyFormat, value: &[u8], out: &mut Vec<u8>) {
    for &byte in value {
        let escaped = match byte {
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x0b => Some(b'v'),
            b'\\' => Some(b'\\'),
            byte if byte == format.delimiter => Some(byte),
            _ => None,
        };
        match escaped {
            Some(escaped) => out.extend_from_slice(&[b'\\', escaped]),
            None => out.push(byte),
        }
    }
}

fn encode_csv_field(
    format: &CopyFormat,
    value: &[u8],
    was_quoted: bool,
    single: bool,
    out: &mut Vec<u8>,
) {
    let quote = was_quoted
        || value == format.null.as_slice()
        || (single && value == b"\\.")
        || value.iter().any(|&byte| {
            byte == format.delimiter
                || byte == format.quote
                || byte == format.escape
                || byte == b'\n'
                || byte == b'\r'
        });
    if !quote {
        out.extend_from_slice(value);
        return;
    }
    out.push(format.quote);
    for &byte in value {
        if byte == format.quote || byte == format.escape {
            out.push(format.escape);
        }
        out.push(byte);
    }
    out.push(format.quote);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn csv(delimiter: u8, quote: u8, escape: u8) -> CopyFormat {
        CopyFormat {
            delimiter,
            quote,
            escape,
            ..CopyFormat::new(CopyKind::Csv)
        }
    }

    fn values(fields: &[CopyField]) -> Vec<Option<String>> {
        fields
            .iter()
            .map(|field| {
                field
                    .value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
            .collect()
    }

    #[test]
    fn csv_rows_split_by_their_own_quote_and_delimiter() {
        let format = csv(b',', b'@', b'@');
        let (fields, end) = decode_copy_row(&format, b"@jane.doe@@example.com@,,@@\n").unwrap();
        assert_eq!(end, b"\n");
        assert_eq!(
            values(&fields),
            [
                Some("jane.doe@example.com".into()),
                None,
                Some(String::new())
            ]
        );
        let mut out = Vec::new();
        encode_copy_row(&format, &fields, end, &mut out);
        assert_eq!(out, b"@jane.doe@@example.com@,,@@\n");

        let format = csv(b'@', b'"', b'"');
        let (fields, _) = decode_copy_row(&format, b"\"jane.doe@example.com\"@x\n").unwrap();
        assert_eq!(
            values(&fields),
            [Some("jane.doe@example.com".into()), Some("x".into())]
        );

        let format = csv(b',', b'.', b'@');
        let (fields, _) = decode_copy_row(&format, b".jane@.doe@@example@.com.\n").unwrap();
        assert_eq!(values(&fields), [Some("jane.doe@example.com".into())]);
        assert!(decode_copy_row(&format, b".open\n").is_err());
        assert!(decode_copy_row(&format, b"no newline").is_err());
    }

    #[test]
    fn text_rows_unescape_and_escape() {
        let format = CopyFormat {
            delimiter: b'@',
            null: b"jane".to_vec(),
            ..CopyFormat::new(CopyKind::Text)
        };
        let row = b"jane.doe\\@example.com@jane@a\\tb\\\\c\\101\n";
        let (fields, end) = decode_copy_row(&format, row).unwrap();
        assert_eq!(
            values(&fields),
            [
                Some("jane.doe@example.com".into()),
                None,
                Some("a\tb\\cA".into())
            ]
        );
        let mut out = Vec::new();
        encode_copy_row(&format, &fields, end, &mut out);
        assert_eq!(out, b"jane.doe\\@example.com@jane@a\\tb\\\\cA\n");
        let (fields, _) = decode_copy_row(&CopyFormat::new(CopyKind::Text), b"1\t\\N\t\n").unwrap();
        assert_eq!(
            values(&fields),
            [Some("1".into()), None, Some(String::new())]
        );
    }

    proptest! {
        #[test]
        fn rows_round_trip(
            fields in proptest::collection::vec(proptest::option::of(proptest::collection::vec(prop_oneof![Just(b'@'), Just(b','), Just(b'"'), Just(b'\\'), Just(b'\n'), Just(b'\t'), Just(b'a')], 0..6)), 1..5),
            kind in prop_oneof![Just(CopyKind::Text), Just(CopyKind::Csv)],
            delimiter in prop_oneof![Just(b','), Just(b'@'), Just(b'\t')],
            quote in prop_oneof![Just(b'"'), Just(b'@')],
            escape in prop_oneof![Just(b'"'), Just(b'\\')],
        ) {
            prop_assume!(quote != delimiter && escape != delimiter);
            let format = CopyFormat { delimiter, quote, escape, ..CopyFormat::new(kind) };
            let fields: Vec<CopyField> = fields.into_iter().map(|value| CopyField { value, quoted: false }).collect();
            let mut row = Vec::new();
            encode_copy_row(&format, &fields, b"\n", &mut row);
            let (decoded, _) = decode_copy_row(&format, &row).unwrap();
            let decoded: Vec<_> = decoded.into_iter().map(|field| field.value).collect();
            let expected: Vec<_> = fields.into_iter().map(|field| field.value).collect();
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn hostile_rows_never_panic(row in proptest::collection::vec(any::<u8>(), 0..60), csv_kind in any::<bool>()) {
            let kind = if csv_kind { CopyKind::Csv } else { CopyKind::Text };
            let _ = decode_copy_row(&CopyFormat::new(kind), &row);
        }
    }
}
