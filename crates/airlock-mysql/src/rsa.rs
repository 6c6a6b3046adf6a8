//! RSA public-key encryption of a password, as caching_sha2_password and
//! sha256_password do it on a connection without TLS: parse the server's
//! PEM public key (SubjectPublicKeyInfo or PKCS#1), pad with RSAES-OAEP
//! (SHA-1, MGF1-SHA-1, empty label; RFC 8017 §7.1.1), raise to the public
//! exponent.
//!
//! Only the public operation exists here: nothing in the gateway holds an
//! RSA private key. The codec has no entropy source, so the caller passes
//! the OAEP seed (20 random bytes).

use base64::Engine;
use num_bigint::BigUint;
use sha1::{Digest, Sha1};

use crate::MySqlCodecError;

/// SHA-1's output length, OAEP's `hLen`.
const HASH_LENGTH: usize = 20;
/// Smallest and largest modulus accepted, in bits.
const MIN_MODULUS_BITS: u64 = 1024;
const MAX_MODULUS_BITS: u64 = 8192;
/// Largest PEM document accepted.
const MAX_PEM_BYTES: usize = 16 * 1024;
/// DER of the rsaEncryption OID, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// An RSA public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    modulus: BigUint,
    exponent: BigUint,
}

fn bad_key() -> MySqlCodecError {
    MySqlCodecError::Malformed {
        what: "RSA public key",
    }
}

/// One DER element: (tag, contents, rest).
fn der_element(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), MySqlCodecError> {
    let (&tag, rest) = bytes.split_first().ok_or_else(bad_key)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad_key)?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(bad_key());
        }
        let mut length = 0usize;
        for _ in 0..count {
            let (&byte, tail) = rest.split_first().ok_or_else(bad_key)?;
            length = length << 8 | usize::from(byte);
            rest = tail;
        }
        length
    };
    if length > rest.len() {
        return Err(bad_key());
    }
    let (contents, rest) = rest.split_at(length);
    Ok((tag, contents, rest))
}

fn der_expect(bytes: &[u8], tag: u8) -> Result<(&[u8], &[u8]), MySqlCodecError> {
    let (found, contents, rest) = der_element(bytes)?;
    if found != tag {
        return Err(bad_key());
    }
    Ok((contents, rest))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OBJECT_IDENTIFIER: u8 = 0x06;

impl RsaPublicKey {
    /// Parses a PEM public key: `BEGIN PUBLIC KEY` (what MySQL sends) or
    /// `BEGIN RSA PUBLIC KEY`.
    pub fn from_pem(pem: &[u8]) -> Result<Self, MySqlCodecError> {
        if pem.len() > MAX_PEM_BYTES {
            return Err(bad_key());
        }
        let text = std::str::from_utf8(pem).map_err(|_| bad_key())?;
        let mut label = None;
        let mut body = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("-----BEGIN ") {
                label = Some(rest.trim_end_matches('-').to_owned());
            } else if line.starts_with("-----END ") {
                break;
            } else if label.is_some() {
                body.push_str(line);
            }
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| bad_key())?;
        match label.as_deref() {
            Some("PUBLIC KEY") => Self::from_spki_der(&der),
            Some("RSA PUBLIC KEY") => Self::from_pkcs1_der(&der),
            _ => Err(bad_key()),
        }
    }

    /// Parses a DER SubjectPublicKeyInfo holding an RSA key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, MySqlCodecError> {
        let (info, _) = der_expect(der, SEQUENCE)?;
        let (algorithm, rest) = der_expect(info, SEQUENCE)?;
        let (oid, _) = der_expect(algorithm, OBJECT_IDENTIFIER)?;
        if oid != RSA_ENCRYPTION_OID {
            return Err(MySqlCodecError::Unsupported {
                what: "public key algorithm",
            });
        }
        let (bits, _) = der_expect(rest, BIT_STRING)?;
        match bits.split_first() {
            Some((0, key)) => Self::from_pkcs1_der(key),
            _ => Err(bad_key()),
        }
    }

    /// Parses a DER PKCS#1 RSAPublicKey.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, MySqlCodecError> {
        let (key, _) = der_expect(der, SEQUENCE)?;
        let (modulus, rest) = der_expect(key, INTEGER)?;
        let (exponent, _) = der_expect(rest, INTEGER)?;
        let modulus = BigUint::from_bytes_be(modulus);
        let exponent = BigUint::from_bytes_be(exponent);
        let bits = modulus.bits();
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits)
            || exponent < BigUint::from(3u8)
            || exponent >= modulus
        {
            return Err(bad_key());
        }
        Ok(Self { modulus, exponent })
    }

    /// The modulus length in bytes (`k`), also the ciphertext's length.
    pub fn size(&self) -> usize {
        (self.modulus.bits() as usize).div_ceil(8)
    }

    /// RSAES-OAEP-ENCRYPT with SHA-1, MGF1-SHA-1 and an empty label.
    pub fn encrypt_oaep(
        &self,
        message: &[u8],
        seed: &[u8; HASH_LENGTH],
    ) -> Result<Vec<u8>, MySqlCodecError> {
        let k = self.size();
        let max = k.saturating_sub(2 * HASH_LENGTH + 2);
        if message.len() > max {
            return Err(MySqlCodecError::TooMany {
                what: "password bytes for the RSA key",
                count: message.len(),
                max,
            });
        }
        // DB = lHash || PS || 0x01 || M
        let db_length = k - HASH_LENGTH - 1;
        let mut db = Vec::with_capacity(db_length);
        db.extend_from_slice(&Sha1::digest(b""));
        db.resize(db_length - message.len() - 1, 0);
        db.push(0x01);
        db.extend_from_slice(message);
        xor_in_place(&mut db, &mgf1(seed, db_length));
        let mut masked_seed = seed.to_vec();
        xor_in_place(&mut masked_seed, &mgf1(&db, HASH_LENGTH));
        let mut encoded = Vec::with_capacity(k);
        encoded.push(0);
        encoded.extend_from_slice(&masked_seed);
        encoded.extend_from_slice(&db);
        let cipher = BigUint::from_bytes_be(&encoded).modpow(&self.exponent, &self.modulus);
        let digits = cipher.to_bytes_be();
        let mut out = vec![0u8; k.saturating_sub(digits.len())];
        out.extend_from_slice(&digits);
        Ok(out)
    }
}

fn xor_in_place(target: &mut [u8], mask: &[u8]) {
    for (byte, key) in target.iter_mut().zip(mask.iter()) {
        *byte ^= key;
    }
}

/// MGF1 with SHA-1 (RFC 8017 §B.2.1).
fn mgf1(seed: &[u8], length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(length + HASH_LENGTH);
    let mut counter = 0u32;
    while out.len() < length {
        let mut hasher = Sha1::new();
        hasher.update(seed);
        hasher.update(counter.to_be_bytes());
        out.extend_from_slice(&hasher.finalize());
        counter = counter.wrapping_add(1);
    }
    out.truncate(length);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mgf1_of_the_empty_seed() {
        // MGF1-SHA1("", 20) is SHA1(0x00000000).
        assert_eq!(mgf1(b"", 20), Sha1::digest([0u8; 4]).to_vec());
        assert_eq!(mgf1(b"x", 45).len(), 45);
    }

    #[test]
    fn refuses_bad_keys() {
        assert!(RsaPublicKey::from_pem(b"not a key").is_err());
        assert!(RsaPublicKey::from_pem(
            b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"
        )
        .is_err());
        assert!(RsaPublicKey::from_spki_der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
