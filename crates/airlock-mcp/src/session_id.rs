//! `Mcp-Session-Id` values any replica can verify: when it was issued, a
//! random nonce and an HMAC-SHA256 over both and the identity, keyed with
//! a key derived from the vault's master key (which every replica of one
//! store shares). No session state is kept, on a replica or in the store:
//! an id only says "this identity initialized, not long ago", so a stolen
//! id is useless without the identity's own token, an id is refused for
//! any other identity, an altered one fails its tag, and one older than
//! [`SESSION_LIFETIME`] (or issued in the future) is refused: the client
//! initializes again, as the transport specifies for an unknown session.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long an id is honoured after it was issued.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Clock difference between replicas tolerated for an id from the future.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Issues and verifies session ids.
pub struct SessionIds {
    key: [u8; 32],
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

impl SessionIds {
    /// Ids keyed with `key` (`MasterKey::derive_key("mcp-session")`).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, issued: &str, nonce: &str, identity: &str) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(b"airlock-mcp-session-v2\0");
        mac.update(issued.as_bytes());
        mac.update(b"\0");
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(identity.as_bytes());
        Some(mac)
    }

    /// A new id for `identity` (visible ASCII, as the specification asks).
    pub fn issue(&self, identity: &str) -> String {
        self.issue_at(identity, now_unix())
    }

    fn issue_at(&self, identity: &str, issued: u64) -> String {
        let issued = issued.to_string();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let tag = self
            .mac(&issued, &nonce, identity)
            .map(|mac| hex::encode(mac.finalize().into_bytes()))
            .unwrap_or_default();
        format!("{issued}.{nonce}.{tag}")
    }

    /// True when `id` was issued to `identity` by a replica with this key,
    /// within [`SESSION_LIFETIME`].
    pub fn verify(&self, id: &str, identity: &str) -> bool {
        self.verify_at(id, identity, now_unix())
    }

    fn verify_at(&self, id: &str, identity: &str, now: u64) -> bool {
        let mut parts = id.splitn(3, '.');
        let (Some(issued), Some(nonce), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(issued_at) = issued.parse::<u64>() else {
            return false;
        };
        let fresh = issued_at <= now.saturating_add(CLOCK_SKEW.as_secs())
            && now.saturating_sub(issued_at) <= SESSION_LIFETIME.as_secs();
        let (Ok(tag), Some(mac)) = (hex::decode(tag), self.mac(issued, nonce, identity)) else {
            return false;
        };
        nonce.len() == 32 && mac.verify_slice(&tag).is_ok() && fresh
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
        let (prefix, _) = id.rsplit_once('.').unwrap_or_default();
        assert!(!ids.verify(&format!("{prefix}.00"), "agent-7"));
        assert!(!ids.verify("garbage", "agent-7"));
        assert!(!ids.verify("", "agent-7"));
        assert!(id.bytes().all(|byte| (0x21..=0x7e).contains(&byte)));
    }

    #[test]
    fn ids_expire_and_their_issue_time_cannot_be_altered() {
        let ids = SessionIds::new([7; 32]);
        let now = 1_800_000_000;
        let id = ids.issue_at("agent-7", now);
        assert!(ids.verify_at(&id, "agent-7", now + 3600));
        assert!(!ids.verify_at(&id, "agent-7", now + SESSION_LIFETIME.as_secs() + 1));
        assert!(
            !ids.verify_at(&id, "agent-7", now - 3600),
            "from the future"
        );
        // Moving the issue time forward breaks the tag.
        let (_, rest) = id.split_once('.').unwrap();
        let younger = format!("{}.{rest}", now + 3600);
        assert!(!ids.verify_at(&younger, "agent-7", now + 3600));
        // The id of the earlier format (no issue time) is refused.
        assert!(!ids.verify(rest, "agent-7"));
    }
}
