//! Broker-side schema validation (Confluent Server's `confluent.key.schema.validation` and
//! `confluent.value.schema.validation`): every key or value of a produced batch must be in
//! Confluent's wire format (magic byte 0, then a 4-byte schema id) with an id that is a
//! live version of the record's subject. A null key or value passes (a tombstone has no
//! schema).

use bytes::Bytes;
use sluice_config::{SubjectNameStrategy, TopicConfig};
use sluice_registry::Registry;
use sluice_storage::RecordError;

use super::SchemaRegistry;

/// Which part of a record is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Key,
    Value,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Key => "key",
            Part::Value => "value",
        }
    }
}

/// Whether the topic validates anything (so that other topics pay nothing).
pub(crate) fn validates(config: &TopicConfig) -> bool {
    config.key_schema_validation || config.value_schema_validation
}

/// The records of `batch` that validation refuses, each with its index and reason. A
/// batch that cannot be decoded is one refusal at index 0.
pub(crate) fn refused_records(
    registry: Option<&SchemaRegistry>,
    topic: &str,
    config: &TopicConfig,
    batch: &Bytes,
) -> Vec<RecordError> {
    let refuse_all = |message: String| {
        vec![RecordError {
            batch_index: 0,
            message,
        }]
    };
    let Some(registry) = registry else {
        return refuse_all(
            "schema validation is on for this topic but the Schema Registry is not".into(),
        );
    };
    let records = match sluice_protocol::records::decode_records(batch) {
        Ok((_, records)) => records,
        Err(e) => return refuse_all(format!("the batch could not be read: {e}")),
    };
    let parts: Vec<(Part, SubjectNameStrategy)> = [
        (
            Part::Key,
            config.key_schema_validation,
            config.key_subject_name_strategy,
        ),
        (
            Part::Value,
            config.value_schema_validation,
            config.value_subject_name_strategy,
        ),
    ]
    .into_iter()
    .filter(|(_, on, _)| *on)
    .map(|(part, _, strategy)| (part, strategy))
    .collect();
    let state = registry.read();
    let mut refused = Vec::new();
    // The ids this batch already showed valid: a batch mostly carries one schema, so the
    // registry is asked once per id rather than once per record.
    let mut accepted: Vec<(Part, i32)> = Vec::new();
    for (index, record) in records.iter().enumerate() {
        for (part, strategy) in &parts {
            let payload = match part {
                Part::Key => record.key.as_deref(),
                Part::Value => record.value.as_deref(),
            };
            let id = match payload {
                Some([0, a, b, c, d, ..]) => Some(i32::from_be_bytes([*a, *b, *c, *d])),
                _ => None,
            };
            if id.is_some_and(|id| accepted.contains(&(*part, id))) {
                continue;
            }
            match check(&state, topic, *part, *strategy, payload) {
                Ok(()) => accepted.extend(id.map(|id| (*part, id))),
                Err(reason) => {
                    refused.push(RecordError {
                        batch_index: index as i32,
                        message: format!("{} of record {index}: {reason}", part.name()),
                    });
                    break;
                }
            }
        }
    }
    refused
}

fn check(
    state: &Registry,
    topic: &str,
    part: Part,
    strategy: SubjectNameStrategy,
    payload: Option<&[u8]>,
) -> Result<(), String> {
    let Some(payload) = payload else {
        return Ok(());
    };
    let id = match payload {
        [0, a, b, c, d, ..] => i32::from_be_bytes([*a, *b, *c, *d]),
        [magic, _, _, _, _, ..] => {
            return Err(format!(
                "magic byte is {magic}, not 0: not in the Schema Registry's wire format"
            ))
        }
        _ => {
            return Err(format!(
                "{} bytes are too short for the Schema Registry's wire format (magic byte and schema id)",
                payload.len()
            ))
        }
    };
    let Ok(schema) = state.schema(id) else {
        return Err(format!("schema id {id} is not registered"));
    };
    let subject = match strategy {
        SubjectNameStrategy::TopicName => format!("{topic}-{}", part.name()),
        SubjectNameStrategy::RecordName | SubjectNameStrategy::TopicRecordName => {
            let Some(name) = &schema.record_name else {
                return Err(format!(
                    "schema id {id} has no record name for the record name strategy"
                ));
            };
            if strategy == SubjectNameStrategy::RecordName {
                name.clone()
            } else {
                format!("{topic}-{name}")
            }
        }
    };
    if state.subject_has(&subject, id) {
        Ok(())
    } else {
        Err(format!(
            "schema id {id} is not a version of subject {subject}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_registry::{Record, SchemaType};

    const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"}]}"#;
    const USER: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#;

    fn registry() -> Registry {
        let mut r = Registry::default();
        for (subject, schema) in [
            ("orders-value", ORDER),
            ("users-value", USER),
            ("shop.Order", ORDER),
        ] {
            let reg = r.register(subject, SchemaType::Avro, schema, &[]).unwrap();
            if let Some(rec) = reg.record {
                r.apply(&rec);
            }
        }
        r
    }

    fn framed(id: i32) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(b"\x02");
        v
    }

    #[test]
    fn the_wire_format_and_the_subject_decide() {
        let r = registry();
        let topic_name =
            |p: Option<&[u8]>| check(&r, "orders", Part::Value, SubjectNameStrategy::TopicName, p);
        assert_eq!(topic_name(Some(&framed(1))), Ok(()));
        assert_eq!(topic_name(None), Ok(()));
        assert!(topic_name(Some(br#"{"id": 1}"#))
            .unwrap_err()
            .contains("magic byte is 123"));
        assert!(topic_name(Some(&[0, 0])).unwrap_err().contains("too short"));
        assert!(topic_name(Some(&framed(9)))
            .unwrap_err()
            .contains("not registered"));
        assert_eq!(
            topic_name(Some(&framed(2))),
            Err("schema id 2 is not a version of subject orders-value".into())
        );
        assert_eq!(
            check(
                &r,
                "anything",
                Part::Value,
                SubjectNameStrategy::RecordName,
                Some(&framed(1))
            ),
            Ok(())
        );
        assert!(check(
            &r,
            "orders",
            Part::Value,
            SubjectNameStrategy::TopicRecordName,
            Some(&framed(1))
        )
        .unwrap_err()
        .contains("orders-shop.Order"));
        // A soft-deleted version no longer validates.
        let mut r = r;
        r.apply(&Record::DeleteSubject {
            subject: "orders-value".into(),
            version: 1,
        });
        assert!(check(
            &r,
            "orders",
            Part::Value,
            SubjectNameStrategy::TopicName,
            Some(&framed(1))
        )
        .is_err());
    }
}
