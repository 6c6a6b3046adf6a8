//! A sans-IO WebSocket (RFC 6455) frame reader for the streams the
//! gateway relays (Kubernetes exec, attach, port-forward): bytes in,
//! frames out, each with its payload unmasked (to read) and its bytes as
//! they arrived (to forward unchanged), or an error that ends the stream.
//!
//! Bounded and strict, since what it cannot read it cannot record: a
//! frame's payload is at most the reader's `max_payload`; client frames
//! must be masked and server frames must not be (section 5.1); no
//! extension was negotiated, so reserved bits must be clear; reserved
//! opcodes, fragmented or oversized control frames, a continuation
//! without a message and a new message inside a fragmented one are
//! refused. It never panics (`indexing_slicing` denied, property test).

#![deny(clippy::indexing_slicing)]

/// Which side sent the bytes: clients mask, servers do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

/// Frame opcodes (section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0 => Self::Continuation,
            1 => Self::Text,
            2 => Self::Binary,
            8 => Self::Close,
            9 => Self::Ping,
            10 => Self::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0,
            Self::Text => 1,
            Self::Binary => 2,
            Self::Close => 8,
            Self::Ping => 9,
            Self::Pong => 10,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: Opcode,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
    /// The frame's bytes as they arrived (header, key, masked payload).
    pub raw: Vec<u8>,
}

/// Why a stream cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a reserved bit is set (no extension was negotiated)")]
    ReservedBits,
    #[error("reserved opcode {0}")]
    ReservedOpcode(u8),
    #[error("a client frame is not masked")]
    Unmasked,
    #[error("a server frame is masked")]
    Masked,
    #[error("a frame of {0} bytes is over the limit")]
    TooLarge(u64),
    #[error("a control frame is fragmented or over 125 bytes")]
    BadControl,
    #[error("a continuation frame without a message, or a message inside a fragmented one")]
    BadFragment,
}

/// Reads the frames of one direction of a connection.
#[derive(Debug)]
pub struct FrameReader {
    sender: Sender,
    max_payload: usize,
    buffer: Vec<u8>,
    /// Inside a fragmented data message.
    in_message: bool,
    failed: Option<FrameError>,
}

impl FrameReader {
    /// A reader of `sender`'s frames, each payload at most `max_payload`.
    pub fn new(sender: Sender, max_payload: usize) -> Self {
        Self {
            sender,
            max_payload,
            buffer: Vec::new(),
            in_message: false,
            failed: None,
        }
    }

    /// Bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes held that are not a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// The next whole frame, `None` until one has arrived; after an error
    /// every call returns it again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.parse() {
            Ok(frame) => Ok(frame),
            Err(error) => {
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }

    fn parse(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(head) = Header::read(&self.buffer, self.sender, self.max_payload)? else {
            return Ok(None);
        };
        let Some(total) = head.offset.checked_add(head.length) else {
            return Err(FrameError::TooLarge(u64::MAX));
        };
        if self.buffer.len() < total {
            return Ok(None);
        }
        match (head.opcode, self.in_message) {
            (Opcode::Continuation, false) => return Err(FrameError::BadFragment),
            (Opcode::Text | Opcode::Binary, true) => return Err(FrameError::BadFragment),
            (opcode, _) if opcode.is_control() => {}
            _ => self.in_message = !head.fin,
        }
        let raw: Vec<u8> = self.buffer.drain(..total).collect();
        let mut payload = raw.get(head.offset..).unwrap_or(&[]).to_vec();
        if let Some(key) = head.key {
            for (byte, mask) in payload.iter_mut().zip(key.iter().cycle()) {
                *byte ^= mask;
            }
        }
        Ok(Some(Frame {
            fin: head.fin,
            opcode: head.opcode,
            payload,
            raw,
        }))
    }
}

/// A frame's header.
struct Header {
    fin: bool,
    opcode: Opcode,
    key: Option<[u8; 4]>,
    /// Where the payload starts.
    offset: usize,
    length: usize,
}

impl Header {
    fn read(bytes: &[u8], sender: Sender, max: usize) -> Result<Option<Self>, FrameError> {
        let (Some(&first), Some(&second)) = (bytes.first(), bytes.get(1)) else {
            return Ok(None);
        };
        if first & 0x70 != 0 {
            return Err(FrameError::ReservedBits);
        }
        let fin = first & 0x80 != 0;
        let opcode =
            Opcode::from_bits(first & 0x0f).ok_or(FrameError::ReservedOpcode(first & 0x0f))?;
        let masked = second & 0x80 != 0;
        match (sender, masked) {
            (Sender::Client, false) => return Err(FrameError::Unmasked),
            (Sender::Server, true) => return Err(FrameError::Masked),
            _ => {}
        }
        let (length, mut offset) = match second & 0x7f {
            126 => match bytes.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(None),
            },
            127 => match bytes.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(array) => (u64::from_be_bytes(array), 10),
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        if opcode.is_control() && (!fin || length > 125) {
            return Err(FrameError::BadControl);
        }
        let length = usize::try_from(length)
            .ok()
            .filter(|length| *length <= max)
            .ok_or(FrameError::TooLarge(length))?;
        let key = if masked {
            let Some(key) = bytes
                .get(offset..offset + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
            else {
                return Ok(None);
            };
            offset += 4;
            Some(key)
        } else {
            None
        };
        Ok(Some(Self {
            fin,
            opcode,
            key,
            offset,
            length,
        }))
    }
}

/// A final, unmasked frame (the server's side) with this payload.
pub fn server_frame(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(if fin { 0x80 } else { 0 } | opcode.bits());
    match u16::try_from(payload.len()) {
        Ok(length @ 0..=125) => out.push(length as u8),
        Ok(length) => {
            out.push(126);
            out.extend_from_slice(&length.to_be_bytes());
        }
        Err(_) => {
            out.push(127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// A close frame with `code` and a short reason, from the gateway to the
/// client (unmasked).
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    let cut = reason.get(..reason.len().min(120)).unwrap_or("");
    payload.extend_from_slice(cut.as_bytes());
    server_frame(Opcode::Close, true, &payload)
}

/// A masked client frame (for tests and for the gateway's own close
/// towards the upstream).
pub fn client_frame(opcode: Opcode, fin: bool, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut frame = server_frame(opcode, fin, payload);
    let start = frame.len() - payload.len();
    if let Some(second) = frame.get_mut(1) {
        *second |= 0x80;
    }
    let mut body = frame.split_off(start);
    for (byte, mask) in body.iter_mut().zip(key.iter().cycle()) {
        *byte ^= mask;
    }
    frame.extend_from_slice(&key);
    frame.extend_from_slice(&body);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_are_read_unmasked_and_kept_as_sent() {
        let sent = client_frame(Opcode::Binary, true, b"\x00echo hi\n", [1, 2, 3, 4]);
        let mut reader = FrameReader::new(Sender::Client, 1024);
        reader.push(sent.get(..3).unwrap());
        assert_eq!(reader.next_frame(), Ok(None));
        reader.push(sent.get(3..).unwrap());
        let frame = reader.next_frame().unwrap().unwrap();
        assert_eq!(frame.payload, b"\x00echo hi\n");
        assert_eq!(frame.raw, sent);
        assert_eq!(reader.pending(), 0);
        let long = vec![7u8; 70_000];
        let mut reader = FrameReader::new(Sender::Server, 100_000);
        reader.push(&server_frame(Opcode::Binary, true, &long));
        assert_eq!(reader.next_frame().unwrap().unwrap().payload, long);
    }

    #[test]
    fn what_cannot_be_read_is_refused() {
        let mut reader = FrameReader::new(Sender::Client, 1024);
        reader.push(&server_frame(Opcode::Binary, true, b"x"));
        assert_eq!(reader.next_frame(), Err(FrameError::Unmasked));
        assert_eq!(reader.next_frame(), Err(FrameError::Unmasked));
        let mut reader = FrameReader::new(Sender::Server, 1024);
        reader.push(&client_frame(Opcode::Binary, true, b"x", [9; 4]));
        assert_eq!(reader.next_frame(), Err(FrameError::Masked));
        let mut reader = FrameReader::new(Sender::Server, 4);
        reader.push(&server_frame(Opcode::Binary, true, b"12345"));
        assert_eq!(reader.next_frame(), Err(FrameError::TooLarge(5)));
        let mut reader = FrameReader::new(Sender::Server, 1024);
        reader.push(&[0xC2, 0x00]);
        assert_eq!(reader.next_frame(), Err(FrameError::ReservedBits));
        let mut reader = FrameReader::new(Sender::Server, 1024);
        reader.push(&[0x83, 0x00]);
        assert_eq!(reader.next_frame(), Err(FrameError::ReservedOpcode(3)));
        let mut reader = FrameReader::new(Sender::Server, 1024);
        reader.push(&server_frame(Opcode::Ping, false, b""));
        assert_eq!(reader.next_frame(), Err(FrameError::BadControl));
        let mut reader = FrameReader::new(Sender::Server, 1024);
        reader.push(&server_frame(Opcode::Continuation, true, b"x"));
        assert_eq!(reader.next_frame(), Err(FrameError::BadFragment));
        // A fragmented message may carry control frames between its parts.
        let mut reader = FrameReader::new(Sender::Server, 1024);
        reader.push(&server_frame(Opcode::Binary, false, b"\x01a"));
        reader.push(&server_frame(Opcode::Ping, true, b""));
        reader.push(&server_frame(Opcode::Continuation, true, b"b"));
        for _ in 0..3 {
            assert!(reader.next_frame().unwrap().is_some());
        }
        let mut reader = FrameReader::new(Sender::Server, usize::MAX);
        reader.push(&[0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(reader.next_frame().is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_frames_round_trip(
            noise in proptest::collection::vec(any::<u8>(), 0..300),
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..5),
            key in any::<[u8; 4]>(),
            split in 0usize..2000,
        ) {
            for sender in [Sender::Client, Sender::Server] {
                let mut reader = FrameReader::new(sender, 256);
                reader.push(&noise);
                while let Ok(Some(_)) = reader.next_frame() {}
            }
            let mut stream = Vec::new();
            for payload in &payloads {
                stream.extend(client_frame(Opcode::Binary, true, payload, key));
            }
            let mut reader = FrameReader::new(Sender::Client, 1024);
            let cut = split.min(stream.len());
            reader.push(stream.get(..cut).unwrap_or(&[]));
            let mut read = Vec::new();
            while let Ok(Some(frame)) = reader.next_frame() {
                read.push(frame.payload);
            }
            reader.push(stream.get(cut..).unwrap_or(&[]));
            while let Ok(Some(frame)) = reader.next_frame() {
                read.push(frame.payload);
            }
            prop_assert_eq!(read, payloads);
        }
    }
}
