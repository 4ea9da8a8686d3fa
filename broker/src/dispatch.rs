//! The one match from API key to handler, the supported-versions table that feeds
//! ApiVersions, and request/response framing around the handlers.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::api;
use crate::broker::Broker;

/// Who is asking, through which listener.
pub(crate) struct RequestContext {
    pub(crate) peer: SocketAddr,
    pub(crate) listener: String,
    pub(crate) client_id: Option<String>,
}

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DispatchError {
    #[error("request too short for a header")]
    Short,
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// The APIs and versions this broker implements; ApiVersions answers from this table,
/// and requests outside it are refused.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeCluster, 0, 1),
];

/// The supported version range of an API, if it is supported at all.
pub(crate) fn supported_range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|(_, min, max)| (*min, *max))
}

/// Handles one request frame; `Ok(None)` means no response is sent (acks=0).
pub(crate) async fn handle(
    broker: &Broker,
    ctx: &mut RequestContext,
    mut frame: Bytes,
) -> Result<Option<Bytes>, DispatchError> {
    if frame.len() < 8 {
        return Err(DispatchError::Short);
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(raw_key).map_err(|_| DispatchError::UnknownApi(raw_key))?;
    let supported = supported_range(api).is_some_and(|(min, max)| (min..=max).contains(&version));
    if !supported {
        if api == ApiKey::ApiVersions {
            // A client newer than us: answer at v0 with the table, so it can pick a version.
            let response = api::api_versions::unsupported_version_response();
            return encode(api, 0, correlation_id, &ResponseKind::ApiVersions(response)).map(Some);
        }
        return Err(DispatchError::UnsupportedVersion { api, version });
    }
    let header =
        RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| {
            DispatchError::Malformed {
                api,
                version,
                reason: e.to_string(),
            }
        })?;
    if let Some(id) = &header.client_id {
        if ctx.client_id.as_deref() != Some(id.as_str()) {
            ctx.client_id = Some(id.to_string());
        }
    }
    tracing::trace!(peer = %ctx.peer, ?api, version, correlation_id, "request");
    let request =
        RequestKind::decode(api, &mut frame, version).map_err(|e| DispatchError::Malformed {
            api,
            version,
            reason: e.to_string(),
        })?;
    let response = match request {
        RequestKind::ApiVersions(r) => Some(ResponseKind::ApiVersions(api::api_versions::handle(
            &r, version,
        ))),
        RequestKind::Metadata(r) => Some(ResponseKind::Metadata(api::metadata::handle(
            broker, ctx, r, version,
        ))),
        RequestKind::Produce(r) => api::produce::handle(broker, r, version)
            .await
            .map(ResponseKind::Produce),
        RequestKind::Fetch(r) => Some(ResponseKind::Fetch(
            api::fetch::handle(broker, r, version).await,
        )),
        RequestKind::ListOffsets(r) => Some(ResponseKind::ListOffsets(api::list_offsets::handle(
            broker, r, version,
        ))),
        RequestKind::CreateTopics(r) => Some(ResponseKind::CreateTopics(
            api::admin::create_topics(broker, r, version).await,
        )),
        RequestKind::DeleteTopics(r) => Some(ResponseKind::DeleteTopics(
            api::admin::delete_topics(broker, r, version).await,
        )),
        RequestKind::DescribeCluster(r) => Some(ResponseKind::DescribeCluster(
            api::admin::describe_cluster(broker, ctx, r, version),
        )),
        RequestKind::InitProducerId(r) => Some(ResponseKind::InitProducerId(
            api::producer_id::init_producer_id(broker, r, version),
        )),
        // The table above admits only the APIs matched here.
        _ => return Err(DispatchError::UnsupportedVersion { api, version }),
    };
    match response {
        Some(r) => encode(api, version, correlation_id, &r).map(Some),
        None => Ok(None),
    }
}

fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, DispatchError> {
    let err = |e: anyhow::Error| DispatchError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header
        .encode(&mut buf, api.response_header_version(version))
        .map_err(err)?;
    response.encode(&mut buf, version).map_err(err)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    //! Every supported API at every supported version answers a typical request with a
    //! response that encodes: a field set outside its version would fail here.

    use super::*;
    use bytes::Buf;
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

    fn request(api: ApiKey, version: i16, topic_id: uuid::Uuid) -> RequestKind {
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
            ApiKey::DescribeCluster => {
                RequestKind::DescribeCluster(DescribeClusterRequest::default())
            }
            other => panic!("no sample request for {other:?}"),
        }
    }

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

    #[tokio::test]
    async fn every_supported_version_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().to_string_lossy().into_owned();
        let config = sluice_config::BrokerConfig::from_properties([
            ("listeners", "PLAINTEXT://127.0.0.1:0"),
            ("log.dirs", log_dir.as_str()),
        ])
        .expect("config");
        let (broker, _listeners) = crate::server::bind(config).await.expect("bind");
        let topic = broker
            .storage
            .create_topic("t", 1, Default::default())
            .expect("create");
        let mut ctx = RequestContext {
            peer: "127.0.0.1:1".parse().expect("addr"),
            listener: "PLAINTEXT".into(),
            client_id: None,
        };
        for (api, min, max) in SUPPORTED {
            for version in *min..=*max {
                let req = request(*api, version, topic.record.id);
                let out = handle(&broker, &mut ctx, frame(*api, version, &req))
                    .await
                    .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"))
                    .unwrap_or_else(|| panic!("{api:?} v{version}: no response"));
                let mut body = out.slice(4..);
                let header =
                    ResponseHeader::decode(&mut body, api.response_header_version(version))
                        .unwrap_or_else(|e| panic!("{api:?} v{version} header: {e}"));
                assert_eq!(header.correlation_id, 7);
                let response = ResponseKind::decode(*api, &mut body, version)
                    .unwrap_or_else(|e| panic!("{api:?} v{version} body: {e}"));
                assert_eq!(body.remaining(), 0, "{api:?} v{version}: trailing bytes");
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
                    other => panic!("unexpected {other:?}"),
                }
            }
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
        let (broker, _l) = crate::server::bind(config).await.expect("bind");
        let mut ctx = RequestContext {
            peer: "127.0.0.1:1".parse().expect("addr"),
            listener: "PLAINTEXT".into(),
            client_id: None,
        };
        // ApiVersions v99 with a correlation id and a body we cannot parse.
        let raw = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 1, 2, 3]);
        let out = handle(&broker, &mut ctx, raw)
            .await
            .expect("answered")
            .expect("response");
        let mut body = out.slice(4..);
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
            .any(|k| k.api_key == 0 && k.max_version == 11));
    }
}
