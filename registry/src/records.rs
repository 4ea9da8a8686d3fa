//! The records of the `_schemas` topic, in the JSON keys and values Confluent's registry
//! writes, so that the registry's whole state is the fold of its topic (a compacted topic:
//! the latest record of each key wins, a tombstone removes the key).

use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;
use crate::format::SchemaType;

/// Another subject's schema that a schema names (Confluent's schema references).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The name the referencing schema uses for it.
    pub name: String,
    /// The subject holding it.
    pub subject: String,
    /// Its version there.
    pub version: i32,
}

/// The value of a SCHEMA record: one version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    /// The subject.
    pub subject: String,
    /// The version within the subject.
    pub version: i32,
    /// The schema's global id.
    pub id: i32,
    /// The schema as registered.
    pub schema: String,
    /// Absent for AVRO, as Confluent writes it.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_type: Option<String>,
    /// Schemas it refers to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// Soft-deleted.
    #[serde(default)]
    pub deleted: bool,
}

impl SchemaValue {
    /// The schema's type (AVRO when absent).
    pub fn kind(&self) -> Result<SchemaType, crate::RegistryError> {
        self.schema_type
            .as_deref()
            .map_or(Ok(SchemaType::Avro), str::parse)
    }
}

/// One record of `_schemas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A subject's version; `None` is a tombstone (a permanent delete).
    Schema {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
        /// The version's schema and state.
        value: Option<SchemaValue>,
    },
    /// The compatibility level of a subject, or (`subject` None) the global one; a level
    /// of `None` removes the setting.
    Config {
        /// The subject, or None for the global level.
        subject: Option<String>,
        /// The level, or None to fall back to the global one.
        level: Option<CompatibilityLevel>,
    },
    /// Every version of a subject up to `version` was soft-deleted.
    DeleteSubject {
        /// The subject.
        subject: String,
        /// Its latest version when it was deleted.
        version: i32,
    },
    /// The highest schema id ever given (Sluice's own key type), written with permanent
    /// deletes: compaction may drop the deleted schema's record, never this one, so a
    /// reload never gives its id again.
    IdHighWater {
        /// The id.
        id: i32,
    },
}

#[derive(Serialize, Deserialize)]
struct Key {
    keytype: String,
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<i32>,
    magic: i32,
}

#[derive(Serialize, Deserialize)]
struct ConfigValue {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: String,
}

#[derive(Serialize, Deserialize)]
struct IdValue {
    id: i32,
}

/// The key type of [`Record::IdHighWater`].
const ID_HIGH_WATER: &str = "SLUICE_ID_HIGH_WATER";

#[derive(Serialize, Deserialize)]
struct DeleteSubjectValue {
    subject: String,
    version: i32,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Record {
    /// The record's key.
    pub fn key(&self) -> Vec<u8> {
        json(&match self {
            Record::Schema {
                subject, version, ..
            } => Key {
                keytype: "SCHEMA".into(),
                subject: Some(subject.clone()),
                version: Some(*version),
                magic: 1,
            },
            Record::Config { subject, .. } => Key {
                keytype: "CONFIG".into(),
                subject: subject.clone(),
                version: None,
                magic: 0,
            },
            Record::DeleteSubject { subject, .. } => Key {
                keytype: "DELETE_SUBJECT".into(),
                subject: Some(subject.clone()),
                version: None,
                magic: 0,
            },
            Record::IdHighWater { .. } => Key {
                keytype: ID_HIGH_WATER.into(),
                subject: None,
                version: None,
                magic: 0,
            },
        })
    }

    /// The record's value; `None` is a tombstone.
    pub fn value(&self) -> Option<Vec<u8>> {
        match self {
            Record::Schema { value, .. } => value.as_ref().map(json),
            Record::Config { level, .. } => level.map(|l| {
                json(&ConfigValue {
                    compatibility_level: l.name().into(),
                })
            }),
            Record::DeleteSubject { subject, version } => Some(json(&DeleteSubjectValue {
                subject: subject.clone(),
                version: *version,
            })),
            Record::IdHighWater { id } => Some(json(&IdValue { id: *id })),
        }
    }

    /// Reads a record of `_schemas`; `Ok(None)` for the key types that carry no state
    /// (Confluent's NOOP, written to find the end of the topic).
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Record>, String> {
        let key: Key = serde_json::from_slice(key).map_err(|e| format!("key: {e}"))?;
        let subject = || key.subject.clone().ok_or("key without a subject");
        Ok(Some(match key.keytype.as_str() {
            "SCHEMA" => Record::Schema {
                subject: subject()?,
                version: key.version.ok_or("SCHEMA key without a version")?,
                value: value
                    .map(serde_json::from_slice)
                    .transpose()
                    .map_err(|e| format!("SCHEMA value: {e}"))?,
            },
            "CONFIG" => Record::Config {
                subject: key.subject,
                level: match value {
                    None => None,
                    Some(v) => {
                        let c: ConfigValue =
                            serde_json::from_slice(v).map_err(|e| format!("CONFIG value: {e}"))?;
                        Some(
                            c.compatibility_level
                                .parse()
                                .map_err(|e: crate::RegistryError| e.message)?,
                        )
                    }
                },
            },
            "DELETE_SUBJECT" => {
                let Some(v) = value else { return Ok(None) };
                let d: DeleteSubjectValue =
                    serde_json::from_slice(v).map_err(|e| format!("DELETE_SUBJECT value: {e}"))?;
                Record::DeleteSubject {
                    subject: d.subject,
                    version: d.version,
                }
            }
            ID_HIGH_WATER => {
                let Some(v) = value else { return Ok(None) };
                let v: IdValue =
                    serde_json::from_slice(v).map_err(|e| format!("{ID_HIGH_WATER} value: {e}"))?;
                Record::IdHighWater { id: v.id }
            }
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_confluents_json_and_read_back() {
        let schema = Record::Schema {
            subject: "orders-value".into(),
            version: 2,
            value: Some(SchemaValue {
                subject: "orders-value".into(),
                version: 2,
                id: 7,
                schema: r#"{"type":"string"}"#.into(),
                schema_type: None,
                references: Vec::new(),
                deleted: false,
            }),
        };
        assert_eq!(
            String::from_utf8(schema.key()).unwrap(),
            r#"{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}"#
        );
        assert_eq!(
            String::from_utf8(schema.value().unwrap()).unwrap(),
            r#"{"subject":"orders-value","version":2,"id":7,"schema":"{\"type\":\"string\"}","deleted":false}"#
        );
        let global = Record::Config {
            subject: None,
            level: Some(CompatibilityLevel::Full),
        };
        assert_eq!(
            String::from_utf8(global.key()).unwrap(),
            r#"{"keytype":"CONFIG","subject":null,"magic":0}"#
        );
        assert_eq!(
            String::from_utf8(global.value().unwrap()).unwrap(),
            r#"{"compatibilityLevel":"FULL"}"#
        );
        let gone = Record::DeleteSubject {
            subject: "s".into(),
            version: 3,
        };
        let high = Record::IdHighWater { id: 12 };
        for r in [schema, global, gone, high] {
            assert_eq!(
                Record::decode(&r.key(), r.value().as_deref()),
                Ok(Some(r.clone()))
            );
        }
        let tombstone = Record::Schema {
            subject: "s".into(),
            version: 1,
            value: None,
        };
        assert_eq!(Record::decode(&tombstone.key(), None), Ok(Some(tombstone)));
    }

    #[test]
    fn noop_keys_are_skipped_and_garbage_is_an_error() {
        assert_eq!(
            Record::decode(br#"{"keytype":"NOOP","magic":0}"#, None),
            Ok(None)
        );
        assert!(Record::decode(b"garbage", None).is_err());
        assert!(Record::decode(br#"{"keytype":"SCHEMA","subject":"s","magic":1}"#, None).is_err());
        assert!(Record::decode(
            br#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
            Some(br#"{"compatibilityLevel":"SIDEWAYS"}"#)
        )
        .is_err());
    }
}
