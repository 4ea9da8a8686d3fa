//! Tests of `state.rs`.

use super::*;

const V1: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#;
const V2: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"email","type":"string","default":""}]}"#;
const BAD: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"age","type":"int"}]}"#;

/// Registers and applies the record, as the store does once it is written.
fn register(r: &mut Registry, subject: &str, schema: &str) -> Result<(i32, i32), RegistryError> {
    let reg = r.register(subject, SchemaType::Avro, schema, &[])?;
    if let Some(rec) = &reg.record {
        r.apply(rec);
    }
    Ok((reg.id, reg.version))
}

#[test]
fn ids_are_global_and_versions_per_subject() {
    let mut r = Registry::default();
    assert_eq!(register(&mut r, "a-value", V1), Ok((1, 1)));
    // The same schema again: the same version, nothing written.
    assert_eq!(
        r.register("a-value", SchemaType::Avro, V1, &[])
            .unwrap()
            .record,
        None
    );
    assert_eq!(register(&mut r, "a-value", V2), Ok((2, 2)));
    // Another subject: its own versions, the schema's existing id.
    assert_eq!(register(&mut r, "b-value", V2), Ok((2, 1)));
    assert_eq!(r.subjects(false), vec!["a-value", "b-value"]);
    assert_eq!(r.versions("a-value", false), Ok(vec![1, 2]));
    assert_eq!(r.version("a-value", -1, false), Ok((2, 2)));
    assert_eq!(r.lookup("a-value", SchemaType::Avro, V1, &[]), Ok((1, 1)));
    assert_eq!(r.schema(2).unwrap().schema, V2);
    assert_eq!(r.schema(3).unwrap_err().error_code, 40403);
    assert_eq!(r.versions("c-value", false).unwrap_err().error_code, 40401);
    assert_eq!(
        r.version("a-value", 9, false).unwrap_err().error_code,
        40402
    );
}

#[test]
fn an_incompatible_schema_is_refused_under_the_subjects_level() {
    let mut r = Registry::default();
    register(&mut r, "s", V1).unwrap();
    let e = register(&mut r, "s", BAD).unwrap_err();
    assert_eq!((e.status, e.error_code), (409, 409));
    r.apply(&Record::Config {
        subject: Some("s".into()),
        level: Some(CompatibilityLevel::None),
    });
    assert_eq!(register(&mut r, "s", BAD), Ok((2, 2)));
    assert_eq!(r.compatibility(Some("s")), CompatibilityLevel::None);
    assert_eq!(r.compatibility(Some("t")), CompatibilityLevel::Backward);
    r.apply(&Record::Config {
        subject: None,
        level: Some(CompatibilityLevel::Full),
    });
    assert_eq!(r.compatibility(Some("t")), CompatibilityLevel::Full);
}

#[test]
fn soft_then_permanent_deletes() {
    let mut r = Registry::default();
    register(&mut r, "s", V1).unwrap();
    register(&mut r, "s", V2).unwrap();
    assert_eq!(
        r.delete_version("s", 1, true).unwrap_err().error_code,
        40407
    );
    let (n, recs) = r.delete_version("s", 1, false).unwrap();
    assert_eq!(recs.len(), 1);
    r.apply(&recs[0]);
    assert_eq!(n, 1);
    assert_eq!(r.versions("s", false), Ok(vec![2]));
    assert_eq!(r.versions("s", true), Ok(vec![1, 2]));
    assert_eq!(
        r.delete_version("s", 1, false).unwrap_err().error_code,
        40406
    );
    // A soft-deleted schema is still served by id.
    assert!(r.schema(1).is_ok());

    assert_eq!(r.delete_subject("s", true).unwrap_err().error_code, 40405);
    let (deleted, records) = r.delete_subject("s", false).unwrap();
    assert_eq!(deleted, vec![2]);
    for rec in &records {
        r.apply(rec);
    }
    assert!(r.subjects(false).is_empty());
    assert_eq!(r.delete_subject("s", false).unwrap_err().error_code, 40404);
    let (deleted, records) = r.delete_subject("s", true).unwrap();
    assert_eq!(deleted, vec![1, 2]);
    for rec in &records {
        r.apply(rec);
    }
    assert!(r.subjects(true).is_empty());
    assert_eq!(r.schema(1).unwrap_err().error_code, 40403);
    // Compaction leaves only the last record of each key, and drops tombstones: a
    // reload of what is left still never gives ids 1 or 2 again.
    let mut compacted = Registry::default();
    for rec in records.iter().filter(|r| r.value().is_some()) {
        compacted.apply(rec);
    }
    assert_eq!(register(&mut compacted, "s", BAD), Ok((3, 1)));
    assert_eq!(register(&mut r, "s", BAD), Ok((3, 1)));
}

#[test]
fn the_state_is_the_fold_of_its_records() {
    let mut r = Registry::default();
    let mut log = Vec::new();
    for (subject, schema) in [("a", V1), ("a", V2), ("b", V1)] {
        let reg = r.register(subject, SchemaType::Avro, schema, &[]).unwrap();
        let rec = reg.record.unwrap();
        r.apply(&rec);
        log.push(rec);
    }
    let mut replayed = Registry::default();
    for rec in &log {
        let decoded = Record::decode(&rec.key(), rec.value().as_deref())
            .unwrap()
            .unwrap();
        replayed.apply(&decoded);
    }
    assert_eq!(replayed.subjects(false), r.subjects(false));
    assert_eq!(replayed.versions("a", false), r.versions("a", false));
    assert_eq!(replayed.lookup("b", SchemaType::Avro, V1, &[]), Ok((1, 1)));
}
