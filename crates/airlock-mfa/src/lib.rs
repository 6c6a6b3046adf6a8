//! TOTP step-up confirmation for airlock (RFC 6238 over RFC 4226 HOTP).
//!
//! A human approving a risky command can be asked for a one-time code from
//! an authenticator app. This crate owns the arithmetic of that check and
//! nothing else:
//!
//! - [`TotpSecret`]: the shared 160-bit key, generated from the OS RNG,
//!   exchanged as RFC 4648 base32 ([`TotpSecret::to_base32`],
//!   [`TotpSecret::from_base32`]); its `Debug` never prints the key.
//! - [`otpauth_uri`]: the `otpauth://totp/...` enrolment URI (QR code text).
//! - [`code_at`] / [`code_at_digits`]: the code for a Unix time.
//! - [`verify`]: accepts the current 30-second step ± a small skew, compares
//!   in constant time and refuses any step at or before the last one the
//!   caller recorded, so a code can be used once only.
//!
//! What this crate must never do: store anything (the caller persists the
//! secret, encrypted, and the last used step), read a clock (callers pass the
//! time, so tests and replays are deterministic), or log a secret or a code.

mod base32;
mod error;
mod secret;
mod totp;

pub use error::MfaError;
pub use secret::{TotpSecret, GENERATED_SECRET_BYTES, MAX_SECRET_BYTES, MIN_SECRET_BYTES};
pub use totp::{
    code_at, code_at_digits, otpauth_uri, time_step, verify, DEFAULT_SKEW_STEPS, DIGITS,
    MAX_DIGITS, MAX_SKEW_STEPS, MIN_DIGITS, PERIOD_SECONDS,
};
