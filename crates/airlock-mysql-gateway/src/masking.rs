//! Masking of result rows under a mask plan, by column type (pure).
//!
//! The rule, as for PostgreSQL: every value that leaves under a mask plan
//! is either masked by a codec that reads it, or replaced by something the
//! client can still parse — never passed raw because it was not
//! understood.
//!
//! - string-like columns (CHAR, VARCHAR, TEXT and BLOB types, JSON, ENUM,
//!   SET) are masked in place by the detectors, in text and binary rows;
//! - numbers (integers, DECIMAL, FLOAT, DOUBLE, YEAR) pass the detectors as
//!   their decimal text; a match becomes `0`;
//! - every other type (dates and times in text rows, BIT, GEOMETRY,
//!   unknown types) passes the detectors as its bytes; a match becomes
//!   NULL. Binary DATE/TIME values are fixed layouts that carry no text and
//!   pass as they are;
//! - a column matched by a column rule (by its alias or its real name, so
//!   `SELECT ssn AS x` is still masked) is masked whole when string-like and
//!   becomes NULL otherwise;
//! - a row that does not decode under its column definitions is replaced
//!   by a row of NULLs (counted as `unreadable`).

use std::borrow::Cow;

use airlock_mask::{MaskPlan, MaskStats};
use airlock_mysql::column::{ColumnDefinition, ColumnType};
use airlock_mysql::row::{
    decode_binary_row, decode_text_row, encode_binary_row, encode_text_row, BinaryValue, ValueType,
};

/// The `masked` count name for rows replaced because they did not decode.
pub const UNREADABLE: &str = "unreadable";
/// The `masked` count name for column rules.
const COLUMN: &str = "column";

/// What the masker knows of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Number,
    Other,
}

/// How one column is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnMask {
    /// A column rule masks the whole value.
    pub whole: bool,
    pub kind: ValueKind,
}

/// The kind of a column type.
pub fn kind_of(column_type: ColumnType) -> ValueKind {
    match column_type {
        ColumnType::VARCHAR
        | ColumnType::VAR_STRING
        | ColumnType::STRING
        | ColumnType::TINY_BLOB
        | ColumnType::MEDIUM_BLOB
        | ColumnType::LONG_BLOB
        | ColumnType::BLOB
        | ColumnType::JSON
        | ColumnType::ENUM
        | ColumnType::SET => ValueKind::Text,
        ColumnType::DECIMAL
        | ColumnType::NEWDECIMAL
        | ColumnType::TINY
        | ColumnType::SHORT
        | ColumnType::LONG
        | ColumnType::INT24
        | ColumnType::LONGLONG
        | ColumnType::FLOAT
        | ColumnType::DOUBLE
        | ColumnType::YEAR => ValueKind::Number,
        _ => ValueKind::Other,
    }
}

/// How each column of a result set is masked under `plan`.
pub fn column_masks(plan: &MaskPlan, columns: &[ColumnDefinition]) -> Vec<ColumnMask> {
    columns
        .iter()
        .map(|column| ColumnMask {
            whole: plan.has_column_rules()
                && (plan.column_masked(&column.name_str())
                    || plan.column_masked(&column.org_name_str())),
            kind: kind_of(column.column_type),
        })
        .collect()
}

/// One text cell masked; `None` is NULL.
fn mask_text_cell<'a>(
    plan: &MaskPlan,
    mask: ColumnMask,
    cell: &'a [u8],
    stats: &mut MaskStats,
) -> Option<Cow<'a, [u8]>> {
    if mask.whole {
        stats.record(COLUMN, 1);
        return match mask.kind {
            ValueKind::Text => Some(Cow::Owned(
                plan.mask_whole(&String::from_utf8_lossy(cell)).into_bytes(),
            )),
            ValueKind::Number | ValueKind::Other => None,
        };
    }
    let masked = plan.mask_bytes(cell, stats);
    match (mask.kind, masked) {
        (_, Cow::Borrowed(_)) => Some(Cow::Borrowed(cell)),
        (ValueKind::Text, Cow::Owned(bytes)) => Some(Cow::Owned(bytes)),
        (ValueKind::Number, Cow::Owned(_)) => Some(Cow::Borrowed(b"0")),
        (ValueKind::Other, Cow::Owned(_)) => None,
    }
}

/// A text row masked: the new payload, or `None` when nothing changed.
pub fn mask_text_row(
    plan: &MaskPlan,
    masks: &[ColumnMask],
    payload: &[u8],
    stats: &mut MaskStats,
) -> Option<Vec<u8>> {
    let Ok(cells) = decode_text_row(payload, masks.len()) else {
        stats.record(UNREADABLE, 1);
        return Some(encode_text_row(masks.iter().map(|_| None)));
    };
    let mut changed = false;
    let masked: Vec<Option<Cow<'_, [u8]>>> = cells
        .iter()
        .zip(masks)
        .map(|(cell, mask)| {
            let out = cell.and_then(|cell| mask_text_cell(plan, *mask, cell, stats));
            changed |= !matches!(
                (&out, cell),
                (Some(Cow::Borrowed(_)), Some(_)) | (None, None)
            );
            out
        })
        .collect();
    changed.then(|| encode_text_row(masked.iter().map(|cell| cell.as_deref())))
}

/// A number rendered for the detectors: a match means the value is data
/// (a card number, a phone number stored as an integer).
fn number_matches(plan: &MaskPlan, rendered: &str, stats: &mut MaskStats) -> bool {
    matches!(plan.mask_text(rendered, stats), Cow::Owned(_))
}

/// One binary value masked.
fn mask_binary_value(
    plan: &MaskPlan,
    mask: ColumnMask,
    value: BinaryValue,
    stats: &mut MaskStats,
) -> BinaryValue {
    if matches!(value, BinaryValue::Null) {
        return value;
    }
    if mask.whole {
        stats.record(COLUMN, 1);
        return match (mask.kind, &value) {
            (ValueKind::Text, BinaryValue::Bytes(bytes)) => BinaryValue::Bytes(
                plan.mask_whole(&String::from_utf8_lossy(bytes))
                    .into_bytes(),
            ),
            _ => BinaryValue::Null,
        };
    }
    match value {
        BinaryValue::Bytes(bytes) => match (mask.kind, plan.mask_bytes(&bytes, stats)) {
            (_, Cow::Borrowed(_)) => BinaryValue::Bytes(bytes),
            (ValueKind::Text, Cow::Owned(masked)) => BinaryValue::Bytes(masked),
            (ValueKind::Number, Cow::Owned(_)) => BinaryValue::Bytes(b"0".to_vec()),
            (ValueKind::Other, Cow::Owned(_)) => BinaryValue::Null,
        },
        BinaryValue::Int(number) if number_matches(plan, &number.to_string(), stats) => {
            BinaryValue::Int(0)
        }
        BinaryValue::UInt(number) if number_matches(plan, &number.to_string(), stats) => {
            BinaryValue::UInt(0)
        }
        BinaryValue::Float(number) if number_matches(plan, &format!("{number}"), stats) => {
            BinaryValue::Float(0.0)
        }
        BinaryValue::Double(number) if number_matches(plan, &format!("{number}"), stats) => {
            BinaryValue::Double(0.0)
        }
        other => other,
    }
}

/// A binary row masked: the new payload and the values the client sees,
/// or the values alone when nothing changed.
pub fn mask_binary_row(
    plan: &MaskPlan,
    masks: &[ColumnMask],
    types: &[ValueType],
    payload: &[u8],
    stats: &mut MaskStats,
) -> (Option<Vec<u8>>, Vec<BinaryValue>) {
    let nulls = || types.iter().map(|_| BinaryValue::Null).collect::<Vec<_>>();
    let Ok(values) = decode_binary_row(payload, types) else {
        stats.record(UNREADABLE, 1);
        let values = nulls();
        return (encode_binary_row(types, &values).ok(), values);
    };
    let masked: Vec<BinaryValue> = values
        .iter()
        .cloned()
        .zip(masks)
        .map(|(value, mask)| mask_binary_value(plan, *mask, value, stats))
        .collect();
    if masked == values {
        return (None, values);
    }
    match encode_binary_row(types, &masked) {
        Ok(payload) => (Some(payload), masked),
        Err(_) => {
            stats.record(UNREADABLE, 1);
            let values = nulls();
            (encode_binary_row(types, &values).ok(), values)
        }
    }
}

/// A binary value as the record shows it (binary bytes as `\x…` hex).
pub fn render_binary(value: &BinaryValue) -> Option<String> {
    Some(match value {
        BinaryValue::Null => return None,
        BinaryValue::Int(number) => number.to_string(),
        BinaryValue::UInt(number) => number.to_string(),
        BinaryValue::Float(number) => number.to_string(),
        BinaryValue::Double(number) => number.to_string(),
        BinaryValue::Date(date) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
            date.year, date.month, date.day, date.hour, date.minute, date.second, date.microsecond
        ),
        BinaryValue::Time(time) => format!(
            "{}{}:{:02}:{:02}.{:06}",
            if time.negative { "-" } else { "" },
            u32::from(time.hour) + time.days * 24,
            time.minute,
            time.second,
            time.microsecond
        ),
        BinaryValue::Bytes(bytes) => render_bytes(bytes),
    })
}

/// Bytes as text when they are UTF-8, else as `\x…` hex.
pub fn render_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => format!("\\x{}", hex::encode(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_mask::MaskSpec;

    fn plan() -> MaskPlan {
        let spec: MaskSpec = serde_json::from_value(serde_json::json!({
            "detectors": ["email", "card"],
            "columns": ["ssn"],
            "style": "partial"
        }))
        .unwrap();
        MaskPlan::compile(&spec).unwrap()
    }

    fn columns() -> Vec<ColumnDefinition> {
        vec![
            ColumnDefinition::new("id", ColumnType::LONG),
            ColumnDefinition::new("email", ColumnType::VAR_STRING),
            ColumnDefinition::new("ssn", ColumnType::LONG),
            ColumnDefinition::new("card_as_number", ColumnType::LONGLONG),
            ColumnDefinition::new("created", ColumnType::DATETIME),
        ]
    }

    #[test]
    fn text_rows_are_masked_by_column_type() {
        let plan = plan();
        let masks = column_masks(&plan, &columns());
        let row = encode_text_row([
            Some(&b"1"[..]),
            Some(b"jane.doe@example.com"),
            Some(b"123456789"),
            Some(b"4111111111111111"),
            None,
        ]);
        let mut stats = MaskStats::new();
        let masked = mask_text_row(&plan, &masks, &row, &mut stats).unwrap();
        let cells = decode_text_row(&masked, 5).unwrap();
        assert_eq!(cells[0], Some(&b"1"[..]));
        let email = String::from_utf8_lossy(cells[1].unwrap()).to_string();
        assert!(!email.contains("jane.doe"), "{email}");
        assert_eq!(cells[2], None, "a number under a column rule becomes NULL");
        assert_eq!(
            cells[3],
            Some(&b"0"[..]),
            "a number a detector matches becomes 0"
        );
        assert_eq!(cells[4], None);
        let clean = encode_text_row([Some(&b"2"[..]), Some(b"x"), None, Some(b"7"), None]);
        assert_eq!(mask_text_row(&plan, &masks, &clean, &mut stats), None);
        // A row that does not decode is replaced by NULLs, never passed.
        let broken = vec![0x05, b'a'];
        let replaced = mask_text_row(&plan, &masks, &broken, &mut stats).unwrap();
        assert_eq!(decode_text_row(&replaced, 5).unwrap(), vec![None; 5]);
        assert_eq!(stats.get(UNREADABLE), 1);
    }

    #[test]
    fn binary_rows_are_masked_by_value() {
        let plan = plan();
        let columns = columns();
        let masks = column_masks(&plan, &columns);
        let types: Vec<ValueType> = columns.iter().map(ValueType::from).collect();
        let values = vec![
            BinaryValue::Int(1),
            BinaryValue::Bytes(b"jane.doe@example.com".to_vec()),
            BinaryValue::Int(123_456_789),
            BinaryValue::Int(4_111_111_111_111_111),
            BinaryValue::Null,
        ];
        let row = encode_binary_row(&types, &values).unwrap();
        let mut stats = MaskStats::new();
        let (payload, shown) = mask_binary_row(&plan, &masks, &types, &row, &mut stats);
        let decoded = decode_binary_row(&payload.unwrap(), &types).unwrap();
        assert_eq!(decoded, shown);
        assert_eq!(decoded[0], BinaryValue::Int(1));
        assert!(!render_binary(&decoded[1]).unwrap().contains("jane.doe"));
        assert_eq!(decoded[2], BinaryValue::Null);
        assert_eq!(decoded[3], BinaryValue::Int(0));
    }
}
