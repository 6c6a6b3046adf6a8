//! Provider signing keys: parsing a JWKS into [`PublicKey`]s, choosing the
//! key a token names, and verifying signatures with `ring`.
//!
//! Security reasoning lives here:
//! - A key verifies exactly one algorithm, derived from its own type (RSA →
//!   RS256, EC P-256 → ES256, OKP Ed25519 → EdDSA). The token's `alg` must
//!   equal it, so a token cannot pick how the key is interpreted (the classic
//!   "HS256 keyed with the RSA public key" confusion has no code path: there
//!   is no HMAC verification at all).
//! - A JWK that declares `alg`, `use` or `key_ops` is held to them.
//! - Symmetric (`oct`) keys in a JWKS are ignored: a public document cannot
//!   hold a secret.
//! - Keys named by the token (`jku`, `jwk`, `x5u`, `x5c`) are never used.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use crate::config::JwsAlgorithm;

/// Smallest RSA modulus accepted, in bits (ring refuses smaller ones too).
const MIN_RSA_BITS: usize = 2048;

/// One usable public signing key from a provider's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    /// `kid`, when the JWK has one.
    pub key_id: Option<String>,
    /// The one algorithm this key verifies, from its type.
    pub algorithm: JwsAlgorithm,
    /// `alg` as declared in the JWK, when present and different from
    /// [`Self::algorithm`]: the key then verifies nothing airlock supports.
    pub declared_other_algorithm: Option<String>,
    material: KeyMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyMaterial {
    /// Big-endian modulus (no leading zeros) and exponent.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// Uncompressed SEC1 point `04 || x || y`.
    P256 { point: Vec<u8> },
    /// The 32-byte public key.
    Ed25519 { public_key: Vec<u8> },
}

/// Why no key could be chosen for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySelectionError {
    /// No key with this `kid` (or, without a `kid`, none for the algorithm).
    NotFound,
    /// The named key exists but cannot verify this algorithm.
    AlgorithmMismatch(String),
}

/// Parses a JWKS document. Returns the usable keys and, for logging, why
/// each other key was skipped. Unusable keys are skipped rather than failing
/// the whole set, so one exotic key (an encryption key, a P-521 key) does not
/// lock out tokens signed with the others.
pub(crate) fn parse_jwks(document: &Value) -> Result<(Vec<PublicKey>, Vec<String>), String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "JWKS has no `keys` array".to_owned())?;
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        match key
            .as_object()
            .ok_or_else(|| "not an object".to_owned())
            .and_then(parse_jwk)
        {
            Ok(key) => usable.push(key),
            Err(reason) => skipped.push(format!("key {index}: {reason}")),
        }
    }
    Ok((usable, skipped))
}

fn parse_jwk(jwk: &Map<String, Value>) -> Result<PublicKey, String> {
    let text = |name: &str| -> Result<Option<&str>, String> {
        match jwk.get(name) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(format!("`{name}` is not a string")),
        }
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name)?.ok_or_else(|| format!("missing `{name}`"))?;
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| format!("`{name}` is not base64url"))
    };

    if let Some(key_use) = text("use")? {
        if key_use != "sig" {
            return Err(format!("`use` is {key_use:?}, not \"sig\""));
        }
    }
    if let Some(operations) = jwk.get("key_ops") {
        let verifies = operations
            .as_array()
            .is_some_and(|operations| operations.iter().any(|op| op == "verify"));
        if !verifies {
            return Err("`key_ops` does not include \"verify\"".to_owned());
        }
    }

    let kty = text("kty")?.ok_or_else(|| "missing `kty`".to_owned())?;
    let (algorithm, material) = match kty {
        "RSA" => {
            let modulus = strip_leading_zeros(bytes("n")?);
            let exponent = strip_leading_zeros(bytes("e")?);
            if modulus.len() * 8 < MIN_RSA_BITS {
                return Err(format!("RSA modulus shorter than {MIN_RSA_BITS} bits"));
            }
            if exponent.is_empty() {
                return Err("RSA exponent is zero".to_owned());
            }
            (JwsAlgorithm::RS256, KeyMaterial::Rsa { modulus, exponent })
        }
        "EC" => {
            let curve = text("crv")?.ok_or_else(|| "missing `crv`".to_owned())?;
            if curve != "P-256" {
                return Err(format!("unsupported EC curve {curve:?}"));
            }
            let x = bytes("x")?;
            let y = bytes("y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".to_owned());
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (JwsAlgorithm::ES256, KeyMaterial::P256 { point })
        }
        "OKP" => {
            let curve = text("crv")?.ok_or_else(|| "missing `crv`".to_owned())?;
            if curve != "Ed25519" {
                return Err(format!("unsupported OKP curve {curve:?}"));
            }
            let public_key = bytes("x")?;
            if public_key.len() != 32 {
                return Err("Ed25519 public key must be 32 bytes".to_owned());
            }
            (JwsAlgorithm::EdDSA, KeyMaterial::Ed25519 { public_key })
        }
        "oct" => return Err("symmetric key ignored".to_owned()),
        other => return Err(format!("unsupported key type {other:?}")),
    };
    let declared_other_algorithm = text("alg")?
        .filter(|declared| *declared != algorithm.as_str())
        .map(str::to_owned);
    Ok(PublicKey {
        key_id: text("kid")?.map(str::to_owned),
        algorithm,
        declared_other_algorithm,
        material,
    })
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|byte| **byte == 0).count();
    bytes.drain(..zeros);
    bytes
}

impl PublicKey {
    /// Whether this key may verify `algorithm`.
    fn verifies(&self, algorithm: JwsAlgorithm) -> bool {
        self.algorithm == algorithm && self.declared_other_algorithm.is_none()
    }

    /// Verifies `signature` over `message` with `algorithm`. False when the
    /// key cannot verify that algorithm, whatever the signature.
    pub fn verify(&self, algorithm: JwsAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.verifies(algorithm) {
            return false;
        }
        match (&self.material, algorithm) {
            (KeyMaterial::Rsa { modulus, exponent }, JwsAlgorithm::RS256) => {
                RsaPublicKeyComponents {
                    n: modulus.as_slice(),
                    e: exponent.as_slice(),
                }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok()
            }
            (KeyMaterial::P256 { point }, JwsAlgorithm::ES256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (KeyMaterial::Ed25519 { public_key }, JwsAlgorithm::EdDSA) => {
                UnparsedPublicKey::new(&signature::ED25519, public_key)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match &self.declared_other_algorithm {
            Some(declared) => format!("declared for {declared:?}"),
            None => format!("a key for {}", self.algorithm),
        }
    }
}

/// The keys that may verify a token with `algorithm` and optional `kid`.
///
/// With a `kid`: the keys carrying it that can verify `algorithm`; a `kid`
/// that names only keys of another type is an algorithm mismatch (the token
/// tries to reinterpret a key). Without a `kid` (providers with one key often
/// omit it): every key that can verify `algorithm`; the caller tries each,
/// which is safe because all of them are the provider's own keys.
pub(crate) fn candidate_keys<'k>(
    keys: &'k [PublicKey],
    algorithm: JwsAlgorithm,
    key_id: Option<&str>,
) -> Result<Vec<&'k PublicKey>, KeySelectionError> {
    let candidates: Vec<&PublicKey> = match key_id {
        Some(key_id) => {
            let named: Vec<&PublicKey> = keys
                .iter()
                .filter(|key| key.key_id.as_deref() == Some(key_id))
                .collect();
            let first = named.first().ok_or(KeySelectionError::NotFound)?;
            let usable: Vec<&PublicKey> = named
                .iter()
                .copied()
                .filter(|key| key.verifies(algorithm))
                .collect();
            if usable.is_empty() {
                return Err(KeySelectionError::AlgorithmMismatch(format!(
                    "the key the token names is {}",
                    first.describe()
                )));
            }
            usable
        }
        None => keys.iter().filter(|key| key.verifies(algorithm)).collect(),
    };
    if candidates.is_empty() {
        return Err(KeySelectionError::NotFound);
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn ed25519() -> (Ed25519KeyPair, Value) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(pair.public_key().as_ref())});
        (pair, jwk)
    }

    fn p256() -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let algorithm = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(algorithm, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(algorithm, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        (pair, jwk)
    }

    fn one_key(jwk: Value) -> PublicKey {
        let (keys, skipped) = parse_jwks(&json!({ "keys": [jwk] })).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        keys.into_iter().next().unwrap()
    }

    #[test]
    fn ed25519_and_p256_signatures_verify_and_tampering_fails() {
        let (ed_pair, ed_jwk) = ed25519();
        let ed_key = one_key(ed_jwk);
        let signature = ed_pair.sign(b"message");
        assert!(ed_key.verify(JwsAlgorithm::EdDSA, b"message", signature.as_ref()));
        assert!(!ed_key.verify(JwsAlgorithm::EdDSA, b"messagE", signature.as_ref()));
        assert!(!ed_key.verify(JwsAlgorithm::ES256, b"message", signature.as_ref()));

        let (ec_pair, ec_jwk) = p256();
        let ec_key = one_key(ec_jwk);
        let signature = ec_pair.sign(&SystemRandom::new(), b"message").unwrap();
        assert!(ec_key.verify(JwsAlgorithm::ES256, b"message", signature.as_ref()));
        assert!(!ec_key.verify(JwsAlgorithm::ES256, b"other", signature.as_ref()));
        assert!(!ec_key.verify(JwsAlgorithm::RS256, b"message", signature.as_ref()));
    }

    #[test]
    fn unusable_keys_are_skipped_with_a_reason() {
        let (_, ed_jwk) = ed25519();
        let mut encryption = ed_jwk.clone();
        encryption["use"] = json!("enc");
        let mut no_verify = ed_jwk.clone();
        no_verify["key_ops"] = json!(["sign"]);
        let small_rsa = json!({"kty": "RSA", "n": b64(&[0xc5; 128]), "e": "AQAB"});
        let document = json!({"keys": [
            ed_jwk,
            encryption,
            no_verify,
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "OKP", "crv": "X25519", "x": b64(&[0; 32])},
            small_rsa,
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            "not an object",
        ]});
        let (keys, skipped) = parse_jwks(&document).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(skipped.len(), 8, "{skipped:#?}");
        assert!(parse_jwks(&json!({"no": "keys"})).is_err());
    }

    #[test]
    fn rsa_modulus_leading_zero_is_tolerated() {
        let mut modulus = vec![0u8];
        modulus.extend_from_slice(&[0xc5; 256]);
        let key = one_key(json!({"kty": "RSA", "kid": "r", "n": b64(&modulus), "e": "AQAB"}));
        assert_eq!(key.algorithm, JwsAlgorithm::RS256);
        let KeyMaterial::Rsa { modulus, .. } = &key.material else {
            panic!("rsa expected");
        };
        assert_eq!(modulus.len(), 256);
    }

    #[test]
    fn key_selection_follows_kid_and_refuses_confusion() {
        let (_, mut ed_jwk) = ed25519();
        let (_, mut ec_jwk) = p256();
        ed_jwk["kid"] = json!("shared");
        ec_jwk["kid"] = json!("ec-1");
        let mut ec_declared_other = ec_jwk.clone();
        ec_declared_other["kid"] = json!("ec-384");
        ec_declared_other["alg"] = json!("ES384");
        let (keys, _) = parse_jwks(&json!({"keys": [ed_jwk, ec_jwk, ec_declared_other]})).unwrap();

        let chosen = candidate_keys(&keys, JwsAlgorithm::EdDSA, Some("shared")).unwrap();
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].algorithm, JwsAlgorithm::EdDSA);
        assert_eq!(
            candidate_keys(&keys, JwsAlgorithm::ES256, Some("nope")),
            Err(KeySelectionError::NotFound)
        );
        // RS256 naming the EC key: the key's type decides, not the token.
        assert!(matches!(
            candidate_keys(&keys, JwsAlgorithm::RS256, Some("ec-1")),
            Err(KeySelectionError::AlgorithmMismatch(reason)) if reason.contains("ES256")
        ));
        // A JWK that declares another algorithm verifies nothing we support.
        assert!(matches!(
            candidate_keys(&keys, JwsAlgorithm::ES256, Some("ec-384")),
            Err(KeySelectionError::AlgorithmMismatch(reason)) if reason.contains("ES384")
        ));
        // Without kid: every key of the right type, none of another.
        assert_eq!(
            candidate_keys(&keys, JwsAlgorithm::ES256, None)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            candidate_keys(&keys, JwsAlgorithm::RS256, None),
            Err(KeySelectionError::NotFound)
        );
        let (_, second_ed) = ed25519();
        let (mut two, _) = parse_jwks(&json!({"keys": [second_ed]})).unwrap();
        two.extend(keys);
        assert_eq!(
            candidate_keys(&two, JwsAlgorithm::EdDSA, None)
                .unwrap()
                .len(),
            2
        );
    }
}
