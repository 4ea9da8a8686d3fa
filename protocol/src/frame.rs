//! Length-prefixed request frames: "need more bytes", "here is a frame", or "garbage".

use bytes::{Buf, Bytes, BytesMut};

/// Why a frame cannot be read; the connection that sent it is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("negative frame size {0}")]
    Negative(i32),
    /// The size exceeds `socket.request.max.bytes`.
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge {
        /// Declared size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
}

/// Takes one whole frame (without its 4-byte size) off the front of `buf`, or returns
/// `Ok(None)` when more bytes are needed. The size is checked before any body is buffered.
pub fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    if buf.len() < 4 + size {
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_then_whole() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 1, 2][..]);
        assert_eq!(take_frame(&mut buf, 10), Ok(None));
        buf.extend_from_slice(&[3, 0, 0]);
        assert_eq!(
            take_frame(&mut buf, 10),
            Ok(Some(Bytes::from_static(&[1, 2, 3])))
        );
        assert_eq!(&buf[..], &[0, 0]);
    }

    #[test]
    fn oversized_and_negative_are_errors() {
        let mut buf = BytesMut::from(&[0u8, 0, 1, 0][..]);
        assert_eq!(
            take_frame(&mut buf, 255),
            Err(FrameError::TooLarge {
                size: 256,
                max: 255
            })
        );
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert_eq!(take_frame(&mut buf, 255), Err(FrameError::Negative(-1)));
    }
}
