//! Message framing: `[tag: u8][length: i32 including itself][body]`.
//!
//! [`FrameDecoder`] splits a byte buffer into whole frames without copying
//! their bodies. [`peek_frame`] only reads a header, for relays that forward
//! a buffer in bulk and look at tags on the way.

use bytes::{Buf, Bytes, BytesMut};

use crate::PgCodecError;

/// Default bound on one message, header included (16 MiB). Larger messages
/// close the session. PostgreSQL's own limit for most messages is 1 GiB; the
/// gateway is deliberately stricter and the bound is configurable.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// One whole message, header included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    tag: u8,
    bytes: Bytes,
}

impl Frame {
    /// The message type byte.
    pub fn tag(&self) -> u8 {
        self.tag
    }

    /// The body, after the 5-byte header.
    pub fn body(&self) -> &[u8] {
        self.bytes.get(5..).unwrap_or_default()
    }

    /// The whole message as it came off the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole message, owned.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Builds a frame from a whole encoded message (as produced by the
    /// encoders in this crate).
    pub fn from_encoded(bytes: Vec<u8>) -> Result<Self, PgCodecError> {
        let tag = *bytes
            .first()
            .ok_or(PgCodecError::Truncated { what: "frame" })?;
        Ok(Self {
            tag,
            bytes: Bytes::from(bytes),
        })
    }
}

/// Reads the header at the start of `buf`: `Ok(Some((tag, total_len)))` when
/// a header is present (the body may not be complete yet), `Ok(None)` when
/// fewer than 5 bytes are buffered.
pub fn peek_frame(
    buf: &[u8],
    max_message_bytes: usize,
) -> Result<Option<(u8, usize)>, PgCodecError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let mut length_bytes = [0u8; 4];
    length_bytes.copy_from_slice(header.get(1..5).unwrap_or(&[0; 4]));
    let length = i32::from_be_bytes(length_bytes);
    let tag = header.first().copied().unwrap_or(0);
    // The length counts itself (4 bytes) but not the tag.
    let total = usize::try_from(length)
        .ok()
        .filter(|&length| length >= 4)
        .map(|length| length + 1)
        .filter(|&total| total <= max_message_bytes)
        .ok_or(PgCodecError::BadLength {
            length: i64::from(length),
            max: max_message_bytes,
        })?;
    Ok(Some((tag, total)))
}

/// Splits tagged messages off a buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_message_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder that refuses messages longer than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes: max_message_bytes.max(5),
        }
    }

    /// The configured bound.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Takes one whole frame off the front of `buf`, or returns `Ok(None)`
    /// when more bytes are needed. Reserves room for the rest of a partial
    /// frame so the next read can complete it.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, PgCodecError> {
        let Some((tag, total)) = peek_frame(buf, self.max_message_bytes)? else {
            return Ok(None);
        };
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let bytes = buf.split_to(total).freeze();
        Ok(Some(Frame { tag, bytes }))
    }

    /// Discards `count` bytes (used after forwarding them unparsed).
    pub fn advance(buf: &mut BytesMut, count: usize) {
        buf.advance(count.min(buf.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_two_frames_and_waits_for_the_third() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"Q\0\0\0\x0dselect 1\0");
        buf.extend_from_slice(b"S\0\0\0\x04");
        buf.extend_from_slice(b"X\0\0");
        let decoder = FrameDecoder::default();
        let first = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(first.tag(), b'Q');
        assert_eq!(first.body(), b"select 1\0");
        let second = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(second.tag(), b'S');
        assert!(second.body().is_empty());
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn refuses_lengths_below_four_and_above_the_bound() {
        let decoder = FrameDecoder::new(100);
        let mut short = BytesMut::from(&b"Q\0\0\0\x03"[..]);
        assert!(matches!(
            decoder.decode(&mut short),
            Err(PgCodecError::BadLength { length: 3, .. })
        ));
        let mut negative = BytesMut::from(&b"Q\xff\xff\xff\xff"[..]);
        assert!(decoder.decode(&mut negative).is_err());
        let mut huge = BytesMut::from(&b"Q\0\0\x10\0"[..]);
        assert!(matches!(
            decoder.decode(&mut huge),
            Err(PgCodecError::BadLength {
                length: 4096,
                max: 100
            })
        ));
    }
}
