//! SCRAM credentials (KIP-554): per user and mechanism, the salt, iteration count, stored
//! key and server key. Passwords and salted passwords are never stored.
//!
//! The store opens on its own (`open_offline`) so the `sluice scram` command can add
//! the first users before the broker is started, as `kafka-storage format --add-scram`
//! does.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{IteratorMode, WriteBatch};

use crate::codec::{Reader, Writer};
use crate::db::{Db, CF_SCRAM};
use crate::StorageError;

/// One user's credential for one SCRAM mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt the client salts its password with.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
    /// H(ClientKey): what the client's proof is checked against.
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key"): what the server proves itself with.
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// The credential as bytes (its stored value).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i8(0)
            .i32(self.iterations)
            .bytes(&self.salt)
            .bytes(&self.stored_key)
            .bytes(&self.server_key);
        w.0
    }

    /// A credential from [`ScramCredential::encode`]'s bytes.
    pub fn decode(v: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(v, "SCRAM credential");
        let _version = r.i8()?;
        Ok(ScramCredential {
            iterations: r.i32()?,
            salt: r.bytes()?.to_vec(),
            stored_key: r.bytes()?.to_vec(),
            server_key: r.bytes()?.to_vec(),
        })
    }
}

/// A user's credential as DescribeUserScramCredentials reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// The user name.
    pub user: String,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
}

/// The SCRAM credential store of a data directory.
#[derive(Clone)]
pub struct Credentials {
    db: Arc<Db>,
}

fn key(user: &str, mechanism: &str) -> Vec<u8> {
    // User names are UTF-8 and hold no NUL, so the separator keeps keys unambiguous.
    let mut k = Vec::with_capacity(user.len() + 1 + mechanism.len());
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.extend_from_slice(mechanism.as_bytes());
    k
}

impl Credentials {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Credentials { db }
    }

    /// Opens the store of a data directory whose broker is not running.
    pub fn open_offline(log_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(log_dir).map_err(|e| StorageError::io(log_dir, e))?;
        Ok(Credentials {
            db: Arc::new(Db::open(&log_dir.join("index"))?),
        })
    }

    /// The credential of `user` for `mechanism`, if there is one.
    pub fn get(
        &self,
        user: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredential>, StorageError> {
        match self
            .db
            .db
            .get_cf(self.db.cf(CF_SCRAM)?, key(user, mechanism))?
        {
            Some(v) => Ok(Some(ScramCredential::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Applies deletions and upserts as one durable write.
    pub fn apply(
        &self,
        deletions: &[(String, String)],
        upserts: &[(String, String, ScramCredential)],
    ) -> Result<(), StorageError> {
        let cf = self.db.cf(CF_SCRAM)?;
        let mut wb = WriteBatch::default();
        for (user, mechanism) in deletions {
            wb.delete_cf(cf, key(user, mechanism));
        }
        for (user, mechanism, credential) in upserts {
            wb.put_cf(cf, key(user, mechanism), credential.encode());
        }
        self.db.write(wb, true)
    }

    /// Every stored credential, by user then mechanism.
    pub fn list(&self) -> Result<Vec<ScramCredentialInfo>, StorageError> {
        let mut out = Vec::new();
        for item in self
            .db
            .db
            .iterator_cf(self.db.cf(CF_SCRAM)?, IteratorMode::Start)
        {
            let (k, v) = item?;
            let bad = || StorageError::Corrupt("SCRAM credential key".into());
            let sep = k.iter().position(|b| *b == 0).ok_or_else(bad)?;
            let user = std::str::from_utf8(&k[..sep]).map_err(|_| bad())?;
            let mechanism = std::str::from_utf8(&k[sep + 1..]).map_err(|_| bad())?;
            out.push(ScramCredentialInfo {
                user: user.to_string(),
                mechanism: mechanism.to_string(),
                iterations: ScramCredential::decode(&v)?.iterations,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::open_offline(dir.path()).unwrap();
        let cred = ScramCredential {
            salt: b"salt".to_vec(),
            iterations: 4096,
            stored_key: vec![1; 32],
            server_key: vec![2; 32],
        };
        c.apply(
            &[],
            &[
                ("alice".into(), "SCRAM-SHA-256".into(), cred.clone()),
                ("alice".into(), "SCRAM-SHA-512".into(), cred.clone()),
                ("bob".into(), "SCRAM-SHA-256".into(), cred.clone()),
            ],
        )
        .unwrap();
        c.apply(&[("bob".into(), "SCRAM-SHA-256".into())], &[])
            .unwrap();
        drop(c);
        let c = Credentials::open_offline(dir.path()).unwrap();
        assert_eq!(c.get("alice", "SCRAM-SHA-256").unwrap(), Some(cred));
        assert_eq!(c.get("bob", "SCRAM-SHA-256").unwrap(), None);
        let listed: Vec<_> = c
            .list()
            .unwrap()
            .into_iter()
            .map(|i| (i.user, i.mechanism))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("alice".to_string(), "SCRAM-SHA-256".to_string()),
                ("alice".to_string(), "SCRAM-SHA-512".to_string())
            ]
        );
    }
}
