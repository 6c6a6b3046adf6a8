//! SPDY/3.1 as the Kubernetes streams use it, without I/O: the framing
//! ([`FrameReader`], [`Frame::encode`]), the name/value header blocks
//! ([`HeaderBlock`]) and their zlib compression with SPDY/3's preset
//! dictionary ([`HeaderInflater`], [`HeaderDeflater`]).
//!
//! `kubectl port-forward` (1.30 and later) tunnels SPDY through a
//! WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`, KEP 4006): the
//! SPDY bytes travel in binary messages, and each forwarded connection is
//! a pair of SPDY streams (`streamtype: error` and `data`) whose
//! `SYN_STREAM` names the pod's `port` and a `requestid`. To decide a
//! connection by its port the gateway must read those headers, and to
//! answer a refused one itself it must write header blocks of its own; so
//! it decompresses every header block and compresses every one it sends
//! itself. Its compressor writes stored (uncompressed) deflate blocks:
//! valid zlib for every inflater, no compression state to get wrong.
//!
//! Bounded and strict, since what it cannot read it cannot decide: a
//! frame is at most the reader's `max_frame` bytes, a header block at
//! most [`MAX_HEADER_BLOCK`] bytes once inflated and [`MAX_HEADERS`]
//! pairs; only SPDY version 3, stream id 0 never for stream frames, and
//! the control frames SPDY/3 defines (no `CREDENTIAL`). It never panics
//! (`indexing_slicing` denied, property tests, fuzz target `spdy_frames`).

#![deny(clippy::indexing_slicing)]

use std::sync::OnceLock;

use miniz_oxide::inflate::core::{decompress_with_limit, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// Largest inflated header block.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Most name/value pairs in one header block.
pub const MAX_HEADERS: usize = 128;

/// Control frame types (SPDY/3 section 2.6).
pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;

/// `FLAG_FIN`: the sender's half of the stream ends with this frame.
pub const FLAG_FIN: u8 = 0x01;
/// `RST_STREAM` status `REFUSED_STREAM`.
pub const REFUSED_STREAM: u32 = 3;

/// Why a SPDY stream cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpdyError {
    #[error("SPDY version {0} (only 3 is read)")]
    Version(u16),
    #[error("unknown SPDY control frame type {0}")]
    UnknownType(u16),
    #[error("a SPDY frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("a SPDY {0} frame is too short")]
    Short(&'static str),
    #[error("a SPDY frame names stream 0")]
    StreamZero,
    #[error("a SPDY header block is not valid zlib: {0}")]
    Compression(&'static str),
    #[error("a SPDY header block is over {MAX_HEADER_BLOCK} bytes or {MAX_HEADERS} pairs")]
    HeaderBlockTooLarge,
    #[error("a SPDY header block is malformed")]
    HeaderBlock,
}

/// One SPDY frame as read: the frames whose header block or stream the
/// gateway needs are parsed, the others kept as their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream_id: u32,
        flags: u8,
        payload: Vec<u8>,
    },
    SynStream {
        stream_id: u32,
        associated: u32,
        /// Priority (3 bits) and the unused bits, as sent.
        priority: u8,
        slot: u8,
        flags: u8,
        /// Compressed.
        header_block: Vec<u8>,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        /// Compressed.
        header_block: Vec<u8>,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        /// Compressed.
        header_block: Vec<u8>,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// `SETTINGS`, `PING`, `GOAWAY`, `WINDOW_UPDATE`: connection
    /// business, relayed as they came.
    Control {
        kind: u16,
        raw: Vec<u8>,
    },
}

impl Frame {
    /// The frame's bytes (a parsed header block as it is held: the caller
    /// re-compresses it first).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Data {
                stream_id,
                flags,
                payload,
            } => {
                let mut out = Vec::with_capacity(payload.len() + 8);
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                push_flags_length(&mut out, *flags, payload.len());
                out.extend_from_slice(payload);
                out
            }
            Self::SynStream {
                stream_id,
                associated,
                priority,
                slot,
                flags,
                header_block,
            } => {
                let mut body = Vec::with_capacity(header_block.len() + 10);
                body.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                body.extend_from_slice(&(associated & 0x7fff_ffff).to_be_bytes());
                body.push(*priority);
                body.push(*slot);
                body.extend_from_slice(header_block);
                control(SYN_STREAM, *flags, &body)
            }
            Self::SynReply {
                stream_id,
                flags,
                header_block,
            } => control(SYN_REPLY, *flags, &stream_body(*stream_id, header_block)),
            Self::Headers {
                stream_id,
                flags,
                header_block,
            } => control(HEADERS, *flags, &stream_body(*stream_id, header_block)),
            Self::RstStream { stream_id, status } => {
                let mut body = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                control(RST_STREAM, 0, &body)
            }
            Self::Control { raw, .. } => raw.clone(),
        }
    }

    /// The stream a stream frame belongs to.
    pub fn stream_id(&self) -> Option<u32> {
        match self {
            Self::Data { stream_id, .. }
            | Self::SynStream { stream_id, .. }
            | Self::SynReply { stream_id, .. }
            | Self::Headers { stream_id, .. }
            | Self::RstStream { stream_id, .. } => Some(*stream_id),
            Self::Control { .. } => None,
        }
    }
}

fn stream_body(stream_id: u32, header_block: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(header_block.len() + 4);
    body.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
    body.extend_from_slice(header_block);
    body
}

fn push_flags_length(out: &mut Vec<u8>, flags: u8, length: usize) {
    let length = u32::try_from(length).unwrap_or(u32::MAX) & 0x00ff_ffff;
    out.push(flags);
    out.extend_from_slice(length.to_be_bytes().get(1..).unwrap_or(&[]));
}

fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(0x8000u16 | 3).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    push_flags_length(&mut out, flags, body.len());
    out.extend_from_slice(body);
    out
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let word: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(word))
}

/// Reads the frames of one direction of a SPDY connection.
#[derive(Debug)]
pub struct FrameReader {
    max_frame: usize,
    buffer: Vec<u8>,
    failed: Option<SpdyError>,
}

impl FrameReader {
    /// A reader whose frames are at most `max_frame` bytes (header included).
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            buffer: Vec::new(),
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
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SpdyError> {
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

    fn parse(&mut self) -> Result<Option<Frame>, SpdyError> {
        let (Some(first), Some(second)) = (be32(&self.buffer, 0), be32(&self.buffer, 4)) else {
            return Ok(None);
        };
        let flags = (second >> 24) as u8;
        let length = (second & 0x00ff_ffff) as usize;
        let total = length + 8;
        if total > self.max_frame {
            return Err(SpdyError::TooLarge(total));
        }
        let Some(body) = self.buffer.get(8..total) else {
            return Ok(None);
        };
        let frame = if first & 0x8000_0000 == 0 {
            let stream_id = first & 0x7fff_ffff;
            if stream_id == 0 {
                return Err(SpdyError::StreamZero);
            }
            Frame::Data {
                stream_id,
                flags,
                payload: body.to_vec(),
            }
        } else {
            let version = ((first >> 16) & 0x7fff) as u16;
            if version != 3 {
                return Err(SpdyError::Version(version));
            }
            let kind = (first & 0xffff) as u16;
            let raw = self.buffer.get(..total).unwrap_or(&[]);
            parse_control(kind, flags, body, raw)?
        };
        self.buffer.drain(..total);
        Ok(Some(frame))
    }
}

fn stream_of(body: &[u8], name: &'static str) -> Result<u32, SpdyError> {
    let id = be32(body, 0).ok_or(SpdyError::Short(name))? & 0x7fff_ffff;
    if id == 0 {
        return Err(SpdyError::StreamZero);
    }
    Ok(id)
}

fn parse_control(kind: u16, flags: u8, body: &[u8], raw: &[u8]) -> Result<Frame, SpdyError> {
    Ok(match kind {
        SYN_STREAM => {
            let stream_id = stream_of(body, "SYN_STREAM")?;
            let associated = be32(body, 4).ok_or(SpdyError::Short("SYN_STREAM"))? & 0x7fff_ffff;
            let (Some(&priority), Some(&slot), Some(header_block)) =
                (body.get(8), body.get(9), body.get(10..))
            else {
                return Err(SpdyError::Short("SYN_STREAM"));
            };
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                slot,
                flags,
                header_block: header_block.to_vec(),
            }
        }
        SYN_REPLY | HEADERS => {
            let stream_id = stream_of(body, "SYN_REPLY")?;
            let header_block = body.get(4..).unwrap_or(&[]).to_vec();
            if kind == SYN_REPLY {
                Frame::SynReply {
                    stream_id,
                    flags,
                    header_block,
                }
            } else {
                Frame::Headers {
                    stream_id,
                    flags,
                    header_block,
                }
            }
        }
        RST_STREAM => {
            let stream_id = stream_of(body, "RST_STREAM")?;
            let status = be32(body, 4).ok_or(SpdyError::Short("RST_STREAM"))?;
            Frame::RstStream { stream_id, status }
        }
        SETTINGS | PING | GOAWAY | WINDOW_UPDATE => Frame::Control {
            kind,
            raw: raw.to_vec(),
        },
        other => return Err(SpdyError::UnknownType(other)),
    })
}

/// A header block's name/value pairs (names lowercase and each once,
/// values as sent: several values of one name are separated by NUL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    pub pairs: Vec<(String, Vec<u8>)>,
}

impl HeaderBlock {
    /// The value of `name` as text, if present and UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    /// The uncompressed block.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&u32::try_from(self.pairs.len()).unwrap_or(0).to_be_bytes());
        for (name, value) in &self.pairs {
            for part in [name.as_bytes(), value.as_slice()] {
                out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(0).to_be_bytes());
                out.extend_from_slice(part);
            }
        }
        out
    }

    /// Parses an uncompressed block; the whole input must be used.
    pub fn decode(bytes: &[u8]) -> Result<Self, SpdyError> {
        let count = be32(bytes, 0).ok_or(SpdyError::HeaderBlock)? as usize;
        if count > MAX_HEADERS {
            return Err(SpdyError::HeaderBlockTooLarge);
        }
        let mut at = 4;
        let take = |at: &mut usize| -> Result<Vec<u8>, SpdyError> {
            let length = be32(bytes, *at).ok_or(SpdyError::HeaderBlock)? as usize;
            let start = *at + 4;
            let part = bytes
                .get(start..start.saturating_add(length))
                .ok_or(SpdyError::HeaderBlock)?;
            *at = start + length;
            Ok(part.to_vec())
        };
        let mut pairs = Vec::with_capacity(count);
        for _ in 0..count {
            let name = String::from_utf8(take(&mut at)?).map_err(|_| SpdyError::HeaderBlock)?;
            let value = take(&mut at)?;
            // A name twice is refused, as the Go peers refuse it: the
            // gateway must never read another `port` than the kubelet.
            if name.is_empty()
                || name.bytes().any(|byte| byte.is_ascii_uppercase())
                || pairs.iter().any(|(seen, _)| *seen == name)
            {
                return Err(SpdyError::HeaderBlock);
            }
            pairs.push((name, value));
        }
        if at != bytes.len() {
            return Err(SpdyError::HeaderBlock);
        }
        Ok(Self { pairs })
    }
}

/// SPDY/3's header-compression dictionary (SPDY protocol draft 3, section
/// 2.6.10.1): HTTP header names and common values, each length-prefixed,
/// then a run of status codes, reason phrases, dates and media types.
pub fn dictionary() -> &'static [u8] {
    static DICTIONARY: OnceLock<Vec<u8>> = OnceLock::new();
    DICTIONARY.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413",
            "414415416417502504505",
            "203 Non-Authoritative Information204 No Content301 Moved Permanently",
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found",
            "500 Internal Server Error501 Not Implemented503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
            "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        );
        let mut out = Vec::with_capacity(1424);
        for word in WORDS {
            out.extend_from_slice(&u32::try_from(word.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(word.as_bytes());
        }
        out.extend_from_slice(TAIL.as_bytes());
        out
    })
}

/// Adler-32 (RFC 1950), for the zlib header's dictionary id.
pub fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in bytes {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// The window the inflater keeps (deflate's 32 KiB history).
const WINDOW: usize = 32 * 1024;

/// Inflates one direction's header blocks: one zlib stream across all of
/// them, with SPDY's dictionary preset.
pub struct HeaderInflater {
    state: Box<DecompressorOxide>,
    /// Deflate's history, a ring of [`WINDOW`] bytes, the dictionary first.
    ring: Vec<u8>,
    position: usize,
    /// The zlib header still to read (2 bytes, then 4 of dictionary id).
    header: Vec<u8>,
    header_done: bool,
    failed: bool,
}

impl std::fmt::Debug for HeaderInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderInflater")
            .field("position", &self.position)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Default for HeaderInflater {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderInflater {
    pub fn new() -> Self {
        let mut ring = vec![0u8; WINDOW];
        let dictionary = dictionary();
        if let Some(start) = ring.get_mut(..dictionary.len()) {
            start.copy_from_slice(dictionary);
        }
        Self {
            state: Box::default(),
            ring,
            position: dictionary.len(),
            header: Vec::new(),
            header_done: false,
            failed: false,
        }
    }

    /// The next header block, inflated and parsed.
    pub fn headers(&mut self, compressed: &[u8]) -> Result<HeaderBlock, SpdyError> {
        let raw = self.inflate(compressed)?;
        HeaderBlock::decode(&raw)
    }

    /// Inflates the next compressed block (at most [`MAX_HEADER_BLOCK`]
    /// bytes out). After an error the stream is unusable.
    pub fn inflate(&mut self, mut compressed: &[u8]) -> Result<Vec<u8>, SpdyError> {
        if self.failed {
            return Err(SpdyError::Compression("an earlier block failed"));
        }
        let result = (|| {
            if !self.header_done {
                compressed = self.read_header(compressed)?;
            }
            let mut out = Vec::new();
            loop {
                let room = WINDOW - self.position;
                let (status, used, written) = decompress_with_limit(
                    &mut self.state,
                    compressed,
                    &mut self.ring,
                    self.position,
                    room,
                    inflate_flags::TINFL_FLAG_HAS_MORE_INPUT,
                );
                let fresh = self
                    .ring
                    .get(self.position..self.position + written)
                    .ok_or(SpdyError::Compression("inflate overran its window"))?;
                if out.len() + fresh.len() > MAX_HEADER_BLOCK {
                    return Err(SpdyError::HeaderBlockTooLarge);
                }
                out.extend_from_slice(fresh);
                self.position = (self.position + written) % WINDOW;
                compressed = compressed.get(used..).unwrap_or(&[]);
                match status {
                    TINFLStatus::NeedsMoreInput if compressed.is_empty() => return Ok(out),
                    TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput => {
                        if used == 0 && written == 0 && status == TINFLStatus::NeedsMoreInput {
                            return Err(SpdyError::Compression("no progress"));
                        }
                    }
                    TINFLStatus::Done => return Err(SpdyError::Compression("the stream ended")),
                    _ => return Err(SpdyError::Compression("invalid deflate data")),
                }
            }
        })();
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn read_header<'b>(&mut self, compressed: &'b [u8]) -> Result<&'b [u8], SpdyError> {
        let mut rest = compressed;
        while self.header.len() < 2 {
            let Some((&byte, tail)) = rest.split_first() else {
                return Ok(rest);
            };
            self.header.push(byte);
            rest = tail;
        }
        let (Some(&cmf), Some(&flg)) = (self.header.first(), self.header.get(1)) else {
            return Ok(rest);
        };
        if cmf & 0x0f != 8 || cmf >> 4 > 7 || (u16::from(cmf) * 256 + u16::from(flg)) % 31 != 0 {
            return Err(SpdyError::Compression("bad zlib header"));
        }
        let wants = if flg & 0x20 != 0 { 6 } else { 2 };
        while self.header.len() < wants {
            let Some((&byte, tail)) = rest.split_first() else {
                return Ok(rest);
            };
            self.header.push(byte);
            rest = tail;
        }
        if wants == 6 && be32(&self.header, 2) != Some(adler32(dictionary())) {
            return Err(SpdyError::Compression("another dictionary"));
        }
        self.header_done = true;
        Ok(rest)
    }
}

/// Compresses one direction's header blocks as stored deflate blocks of
/// one zlib stream (the dictionary named, as SPDY requires, but unused),
/// each block ended by a sync flush.
#[derive(Debug, Default)]
pub struct HeaderDeflater {
    started: bool,
}

impl HeaderDeflater {
    pub fn new() -> Self {
        Self::default()
    }

    /// The compressed form of `block`.
    pub fn compress(&mut self, block: &HeaderBlock) -> Vec<u8> {
        self.deflate(&block.encode())
    }

    /// `raw` as the next part of the zlib stream.
    pub fn deflate(&mut self, raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.len() + 16);
        if !self.started {
            self.started = true;
            // CMF: deflate, 32 KiB window; FLG: FDICT, check bits.
            out.extend_from_slice(&[0x78, 0xbb]);
            out.extend_from_slice(&adler32(dictionary()).to_be_bytes());
        }
        for chunk in raw.chunks(0xffff) {
            let length = u16::try_from(chunk.len()).unwrap_or(0);
            out.push(0x00);
            out.extend_from_slice(&length.to_le_bytes());
            out.extend_from_slice(&(!length).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // A sync flush (an empty stored block), as every SPDY compressor
        // ends a header block: Go's inflater hands out a stored block's
        // bytes only once it has read the block after it.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    /// A header block as Python's zlib (level 9, SPDY's dictionary, sync
    /// flush) compresses it, twice in one stream: what a Go peer's
    /// compressor does.
    fn zlib_vectors() -> (Vec<u8>, Vec<u8>) {
        let first = hex::decode(FIRST.trim()).unwrap();
        let second = hex::decode(SECOND.trim()).unwrap();
        (first, second)
    }

    // python3 -c 'import zlib; d=<dictionary()>; c=zlib.compressobj(9, zdict=d); ...'
    // blocks: {streamtype: error, port: 8080, requestid: 0}, then data.
    const FIRST: &str = include_str!("spdy_vectors/first.hex");
    const SECOND: &str = include_str!("spdy_vectors/second.hex");

    fn forward(kind: &str) -> HeaderBlock {
        HeaderBlock {
            pairs: vec![
                ("streamtype".into(), kind.as_bytes().to_vec()),
                ("port".into(), b"8080".to_vec()),
                ("requestid".into(), b"0".to_vec()),
            ],
        }
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        assert_eq!(dictionary().len(), 1423);
        assert!(dictionary().starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(dictionary().ends_with(b",utf-,*,enq=0."));
    }

    #[test]
    fn a_real_compressors_blocks_inflate() {
        let (first, second) = zlib_vectors();
        let mut inflater = HeaderInflater::new();
        assert_eq!(inflater.headers(&first).unwrap(), forward("error"));
        assert_eq!(inflater.headers(&second).unwrap(), forward("data"));
    }

    #[test]
    fn stored_blocks_round_trip() {
        let mut deflater = HeaderDeflater::new();
        let mut inflater = HeaderInflater::new();
        for kind in ["error", "data", "error"] {
            let block = forward(kind);
            let compressed = deflater.compress(&block);
            // Ended by a sync flush, or Go's inflater never hands it out.
            assert!(compressed.ends_with(&[0, 0, 0, 0xff, 0xff]));
            assert_eq!(inflater.headers(&compressed).unwrap(), block);
        }
    }

    #[test]
    fn frames_round_trip_and_split_anywhere() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                header_block: vec![1, 2, 3],
            },
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                payload: b"hello".to_vec(),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                header_block: vec![9],
            },
            Frame::RstStream {
                stream_id: 3,
                status: REFUSED_STREAM,
            },
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for split in 0..bytes.len() {
            let mut reader = FrameReader::new(1024);
            let mut got = Vec::new();
            for part in [&bytes[..split], &bytes[split..]] {
                reader.push(part);
                while let Some(frame) = reader.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got, frames);
        }
        let ping = [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1];
        let mut reader = FrameReader::new(64);
        reader.push(&ping);
        let frame = reader.next_frame().unwrap().unwrap();
        assert_eq!(frame.encode(), ping);
    }

    #[test]
    fn what_cannot_be_read_is_refused() {
        let cases: [(&[u8], SpdyError); 4] = [
            (
                &[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1],
                SpdyError::Version(2),
            ),
            (&[0x80, 3, 0, 10, 0, 0, 0, 0], SpdyError::UnknownType(10)),
            (&[0, 0, 0, 0, 0, 0, 0, 0], SpdyError::StreamZero),
            (&[0, 0, 0, 1, 0, 1, 0, 0], SpdyError::TooLarge(65_544)),
        ];
        for (bytes, expected) in cases {
            let mut reader = FrameReader::new(200);
            reader.push(bytes);
            assert_eq!(reader.next_frame(), Err(expected.clone()));
            assert_eq!(reader.next_frame(), Err(expected));
        }
        let mut inflater = HeaderInflater::new();
        assert!(inflater.inflate(&[0x78, 0xbb, 0, 0, 0, 0]).is_err());
        let mut deflater = HeaderDeflater::new();
        let mut inflater = HeaderInflater::new();
        let huge = vec![b'x'; MAX_HEADER_BLOCK + 1];
        assert_eq!(
            inflater.inflate(&deflater.deflate(&huge)),
            Err(SpdyError::HeaderBlockTooLarge)
        );
        assert!(HeaderBlock::decode(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
        assert!(HeaderBlock::decode(&[0, 0, 0, 0, 7]).is_err());
        let twice = HeaderBlock {
            pairs: vec![
                ("port".into(), b"8080".to_vec()),
                ("port".into(), b"22".to_vec()),
            ],
        };
        assert_eq!(
            HeaderBlock::decode(&twice.encode()),
            Err(SpdyError::HeaderBlock)
        );
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut reader = FrameReader::new(1 << 16);
            reader.push(&bytes);
            let mut inflater = HeaderInflater::new();
            while let Ok(Some(frame)) = reader.next_frame() {
                if let Frame::SynStream { header_block, .. } = &frame {
                    let _ = inflater.headers(header_block);
                }
            }
            let mut inflater = HeaderInflater::new();
            let _ = inflater.inflate(&bytes);
            let _ = HeaderBlock::decode(&bytes);
        }

        #[test]
        fn any_block_round_trips(pairs in proptest::collection::btree_map("[a-z-]{1,12}", proptest::collection::vec(any::<u8>(), 0..40), 0..10)) {
            let block = HeaderBlock { pairs: pairs.into_iter().collect() };
            let mut deflater = HeaderDeflater::new();
            let mut inflater = HeaderInflater::new();
            for _ in 0..3 {
                prop_assert_eq!(inflater.headers(&deflater.compress(&block)).unwrap(), block.clone());
            }
        }
    }
}
