//! Every supported API at every supported version answers a typical request with a
//! response that encodes: a field set outside its version would fail here.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::samples::request;
use super::*;
use crate::api::api_versions::SUPPORTED;
use crate::internal_topics::{
    GROUP_METADATA_TOPIC, SHARE_GROUP_STATE_TOPIC, TRANSACTION_STATE_TOPIC,
};
use crate::session::Session;

fn frame(api: ApiKey, version: i16, body: &RequestKind) -> Bytes {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("versions-test"));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    buf.freeze()
}

/// The fields of a decoded response that hold `Some("")`, except those Kafka does fill
/// with an empty string (config values of an empty list, offset metadata, a JoinGroup
/// protocol name before v7) and fields the version does not have, which decode as "".
fn empty_nullable_strings(api: ApiKey, version: i16, debug: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = debug;
    while let Some(at) = rest.find(": Some(\"\")") {
        let field = rest[..at]
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default();
        let allowed = matches!(field, "value" | "metadata")
            || (field == "protocol_name" && api == ApiKey::JoinGroup && version < 7)
            || (field == "error_message"
                && api == ApiKey::FindCoordinator
                && !(1..4).contains(&version))
            || (field == "documentation" && api == ApiKey::DescribeConfigs && version < 3)
            // Kafka's DescribeQuorum leaves its generated default, "", in place.
            || (field == "error_message" && api == ApiKey::DescribeQuorum);
        if !allowed {
            found.push(field.to_string());
        }
        rest = &rest[at + 1..];
    }
    found
}

#[tokio::test]
async fn every_supported_version_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().to_string_lossy().into_owned();
    let config = sluice_config::BrokerConfig::from_properties([
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("log.dirs", log_dir.as_str()),
        ("group.initial.rebalance.delay.ms", "0"),
    ])
    .expect("config");
    let (broker, _listeners) = crate::server::bind(
        config,
        std::sync::Arc::new(crate::metrics::Metrics::new().expect("metrics")),
    )
    .await
    .expect("bind");
    let topic = broker
        .storage
        .create_topic("t", 1, Default::default())
        .expect("create");
    // As a client's FindCoordinator does first: the coordinators' topics exist and are
    // loaded, so group and transaction requests reach their coordinator.
    for internal in [
        GROUP_METADATA_TOPIC,
        TRANSACTION_STATE_TOPIC,
        SHARE_GROUP_STATE_TOPIC,
    ] {
        crate::internal_topics::ensure(&broker, internal).expect("internal topic");
    }
    let mut ctx = Session::new(
        "127.0.0.1:1".parse().expect("addr"),
        "PLAINTEXT".into(),
        "User:ANONYMOUS".into(),
        None,
    );
    for (api, min, max) in SUPPORTED {
        for version in *min..=*max {
            let req = request(*api, version, topic.record.id);
            let out = handle(&broker, &mut ctx, frame(*api, version, &req))
                .await
                .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"))
                .response()
                .await
                .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"))
                .unwrap_or_else(|| panic!("{api:?} v{version}: no response"));
            let mut body = out.to_bytes().expect("readable").slice(4..);
            let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
                .unwrap_or_else(|e| panic!("{api:?} v{version} header: {e}"));
            assert_eq!(header.correlation_id, 7);
            let response = ResponseKind::decode(*api, &mut body, version)
                .unwrap_or_else(|e| panic!("{api:?} v{version} body: {e}"));
            assert_eq!(body.remaining(), 0, "{api:?} v{version}: trailing bytes");
            let empty = empty_nullable_strings(*api, version, &format!("{response:?}"));
            assert!(
                empty.is_empty(),
                "{api:?} v{version}: \"\" where Kafka sends null: {empty:?}"
            );
            match response {
                ResponseKind::Produce(r) => {
                    assert_eq!(
                        r.responses[0].partition_responses[0].error_code, 0,
                        "produce v{version}"
                    )
                }
                ResponseKind::Fetch(r) => {
                    assert_eq!(r.error_code, 0);
                    assert_eq!(
                        r.responses[0].partitions[0].error_code, 0,
                        "fetch v{version}"
                    );
                    assert!(!r.responses[0].partitions[0]
                        .records
                        .as_ref()
                        .expect("records")
                        .is_empty());
                }
                ResponseKind::CreateTopics(r) => {
                    assert_eq!(r.topics[0].error_code, 0, "create v{version}")
                }
                ResponseKind::DeleteTopics(r) => {
                    assert_eq!(r.responses[0].error_code, 3, "delete v{version}")
                }
                ResponseKind::ListOffsets(r) => {
                    assert_eq!(r.topics[0].partitions[0].error_code, 0);
                    assert_eq!(r.topics[0].partitions[0].offset, 0);
                }
                ResponseKind::Metadata(r) => assert_eq!(r.topics[0].error_code, 0),
                ResponseKind::ApiVersions(r) => assert_eq!(r.error_code, 0),
                ResponseKind::InitProducerId(r) => assert_eq!(r.error_code, 0),
                ResponseKind::DescribeCluster(r) => assert_eq!(r.error_code, 0),
                ResponseKind::FindCoordinator(r) if version >= 4 => {
                    assert_eq!(r.coordinators[0].error_code, 0);
                    assert_eq!(r.coordinators[0].node_id.0, 1);
                }
                ResponseKind::FindCoordinator(r) => {
                    assert_eq!((r.error_code, r.node_id.0), (0, 1))
                }
                ResponseKind::JoinGroup(r) if version >= 4 => {
                    // KIP-394: a dynamic member first gets its id.
                    assert_eq!(r.error_code, 79, "join v{version}");
                    assert!(!r.member_id.is_empty());
                }
                ResponseKind::JoinGroup(r) => {
                    // Sole member, no initial delay: leader of generation 1.
                    assert_eq!(r.error_code, 0, "join v{version}");
                    assert_eq!(r.generation_id, 1);
                    assert_eq!(r.leader, r.member_id);
                    assert_eq!(r.members.len(), 1);
                    assert_eq!(&r.members[0].metadata[..], b"\x00\xffmeta");
                }
                ResponseKind::SyncGroup(r) => assert_eq!(r.error_code, 25),
                ResponseKind::Heartbeat(r) => assert_eq!(r.error_code, 25),
                ResponseKind::LeaveGroup(r) if version >= 3 => {
                    assert_eq!(r.members[0].error_code, 25)
                }
                ResponseKind::LeaveGroup(r) => assert_eq!(r.error_code, 25),
                ResponseKind::OffsetCommit(r) => {
                    assert_eq!(r.topics[0].partitions[0].error_code, 0)
                }
                ResponseKind::OffsetFetch(r) if version >= 8 => {
                    let p = &r.groups[0].topics[0].partitions[0];
                    assert_eq!((p.error_code, p.committed_offset), (0, 5));
                    assert_eq!(p.metadata.as_deref(), Some("meta"));
                }
                ResponseKind::OffsetFetch(r) => {
                    let p = &r.topics[0].partitions[0];
                    assert_eq!((p.error_code, p.committed_offset), (0, 5));
                }
                ResponseKind::OffsetDelete(r) => assert_eq!(r.error_code, 69),
                ResponseKind::ListGroups(r) => assert_eq!(r.error_code, 0),
                ResponseKind::DescribeGroups(r) => {
                    assert_eq!(r.groups[0].error_code, 0);
                    assert_eq!(r.groups[0].group_state.as_str(), "Empty");
                }
                ResponseKind::DeleteGroups(r) => assert_eq!(r.results[0].error_code, 69),
                ResponseKind::ConsumerGroupHeartbeat(r) => {
                    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
                    assert_eq!(r.member_epoch, 1);
                    let a = r.assignment.expect("assignment");
                    assert_eq!(a.topic_partitions[0].topic_id, topic.record.id);
                    assert_eq!(a.topic_partitions[0].partitions, vec![0]);
                }
                ResponseKind::ShareGroupHeartbeat(r) => {
                    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
                    assert_eq!(r.member_epoch, 1);
                    let a = r.assignment.expect("assignment");
                    assert_eq!(a.topic_partitions[0].topic_id, topic.record.id);
                    assert_eq!(a.topic_partitions[0].partitions, vec![0]);
                }
                // The session the sample opens has no partition.
                ResponseKind::ShareFetch(r) => {
                    assert_eq!(r.error_code, 0);
                    assert!(r.responses.is_empty());
                }
                // The sample's member joined "sg" (ShareGroupHeartbeat comes first).
                ResponseKind::ShareGroupDescribe(r) => {
                    let g = &r.groups[0];
                    assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"));
                    assert_eq!(g.members[0].member_id.as_str(), "share-member-1");
                }
                // "sg" never fetched t-0: no start offset yet.
                ResponseKind::DescribeShareGroupOffsets(r) => {
                    let p = &r.groups[0].topics[0].partitions[0];
                    assert_eq!((p.error_code, p.start_offset), (0, -1));
                }
                ResponseKind::AlterShareGroupOffsets(r) => {
                    assert_eq!(r.error_code, 0);
                    assert_eq!(r.responses[0].partitions[0].error_code, 0);
                }
                ResponseKind::DeleteShareGroupOffsets(r) => {
                    assert_eq!((r.error_code, r.responses[0].error_code), (0, 0));
                }
                // The share coordinator of the sample's share-partition is this broker,
                // once __share_group_state exists (the test creates the internal topics).
                ResponseKind::ReadShareGroupState(r) => {
                    let p = &r.results[0].partitions[0];
                    assert_eq!((p.error_code, p.start_offset), (0, -1));
                }
                ResponseKind::WriteShareGroupState(r) => {
                    assert_eq!(r.results[0].partitions[0].error_code, 0);
                }
                // Epoch 1 of the session the ShareFetch sample opened.
                ResponseKind::ShareAcknowledge(r) => {
                    assert_eq!(r.error_code, 0);
                    assert!(r.responses.is_empty());
                }
                ResponseKind::ConsumerGroupDescribe(r) => {
                    assert_eq!(r.groups[0].error_code, 0);
                    assert_eq!(r.groups[0].members.len(), 1);
                }
                // No transactional id is known: its producer id maps to nothing.
                ResponseKind::AddPartitionsToTxn(r) if version >= 4 => {
                    assert_eq!(r.error_code, 0);
                    let p = &r.results_by_transaction[0].topic_results[0].results_by_partition[0];
                    assert_eq!(p.partition_error_code, 49);
                }
                ResponseKind::AddPartitionsToTxn(r) => {
                    let p = &r.results_by_topic_v3_and_below[0].results_by_partition[0];
                    assert_eq!(p.partition_error_code, 49);
                }
                ResponseKind::AddOffsetsToTxn(r) => assert_eq!(r.error_code, 49),
                ResponseKind::EndTxn(r) => assert_eq!(r.error_code, 49),
                ResponseKind::TxnOffsetCommit(r) => {
                    assert_eq!(r.topics[0].partitions[0].error_code, 49)
                }
                ResponseKind::DescribeTransactions(r) => {
                    assert_eq!(r.transaction_states[0].error_code, 105)
                }
                ResponseKind::ListTransactions(r) => {
                    assert_eq!(r.error_code, 0);
                    assert!(r.transaction_states.is_empty());
                }
                ResponseKind::DescribeProducers(r) => {
                    assert_eq!(r.topics[0].partitions[0].error_code, 0);
                    assert!(r.topics[0].partitions[0].active_producers.is_empty());
                }
                ResponseKind::WriteTxnMarkers(r) => {
                    let codes: Vec<i16> = r.markers[0].topics[0]
                        .partitions
                        .iter()
                        .map(|p| p.error_code)
                        .collect();
                    assert_eq!(codes, vec![0, 3]);
                }
                ResponseKind::DescribeConfigs(r) => {
                    let res = &r.results[0];
                    assert_eq!(res.error_code, 0);
                    assert_eq!(res.configs.len(), 1);
                    let c = &res.configs[0];
                    assert_eq!(c.value.as_deref(), Some("604800000"));
                    assert_eq!(c.config_source, 5);
                    assert_eq!(c.synonyms.len(), 1, "the default, log.retention.hours");
                    if version >= 3 {
                        assert_eq!(c.config_type, 5);
                        assert!(c.documentation.as_deref().is_some_and(|d| !d.is_empty()));
                    }
                }
                ResponseKind::AlterConfigs(r) => {
                    assert_eq!(r.responses[0].error_code, 40);
                    assert!(r.responses[0]
                        .error_message
                        .as_deref()
                        .is_some_and(|m| m.contains("retention.ms")));
                }
                ResponseKind::IncrementalAlterConfigs(r) => {
                    assert_eq!(r.responses[0].error_code, 0)
                }
                ResponseKind::CreatePartitions(r) => {
                    assert_eq!(r.results[0].error_code, 37, "t already has 1 partition")
                }
                ResponseKind::DeleteRecords(r) => {
                    let p = &r.topics[0].partitions[0];
                    assert_eq!((p.error_code, p.low_watermark), (0, 0));
                }
                ResponseKind::DescribeLogDirs(r) => {
                    let dir = &r.results[0];
                    assert_eq!(dir.error_code, 0);
                    let t = dir
                        .topics
                        .iter()
                        .find(|t| t.name.as_str() == "t")
                        .expect("t");
                    assert!(t.partitions[0].partition_size > 0);
                }
                ResponseKind::OffsetForLeaderEpoch(r) => {
                    let got: Vec<(i16, i32, i64)> = r.topics[0]
                        .partitions
                        .iter()
                        .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
                        .collect();
                    let leo = topic.partitions[0].high_watermark();
                    // epoch 0 ends at the log end; epoch 3 does not exist; a newer
                    // current epoch is unknown (75); a missing partition is 3.
                    assert_eq!(
                        got,
                        vec![(0, 0, leo), (0, -1, -1), (75, -1, -1), (3, -1, -1)]
                    );
                }
                ResponseKind::ElectLeaders(r) => {
                    let codes: Vec<i16> = r.replica_election_results[0]
                        .partition_result
                        .iter()
                        .map(|p| p.error_code)
                        .collect();
                    assert_eq!(codes, vec![84, 3]);
                }
                ResponseKind::ListPartitionReassignments(r) => {
                    assert_eq!(r.error_code, 0);
                    assert!(r.topics.is_empty());
                }
                ResponseKind::AlterPartitionReassignments(r) => {
                    let codes: Vec<i16> = r.responses[0]
                        .partitions
                        .iter()
                        .map(|p| p.error_code)
                        .collect();
                    assert_eq!(codes, vec![0, 39, 85]);
                }
                ResponseKind::DescribeTopicPartitions(r) => {
                    let got: Vec<(i16, usize)> = r
                        .topics
                        .iter()
                        .map(|t| (t.error_code, t.partitions.len()))
                        .collect();
                    assert_eq!(got, vec![(0, 1), (3, 0)]);
                    assert!(r.next_cursor.is_none());
                }
                // A PLAINTEXT listener has no SASL: Kafka's ILLEGAL_SASL_STATE.
                ResponseKind::SaslHandshake(r) => assert_eq!(r.error_code, 34),
                ResponseKind::SaslAuthenticate(r) => assert_eq!(r.error_code, 34),
                ResponseKind::DescribeUserScramCredentials(r) => {
                    assert_eq!(r.error_code, 0);
                    assert!(r.results.is_empty());
                }
                ResponseKind::DescribeAcls(r) => assert_eq!(r.error_code, 0),
                ResponseKind::DescribeClientQuotas(r) => assert_eq!(r.error_code, 0),
                ResponseKind::AlterClientQuotas(r) => {
                    assert_eq!(r.entries.len(), 1);
                    assert_eq!(r.entries[0].error_code, 0);
                }
                ResponseKind::CreateAcls(r) => {
                    assert_eq!(r.results.len(), 1);
                    assert_eq!(r.results[0].error_code, 0);
                }
                ResponseKind::DeleteAcls(r) => {
                    assert_eq!(r.filter_results.len(), 1);
                    assert_eq!(r.filter_results[0].error_code, 0);
                }
                ResponseKind::AlterUserScramCredentials(r) => {
                    assert_eq!(r.results.len(), 1);
                    assert_eq!(r.results[0].user.as_str(), "alice");
                    assert_eq!(r.results[0].error_code, 0);
                }
                // The sample names a directory that is not log.dirs: LOG_DIR_NOT_FOUND.
                ResponseKind::AlterReplicaLogDirs(r) => {
                    assert_eq!(r.results[0].partitions[0].error_code, 57)
                }
                ResponseKind::DescribeQuorum(r) => {
                    assert_eq!(r.error_code, 0);
                    let p = &r.topics[0].partitions[0];
                    assert_eq!((p.error_code, p.leader_id.0), (0, 1));
                    assert_eq!(r.nodes.len(), usize::from(version >= 2));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Every API counts its errors, once per answer that carries them.
    let metrics = broker.metrics.render(None);
    for (api, error, count) in [
        ("DeleteGroups", "GROUP_ID_NOT_FOUND", 3),
        ("AlterConfigs", "INVALID_CONFIG", 3),
        ("CreatePartitions", "INVALID_PARTITIONS", 4),
        ("AlterReplicaLogDirs", "LOG_DIR_NOT_FOUND", 2),
        ("SaslHandshake", "ILLEGAL_SASL_STATE", 2),
    ] {
        let line =
            format!("sluice_request_errors_total{{api=\"{api}\",error=\"{error}\"}} {count}");
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in:\n{}",
            metrics
                .lines()
                .filter(|l| l.starts_with("sluice_request_errors_total"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[tokio::test]
async fn unknown_api_versions_version_gets_the_v0_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().to_string_lossy().into_owned();
    let config = sluice_config::BrokerConfig::from_properties([
        ("log.dirs", log_dir.as_str()),
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
    ])
    .expect("config");
    let (broker, _l) = crate::server::bind(
        config,
        std::sync::Arc::new(crate::metrics::Metrics::new().expect("metrics")),
    )
    .await
    .expect("bind");
    let mut ctx = Session::new(
        "127.0.0.1:1".parse().expect("addr"),
        "PLAINTEXT".into(),
        "User:ANONYMOUS".into(),
        None,
    );
    // ApiVersions v99 with a correlation id and a body we cannot parse.
    let raw = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 1, 2, 3]);
    let out = handle(&broker, &mut ctx, raw)
        .await
        .expect("answered")
        .response()
        .await
        .expect("answered")
        .expect("response");
    let mut body = out.to_bytes().expect("readable").slice(4..);
    assert_eq!(
        ResponseHeader::decode(&mut body, 0)
            .expect("header")
            .correlation_id,
        5
    );
    let r = ApiVersionsResponse::decode(&mut body, 0).expect("v0 body");
    assert_eq!(r.error_code, 35);
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == 0 && k.max_version == 12));
}
