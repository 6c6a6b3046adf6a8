//! Authentication: the plugins' response formulas (scrambles, MariaDB's
//! Ed25519 signature) and the packets of the auth exchange
//! (AuthSwitchRequest, AuthMoreData, caching_sha2_password's one-byte
//! signals). The login state machine in [`crate::login`] strings them
//! together; the formulas are also what a test or the listener checks.
//!
//! Architecture invariant: no function here logs or formats a password;
//! responses are derived values, never the password itself, except for
//! the cleartext forms, which [`crate::login`] sends only over TLS.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

use crate::buf::{check_no_nul, put_nul_bytes, Reader};
use crate::generic::{EOF_HEADER, ERR_HEADER, OK_HEADER};
use crate::{Capabilities, ErrPacket, MySqlCodecError, OkPacket};

/// `mysql_native_password`: SHA-1 challenge–response.
pub const MYSQL_NATIVE_PASSWORD: &str = "mysql_native_password";
/// `caching_sha2_password`: MySQL 8's default.
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
/// `sha256_password`: RSA or TLS, no cache.
pub const SHA256_PASSWORD: &str = "sha256_password";
/// `client_ed25519`: MariaDB's Ed25519 signature of the scramble.
pub const CLIENT_ED25519: &str = "client_ed25519";
/// `mysql_clear_password`: the password itself (TLS only).
pub const MYSQL_CLEAR_PASSWORD: &str = "mysql_clear_password";

/// First byte of an AuthMoreData packet.
pub const AUTH_MORE_DATA_HEADER: u8 = 0x01;
/// caching_sha2_password, client → server: send me your RSA public key.
pub const CACHING_SHA2_REQUEST_PUBLIC_KEY: u8 = 0x02;
/// sha256_password, client → server: send me your RSA public key.
pub const SHA256_REQUEST_PUBLIC_KEY: u8 = 0x01;
/// caching_sha2_password, server → client (in AuthMoreData): the cached
/// hash matched, an OK follows.
pub const CACHING_SHA2_FAST_AUTH_SUCCESS: u8 = 0x03;
/// caching_sha2_password, server → client (in AuthMoreData): send the
/// password (over TLS) or the RSA-encrypted password.
pub const CACHING_SHA2_PERFORM_FULL_AUTHENTICATION: u8 = 0x04;

/// `mysql_native_password`:
/// `SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))`, empty for an
/// empty password. `nonce` is the 20-byte scramble.
pub fn native_password_scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1: [u8; 20] = Sha1::digest(password).into();
    let stage2: [u8; 20] = Sha1::digest(stage1).into();
    let mut hasher = Sha1::new();
    hasher.update(nonce);
    hasher.update(stage2);
    let mask: [u8; 20] = hasher.finalize().into();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// Checks a `mysql_native_password` response against the stored
/// `SHA1(SHA1(password))` (as `mysql.user` holds it), for a listener.
pub fn native_password_verify(stage2: &[u8; 20], nonce: &[u8], response: &[u8]) -> bool {
    let mut hasher = Sha1::new();
    hasher.update(nonce);
    hasher.update(stage2);
    let mask: [u8; 20] = hasher.finalize().into();
    if response.len() != 20 {
        return false;
    }
    let stage1: Vec<u8> = response
        .iter()
        .zip(mask.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    let candidate: [u8; 20] = Sha1::digest(&stage1).into();
    // Constant-time comparison: the difference accumulates over all bytes.
    candidate
        .iter()
        .zip(stage2.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// `caching_sha2_password` fast path:
/// `SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)`, empty
/// for an empty password.
pub fn caching_sha2_scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let digest1: [u8; 32] = Sha256::digest(password).into();
    let digest2: [u8; 32] = Sha256::digest(digest1).into();
    let mut hasher = Sha256::new();
    hasher.update(digest2);
    hasher.update(nonce);
    let digest3: [u8; 32] = hasher.finalize().into();
    digest1
        .iter()
        .zip(digest3.iter())
        .map(|(a, b)| a ^ b)
        .collect()
}

/// What full authentication RSA-encrypts: `(password + NUL) XOR nonce`,
/// the nonce repeated as needed.
pub fn xor_password_with_nonce(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut bytes = password.to_vec();
    bytes.push(0);
    if nonce.is_empty() {
        return bytes;
    }
    for (byte, key) in bytes.iter_mut().zip(nonce.iter().cycle()) {
        *byte ^= key;
    }
    bytes
}

/// MariaDB `client_ed25519`: an Ed25519 signature of `message` (the
/// 32-byte scramble) whose expanded secret key is `SHA-512(password)` —
/// standard Ed25519 with the password in place of the 32-byte seed, so a
/// password that is a 32-byte seed signs exactly as RFC 8032 does.
pub fn ed25519_signature(password: &[u8], message: &[u8]) -> [u8; 64] {
    let expanded: [u8; 64] = Sha512::digest(password).into();
    let mut lower = [0u8; 32];
    let mut upper = [0u8; 32];
    for (index, byte) in expanded.iter().enumerate() {
        if let Some(slot) = lower.get_mut(index) {
            *slot = *byte;
        } else if let Some(slot) = upper.get_mut(index - 32) {
            *slot = *byte;
        }
    }
    // Clamping as RFC 8032 §5.1.5 step 2.
    if let Some(first) = lower.first_mut() {
        *first &= 248;
    }
    if let Some(last) = lower.last_mut() {
        *last &= 127;
        *last |= 64;
    }
    let secret = Scalar::from_bytes_mod_order(lower);
    let public = EdwardsPoint::mul_base(&secret).compress();
    let nonce = {
        let mut hasher = Sha512::new();
        hasher.update(upper);
        hasher.update(message);
        Scalar::from_bytes_mod_order_wide(&hasher.finalize().into())
    };
    let commitment = EdwardsPoint::mul_base(&nonce).compress();
    let challenge = {
        let mut hasher = Sha512::new();
        hasher.update(commitment.as_bytes());
        hasher.update(public.as_bytes());
        hasher.update(message);
        Scalar::from_bytes_mod_order_wide(&hasher.finalize().into())
    };
    let response = nonce + challenge * secret;
    let mut signature = [0u8; 64];
    for (slot, byte) in signature.iter_mut().zip(
        commitment
            .as_bytes()
            .iter()
            .chain(response.as_bytes().iter()),
    ) {
        *slot = *byte;
    }
    signature
}

/// The server asks the client to continue with another plugin.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest {
    pub plugin_name: String,
    /// The plugin's data as sent: usually a fresh 20-byte scramble and its
    /// NUL terminator; MariaDB's ed25519 sends a 32-byte nonce.
    pub plugin_data: Vec<u8>,
}

impl std::fmt::Debug for AuthSwitchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSwitchRequest")
            .field("plugin_name", &self.plugin_name)
            .field("plugin_data_len", &self.plugin_data.len())
            .finish()
    }
}

impl AuthSwitchRequest {
    /// Decodes `0xFE plugin-name NUL plugin-data`. The pre-4.1 "old
    /// password" request (a lone `0xFE`) is refused.
    pub fn decode(payload: &[u8]) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "auth switch request");
        let header = reader.u8()?;
        if header != EOF_HEADER {
            return Err(MySqlCodecError::Unexpected {
                what: "auth switch request",
                header,
            });
        }
        if reader.is_empty() {
            return Err(MySqlCodecError::Unsupported {
                what: "old password authentication",
            });
        }
        let plugin_name = String::from_utf8_lossy(reader.nul_or_eof_bytes()).into_owned();
        // Kept whole: a 20-byte scramble comes with a NUL terminator, but
        // MariaDB's 32-byte ed25519 nonce comes without one and may end in
        // a zero byte. Each plugin takes the length it uses.
        let plugin_data = reader.rest().to_vec();
        Ok(Self {
            plugin_name,
            plugin_data,
        })
    }

    /// Encodes; the plugin data goes as given (a listener sending a
    /// 20-byte scramble appends the NUL terminator clients expect).
    pub fn encode(&self) -> Result<Vec<u8>, MySqlCodecError> {
        check_no_nul(self.plugin_name.as_bytes(), "plugin name")?;
        let mut out = vec![EOF_HEADER];
        put_nul_bytes(&mut out, self.plugin_name.as_bytes());
        out.extend_from_slice(&self.plugin_data);
        Ok(out)
    }
}

/// Decodes AuthMoreData (`0x01` + data) and returns the data.
pub fn decode_auth_more_data(payload: &[u8]) -> Result<&[u8], MySqlCodecError> {
    match payload.split_first() {
        Some((&AUTH_MORE_DATA_HEADER, data)) => Ok(data),
        Some((&header, _)) => Err(MySqlCodecError::Unexpected {
            what: "auth more data",
            header,
        }),
        None => Err(MySqlCodecError::Truncated {
            what: "auth more data",
        }),
    }
}

/// Encodes AuthMoreData.
pub fn encode_auth_more_data(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + data.len());
    out.push(AUTH_MORE_DATA_HEADER);
    out.extend_from_slice(data);
    out
}

/// A server packet during the auth exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthReply {
    Ok(OkPacket),
    Err(ErrPacket),
    Switch(AuthSwitchRequest),
    /// AuthMoreData's payload (after the `0x01`).
    MoreData(Vec<u8>),
}

/// Decodes a server packet of the auth exchange by its first byte.
pub fn decode_auth_reply(
    payload: &[u8],
    capabilities: Capabilities,
) -> Result<AuthReply, MySqlCodecError> {
    match payload.first().copied() {
        Some(OK_HEADER) => OkPacket::decode(payload, capabilities).map(AuthReply::Ok),
        Some(ERR_HEADER) => ErrPacket::decode(payload).map(AuthReply::Err),
        Some(EOF_HEADER) => AuthSwitchRequest::decode(payload).map(AuthReply::Switch),
        Some(AUTH_MORE_DATA_HEADER) => {
            decode_auth_more_data(payload).map(|data| AuthReply::MoreData(data.to_vec()))
        }
        Some(header) => Err(MySqlCodecError::Unexpected {
            what: "auth reply",
            header,
        }),
        None => Err(MySqlCodecError::Truncated { what: "auth reply" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn native_password_matches_the_formula_and_verifies() {
        let nonce = b"abcdefghijklmnopqrst";
        let response = native_password_scramble(b"secret", nonce);
        let stage1 = Sha1::digest(b"secret");
        let stage2: [u8; 20] = Sha1::digest(stage1).into();
        let mask = Sha1::digest([&nonce[..], &stage2[..]].concat());
        let expected: Vec<u8> = stage1.iter().zip(mask).map(|(a, b)| a ^ b).collect();
        assert_eq!(response, expected);
        assert!(native_password_verify(&stage2, nonce, &response));
        assert!(!native_password_verify(
            &stage2,
            b"abcdefghijklmnopqrsu",
            &response
        ));
        assert!(native_password_scramble(b"", nonce).is_empty());
    }

    #[test]
    fn ed25519_with_a_seed_as_password_is_rfc8032() {
        // RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let signature = ed25519_signature(&seed, b"");
        assert_eq!(
            signature.to_vec(),
            hex(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                 5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            )
        );
        let seed = hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        assert_eq!(
            ed25519_signature(&seed, &[0x72]).to_vec(),
            hex(
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
                 085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
            )
        );
    }

    #[test]
    fn xor_cycles_the_nonce_and_appends_nul() {
        let nonce = [0x01, 0x02];
        assert_eq!(
            xor_password_with_nonce(b"abc", &nonce),
            vec![b'a' ^ 1, b'b' ^ 2, b'c' ^ 1, 2]
        );
    }

    #[test]
    fn auth_switch_and_more_data() {
        let bytes = b"\xfemysql_native_password\0abcdefghijklmnopqrst\0";
        let switch = AuthSwitchRequest::decode(bytes).unwrap();
        assert_eq!(switch.plugin_name, MYSQL_NATIVE_PASSWORD);
        assert_eq!(switch.plugin_data, b"abcdefghijklmnopqrst\0");
        assert_eq!(switch.encode().unwrap(), bytes);
        assert!(matches!(
            AuthSwitchRequest::decode(b"\xfe"),
            Err(MySqlCodecError::Unsupported { .. })
        ));
        assert_eq!(
            decode_auth_reply(b"\x01\x03", Capabilities::PROTOCOL_41).unwrap(),
            AuthReply::MoreData(vec![CACHING_SHA2_FAST_AUTH_SUCCESS])
        );
        assert_eq!(encode_auth_more_data(&[4]), vec![1, 4]);
        assert!(decode_auth_reply(b"\x05", Capabilities::PROTOCOL_41).is_err());
        assert!(matches!(
            decode_auth_reply(b"\xff\x15\x04#28000denied", Capabilities::PROTOCOL_41),
            Ok(AuthReply::Err(_))
        ));
    }
}
