//! Codec errors and the fields of PostgreSQL error/notice responses.

/// Why bytes could not be decoded. Every variant closes the session that sent
/// them: the gateway never tries to resynchronise a corrupt stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgCodecError {
    /// A length prefix below the minimum or above the configured bound.
    #[error("message length {length} is outside the allowed range (max {max})")]
    BadLength { length: i64, max: usize },
    /// The message body ended before a field did.
    #[error("truncated {what} message")]
    Truncated { what: &'static str },
    /// A string field was not terminated or not UTF-8.
    #[error("invalid string in {what} message")]
    BadString { what: &'static str },
    /// A count field exceeds its bound.
    #[error("too many {what} ({count}, max {max})")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// A startup packet with an unknown protocol code.
    #[error("unsupported protocol version {major}.{minor}")]
    UnsupportedProtocol { major: u16, minor: u16 },
    /// A message tag that is not valid at this point.
    #[error("unexpected message type {tag:?}")]
    UnexpectedTag { tag: char },
    /// Any other structural problem.
    #[error("malformed {what} message")]
    Malformed { what: &'static str },
}

/// The fields of an `ErrorResponse` or `NoticeResponse` the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorFields {
    /// `S`: ERROR, FATAL, PANIC, WARNING, NOTICE, …
    pub severity: String,
    /// `C`: the SQLSTATE code.
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
    /// `D`: detail, if any.
    pub detail: Option<String>,
    /// `H`: hint, if any.
    pub hint: Option<String>,
    /// `P`: the 1-based character position in the query text the error
    /// points at (syntax errors), if any.
    pub position: Option<u32>,
}
