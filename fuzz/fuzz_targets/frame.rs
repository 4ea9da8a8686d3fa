//! Frame splitting on a connection's byte stream: sizes of any value, frames cut anywhere.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_protocol::frame::take_frame;

fuzz_target!(|data: &[u8]| {
    let max = 64 * 1024;
    // The stream arrives in two reads split where the input says.
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut buf = BytesMut::from(&data[..split]);
    let mut rest = &data[split..];
    loop {
        match take_frame(&mut buf, max) {
            Ok(Some(frame)) => assert!(frame.len() <= max),
            Ok(None) if !rest.is_empty() => {
                buf.extend_from_slice(rest);
                rest = &[];
            }
            Ok(None) | Err(_) => break,
        }
    }
});
