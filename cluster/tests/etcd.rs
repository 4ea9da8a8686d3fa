//! The etcd implementation against a real etcd (Debian's `etcd-server`), started per test
//! on free loopback ports in a temporary directory and killed at the end.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_cluster::{
    controller, BrokerRegistration, ClusterMetadata, ClusterView, Endpoint, EtcdMetadata,
    EtcdSettings, Liveness, MetadataError, PartitionState, TopicRecord,
};
use tokio::sync::watch;
use uuid::Uuid;

/// A running etcd, killed on drop.
struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    async fn start() -> Etcd {
        if Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            panic!("`etcd` is not on PATH: install Debian's etcd-server package (apt-get install etcd-server)");
        }
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("t={peer_url}")])
            // Short raft timing so that 1-second leases are allowed.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let etcd = Etcd {
            child,
            endpoint,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = EtcdMetadata::connect(etcd.settings(3000, 300));
            if tokio::time::timeout(Duration::from_secs(2), probe)
                .await
                .is_ok_and(|r| r.is_ok())
            {
                return etcd;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not come up within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn settings(&self, session_timeout_ms: u64, heartbeat_interval_ms: u64) -> EtcdSettings {
        EtcdSettings {
            prefix: "/test".to_string(),
            session_timeout_ms,
            heartbeat_interval_ms,
            ..EtcdSettings::new(vec![self.endpoint.clone()])
        }
    }

    async fn client(
        &self,
        session_timeout_ms: u64,
        heartbeat_interval_ms: u64,
    ) -> Arc<EtcdMetadata> {
        Arc::new(
            EtcdMetadata::connect(self.settings(session_timeout_ms, heartbeat_interval_ms))
                .await
                .unwrap(),
        )
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn broker(node_id: i32) -> BrokerRegistration {
    BrokerRegistration {
        node_id,
        rack: Some(format!("rack-{node_id}")),
        endpoints: vec![Endpoint {
            listener: "PLAINTEXT".to_string(),
            host: "127.0.0.1".to_string(),
            port: 9090 + node_id as u16,
            security_protocol: "PLAINTEXT".to_string(),
        }],
    }
}

fn topic(name: &str, assignment: Vec<Vec<i32>>) -> (TopicRecord, Vec<PartitionState>) {
    let states = assignment
        .iter()
        .map(|r| PartitionState::initial(r))
        .collect();
    let record = TopicRecord {
        name: name.to_string(),
        topic_id: Uuid::new_v4(),
        assignment,
        configs: BTreeMap::new(),
    };
    (record, states)
}

/// Waits (at most `within`) for a view satisfying `condition`; returns it and when it came.
async fn view_until(
    meta: &EtcdMetadata,
    within: Duration,
    condition: impl Fn(&ClusterView) -> bool,
) -> (Arc<ClusterView>, Instant) {
    let mut views = meta.view();
    let found = tokio::time::timeout(within, views.wait_for(|view| condition(view))).await;
    let view = found
        .unwrap_or_else(|_| panic!("condition not reached within {within:?}"))
        .unwrap()
        .clone();
    (view, Instant::now())
}

async fn liveness_until(
    liveness: &mut watch::Receiver<Liveness>,
    want: Liveness,
    within: Duration,
) -> Instant {
    let reached = tokio::time::timeout(within, liveness.wait_for(|l| *l == want)).await;
    reached
        .unwrap_or_else(|_| panic!("not {want:?} within {within:?}"))
        .unwrap();
    Instant::now()
}

#[tokio::test]
async fn registration_is_seen_by_others_and_a_duplicate_node_id_is_refused() {
    let etcd = Etcd::start().await;
    let a = etcd.client(3000, 300).await;
    let b = etcd.client(3000, 300).await;
    a.register(broker(1)).await.unwrap();
    let (view, _) = view_until(&b, Duration::from_secs(5), |v| v.brokers.contains_key(&1)).await;
    assert_eq!(view.brokers[&1], broker(1));

    match b.register(broker(1)).await {
        Err(MetadataError::DuplicateBrokerId(1)) => {}
        other => panic!("expected DuplicateBrokerId(1), got {other:?}"),
    }
    // The refused attempt left node 1 as it was, and b may still register under its own id.
    b.register(broker(2)).await.unwrap();
    let (view, _) = view_until(&a, Duration::from_secs(5), |v| v.brokers.len() == 2).await;
    assert_eq!(view.brokers[&1], broker(1));
    assert_eq!(view.brokers[&2], broker(2));
}

#[tokio::test]
async fn a_lease_that_expires_removes_the_broker_from_other_views() {
    let etcd = Etcd::start().await;
    let a = etcd.client(2000, 200).await;
    let b = etcd.client(2000, 200).await;
    a.register(broker(1)).await.unwrap();
    view_until(&b, Duration::from_secs(5), |v| v.brokers.contains_key(&1)).await;
    let stopped = Instant::now();
    drop(a);
    let (_, gone) = view_until(&b, Duration::from_secs(10), |v| !v.brokers.contains_key(&1)).await;
    // Not before the lease's TTL; etcd checks expiry every 500 ms.
    let after = gone - stopped;
    assert!(
        after >= Duration::from_millis(1500),
        "gone after {after:?}, before the lease could expire"
    );
    assert!(
        after <= Duration::from_millis(4000),
        "gone only after {after:?}"
    );
}

#[tokio::test]
async fn a_broker_cut_off_from_etcd_is_fenced_before_its_lease_can_expire_and_comes_back() {
    let etcd = Etcd::start().await;
    let session = Duration::from_millis(3000);
    let a = etcd.client(3000, 300).await;
    let b = etcd.client(3000, 300).await;
    let mut liveness = a.register(broker(1)).await.unwrap();
    assert_eq!(*liveness.borrow(), Liveness::Live);
    // Let a few keep-alives succeed first.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(*liveness.borrow(), Liveness::Live);

    etcd.signal("-STOP");
    let stopped = Instant::now();
    let fenced = liveness_until(&mut liveness, Liveness::Fenced, session).await;
    let after = fenced - stopped;
    // Half the session from the last successful send, which was before the stop; the
    // lease cannot expire before a full session after that send.
    assert!(
        after <= session / 2 + Duration::from_millis(250),
        "fenced only after {after:?}"
    );
    assert!(
        after < session - Duration::from_millis(300),
        "fenced after {after:?}: the lease may have expired"
    );

    // Stopped past the lease's TTL: the broker must register again under a new lease.
    tokio::time::sleep(session + Duration::from_millis(1000) - after).await;
    etcd.signal("-CONT");
    liveness_until(&mut liveness, Liveness::Live, Duration::from_secs(15)).await;
    let (view, _) = view_until(&b, Duration::from_secs(10), |v| v.brokers.contains_key(&1)).await;
    assert_eq!(view.brokers[&1], broker(1));
    // Live for good: the new lease is kept alive.
    tokio::time::sleep(session).await;
    assert_eq!(*liveness.borrow(), Liveness::Live);
    assert!(b.view().borrow().brokers.contains_key(&1));
}

#[tokio::test]
async fn topics_and_partition_compare_and_swap() {
    let etcd = Etcd::start().await;
    let a = etcd.client(3000, 300).await;
    let (record, states) = topic("orders", vec![vec![1, 2], vec![2, 1]]);
    a.create_topic(record.clone(), states.clone())
        .await
        .unwrap();
    match a.create_topic(record.clone(), states).await {
        Err(MetadataError::AlreadyExists(name)) => assert_eq!(name, "orders"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let (view, _) = view_until(&a, Duration::from_secs(5), |v| v.partitions.len() == 2).await;
    assert_eq!(view.topics["orders"], record);
    let created = view.partitions[&("orders".to_string(), 0)].clone();
    assert_eq!(
        created,
        PartitionState {
            partition_epoch: created.partition_epoch,
            ..PartitionState::initial(&[1, 2])
        }
    );

    let moved = PartitionState {
        leader: 2,
        leader_epoch: 1,
        isr: vec![2],
        ..created.clone()
    };
    let epoch = a
        .update_partition("orders", 0, created.partition_epoch, moved.clone(), None)
        .await
        .unwrap();
    assert!(epoch > created.partition_epoch);
    match a
        .update_partition("orders", 0, created.partition_epoch, created.clone(), None)
        .await
    {
        Err(MetadataError::Stale(now)) => assert_eq!(
            *now,
            PartitionState {
                partition_epoch: epoch,
                ..moved.clone()
            }
        ),
        other => panic!("expected Stale, got {other:?}"),
    }
    match a
        .update_partition("orders", 7, 0, created.clone(), None)
        .await
    {
        Err(MetadataError::UnknownTopic(_)) => {}
        other => panic!("expected UnknownTopic, got {other:?}"),
    }
    let (view, _) = view_until(&a, Duration::from_secs(5), |v| v.revision >= epoch).await;
    assert_eq!(
        view.partitions[&("orders".to_string(), 0)],
        PartitionState {
            partition_epoch: epoch,
            ..moved
        }
    );

    let grown = vec![vec![1, 2], vec![2, 1], vec![1, 2]];
    a.create_partitions(
        "orders",
        grown.clone(),
        vec![PartitionState::initial(&[1, 2])],
    )
    .await
    .unwrap();
    let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
    a.set_topic_configs("orders", configs.clone())
        .await
        .unwrap();
    let (view, _) = view_until(&a, Duration::from_secs(5), |v| {
        v.topics["orders"].configs == configs
    })
    .await;
    assert_eq!(view.topics["orders"].assignment, grown);
    assert_eq!(view.partitions.len(), 3);
    assert!(matches!(
        a.create_partitions("orders", vec![vec![1]], vec![]).await,
        Err(MetadataError::Invalid(_))
    ));

    a.delete_topic("orders").await.unwrap();
    assert!(matches!(
        a.delete_topic("orders").await,
        Err(MetadataError::UnknownTopic(_))
    ));
    let (view, _) = view_until(&a, Duration::from_secs(5), |v| v.topics.is_empty()).await;
    assert!(view.partitions.is_empty());
}

#[tokio::test]
async fn the_watch_delivers_changes_without_polling() {
    let etcd = Etcd::start().await;
    // A re-read would only happen after a heartbeat interval (4 s) following an error.
    let a = etcd.client(10_000, 4000).await;
    let b = etcd.client(10_000, 4000).await;
    let mut views = b.view();
    views.borrow_and_update();
    let (record, states) = topic("events", vec![vec![1]]);
    let sent = Instant::now();
    a.create_topic(record.clone(), states).await.unwrap();
    tokio::time::timeout(Duration::from_secs(3), views.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(sent.elapsed() < Duration::from_secs(3));
    assert_eq!(views.borrow().topics["events"], record);
}

#[tokio::test]
async fn exactly_one_controller_and_the_other_takes_over() {
    let etcd = Etcd::start().await;
    let a = etcd.client(2000, 200).await;
    let b = etcd.client(2000, 200).await;
    a.register(broker(1)).await.unwrap();
    b.register(broker(2)).await.unwrap();
    let (ca, cb) = (a.clone(), b.clone());
    let mut first = tokio::spawn(async move { ca.campaign().await.unwrap() });
    let mut second = tokio::spawn(async move { cb.campaign().await.unwrap() });
    let (winner, first_won) = tokio::select! {
        term = &mut first => (term.unwrap(), true),
        term = &mut second => (term.unwrap(), false),
    };
    let (mut loser, loser_client) = if first_won {
        (second, b.clone())
    } else {
        (first, a.clone())
    };
    let (view, _) = view_until(&loser_client, Duration::from_secs(5), |v| {
        v.controller.is_some()
    })
    .await;
    assert_eq!(view.controller, Some(winner.node_id()));
    assert!(winner.is_active());
    // The other is still waiting.
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut loser)
        .await
        .is_err());

    let winner_node = winner.node_id();
    if winner_node == 1 {
        drop(a);
    } else {
        drop(b);
    }
    drop(winner);
    let taken = tokio::time::timeout(Duration::from_secs(10), loser)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(taken.node_id(), winner_node);
    assert!(taken.is_active());
    let (view, _) = view_until(&loser_client, Duration::from_secs(5), |v| {
        v.controller == Some(taken.node_id())
    })
    .await;
    assert_eq!(view.controller, Some(taken.node_id()));
}

#[tokio::test]
async fn the_controller_moves_leadership_off_a_dead_broker_within_the_session_timeout() {
    let etcd = Etcd::start().await;
    let session = Duration::from_millis(2000);
    let clients = [
        etcd.client(2000, 200).await,
        etcd.client(2000, 200).await,
        etcd.client(2000, 200).await,
    ];
    for (i, client) in clients.iter().enumerate() {
        client.register(broker(i as i32 + 1)).await.unwrap();
    }
    let (record, states) = topic("t", vec![vec![1, 2], vec![2, 1], vec![1, 3]]);
    clients[0].create_topic(record, states).await.unwrap();
    let running = tokio::spawn(controller::run(
        clients[2].clone() as Arc<dyn ClusterMetadata>
    ));
    view_until(&clients[1], Duration::from_secs(5), |v| {
        v.controller == Some(3)
    })
    .await;

    let [one, two, three] = clients;
    drop(one);
    let stopped = Instant::now();
    let (view, moved) = view_until(&two, Duration::from_secs(10), |v| {
        v.partitions.values().all(|s| !s.isr.contains(&1))
    })
    .await;
    let state = |p: i32| {
        let s = &view.partitions[&("t".to_string(), p)];
        (s.leader, s.leader_epoch, s.isr.clone())
    };
    assert_eq!(state(0), (2, 1, vec![2]));
    assert_eq!(state(1), (2, 0, vec![2]));
    assert_eq!(state(2), (3, 1, vec![3]));
    // The lease expires a session after the last keep-alive (etcd checks every 500 ms).
    let after = moved - stopped;
    assert!(
        after <= session + Duration::from_millis(1000),
        "moved only after {after:?}"
    );
    running.abort();
    drop(three);
}

#[tokio::test]
async fn a_deposed_controllers_writes_are_refused() {
    let etcd = Etcd::start().await;
    let a = etcd.client(3000, 300).await;
    a.register(broker(1)).await.unwrap();
    let (record, states) = topic("fenced", vec![vec![1]]);
    a.create_topic(record, states).await.unwrap();
    let term = a.campaign().await.unwrap();
    let fence = term.fence().clone();
    let (view, _) = view_until(&a, Duration::from_secs(5), |v| {
        v.controller == Some(1) && v.partitions.len() == 1
    })
    .await;
    let state = view.partitions[&("fenced".to_string(), 0)].clone();
    let bumped = PartitionState {
        leader_epoch: 1,
        ..state.clone()
    };
    let epoch = a
        .update_partition(
            "fenced",
            0,
            state.partition_epoch,
            bumped.clone(),
            Some(&fence),
        )
        .await
        .unwrap();

    // The term ends (resigned): the same write, on the current partition epoch, is refused.
    drop(term);
    view_until(&a, Duration::from_secs(5), |v| v.controller.is_none()).await;
    let again = PartitionState {
        leader_epoch: 2,
        ..bumped.clone()
    };
    match a
        .update_partition("fenced", 0, epoch, again.clone(), Some(&fence))
        .await
    {
        Err(MetadataError::NotController) => {}
        other => panic!("expected NotController, got {other:?}"),
    }
    match a
        .reassign_partition("fenced", 0, epoch, vec![1], again.clone(), Some(&fence))
        .await
    {
        Err(MetadataError::NotController) => {}
        other => panic!("expected NotController, got {other:?}"),
    }
    // Without a fence (a leader's ISR change) the write goes through.
    a.update_partition("fenced", 0, epoch, again, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn entries_swap_only_from_the_expected_value() {
    let etcd = Etcd::start().await;
    let a = etcd.client(10_000, 1000).await;
    let b = etcd.client(10_000, 1000).await;
    let v = |s: &str| Some(s.as_bytes().to_vec());
    assert!(a.swap_entry("things", "k", None, v("one")).await.unwrap());
    // Present now: a second creation loses, as does a swap from a value it no longer has.
    assert!(!b.swap_entry("things", "k", None, v("two")).await.unwrap());
    assert!(!b
        .swap_entry("things", "k", v("zero"), v("two"))
        .await
        .unwrap());
    assert!(b
        .swap_entry("things", "k", v("one"), v("two"))
        .await
        .unwrap());
    let (view, _) = view_until(&a, Duration::from_secs(5), |view| {
        view.entries.get("things").and_then(|s| s.get("k")) == v("two").as_ref()
    })
    .await;
    assert_eq!(view.entries["things"].len(), 1);
    assert!(!a.swap_entry("things", "k", v("one"), None).await.unwrap());
    assert!(a.swap_entry("things", "k", v("two"), None).await.unwrap());
    view_until(&b, Duration::from_secs(5), |view| {
        !view.entries.contains_key("things")
    })
    .await;
    assert!(matches!(
        a.swap_entry("things", "a/b", None, v("x")).await,
        Err(MetadataError::Invalid(_))
    ));
}
