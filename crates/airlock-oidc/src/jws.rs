//! Splitting a JWS compact token (`header.payload.signature`) into its typed
//! parts. Pure: no keys, no clocks, no I/O.
//!
//! Nothing here trusts the token: the header and claims it returns are
//! *unverified* until [`crate::keys`] checks the signature over
//! [`CompactJws::signing_input`]. Header parameters that would make airlock
//! fetch or accept keys named by the token itself (`jku`, `x5u`, `jwk`,
//! `x5c`) are never read, and any `crit` extension is refused because airlock
//! understands none.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::OidcError;

/// Longest token accepted, in bytes. Real access tokens are 1–4 KiB; the
/// bound keeps hostile input from costing parse time and memory.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The JOSE header fields airlock reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoseHeader {
    /// `alg`, exactly as sent (compared case-sensitively).
    pub algorithm: String,
    /// `kid`, when present.
    pub key_id: Option<String>,
    /// `typ`, when present.
    pub token_type: Option<String>,
}

/// A token split into its parts, signature not yet checked.
#[derive(Debug)]
pub(crate) struct CompactJws<'a> {
    /// `base64url(header) "." base64url(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    pub header: JoseHeader,
    /// The claims object. Unverified.
    pub claims: Map<String, Value>,
    pub signature: Vec<u8>,
}

/// Cheap shape check: three dot-separated base64url segments (the signature
/// may be empty, so `alg: none` tokens still reach the validator and get a
/// precise refusal). Does not decode anything.
pub fn looks_like_jwt(token: &str) -> bool {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return false;
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return false;
    };
    !header.is_empty()
        && !payload.is_empty()
        && [header, payload, signature]
            .iter()
            .all(|segment| segment.bytes().all(is_base64url_byte))
}

fn is_base64url_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// Splits and decodes a compact JWS. Errors never include token text.
pub(crate) fn parse(token: &str) -> Result<CompactJws<'_>, OidcError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OidcError::malformed(format!(
            "token is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    if !looks_like_jwt(token) {
        return Err(OidcError::malformed(
            "not a JWT (expected three base64url segments separated by dots)",
        ));
    }
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| OidcError::malformed("missing signature segment"))?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or_else(|| OidcError::malformed("missing payload segment"))?;

    let header = parse_header(&decode_json_object(header, "header")?)?;
    let claims = decode_json_object(payload, "payload")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| OidcError::malformed("signature is not valid base64url"))?;

    Ok(CompactJws {
        signing_input,
        header,
        claims,
        signature,
    })
}

fn decode_json_object(segment: &str, what: &str) -> Result<Map<String, Value>, OidcError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| OidcError::malformed(format!("{what} is not valid base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(OidcError::malformed(format!("{what} is not a JSON object"))),
        Err(_) => Err(OidcError::malformed(format!("{what} is not valid JSON"))),
    }
}

fn parse_header(header: &Map<String, Value>) -> Result<JoseHeader, OidcError> {
    let algorithm = match header.get("alg") {
        Some(Value::String(algorithm)) => algorithm.clone(),
        Some(_) => return Err(OidcError::malformed("header `alg` is not a string")),
        None => return Err(OidcError::malformed("header has no `alg`")),
    };
    let key_id = optional_string(header, "kid")?;
    let token_type = optional_string(header, "typ")?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: a recipient that does not understand a critical
        // extension must reject the token. airlock understands none.
        return Err(OidcError::malformed(
            "header has critical extensions (`crit`) airlock does not support",
        ));
    }
    if header.contains_key("enc") {
        return Err(OidcError::malformed(
            "encrypted tokens (JWE) are not supported",
        ));
    }
    Ok(JoseHeader {
        algorithm,
        key_id,
        token_type,
    })
}

fn optional_string(object: &Map<String, Value>, name: &str) -> Result<Option<String>, OidcError> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(OidcError::malformed(format!(
            "header `{name}` is not a string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str, payload: &str, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            segment(header),
            segment(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    #[test]
    fn looks_like_jwt_table() {
        let good = token(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#, b"sig");
        let table: [(&str, bool); 11] = [
            (&good, true),
            ("eyJh.eyJz.", true),
            ("a.b.c", true),
            ("a.b", false),
            ("a.b.c.d", false),
            (".b.c", false),
            ("a..c", false),
            ("a.b.c=", false),
            ("a.b+.c", false),
            ("", false),
            ("alk_3f9c2d", false),
        ];
        for (text, expected) in table {
            assert_eq!(looks_like_jwt(text), expected, "{text}");
        }
        let huge = format!("a.{}.c", "b".repeat(MAX_TOKEN_BYTES));
        assert!(!looks_like_jwt(&huge));
    }

    #[test]
    fn parse_splits_header_claims_and_signature() {
        let text = token(
            r#"{"alg":"ES256","kid":"k1","typ":"at+jwt","jku":"https://evil.example/jwks"}"#,
            r#"{"sub":"agent-7","aud":["airlock"]}"#,
            &[1, 2, 3],
        );
        let jws = parse(&text).unwrap();
        assert_eq!(jws.header.algorithm, "ES256");
        assert_eq!(jws.header.key_id.as_deref(), Some("k1"));
        assert_eq!(jws.header.token_type.as_deref(), Some("at+jwt"));
        assert_eq!(jws.claims["sub"], "agent-7");
        assert_eq!(jws.signature, vec![1, 2, 3]);
        let (input, _) = text.rsplit_once('.').unwrap();
        assert_eq!(jws.signing_input, input);
    }

    #[test]
    fn parse_refuses_malformed_tokens_without_echoing_them() {
        let secretish = "c2VjcmV0LXBheWxvYWQ";
        let cases = [
            format!("{secretish}.{secretish}"),
            format!("{}.{secretish}.", segment("[1]")),
            format!("{}.{secretish}.", segment("{not json")),
            format!("{}.{}.", segment(r#"{"kid":"x"}"#), segment("{}")),
            format!("{}.{}.", segment(r#"{"alg":1}"#), segment("{}")),
            format!(
                "{}.{}.",
                segment(r#"{"alg":"RS256","kid":7}"#),
                segment("{}")
            ),
            format!(
                "{}.{}.",
                segment(r#"{"alg":"RS256","crit":["exp"]}"#),
                segment("{}")
            ),
            format!(
                "{}.{}.",
                segment(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
                segment("{}")
            ),
            format!("{}.{}.", segment(r#"{"alg":"RS256"}"#), segment("\"str\"")),
            // Non-canonical base64url (trailing bits set) is refused.
            format!("{}.{}.AB", segment(r#"{"alg":"RS256"}"#), segment("{}")),
        ];
        for case in cases {
            let error = parse(&case).unwrap_err();
            assert!(
                matches!(error, OidcError::Malformed { .. }),
                "{case}: {error}"
            );
            assert!(!error.to_string().contains(secretish), "{error}");
        }
    }

    #[test]
    fn alg_none_parses_so_it_can_be_refused_by_name() {
        let text = format!(
            "{}.{}.",
            segment(r#"{"alg":"none"}"#),
            segment(r#"{"sub":"a"}"#)
        );
        let jws = parse(&text).unwrap();
        assert_eq!(jws.header.algorithm, "none");
        assert!(jws.signature.is_empty());
    }
}
