//! `Mcp-Session-Id` values any replica can verify: a random nonce and an
//! HMAC-SHA256 over it and the identity, keyed with a key derived from the
//! vault's master key (which every replica of one store shares). No session
//! state is kept: an id only says "this identity initialized", so a stolen
//! id is useless without the identity's own token, and an id is refused
//! for any other identity.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Issues and verifies session ids.
pub struct SessionIds {
    key: [u8; 32],
}

impl SessionIds {
    /// Ids keyed with `key` (`MasterKey::derive_key("mcp-session")`).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, nonce: &str, identity: &str) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(b"airlock-mcp-session\0");
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(identity.as_bytes());
        Some(mac)
    }

    /// A new id for `identity` (visible ASCII, as the specification asks).
    pub fn issue(&self, identity: &str) -> String {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let tag = self
            .mac(&nonce, identity)
            .map(|mac| hex::encode(mac.finalize().into_bytes()))
            .unwrap_or_default();
        format!("{nonce}.{tag}")
    }

    /// True when `id` was issued to `identity` by a replica with this key.
    pub fn verify(&self, id: &str, identity: &str) -> bool {
        let Some((nonce, tag)) = id.split_once('.') else {
            return false;
        };
        let (Ok(tag), Some(mac)) = (hex::decode(tag), self.mac(nonce, identity)) else {
            return false;
        };
        nonce.len() == 32 && mac.verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_verify_for_their_identity_and_key_only() {
        let ids = SessionIds::new([7; 32]);
        let id = ids.issue("agent-7");
        assert!(ids.verify(&id, "agent-7"));
        assert!(
            SessionIds::new([7; 32]).verify(&id, "agent-7"),
            "another replica"
        );
        assert!(!ids.verify(&id, "agent-8"));
        assert!(!SessionIds::new([8; 32]).verify(&id, "agent-7"));
        let (nonce, _) = id.split_once('.').unwrap_or_default();
        assert!(!ids.verify(&format!("{nonce}.00"), "agent-7"));
        assert!(!ids.verify("garbage", "agent-7"));
        assert!(!ids.verify("", "agent-7"));
        assert!(id.bytes().all(|byte| (0x21..=0x7e).contains(&byte)));
    }
}
