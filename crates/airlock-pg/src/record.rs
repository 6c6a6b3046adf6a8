//! Record (row, composite) values: the binary format (`record_send`: a
//! field count, then per field its type OID and a length-prefixed value)
//! and the text literal (`record_out`: `(a,"b c",,"x""y")`), decoded so each
//! field can be rewritten and the record re-encoded.
//!
//! Architecture invariant: bounded (field count checked against the bytes
//! present and [`crate::backend::MAX_COLUMNS`]) and total: hostile input
//! gives an error, never a panic.

use crate::array::{put_value, read_value};
use crate::backend::MAX_COLUMNS;
use crate::buf::BodyReader;
use crate::PgCodecError;

/// One field of a binary record: its type OID and value (`None` is NULL).
pub type RecordField<'a> = (i32, Option<&'a [u8]>);

/// Decodes a binary record value. The whole of `bytes` must be consumed.
pub fn decode_binary_record(bytes: &[u8]) -> Result<Vec<RecordField<'_>>, PgCodecError> {
    const WHAT: &str = "binary record";
    let mut reader = BodyReader::new(bytes, WHAT);
    let count =
        usize::try_from(reader.i32()?).map_err(|_| PgCodecError::Malformed { what: WHAT })?;
    if count > MAX_COLUMNS {
        return Err(PgCodecError::TooMany {
            what: "record fields",
            count,
            max: MAX_COLUMNS,
        });
    }
    if count > reader.remaining() / 8 {
        return Err(PgCodecError::Truncated { what: WHAT });
    }
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        let type_oid = reader.i32()?;
        fields.push((type_oid, read_value(&mut reader)?));
    }
    if reader.remaining() != 0 {
        return Err(PgCodecError::Malformed { what: WHAT });
    }
    Ok(fields)
}

/// Encodes a binary record.
pub fn encode_binary_record(out: &mut Vec<u8>, fields: &[RecordField<'_>]) {
    let count = i32::try_from(fields.len()).unwrap_or(0);
    out.extend_from_slice(&count.to_be_bytes());
    for (type_oid, value) in fields {
        out.extend_from_slice(&type_oid.to_be_bytes());
        put_value(out, *value);
    }
}

/// Decodes a text record literal into its fields, unescaped (`None` is
/// NULL), as `record_in` reads it.
pub fn decode_text_record(literal: &str) -> Result<Vec<Option<String>>, PgCodecError> {
    let malformed = PgCodecError::Malformed {
        what: "text record",
    };
    let body = literal.trim_end();
    let body = body
        .trim_start()
        .strip_prefix('(')
        .ok_or(malformed.clone())?;
    let mut chars = body.chars();
    let mut fields = Vec::new();
    loop {
        if fields.len() >= MAX_COLUMNS {
            return Err(malformed);
        }
        let mut value = String::new();
        let mut empty = true;
        let mut in_quotes = false;
        let end = loop {
            let c = chars.next().ok_or(malformed.clone())?;
            match c {
                ',' | ')' if !in_quotes => break c,
                '\\' => {
                    value.push(chars.next().ok_or(malformed.clone())?);
                    empty = false;
                }
                '"' if !in_quotes => {
                    in_quotes = true;
                    empty = false;
                }
                '"' => {
                    if chars.as_str().starts_with('"') {
                        chars.next();
                        value.push('"');
                    } else {
                        in_quotes = false;
                    }
                }
                c => {
                    value.push(c);
                    empty = false;
                }
            }
        };
        fields.push((!empty).then_some(value));
        if end == ')' {
            break;
        }
    }
    if !chars.as_str().is_empty() {
        return Err(malformed);
    }
    Ok(fields)
}

/// Encodes a text record literal as `record_out` writes it.
pub fn encode_text_record(fields: &[Option<String>]) -> String {
    let mut out = String::from("(");
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let Some(value) = field else { continue };
        let needs_quotes = value.is_empty()
            || value
                .chars()
                .any(|c| matches!(c, '"' | '\\' | '(' | ')' | ',') || c.is_whitespace());
        if !needs_quotes {
            out.push_str(value);
            continue;
        }
        out.push('"');
        for c in value.chars() {
            if c == '"' || c == '\\' {
                out.push(c);
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_records_decode_as_record_in_reads_them() {
        let fields = decode_text_record(r#"(a,"b c",,"x""y","",p\q,"\\")"#).unwrap();
        assert_eq!(
            fields,
            [
                Some("a".into()),
                Some("b c".into()),
                None,
                Some("x\"y".into()),
                Some(String::new()),
                Some("pq".into()),
                Some("\\".into()),
            ]
        );
        assert_eq!(decode_text_record("()").unwrap(), [None]);
        for bad in ["a,b", "(a", "(\"a)", "(a)x", ""] {
            assert!(decode_text_record(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binary_records_round_trip() {
        let mut bytes = Vec::new();
        encode_binary_record(&mut bytes, &[(25, Some(b"ab")), (23, None)]);
        assert_eq!(
            decode_binary_record(&bytes).unwrap(),
            [(25, Some(&b"ab"[..])), (23, None)]
        );
        assert!(decode_binary_record(&bytes[..bytes.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn text_records_round_trip(fields in proptest::collection::vec(proptest::option::of("[a-z \"\\\\(),]{0,6}"), 1..5)) {
            let literal = encode_text_record(&fields);
            prop_assert_eq!(decode_text_record(&literal).unwrap(), fields);
        }

        #[test]
        fn hostile_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), text in "[(),\"\\\\a ]{0,30}") {
            let _ = decode_binary_record(&bytes);
            let _ = decode_text_record(&text);
        }
    }
}
