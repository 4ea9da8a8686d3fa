//! The topic catalog: topic name → id, partition count and config overrides, in RocksDB.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::StorageError;

/// A topic as the catalog stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    /// Topic name.
    pub name: String,
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// Config overrides set on the topic.
    pub configs: BTreeMap<String, String>,
}

impl TopicRecord {
    /// Serialised form: id, partition count, then length-prefixed config pairs.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(self.id.as_bytes());
        v.extend_from_slice(&self.partitions.to_be_bytes());
        for (k, val) in &self.configs {
            for s in [k, val] {
                v.extend_from_slice(&(s.len() as u32).to_be_bytes());
                v.extend_from_slice(s.as_bytes());
            }
        }
        v
    }

    pub(crate) fn decode(name: &str, v: &[u8]) -> Result<Self, StorageError> {
        let bad = || StorageError::Corrupt(format!("malformed catalog entry for topic {name}"));
        let id = Uuid::from_slice(v.get(..16).ok_or_else(bad)?).map_err(|_| bad())?;
        let partitions = i32::from_be_bytes(
            v.get(16..20)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        let mut configs = BTreeMap::new();
        let mut rest = &v[20..];
        let take = |rest: &mut &[u8]| -> Result<String, StorageError> {
            let len = u32::from_be_bytes(
                rest.get(..4)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            ) as usize;
            let s = rest.get(4..4 + len).ok_or_else(bad)?;
            let s = String::from_utf8(s.to_vec()).map_err(|_| bad())?;
            *rest = &rest[4 + len..];
            Ok(s)
        };
        while !rest.is_empty() {
            let k = take(&mut rest)?;
            let val = take(&mut rest)?;
            configs.insert(k, val);
        }
        Ok(TopicRecord {
            name: name.to_string(),
            id,
            partitions,
            configs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        let t = TopicRecord {
            name: "orders".into(),
            id: Uuid::new_v4(),
            partitions: 12,
            configs,
        };
        assert_eq!(TopicRecord::decode("orders", &t.encode()).unwrap(), t);
        assert!(TopicRecord::decode("orders", &t.encode()[..30]).is_err());
    }
}
