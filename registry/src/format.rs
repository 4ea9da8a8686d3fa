//! Schema formats: a schema's type as Confluent names it, and a parsed schema that can
//! say whether it reads data written with another. Avro goes through the `apache-avro`
//! crate (parsing, schema resolution), JSON Schema through `jsonschema`
//! ([`crate::json_schema`]), Protobuf through `protox-parse` ([`crate::protobuf`]).

use std::fmt;
use std::str::FromStr;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema as AvroSchema;

use crate::RegistryError;

/// A schema's format (`schemaType`; absent means AVRO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaType {
    /// Apache Avro.
    #[default]
    Avro,
    /// JSON Schema.
    Json,
    /// Protocol Buffers.
    Protobuf,
}

impl SchemaType {
    /// Confluent's name.
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchemaType {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            other => Err(RegistryError::invalid_schema(format!(
                "unknown schema type {other}"
            ))),
        }
    }
}

/// A schema that parsed.
#[derive(Debug, Clone)]
pub enum ParsedSchema {
    /// An Avro schema.
    Avro(AvroSchema),
    /// A JSON Schema.
    Json(serde_json::Value),
    /// A Protobuf file's descriptor.
    Protobuf(Box<prost_types::FileDescriptorProto>),
}

impl ParsedSchema {
    /// Parses `text` as a schema of `kind`.
    pub fn parse(kind: SchemaType, text: &str) -> Result<Self, RegistryError> {
        Self::parse_with(kind, text, &[])
    }

    /// Parses `text` with the texts of the schemas it references: Avro resolves the
    /// named types they define; a Protobuf import or a JSON Schema `$ref` is kept as a
    /// name.
    pub fn parse_with(
        kind: SchemaType,
        text: &str,
        references: &[String],
    ) -> Result<Self, RegistryError> {
        match kind {
            SchemaType::Avro if !references.is_empty() => {
                AvroSchema::parse_str_with_list(text, references)
                    .map(|(schema, _)| ParsedSchema::Avro(schema))
                    .map_err(RegistryError::invalid_schema)
            }
            SchemaType::Avro => AvroSchema::parse_str(text)
                .map(ParsedSchema::Avro)
                .map_err(RegistryError::invalid_schema),
            SchemaType::Json => crate::json_schema::parse(text).map(ParsedSchema::Json),
            SchemaType::Protobuf => {
                crate::protobuf::parse(text).map(|d| ParsedSchema::Protobuf(Box::new(d)))
            }
        }
    }

    /// The form two spellings of one schema share: registering either finds the other.
    /// For Avro it is the parsed schema written back as JSON, as Confluent compares
    /// Avro schemas: whitespace and key order do not count, but docs and defaults do
    /// (Avro's Parsing Canonical Form would drop those).
    pub fn canonical(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => {
                serde_json::to_string(s).unwrap_or_else(|_| s.canonical_form())
            }
            ParsedSchema::Json(v) => sorted(v).to_string(),
            ParsedSchema::Protobuf(d) => crate::protobuf::canonical(d),
        }
    }

    /// The fully-qualified name of a named schema (an Avro record, enum or fixed): what
    /// the record name strategies name subjects after.
    pub fn record_name(&self) -> Option<String> {
        match self {
            ParsedSchema::Avro(s) => s.name().map(|n| n.fullname(None)),
            ParsedSchema::Json(v) => crate::json_schema::record_name(v),
            ParsedSchema::Protobuf(d) => crate::protobuf::record_name(d),
        }
    }

    /// Whether a reader with this schema reads data written with `writer`; the reason
    /// when it does not.
    pub fn can_read(&self, writer: &ParsedSchema) -> Result<(), String> {
        match (self, writer) {
            (ParsedSchema::Avro(reader), ParsedSchema::Avro(writer)) => {
                SchemaCompatibility::can_read(writer, reader).map_err(|e| e.to_string())
            }
            (ParsedSchema::Json(reader), ParsedSchema::Json(writer)) => {
                let reasons = crate::json_schema::violations(reader, writer);
                if reasons.is_empty() {
                    Ok(())
                } else {
                    Err(reasons.join("; "))
                }
            }
            (ParsedSchema::Protobuf(reader), ParsedSchema::Protobuf(writer)) => {
                let reasons = crate::protobuf::violations(reader, writer);
                if reasons.is_empty() {
                    Ok(())
                } else {
                    Err(reasons.join("; "))
                }
            }
            _ => Err("the schema type changed".to_string()),
        }
    }
}

/// `v` with every object's keys in order and no whitespace: key order and spacing do not
/// make another JSON Schema.
fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_spellings_of_one_avro_schema_share_a_canonical_form() {
        let parse = |t: &str| {
            ParsedSchema::parse(SchemaType::Avro, t)
                .unwrap()
                .canonical()
        };
        let a = parse(
            r#"{"type":"record","name":"U","fields":[{"name":"n","type":"int","default":1}]}"#,
        );
        let b = parse(
            r#"{ "fields": [ {"default": 1, "type": "int", "name": "n"} ], "name": "U", "type": "record" }"#,
        );
        assert_eq!(a, b);
        // Another default, or a doc, is another schema.
        let c = parse(
            r#"{"type":"record","name":"U","fields":[{"name":"n","type":"int","default":2}]}"#,
        );
        let d = parse(
            r#"{"type":"record","name":"U","doc":"d","fields":[{"name":"n","type":"int","default":1}]}"#,
        );
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn what_does_not_parse_is_an_invalid_schema() {
        for bad in [r#"{"type":"record"}"#, "not json", r#"{"type":"nonsense"}"#] {
            let e = ParsedSchema::parse(SchemaType::Avro, bad).unwrap_err();
            assert_eq!((e.status, e.error_code), (422, 42201), "{bad}");
        }
        assert_eq!("XML".parse::<SchemaType>().unwrap_err().error_code, 42201);
        assert_eq!("PROTOBUF".parse::<SchemaType>(), Ok(SchemaType::Protobuf));
    }
}
