//! A typical request of every supported API, for the dispatcher's version tests.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn batch() -> Bytes {
    let records = [Record {
        transactional: false,
        delete_horizon: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    }];
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

pub(super) fn request(api: ApiKey, version: i16, topic_id: uuid::Uuid) -> RequestKind {
    let name = |s: &str| TopicName(StrBytes::from_string(s.to_string()));
    match api {
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::Metadata => {
            let mut t = MetadataRequestTopic::default();
            t.name = Some(name("t"));
            let mut r = MetadataRequest::default();
            r.topics = Some(vec![t]);
            RequestKind::Metadata(r)
        }
        ApiKey::Produce => {
            let mut p = PartitionProduceData::default();
            p.records = Some(batch());
            let mut t = TopicProduceData::default();
            t.name = name("t");
            t.partition_data = vec![p];
            let mut r = ProduceRequest::default();
            r.acks = 1;
            r.timeout_ms = 1000;
            r.topic_data = vec![t];
            RequestKind::Produce(r)
        }
        ApiKey::Fetch => {
            let mut p = FetchPartition::default();
            p.partition_max_bytes = 1 << 20;
            let mut t = FetchTopic::default();
            if version >= 13 {
                t.topic_id = topic_id;
            } else {
                t.topic = name("t");
            }
            t.partitions = vec![p];
            let mut r = FetchRequest::default();
            r.max_bytes = 1 << 20;
            r.topics = vec![t];
            RequestKind::Fetch(r)
        }
        ApiKey::ListOffsets => {
            let mut p = ListOffsetsPartition::default();
            p.timestamp = -2;
            let mut t = ListOffsetsTopic::default();
            t.name = name("t");
            t.partitions = vec![p];
            let mut r = ListOffsetsRequest::default();
            r.topics = vec![t];
            RequestKind::ListOffsets(r)
        }
        ApiKey::CreateTopics => {
            let mut t = CreatableTopic::default();
            t.name = name(&format!("c{version}"));
            t.num_partitions = 2;
            t.replication_factor = 1;
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![t];
            RequestKind::CreateTopics(r)
        }
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default();
            if version >= 6 {
                let mut t = DeleteTopicState::default();
                t.name = Some(name("missing"));
                r.topics = vec![t];
            } else {
                r.topic_names = vec![name("missing")];
            }
            RequestKind::DeleteTopics(r)
        }
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default();
            r.transactional_id = None;
            r.transaction_timeout_ms = 60_000;
            RequestKind::InitProducerId(r)
        }
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if version >= 4 {
                r.coordinator_keys = vec![StrBytes::from_static_str("g")];
            } else {
                r.key = StrBytes::from_static_str("g");
            }
            RequestKind::FindCoordinator(r)
        }
        ApiKey::JoinGroup => {
            let mut p = join_group_request::JoinGroupRequestProtocol::default();
            p.name = StrBytes::from_static_str("range");
            p.metadata = Bytes::from_static(b"\x00\xffmeta");
            let mut r = JoinGroupRequest::default();
            r.group_id = GroupId(StrBytes::from_string(format!("join{version}")));
            r.session_timeout_ms = 10_000;
            r.rebalance_timeout_ms = 10_000;
            r.protocol_type = StrBytes::from_static_str("consumer");
            r.protocols = vec![p];
            RequestKind::JoinGroup(r)
        }
        ApiKey::SyncGroup => {
            let mut r = SyncGroupRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("missing"));
            r.member_id = StrBytes::from_static_str("m");
            RequestKind::SyncGroup(r)
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("missing"));
            r.member_id = StrBytes::from_static_str("m");
            RequestKind::Heartbeat(r)
        }
        ApiKey::LeaveGroup => {
            let mut r = LeaveGroupRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("missing"));
            if version >= 3 {
                let mut m = leave_group_request::MemberIdentity::default();
                m.member_id = StrBytes::from_static_str("m");
                r.members = vec![m];
            } else {
                r.member_id = StrBytes::from_static_str("m");
            }
            RequestKind::LeaveGroup(r)
        }
        ApiKey::OffsetCommit => {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.committed_offset = 5;
            p.committed_metadata = Some(StrBytes::from_static_str("meta"));
            let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
            t.name = name("t");
            t.partitions = vec![p];
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("offsets"));
            r.generation_id_or_member_epoch = -1;
            r.topics = vec![t];
            RequestKind::OffsetCommit(r)
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default();
            if version >= 8 {
                let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
                t.name = name("t");
                t.partition_indexes = vec![0];
                let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                g.group_id = GroupId(StrBytes::from_static_str("offsets"));
                g.topics = Some(vec![t]);
                r.groups = vec![g];
            } else {
                let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                t.name = name("t");
                t.partition_indexes = vec![0];
                r.group_id = GroupId(StrBytes::from_static_str("offsets"));
                r.topics = Some(vec![t]);
            }
            RequestKind::OffsetFetch(r)
        }
        ApiKey::OffsetDelete => {
            let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
            p.partition_index = 0;
            let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
            t.name = name("t");
            t.partitions = vec![p];
            let mut r = OffsetDeleteRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("missing"));
            r.topics = vec![t];
            RequestKind::OffsetDelete(r)
        }
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => {
            let mut r = DescribeGroupsRequest::default();
            r.groups = vec![GroupId(StrBytes::from_static_str("offsets"))];
            RequestKind::DescribeGroups(r)
        }
        ApiKey::DeleteGroups => {
            let mut r = DeleteGroupsRequest::default();
            r.groups_names = vec![GroupId(StrBytes::from_static_str("missing"))];
            RequestKind::DeleteGroups(r)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let mut r = ConsumerGroupHeartbeatRequest::default();
            r.group_id = GroupId(StrBytes::from_string(format!("cg{version}")));
            if version >= 1 {
                r.member_id = StrBytes::from_static_str("member-1");
            }
            r.member_epoch = 0;
            r.rebalance_timeout_ms = 10_000;
            r.subscribed_topic_names = Some(vec![name("t")]);
            r.topic_partitions = Some(vec![]);
            RequestKind::ConsumerGroupHeartbeat(r)
        }
        ApiKey::ShareGroupHeartbeat => {
            let mut r = ShareGroupHeartbeatRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("sg"));
            r.member_id = StrBytes::from_static_str("share-member-1");
            r.subscribed_topic_names = Some(vec![name("t")]);
            RequestKind::ShareGroupHeartbeat(r)
        }
        ApiKey::ShareFetch => {
            let mut r = ShareFetchRequest::default();
            r.group_id = Some(GroupId(StrBytes::from_static_str("sg")));
            r.member_id = Some(StrBytes::from_static_str("share-member-1"));
            r.max_records = 10;
            r.max_bytes = 1 << 20;
            RequestKind::ShareFetch(r)
        }
        ApiKey::ShareAcknowledge => {
            let mut r = ShareAcknowledgeRequest::default();
            r.group_id = Some(GroupId(StrBytes::from_static_str("sg")));
            r.member_id = Some(StrBytes::from_static_str("share-member-1"));
            r.share_session_epoch = 1;
            RequestKind::ShareAcknowledge(r)
        }
        ApiKey::ShareGroupDescribe => {
            let mut r = ShareGroupDescribeRequest::default();
            r.group_ids = vec![GroupId(StrBytes::from_static_str("sg"))];
            RequestKind::ShareGroupDescribe(r)
        }
        ApiKey::DescribeShareGroupOffsets => {
            let mut t = describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic::default();
            t.topic_name = name("t");
            t.partitions = vec![0];
            let mut g = describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default();
            g.group_id = GroupId(StrBytes::from_static_str("sg"));
            g.topics = Some(vec![t]);
            let mut r = DescribeShareGroupOffsetsRequest::default();
            r.groups = vec![g];
            RequestKind::DescribeShareGroupOffsets(r)
        }
        ApiKey::AlterShareGroupOffsets => {
            let mut p =
                alter_share_group_offsets_request::AlterShareGroupOffsetsRequestPartition::default(
                );
            p.start_offset = 0;
            let mut t =
                alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic::default();
            t.topic_name = name("t");
            t.partitions = vec![p];
            let mut r = AlterShareGroupOffsetsRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("sg-offsets"));
            r.topics = vec![t];
            RequestKind::AlterShareGroupOffsets(r)
        }
        ApiKey::DeleteShareGroupOffsets => {
            let mut t =
                delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic::default();
            t.topic_name = name("t");
            let mut r = DeleteShareGroupOffsetsRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("sg-offsets"));
            r.topics = vec![t];
            RequestKind::DeleteShareGroupOffsets(r)
        }
        ApiKey::ReadShareGroupState => {
            let mut p = read_share_group_state_request::PartitionData::default();
            p.partition = 0;
            let mut t = read_share_group_state_request::ReadStateData::default();
            t.topic_id = uuid::Uuid::from_u128(1);
            t.partitions = vec![p];
            let mut r = ReadShareGroupStateRequest::default();
            r.group_id = StrBytes::from_static_str("sg");
            r.topics = vec![t];
            RequestKind::ReadShareGroupState(r)
        }
        ApiKey::WriteShareGroupState => {
            let mut p = write_share_group_state_request::PartitionData::default();
            p.start_offset = 4;
            let mut t = write_share_group_state_request::WriteStateData::default();
            t.topic_id = uuid::Uuid::from_u128(1);
            t.partitions = vec![p];
            let mut r = WriteShareGroupStateRequest::default();
            r.group_id = StrBytes::from_static_str("sg");
            r.topics = vec![t];
            RequestKind::WriteShareGroupState(r)
        }
        ApiKey::ConsumerGroupDescribe => {
            let mut r = ConsumerGroupDescribeRequest::default();
            r.group_ids = vec![GroupId(StrBytes::from_static_str("cg1"))];
            RequestKind::ConsumerGroupDescribe(r)
        }
        ApiKey::AddPartitionsToTxn => {
            let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
            t.name = name("t");
            t.partitions = vec![0];
            let mut r = AddPartitionsToTxnRequest::default();
            if version >= 4 {
                let mut x = add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default();
                x.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
                x.producer_id = ProducerId(77);
                x.topics = vec![t];
                r.transactions = vec![x];
            } else {
                r.v3_and_below_transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
                r.v3_and_below_producer_id = ProducerId(77);
                r.v3_and_below_topics = vec![t];
            }
            RequestKind::AddPartitionsToTxn(r)
        }
        ApiKey::AddOffsetsToTxn => {
            let mut r = AddOffsetsToTxnRequest::default();
            r.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
            r.producer_id = ProducerId(77);
            r.group_id = GroupId(StrBytes::from_static_str("g"));
            RequestKind::AddOffsetsToTxn(r)
        }
        ApiKey::EndTxn => {
            let mut r = EndTxnRequest::default();
            r.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
            r.producer_id = ProducerId(77);
            r.committed = true;
            RequestKind::EndTxn(r)
        }
        ApiKey::TxnOffsetCommit => {
            let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
            p.committed_offset = 3;
            let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
            t.name = name("t");
            t.partitions = vec![p];
            let mut r = TxnOffsetCommitRequest::default();
            r.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
            r.group_id = GroupId(StrBytes::from_static_str("g"));
            r.producer_id = ProducerId(77);
            r.generation_id = -1;
            r.topics = vec![t];
            RequestKind::TxnOffsetCommit(r)
        }
        ApiKey::DescribeTransactions => {
            let mut r = DescribeTransactionsRequest::default();
            r.transactional_ids = vec![TransactionalId(StrBytes::from_static_str("tx"))];
            RequestKind::DescribeTransactions(r)
        }
        ApiKey::ListTransactions => {
            RequestKind::ListTransactions(ListTransactionsRequest::default())
        }
        ApiKey::DescribeProducers => {
            let mut t = describe_producers_request::TopicRequest::default();
            t.name = name("t");
            t.partition_indexes = vec![0];
            let mut r = DescribeProducersRequest::default();
            r.topics = vec![t];
            RequestKind::DescribeProducers(r)
        }
        ApiKey::WriteTxnMarkers => {
            let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
            t.name = name("t");
            t.partition_indexes = vec![0, 9];
            let mut m = write_txn_markers_request::WritableTxnMarker::default();
            m.producer_id = ProducerId(77);
            m.transaction_result = false;
            m.topics = vec![t];
            let mut r = WriteTxnMarkersRequest::default();
            r.markers = vec![m];
            RequestKind::WriteTxnMarkers(r)
        }
        ApiKey::DescribeConfigs => {
            let mut t = describe_configs_request::DescribeConfigsResource::default();
            t.resource_type = 2;
            t.resource_name = StrBytes::from_static_str("t");
            t.configuration_keys = Some(vec![StrBytes::from_static_str("retention.ms")]);
            let mut r = DescribeConfigsRequest::default();
            r.resources = vec![t];
            r.include_synonyms = true;
            r.include_documentation = version >= 3;
            RequestKind::DescribeConfigs(r)
        }
        ApiKey::AlterConfigs => {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = StrBytes::from_static_str("retention.ms");
            c.value = Some(StrBytes::from_static_str("forever"));
            let mut t = alter_configs_request::AlterConfigsResource::default();
            t.resource_type = 2;
            t.resource_name = StrBytes::from_static_str("t");
            t.configs = vec![c];
            let mut r = AlterConfigsRequest::default();
            r.resources = vec![t];
            RequestKind::AlterConfigs(r)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = StrBytes::from_static_str("retention.ms");
            c.config_operation = 0;
            c.value = Some(StrBytes::from_static_str("60000"));
            let mut t = incremental_alter_configs_request::AlterConfigsResource::default();
            t.resource_type = 2;
            t.resource_name = StrBytes::from_static_str("t");
            t.configs = vec![c];
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources = vec![t];
            r.validate_only = true;
            RequestKind::IncrementalAlterConfigs(r)
        }
        ApiKey::CreatePartitions => {
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = name("t");
            t.count = 1;
            let mut r = CreatePartitionsRequest::default();
            r.topics = vec![t];
            RequestKind::CreatePartitions(r)
        }
        ApiKey::DeleteRecords => {
            let mut p = delete_records_request::DeleteRecordsPartition::default();
            p.partition_index = 0;
            p.offset = 0;
            let mut t = delete_records_request::DeleteRecordsTopic::default();
            t.name = name("t");
            t.partitions = vec![p];
            let mut r = DeleteRecordsRequest::default();
            r.topics = vec![t];
            RequestKind::DeleteRecords(r)
        }
        ApiKey::DescribeLogDirs => {
            let mut r = DescribeLogDirsRequest::default();
            r.topics = None;
            RequestKind::DescribeLogDirs(r)
        }
        ApiKey::AlterReplicaLogDirs => {
            let mut t = alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default();
            t.name = TopicName(StrBytes::from_static_str("t"));
            t.partitions = vec![0];
            let mut d = alter_replica_log_dirs_request::AlterReplicaLogDir::default();
            d.path = StrBytes::from_static_str("/nowhere");
            d.topics = vec![t];
            let mut r = AlterReplicaLogDirsRequest::default();
            r.dirs = vec![d];
            RequestKind::AlterReplicaLogDirs(r)
        }
        ApiKey::DescribeQuorum => {
            let mut p = describe_quorum_request::PartitionData::default();
            p.partition_index = 0;
            let mut t = describe_quorum_request::TopicData::default();
            t.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
            t.partitions = vec![p];
            let mut r = DescribeQuorumRequest::default();
            r.topics = vec![t];
            RequestKind::DescribeQuorum(r)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let p = |partition, current, epoch| {
                let mut x = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
                x.partition = partition;
                x.current_leader_epoch = current;
                x.leader_epoch = epoch;
                x
            };
            let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            t.topic = name("t");
            t.partitions = vec![p(0, 0, 0), p(0, -1, 3), p(0, 1, 0), p(5, -1, 0)];
            let mut r = OffsetForLeaderEpochRequest::default();
            r.replica_id = BrokerId(-1);
            r.topics = vec![t];
            RequestKind::OffsetForLeaderEpoch(r)
        }
        ApiKey::ElectLeaders => {
            let mut t = elect_leaders_request::TopicPartitions::default();
            t.topic = name("t");
            t.partitions = vec![0, 7];
            let mut r = ElectLeadersRequest::default();
            r.topic_partitions = Some(vec![t]);
            RequestKind::ElectLeaders(r)
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
        }
        ApiKey::AlterPartitionReassignments => {
            let p = |index, replicas: Option<Vec<i32>>| {
                let mut x = alter_partition_reassignments_request::ReassignablePartition::default();
                x.partition_index = index;
                x.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
                x
            };
            let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
            t.name = name("t");
            t.partitions = vec![p(0, Some(vec![1])), p(0, Some(vec![1, 2])), p(0, None)];
            let mut r = AlterPartitionReassignmentsRequest::default();
            r.topics = vec![t];
            RequestKind::AlterPartitionReassignments(r)
        }
        ApiKey::DescribeTopicPartitions => {
            let t = |n: &str| {
                let mut x = describe_topic_partitions_request::TopicRequest::default();
                x.name = name(n);
                x
            };
            let mut r = DescribeTopicPartitionsRequest::default();
            r.topics = vec![t("t"), t("zz-missing")];
            r.response_partition_limit = 10;
            RequestKind::DescribeTopicPartitions(r)
        }
        ApiKey::SaslHandshake => {
            let mut r = SaslHandshakeRequest::default();
            r.mechanism = StrBytes::from_static_str("PLAIN");
            RequestKind::SaslHandshake(r)
        }
        ApiKey::SaslAuthenticate => {
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default())
        }
        ApiKey::DescribeUserScramCredentials => {
            RequestKind::DescribeUserScramCredentials(DescribeUserScramCredentialsRequest::default())
        }
        ApiKey::AlterUserScramCredentials => {
            let mut u = alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
            u.name = StrBytes::from_static_str("alice");
            u.mechanism = 1;
            u.iterations = 4096;
            u.salt = Bytes::from_static(b"salt");
            u.salted_password = Bytes::from_static(&[7; 32]);
            let mut r = AlterUserScramCredentialsRequest::default();
            r.upsertions = vec![u];
            RequestKind::AlterUserScramCredentials(r)
        }
        ApiKey::DescribeAcls => {
            let mut r = DescribeAclsRequest::default();
            r.resource_type_filter = 1;
            r.pattern_type_filter = 1;
            r.operation = 1;
            r.permission_type = 1;
            RequestKind::DescribeAcls(r)
        }
        ApiKey::CreateAcls => {
            let mut c = create_acls_request::AclCreation::default();
            c.resource_type = 2;
            c.resource_name = StrBytes::from_static_str("t");
            c.resource_pattern_type = 3;
            c.principal = StrBytes::from_static_str("User:alice");
            c.host = StrBytes::from_static_str("*");
            c.operation = 3;
            c.permission_type = 3;
            let mut r = CreateAclsRequest::default();
            r.creations = vec![c];
            RequestKind::CreateAcls(r)
        }
        ApiKey::DeleteAcls => {
            let mut f = delete_acls_request::DeleteAclsFilter::default();
            f.resource_type_filter = 2;
            f.pattern_type_filter = 3;
            f.operation = 1;
            f.permission_type = 1;
            let mut r = DeleteAclsRequest::default();
            r.filters = vec![f];
            RequestKind::DeleteAcls(r)
        }
        ApiKey::DescribeClientQuotas => {
            RequestKind::DescribeClientQuotas(DescribeClientQuotasRequest::default())
        }
        ApiKey::AlterClientQuotas => {
            let mut e = alter_client_quotas_request::EntityData::default();
            e.entity_type = StrBytes::from_static_str("user");
            e.entity_name = Some(StrBytes::from_static_str("alice"));
            let mut op = alter_client_quotas_request::OpData::default();
            op.key = StrBytes::from_static_str("producer_byte_rate");
            op.value = 1e9;
            let mut entry = alter_client_quotas_request::EntryData::default();
            entry.entity = vec![e];
            entry.ops = vec![op];
            let mut r = AlterClientQuotasRequest::default();
            r.entries = vec![entry];
            RequestKind::AlterClientQuotas(r)
        }
        other => panic!("no sample request for {other:?}"),
    }
}
