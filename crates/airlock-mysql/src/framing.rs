//! Packet framing: `[payload length: u24 LE][sequence id: u8][payload]`.
//!
//! A payload of 0xFFFFFF bytes or more is split into fragments of exactly
//! 0xFFFFFF bytes, each with the next sequence id, ended by a shorter
//! fragment (possibly empty). [`PacketCodec`] reassembles fragments into one
//! logical [`Packet`], bounds the whole by a configurable maximum, checks
//! sequence ids and splits on encoding. One codec serves one conversation
//! (client↔gateway or gateway↔upstream): the sequence id counts packets in
//! both directions, so decoding and encoding advance the same counter, and
//! the caller resets it when a command starts.

use bytes::{Buf, Bytes, BytesMut};

use crate::MySqlCodecError;

/// Payload bytes in one full fragment; a fragment this long is continued.
pub const MAX_FRAGMENT_PAYLOAD: usize = 0xFF_FFFF;

/// Default bound on one logical packet's payload (16 MiB). MySQL's own
/// default `max_allowed_packet` is 64 MiB; the gateway is stricter by
/// default and the bound is configurable.
pub const DEFAULT_MAX_PACKET_BYTES: usize = 16 * 1024 * 1024;

const HEADER: usize = 4;

/// Most buffer space reserved ahead of bytes that have not arrived: a
/// header alone must not make the gateway allocate a whole maximum-size
/// packet (a hostile client could hold thousands of such connections).
const MAX_RESERVE_AHEAD: usize = 64 * 1024;

/// One logical packet: its payload with all fragments joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The sequence id of its first fragment.
    pub sequence_id: u8,
    /// The payload, without headers.
    pub payload: Bytes,
}

impl Packet {
    /// The first payload byte (the packet's type in most contexts).
    pub fn header(&self) -> Option<u8> {
        self.payload.first().copied()
    }
}

/// Frames one conversation: reassembles and checks incoming packets,
/// numbers and splits outgoing ones.
#[derive(Debug, Clone)]
pub struct PacketCodec {
    max_packet_bytes: usize,
    sequence_id: u8,
    check_sequence: bool,
}

impl Default for PacketCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PACKET_BYTES)
    }
}

impl PacketCodec {
    /// A codec that refuses logical packets whose payload exceeds
    /// `max_packet_bytes`, starting at sequence id 0.
    pub fn new(max_packet_bytes: usize) -> Self {
        Self {
            max_packet_bytes,
            sequence_id: 0,
            check_sequence: true,
        }
    }

    /// Turns sequence-id checking off (for a relay that only counts).
    pub fn without_sequence_check(mut self) -> Self {
        self.check_sequence = false;
        self
    }

    /// Changes the bound (e.g. a small one until the client is
    /// authenticated, the configured one after).
    pub fn set_max_packet_bytes(&mut self, max_packet_bytes: usize) {
        self.max_packet_bytes = max_packet_bytes;
    }

    /// The configured bound.
    pub fn max_packet_bytes(&self) -> usize {
        self.max_packet_bytes
    }

    /// The sequence id the next packet (either direction) must carry.
    pub fn sequence_id(&self) -> u8 {
        self.sequence_id
    }

    /// Starts a new command: the next packet carries sequence id 0.
    pub fn reset_sequence(&mut self) {
        self.sequence_id = 0;
    }

    /// Sets the next expected sequence id (after a TLS upgrade a server
    /// continues the count of the SSLRequest).
    pub fn set_sequence_id(&mut self, sequence_id: u8) {
        self.sequence_id = sequence_id;
    }

    /// Takes one whole logical packet off the front of `buf`, or returns
    /// `Ok(None)` when more bytes are needed (nothing is consumed then).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, MySqlCodecError> {
        // Walk the fragment headers first, without consuming: the packet is
        // taken only once all of its fragments are buffered.
        let mut offset = 0usize;
        let mut total_payload = 0usize;
        let mut fragments = 0usize;
        let mut expected = self.sequence_id;
        loop {
            let Some(header) = buf.get(offset..offset + HEADER) else {
                buf.reserve(HEADER);
                return Ok(None);
            };
            let [a, b, c, sequence_id] =
                <[u8; 4]>::try_from(header).map_err(|_| MySqlCodecError::Truncated {
                    what: "packet header",
                })?;
            let length = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
            if self.check_sequence && sequence_id != expected {
                return Err(MySqlCodecError::BadSequence {
                    got: sequence_id,
                    expected,
                });
            }
            if fragments == 0 && !self.check_sequence {
                expected = sequence_id;
            }
            expected = expected.wrapping_add(1);
            total_payload += length;
            if total_payload > self.max_packet_bytes {
                return Err(MySqlCodecError::TooLarge {
                    length: total_payload,
                    max: self.max_packet_bytes,
                });
            }
            fragments += 1;
            offset += HEADER + length;
            if buf.len() < offset {
                buf.reserve((offset - buf.len()).min(MAX_RESERVE_AHEAD));
                return Ok(None);
            }
            if length < MAX_FRAGMENT_PAYLOAD {
                break;
            }
        }
        let first_sequence_id = buf.get(3).copied().unwrap_or_default();
        self.sequence_id = expected;
        let payload = if fragments == 1 {
            let mut whole = buf.split_to(offset);
            whole.advance(HEADER);
            whole.freeze()
        } else {
            let mut joined = BytesMut::with_capacity(total_payload);
            let mut wire = buf.split_to(offset);
            while wire.len() >= HEADER {
                let length = wire
                    .get(..3)
                    .map(|l| {
                        l.iter()
                            .rev()
                            .fold(0usize, |acc, &byte| acc << 8 | usize::from(byte))
                    })
                    .unwrap_or_default();
                wire.advance(HEADER);
                let take = length.min(wire.len());
                joined.extend_from_slice(wire.get(..take).unwrap_or_default());
                wire.advance(take);
            }
            joined.freeze()
        };
        Ok(Some(Packet {
            sequence_id: first_sequence_id,
            payload,
        }))
    }

    /// Appends `payload` as one logical packet (split into fragments when
    /// needed) with the conversation's next sequence ids.
    pub fn encode(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<(), MySqlCodecError> {
        if payload.len() > self.max_packet_bytes {
            return Err(MySqlCodecError::TooLarge {
                length: payload.len(),
                max: self.max_packet_bytes,
            });
        }
        out.reserve(payload.len() + HEADER * (1 + payload.len() / MAX_FRAGMENT_PAYLOAD));
        let mut rest = payload;
        loop {
            let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAGMENT_PAYLOAD));
            let [a, b, c, _] = (chunk.len() as u32).to_le_bytes();
            out.extend_from_slice(&[a, b, c, self.sequence_id]);
            out.extend_from_slice(chunk);
            self.sequence_id = self.sequence_id.wrapping_add(1);
            rest = tail;
            // A full fragment is always followed by another, empty if need be.
            if chunk.len() < MAX_FRAGMENT_PAYLOAD {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_two_packets_and_waits_for_the_third() {
        // COM_QUERY "select 1" at seq 0, then a partial header.
        let mut buf =
            BytesMut::from(&b"\x09\x00\x00\x00\x03select 1\x01\x00\x00\x01\x0e\x05\x00\x00"[..]);
        let mut codec = PacketCodec::default().without_sequence_check();
        let first = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(first.sequence_id, 0);
        assert_eq!(&first.payload[..], b"\x03select 1");
        let second = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(second.sequence_id, 1);
        assert_eq!(&second.payload[..], b"\x0e");
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn checks_sequence_ids_across_directions() {
        let mut codec = PacketCodec::default();
        let mut out = BytesMut::new();
        codec.encode(b"\x0e", &mut out).unwrap();
        assert_eq!(&out[..], b"\x01\x00\x00\x00\x0e");
        // The reply must carry 1.
        let mut reply = BytesMut::from(&b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00"[..]);
        assert_eq!(
            codec.decode(&mut reply),
            Err(MySqlCodecError::BadSequence {
                got: 2,
                expected: 1
            })
        );
        let mut reply = BytesMut::from(&b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00"[..]);
        assert!(codec.decode(&mut reply).unwrap().is_some());
        assert_eq!(codec.sequence_id(), 2);
        codec.reset_sequence();
        assert_eq!(codec.sequence_id(), 0);
    }

    #[test]
    fn splits_and_joins_payloads_of_the_fragment_size() {
        for length in [
            MAX_FRAGMENT_PAYLOAD - 1,
            MAX_FRAGMENT_PAYLOAD,
            MAX_FRAGMENT_PAYLOAD + 7,
        ] {
            let payload: Vec<u8> = (0..length).map(|i| (i % 251) as u8).collect();
            let mut writer = PacketCodec::new(64 << 20);
            let mut wire = BytesMut::new();
            writer.encode(&payload, &mut wire).unwrap();
            let fragments = 1 + length / MAX_FRAGMENT_PAYLOAD;
            assert_eq!(wire.len(), length + 4 * fragments);
            assert_eq!(writer.sequence_id() as usize, fragments);
            if length == MAX_FRAGMENT_PAYLOAD {
                // The documented empty trailing packet.
                assert_eq!(&wire[wire.len() - 4..], &[0, 0, 0, 1]);
            }
            let mut reader = PacketCodec::new(64 << 20);
            // Fed in two halves: nothing until the last fragment arrives.
            let mut buf = BytesMut::from(&wire[..wire.len() / 2]);
            assert_eq!(reader.decode(&mut buf).unwrap(), None);
            assert_eq!(reader.sequence_id(), 0);
            buf.extend_from_slice(&wire[wire.len() / 2..]);
            let packet = reader.decode(&mut buf).unwrap().unwrap();
            assert_eq!(packet.payload.len(), length);
            assert!(packet.payload == payload);
            assert!(buf.is_empty());
            assert_eq!(reader.sequence_id() as usize, fragments);
        }
    }

    #[test]
    fn refuses_packets_above_the_bound_from_the_header_alone() {
        let mut codec = PacketCodec::new(100);
        let mut buf = BytesMut::from(&b"\x65\x00\x00\x00"[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(MySqlCodecError::TooLarge {
                length: 101,
                max: 100
            })
        );
        assert!(codec.encode(&[0; 101], &mut BytesMut::new()).is_err());
        // A continued packet is bounded by the sum of its fragments.
        let mut codec = PacketCodec::new(MAX_FRAGMENT_PAYLOAD + 10);
        let mut wire = BytesMut::new();
        PacketCodec::new(usize::MAX)
            .encode(&vec![0; MAX_FRAGMENT_PAYLOAD + 11], &mut wire)
            .unwrap();
        assert!(matches!(
            codec.decode(&mut wire),
            Err(MySqlCodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_header_alone_reserves_little() {
        let mut codec = PacketCodec::default();
        let mut buf = BytesMut::from(&b"\xff\xff\xff\x00"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 4 + MAX_RESERVE_AHEAD);
        codec.set_max_packet_bytes(16);
        assert!(codec.decode(&mut buf).is_err());
    }

    #[test]
    fn empty_payload_is_one_empty_packet() {
        let mut codec = PacketCodec::default();
        let mut out = BytesMut::new();
        codec.encode(b"", &mut out).unwrap();
        assert_eq!(&out[..], b"\x00\x00\x00\x00");
        let mut codec = PacketCodec::default();
        let packet = codec.decode(&mut out).unwrap().unwrap();
        assert!(packet.payload.is_empty());
        assert_eq!(packet.header(), None);
    }
}
