//! Schema references (Confluent's `references`): a schema names schemas of other subjects
//! (an Avro record's field type, a Protobuf import, a JSON Schema `$ref`). Avro schemas
//! are parsed with what they reference; a version that others reference cannot be
//! deleted.

use crate::format::{ParsedSchema, SchemaType};
use crate::records::Reference;
use crate::state::Registry;
use crate::RegistryError;

/// How deep references may nest before the registry gives up (a cycle, or abuse).
const MAX_DEPTH: usize = 32;

impl Registry {
    /// Parses `text` as a schema of `kind` with the schemas `references` name.
    pub(crate) fn parse(
        &self,
        kind: SchemaType,
        text: &str,
        references: &[Reference],
    ) -> Result<ParsedSchema, RegistryError> {
        if references.is_empty() {
            return ParsedSchema::parse(kind, text);
        }
        let mut texts = Vec::new();
        self.collect(references, 0, &mut texts)?;
        ParsedSchema::parse_with(kind, text, &texts)
    }

    /// The texts of the referenced schemas, theirs first, each once.
    fn collect(
        &self,
        references: &[Reference],
        depth: usize,
        out: &mut Vec<String>,
    ) -> Result<(), RegistryError> {
        if depth > MAX_DEPTH {
            return Err(RegistryError::invalid_schema(
                "references nest too deep (a cycle?)",
            ));
        }
        for r in references {
            let missing = || {
                RegistryError::invalid_schema(format!(
                    "reference '{}' to subject '{}' version {} does not exist",
                    r.name, r.subject, r.version
                ))
            };
            let (_, id) = self
                .version(&r.subject, r.version, false)
                .map_err(|_| missing())?;
            let stored = self.schema(id).map_err(|_| missing())?;
            self.collect(&stored.references, depth + 1, out)?;
            if !out.contains(&stored.schema) {
                out.push(stored.schema.clone());
            }
        }
        Ok(())
    }

    /// The ids of live schemas that reference `subject` at `version` (GET
    /// /subjects/{subject}/versions/{version}/referencedby).
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        let live: std::collections::BTreeSet<i32> = self
            .subjects
            .values()
            .flat_map(|v| v.values())
            .filter(|v| !v.deleted)
            .map(|v| v.id)
            .collect();
        self.schemas
            .iter()
            .filter(|(id, s)| {
                live.contains(id)
                    && s.references
                        .iter()
                        .any(|r| r.subject == subject && r.version == version)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Refuses to delete a version that live schemas reference (42206).
    pub(crate) fn check_unreferenced(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<(), RegistryError> {
        if self.referenced_by(subject, version).is_empty() {
            Ok(())
        } else {
            Err(RegistryError::reference_exists(subject, version))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: &str = r#"{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"}]}"#;
    const CUSTOMER: &str = r#"{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"address","type":"shop.Address"}]}"#;

    fn apply(r: &mut Registry, subject: &str, schema: &str, refs: &[Reference]) -> i32 {
        let reg = r.register(subject, SchemaType::Avro, schema, refs).unwrap();
        if let Some(rec) = reg.record {
            r.apply(&rec);
        }
        reg.id
    }

    #[test]
    fn avro_schemas_resolve_what_they_reference_and_pin_it() {
        let mut r = Registry::default();
        assert_eq!(apply(&mut r, "address", ADDRESS, &[]), 1);
        // Without the reference, the named type is unknown.
        assert_eq!(
            r.register("customer-value", SchemaType::Avro, CUSTOMER, &[])
                .unwrap_err()
                .error_code,
            42201
        );
        let refs = [Reference {
            name: "shop.Address".into(),
            subject: "address".into(),
            version: 1,
        }];
        assert_eq!(apply(&mut r, "customer-value", CUSTOMER, &refs), 2);
        assert_eq!(r.schema(2).unwrap().references, refs.to_vec());
        assert_eq!(
            r.lookup("customer-value", SchemaType::Avro, CUSTOMER, &refs),
            Ok((1, 2))
        );
        assert_eq!(r.referenced_by("address", 1), vec![2]);
        assert_eq!(
            r.delete_version("address", 1, false)
                .unwrap_err()
                .error_code,
            42206
        );
        assert_eq!(
            r.delete_subject("address", false).unwrap_err().error_code,
            42206
        );
        let missing = [Reference {
            name: "shop.Address".into(),
            subject: "nowhere".into(),
            version: 1,
        }];
        assert_eq!(
            r.register("other-value", SchemaType::Avro, CUSTOMER, &missing)
                .unwrap_err()
                .error_code,
            42201
        );
    }
}
