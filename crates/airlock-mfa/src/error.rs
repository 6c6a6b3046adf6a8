//! [`MfaError`]: every way a TOTP operation can fail.
//!
//! Verification errors deliberately carry no detail (no expected code, no
//! matched step): the caller turns them into a generic refusal.

/// Why a TOTP secret or code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaError {
    /// The code is well-formed but matches no time step in the window.
    #[error("invalid one-time code")]
    Invalid,
    /// The code matches a time step at or before the last one already used:
    /// a replay, or an older code presented after a newer one.
    #[error("one-time code already used")]
    Reused,
    /// The code is not exactly six ASCII digits.
    #[error("malformed one-time code: expected 6 digits")]
    Malformed,
    /// The base32 text is not a usable TOTP secret.
    #[error("invalid totp secret: {0}")]
    InvalidSecret(&'static str),
    /// A code length outside what HOTP can produce.
    #[error("unsupported code length {0}: expected {min} to {max} digits", min = crate::MIN_DIGITS, max = crate::MAX_DIGITS)]
    UnsupportedDigits(u32),
}
