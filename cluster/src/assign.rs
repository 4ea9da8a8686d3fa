//! Replica assignment as Kafka assigns (`AdminUtils.assignReplicasToBrokers`): leaders
//! spread round-robin from a start index, followers shifted so that the replicas of one
//! broker's partitions spread over the others; rack-aware when every broker has a rack.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;

/// Why replicas could not be assigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    /// Replication factor above the number of brokers, or not positive
    /// (INVALID_REPLICATION_FACTOR).
    #[error("replication factor {replication_factor} invalid with {brokers} available brokers")]
    InvalidReplicationFactor {
        /// The factor asked for.
        replication_factor: i32,
        /// The brokers available.
        brokers: usize,
    },
    /// A partition count that is not positive (INVALID_PARTITIONS).
    #[error("number of partitions must be positive, got {0}")]
    InvalidPartitions(i32),
}

/// Assigns `replication_factor` replicas to each of `partitions` partitions numbered from
/// `start_partition`. `brokers` are (node id, rack). With `existing` (the replicas of
/// partition 0 of a topic being extended) the start follows them as Kafka's
/// CreatePartitions does; without, it is random as in Kafka's CreateTopics.
pub fn assign_replicas(
    brokers: &[(i32, Option<String>)],
    partitions: i32,
    replication_factor: i32,
    start_partition: i32,
    existing: Option<&[i32]>,
) -> Result<Vec<Vec<i32>>, AssignError> {
    let start_index = match existing.and_then(|replicas| replicas.first()) {
        Some(&first) => {
            let mut ids: Vec<i32> = brokers.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids.iter().position(|id| *id >= first).unwrap_or(0)
        }
        None if brokers.is_empty() => 0,
        None => rand::rng().random_range(0..brokers.len()),
    };
    assign_replicas_from(
        brokers,
        partitions,
        replication_factor,
        start_partition,
        start_index,
    )
}

/// [`assign_replicas`] with a fixed start index (Kafka's `fixedStartIndex`): the first
/// leader is the broker at that index and the follower shift starts at it too.
pub fn assign_replicas_from(
    brokers: &[(i32, Option<String>)],
    partitions: i32,
    replication_factor: i32,
    start_partition: i32,
    start_index: usize,
) -> Result<Vec<Vec<i32>>, AssignError> {
    if partitions <= 0 {
        return Err(AssignError::InvalidPartitions(partitions));
    }
    if replication_factor <= 0 || replication_factor as usize > brokers.len() {
        return Err(AssignError::InvalidReplicationFactor {
            replication_factor,
            brokers: brokers.len(),
        });
    }
    let racks: Option<BTreeMap<i32, &str>> = brokers
        .iter()
        .map(|(id, rack)| rack.as_deref().map(|rack| (*id, rack)))
        .collect();
    let rf = replication_factor as usize;
    Ok(match racks {
        Some(racks) => rack_aware(&racks, partitions, rf, start_partition, start_index),
        None => {
            let mut ids: Vec<i32> = brokers.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids.dedup();
            rack_unaware(&ids, partitions, rf, start_partition, start_index)
        }
    })
}

/// Kafka's `assignReplicasToBrokersRackUnaware` over sorted broker ids.
fn rack_unaware(
    ids: &[i32],
    partitions: i32,
    rf: usize,
    start_partition: i32,
    start_index: usize,
) -> Vec<Vec<i32>> {
    let n = ids.len();
    let first_partition = start_partition.max(0) as usize;
    let mut out = Vec::with_capacity(partitions as usize);
    for partition in first_partition..first_partition + partitions as usize {
        // Kafka adds one to the shift at every partition > 0 that is a multiple of n.
        let shift = start_index + partition / n - (first_partition.max(1) - 1) / n;
        let first = (partition + start_index) % n;
        let mut replicas = vec![ids[first]];
        replicas.extend((0..rf - 1).map(|j| ids[replica_index(first, shift, j, n)]));
        out.push(replicas);
    }
    out
}

/// Kafka's `assignReplicasToBrokersRackAware`: brokers alternate by rack, and each
/// follower is the next shifted broker on a rack (and a broker) without a replica yet,
/// until every rack (or broker) has one.
fn rack_aware(
    racks: &BTreeMap<i32, &str>,
    partitions: i32,
    rf: usize,
    start_partition: i32,
    start_index: usize,
) -> Vec<Vec<i32>> {
    let arranged = rack_alternated(racks);
    let n = arranged.len();
    let rack_count = racks.values().collect::<BTreeSet<_>>().len();
    let first_partition = start_partition.max(0) as usize;
    let mut out = Vec::with_capacity(partitions as usize);
    for partition in first_partition..first_partition + partitions as usize {
        // Kafka adds one to the shift at every partition > 0 that is a multiple of n.
        let shift = start_index + partition / n - (first_partition.max(1) - 1) / n;
        let first = (partition + start_index) % n;
        let leader = arranged[first];
        let mut replicas = vec![leader];
        let mut racks_used = BTreeSet::from([racks[&leader]]);
        let mut brokers_used = BTreeSet::from([leader]);
        let mut k = 0;
        for _ in 0..rf - 1 {
            loop {
                let broker = arranged[replica_index(first, shift * rack_count, k, n)];
                let rack = racks[&broker];
                k += 1;
                if (!racks_used.contains(rack) || racks_used.len() == rack_count)
                    && (!brokers_used.contains(&broker) || brokers_used.len() == n)
                {
                    replicas.push(broker);
                    racks_used.insert(rack);
                    brokers_used.insert(broker);
                    break;
                }
            }
        }
        out.push(replicas);
    }
    out
}

/// Kafka's `getRackAlternatedBrokerList`: one broker of each rack in rack order, then the
/// next of each, and so on (brokers of a rack in id order).
fn rack_alternated(racks: &BTreeMap<i32, &str>) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, std::vec::IntoIter<i32>> = BTreeMap::new();
    let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (id, rack) in racks {
        grouped.entry(rack).or_default().push(*id);
    }
    for (rack, ids) in grouped {
        by_rack.insert(rack, ids.into_iter());
    }
    let mut out = Vec::with_capacity(racks.len());
    while out.len() < racks.len() {
        for ids in by_rack.values_mut() {
            if let Some(id) = ids.next() {
                out.push(id);
            }
        }
    }
    out
}

/// Kafka's `replicaIndex`: the j-th follower of the leader at `first`, never the leader.
fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    let shift = 1 + (shift + j) % (n - 1);
    (first + shift) % n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(ids: &[i32]) -> Vec<(i32, Option<String>)> {
        ids.iter().map(|id| (*id, None)).collect()
    }

    fn racked(pairs: &[(i32, &str)]) -> Vec<(i32, Option<String>)> {
        pairs
            .iter()
            .map(|(id, rack)| (*id, Some(rack.to_string())))
            .collect()
    }

    #[test]
    fn rack_unaware_matches_kafka_admin_test() {
        // Kafka's AdminTest.testReplicaAssignment: 5 brokers, 10 partitions, RF 3, start 0.
        let got = assign_replicas_from(&plain(&[0, 1, 2, 3, 4]), 10, 3, 0, 0).unwrap();
        let want = vec![
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![3, 4, 0],
            vec![4, 0, 1],
            vec![0, 2, 3],
            vec![1, 3, 4],
            vec![2, 4, 0],
            vec![3, 0, 1],
            vec![4, 1, 2],
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn leaders_spread_evenly_and_replicas_are_distinct() {
        let got = assign_replicas_from(&plain(&[1, 2, 3]), 6, 3, 0, 0).unwrap();
        let mut leaders = BTreeMap::new();
        for replicas in &got {
            *leaders.entry(replicas[0]).or_insert(0) += 1;
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3);
        }
        assert_eq!(leaders, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
    }

    #[test]
    fn rack_alternated_list_matches_kafka() {
        // AdminRackAwareTest.testGetRackAlternatedBrokerListAndAssignReplicasToBrokers.
        let racks: BTreeMap<i32, &str> = BTreeMap::from([
            (0, "rack1"),
            (1, "rack3"),
            (2, "rack3"),
            (3, "rack2"),
            (4, "rack2"),
            (5, "rack1"),
        ]);
        assert_eq!(rack_alternated(&racks), vec![0, 3, 1, 5, 4, 2]);
        let got = assign_replicas_from(
            &racked(&[
                (0, "rack1"),
                (1, "rack3"),
                (2, "rack3"),
                (3, "rack2"),
                (4, "rack2"),
                (5, "rack1"),
            ]),
            7,
            3,
            0,
            0,
        )
        .unwrap();
        assert_eq!(got[0], vec![0, 3, 1]);
        assert_eq!(got[1], vec![3, 1, 5]);
        assert_eq!(got[2], vec![1, 5, 4]);
        assert_eq!(got[3], vec![5, 4, 2]);
        assert_eq!(got[4], vec![4, 2, 0]);
        assert_eq!(got[5], vec![2, 0, 3]);
        assert_eq!(got[6], vec![0, 4, 2]);
    }

    #[test]
    fn rack_aware_puts_each_partition_on_distinct_racks() {
        let brokers = racked(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
        for start in 0..6 {
            let got = assign_replicas_from(&brokers, 12, 3, 0, start).unwrap();
            for replicas in got {
                let racks: BTreeSet<&str> = replicas
                    .iter()
                    .map(|id| {
                        brokers
                            .iter()
                            .find(|(b, _)| b == id)
                            .unwrap()
                            .1
                            .as_deref()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(racks.len(), 3, "replicas {replicas:?}");
            }
        }
    }

    #[test]
    fn rack_aware_with_more_replicas_than_racks_still_uses_distinct_brokers() {
        let brokers = racked(&[(1, "a"), (2, "a"), (3, "b"), (4, "b")]);
        let got = assign_replicas_from(&brokers, 4, 3, 0, 0).unwrap();
        for replicas in got {
            assert_eq!(
                replicas.iter().collect::<BTreeSet<_>>().len(),
                3,
                "replicas {replicas:?}"
            );
        }
    }

    #[test]
    fn a_broker_without_rack_makes_it_rack_unaware() {
        let mut brokers = racked(&[(0, "a"), (1, "a"), (2, "b")]);
        brokers.push((3, None));
        assert_eq!(
            assign_replicas_from(&brokers, 4, 2, 0, 0).unwrap(),
            assign_replicas_from(&plain(&[0, 1, 2, 3]), 4, 2, 0, 0).unwrap()
        );
    }

    #[test]
    fn errors_on_bad_factor_or_count() {
        assert_eq!(
            assign_replicas(&plain(&[1, 2]), 3, 3, 0, None),
            Err(AssignError::InvalidReplicationFactor {
                replication_factor: 3,
                brokers: 2
            })
        );
        assert_eq!(
            assign_replicas(&plain(&[1, 2]), 3, 0, 0, None),
            Err(AssignError::InvalidReplicationFactor {
                replication_factor: 0,
                brokers: 2
            })
        );
        assert_eq!(
            assign_replicas(&plain(&[1, 2]), 0, 1, 0, None),
            Err(AssignError::InvalidPartitions(0))
        );
        assert_eq!(
            assign_replicas(&[], 1, 1, 0, None),
            Err(AssignError::InvalidReplicationFactor {
                replication_factor: 1,
                brokers: 0
            })
        );
    }

    #[test]
    fn added_partitions_continue_from_the_existing_start() {
        // A topic created at start index 1 over brokers 0..3; adding partitions 3..6 with
        // partition 0's replicas continues the same round-robin.
        let brokers = plain(&[0, 1, 2]);
        let all = assign_replicas_from(&brokers, 6, 2, 0, 1).unwrap();
        let added = assign_replicas(&brokers, 3, 2, 3, Some(&all[0])).unwrap();
        assert_eq!(added, all[3..].to_vec());
    }

    #[test]
    fn single_replica_round_robin() {
        assert_eq!(
            assign_replicas_from(&plain(&[7, 3, 5]), 4, 1, 0, 0).unwrap(),
            vec![vec![3], vec![5], vec![7], vec![3]]
        );
    }
}
