//! ACL bindings (Kafka's resource pattern plus access control entry), kept so that they
//! survive restarts. The authorizer holds them in memory; this is only their record.

use std::sync::Arc;

use rocksdb::{IteratorMode, WriteBatch};

use crate::codec::{Reader, Writer};
use crate::db::{Db, CF_ACLS};
use crate::StorageError;

/// One ACL binding, with Kafka's wire codes for its enumerations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// Resource type code (2 topic, 3 group, 4 cluster, 5 transactional id, ...).
    pub resource_type: i8,
    /// Resource name, or a prefix for a prefixed pattern; `*` matches every name.
    pub resource_name: String,
    /// Pattern type code (3 literal, 4 prefixed).
    pub pattern_type: i8,
    /// `User:NAME`, or `User:*`.
    pub principal: String,
    /// Client host (IP address), or `*`.
    pub host: String,
    /// Operation code (2 all, 3 read, 4 write, ...).
    pub operation: i8,
    /// Permission code (2 deny, 3 allow).
    pub permission: i8,
}

impl AclBinding {
    /// The binding as bytes (its RocksDB key, and its value in a cluster's shared set).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i8(self.resource_type)
            .str(&self.resource_name)
            .i8(self.pattern_type)
            .str(&self.principal)
            .str(&self.host)
            .i8(self.operation)
            .i8(self.permission);
        w.0
    }

    /// A binding from [`AclBinding::encode`]'s bytes.
    pub fn decode(key: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(key, "ACL binding");
        Ok(AclBinding {
            resource_type: r.i8()?,
            resource_name: r.str()?,
            pattern_type: r.i8()?,
            principal: r.str()?,
            host: r.str()?,
            operation: r.i8()?,
            permission: r.i8()?,
        })
    }
}

/// The ACL store of a data directory.
#[derive(Clone)]
pub struct AclStore {
    db: Arc<Db>,
}

impl AclStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        AclStore { db }
    }

    /// Every stored binding.
    pub fn load(&self) -> Result<Vec<AclBinding>, StorageError> {
        let mut out = Vec::new();
        for item in self
            .db
            .db
            .iterator_cf(self.db.cf(CF_ACLS)?, IteratorMode::Start)
        {
            let (k, _) = item?;
            out.push(AclBinding::decode(&k)?);
        }
        Ok(out)
    }

    /// Adds and removes bindings in one durable write.
    pub fn apply(&self, add: &[AclBinding], remove: &[AclBinding]) -> Result<(), StorageError> {
        let cf = self.db.cf(CF_ACLS)?;
        let mut wb = WriteBatch::default();
        for b in remove {
            wb.delete_cf(cf, b.encode());
        }
        for b in add {
            wb.put_cf(cf, b.encode(), []);
        }
        self.db.write(wb, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_persist() {
        let dir = tempfile::tempdir().unwrap();
        let b = AclBinding {
            resource_type: 2,
            resource_name: "orders-".into(),
            pattern_type: 4,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 4,
            permission: 3,
        };
        {
            let db = Arc::new(Db::open(&dir.path().join("index")).unwrap());
            let s = AclStore::new(db);
            s.apply(std::slice::from_ref(&b), &[]).unwrap();
            assert_eq!(s.load().unwrap(), vec![b.clone()]);
        }
        let db = Arc::new(Db::open(&dir.path().join("index")).unwrap());
        let s = AclStore::new(db);
        assert_eq!(s.load().unwrap(), vec![b.clone()]);
        s.apply(&[], &[b]).unwrap();
        assert!(s.load().unwrap().is_empty());
    }
}
