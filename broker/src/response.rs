//! A response as it goes to the socket: encoded bytes and, for Fetch, record batches left
//! in their segment files. A plaintext connection sends those with sendfile, so the
//! batches never pass through the broker's memory; a TLS connection reads them in chunks.

use std::future::Future;
use std::io;

use bytes::Bytes;
use sluice_storage::FileRegion;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// Bytes read from a segment per write on a connection that cannot use sendfile.
const COPY_CHUNK: usize = 256 * 1024;

/// Responses up to this size go out in one write, file regions read in: for the small
/// fetches of a consumer at the head of the log, one syscall and one TCP segment cost less
/// than a header write and a sendfile.
const ONE_WRITE_MAX: usize = 64 * 1024;

/// One part of a response, written in order.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    /// Encoded bytes.
    Bytes(Bytes),
    /// Record batches in a segment file.
    File(FileRegion),
}

/// A whole response frame (size prefix included) in pieces.
#[derive(Debug, Clone, Default)]
pub(crate) struct Response {
    pub(crate) pieces: Vec<Piece>,
}

impl From<Bytes> for Response {
    fn from(bytes: Bytes) -> Self {
        Response {
            pieces: vec![Piece::Bytes(bytes)],
        }
    }
}

impl Piece {
    /// Length in bytes.
    fn len(&self) -> usize {
        match self {
            Piece::Bytes(b) => b.len(),
            Piece::File(r) => r.len(),
        }
    }
}

impl Response {
    /// Length of the frame in bytes.
    pub(crate) fn len(&self) -> usize {
        self.pieces.iter().map(Piece::len).sum()
    }

    /// The frame in one buffer, reading any file regions (for tests and small answers).
    #[cfg(test)]
    pub(crate) fn to_bytes(&self) -> io::Result<Bytes> {
        let mut out = Vec::with_capacity(self.len());
        for p in &self.pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::File(r) => out.extend_from_slice(&r.read().map_err(io::Error::other)?),
            }
        }
        Ok(Bytes::from(out))
    }
}

/// A connection's stream, and how it sends a file region.
pub(crate) trait ResponseStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// Writes the region's bytes; `scratch` is the connection's reusable copy buffer.
    fn write_region<'a>(
        &'a mut self,
        region: &'a FileRegion,
        scratch: &'a mut Vec<u8>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        copy_region(self, region, scratch)
    }
}

impl ResponseStream for tokio_rustls::server::TlsStream<TcpStream> {}

impl ResponseStream for TcpStream {
    async fn write_region(
        &mut self,
        region: &FileRegion,
        _scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        let stream: &TcpStream = self;
        let mut offset = region.position();
        let end = offset + region.len() as u64;
        while offset < end {
            stream.writable().await?;
            let count = usize::try_from(end - offset).unwrap_or(usize::MAX);
            let sent = stream.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(stream, region.file(), Some(&mut offset), count)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ends before the {} indexed bytes at {}",
                            region.path().display(),
                            region.len(),
                            region.position()
                        ),
                    ))
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Sends a region by reading it in chunks into `scratch` (TLS must encrypt the bytes).
async fn copy_region<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    region: &FileRegion,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    let chunk = COPY_CHUNK.min(region.len());
    if scratch.len() < chunk {
        scratch.resize(chunk, 0);
    }
    let mut done = 0;
    while done < region.len() {
        let n = (region.len() - done).min(scratch.len());
        // A page-cache read, as Kafka's network threads do: a cold read blocks this worker
        // for as long as the disk takes.
        region.read_exact_at(done, &mut scratch[..n])?;
        stream.write_all(&scratch[..n]).await?;
        done += n;
    }
    Ok(())
}

/// Writes a whole response and flushes it, so a TLS stream's records reach the socket.
pub(crate) async fn write_response<S: ResponseStream>(
    stream: &mut S,
    response: &Response,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    let len = response.len();
    if response.pieces.len() > 1 && len <= ONE_WRITE_MAX {
        if scratch.len() < len {
            scratch.resize(len, 0);
        }
        let mut at = 0;
        for piece in &response.pieces {
            let to = &mut scratch[at..at + piece.len()];
            match piece {
                Piece::Bytes(b) => to.copy_from_slice(b),
                Piece::File(r) => r.read_exact_at(0, to)?,
            }
            at += piece.len();
        }
        stream.write_all(&scratch[..len]).await?;
        return stream.flush().await;
    }
    for piece in &response.pieces {
        match piece {
            Piece::Bytes(b) => stream.write_all(b).await?,
            Piece::File(r) => stream.write_region(r, scratch).await?,
        }
    }
    stream.flush().await
}
