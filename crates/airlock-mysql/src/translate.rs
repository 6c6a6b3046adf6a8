//! Capability translation between a client and an upstream that disagree
//! on a layout capability the gateway can bridge (pure).
//!
//! One is bridged: `CLIENT_DEPRECATE_EOF`. The gateway offers it to every
//! client before it knows the upstream, and an upstream without it (MySQL
//! before 5.7.5, MariaDB before 10.2) ends column and parameter lists with
//! EOF packets and result sets with an EOF. For a client that negotiated
//! it, the lists' EOFs are dropped and a result set's EOF becomes the OK
//! packet with the `0xFE` header that the client expects, carrying the same
//! status (more results, cursor, transaction) and warnings. The other way
//! round cannot happen: the upstream login asks only for what the client
//! has. Every other difference in [`LAYOUT_CAPABILITIES`] is refused.

use crate::generic::EOF_HEADER;
use crate::response::ResponsePacket;
use crate::Capabilities;

/// Capabilities that change packet layouts: client and upstream must agree
/// on them, or the difference must be one [`Translation`] bridges.
pub const LAYOUT_CAPABILITIES: Capabilities = Capabilities(
    Capabilities::PROTOCOL_41.0
        | Capabilities::DEPRECATE_EOF.0
        | Capabilities::SESSION_TRACK.0
        | Capabilities::MARIADB_EXTENDED_METADATA.0,
);

/// What the client gets in place of one upstream packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translated {
    /// The packet as it is.
    Same,
    /// Nothing.
    Dropped,
    /// Another payload.
    Replaced(Vec<u8>),
}

/// How one session's answers are translated; the default translates
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Translation {
    /// The client has `CLIENT_DEPRECATE_EOF`, the upstream does not.
    eof_to_ok: bool,
    client: Capabilities,
}

impl Translation {
    /// The translation for a client with `client` capabilities and an
    /// upstream with `upstream`; `Err` with the differing layout bits when
    /// no translation bridges them.
    pub fn between(client: Capabilities, upstream: Capabilities) -> Result<Self, u64> {
        let differs = (client.0 ^ upstream.0) & LAYOUT_CAPABILITIES.0;
        let eof_to_ok = client.contains(Capabilities::DEPRECATE_EOF)
            && !upstream.contains(Capabilities::DEPRECATE_EOF);
        let bridged = if eof_to_ok {
            Capabilities::DEPRECATE_EOF.0
        } else {
            0
        };
        if differs & !bridged != 0 {
            return Err(differs & !bridged);
        }
        Ok(Self { eof_to_ok, client })
    }

    /// Whether anything is translated.
    pub fn is_identity(&self) -> bool {
        !self.eof_to_ok
    }

    /// What the client gets for `packet` (as the upstream's tracker read
    /// it) with `payload`.
    pub fn to_client(&self, packet: &ResponsePacket, payload: &[u8]) -> Translated {
        if !self.eof_to_ok || payload.first() != Some(&EOF_HEADER) {
            return Translated::Same;
        }
        match packet {
            ResponsePacket::ColumnsEnd(_) | ResponsePacket::ParametersEnd(_) => Translated::Dropped,
            ResponsePacket::ResultSetEnd(end) => {
                Translated::Replaced(end.encode_with_header(EOF_HEADER, self.client))
            }
            _ => Translated::Same,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::{ColumnDefinition, ColumnType};
    use crate::command::Command;
    use crate::response::ResponseTracker;
    use crate::row::encode_text_row;
    use crate::{EofPacket, ServerStatus};

    const BASE: Capabilities = Capabilities(
        Capabilities::PROTOCOL_41.0
            | Capabilities::SECURE_CONNECTION.0
            | Capabilities::MULTI_RESULTS.0,
    );

    fn client() -> Capabilities {
        BASE | Capabilities::DEPRECATE_EOF
    }

    /// An old upstream's result set: header, column, EOF, two rows, EOF.
    fn old_result_set(status: ServerStatus) -> Vec<Vec<u8>> {
        let eof = EofPacket {
            warnings: 1,
            status,
        };
        vec![
            vec![1],
            ColumnDefinition::new("a", ColumnType::VAR_STRING).encode(BASE),
            eof.encode(BASE),
            encode_text_row([Some(b"x".as_slice())]),
            encode_text_row([None]),
            eof.encode(BASE),
        ]
    }

    /// Feeds the upstream's packets through its tracker and the
    /// translation, then the client's through a client-side tracker.
    fn relay(command: &Command, packets: &[Vec<u8>]) -> Vec<ResponsePacket> {
        let translation = Translation::between(client(), BASE).unwrap();
        let mut upstream = ResponseTracker::new(command, BASE).unwrap();
        let mut client_side = ResponseTracker::new(command, client()).unwrap();
        let mut seen = Vec::new();
        for payload in packets {
            let packet = upstream.feed(payload).unwrap();
            let sent = match translation.to_client(&packet, payload) {
                Translated::Same => payload.clone(),
                Translated::Dropped => continue,
                Translated::Replaced(replaced) => replaced,
            };
            seen.push(client_side.feed(&sent).unwrap());
        }
        assert!(upstream.is_complete());
        assert!(
            client_side.is_complete(),
            "the client still waits: {seen:?}"
        );
        seen
    }

    #[test]
    fn eof_packets_become_what_a_deprecate_eof_client_reads() {
        let query = Command::Query {
            query: b"select a from t; select a from t".to_vec(),
        };
        let mut packets = old_result_set(ServerStatus(
            ServerStatus::AUTOCOMMIT.0 | ServerStatus::MORE_RESULTS_EXISTS.0,
        ));
        packets.extend(old_result_set(ServerStatus::AUTOCOMMIT));
        let seen = relay(&query, &packets);
        let ends: Vec<&ResponsePacket> = seen
            .iter()
            .filter(|packet| matches!(packet, ResponsePacket::ResultSetEnd(_)))
            .collect();
        assert_eq!(ends.len(), 2, "{seen:?}");
        if let ResponsePacket::ResultSetEnd(end) = ends[0] {
            assert!(end.status.more_results());
            assert_eq!(end.warnings, 1);
        }
        let rows = seen
            .iter()
            .filter(|packet| matches!(packet, ResponsePacket::TextRow { .. }))
            .count();
        assert_eq!(rows, 4);
        assert!(!seen
            .iter()
            .any(|packet| matches!(packet, ResponsePacket::ColumnsEnd(_))));
    }

    #[test]
    fn only_bridgeable_differences_are_accepted() {
        assert!(Translation::between(client(), client())
            .unwrap()
            .is_identity());
        assert!(!Translation::between(client(), BASE).unwrap().is_identity());
        // The other way round, and other layout bits, cannot be bridged.
        assert!(Translation::between(BASE, client()).is_err());
        assert!(Translation::between(client() | Capabilities::SESSION_TRACK, client()).is_err());
    }
}
