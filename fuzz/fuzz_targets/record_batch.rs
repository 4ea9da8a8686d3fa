//! Record-batch validation as Produce does it: splitting a partition's records into
//! batches, checking each, and decoding (and decompressing) their records as compacted
//! topics and recompression do.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_protocol::batch::{control_type, min_record_timestamp, split_batches};
use sluice_protocol::records::decode_records;

fuzz_target!(|data: &[u8]| {
    let records = Bytes::copy_from_slice(data);
    let Ok(batches) = split_batches(&records) else {
        return;
    };
    for (_, batch) in batches {
        let _ = min_record_timestamp(&batch);
        let _ = control_type(&batch);
        let _ = decode_records(&batch);
    }
});
