//! Array values: the binary array format (`array_send`) and the text array
//! literal (`array_out`), decoded far enough that each element can be
//! rewritten and the array re-encoded with the same shape.
//!
//! Architecture invariant: bounded (at most [`MAX_DIMENSIONS`] dimensions,
//! element counts checked against the bytes present, nesting depth capped)
//! and total: hostile bytes give an error, never a panic.

use crate::buf::BodyReader;
use crate::PgCodecError;

/// PostgreSQL's `MAXDIM`.
pub const MAX_DIMENSIONS: usize = 6;

/// A decoded binary array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryArray<'a> {
    /// The element type's OID (from the value itself, not the column).
    pub element_type: i32,
    /// `(length, lower bound)` per dimension.
    pub dimensions: Vec<(i32, i32)>,
    /// The elements in storage order; `None` is SQL NULL.
    pub elements: Vec<Option<&'a [u8]>>,
}

/// Decodes a binary array value. The whole of `bytes` must be consumed.
pub fn decode_binary_array(bytes: &[u8]) -> Result<BinaryArray<'_>, PgCodecError> {
    const WHAT: &str = "binary array";
    let malformed = PgCodecError::Malformed { what: WHAT };
    let mut reader = BodyReader::new(bytes, WHAT);
    let dimension_count = usize::try_from(reader.i32()?).map_err(|_| malformed.clone())?;
    if dimension_count > MAX_DIMENSIONS {
        return Err(PgCodecError::TooMany {
            what: "array dimensions",
            count: dimension_count,
            max: MAX_DIMENSIONS,
        });
    }
    let flags = reader.i32()?;
    if flags != 0 && flags != 1 {
        return Err(malformed);
    }
    let element_type = reader.i32()?;
    let mut dimensions = Vec::with_capacity(dimension_count);
    let mut count: usize = usize::from(dimension_count > 0);
    for _ in 0..dimension_count {
        let length = reader.i32()?;
        let lower_bound = reader.i32()?;
        let length_count = usize::try_from(length).map_err(|_| malformed.clone())?;
        count = count.checked_mul(length_count).ok_or(malformed.clone())?;
        dimensions.push((length, lower_bound));
    }
    // Each element takes at least its 4-byte length.
    if count > reader.remaining() / 4 {
        return Err(PgCodecError::Truncated { what: WHAT });
    }
    let mut elements = Vec::with_capacity(count);
    for _ in 0..count {
        elements.push(read_value(&mut reader)?);
    }
    if reader.remaining() != 0 {
        return Err(malformed);
    }
    Ok(BinaryArray {
        element_type,
        dimensions,
        elements,
    })
}

/// A length-prefixed value (`-1` is NULL).
pub(crate) fn read_value<'a>(
    reader: &mut BodyReader<'a>,
) -> Result<Option<&'a [u8]>, PgCodecError> {
    let length = reader.i32()?;
    if length == -1 {
        return Ok(None);
    }
    let length = usize::try_from(length).map_err(|_| PgCodecError::Malformed {
        what: "length-prefixed value",
    })?;
    reader.take(length).map(Some)
}

/// Appends a length-prefixed value (`None` as `-1`).
pub(crate) fn put_value(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(bytes) => {
            let length = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// Encodes a binary array with the shape of `array` and `elements` (one per
/// element of `array`). The NULL flag is recomputed.
pub fn encode_binary_array(out: &mut Vec<u8>, array: &BinaryArray<'_>, elements: &[Option<&[u8]>]) {
    let dimensions = i32::try_from(array.dimensions.len()).unwrap_or(0);
    out.extend_from_slice(&dimensions.to_be_bytes());
    let has_null = i32::from(elements.iter().any(Option::is_none));
    out.extend_from_slice(&has_null.to_be_bytes());
    out.extend_from_slice(&array.element_type.to_be_bytes());
    for (length, lower_bound) in &array.dimensions {
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&lower_bound.to_be_bytes());
    }
    for element in elements {
        put_value(out, *element);
    }
}

/// An element of a text array literal, as [`rewrite_text_array`] hands it
/// to its callback: the unescaped text (`None` for an unquoted `NULL`).
pub type TextElement<'a> = Option<&'a str>;

/// Rewrites the elements of a text array literal (`{a,"b c",NULL}`, nested
/// `{{…},{…}}`, an optional `[1:2]=` prefix) with `rewrite`, which returns
/// the new text of an element, `Some(None)` to make it NULL, or `None` to
/// keep it. Structure and unchanged elements are copied verbatim; changed
/// elements are quoted as `array_out` would. Returns `Ok(None)` when nothing
/// changed.
pub fn rewrite_text_array(
    literal: &str,
    delimiter: char,
    mut rewrite: impl FnMut(TextElement<'_>) -> Option<Option<String>>,
) -> Result<Option<String>, PgCodecError> {
    let malformed = PgCodecError::Malformed { what: "text array" };
    let mut out = String::with_capacity(literal.len() + 8);
    let mut changed = false;
    let mut chars = literal.char_indices().peekable();
    // An optional dimension decoration, copied as is.
    if literal.starts_with('[') {
        let equals = literal.find('=').ok_or(malformed.clone())?;
        let decoration = literal.get(..=equals).ok_or(malformed.clone())?;
        if decoration.contains(['{', '"', '\\']) {
            return Err(malformed);
        }
        out.push_str(decoration);
        while chars.peek().is_some_and(|(index, _)| *index <= equals) {
            chars.next();
        }
    }
    let mut depth: usize = 0;
    let mut seen_open = false;
    while let Some((start, character)) = chars.next() {
        match character {
            '{' => {
                depth += 1;
                if depth > MAX_DIMENSIONS {
                    return Err(malformed);
                }
                seen_open = true;
                out.push('{');
            }
            '}' => {
                depth = depth.checked_sub(1).ok_or(malformed.clone())?;
                out.push('}');
            }
            c if c == delimiter || c.is_whitespace() => out.push(c),
            _ if depth == 0 => return Err(malformed),
            '"' => {
                let mut value = String::new();
                let mut end = None;
                while let Some((index, c)) = chars.next() {
                    match c {
                        '\\' => value.push(chars.next().ok_or(malformed.clone())?.1),
                        '"' => {
                            end = Some(index + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let end = end.ok_or(malformed.clone())?;
                match rewrite(Some(&value)) {
                    Some(new) => {
                        changed = true;
                        push_element(&mut out, new.as_deref(), delimiter);
                    }
                    None => out.push_str(literal.get(start..end).ok_or(malformed.clone())?),
                }
            }
            first => {
                let mut value = String::new();
                let mut had_escape = false;
                let (mut index, mut c) = (start, first);
                let mut end;
                loop {
                    if c == '\\' {
                        had_escape = true;
                        let (escaped_at, escaped) = chars.next().ok_or(malformed.clone())?;
                        value.push(escaped);
                        end = escaped_at + escaped.len_utf8();
                    } else {
                        value.push(c);
                        end = index + c.len_utf8();
                    }
                    match chars.peek() {
                        Some(&(next_index, next))
                            if !(next == delimiter
                                || matches!(next, '{' | '}' | '"')
                                || next.is_whitespace()) =>
                        {
                            chars.next();
                            (index, c) = (next_index, next);
                        }
                        _ => break,
                    }
                }
                let element =
                    (had_escape || !value.eq_ignore_ascii_case("NULL")).then_some(value.as_str());
                match rewrite(element) {
                    Some(new) => {
                        changed = true;
                        push_element(&mut out, new.as_deref(), delimiter);
                    }
                    None => out.push_str(literal.get(start..end).ok_or(malformed.clone())?),
                }
            }
        }
    }
    if depth != 0 || !seen_open {
        return Err(malformed);
    }
    Ok(changed.then_some(out))
}

/// Appends one element as `array_out` writes it.
fn push_element(out: &mut String, value: Option<&str>, delimiter: char) {
    let Some(value) = value else {
        out.push_str("NULL");
        return;
    };
    let needs_quotes = value.is_empty()
        || value.eq_ignore_ascii_case("NULL")
        || value
            .chars()
            .any(|c| matches!(c, '{' | '}' | '"' | '\\') || c == delimiter || c.is_whitespace());
    if !needs_quotes {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    fn upper(element: TextElement<'_>) -> Option<Option<String>> {
        let text = element?;
        let upper = text.to_uppercase();
        (upper != text).then_some(Some(upper))
    }

    #[test]
    fn text_arrays_are_rewritten_element_by_element() {
        let cases = [
            ("{a,b}", Some("{A,B}")),
            (
                r#"{"a b","c\"d",NULL,"null"}"#,
                Some(r#"{"A B","C\"D",NULL,"NULL"}"#),
            ),
            ("{{a,b},{c,d}}", Some("{{A,B},{C,D}}")),
            ("[0:1]={x,y}", Some("[0:1]={X,Y}")),
            ("{}", None),
            ("{NULL}", None),
            (r#"{"\\"}"#, None),
        ];
        for (literal, expected) in cases {
            let rewritten = rewrite_text_array(literal, ',', upper).unwrap();
            assert_eq!(rewritten.as_deref(), expected, "{literal}");
        }
        for bad in ["a,b", "{a", "{\"a}", "{a}}", "", "{a\\}"] {
            assert!(rewrite_text_array(bad, ',', upper).is_err(), "{bad}");
        }
    }

    #[test]
    fn elements_are_unescaped_before_the_callback() {
        let mut seen = Vec::new();
        rewrite_text_array(r#"{"x\"y",a\,b,"p\\q"}"#, ',', |element| {
            seen.push(element.map(str::to_string));
            None
        })
        .unwrap();
        assert_eq!(
            seen,
            [Some("x\"y".into()), Some("a,b".into()), Some("p\\q".into())]
        );
    }

    #[test]
    fn binary_arrays_round_trip() {
        let mut bytes = Vec::new();
        let array = BinaryArray {
            element_type: 25,
            dimensions: vec![(3, 1)],
            elements: vec![],
        };
        encode_binary_array(&mut bytes, &array, &[Some(b"a"), None, Some(b"bc")]);
        let decoded = decode_binary_array(&bytes).unwrap();
        assert_eq!(decoded.element_type, 25);
        assert_eq!(decoded.dimensions, [(3, 1)]);
        assert_eq!(decoded.elements, [Some(&b"a"[..]), None, Some(&b"bc"[..])]);
        assert_eq!(bytes[4..8], 1i32.to_be_bytes(), "the NULL flag is set");
        let empty = [0u8; 12];
        assert!(decode_binary_array(&empty).unwrap().elements.is_empty());
        assert!(decode_binary_array(&bytes[..bytes.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn hostile_arrays_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), text in "[{}\",\\\\a NUL\\[\\]:=0-9]{0,40}") {
            let _ = decode_binary_array(&bytes);
            let _ = rewrite_text_array(&text, ',', upper);
        }
    }
}
