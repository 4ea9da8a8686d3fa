use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::*;
use crate::memory::MemoryMetadata;
use crate::model::{BrokerRegistration, PartitionState, TopicRecord, NO_LEADER};

fn broker(node_id: i32) -> BrokerRegistration {
    BrokerRegistration {
        node_id,
        rack: None,
        endpoints: vec![],
    }
}

async fn cluster(nodes: &[i32]) -> Vec<Arc<MemoryMetadata>> {
    let first = MemoryMetadata::new();
    let mut clients = vec![];
    for _ in nodes {
        clients.push(Arc::new(first.join()));
    }
    for (client, node) in clients.iter().zip(nodes) {
        client.register(broker(*node)).await.unwrap();
    }
    clients
}

async fn create(
    meta: &MemoryMetadata,
    name: &str,
    assignment: Vec<Vec<i32>>,
    configs: &[(&str, &str)],
) {
    let states = assignment
        .iter()
        .map(|replicas| PartitionState::initial(replicas))
        .collect();
    let topic = TopicRecord {
        name: name.to_string(),
        topic_id: Uuid::new_v4(),
        assignment,
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    };
    meta.create_topic(topic, states).await.unwrap();
}

/// Waits (at most 5 s) for a view satisfying `condition`.
async fn view_until(
    meta: &MemoryMetadata,
    condition: impl Fn(&ClusterView) -> bool,
) -> Arc<ClusterView> {
    let mut views = meta.view();
    let found = tokio::time::timeout(
        Duration::from_secs(5),
        views.wait_for(|view| condition(view)),
    )
    .await;
    match found {
        Ok(Ok(view)) => view.clone(),
        Ok(Err(_)) => panic!("store closed"),
        Err(_) => panic!("condition not reached within 5 s"),
    }
}

fn leader_isr(view: &ClusterView, topic: &str, partition: i32) -> (i32, i32, Vec<i32>) {
    let state = &view.partitions[&(topic.to_string(), partition)];
    (state.leader, state.leader_epoch, state.isr.clone())
}

#[tokio::test]
async fn a_lost_broker_leaves_every_isr_and_its_partitions_get_new_leaders() {
    let clients = cluster(&[1, 2, 3]).await;
    create(
        &clients[0],
        "t",
        vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]],
        &[],
    )
    .await;
    let controller = tokio::spawn(run(clients[2].clone()));
    view_until(&clients[0], |v| v.controller == Some(3)).await;

    clients[0].expire(1);
    let view = view_until(&clients[0], |v| {
        v.partitions.values().all(|s| !s.isr.contains(&1))
            && v.partitions.values().all(|s| s.leader != 1)
    })
    .await;
    assert_eq!(leader_isr(&view, "t", 0), (2, 1, vec![2, 3]));
    assert_eq!(leader_isr(&view, "t", 1), (2, 0, vec![2, 3]));
    assert_eq!(leader_isr(&view, "t", 2), (3, 0, vec![3, 2]));
    controller.abort();
}

#[tokio::test]
async fn a_broker_whose_data_directory_failed_holds_no_leadership_and_no_isr_place() {
    let clients = cluster(&[1, 2, 3]).await;
    create(&clients[0], "t", vec![vec![3, 1, 2], vec![1, 2, 3]], &[]).await;
    let controller = tokio::spawn(run(clients[0].clone()));
    view_until(&clients[0], |v| v.controller == Some(1)).await;

    let failure = b"/data/t-0/00000000000000000000.log: No space left on device".to_vec();
    clients[2]
        .apply_entries(
            crate::model::OFFLINE_LOG_DIRS,
            vec![("3".to_string(), failure)],
            vec![],
        )
        .await
        .unwrap();
    let view = view_until(&clients[0], |v| {
        v.partitions
            .values()
            .all(|s| !s.isr.contains(&3) && s.leader != 3)
    })
    .await;
    assert_eq!(leader_isr(&view, "t", 0), (1, 1, vec![1, 2]));
    assert_eq!(leader_isr(&view, "t", 1), (1, 0, vec![1, 2]));
    // Still registered, so that it can report the failure; not a home for replicas.
    assert!(view.brokers.contains_key(&3));
    assert!(!view.is_serving(3));
    assert_eq!(
        view.serving_brokers().into_iter().collect::<Vec<_>>(),
        [1, 2]
    );
    controller.abort();
}

#[tokio::test]
async fn an_offline_partition_gets_its_last_isr_member_back_as_leader() {
    let clients = cluster(&[1, 2]).await;
    create(&clients[0], "solo", vec![vec![1]], &[]).await;
    create(&clients[0], "pair", vec![vec![1, 2]], &[]).await;
    let controller = tokio::spawn(run(clients[1].clone()));
    view_until(&clients[1], |v| v.controller == Some(2)).await;

    clients[1].expire(1);
    let view = view_until(&clients[1], |v| leader_isr(v, "solo", 0).0 == NO_LEADER).await;
    assert_eq!(leader_isr(&view, "solo", 0), (NO_LEADER, 1, vec![1]));
    let view = view_until(&clients[1], |v| leader_isr(v, "pair", 0).0 == 2).await;
    assert_eq!(leader_isr(&view, "pair", 0), (2, 1, vec![2]));

    clients[0].register(broker(1)).await.unwrap();
    let view = view_until(&clients[1], |v| leader_isr(v, "solo", 0).0 == 1).await;
    assert_eq!(leader_isr(&view, "solo", 0), (1, 2, vec![1]));
    // Out of sync when it left: 1 does not rejoin the ISR of "pair" (the leader adds it back).
    assert_eq!(leader_isr(&view, "pair", 0), (2, 1, vec![2]));
    controller.abort();
}

#[tokio::test]
async fn unclean_election_follows_the_topic_config() {
    let clients = cluster(&[1, 2]).await;
    create(&clients[0], "clean", vec![vec![1, 2]], &[]).await;
    create(
        &clients[0],
        "unclean",
        vec![vec![1, 2]],
        &[(UNCLEAN_LEADER_ELECTION, "true")],
    )
    .await;
    // 2 falls out of sync in both.
    for topic in ["clean", "unclean"] {
        let epoch = clients[0].view().borrow().partitions[&(topic.to_string(), 0)].partition_epoch;
        let shrunk = PartitionState {
            isr: vec![1],
            ..PartitionState::initial(&[1, 2])
        };
        clients[0]
            .update_partition(topic, 0, epoch, shrunk, None)
            .await
            .unwrap();
    }
    let controller = tokio::spawn(run(clients[1].clone()));
    clients[1].expire(1);
    let view = view_until(&clients[1], |v| {
        leader_isr(v, "unclean", 0).0 == 2 && leader_isr(v, "clean", 0).0 == NO_LEADER
    })
    .await;
    assert_eq!(leader_isr(&view, "unclean", 0), (2, 1, vec![2]));
    assert_eq!(leader_isr(&view, "clean", 0), (NO_LEADER, 1, vec![1]));
    controller.abort();
}

#[tokio::test]
async fn a_term_that_ends_stops_the_controller_and_another_takes_over() {
    let clients = cluster(&[1, 2, 3]).await;
    create(&clients[0], "t", vec![vec![3, 1]], &[]).await;
    let mut term = clients[0].campaign().await.unwrap();
    assert_eq!(term.node_id(), 1);
    let meta = clients[0].clone();
    let serving = tokio::spawn(async move { serve_term(meta.as_ref(), &mut term).await });
    let standby = tokio::spawn(run(clients[1].clone()));
    view_until(&clients[2], |v| v.controller == Some(1)).await;

    clients[2].expire(1);
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("term did not stop")
        .unwrap();
    let view = view_until(&clients[2], |v| v.controller == Some(2)).await;
    assert_eq!(view.controller, Some(2));
    // The new controller handles the loss of 3, the leader.
    clients[2].expire(3);
    let view = view_until(&clients[2], |v| leader_isr(v, "t", 0).0 != 3).await;
    assert_eq!(leader_isr(&view, "t", 0), (NO_LEADER, 1, vec![3]));
    standby.abort();
}

#[tokio::test]
async fn stale_partition_epoch_is_refused_with_the_current_state() {
    let clients = cluster(&[1]).await;
    create(&clients[0], "t", vec![vec![1]], &[]).await;
    let epoch = clients[0].view().borrow().partitions[&("t".to_string(), 0)].partition_epoch;
    let moved = PartitionState {
        leader_epoch: 1,
        ..PartitionState::initial(&[1])
    };
    let new_epoch = clients[0]
        .update_partition("t", 0, epoch, moved.clone(), None)
        .await
        .unwrap();
    assert!(new_epoch > epoch);
    match clients[0]
        .update_partition("t", 0, epoch, PartitionState::initial(&[1]), None)
        .await
    {
        Err(MetadataError::Stale(now)) => {
            assert_eq!(
                *now,
                PartitionState {
                    partition_epoch: new_epoch,
                    ..moved
                }
            );
        }
        other => panic!("expected Stale, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reassignment_completes_once_its_target_replicas_are_in_sync() {
    let clients = cluster(&[1, 2, 3]).await;
    create(&clients[0], "moving", vec![vec![1, 2]], &[]).await;
    let controller = tokio::spawn(run(clients[0].clone()));
    view_until(&clients[0], |v| v.controller == Some(1)).await;

    // Move [1, 2] to [2, 3]: 3 is added, 1 removed.
    let view = clients[0].view().borrow().clone();
    let state = &view.partitions[&("moving".to_string(), 0)];
    let live = view.brokers.keys().copied().collect();
    let (replicas, started) = reassign::start(&[1, 2], state, &[2, 3], &live).unwrap();
    clients[0]
        .reassign_partition("moving", 0, state.partition_epoch, replicas, started, None)
        .await
        .unwrap();
    let view = view_until(&clients[0], |v| {
        v.topics["moving"].assignment[0] == vec![2, 3, 1]
    })
    .await;
    let state = view.partitions[&("moving".to_string(), 0)].clone();
    assert_eq!(
        (
            state.adding_replicas.clone(),
            state.removing_replicas.clone()
        ),
        (vec![3], vec![1])
    );

    // The leader adds 3 to the ISR once it caught up; the controller completes the move,
    // and 2 takes over from the removed leader.
    let caught_up = PartitionState {
        isr: vec![1, 2, 3],
        ..state.clone()
    };
    clients[0]
        .update_partition("moving", 0, state.partition_epoch, caught_up, None)
        .await
        .unwrap();
    let view = view_until(&clients[0], |v| {
        v.topics["moving"].assignment[0] == vec![2, 3]
    })
    .await;
    let done = &view.partitions[&("moving".to_string(), 0)];
    assert_eq!(leader_isr(&view, "moving", 0), (2, 1, vec![2, 3]));
    assert!(done.adding_replicas.is_empty() && done.removing_replicas.is_empty());
    controller.abort();
}

#[tokio::test]
async fn a_deposed_controllers_writes_are_refused_in_memory_too() {
    let clients = cluster(&[1, 2]).await;
    create(&clients[0], "t", vec![vec![1, 2]], &[]).await;
    let term = clients[0].campaign().await.unwrap();
    let fence = term.fence().clone();
    let epoch = clients[0].view().borrow().partitions[&("t".to_string(), 0)].partition_epoch;
    let next = PartitionState {
        leader_epoch: 1,
        ..PartitionState::initial(&[1, 2])
    };
    let epoch = clients[0]
        .update_partition("t", 0, epoch, next.clone(), Some(&fence))
        .await
        .unwrap();
    drop(term);
    match clients[0]
        .update_partition("t", 0, epoch, next, Some(&fence))
        .await
    {
        Err(MetadataError::NotController) => {}
        other => panic!("expected NotController, got {other:?}"),
    }
}
