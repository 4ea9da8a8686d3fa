//! Request decoding as the broker does it: an API key and version (kept within what the
//! `kafka-protocol` crate knows, a superset of what Sluice serves), then the request
//! header and the body at that version.

#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;
use sluice_protocol::request::{decode_body, decode_header};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let Ok(api) = ApiKey::try_from(i16::from_be_bytes([data[0], data[1]])) else {
        return;
    };
    let version = i16::from_be_bytes([data[2], data[3]]);
    let range = api.valid_versions();
    if version < range.min || version > range.max {
        return;
    }
    let mut frame = Bytes::copy_from_slice(data);
    if decode_header(api, version, &mut frame).is_ok() {
        let _ = decode_body(api, version, &mut frame);
    }
});
