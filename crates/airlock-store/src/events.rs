//! The append-only event log and its hash chain.
//!
//! Each event commits to the previous event's hash, so editing, deleting or
//! reordering any stored event breaks the chain from that point on. The hash
//! covers the event id, timestamp, kind, session, identity and JSON data.

use serde::{Deserialize, Serialize};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Dotted kind: `session.start`, `auth.failure`, `command` …
    pub kind: String,
    pub session_id: Option<String>,
    pub identity: Option<String>,
    /// Event payload. Must hold no secret and only masked data.
    pub data: EventData,
}

/// An event's payload, already serialized as a JSON object.
///
/// Sessions serialize their events themselves, concurrently, so the single
/// writer that extends the chain only hashes and stores text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData(String);

impl EventData {
    /// Serializes `value`. A value that cannot be serialized (a map with
    /// non-string keys) is stored as the JSON string of its debug form
    /// rather than lost.
    pub fn from_serialize<T: Serialize + std::fmt::Debug>(value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(text) => Self(text),
            Err(_) => Self(serde_json::Value::String(format!("{value:?}")).to_string()),
        }
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<serde_json::Value> for EventData {
    fn from(value: serde_json::Value) -> Self {
        Self(value.to_string())
    }
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events with a larger id.
    pub after_id: i64,
    /// Only events at or after this time (Unix microseconds).
    pub since_micros: Option<i64>,
    /// Only events of this session.
    pub session_id: Option<String>,
    /// Only events of these kinds.
    pub kinds: Vec<String>,
    /// Only events of this identity.
    pub identity: Option<String>,
    /// At most this many (oldest first).
    pub limit: i64,
}

/// A stored event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: i64,
    pub ts_micros: i64,
    pub kind: String,
    pub session_id: Option<String>,
    pub identity: Option<String>,
    pub data: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The chained hash of one event, hex-encoded: HMAC-SHA-256 under the chain
/// key when there is one (so the chain cannot be recomputed by someone who
/// can write the store but does not hold the key), plain SHA-256 otherwise.
#[allow(clippy::too_many_arguments)] // the event's fields, hashed in order
pub fn event_hash(
    key: Option<&[u8; 32]>,
    prev_hash: &str,
    id: i64,
    ts_micros: i64,
    kind: &str,
    session_id: Option<&str>,
    identity: Option<&str>,
    data: &str,
) -> String {
    let key = key.map(|key| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key));
    chain_hash(
        key.as_ref(),
        prev_hash,
        id,
        ts_micros,
        kind,
        session_id,
        identity,
        data,
    )
}

/// [`event_hash`] with the HMAC key already scheduled (the store keeps one
/// per connection instead of rebuilding it for every event).
#[allow(clippy::too_many_arguments)] // the event's fields, hashed in order
pub(crate) fn chain_hash(
    key: Option<&ring::hmac::Key>,
    prev_hash: &str,
    id: i64,
    ts_micros: i64,
    kind: &str,
    session_id: Option<&str>,
    identity: Option<&str>,
    data: &str,
) -> String {
    let id = id.to_string();
    let ts = ts_micros.to_string();
    let parts = [
        prev_hash,
        id.as_str(),
        ts.as_str(),
        kind,
        session_id.unwrap_or(""),
        identity.unwrap_or(""),
        data,
    ];
    // Length-prefix every part so no two field splits hash alike. The parts
    // are laid out in one buffer and hashed in one call: `ring`'s streaming
    // `update` costs far more per call than per byte, and this runs for
    // every recorded event.
    let mut message = Vec::with_capacity(parts.iter().map(|part| part.len() + 8).sum());
    for part in parts {
        message.extend_from_slice(&(part.len() as u64).to_be_bytes());
        message.extend_from_slice(part.as_bytes());
    }
    let digest = match key {
        Some(key) => hex::encode(ring::hmac::sign(key, &message).as_ref()),
        None => hex::encode(ring::digest::digest(&ring::digest::SHA256, &message).as_ref()),
    };
    digest
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    /// True when every link holds.
    pub ok: bool,
    /// Events checked.
    pub events_checked: u64,
    /// The first event whose link is broken, and why.
    pub first_broken: Option<BrokenLink>,
    /// The pruning checkpoint the walk started from, if any.
    pub checkpoint_through_id: Option<i64>,
    /// Id of the newest event checked.
    pub last_id: Option<i64>,
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BrokenLink {
    pub event_id: i64,
    pub problem: String,
}

/// What a pruning run did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PruneReport {
    pub pruned_events: u64,
    /// The newest pruned event; its hash is kept as the new chain start.
    pub through_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    /// The chain's hashes are standard SHA-256 / HMAC-SHA-256 over the
    /// length-prefixed fields: stores written before keep verifying.
    #[test]
    fn hashes_match_a_reference_implementation() {
        let parts = [
            "prev",
            "7",
            "1234",
            "command",
            "s-1",
            "agent-7",
            "{\"n\":1}",
        ];
        let mut reference = Sha256::new();
        let mut mac = Hmac::<Sha256>::new_from_slice(&[3; 32]).unwrap();
        for part in parts {
            reference.update((part.len() as u64).to_be_bytes());
            reference.update(part.as_bytes());
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        let plain = event_hash(
            None,
            "prev",
            7,
            1234,
            "command",
            Some("s-1"),
            Some("agent-7"),
            "{\"n\":1}",
        );
        let keyed = event_hash(
            Some(&[3; 32]),
            "prev",
            7,
            1234,
            "command",
            Some("s-1"),
            Some("agent-7"),
            "{\"n\":1}",
        );
        assert_eq!(plain, hex::encode(reference.finalize()));
        assert_eq!(keyed, hex::encode(mac.finalize().into_bytes()));
    }
}
