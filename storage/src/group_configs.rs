//! Group configs (Kafka's resource type GROUP: `share.auto.offset.reset` and the like),
//! kept in the meta column family of a single node: prefix ‖ group ‖ 0 ‖ name → value.

use std::collections::BTreeMap;

use rocksdb::{Direction, IteratorMode, WriteBatch};

use crate::codec::{Reader, Writer};
use crate::db::CF_META;
use crate::{Storage, StorageError};

/// Key prefix of a group config.
const PREFIX: &[u8] = b"group.config\0";

fn key(group: &str, name: &str) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(group.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

/// A group's configs as bytes (how a cluster's shared set holds them).
pub fn encode_group_configs(configs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(configs.len() as i32);
    for (k, v) in configs {
        w.str(k).str(v);
    }
    w.0
}

/// A group's configs from [`encode_group_configs`]' bytes.
pub fn decode_group_configs(v: &[u8]) -> Result<BTreeMap<String, String>, StorageError> {
    let mut r = Reader::new(v, "group configs");
    let n = r.i32()?;
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let k = r.str()?;
        out.insert(k, r.str()?);
    }
    Ok(out)
}

impl Storage {
    /// Every group's stored configs.
    pub fn group_configs(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, StorageError> {
        let meta = self.db.cf(CF_META)?;
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for item in self
            .db
            .db
            .iterator_cf(meta, IteratorMode::From(PREFIX, Direction::Forward))
        {
            let (k, v) = item?;
            let Some(rest) = k.strip_prefix(PREFIX) else {
                break;
            };
            let bad = || StorageError::Corrupt("group config".into());
            let split = rest.iter().position(|b| *b == 0).ok_or_else(bad)?;
            let group = String::from_utf8(rest[..split].to_vec()).map_err(|_| bad())?;
            let name = String::from_utf8(rest[split + 1..].to_vec()).map_err(|_| bad())?;
            let value = String::from_utf8(v.to_vec()).map_err(|_| bad())?;
            out.entry(group).or_default().insert(name, value);
        }
        Ok(out)
    }

    /// Replaces a group's configs (empty: removes them), durably.
    pub fn set_group_configs(
        &self,
        group: &str,
        old: &BTreeMap<String, String>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        let meta = self.db.cf(CF_META)?;
        let mut wb = WriteBatch::default();
        for name in old.keys() {
            wb.delete_cf(meta, key(group, name));
        }
        for (name, value) in configs {
            wb.put_cf(meta, key(group, name), value.as_bytes());
        }
        self.db.write(wb, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_configs_encode_round_trip() {
        let c = BTreeMap::from([
            (
                "share.auto.offset.reset".to_string(),
                "earliest".to_string(),
            ),
            (
                "share.isolation.level".to_string(),
                "read_committed".to_string(),
            ),
        ]);
        assert_eq!(decode_group_configs(&encode_group_configs(&c)).unwrap(), c);
        assert!(decode_group_configs(&[0, 0, 0, 1]).is_err());
    }
}
