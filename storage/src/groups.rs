//! Consumer-group state as the coordinator holds it (a group's last completed generation,
//! committed offsets), and its RocksDB column families. The broker now keeps groups in
//! `__consumer_offsets`; it reads these column families once, to move what an earlier
//! version stored there, and then empties them.

use rocksdb::{Direction, IteratorMode, WriteBatch};

use crate::codec::{Reader, Writer};
use crate::db::{CF_COMMITTED, CF_GROUPS};
use crate::{Storage, StorageError};

/// A group as stored after each completed generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupRecord {
    /// Protocol type (`consumer`, `connect`, …); `None` for a group that only commits offsets.
    pub protocol_type: Option<String>,
    /// Generation id.
    pub generation: i32,
    /// The protocol selected for this generation.
    pub protocol: Option<String>,
    /// Member id of the leader.
    pub leader: Option<String>,
    /// When the group last changed state (ms since the epoch).
    pub state_timestamp: i64,
    /// The members of the generation.
    pub members: Vec<MemberRecord>,
}

/// One member of a stored generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberRecord {
    /// Member id the coordinator gave the member.
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Rebalance timeout the member asked for.
    pub rebalance_timeout_ms: i32,
    /// Session timeout the member asked for.
    pub session_timeout_ms: i32,
    /// The member's metadata for the selected protocol, never interpreted.
    pub subscription: Vec<u8>,
    /// The assignment the leader gave the member, never interpreted.
    pub assignment: Vec<u8>,
}

/// A committed offset with what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The committed offset.
    pub offset: i64,
    /// Leader epoch of the committed offset, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms since the epoch).
    pub commit_timestamp: i64,
}

const GROUP_RECORD_VERSION: i8 = 0;

impl GroupRecord {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i8(GROUP_RECORD_VERSION)
            .opt_str(self.protocol_type.as_deref())
            .i32(self.generation)
            .opt_str(self.protocol.as_deref())
            .opt_str(self.leader.as_deref())
            .i64(self.state_timestamp)
            .i32(self.members.len() as i32);
        for m in &self.members {
            w.str(&m.member_id)
                .opt_str(m.group_instance_id.as_deref())
                .str(&m.client_id)
                .str(&m.client_host)
                .i32(m.rebalance_timeout_ms)
                .i32(m.session_timeout_ms)
                .bytes(&m.subscription)
                .bytes(&m.assignment);
        }
        w.0
    }

    fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(bytes, "group record");
        if r.i8()? != GROUP_RECORD_VERSION {
            return Err(StorageError::Corrupt("unknown group record version".into()));
        }
        let protocol_type = r.opt_str()?;
        let generation = r.i32()?;
        let protocol = r.opt_str()?;
        let leader = r.opt_str()?;
        let state_timestamp = r.i64()?;
        let count = r.i32()?.max(0) as usize;
        let mut members = Vec::new();
        for _ in 0..count {
            members.push(MemberRecord {
                member_id: r.str()?,
                group_instance_id: r.opt_str()?,
                client_id: r.str()?,
                client_host: r.str()?,
                rebalance_timeout_ms: r.i32()?,
                session_timeout_ms: r.i32()?,
                subscription: r.bytes()?.to_vec(),
                assignment: r.bytes()?.to_vec(),
            });
        }
        Ok(GroupRecord {
            protocol_type,
            generation,
            protocol,
            leader,
            state_timestamp,
            members,
        })
    }
}

impl CommittedOffset {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i64(self.offset)
            .i32(self.leader_epoch)
            .i64(self.commit_timestamp)
            .str(&self.metadata);
        w.0
    }

    fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(bytes, "committed offset");
        Ok(CommittedOffset {
            offset: r.i64()?,
            leader_epoch: r.i32()?,
            commit_timestamp: r.i64()?,
            metadata: r.str()?,
        })
    }
}

/// Key prefix of one group's committed offsets: length-prefixed group id.
fn group_prefix(group: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(group);
    w.0
}

fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut w = Writer(group_prefix(group));
    w.str(topic).i32(partition);
    w.0
}

fn decode_offset_key(key: &[u8]) -> Result<(String, String, i32), StorageError> {
    let mut r = Reader::new(key, "committed offset key");
    let group = r.str()?;
    let topic = r.str()?;
    let partition = r.i32()?;
    if !r.is_empty() {
        return Err(StorageError::Corrupt(
            "malformed committed offset key".into(),
        ));
    }
    Ok((group, topic, partition))
}

/// Committed offsets of one group: (topic, partition, offset).
pub type GroupOffsets = Vec<(String, i32, CommittedOffset)>;

impl Storage {
    /// Stores a group's state, replacing what was there.
    pub fn store_group(&self, group: &str, record: &GroupRecord) -> Result<(), StorageError> {
        let mut wb = WriteBatch::default();
        wb.put_cf(self.db.cf(CF_GROUPS)?, group.as_bytes(), record.encode());
        self.db.write(wb, false)
    }

    /// Every stored group with its committed offsets, for the coordinator's start-up.
    pub fn load_groups(
        &self,
    ) -> Result<Vec<(String, Option<GroupRecord>, GroupOffsets)>, StorageError> {
        let mut groups: std::collections::BTreeMap<String, (Option<GroupRecord>, GroupOffsets)> =
            Default::default();
        let cf = self.db.cf(CF_GROUPS)?;
        for item in self.db.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            let name = String::from_utf8(key.to_vec())
                .map_err(|_| StorageError::Corrupt("group id is not UTF-8".into()))?;
            groups.entry(name).or_default().0 = Some(GroupRecord::decode(&value)?);
        }
        let cf = self.db.cf(CF_COMMITTED)?;
        for item in self.db.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            let (group, topic, partition) = decode_offset_key(&key)?;
            groups.entry(group).or_default().1.push((
                topic,
                partition,
                CommittedOffset::decode(&value)?,
            ));
        }
        Ok(groups
            .into_iter()
            .map(|(name, (record, offsets))| (name, record, offsets))
            .collect())
    }

    /// Stores committed offsets of one group in one atomic write.
    pub fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Result<(), StorageError> {
        let cf = self.db.cf(CF_COMMITTED)?;
        let mut wb = WriteBatch::default();
        for (topic, partition, committed) in offsets {
            wb.put_cf(cf, offset_key(group, topic, *partition), committed.encode());
        }
        self.db.write(wb, false)
    }

    /// Deletes some committed offsets of one group.
    pub fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), StorageError> {
        let cf = self.db.cf(CF_COMMITTED)?;
        let mut wb = WriteBatch::default();
        for (topic, partition) in partitions {
            wb.delete_cf(cf, offset_key(group, topic, *partition));
        }
        self.db.write(wb, false)
    }

    /// Deletes a group: its state and every committed offset.
    pub fn delete_group(&self, group: &str) -> Result<(), StorageError> {
        let committed = self.db.cf(CF_COMMITTED)?;
        let prefix = group_prefix(group);
        let mut wb = WriteBatch::default();
        wb.delete_cf(self.db.cf(CF_GROUPS)?, group.as_bytes());
        for item in self
            .db
            .db
            .iterator_cf(committed, IteratorMode::From(&prefix, Direction::Forward))
        {
            let (key, _) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            wb.delete_cf(committed, key);
        }
        self.db.write(wb, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_record_round_trips() {
        let record = GroupRecord {
            protocol_type: Some("connect".into()),
            generation: 7,
            protocol: Some("sessioned".into()),
            leader: Some("m-1".into()),
            state_timestamp: 1_700_000_000_000,
            members: vec![MemberRecord {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 60_000,
                session_timeout_ms: 10_000,
                subscription: vec![0, 0xff, 3],
                assignment: vec![],
            }],
        };
        assert_eq!(GroupRecord::decode(&record.encode()).unwrap(), record);
        assert!(GroupRecord::decode(&record.encode()[..20]).is_err());
    }

    #[test]
    fn offset_keys_of_one_group_share_its_prefix_only() {
        let key = offset_key("g", "orders", 3);
        assert!(key.starts_with(&group_prefix("g")));
        assert!(!key.starts_with(&group_prefix("g2")));
        assert!(!offset_key("g2", "orders", 3).starts_with(&group_prefix("g")));
        assert_eq!(
            decode_offset_key(&key).unwrap(),
            ("g".to_string(), "orders".to_string(), 3)
        );
    }
}
