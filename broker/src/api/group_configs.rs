//! DescribeConfigs and (Incremental)AlterConfigs of resource type GROUP: the share-group
//! configs Sluice applies ([`crate::group_configs`]); other names are INVALID_CONFIG.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use sluice_config::{ConfigSource, DescribedConfig};

use super::configs::{Refusal, OP_DELETE, OP_SET};
use crate::broker::Broker;
use crate::group_configs::{
    validate, GROUP_CONFIG_DEFS, SHARE_AUTO_OFFSET_RESET, SHARE_ISOLATION_LEVEL,
    SHARE_RECORD_LOCK_DURATION_MS,
};

/// A group's configs in force: set on it, or the default.
pub(super) fn describe(broker: &Broker, group: &str) -> Vec<DescribedConfig> {
    let set = broker.group_configs.get(group);
    GROUP_CONFIG_DEFS
        .iter()
        .map(|(name, config_type, doc)| {
            let default = match *name {
                SHARE_AUTO_OFFSET_RESET => "latest".to_string(),
                SHARE_ISOLATION_LEVEL => "read_uncommitted".to_string(),
                SHARE_RECORD_LOCK_DURATION_MS => {
                    broker.config.shares.record_lock_duration_ms.to_string()
                }
                _ => String::new(),
            };
            let (value, source) = match set.get(*name) {
                Some(v) => (v.clone(), ConfigSource::Group),
                None => (default, ConfigSource::Default),
            };
            DescribedConfig {
                name: name.to_string(),
                value: Some(value),
                source,
                synonyms: Vec::new(),
                config_type: *config_type,
                doc,
                read_only: false,
                sensitive: false,
            }
        })
        .collect()
}

/// One group config change, as IncrementalAlterConfigs (`op`) or AlterConfigs (every
/// given config SET, the rest deleted) names it.
pub(super) struct GroupOp {
    pub(super) name: String,
    pub(super) op: i8,
    pub(super) value: Option<String>,
}

/// The group's configs after `ops`, checked; `replace` starts from none (AlterConfigs).
pub(super) fn altered(
    broker: &Broker,
    group: &str,
    ops: Vec<GroupOp>,
    replace: bool,
) -> Result<BTreeMap<String, String>, Refusal> {
    if group.is_empty() {
        return Err((
            ResponseError::InvalidGroupId,
            "the group id is empty".to_string(),
        ));
    }
    let mut configs = if replace {
        BTreeMap::new()
    } else {
        broker.group_configs.get(group)
    };
    let invalid = |msg: String| (ResponseError::InvalidConfig, msg);
    for o in ops {
        match (o.op, o.value) {
            (OP_SET, Some(v)) => {
                validate(&o.name, &v).map_err(invalid)?;
                configs.insert(o.name, v);
            }
            (OP_SET, None) => return Err(invalid(format!("SET of {} needs a value", o.name))),
            (OP_DELETE, _) => {
                validate(&o.name, "").or_else(|e| {
                    if e.starts_with("Unknown") {
                        Err(invalid(e))
                    } else {
                        Ok(())
                    }
                })?;
                configs.remove(&o.name);
            }
            (other, _) => {
                return Err(invalid(format!(
                    "operation {other} is not allowed for group config {}",
                    o.name
                )))
            }
        }
    }
    Ok(configs)
}
