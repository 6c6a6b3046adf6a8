//! The codec's one error type. Every variant closes the session that sent
//! the bytes: the gateway never tries to resynchronise a corrupt stream.

/// Why bytes could not be decoded or a message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MySqlCodecError {
    /// A logical packet (all its fragments) above the configured bound.
    #[error("packet of {length} bytes exceeds the maximum of {max}")]
    TooLarge { length: usize, max: usize },
    /// A packet whose sequence id is not the one the conversation is at.
    #[error("packet sequence id {got}, expected {expected}")]
    BadSequence { got: u8, expected: u8 },
    /// The payload ended before a field did.
    #[error("truncated {what}")]
    Truncated { what: &'static str },
    /// A NUL-terminated string without its NUL, or a string that must be
    /// UTF-8 and is not.
    #[error("invalid string in {what}")]
    BadString { what: &'static str },
    /// A count field exceeds its bound.
    #[error("too many {what} ({count}, max {max})")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// A packet that is not valid at this point of the conversation.
    #[error("unexpected {what} packet (first byte 0x{header:02x})")]
    Unexpected { what: &'static str, header: u8 },
    /// A protocol feature the codec deliberately does not speak.
    #[error("unsupported {what}")]
    Unsupported { what: &'static str },
    /// Any other structural problem.
    #[error("malformed {what}")]
    Malformed { what: &'static str },
}
