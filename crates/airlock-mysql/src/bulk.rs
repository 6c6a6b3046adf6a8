//! MariaDB's `COM_STMT_BULK_EXECUTE`: one prepared statement run for many
//! parameter rows in one packet. Owns the packet's header and the decoding
//! of its rows (types, per-value indicators, binary values); what runs it,
//! and under which decision, is the gateway's.
//!
//! The layout (MariaDB 10.2.7+): statement id (4), bulk flags (2), the
//! parameter types when `SEND_TYPES_TO_SERVER` is set (2 bytes each), then
//! rows until the end of the packet, each one indicator byte per parameter
//! followed by the value when the indicator is `NONE`. Decoding is bounded
//! by the packet itself (every row costs at least one byte per parameter)
//! and by [`MAX_BULK_ROWS`]; a statement without parameters has no rows to
//! delimit and is refused.

use crate::buf::{put_u16, put_u32, Reader};
use crate::column::ColumnType;
use crate::command::MAX_PARAMETERS;
use crate::row::{decode_value, encode_value, BinaryValue, ValueType};
use crate::MySqlCodecError;

/// Bulk flags.
pub mod flags {
    /// Answer with a result set of affected rows and ids; needs
    /// `MARIADB_CLIENT_BULK_UNIT_RESULTS`, which the gateway never
    /// negotiates, so a packet with it is refused.
    pub const SEND_UNIT_RESULTS: u16 = 64;
    /// Parameter types follow the header.
    pub const SEND_TYPES_TO_SERVER: u16 = 128;
}

/// Most rows decoded from one bulk packet.
pub const MAX_BULK_ROWS: usize = 1 << 20;

/// The sign flag in a parameter type's second byte.
const PARAMETER_UNSIGNED: u8 = 0x80;

/// Per-value indicators.
pub mod indicator {
    pub const NONE: u8 = 0;
    pub const NULL: u8 = 1;
    pub const DEFAULT: u8 = 2;
    pub const IGNORE: u8 = 3;
}

/// `COM_STMT_BULK_EXECUTE` with its rows undecoded (decoding needs the
/// statement's parameter count: see [`StmtBulkExecute::rows`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StmtBulkExecute {
    /// `0xFFFFFFFF` means the statement prepared just before.
    pub statement_id: u32,
    /// [`flags`].
    pub flags: u16,
    /// Types (when sent) and rows.
    pub body: Vec<u8>,
}

/// One value of a bulk row.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkValue {
    Value(BinaryValue),
    Null,
    /// The column's default (`INSERT`/`UPDATE`).
    Default,
    /// The default for an insert; left as it is by an update.
    Ignore,
}

/// Decoded bulk rows: every row is checked, the first ones are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRows {
    /// The types the values were read by.
    pub types: Vec<ValueType>,
    /// Whether this packet sent the types.
    pub types_sent: bool,
    /// How many rows the packet holds.
    pub count: usize,
    /// The first rows (as many as asked for), one value per parameter.
    pub rows: Vec<Vec<BulkValue>>,
}

impl StmtBulkExecute {
    /// Decodes the body after the command byte.
    pub fn decode(body: &[u8]) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(body, "COM_STMT_BULK_EXECUTE");
        let statement_id = reader.u32()?;
        let flags = reader.u16()?;
        Ok(Self {
            statement_id,
            flags,
            body: reader.rest().to_vec(),
        })
    }

    /// Appends the body (after the command byte).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put_u32(out, self.statement_id);
        put_u16(out, self.flags);
        out.extend_from_slice(&self.body);
    }

    /// Decodes the rows of a statement with `parameter_count` parameters,
    /// keeping the first `keep` (memory stays bounded by `keep`, whatever
    /// the packet holds); `previous_types` are the statement's last types,
    /// needed when the packet does not resend them. Flags the codec does
    /// not follow, a statement without parameters, an empty bulk and
    /// unknown indicators are errors.
    pub fn rows(
        &self,
        parameter_count: usize,
        previous_types: Option<&[ValueType]>,
        keep: usize,
    ) -> Result<BulkRows, MySqlCodecError> {
        if self.flags & !flags::SEND_TYPES_TO_SERVER != 0 {
            return Err(MySqlCodecError::Unsupported {
                what: "COM_STMT_BULK_EXECUTE flags",
            });
        }
        if parameter_count == 0 {
            return Err(MySqlCodecError::Unsupported {
                what: "COM_STMT_BULK_EXECUTE of a statement without parameters",
            });
        }
        if parameter_count > MAX_PARAMETERS {
            return Err(MySqlCodecError::TooMany {
                what: "parameters",
                count: parameter_count,
                max: MAX_PARAMETERS,
            });
        }
        let mut reader = Reader::new(&self.body, "COM_STMT_BULK_EXECUTE rows");
        let types_sent = self.flags & flags::SEND_TYPES_TO_SERVER != 0;
        let types = if types_sent {
            let mut types = Vec::with_capacity(parameter_count.min(reader.remaining() / 2));
            for _ in 0..parameter_count {
                let column_type = ColumnType(reader.u8()?);
                let flags = reader.u8()?;
                types.push(ValueType {
                    column_type,
                    unsigned: flags & PARAMETER_UNSIGNED != 0,
                });
            }
            types
        } else {
            match previous_types {
                Some(types) if types.len() == parameter_count => types.to_vec(),
                _ => {
                    return Err(MySqlCodecError::Malformed {
                        what: "COM_STMT_BULK_EXECUTE without parameter types",
                    })
                }
            }
        };
        let mut rows = Vec::new();
        let mut count = 0usize;
        while !reader.is_empty() {
            if count >= MAX_BULK_ROWS {
                return Err(MySqlCodecError::TooMany {
                    what: "bulk rows",
                    count: count + 1,
                    max: MAX_BULK_ROWS,
                });
            }
            let kept = count < keep;
            let mut row = Vec::with_capacity(if kept {
                parameter_count.min(reader.remaining())
            } else {
                0
            });
            for value_type in &types {
                let value = match reader.u8()? {
                    indicator::NONE => BulkValue::Value(decode_value(&mut reader, *value_type)?),
                    indicator::NULL => BulkValue::Null,
                    indicator::DEFAULT => BulkValue::Default,
                    indicator::IGNORE => BulkValue::Ignore,
                    _ => {
                        return Err(MySqlCodecError::Malformed {
                            what: "bulk parameter indicator",
                        })
                    }
                };
                if kept {
                    row.push(value);
                }
            }
            if kept {
                rows.push(row);
            }
            count += 1;
        }
        if count == 0 {
            return Err(MySqlCodecError::Malformed {
                what: "COM_STMT_BULK_EXECUTE without rows",
            });
        }
        Ok(BulkRows {
            types,
            types_sent,
            count,
            rows,
        })
    }

    /// Builds a bulk packet that sends its types.
    pub fn with_rows(
        statement_id: u32,
        types: &[ValueType],
        rows: &[Vec<BulkValue>],
    ) -> Result<Self, MySqlCodecError> {
        if types.is_empty() || types.len() > MAX_PARAMETERS {
            return Err(MySqlCodecError::Malformed {
                what: "COM_STMT_BULK_EXECUTE parameters",
            });
        }
        let mut body = Vec::new();
        for value_type in types {
            body.push(value_type.column_type.0);
            body.push(if value_type.unsigned {
                PARAMETER_UNSIGNED
            } else {
                0
            });
        }
        for row in rows {
            if row.len() != types.len() {
                return Err(MySqlCodecError::Malformed {
                    what: "COM_STMT_BULK_EXECUTE row",
                });
            }
            for (value, value_type) in row.iter().zip(types) {
                match value {
                    BulkValue::Value(BinaryValue::Null) | BulkValue::Null => {
                        body.push(indicator::NULL)
                    }
                    BulkValue::Value(value) => {
                        body.push(indicator::NONE);
                        encode_value(&mut body, value, *value_type)?;
                    }
                    BulkValue::Default => body.push(indicator::DEFAULT),
                    BulkValue::Ignore => body.push(indicator::IGNORE),
                }
            }
        }
        Ok(Self {
            statement_id,
            flags: flags::SEND_TYPES_TO_SERVER,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::ColumnType;

    const LONGLONG: ValueType = ValueType {
        column_type: ColumnType(0x08),
        unsigned: false,
    };
    const VAR_STRING: ValueType = ValueType {
        column_type: ColumnType(0xfd),
        unsigned: false,
    };

    #[test]
    fn two_rows_with_types_nulls_and_defaults() {
        // id 1, SEND_TYPES; LONGLONG, VAR_STRING; row (5, 'ab'), row (NULL, DEFAULT).
        let body = b"\x01\x00\x00\x00\x80\x00\x08\x00\xfd\x00\
            \x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x02ab\
            \x01\x02";
        let bulk = StmtBulkExecute::decode(body).unwrap();
        assert_eq!(bulk.statement_id, 1);
        let rows = bulk.rows(2, None, 10).unwrap();
        assert!(rows.types_sent);
        assert_eq!(rows.count, 2);
        assert_eq!(bulk.rows(2, None, 1).unwrap().rows.len(), 1);
        assert_eq!(
            rows.rows,
            vec![
                vec![
                    BulkValue::Value(BinaryValue::Int(5)),
                    BulkValue::Value(BinaryValue::Bytes(b"ab".to_vec()))
                ],
                vec![BulkValue::Null, BulkValue::Default]
            ]
        );
        let mut encoded = Vec::new();
        bulk.encode_into(&mut encoded);
        assert_eq!(encoded, body);
        let rebuilt = StmtBulkExecute::with_rows(1, &rows.types, &rows.rows).unwrap();
        assert_eq!(rebuilt, bulk);
    }

    #[test]
    fn refuses_what_it_does_not_follow() {
        let rows = vec![vec![BulkValue::Value(BinaryValue::Int(1))]];
        let bulk = StmtBulkExecute::with_rows(1, &[LONGLONG], &rows).unwrap();
        // Unit results, no parameters, a wrong count, unknown indicators.
        let unit = StmtBulkExecute {
            flags: bulk.flags | flags::SEND_UNIT_RESULTS,
            ..bulk.clone()
        };
        assert!(unit.rows(1, None, 1).is_err());
        assert!(bulk.rows(0, None, 1).is_err());
        assert!(bulk.rows(2, None, 1).is_err());
        let mut bad = bulk.clone();
        bad.body[2] = 9;
        assert!(bad.rows(1, None, 1).is_err());
        // No rows at all.
        let empty = StmtBulkExecute::with_rows(1, &[LONGLONG], &[]).unwrap();
        assert!(empty.rows(1, None, 1).is_err());
        // Types not sent need the earlier ones.
        let untyped = StmtBulkExecute {
            flags: 0,
            body: bulk.body[2..].to_vec(),
            ..bulk.clone()
        };
        assert!(untyped.rows(1, None, 1).is_err());
        assert_eq!(
            untyped.rows(1, Some(&[LONGLONG]), 1).unwrap().rows,
            bulk.rows(1, None, 1).unwrap().rows
        );
        assert!(StmtBulkExecute::with_rows(1, &[VAR_STRING], &[vec![]]).is_err());
        assert!(StmtBulkExecute::decode(b"\x01\x00\x00").is_err());
    }
}
