//! Result rows, both encodings, decoded to cells and re-encoded (the
//! gateway masks cells in between):
//! - text rows (`COM_QUERY`): one length-encoded string per column, `0xFB`
//!   for NULL;
//! - binary rows (`COM_STMT_EXECUTE`): `0x00`, a NULL bitmap offset by 2
//!   bits, then each non-NULL value in its type's binary form.
//!
//! The binary value codec is shared with `COM_STMT_EXECUTE` parameters
//! (whose bitmap has no offset).

use crate::buf::{put_lenenc_bytes, put_u16, put_u32, put_u64, Reader, LENENC_NULL};
use crate::column::{ColumnDefinition, ColumnType};
use crate::MySqlCodecError;

/// Most columns in one row (and parameters in one statement): what a
/// prepared statement's 2-byte counts allow.
pub const MAX_COLUMNS: usize = 65_535;

/// First byte of a binary row.
pub const BINARY_ROW_HEADER: u8 = 0x00;

/// Decodes a text row of `column_count` cells, borrowing from `payload`.
pub fn decode_text_row(
    payload: &[u8],
    column_count: usize,
) -> Result<Vec<Option<&[u8]>>, MySqlCodecError> {
    if column_count > MAX_COLUMNS {
        return Err(MySqlCodecError::TooMany {
            what: "columns",
            count: column_count,
            max: MAX_COLUMNS,
        });
    }
    let mut reader = Reader::new(payload, "text row");
    // Each cell takes at least one byte: never reserve beyond the payload.
    let mut cells = Vec::with_capacity(column_count.min(payload.len()));
    for _ in 0..column_count {
        cells.push(reader.lenenc_bytes_or_null()?);
    }
    if !reader.is_empty() {
        return Err(reader.malformed());
    }
    Ok(cells)
}

/// Encodes a text row.
pub fn encode_text_row<'c>(cells: impl IntoIterator<Item = Option<&'c [u8]>>) -> Vec<u8> {
    let mut out = Vec::new();
    for cell in cells {
        match cell {
            Some(bytes) => put_lenenc_bytes(&mut out, bytes),
            None => out.push(LENENC_NULL),
        }
    }
    out
}

/// How to read one binary value: its type and signedness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueType {
    pub column_type: ColumnType,
    pub unsigned: bool,
}

impl From<&ColumnDefinition> for ValueType {
    fn from(column: &ColumnDefinition) -> Self {
        Self {
            column_type: column.column_type,
            unsigned: column.is_unsigned(),
        }
    }
}

/// A DATE, DATETIME or TIMESTAMP value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DateTimeValue {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub microsecond: u32,
}

/// A TIME value (an interval: days and a sign).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeValue {
    pub negative: bool,
    pub days: u32,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub microsecond: u32,
}

/// One binary-protocol value.
#[derive(Debug, Clone, PartialEq)]
pub enum BinaryValue {
    Null,
    /// TINY, SHORT, YEAR, INT24, LONG, LONGLONG, signed.
    Int(i64),
    /// The same types with the UNSIGNED flag.
    UInt(u64),
    Float(f32),
    Double(f64),
    Date(DateTimeValue),
    Time(TimeValue),
    /// Every length-encoded type: strings, blobs, DECIMAL, JSON, BIT, ENUM,
    /// SET, GEOMETRY, and types this codec does not know.
    Bytes(Vec<u8>),
}

enum Shape {
    Nothing,
    Fixed(usize),
    Float,
    Double,
    Date,
    Time,
    LengthEncoded,
}

fn shape(column_type: ColumnType) -> Shape {
    match column_type {
        ColumnType::NULL => Shape::Nothing,
        ColumnType::TINY => Shape::Fixed(1),
        ColumnType::SHORT | ColumnType::YEAR => Shape::Fixed(2),
        ColumnType::LONG | ColumnType::INT24 => Shape::Fixed(4),
        ColumnType::LONGLONG => Shape::Fixed(8),
        ColumnType::FLOAT => Shape::Float,
        ColumnType::DOUBLE => Shape::Double,
        ColumnType::DATE
        | ColumnType::DATETIME
        | ColumnType::TIMESTAMP
        | ColumnType::NEWDATE
        | ColumnType::DATETIME2
        | ColumnType::TIMESTAMP2 => Shape::Date,
        ColumnType::TIME | ColumnType::TIME2 => Shape::Time,
        _ => Shape::LengthEncoded,
    }
}

/// Reads one value of `value_type`.
pub(crate) fn decode_value(
    reader: &mut Reader<'_>,
    value_type: ValueType,
) -> Result<BinaryValue, MySqlCodecError> {
    Ok(match shape(value_type.column_type) {
        Shape::Nothing => BinaryValue::Null,
        Shape::Fixed(width) => {
            let (signed, unsigned) = match width {
                1 => {
                    let byte = reader.u8()?;
                    (i64::from(byte as i8), u64::from(byte))
                }
                2 => {
                    let value = reader.u16()?;
                    (i64::from(value as i16), u64::from(value))
                }
                4 => {
                    let value = reader.u32()?;
                    (i64::from(value as i32), u64::from(value))
                }
                _ => {
                    let value = reader.u64()?;
                    (value as i64, value)
                }
            };
            if value_type.unsigned {
                BinaryValue::UInt(unsigned)
            } else {
                BinaryValue::Int(signed)
            }
        }
        Shape::Float => BinaryValue::Float(f32::from_bits(reader.u32()?)),
        Shape::Double => BinaryValue::Double(f64::from_bits(reader.u64()?)),
        Shape::Date => {
            let length = reader.u8()?;
            let mut value = DateTimeValue::default();
            if !matches!(length, 0 | 4 | 7 | 11) {
                return Err(reader.malformed());
            }
            if length >= 4 {
                value.year = reader.u16()?;
                value.month = reader.u8()?;
                value.day = reader.u8()?;
            }
            if length >= 7 {
                value.hour = reader.u8()?;
                value.minute = reader.u8()?;
                value.second = reader.u8()?;
            }
            if length == 11 {
                value.microsecond = reader.u32()?;
            }
            BinaryValue::Date(value)
        }
        Shape::Time => {
            let length = reader.u8()?;
            let mut value = TimeValue::default();
            if !matches!(length, 0 | 8 | 12) {
                return Err(reader.malformed());
            }
            if length >= 8 {
                value.negative = match reader.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(reader.malformed()),
                };
                value.days = reader.u32()?;
                value.hour = reader.u8()?;
                value.minute = reader.u8()?;
                value.second = reader.u8()?;
            }
            if length == 12 {
                value.microsecond = reader.u32()?;
            }
            BinaryValue::Time(value)
        }
        Shape::LengthEncoded => BinaryValue::Bytes(reader.lenenc_bytes()?.to_vec()),
    })
}

fn mismatch() -> MySqlCodecError {
    MySqlCodecError::Malformed {
        what: "binary value for its column type",
    }
}

/// Writes one non-NULL value as `value_type`. Integers are written in the
/// column's width (a masked value out of range is truncated as MySQL
/// would truncate it on the client).
pub(crate) fn encode_value(
    out: &mut Vec<u8>,
    value: &BinaryValue,
    value_type: ValueType,
) -> Result<(), MySqlCodecError> {
    match (shape(value_type.column_type), value) {
        (Shape::Nothing, _) | (_, BinaryValue::Null) => {}
        (Shape::Fixed(width), BinaryValue::Int(_) | BinaryValue::UInt(_)) => {
            let bits = match *value {
                BinaryValue::Int(signed) => signed as u64,
                BinaryValue::UInt(unsigned) => unsigned,
                _ => 0,
            };
            match width {
                1 => out.push(bits as u8),
                2 => put_u16(out, bits as u16),
                4 => put_u32(out, bits as u32),
                _ => put_u64(out, bits),
            }
        }
        (Shape::Float, BinaryValue::Float(float)) => put_u32(out, float.to_bits()),
        (Shape::Double, BinaryValue::Double(double)) => put_u64(out, double.to_bits()),
        (Shape::Date, BinaryValue::Date(date)) => {
            let length = if date.microsecond != 0 {
                11
            } else if date.hour != 0 || date.minute != 0 || date.second != 0 {
                7
            } else if *date != DateTimeValue::default() {
                4
            } else {
                0
            };
            out.push(length);
            if length >= 4 {
                put_u16(out, date.year);
                out.extend_from_slice(&[date.month, date.day]);
            }
            if length >= 7 {
                out.extend_from_slice(&[date.hour, date.minute, date.second]);
            }
            if length == 11 {
                put_u32(out, date.microsecond);
            }
        }
        (Shape::Time, BinaryValue::Time(time)) => {
            let length = if time.microsecond != 0 {
                12
            } else if *time != TimeValue::default() {
                8
            } else {
                0
            };
            out.push(length);
            if length >= 8 {
                out.push(u8::from(time.negative));
                put_u32(out, time.days);
                out.extend_from_slice(&[time.hour, time.minute, time.second]);
            }
            if length == 12 {
                put_u32(out, time.microsecond);
            }
        }
        (Shape::LengthEncoded, BinaryValue::Bytes(bytes)) => put_lenenc_bytes(out, bytes),
        _ => return Err(mismatch()),
    }
    Ok(())
}

/// Whether bit `index` of a NULL bitmap is set.
pub(crate) fn bit(bitmap: &[u8], index: usize) -> bool {
    bitmap
        .get(index / 8)
        .is_some_and(|byte| byte & (1 << (index % 8)) != 0)
}

fn set_bit(bitmap: &mut [u8], index: usize) {
    if let Some(byte) = bitmap.get_mut(index / 8) {
        *byte |= 1 << (index % 8);
    }
}

/// Decodes a binary row laid out by `types` (one per column).
pub fn decode_binary_row(
    payload: &[u8],
    types: &[ValueType],
) -> Result<Vec<BinaryValue>, MySqlCodecError> {
    if types.len() > MAX_COLUMNS {
        return Err(MySqlCodecError::TooMany {
            what: "columns",
            count: types.len(),
            max: MAX_COLUMNS,
        });
    }
    let mut reader = Reader::new(payload, "binary row");
    let header = reader.u8()?;
    if header != BINARY_ROW_HEADER {
        return Err(MySqlCodecError::Unexpected {
            what: "binary row",
            header,
        });
    }
    let bitmap = reader.take((types.len() + 7 + 2) / 8)?;
    let mut values = Vec::with_capacity(types.len());
    for (index, value_type) in types.iter().enumerate() {
        if bit(bitmap, index + 2) {
            values.push(BinaryValue::Null);
        } else {
            values.push(decode_value(&mut reader, *value_type)?);
        }
    }
    if !reader.is_empty() {
        return Err(reader.malformed());
    }
    Ok(values)
}

/// Encodes a binary row; `values` and `types` must have the same length.
pub fn encode_binary_row(
    types: &[ValueType],
    values: &[BinaryValue],
) -> Result<Vec<u8>, MySqlCodecError> {
    if types.len() != values.len() {
        return Err(MySqlCodecError::Malformed {
            what: "binary row (value count differs from column count)",
        });
    }
    let mut out = vec![BINARY_ROW_HEADER];
    let bitmap_start = out.len();
    out.resize(bitmap_start + (types.len() + 7 + 2) / 8, 0);
    for (index, (value_type, value)) in types.iter().zip(values).enumerate() {
        if matches!(value, BinaryValue::Null) {
            if let Some(bitmap) = out.get_mut(bitmap_start..) {
                set_bit(bitmap, index + 2);
            }
        } else {
            encode_value(&mut out, value, *value_type)?;
        }
    }
    Ok(out)
}

/// Builds a NULL bitmap without offset (for statement parameters).
pub(crate) fn null_bitmap(values: &[BinaryValue]) -> Vec<u8> {
    let mut bitmap = vec![0; values.len().div_ceil(8)];
    for (index, value) in values.iter().enumerate() {
        if matches!(value, BinaryValue::Null) {
            set_bit(&mut bitmap, index);
        }
    }
    bitmap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vt(column_type: ColumnType, unsigned: bool) -> ValueType {
        ValueType {
            column_type,
            unsigned,
        }
    }

    #[test]
    fn text_row_with_null() {
        let bytes = b"\x011\xfb\x03abc";
        let cells = decode_text_row(bytes, 3).unwrap();
        assert_eq!(cells, vec![Some(&b"1"[..]), None, Some(&b"abc"[..])]);
        assert_eq!(encode_text_row(cells), bytes.to_vec());
        assert!(decode_text_row(bytes, 4).is_err());
        assert!(decode_text_row(bytes, 2).is_err());
        assert!(decode_text_row(b"", 0).unwrap().is_empty());
    }

    #[test]
    fn binary_row_from_the_documentation() {
        // The documented example: a row of (NULL, 'abc', ...) types
        // (VAR_STRING NULL, then LONGLONG 1) — bitmap bit 2 is column 0.
        let types = [
            vt(ColumnType::VAR_STRING, false),
            vt(ColumnType::LONGLONG, false),
            vt(ColumnType::TINY, true),
            vt(ColumnType::DATETIME, false),
            vt(ColumnType::TIME, false),
            vt(ColumnType::DOUBLE, false),
        ];
        let mut bytes = vec![0x00, 0x04];
        bytes.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        bytes.push(0xff);
        bytes.extend_from_slice(&[7, 0xe8, 0x07, 12, 1, 22, 40, 5]);
        bytes.extend_from_slice(&[8, 1, 2, 0, 0, 0, 3, 4, 5]);
        bytes.extend_from_slice(&1.5f64.to_le_bytes());
        let values = decode_binary_row(&bytes, &types).unwrap();
        assert_eq!(
            values,
            vec![
                BinaryValue::Null,
                BinaryValue::Int(1),
                BinaryValue::UInt(255),
                BinaryValue::Date(DateTimeValue {
                    year: 2024,
                    month: 12,
                    day: 1,
                    hour: 22,
                    minute: 40,
                    second: 5,
                    microsecond: 0
                }),
                BinaryValue::Time(TimeValue {
                    negative: true,
                    days: 2,
                    hour: 3,
                    minute: 4,
                    second: 5,
                    microsecond: 0
                }),
                BinaryValue::Double(1.5),
            ]
        );
        assert_eq!(encode_binary_row(&types, &values).unwrap(), bytes);
    }

    #[test]
    fn binary_integers_by_width_and_sign() {
        let types = [
            vt(ColumnType::TINY, false),
            vt(ColumnType::SHORT, false),
            vt(ColumnType::INT24, true),
            vt(ColumnType::FLOAT, false),
            vt(ColumnType::DATE, false),
            vt(ColumnType::NEWDECIMAL, false),
        ];
        let values = vec![
            BinaryValue::Int(-1),
            BinaryValue::Int(-2),
            BinaryValue::UInt(70000),
            BinaryValue::Float(0.25),
            BinaryValue::Date(DateTimeValue {
                year: 2026,
                month: 1,
                day: 2,
                ..DateTimeValue::default()
            }),
            BinaryValue::Bytes(b"12.50".to_vec()),
        ];
        let bytes = encode_binary_row(&types, &values).unwrap();
        assert_eq!(
            bytes,
            [
                &[0x00, 0x00, 0xff, 0xfe, 0xff][..],
                &70000u32.to_le_bytes(),
                &0.25f32.to_le_bytes(),
                &[4, 0xea, 0x07, 1, 2, 5],
                b"12.50"
            ]
            .concat()
        );
        assert_eq!(decode_binary_row(&bytes, &types).unwrap(), values);
        assert!(encode_binary_row(&types[..1], &[BinaryValue::Double(1.0)]).is_err());
        assert!(decode_binary_row(&bytes[..bytes.len() - 1], &types).is_err());
    }

    #[test]
    fn null_bitmaps() {
        let values = vec![BinaryValue::Null; 9];
        assert_eq!(null_bitmap(&values), vec![0xff, 0x01]);
        let types = vec![vt(ColumnType::LONG, false); 7];
        let row = encode_binary_row(&types, &vec![BinaryValue::Null; 7]).unwrap();
        assert_eq!(row, vec![0x00, 0xfc, 0x01]);
    }
}
