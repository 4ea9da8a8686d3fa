//! Client quota configs (KIP-546): per entity (user, client id, or both; a `None` name
//! is the entity type's default), the quota values by key, kept across restarts.

use std::collections::BTreeMap;
use std::sync::Arc;

use rocksdb::{IteratorMode, WriteBatch};

use crate::codec::{Reader, Writer};
use crate::db::{Db, CF_QUOTAS};
use crate::StorageError;

/// A quota entity: (entity type, name) pairs in type order; `None` names the default.
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// Quota values by key (`producer_byte_rate`, ...).
pub type QuotaValues = BTreeMap<String, f64>;

/// The client quota store of a data directory.
#[derive(Clone)]
pub struct QuotaStore {
    db: Arc<Db>,
}

/// An entity as bytes (its stored key).
pub fn encode_entity(entity: &QuotaEntity) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(entity.len() as i32);
    for (kind, name) in entity {
        w.str(kind).opt_str(name.as_deref());
    }
    w.0
}

/// An entity from [`encode_entity`]'s bytes.
pub fn decode_entity(k: &[u8]) -> Result<QuotaEntity, StorageError> {
    let mut r = Reader::new(k, "quota entity");
    let n = r.i32()?;
    (0..n).map(|_| Ok((r.str()?, r.opt_str()?))).collect()
}

/// Quota values as bytes (their stored value).
pub fn encode_values(values: &QuotaValues) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(values.len() as i32);
    for (name, v) in values {
        w.str(name).i64(v.to_bits() as i64);
    }
    w.0
}

/// Quota values from [`encode_values`]'s bytes.
pub fn decode_values(v: &[u8]) -> Result<QuotaValues, StorageError> {
    let mut r = Reader::new(v, "quota values");
    let n = r.i32()?;
    let mut values = BTreeMap::new();
    for _ in 0..n {
        let name = r.str()?;
        values.insert(name, f64::from_bits(r.i64()? as u64));
    }
    Ok(values)
}

impl QuotaStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        QuotaStore { db }
    }

    /// Every entity's quotas.
    pub fn load(&self) -> Result<Vec<(QuotaEntity, QuotaValues)>, StorageError> {
        let mut out = Vec::new();
        for item in self
            .db
            .db
            .iterator_cf(self.db.cf(CF_QUOTAS)?, IteratorMode::Start)
        {
            let (k, v) = item?;
            out.push((decode_entity(&k)?, decode_values(&v)?));
        }
        Ok(out)
    }

    /// Stores an entity's quotas; an empty map removes the entity.
    pub fn put(
        &self,
        entity: &QuotaEntity,
        values: &BTreeMap<String, f64>,
    ) -> Result<(), StorageError> {
        let cf = self.db.cf(CF_QUOTAS)?;
        let mut wb = WriteBatch::default();
        if values.is_empty() {
            wb.delete_cf(cf, encode_entity(entity));
        } else {
            wb.put_cf(cf, encode_entity(entity), encode_values(values));
        }
        self.db.write(wb, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_persist() {
        let dir = tempfile::tempdir().unwrap();
        let entity: QuotaEntity = vec![
            ("user".into(), Some("alice".into())),
            ("client-id".into(), None),
        ];
        let values: BTreeMap<String, f64> = [("producer_byte_rate".to_string(), 1048576.0)].into();
        {
            let s = QuotaStore::new(Arc::new(Db::open(&dir.path().join("index")).unwrap()));
            s.put(&entity, &values).unwrap();
        }
        let s = QuotaStore::new(Arc::new(Db::open(&dir.path().join("index")).unwrap()));
        assert_eq!(s.load().unwrap(), vec![(entity.clone(), values)]);
        s.put(&entity, &BTreeMap::new()).unwrap();
        assert!(s.load().unwrap().is_empty());
    }
}
