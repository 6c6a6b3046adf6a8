//! Packet streams: a byte stream (TCP, or TLS over TCP) with its read
//! buffer and the codec that frames one MySQL conversation. Reads are
//! bounded by the codec's packet bound: a header announcing more than the
//! bound is an error before its payload is buffered.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use airlock_mysql::{MySqlCodecError, Packet, PacketCodec};

/// A byte stream: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed [`Io`], so plain and TLS sessions share one code path.
pub type BoxedIo = Box<dyn Io>;

/// Why a packet could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Codec(#[from] MySqlCodecError),
}

/// One side of a session: its stream, what was read and not yet decoded,
/// and the conversation's framing.
pub struct PacketStream {
    pub stream: BoxedIo,
    pub buf: BytesMut,
    pub codec: PacketCodec,
    /// Bytes read and written, for `session.end`.
    pub bytes_in: u64,
}

impl PacketStream {
    pub fn new(stream: BoxedIo, codec: PacketCodec) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(4096),
            codec,
            bytes_in: 0,
        }
    }

    /// The next whole packet; [`StreamError::Closed`] at the end of stream.
    pub async fn read(&mut self) -> Result<Packet, StreamError> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.buf)? {
                return Ok(packet);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8192);
            }
            let read = self.stream.read_buf(&mut self.buf).await?;
            if read == 0 {
                return Err(StreamError::Closed);
            }
            self.bytes_in += read as u64;
        }
    }

    /// Frames `payload` with the conversation's next sequence id into `out`.
    pub fn frame(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        Ok(self.codec.encode(payload, out)?)
    }

    /// Frames and sends one packet.
    pub async fn write(&mut self, payload: &[u8]) -> Result<(), StreamError> {
        let mut out = BytesMut::with_capacity(payload.len() + 4);
        self.frame(payload, &mut out)?;
        self.send(&out).await
    }

    /// Sends bytes already framed.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Flushes and closes the write side (TLS close_notify included).
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
