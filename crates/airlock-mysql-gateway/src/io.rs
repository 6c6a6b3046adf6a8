//! Packet streams: a byte stream (TCP, or TLS over TCP) with its read
//! buffer and the codec that frames one MySQL conversation. Reads are
//! bounded by the codec's packet bound: a header announcing more than the
//! bound is an error before its payload is buffered.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

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

/// A stream with bytes already read from it put back in front: the start
/// of a TLS handshake that arrived in the same read as the SSLRequest
/// (PyMySQL sends its ClientHello right behind it). The TLS layer reads
/// them as TLS records, so nothing sent before the handshake can ever be
/// read as a MySQL packet from inside TLS.
pub struct Rewound {
    prefix: BytesMut,
    inner: BoxedIo,
}

impl Rewound {
    pub fn new(prefix: BytesMut, inner: BoxedIo) -> Self {
        Self { prefix, inner }
    }
}

impl AsyncRead for Rewound {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let count = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(count);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        if self.prefix.capacity() > 0 {
            // Drained: give the buffer back.
            self.prefix = BytesMut::new();
        }
        Pin::new(&mut self.inner).poll_read(context, buf)
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}
