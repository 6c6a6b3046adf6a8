//! The fixture's side of RFC 6455, as an API server speaks it: the
//! upgrade answer (`Sec-WebSocket-Accept`, the subprotocol chosen from the
//! client's list), reading masked client frames and writing unmasked
//! server frames, blocking on std sockets. Written for the fixture alone
//! (the gateway has its own sans-IO parser; the two are kept apart so one
//! cannot hide the other's mistakes).

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine;
use sha1::{Digest, Sha1};

use super::wire::WireRequest;

/// The GUID RFC 6455 section 1.3 appends to the key.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest client frame the fixture reads.
const MAX_FRAME: u64 = 1 << 20;

pub const OP_CONTINUATION: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// `Sec-WebSocket-Accept` for a client's key.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// True when the request asks for a WebSocket upgrade.
pub fn is_websocket(request: &WireRequest) -> bool {
    request
        .header("upgrade")
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// The first of `supported` the client offered, if any.
pub fn choose_protocol(request: &WireRequest, supported: &[&'static str]) -> Option<&'static str> {
    let offered: Vec<String> = request
        .headers
        .iter()
        .filter(|(name, _)| name == "sec-websocket-protocol")
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim().to_string())
        .collect();
    supported
        .iter()
        .copied()
        .find(|protocol| offered.iter().any(|offer| offer == protocol))
}

/// Writes the `101 Switching Protocols` answer.
pub fn accept(mut stream: &TcpStream, request: &WireRequest, protocol: &str) -> bool {
    let Some(key) = request.header("sec-websocket-key") else {
        return false;
    };
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\nsec-websocket-protocol: {protocol}\r\n\r\n",
        accept_key(key)
    );
    stream.write_all(head.as_bytes()).is_ok() && stream.flush().is_ok()
}

/// One frame from the client, unmasked.
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Reads one client frame; `None` at the end of the connection or on a
/// frame the fixture refuses (unmasked, too large).
pub fn read_frame(mut stream: &TcpStream) -> Option<Frame> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    let fin = head[0] & 0x80 != 0;
    let opcode = head[0] & 0x0f;
    if head[1] & 0x80 == 0 {
        return None;
    }
    let length = match head[1] & 0x7f {
        126 => {
            let mut bytes = [0u8; 2];
            stream.read_exact(&mut bytes).ok()?;
            u64::from(u16::from_be_bytes(bytes))
        }
        127 => {
            let mut bytes = [0u8; 8];
            stream.read_exact(&mut bytes).ok()?;
            u64::from_be_bytes(bytes)
        }
        short => u64::from(short),
    };
    if length > MAX_FRAME {
        return None;
    }
    let mut key = [0u8; 4];
    stream.read_exact(&mut key).ok()?;
    let mut payload = vec![0u8; usize::try_from(length).ok()?];
    stream.read_exact(&mut payload).ok()?;
    for (index, byte) in payload.iter_mut().enumerate() {
        *byte ^= key[index % 4];
    }
    Some(Frame {
        fin,
        opcode,
        payload,
    })
}

/// Writes one unmasked, final frame.
pub fn write_frame(mut stream: &TcpStream, opcode: u8, payload: &[u8]) -> bool {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        length @ 0..=125 => out.push(length as u8),
        length @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            out.push(127);
            out.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    stream.write_all(&out).is_ok() && stream.flush().is_ok()
}
