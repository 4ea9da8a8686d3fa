//! The replica manager of broker 1 leading partition t-0 (replicas 1, 2, 3), on a real
//! log and the in-memory cluster metadata: what followers' fetches do to the ISR and the
//! high watermark, and what a deposed leader may still write to the metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_cluster::{BrokerRegistration, MemoryMetadata, TopicRecord};
use sluice_config::BrokerConfig;

use super::*;
use crate::replication::fetcher::{FetcherSettings, FollowerThrottle};
use crate::replication::leader::IsrChange;

const TOPIC: &str = "t";

struct Leader {
    _dir: tempfile::TempDir,
    store: MemoryMetadata,
    /// The other live brokers' sessions (a dropped client ends its registration).
    _others: Vec<MemoryMetadata>,
    manager: Arc<ReplicaManager>,
    partition: Arc<Partition>,
}

fn registration(node_id: i32) -> BrokerRegistration {
    BrokerRegistration {
        node_id,
        rack: None,
        endpoints: Vec::new(),
    }
}

fn partition_state(leader: i32, leader_epoch: i32, isr: &[i32]) -> PartitionState {
    PartitionState {
        leader,
        leader_epoch,
        isr: isr.to_vec(),
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        partition_epoch: 0,
    }
}

/// Broker 1 leads `t-0` in epoch 1 with `isr`; `live` brokers are registered. The log has
/// 5 records of epoch 0 (when 1 led before) and 5 of epoch 1.
async fn leader(isr: &[i32], live: &[i32], lag_time_max_ms: i64) -> Leader {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().to_string_lossy().into_owned();
    let config = BrokerConfig::from_properties([("log.dirs", logs.as_str())]).expect("config");
    let storage = Arc::new(Storage::open(&config).expect("storage"));
    let store = MemoryMetadata::new();
    let mut liveness = None;
    let mut others = Vec::new();
    for id in live {
        let client = store.join();
        let watch = client.register(registration(*id)).await.expect("register");
        if *id == 1 {
            liveness = Some((client, watch));
        } else {
            others.push(client);
        }
    }
    let (client, liveness) = liveness.expect("broker 1 is live");
    let topic = TopicRecord {
        name: TOPIC.to_string(),
        topic_id: Uuid::new_v4(),
        assignment: vec![vec![1, 2, 3]],
        configs: BTreeMap::new(),
    };
    store
        .create_topic(topic, vec![partition_state(1, 0, isr)])
        .await
        .expect("topic");
    let fetchers = Fetchers::new(FetcherSettings {
        node_id: 1,
        listener: "PLAINTEXT".to_string(),
        security: Default::default(),
        wait_max_ms: 500,
        max_bytes: 1 << 20,
        response_max_bytes: 1 << 20,
        backoff: Duration::from_millis(100),
        throttle: Arc::new(FollowerThrottle {
            storage: storage.clone(),
            quota: Default::default(),
        }),
        remote: None,
    });
    let manager = ReplicaManager::new(
        1,
        ReplicationSettings { lag_time_max_ms },
        storage.clone(),
        Arc::new(client),
        liveness,
        fetchers,
    );
    manager.apply(&store.view().borrow().clone());
    let partition = storage.partition(TOPIC, 0).expect("partition");
    append(&partition, 5);
    // 1 leads again in epoch 1 (as after a failover and back).
    let current = current_state(&store);
    store
        .update_partition(
            TOPIC,
            0,
            current.partition_epoch,
            PartitionState {
                leader_epoch: 1,
                ..current
            },
            None,
        )
        .await
        .expect("epoch 1");
    manager.apply(&store.view().borrow().clone());
    append(&partition, 5);
    manager.appended(TOPIC, 0);
    Leader {
        _dir: dir,
        store,
        _others: others,
        manager,
        partition,
    }
}

fn append(p: &Partition, records: usize) {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    for i in 0..records {
        let record = Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: now_ms(),
            key: None,
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Default::default(),
            delete_horizon: false,
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &[record], &options).expect("encode");
        let batch = buf.freeze();
        let header = sluice_protocol::batch::validate(&batch).expect("batch");
        p.append(header, &batch, now_ms()).expect("append");
    }
}

fn current_state(store: &MemoryMetadata) -> PartitionState {
    store
        .view()
        .borrow()
        .partitions
        .get(&(TOPIC.to_string(), 0))
        .cloned()
        .expect("partition state")
}

fn leader_state(l: &Leader) -> LeaderState {
    let replica = l.manager.replica(TOPIC, 0).expect("replica");
    let role = replica.role();
    match &*role {
        Role::Leader(state) => state.clone(),
        other => panic!("broker 1 does not lead: {other:?}"),
    }
}

fn fetch(replica_id: i32, fetch_offset: i64, last_fetched_epoch: i32) -> FollowerFetch {
    FollowerFetch {
        replica_id,
        fetch_offset,
        last_fetched_epoch,
        current_leader_epoch: 1,
    }
}

#[tokio::test]
async fn a_diverging_follower_is_told_where_to_truncate_and_counts_for_nothing() {
    let l = leader(&[1, 2], &[1, 2, 3], 30_000).await;
    assert_eq!(l.partition.log_end_offset(), 10);
    assert_eq!(
        l.manager.follower_fetched(TOPIC, 0, fetch(2, 10, 1)),
        Ok(None)
    );
    assert_eq!(l.partition.high_watermark(), 10);
    // 3 led epoch 0 once and wrote 7 records past the 5 this leader kept of that epoch:
    // its fetch offset 12 is past this log's end and no position in it.
    let answer = l.manager.follower_fetched(TOPIC, 0, fetch(3, 12, 0));
    assert_eq!(
        answer,
        Ok(Some((0, 5))),
        "truncate to where epoch 0 ends here"
    );
    let state = leader_state(&l);
    assert_eq!(
        state.follower(3).map(|f| f.log_end_offset),
        Some(-1),
        "the diverging fetch is not recorded"
    );
    assert_eq!(
        (state.isr.clone(), state.pending()),
        (vec![1, 2], None),
        "a follower holding records this leader never had does not join the ISR"
    );
    // Truncated, it fetches from 5 in epoch 0, catches up and joins.
    assert_eq!(
        l.manager.follower_fetched(TOPIC, 0, fetch(3, 5, 0)),
        Ok(None)
    );
    assert_eq!(
        l.manager.follower_fetched(TOPIC, 0, fetch(3, 10, 1)),
        Ok(None)
    );
    assert_eq!(
        leader_state(&l).pending(),
        Some(&IsrChange::Expand(vec![1, 2, 3]))
    );
}

#[tokio::test]
async fn only_a_broker_live_in_the_view_joins_the_isr() {
    let l = leader(&[1, 2], &[1, 2], 30_000).await;
    assert_eq!(
        l.manager.follower_fetched(TOPIC, 0, fetch(2, 10, 1)),
        Ok(None)
    );
    // 3 fetches everything but has no session (cut off from etcd, or not registered again
    // yet): the controller would take it out of the ISR as soon as it was put in.
    assert_eq!(
        l.manager.follower_fetched(TOPIC, 0, fetch(3, 10, 1)),
        Ok(None)
    );
    let state = leader_state(&l);
    assert_eq!(state.follower(3).map(|f| f.log_end_offset), Some(10));
    assert_eq!((state.isr.clone(), state.pending()), (vec![1, 2], None));
    // Registered again, it joins at its next fetch.
    let three = l.store.join();
    let _alive = three.register(registration(3)).await.expect("register 3");
    l.manager.apply(&l.store.view().borrow().clone());
    assert_eq!(
        l.manager.follower_fetched(TOPIC, 0, fetch(3, 10, 1)),
        Ok(None)
    );
    let mut view = l.store.view();
    let joined = tokio::time::timeout(
        Duration::from_secs(10),
        view.wait_for(|v| {
            v.partitions
                .get(&(TOPIC.to_string(), 0))
                .is_some_and(|s| s.isr == [1, 2, 3])
        }),
    )
    .await;
    assert!(
        matches!(joined, Ok(Ok(_))),
        "the expansion reached the metadata"
    );
}

#[tokio::test]
async fn a_deposed_leader_never_overwrites_the_new_leaders_state() {
    // A lag time of 1 ms: the followers, which never fetch, lag at once.
    let l = leader(&[1, 2, 3], &[1, 2, 3], 1).await;
    // Broker 1 was paused: the controller made 2 leader in epoch 2. 1 has not seen it.
    let before = current_state(&l.store);
    let deposed_by = PartitionState {
        leader: 2,
        leader_epoch: 2,
        isr: vec![2, 3],
        ..before.clone()
    };
    let epoch = l
        .store
        .update_partition(TOPIC, 0, before.partition_epoch, deposed_by.clone(), None)
        .await
        .expect("new leader");
    let expected = PartitionState {
        partition_epoch: epoch,
        ..deposed_by
    };
    // Its ISR shrink is refused, and it learns that another broker leads. It must not
    // take that state's partition epoch for a next proposal of its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !leader_state(&l).deposed() {
        assert!(tokio::time::Instant::now() < deadline, "no refusal seen");
        l.manager.shrink_lagging();
        tokio::time::sleep(Duration::from_millis(2)).await; // lets the commit task run
    }
    for _ in 0..5 {
        l.manager.shrink_lagging();
        assert_eq!(leader_state(&l).pending(), None, "no proposal once deposed");
        tokio::task::yield_now().await;
    }
    assert_eq!(current_state(&l.store), expected);
    assert_eq!(leader_state(&l).partition_epoch, before.partition_epoch);
}

#[tokio::test]
async fn a_fenced_leader_shrinks_no_isr() {
    let l = leader(&[1, 2, 3], &[1, 2, 3], 1).await;
    let before = current_state(&l.store);
    // Broker 1's session ends (cut off from etcd): it turns Fenced. The controller has not
    // acted yet, so a compare-and-swap on the partition would still pass.
    l.store.expire(1);
    // The lag time (1 ms, on the wall clock) passes: its followers count as lagging.
    tokio::time::sleep(Duration::from_millis(5)).await;
    l.manager.shrink_lagging();
    assert_eq!(leader_state(&l).pending(), None);
    tokio::task::yield_now().await;
    assert_eq!(current_state(&l.store), before);
}
