//! Schema formats: a schema's type as Confluent names it, and a parsed schema that can
//! say whether it reads data written with another. Avro goes through the `apache-avro`
//! crate (parsing, Parsing Canonical Form, schema resolution).

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
}

impl ParsedSchema {
    /// Parses `text` as a schema of `kind`.
    pub fn parse(kind: SchemaType, text: &str) -> Result<Self, RegistryError> {
        match kind {
            SchemaType::Avro => AvroSchema::parse_str(text)
                .map(ParsedSchema::Avro)
                .map_err(RegistryError::invalid_schema),
            other => Err(RegistryError::invalid_schema(format!(
                "{other} schemas are not supported yet"
            ))),
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
        }
    }

    /// The fully-qualified name of a named schema (an Avro record, enum or fixed): what
    /// the record name strategies name subjects after.
    pub fn record_name(&self) -> Option<String> {
        match self {
            ParsedSchema::Avro(s) => s.name().map(|n| n.fullname(None)),
        }
    }

    /// Whether a reader with this schema reads data written with `writer`; the reason
    /// when it does not.
    pub fn can_read(&self, writer: &ParsedSchema) -> Result<(), String> {
        match (self, writer) {
            (ParsedSchema::Avro(reader), ParsedSchema::Avro(writer)) => {
                SchemaCompatibility::can_read(writer, reader).map_err(|e| e.to_string())
            }
        }
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
