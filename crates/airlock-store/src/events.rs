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

    /// Text known to be one JSON object, as this crate built it.
    pub(crate) fn from_json_text(text: String) -> Self {
        Self(text)
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

/// What one event's chained hash covers, in the order it is hashed.
#[derive(Debug, Clone, Copy)]
pub struct ChainLink<'a> {
    /// The previous event's hash (the genesis hash for the first).
    pub prev_hash: &'a str,
    pub id: i64,
    pub ts_micros: i64,
    pub kind: &'a str,
    pub session_id: Option<&'a str>,
    pub identity: Option<&'a str>,
    /// The event's JSON text.
    pub data: &'a str,
}

/// The chained hash of one event, hex-encoded: HMAC-SHA-256 under the chain
/// key when there is one (so the chain cannot be recomputed by someone who
/// can write the store but does not hold the key), plain SHA-256 otherwise.
pub fn event_hash(key: Option<&[u8; 32]>, link: &ChainLink<'_>) -> String {
    let key = key.map(|key| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key));
    ChainHasher::default().hash(key.as_ref(), link)
}

/// Computes chain hashes one after another with one message buffer: the
/// index thread hashes every recorded event, and building each message in
/// fresh allocations (decimal strings, the message, a hex string built
/// char by char) cost as much as the HMAC itself. Hashes exactly what
/// [`event_hash`] always hashed: each part length-prefixed (so no two field
/// splits hash alike) in one buffer, hashed in one call (`ring`'s streaming
/// `update` costs far more per call than per byte).
#[derive(Default)]
pub(crate) struct ChainHasher {
    message: Vec<u8>,
}

impl ChainHasher {
    /// The chained hash of one event, hex-encoded (see [`event_hash`]).
    pub(crate) fn hash(&mut self, key: Option<&ring::hmac::Key>, link: &ChainLink<'_>) -> String {
        let mut id_digits = [0u8; MAX_DECIMAL_DIGITS];
        let mut ts_digits = [0u8; MAX_DECIMAL_DIGITS];
        let parts: [&[u8]; 7] = [
            link.prev_hash.as_bytes(),
            decimal(link.id, &mut id_digits),
            decimal(link.ts_micros, &mut ts_digits),
            link.kind.as_bytes(),
            link.session_id.unwrap_or("").as_bytes(),
            link.identity.unwrap_or("").as_bytes(),
            link.data.as_bytes(),
        ];
        self.message.clear();
        self.message
            .reserve(parts.iter().map(|part| part.len() + 8).sum());
        for part in parts {
            self.message
                .extend_from_slice(&(part.len() as u64).to_be_bytes());
            self.message.extend_from_slice(part);
        }
        let mut hex = [0u8; 64];
        let encoded = match key {
            Some(key) => {
                hex::encode_to_slice(ring::hmac::sign(key, &self.message).as_ref(), &mut hex)
            }
            None => hex::encode_to_slice(
                ring::digest::digest(&ring::digest::SHA256, &self.message).as_ref(),
                &mut hex,
            ),
        };
        match encoded {
            // Hex digits are ASCII.
            Ok(()) => String::from_utf8_lossy(&hex).into_owned(),
            Err(_) => String::new(),
        }
    }
}

/// Digits (and sign) of the longest `i64`: `-9223372036854775808`.
const MAX_DECIMAL_DIGITS: usize = 20;

/// `value` in decimal, as `value.to_string()` writes it, in `buffer`.
fn decimal(value: i64, buffer: &mut [u8; MAX_DECIMAL_DIGITS]) -> &[u8] {
    let mut rest = value.unsigned_abs();
    let mut start = MAX_DECIMAL_DIGITS;
    loop {
        start -= 1;
        if let Some(digit) = buffer.get_mut(start) {
            // `rest % 10` is below 10.
            *digit = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        start -= 1;
        if let Some(sign) = buffer.get_mut(start) {
            *sign = b'-';
        }
    }
    buffer.get(start..).unwrap_or_default()
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

    /// Numbers are hashed as `to_string` writes them, at every length and
    /// sign.
    #[test]
    fn decimals_are_written_as_to_string_writes_them() {
        let mut buffer = [0u8; MAX_DECIMAL_DIGITS];
        for value in [
            0,
            7,
            -7,
            10,
            99,
            1_000,
            1_764_612_345_678_901,
            -1_764_612_345_678_901,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            assert_eq!(decimal(value, &mut buffer), value.to_string().as_bytes());
        }
    }

    /// One hasher reused for many events hashes each as a fresh one would.
    #[test]
    fn a_reused_hasher_hashes_each_event_alone() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[5; 32]);
        let mut hasher = ChainHasher::default();
        let long = "x".repeat(5_000);
        for (id, data) in [(1, long.as_str()), (2, "{}"), (3, "")] {
            for key in [None, Some(&key)] {
                let link = ChainLink {
                    prev_hash: "prev",
                    id,
                    ts_micros: -5,
                    kind: "k",
                    session_id: None,
                    identity: Some("i"),
                    data,
                };
                let reused = hasher.hash(key, &link);
                let fresh = ChainHasher::default().hash(key, &link);
                assert_eq!(reused, fresh);
                assert_eq!(reused.len(), 64);
            }
        }
    }

    fn reference_link() -> ChainLink<'static> {
        ChainLink {
            prev_hash: "prev",
            id: 7,
            ts_micros: 1234,
            kind: "command",
            session_id: Some("s-1"),
            identity: Some("agent-7"),
            data: "{\"n\":1}",
        }
    }

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
        let plain = event_hash(None, &reference_link());
        let keyed = event_hash(Some(&[3; 32]), &reference_link());
        assert_eq!(plain, hex::encode(reference.finalize()));
        assert_eq!(keyed, hex::encode(mac.finalize().into_bytes()));
    }
}
