//! JSON Schema: parsed and checked against its meta-schema by the `jsonschema` crate, and
//! compared as Confluent's registry compares two versions. No crate implements that
//! comparison, so the rules are here, following Confluent's: a reader reads what a writer
//! wrote when every document the writer allows is one the reader allows. In particular, as
//! in Confluent, adding a property to an open content model (no
//! `"additionalProperties": false`) is incompatible, since earlier documents may already
//! hold that name with another type.

use serde_json::{Map, Value};

use crate::RegistryError;

/// Parses `text` as a JSON Schema.
pub(crate) fn parse(text: &str) -> Result<Value, RegistryError> {
    let value: Value = serde_json::from_str(text).map_err(RegistryError::invalid_schema)?;
    if !value.is_object() && !value.is_boolean() {
        return Err(RegistryError::invalid_schema(
            "a JSON Schema is an object or a boolean",
        ));
    }
    jsonschema::meta::validate(&value).map_err(RegistryError::invalid_schema)?;
    Ok(value)
}

/// The schema's `title`, which names its records (Confluent's record name strategies).
pub(crate) fn record_name(schema: &Value) -> Option<String> {
    schema.get("title")?.as_str().map(str::to_string)
}

/// Why a reader with schema `reader` cannot read every document `writer` allows; empty
/// when it can.
pub(crate) fn violations(reader: &Value, writer: &Value) -> Vec<String> {
    let mut out = Vec::new();
    compare(reader, writer, "#", &mut out);
    out
}

fn object(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

/// The types a schema allows; `None` for any.
fn types(schema: &Map<String, Value>) -> Option<Vec<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.clone()]),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

fn allows_type(types: &Option<Vec<String>>, t: &str) -> bool {
    types.as_ref().is_none_or(|ts| {
        ts.iter()
            .any(|x| x == t || (x == "number" && t == "integer"))
    })
}

/// Keywords this comparison does not look into: when either side has one and the two
/// differ, the change is refused rather than guessed at.
const OPAQUE: &[&str] = &[
    "$ref",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "dependentSchemas",
    "dependentRequired",
    "dependencies",
    "const",
];

fn compare(reader: &Value, writer: &Value, path: &str, out: &mut Vec<String>) {
    // `true` or `{}` reads anything; `false` writes nothing.
    if reader == &Value::Bool(true) || writer == &Value::Bool(false) {
        return;
    }
    let (Some(r), Some(w)) = (object(reader), object(writer)) else {
        if reader != writer {
            out.push(format!(
                "{path}: the schema changed from {writer} to {reader}"
            ));
        }
        return;
    };
    if r.is_empty() {
        return;
    }
    for key in OPAQUE {
        if r.get(*key) != w.get(*key) {
            out.push(format!("{path}: '{key}' changed"));
        }
    }
    for defs in ["definitions", "$defs"] {
        if let (Some(rd), Some(wd)) = (
            r.get(defs).and_then(Value::as_object),
            w.get(defs).and_then(Value::as_object),
        ) {
            for (name, ws) in wd {
                if let Some(rs) = rd.get(name) {
                    compare(rs, ws, &format!("{path}/{defs}/{name}"), out);
                }
            }
        }
    }
    let (rt, wt) = (types(r), types(w));
    match &wt {
        Some(written) => {
            for t in written {
                if !allows_type(&rt, t) {
                    out.push(format!("{path}: type '{t}' is no longer allowed"));
                }
            }
        }
        None if rt.is_some() => out.push(format!("{path}: the type was narrowed")),
        None => {}
    }
    if let Some(renum) = r.get("enum").and_then(Value::as_array) {
        match w.get("enum").and_then(Value::as_array) {
            Some(wenum) => {
                for v in wenum {
                    if !renum.contains(v) {
                        out.push(format!("{path}: enum value {v} was removed"));
                    }
                }
            }
            None => out.push(format!("{path}: an enum was added")),
        }
    }
    narrowed(r, w, path, out);
    if allows_type(&wt, "object") && allows_type(&rt, "object") {
        compare_objects(r, w, path, out);
    }
    if allows_type(&wt, "array") && allows_type(&rt, "array") {
        if let (Some(ri), Some(wi)) = (r.get("items"), w.get("items")) {
            compare(ri, wi, &format!("{path}/items"), out);
        } else if r.get("items").is_some_and(|i| i != &Value::Bool(true)) {
            out.push(format!("{path}: items were constrained"));
        }
    }
}

/// Bounds that a reader may widen but not tighten.
fn narrowed(r: &Map<String, Value>, w: &Map<String, Value>, path: &str, out: &mut Vec<String>) {
    let num = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_f64);
    // (keyword, whether a larger reader value is the tighter one)
    for (key, larger_is_tighter) in [
        ("minLength", true),
        ("minimum", true),
        ("exclusiveMinimum", true),
        ("minItems", true),
        ("minProperties", true),
        ("maxLength", false),
        ("maximum", false),
        ("exclusiveMaximum", false),
        ("maxItems", false),
        ("maxProperties", false),
    ] {
        let tighter = match (num(r, key), num(w, key)) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(rv), Some(wv)) if larger_is_tighter => rv > wv,
            (Some(rv), Some(wv)) => rv < wv,
        };
        if tighter {
            out.push(format!("{path}: '{key}' was tightened"));
        }
    }
    for key in ["pattern", "format", "multipleOf"] {
        if r.get(key).is_some() && r.get(key) != w.get(key) {
            out.push(format!("{path}: '{key}' was added or changed"));
        }
    }
}

fn closed(m: &Map<String, Value>) -> bool {
    m.get("additionalProperties") == Some(&Value::Bool(false))
}

fn compare_objects(
    r: &Map<String, Value>,
    w: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let empty = Map::new();
    let rp = r
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let wp = w
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, ws) in wp {
        let at = format!("{path}/properties/{name}");
        match rp.get(name) {
            Some(rs) => compare(rs, ws, &at, out),
            None if closed(r) => out.push(format!(
                "{at}: property removed from a closed content model"
            )),
            None => {
                if let Some(extra) = r.get("additionalProperties").filter(|v| v.is_object()) {
                    compare(extra, ws, &at, out);
                }
            }
        }
    }
    for (name, rs) in rp {
        if wp.contains_key(name) {
            continue;
        }
        let at = format!("{path}/properties/{name}");
        if closed(w) {
            continue;
        }
        match w.get("additionalProperties").filter(|v| v.is_object()) {
            // Earlier documents held this name only as the writer's additional properties.
            Some(extra) => compare(rs, extra, &at, out),
            None => out.push(format!("{at}: property added to an open content model")),
        }
    }
    let names = |m: &Map<String, Value>| -> Vec<String> {
        m.get("required")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let written = names(w);
    for name in names(r) {
        let has_default = rp.get(&name).and_then(|p| p.get("default")).is_some();
        if !written.contains(&name) && !has_default {
            out.push(format!("{path}/properties/{name}: required property added"));
        }
    }
    if closed(r) && !closed(w) {
        out.push(format!("{path}: the content model was closed"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(reader: Value, writer: Value) -> bool {
        violations(&reader, &writer).is_empty()
    }

    #[test]
    fn confluents_rules_for_objects() {
        let v1 = json!({"type": "object", "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}});
        // Removing a property of an open model: backward compatible.
        let fewer = json!({"type": "object", "properties": {"id": {"type": "integer"}}});
        assert!(ok(fewer.clone(), v1.clone()));
        // Adding one to an open model is not (old data may hold the name with another type).
        assert!(!ok(v1.clone(), fewer.clone()));
        // ...but to a closed one it is.
        let closed = json!({"type": "object", "additionalProperties": false, "properties": {"id": {"type": "integer"}}});
        let closed_more = json!({"type": "object", "additionalProperties": false,
            "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}});
        assert!(ok(closed_more.clone(), closed.clone()));
        assert!(!ok(closed.clone(), closed_more));
        // Widening integer to number is fine; narrowing is not.
        let wide = json!({"type": "object", "properties": {"id": {"type": "number"}, "note": {"type": "string"}}});
        assert!(ok(wide.clone(), v1.clone()));
        assert!(!ok(v1.clone(), wide));
        // A new required property without a default.
        let required = json!({"type": "object", "properties": {"id": {"type": "integer"}, "note": {"type": "string"}},
            "required": ["id"]});
        assert!(!ok(required, v1.clone()));
        let enum_v1 = json!({"enum": ["a", "b"]});
        assert!(ok(json!({"enum": ["a", "b", "c"]}), enum_v1.clone()));
        assert!(!ok(json!({"enum": ["a"]}), enum_v1));
        assert!(!ok(
            json!({"type": "string", "maxLength": 5}),
            json!({"type": "string", "maxLength": 9})
        ));
        assert!(ok(
            json!({"type": "string", "maxLength": 9}),
            json!({"type": "string", "maxLength": 5})
        ));
    }

    #[test]
    fn a_schema_must_be_valid_against_its_meta_schema() {
        assert!(parse(r#"{"type": "object"}"#).is_ok());
        assert_eq!(parse(r#"{"type": 5}"#).unwrap_err().error_code, 42201);
        assert_eq!(parse("[1]").unwrap_err().error_code, 42201);
        assert_eq!(parse("{not json").unwrap_err().error_code, 42201);
    }
}
