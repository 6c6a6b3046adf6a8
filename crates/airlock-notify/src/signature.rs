//! Request signing: `X-Airlock-Signature: t=<unix>,v1=<hex>` where the hex is
//! HMAC-SHA256 over `"<t>.<body>"` with the webhook's key.
//!
//! The timestamp is inside the MAC so a receiver can refuse replays of an
//! old, validly signed notification ([`verify_signature`]'s tolerance);
//! the body is covered byte for byte, so a receiver must verify the raw body
//! before parsing it. Several `v1=` entries are accepted, for key rotation.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Airlock-Signature";
/// The header naming the event kind (`review.created`, ...).
pub const EVENT_HEADER: &str = "X-Airlock-Event";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `X-Airlock-Signature` value for `body` sent at `timestamp` (Unix
/// seconds). `None` only if HMAC refused the key, which it never does.
pub fn signature_header(secret: &[u8], timestamp: u64, body: &[u8]) -> Option<String> {
    let digest = mac(secret, timestamp, body)?.finalize().into_bytes();
    Some(format!("t={timestamp},v1={}", hex::encode(digest)))
}

/// Whether `header` is a valid signature of `body` under `secret`, made
/// within `tolerance_secs` of `now` (either direction, for clock skew).
///
/// Fails closed: a missing or malformed timestamp, no `v1` entry, bad hex
/// or a stale timestamp all give `false`. The MAC comparison is constant
/// time. Unknown `key=value` entries are ignored for forward compatibility.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    tolerance_secs: u64,
) -> bool {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return false;
        };
        match key {
            "t" => {
                if timestamp.is_some()
                    || value.is_empty()
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return false;
                }
                timestamp = value.parse::<u64>().ok();
                if timestamp.is_none() {
                    return false;
                }
            }
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if now.abs_diff(timestamp) > tolerance_secs {
        return false;
    }
    let Some(expected) = mac(secret, timestamp, body) else {
        return false;
    };
    candidates.into_iter().any(|candidate| {
        hex::decode(candidate)
            .map(|signature| expected.clone().verify_slice(&signature).is_ok())
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-0123456789abcdef";
    const BODY: &[u8] = br#"{"event":"review.created","id":"rv_1"}"#;

    #[test]
    fn known_vector() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key-key-key-key-
        let header = signature_header(b"key-key-key-key-", 1_700_000_000, br#"{"a":1}"#).unwrap();
        assert_eq!(
            header,
            "t=1700000000,v1=4e01f40043f67150589e4387b6ac7e86c5b5be468d36942e23a990f7573327e2"
        );
    }

    #[test]
    fn round_trip() {
        let header = signature_header(SECRET, 1_000, BODY).unwrap();
        assert!(header.starts_with("t=1000,v1="));
        assert_eq!(header.len(), "t=1000,v1=".len() + 64);
        assert!(verify_signature(SECRET, &header, BODY, 1_000, 300));
        assert!(
            verify_signature(SECRET, &header, BODY, 1_300, 300),
            "edge of tolerance"
        );
        assert!(
            verify_signature(SECRET, &header, BODY, 700, 300),
            "receiver clock behind"
        );
    }

    #[test]
    fn tampering_wrong_secret_and_staleness_fail() {
        let header = signature_header(SECRET, 1_000, BODY).unwrap();
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert!(
            !verify_signature(SECRET, &header, &tampered, 1_000, 300),
            "tampered body"
        );
        assert!(
            !verify_signature(b"another-secret-0123", &header, BODY, 1_000, 300),
            "wrong secret"
        );
        assert!(
            !verify_signature(SECRET, &header, BODY, 1_301, 300),
            "stale"
        );
        assert!(
            !verify_signature(SECRET, &header, BODY, 699, 300),
            "from the future"
        );
        let moved = header.replace("t=1000", "t=1001");
        assert!(
            !verify_signature(SECRET, &moved, BODY, 1_000, 300),
            "timestamp is signed"
        );
    }

    #[test]
    fn malformed_headers_fail_closed() {
        let header = signature_header(SECRET, 1_000, BODY).unwrap();
        let signature = header.split_once(",v1=").unwrap().1;
        for bad in [
            String::new(),
            format!("v1={signature}"),
            "t=1000".to_owned(),
            format!("t=,v1={signature}"),
            format!("t=-1000,v1={signature}"),
            format!("t=1000,t=1000,v1={signature}"),
            format!("t=1000,v1={}", &signature[..62]),
            format!("t=1000,v1=zz{}", &signature[2..]),
            format!("t=1000;v1={signature}"),
            format!("t=99999999999999999999999,v1={signature}"),
        ] {
            assert!(!verify_signature(SECRET, &bad, BODY, 1_000, 300), "{bad:?}");
        }
    }

    #[test]
    fn rotation_and_extensions() {
        let header = signature_header(SECRET, 1_000, BODY).unwrap();
        let signature = header.split_once(",v1=").unwrap().1;
        let rotated = format!("t=1000, v1={}, v1={signature}, v2=future", "00".repeat(32));
        assert!(verify_signature(SECRET, &rotated, BODY, 1_000, 300));
    }
}
