//! [`TotpSecret`]: the key shared with the authenticator app.
//!
//! The key is what makes a code prove possession of the enrolled device, so
//! it must never reach a log: `Debug` prints a placeholder, there is no
//! `Display`, and reading it (as base32 for enrolment or storage) takes an
//! explicit call. Dropping a secret overwrites its bytes (best effort).

use std::fmt;

use rand::RngCore;

use crate::base32;
use crate::error::MfaError;

/// Bytes in a generated secret: 160 bits, RFC 4226's recommendation and the
/// HMAC-SHA1 block-friendly size every authenticator app accepts.
pub const GENERATED_SECRET_BYTES: usize = 20;
/// Shortest imported secret: 128 bits, RFC 4226's minimum (R6).
pub const MIN_SECRET_BYTES: usize = 16;
/// Longest imported secret; anything longer is a mistake, not a key.
pub const MAX_SECRET_BYTES: usize = 64;

/// A TOTP shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret {
    bytes: Vec<u8>,
}

impl TotpSecret {
    /// A fresh random 20-byte secret from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; GENERATED_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self { bytes }
    }

    /// Reads a base32 secret (case-insensitive; spaces, dashes and `=`
    /// padding ignored). Refuses text that is not base32 and keys shorter
    /// than [`MIN_SECRET_BYTES`] or longer than [`MAX_SECRET_BYTES`].
    pub fn from_base32(text: &str) -> Result<Self, MfaError> {
        let bytes = base32::decode(text).map_err(MfaError::InvalidSecret)?;
        Self::from_bytes(bytes)
    }

    /// Wraps raw key bytes, with the same length limits as
    /// [`TotpSecret::from_base32`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, MfaError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(MfaError::InvalidSecret("shorter than 128 bits"));
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(MfaError::InvalidSecret("longer than 512 bits"));
        }
        Ok(Self { bytes })
    }

    /// The secret as unpadded upper-case base32: what the enrolment URI
    /// carries and what the caller stores (encrypted).
    pub fn to_base32(&self) -> String {
        base32::encode(&self.bytes)
    }

    /// The raw key, for the HMAC.
    pub(crate) fn key(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<secret>)")
    }
}

impl Drop for TotpSecret {
    fn drop(&mut self) {
        // Best effort: without `unsafe` volatile writes the compiler may in
        // principle elide this; `black_box` makes that unlikely.
        self.bytes.fill(0);
        std::hint::black_box(&self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_both_ways() {
        let secret = TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(secret.key(), b"12345678901234567890");
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn generated_secrets_are_20_random_bytes_and_round_trip() {
        let first = TotpSecret::generate();
        let second = TotpSecret::generate();
        assert_eq!(first.key().len(), GENERATED_SECRET_BYTES);
        assert_ne!(first, second, "two generated secrets collided");
        let encoded = first.to_base32();
        assert_eq!(encoded.len(), 32);
        assert_eq!(TotpSecret::from_base32(&encoded).unwrap(), first);
        assert_eq!(
            TotpSecret::from_base32(&encoded.to_ascii_lowercase()).unwrap(),
            first
        );
    }

    #[test]
    fn debug_never_prints_the_key() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let printed = format!("{secret:?}");
        assert_eq!(printed, "TotpSecret(<secret>)");
        assert!(!printed.contains("GEZDGNBV"));
        assert!(!printed.contains("49, 50"), "no raw bytes either");
    }

    #[test]
    fn refuses_bad_secrets() {
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBVGY3TQOJQ"),
            Err(MfaError::InvalidSecret("shorter than 128 bits")),
        );
        assert!(matches!(
            TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ!"),
            Err(MfaError::InvalidSecret(_))
        ));
        assert!(TotpSecret::from_bytes(vec![7; MAX_SECRET_BYTES + 1]).is_err());
        assert!(TotpSecret::from_bytes(vec![7; MAX_SECRET_BYTES]).is_ok());
        assert!(TotpSecret::from_base32("").is_err());
    }
}
