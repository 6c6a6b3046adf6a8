//! Stream plumbing shared by listeners and upstream connections.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// A byte stream: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed [`Io`], so plain and TLS sessions share one code path.
pub type BoxedIo = Box<dyn Io>;

/// Reads more bytes into `buf`; returns how many, `0` at a clean end of
/// stream.
pub async fn read_more<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(8192);
    }
    reader.read_buf(buf).await
}
