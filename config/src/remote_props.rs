//! The declarations of the tiered storage properties (`remote_storage.rs`).

use crate::cluster::non_empty;
use crate::def::{BrokerProp, KafkaDefault};
use crate::describe::ConfigType;
use crate::{parse_bool, parse_i64};

/// Tiered storage properties.
#[rustfmt::skip]
pub(crate) static REMOTE_PROPS: &[BrokerProp] = &[
    BrokerProp::typed("remote.log.storage.system.enable", ConfigType::Boolean,
        "Copy sealed segments of topics with remote.storage.enable=true to the object store.",
        |p, k, v| { p.cfg.remote.enabled = parse_bool(k, v)?; Ok(()) },
        |b| b.remote.enabled.to_string())
        .kafka_default(KafkaDefault::Value("false")),
    BrokerProp::parsed("remote.storage.s3.endpoint", "URL of an S3-compatible server; unset is AWS S3 (Sluice's own).",
        |b| b.remote.s3_endpoint.clone().unwrap_or_default(),
        |p, k, v| { p.cfg.remote.s3_endpoint = Some(non_empty(k, v)?); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::parsed("remote.storage.s3.bucket", "Bucket the remote tier writes to (Sluice's own).",
        |b| b.remote.s3_bucket.clone().unwrap_or_default(),
        |p, k, v| { p.cfg.remote.s3_bucket = Some(non_empty(k, v)?); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::typed("remote.storage.s3.region", ConfigType::String, "Region of the bucket (Sluice's own).",
        |p, k, v| { p.cfg.remote.s3_region = non_empty(k, v)?; Ok(()) },
        |b| b.remote.s3_region.clone()),
    BrokerProp::parsed("remote.storage.s3.access.key", "Access key id; unset: AWS_ACCESS_KEY_ID (Sluice's own).",
        |b| b.remote.s3_access_key.clone().unwrap_or_default(),
        |p, k, v| { p.cfg.remote.s3_access_key = Some(non_empty(k, v)?); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::parsed("remote.storage.s3.secret.key", "Secret access key; unset: AWS_SECRET_ACCESS_KEY (Sluice's own).",
        |b| b.remote.s3_secret_key.clone().unwrap_or_default(),
        |p, k, v| { p.cfg.remote.s3_secret_key = Some(non_empty(k, v)?); Ok(()) })
        .of_type(ConfigType::Password),
    BrokerProp::typed("remote.storage.s3.path.style.access", ConfigType::Boolean,
        "Address the bucket in the path (http://host/bucket/key), as most S3-compatible servers want (Sluice's own).",
        |p, k, v| { p.cfg.remote.s3_path_style_access = parse_bool(k, v)?; Ok(()) },
        |b| b.remote.s3_path_style_access.to_string()),
    BrokerProp::parsed("remote.storage.s3.prefix", "Key prefix of every object the broker writes, to share a bucket (Sluice's own).",
        |b| b.remote.prefix.clone(),
        |p, _, v| { p.cfg.remote.prefix = v.trim_matches('/').to_string(); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::parsed("remote.storage.local.dir", "A directory standing in for the object store, for local development (Sluice's own).",
        |b| b.remote.local_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
        |p, k, v| { p.cfg.remote.local_dir = Some(non_empty(k, v)?.into()); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::typed("remote.log.manager.task.interval.ms", ConfigType::Long,
        "How often each partition is checked for segments to copy to or delete from the remote tier.",
        |p, k, v| { p.cfg.remote.task_interval_ms = parse_i64(k, v, 1)? as u64; Ok(()) },
        |b| b.remote.task_interval_ms.to_string())
        .kafka_default(KafkaDefault::Value("30000")),
    BrokerProp::typed("remote.log.manager.copier.thread.pool.size", ConfigType::Int,
        "Most segment copies to the remote tier in flight at once.",
        |p, k, v| { p.cfg.remote.max_copies_in_flight = parse_i64(k, v, 1)? as usize; Ok(()) },
        |b| b.remote.max_copies_in_flight.to_string())
        .kafka_default(KafkaDefault::Value("10")),
    BrokerProp::typed("remote.log.manager.task.retry.backoff.ms", ConfigType::Long,
        "First wait after a failed copy or delete on the remote tier; doubles up to the max.",
        |p, k, v| { p.cfg.remote.retry_backoff_ms = parse_i64(k, v, 1)? as u64; Ok(()) },
        |b| b.remote.retry_backoff_ms.to_string())
        .kafka_default(KafkaDefault::Value("500")),
    BrokerProp::typed("remote.log.manager.task.retry.backoff.max.ms", ConfigType::Long,
        "Longest wait between retries of a failed copy or delete on the remote tier.",
        |p, k, v| { p.cfg.remote.retry_backoff_max_ms = parse_i64(k, v, 1)? as u64; Ok(()) },
        |b| b.remote.retry_backoff_max_ms.to_string())
        .kafka_default(KafkaDefault::Value("30000")),
    BrokerProp::typed("remote.fetch.max.wait.ms", ConfigType::Int,
        "How long a Fetch waits for a read from the remote tier before answering without it.",
        |p, k, v| { p.cfg.remote.fetch_max_wait_ms = parse_i64(k, v, 1)? as u64; Ok(()) },
        |b| b.remote.fetch_max_wait_ms.to_string())
        .kafka_default(KafkaDefault::Value("500")),
    BrokerProp::typed("remote.storage.cache.bytes", ConfigType::Long,
        "Memory for chunks of remote segments read recently (Sluice's own).",
        |p, k, v| { p.cfg.remote.cache_bytes = parse_i64(k, v, 0)? as u64; Ok(()) },
        |b| b.remote.cache_bytes.to_string()),
];
