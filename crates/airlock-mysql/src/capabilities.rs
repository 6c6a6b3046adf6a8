//! Capability flags (MySQL's 32 and MariaDB's extended 32, as one `u64`),
//! server status flags, and the character-set ids the gateway uses.
//!
//! Which capabilities the codec follows is stated here once
//! ([`Capabilities::SUPPORTED`]): the gateway must clear every other bit
//! from what it advertises and requests, because those change packet
//! layouts (compression, optional metadata, query attributes, MariaDB's
//! metadata cache and progress reports) that the decoders do not parse.

use std::ops::{BitAnd, BitOr, Not};

/// Capability flags. Bits 0–31 are MySQL's `CLIENT_*`; bits 32–63 are
/// MariaDB's extended capabilities (`MARIADB_CLIENT_*`), sent in the
/// handshake's filler when `CLIENT_MYSQL` (bit 0) is clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        $($(#[$doc])* pub const $name: Self = Self($value);)*
    };
}

impl Capabilities {
    flags! {
        /// `CLIENT_LONG_PASSWORD`; MariaDB calls it `CLIENT_MYSQL` and a
        /// MariaDB server leaves it clear to announce extended capabilities.
        LONG_PASSWORD = 1;
        FOUND_ROWS = 1 << 1;
        LONG_FLAG = 1 << 2;
        CONNECT_WITH_DB = 1 << 3;
        NO_SCHEMA = 1 << 4;
        COMPRESS = 1 << 5;
        ODBC = 1 << 6;
        LOCAL_FILES = 1 << 7;
        IGNORE_SPACE = 1 << 8;
        PROTOCOL_41 = 1 << 9;
        INTERACTIVE = 1 << 10;
        SSL = 1 << 11;
        IGNORE_SIGPIPE = 1 << 12;
        TRANSACTIONS = 1 << 13;
        RESERVED = 1 << 14;
        /// `CLIENT_SECURE_CONNECTION` (`CLIENT_RESERVED2`): 1-byte length
        /// before the auth response.
        SECURE_CONNECTION = 1 << 15;
        MULTI_STATEMENTS = 1 << 16;
        MULTI_RESULTS = 1 << 17;
        PS_MULTI_RESULTS = 1 << 18;
        PLUGIN_AUTH = 1 << 19;
        CONNECT_ATTRS = 1 << 20;
        PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21;
        CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22;
        SESSION_TRACK = 1 << 23;
        DEPRECATE_EOF = 1 << 24;
        OPTIONAL_RESULTSET_METADATA = 1 << 25;
        ZSTD_COMPRESSION_ALGORITHM = 1 << 26;
        QUERY_ATTRIBUTES = 1 << 27;
        MULTI_FACTOR_AUTHENTICATION = 1 << 28;
        CAPABILITY_EXTENSION = 1 << 29;
        SSL_VERIFY_SERVER_CERT = 1 << 30;
        REMEMBER_OPTIONS = 1 << 31;
        /// `MARIADB_CLIENT_PROGRESS`: progress reports inside ERR packets.
        MARIADB_PROGRESS = 1 << 32;
        /// `MARIADB_CLIENT_COM_MULTI` (removed in later MariaDB).
        MARIADB_COM_MULTI = 1 << 33;
        /// `MARIADB_CLIENT_STMT_BULK_OPERATIONS`: `COM_STMT_BULK_EXECUTE`.
        MARIADB_STMT_BULK_OPERATIONS = 1 << 34;
        /// `MARIADB_CLIENT_EXTENDED_METADATA`: extra type info in column
        /// definitions.
        MARIADB_EXTENDED_METADATA = 1 << 35;
        /// `MARIADB_CLIENT_CACHE_METADATA`: result sets may omit metadata.
        MARIADB_CACHE_METADATA = 1 << 36;
        /// `MARIADB_CLIENT_BULK_UNIT_RESULTS`.
        MARIADB_BULK_UNIT_RESULTS = 1 << 37;
    }

    /// What the decoders in this crate parse. Everything else must be
    /// cleared from what the gateway negotiates on either side.
    pub const SUPPORTED: Self = Self(
        Self::LONG_PASSWORD.0
            | Self::FOUND_ROWS.0
            | Self::LONG_FLAG.0
            | Self::CONNECT_WITH_DB.0
            | Self::NO_SCHEMA.0
            | Self::ODBC.0
            | Self::LOCAL_FILES.0
            | Self::IGNORE_SPACE.0
            | Self::PROTOCOL_41.0
            | Self::INTERACTIVE.0
            | Self::SSL.0
            | Self::IGNORE_SIGPIPE.0
            | Self::TRANSACTIONS.0
            | Self::RESERVED.0
            | Self::SECURE_CONNECTION.0
            | Self::MULTI_STATEMENTS.0
            | Self::MULTI_RESULTS.0
            | Self::PS_MULTI_RESULTS.0
            | Self::PLUGIN_AUTH.0
            | Self::CONNECT_ATTRS.0
            | Self::PLUGIN_AUTH_LENENC_CLIENT_DATA.0
            | Self::CAN_HANDLE_EXPIRED_PASSWORDS.0
            | Self::SESSION_TRACK.0
            | Self::DEPRECATE_EOF.0
            | Self::SSL_VERIFY_SERVER_CERT.0
            | Self::REMEMBER_OPTIONS.0
            | Self::MARIADB_STMT_BULK_OPERATIONS.0
            | Self::MARIADB_EXTENDED_METADATA.0,
    );

    /// No flags.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The low 32 bits (MySQL's capability word).
    pub const fn mysql_bits(self) -> u32 {
        self.0 as u32
    }

    /// The high 32 bits (MariaDB's extended capability word).
    pub const fn mariadb_bits(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Joins the two words.
    pub const fn from_words(mysql: u32, mariadb: u32) -> Self {
        Self((mariadb as u64) << 32 | mysql as u64)
    }
}

impl BitOr for Capabilities {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl BitAnd for Capabilities {
    type Output = Self;
    fn bitand(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }
}

impl Not for Capabilities {
    type Output = Self;
    fn not(self) -> Self {
        Self(!self.0)
    }
}

/// Server status flags, as carried by OK and EOF packets and the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServerStatus(pub u16);

impl ServerStatus {
    pub const IN_TRANS: Self = Self(0x0001);
    pub const AUTOCOMMIT: Self = Self(0x0002);
    pub const MORE_RESULTS_EXISTS: Self = Self(0x0008);
    pub const NO_GOOD_INDEX_USED: Self = Self(0x0010);
    pub const NO_INDEX_USED: Self = Self(0x0020);
    pub const CURSOR_EXISTS: Self = Self(0x0040);
    pub const LAST_ROW_SENT: Self = Self(0x0080);
    pub const DB_DROPPED: Self = Self(0x0100);
    pub const NO_BACKSLASH_ESCAPES: Self = Self(0x0200);
    pub const METADATA_CHANGED: Self = Self(0x0400);
    pub const QUERY_WAS_SLOW: Self = Self(0x0800);
    pub const PS_OUT_PARAMS: Self = Self(0x1000);
    pub const IN_TRANS_READONLY: Self = Self(0x2000);
    pub const SESSION_STATE_CHANGED: Self = Self(0x4000);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Inside a transaction.
    pub const fn in_transaction(self) -> bool {
        self.contains(Self::IN_TRANS)
    }

    /// Autocommit on.
    pub const fn autocommit(self) -> bool {
        self.contains(Self::AUTOCOMMIT)
    }

    /// Another result set follows this one.
    pub const fn more_results(self) -> bool {
        self.contains(Self::MORE_RESULTS_EXISTS)
    }
}

/// `utf8mb4_general_ci`, the collation the gateway announces and requests.
pub const CHARSET_UTF8MB4_GENERAL_CI: u8 = 45;
/// `binary`, the collation of binary columns.
pub const CHARSET_BINARY: u8 = 63;
