//! A share group's record in `__consumer_offsets`, in Kafka's schema: `ShareGroupMetadata`
//! (key type 11: the group id; value v0, flexible: the group epoch and a metadata hash).
//! It keeps the group, and its epoch, across a restart or a coordinator move; members
//! join again as after a coordinator move, and their share-partitions keep their state
//! in `__share_group_state`.

use bytes::{BufMut, Bytes, BytesMut};

use super::records::{get_i16, get_i32, get_str, need, put_str, RecordError};

/// `ShareGroupMetadataKey`'s record type.
const SHARE_GROUP_METADATA: i16 = 11;
/// `ShareGroupMetadataValue`'s version.
const VALUE_VERSION: i16 = 0;

/// The key of a share group's record.
pub(crate) fn key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(SHARE_GROUP_METADATA);
    put_str(&mut b, group);
    b.freeze()
}

/// The value: the group epoch (Sluice writes no metadata hash: 0).
pub(crate) fn value(epoch: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(VALUE_VERSION);
    b.put_i32(epoch);
    b.put_i64(0);
    b.put_u8(0); // no tagged fields
    b.freeze()
}

/// The group a share group record is about; `None` for other record types.
pub(crate) fn group_of(key: &[u8]) -> Result<Option<String>, RecordError> {
    let mut k = key;
    if get_i16(&mut k)? != SHARE_GROUP_METADATA {
        return Ok(None);
    }
    get_str(&mut k).map(Some)
}

/// The group epoch of a value.
pub(crate) fn decode_epoch(value: &[u8]) -> Result<i32, RecordError> {
    let mut v = value;
    need(v, 2 + 4 + 8)?;
    get_i16(&mut v)?;
    get_i32(&mut v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_kafkas_layout() {
        assert_eq!(&key("sg")[..], &[0, 11, 0, 2, b's', b'g']);
        assert_eq!(group_of(&key("sg")).unwrap(), Some("sg".to_string()));
        assert_eq!(group_of(&[0, 3, 0, 1, b'c']).unwrap(), None);
        let v = value(7);
        let mut want = vec![0, 0, 0, 0, 0, 7];
        want.extend([0; 8]);
        want.push(0);
        assert_eq!(&v[..], &want[..]);
        assert_eq!(decode_epoch(&v).unwrap(), 7);
        assert!(decode_epoch(&v[..5]).is_err());
    }
}
