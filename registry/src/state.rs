//! The registry's state as the fold of its `_schemas` records: schemas by global id,
//! each subject's versions, and compatibility levels. Every change is decided here and
//! returned as the records to write; the state changes only when they are applied (once
//! written), so a write that fails changes nothing.

use std::collections::BTreeMap;

use crate::compat::CompatibilityLevel;
use crate::format::{ParsedSchema, SchemaType};
use crate::records::{Record, Reference, SchemaValue};
use crate::RegistryError;

/// A schema under its global id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchema {
    /// Its format.
    pub schema_type: SchemaType,
    /// As first registered.
    pub schema: String,
    /// Its canonical form with its references: what finds it again.
    pub(crate) canonical: String,
    /// The fully-qualified name of a named schema.
    pub record_name: Option<String>,
    /// Other subjects' schemas it names.
    pub references: Vec<Reference>,
}

impl StoredSchema {
    /// The schema text in `format`: for Protobuf, `serialized` is a base64
    /// `FileDescriptorProto` (what Confluent's deserializers ask for); otherwise as
    /// registered.
    pub fn formatted(&self, format: Option<&str>) -> String {
        if self.schema_type == SchemaType::Protobuf && format == Some("serialized") {
            if let Ok(ParsedSchema::Protobuf(d)) =
                ParsedSchema::parse(self.schema_type, &self.schema)
            {
                return crate::protobuf::serialized(&self.schema, &d);
            }
        }
        self.schema.clone()
    }
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) id: i32,
    pub(crate) deleted: bool,
}

/// What a registration comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The schema's global id.
    pub id: i32,
    /// Its version in the subject.
    pub version: i32,
    /// The record to write; `None` when the subject already has this schema.
    pub record: Option<Record>,
}

/// The registry's state.
#[derive(Debug, Default)]
pub struct Registry {
    pub(crate) schemas: BTreeMap<i32, StoredSchema>,
    pub(crate) subjects: BTreeMap<String, BTreeMap<i32, Version>>,
    global: Option<CompatibilityLevel>,
    configs: BTreeMap<String, CompatibilityLevel>,
    max_id: i32,
}

impl Registry {
    /// Applies one record of `_schemas` (read back, or just written).
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Schema {
                subject,
                version,
                value: Some(v),
            } => {
                let Ok(schema_type) = v.kind() else { return };
                if !self.schemas.contains_key(&v.id) {
                    let parsed = self.parse(schema_type, &v.schema, &v.references).ok();
                    let canonical = parsed
                        .as_ref()
                        .map_or_else(|| v.schema.clone(), |p| canonical_with(p, &v.references));
                    self.schemas.insert(
                        v.id,
                        StoredSchema {
                            schema_type,
                            schema: v.schema.clone(),
                            canonical,
                            record_name: parsed.and_then(|p| p.record_name()),
                            references: v.references.clone(),
                        },
                    );
                }
                self.max_id = self.max_id.max(v.id);
                self.subjects.entry(subject.clone()).or_default().insert(
                    *version,
                    Version {
                        id: v.id,
                        deleted: v.deleted,
                    },
                );
            }
            Record::Schema {
                subject,
                version,
                value: None,
            } => {
                if let Some(versions) = self.subjects.get_mut(subject) {
                    versions.remove(version);
                    if versions.is_empty() {
                        self.subjects.remove(subject);
                    }
                }
                // A schema no version names any more is gone; its id is not reused.
                let named: std::collections::BTreeSet<i32> = self
                    .subjects
                    .values()
                    .flat_map(|v| v.values().map(|v| v.id))
                    .collect();
                self.schemas.retain(|id, _| named.contains(id));
            }
            Record::Config { subject, level } => match (subject, level) {
                (None, l) => self.global = *l,
                (Some(s), Some(l)) => {
                    self.configs.insert(s.clone(), *l);
                }
                (Some(s), None) => {
                    self.configs.remove(s);
                }
            },
            Record::IdHighWater { id } => self.max_id = self.max_id.max(*id),
            Record::DeleteSubject { subject, version } => {
                if let Some(versions) = self.subjects.get_mut(subject) {
                    for (_, v) in versions.range_mut(..=*version) {
                        v.deleted = true;
                    }
                }
            }
        }
    }

    /// The compatibility level in force for `subject`: its own, else the global one,
    /// else BACKWARD (Confluent's default).
    pub fn compatibility(&self, subject: Option<&str>) -> CompatibilityLevel {
        subject
            .and_then(|s| self.configs.get(s))
            .copied()
            .or(self.global)
            .unwrap_or_default()
    }

    /// Whether schema `id` is a live (not soft-deleted) version of `subject`.
    pub fn subject_has(&self, subject: &str, id: i32) -> bool {
        self.subjects
            .get(subject)
            .is_some_and(|v| v.values().any(|v| v.id == id && !v.deleted))
    }

    /// How many schemas (distinct ids) the registry holds.
    pub fn schema_count(&self) -> usize {
        self.schemas.len()
    }

    /// The subject's own level, if set.
    pub fn subject_compatibility(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.configs.get(subject).copied()
    }

    /// Registers `schema` under `subject` (POST /subjects/{subject}/versions): the
    /// version that already has it, or a new version checked against the earlier ones
    /// under the subject's compatibility level, with the schema's id if another subject
    /// has it and a new id otherwise.
    pub fn register(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
        references: &[Reference],
    ) -> Result<Registration, RegistryError> {
        let parsed = self.parse(schema_type, schema, references)?;
        let canonical = canonical_with(&parsed, references);
        let versions = self.subjects.get(subject);
        let live = || versions.into_iter().flatten().filter(|(_, v)| !v.deleted);
        if let Some((version, v)) = live().find(|(_, v)| self.same(v.id, schema_type, &canonical)) {
            return Ok(Registration {
                id: v.id,
                version: *version,
                record: None,
            });
        }
        let earlier = live()
            .filter_map(|(_, v)| self.parsed(v.id))
            .collect::<Vec<_>>();
        let reasons = self
            .compatibility(Some(subject))
            .violations(&parsed, &earlier);
        if !reasons.is_empty() {
            return Err(RegistryError::incompatible(subject, &reasons));
        }
        let id = self
            .schemas
            .iter()
            .find(|(_, s)| s.schema_type == schema_type && s.canonical == canonical)
            .map_or(self.max_id + 1, |(id, _)| *id);
        let version = versions
            .and_then(|v| v.keys().next_back())
            .map_or(1, |v| v + 1);
        Ok(Registration {
            id,
            version,
            record: Some(Record::Schema {
                subject: subject.to_string(),
                version,
                value: Some(SchemaValue {
                    subject: subject.to_string(),
                    version,
                    id,
                    schema: self
                        .schemas
                        .get(&id)
                        .map_or_else(|| schema.to_string(), |s| s.schema.clone()),
                    schema_type: (schema_type != SchemaType::Avro)
                        .then(|| schema_type.name().to_string()),
                    references: references.to_vec(),
                    deleted: false,
                }),
            }),
        })
    }

    /// Why `schema` could not follow the subject's live versions under its level (or,
    /// with `version`, could not follow that version alone); empty when it could.
    pub fn check(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
        references: &[Reference],
        version: Option<i32>,
    ) -> Result<Vec<String>, RegistryError> {
        let parsed = self.parse(schema_type, schema, references)?;
        let level = self.compatibility(Some(subject));
        let earlier: Vec<ParsedSchema> = match version {
            Some(v) => {
                let (_, id) = self.version(subject, v, false)?;
                self.parsed(id).into_iter().collect()
            }
            None => self
                .subjects
                .get(subject)
                .into_iter()
                .flatten()
                .filter(|(_, v)| !v.deleted)
                .filter_map(|(_, v)| self.parsed(v.id))
                .collect(),
        };
        Ok(level.violations(&parsed, &earlier))
    }

    /// The subjects and versions that use a schema id (live ones, or all with `deleted`).
    pub fn uses(&self, id: i32, deleted: bool) -> Vec<(String, i32)> {
        self.subjects
            .iter()
            .flat_map(|(s, versions)| {
                versions
                    .iter()
                    .filter(move |(_, v)| v.id == id && (deleted || !v.deleted))
                    .map(move |(n, _)| (s.clone(), *n))
            })
            .collect()
    }

    /// The global level, if set.
    pub fn global_compatibility(&self) -> Option<CompatibilityLevel> {
        self.global
    }

    /// The schema of a global id (GET /schemas/ids/{id}).
    pub fn schema(&self, id: i32) -> Result<&StoredSchema, RegistryError> {
        self.schemas
            .get(&id)
            .ok_or_else(RegistryError::schema_not_found)
    }

    /// Subjects with a live version (or, with `deleted`, any version).
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, v)| deleted || v.values().any(|v| !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// A subject's versions, oldest first.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<i32>, RegistryError> {
        let found: Vec<i32> = self
            .subjects
            .get(subject)
            .into_iter()
            .flatten()
            .filter(|(_, v)| deleted || !v.deleted)
            .map(|(n, _)| *n)
            .collect();
        if found.is_empty() {
            return Err(RegistryError::subject_not_found(subject));
        }
        Ok(found)
    }

    /// One version of a subject (`-1`: the latest): its number and schema id.
    pub fn version(
        &self,
        subject: &str,
        version: i32,
        deleted: bool,
    ) -> Result<(i32, i32), RegistryError> {
        let versions = self.versions(subject, deleted)?;
        let n = if version == -1 {
            versions.last().copied().unwrap_or(version)
        } else {
            version
        };
        if !versions.contains(&n) {
            return Err(RegistryError::version_not_found(version));
        }
        let id = self.subjects[subject][&n].id;
        Ok((n, id))
    }

    /// Finds `schema` among the subject's live versions (POST /subjects/{subject}).
    pub fn lookup(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
        references: &[Reference],
    ) -> Result<(i32, i32), RegistryError> {
        let versions = self.versions(subject, false)?;
        let canonical = canonical_with(&self.parse(schema_type, schema, references)?, references);
        versions
            .into_iter()
            .map(|n| (n, self.subjects[subject][&n].id))
            .find(|(_, id)| self.same(*id, schema_type, &canonical))
            .ok_or_else(RegistryError::schema_not_found)
    }

    /// Deletes one version (DELETE /subjects/{subject}/versions/{version}): soft, or
    /// permanently once soft-deleted. Returns the version and the records to write.
    pub fn delete_version(
        &self,
        subject: &str,
        version: i32,
        permanent: bool,
    ) -> Result<(i32, Vec<Record>), RegistryError> {
        let (n, id) = self.version(subject, version, true)?;
        self.check_unreferenced(subject, n)?;
        let deleted = self.subjects[subject][&n].deleted;
        let value = match (permanent, deleted) {
            (false, true) => return Err(RegistryError::version_soft_deleted(subject, n)),
            (true, false) => return Err(RegistryError::version_not_soft_deleted(subject, n)),
            (true, true) => None,
            (false, false) => Some(self.value(subject, n, id, true)?),
        };
        let mut records = vec![Record::Schema {
            subject: subject.to_string(),
            version: n,
            value,
        }];
        if permanent {
            records.push(Record::IdHighWater { id: self.max_id });
        }
        Ok((n, records))
    }

    /// Deletes a subject (DELETE /subjects/{subject}): soft, or permanently once every
    /// version is soft-deleted. Returns the versions deleted and the records to write.
    pub fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<(Vec<i32>, Vec<Record>), RegistryError> {
        let all = self.versions(subject, true)?;
        for n in &all {
            self.check_unreferenced(subject, *n)?;
        }
        let live = self.versions(subject, false).unwrap_or_default();
        if permanent {
            if !live.is_empty() {
                return Err(RegistryError::subject_not_soft_deleted(subject));
            }
            let mut records: Vec<Record> = all
                .iter()
                .map(|n| Record::Schema {
                    subject: subject.to_string(),
                    version: *n,
                    value: None,
                })
                .collect();
            records.push(Record::IdHighWater { id: self.max_id });
            return Ok((all, records));
        }
        let Some(latest) = live.last().copied() else {
            return Err(RegistryError::subject_soft_deleted(subject));
        };
        let mut records = Vec::new();
        for n in &live {
            let id = self.subjects[subject][n].id;
            records.push(Record::Schema {
                subject: subject.to_string(),
                version: *n,
                value: Some(self.value(subject, *n, id, true)?),
            });
        }
        records.push(Record::DeleteSubject {
            subject: subject.to_string(),
            version: latest,
        });
        Ok((live, records))
    }

    fn value(
        &self,
        subject: &str,
        version: i32,
        id: i32,
        deleted: bool,
    ) -> Result<SchemaValue, RegistryError> {
        let s = self.schema(id)?;
        Ok(SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema: s.schema.clone(),
            schema_type: (s.schema_type != SchemaType::Avro)
                .then(|| s.schema_type.name().to_string()),
            references: s.references.clone(),
            deleted,
        })
    }

    fn same(&self, id: i32, schema_type: SchemaType, canonical: &str) -> bool {
        self.schemas
            .get(&id)
            .is_some_and(|s| s.schema_type == schema_type && s.canonical == canonical)
    }

    fn parsed(&self, id: i32) -> Option<ParsedSchema> {
        let s = self.schemas.get(&id)?;
        self.parse(s.schema_type, &s.schema, &s.references).ok()
    }
}

/// A parsed schema's canonical form together with its references: the same text naming
/// other schemas is another schema.
fn canonical_with(parsed: &ParsedSchema, references: &[Reference]) -> String {
    if references.is_empty() {
        return parsed.canonical();
    }
    format!(
        "{}|{}",
        parsed.canonical(),
        serde_json::to_string(references).unwrap_or_default()
    )
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
