//! Column definitions (`ColumnDefinition41`): the metadata in front of
//! every result set and of a prepared statement's parameters, with column
//! types and flags. MariaDB's extended type information is kept raw.

use std::borrow::Cow;

use crate::buf::{put_lenenc_bytes, put_u16, put_u32, Reader};
use crate::{Capabilities, MySqlCodecError};

/// A column's wire type (`enum_field_types`); unknown ids are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColumnType(pub u8);

impl ColumnType {
    pub const DECIMAL: Self = Self(0x00);
    pub const TINY: Self = Self(0x01);
    pub const SHORT: Self = Self(0x02);
    pub const LONG: Self = Self(0x03);
    pub const FLOAT: Self = Self(0x04);
    pub const DOUBLE: Self = Self(0x05);
    pub const NULL: Self = Self(0x06);
    pub const TIMESTAMP: Self = Self(0x07);
    pub const LONGLONG: Self = Self(0x08);
    pub const INT24: Self = Self(0x09);
    pub const DATE: Self = Self(0x0a);
    pub const TIME: Self = Self(0x0b);
    pub const DATETIME: Self = Self(0x0c);
    pub const YEAR: Self = Self(0x0d);
    pub const NEWDATE: Self = Self(0x0e);
    pub const VARCHAR: Self = Self(0x0f);
    pub const BIT: Self = Self(0x10);
    pub const TIMESTAMP2: Self = Self(0x11);
    pub const DATETIME2: Self = Self(0x12);
    pub const TIME2: Self = Self(0x13);
    pub const JSON: Self = Self(0xf5);
    pub const NEWDECIMAL: Self = Self(0xf6);
    pub const ENUM: Self = Self(0xf7);
    pub const SET: Self = Self(0xf8);
    pub const TINY_BLOB: Self = Self(0xf9);
    pub const MEDIUM_BLOB: Self = Self(0xfa);
    pub const LONG_BLOB: Self = Self(0xfb);
    pub const BLOB: Self = Self(0xfc);
    pub const VAR_STRING: Self = Self(0xfd);
    pub const STRING: Self = Self(0xfe);
    pub const GEOMETRY: Self = Self(0xff);
}

/// Column flags (`*_FLAG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ColumnFlags(pub u16);

impl ColumnFlags {
    pub const NOT_NULL: Self = Self(1);
    pub const PRIMARY_KEY: Self = Self(2);
    pub const UNIQUE_KEY: Self = Self(4);
    pub const MULTIPLE_KEY: Self = Self(8);
    pub const BLOB: Self = Self(16);
    pub const UNSIGNED: Self = Self(32);
    pub const ZEROFILL: Self = Self(64);
    pub const BINARY: Self = Self(128);
    pub const ENUM: Self = Self(256);
    pub const AUTO_INCREMENT: Self = Self(512);
    pub const TIMESTAMP: Self = Self(1024);
    pub const SET: Self = Self(2048);
    pub const NO_DEFAULT_VALUE: Self = Self(4096);
    pub const ON_UPDATE_NOW: Self = Self(8192);
    pub const NUM: Self = Self(32768);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One column's metadata. Names are the server's bytes (in
/// `character_set_results`); the accessors decode them lossily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDefinition {
    /// Always `def`.
    pub catalog: Vec<u8>,
    pub schema: Vec<u8>,
    /// The table alias.
    pub table: Vec<u8>,
    /// The table's real name.
    pub org_table: Vec<u8>,
    /// The column alias.
    pub name: Vec<u8>,
    /// The column's real name.
    pub org_name: Vec<u8>,
    /// MariaDB extended type information (`MARIADB_CLIENT_EXTENDED_METADATA`),
    /// raw: pairs of (kind byte, lenenc value).
    pub extended_metadata: Option<Vec<u8>>,
    /// The collation id.
    pub charset: u16,
    /// The maximum display length.
    pub column_length: u32,
    pub column_type: ColumnType,
    pub flags: ColumnFlags,
    pub decimals: u8,
    /// The default value (answers to `COM_FIELD_LIST` only): `None` when
    /// absent, `Some(None)` for NULL (a column without a default).
    pub default_values: Option<Option<Vec<u8>>>,
}

impl ColumnDefinition {
    /// A definition with the given name and type, other fields empty
    /// (for the gateway's own result sets and for tests).
    pub fn new(name: &str, column_type: ColumnType) -> Self {
        Self {
            catalog: b"def".to_vec(),
            schema: Vec::new(),
            table: Vec::new(),
            org_table: Vec::new(),
            name: name.as_bytes().to_vec(),
            org_name: name.as_bytes().to_vec(),
            extended_metadata: None,
            charset: u16::from(crate::CHARSET_UTF8MB4_GENERAL_CI),
            column_length: 0,
            column_type,
            flags: ColumnFlags::default(),
            decimals: 0,
            default_values: None,
        }
    }

    /// Decodes a column definition; `capabilities` tells whether MariaDB's
    /// extended metadata is present.
    pub fn decode(payload: &[u8], capabilities: Capabilities) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "column definition");
        let catalog = reader.lenenc_bytes()?.to_vec();
        let schema = reader.lenenc_bytes()?.to_vec();
        let table = reader.lenenc_bytes()?.to_vec();
        let org_table = reader.lenenc_bytes()?.to_vec();
        let name = reader.lenenc_bytes()?.to_vec();
        let org_name = reader.lenenc_bytes()?.to_vec();
        let extended_metadata = if capabilities.contains(Capabilities::MARIADB_EXTENDED_METADATA) {
            Some(reader.lenenc_bytes()?.to_vec())
        } else {
            None
        };
        let fixed_length = usize::try_from(reader.lenenc()?).map_err(|_| reader.malformed())?;
        if fixed_length < 12 {
            return Err(reader.malformed());
        }
        let mut fixed = Reader::new(reader.take(fixed_length)?, "column definition");
        let charset = fixed.u16()?;
        let column_length = fixed.u32()?;
        let column_type = ColumnType(fixed.u8()?);
        let flags = ColumnFlags(fixed.u16()?);
        let decimals = fixed.u8()?;
        let default_values = if reader.is_empty() {
            None
        } else {
            Some(reader.lenenc_bytes_or_null()?.map(<[u8]>::to_vec))
        };
        Ok(Self {
            catalog,
            schema,
            table,
            org_table,
            name,
            org_name,
            extended_metadata,
            charset,
            column_length,
            column_type,
            flags,
            decimals,
            default_values,
        })
    }

    /// Encodes; the extended metadata is written when `capabilities` has
    /// `MARIADB_CLIENT_EXTENDED_METADATA` (empty if there is none).
    pub fn encode(&self, capabilities: Capabilities) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            24 + self.schema.len()
                + self.table.len()
                + self.org_table.len()
                + self.name.len()
                + self.org_name.len(),
        );
        for field in [
            &self.catalog,
            &self.schema,
            &self.table,
            &self.org_table,
            &self.name,
            &self.org_name,
        ] {
            put_lenenc_bytes(&mut out, field);
        }
        if capabilities.contains(Capabilities::MARIADB_EXTENDED_METADATA) {
            put_lenenc_bytes(
                &mut out,
                self.extended_metadata.as_deref().unwrap_or_default(),
            );
        }
        out.push(0x0c);
        put_u16(&mut out, self.charset);
        put_u32(&mut out, self.column_length);
        out.push(self.column_type.0);
        put_u16(&mut out, self.flags.0);
        out.push(self.decimals);
        out.extend_from_slice(&[0, 0]);
        match &self.default_values {
            Some(Some(defaults)) => put_lenenc_bytes(&mut out, defaults),
            Some(None) => out.push(crate::buf::LENENC_NULL),
            None => {}
        }
        out
    }

    /// The column alias as text.
    pub fn name_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    /// The real column name as text.
    pub fn org_name_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.org_name)
    }

    /// The real table name as text.
    pub fn org_table_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.org_table)
    }

    /// The schema as text.
    pub fn schema_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.schema)
    }

    /// Whether integers in this column are unsigned.
    pub fn is_unsigned(&self) -> bool {
        self.flags.contains(ColumnFlags::UNSIGNED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_definition_from_the_documentation() {
        // `SELECT @@version_comment` answered by MySQL: a VAR_STRING column.
        let bytes = b"\x03def\x00\x00\x00\x11@@version_comment\x00\x0c\
            \x08\x00\x1c\x00\x00\x00\xfd\x00\x00\x1f\x00\x00";
        let column = ColumnDefinition::decode(bytes, Capabilities::PROTOCOL_41).unwrap();
        assert_eq!(column.catalog, b"def");
        assert_eq!(column.name_str(), "@@version_comment");
        assert!(column.org_name.is_empty());
        assert_eq!(column.charset, 8);
        assert_eq!(column.column_length, 28);
        assert_eq!(column.column_type, ColumnType::VAR_STRING);
        assert_eq!(column.decimals, 0x1f);
        assert_eq!(column.encode(Capabilities::PROTOCOL_41), bytes.to_vec());
    }

    #[test]
    fn round_trips_with_extended_metadata_and_defaults() {
        let mut column = ColumnDefinition::new("id", ColumnType::LONGLONG);
        column.schema = b"appdb".to_vec();
        column.table = b"t".to_vec();
        column.org_table = b"t".to_vec();
        column.flags = ColumnFlags(ColumnFlags::UNSIGNED.0 | ColumnFlags::NOT_NULL.0);
        column.extended_metadata = Some(b"\x00\x04json".to_vec());
        column.default_values = Some(Some(b"0".to_vec()));
        let caps = Capabilities::PROTOCOL_41 | Capabilities::MARIADB_EXTENDED_METADATA;
        let bytes = column.encode(caps);
        let decoded = ColumnDefinition::decode(&bytes, caps).unwrap();
        assert_eq!(decoded, column);
        assert!(decoded.is_unsigned());
        assert!(ColumnDefinition::decode(&bytes[..bytes.len() - 4], caps).is_err());
        // A column without a default: COM_FIELD_LIST sends NULL (0xFB).
        column.default_values = Some(None);
        let bytes = column.encode(caps);
        assert_eq!(bytes.last(), Some(&0xFB));
        assert_eq!(ColumnDefinition::decode(&bytes, caps).unwrap(), column);
    }
}
