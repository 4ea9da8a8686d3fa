//! Protocol Buffers: a `.proto` file parsed by `protox-parse`, or a serialized
//! `FileDescriptorProto` in base64 as Confluent's serializers register it, both read into
//! the descriptor. Two versions are compared by Confluent's rules for the wire format: a
//! message may not go, a field number may not change to a kind the wire cannot carry, a
//! required field may not be added, and the package may not change.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorProto};

use crate::RegistryError;

/// The file name a `.proto` text is parsed under.
const FILE_NAME: &str = "schema.proto";

/// Parses `text`: a `.proto` file, or a base64 `FileDescriptorProto`.
pub(crate) fn parse(text: &str) -> Result<FileDescriptorProto, RegistryError> {
    if let Some(descriptor) = from_base64(text) {
        return Ok(descriptor);
    }
    let descriptor = protox_parse::parse(FILE_NAME, text)
        .map_err(|e| RegistryError::invalid_schema(format!("{e:?}")))?;
    if descriptor.message_type.is_empty() && descriptor.enum_type.is_empty() {
        return Err(RegistryError::invalid_schema(
            "a Protobuf schema needs at least one message or enum",
        ));
    }
    Ok(descriptor)
}

fn from_base64(text: &str) -> Option<FileDescriptorProto> {
    let text = text.trim();
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == ';' || c == '{') {
        return None;
    }
    let bytes = BASE64.decode(text).ok()?;
    FileDescriptorProto::decode(bytes.as_slice())
        .ok()
        .filter(|d| !d.message_type.is_empty() || !d.enum_type.is_empty())
}

/// The descriptor without what does not change the schema (file name, source positions,
/// JSON names), serialized: two spellings of one schema share it.
pub(crate) fn canonical(descriptor: &FileDescriptorProto) -> String {
    let mut d = descriptor.clone();
    d.name = None;
    d.source_code_info = None;
    fn strip(m: &mut DescriptorProto) {
        for f in &mut m.field {
            f.json_name = None;
        }
        m.nested_type.iter_mut().for_each(strip);
    }
    d.message_type.iter_mut().for_each(strip);
    BASE64.encode(d.encode_to_vec())
}

/// The schema as a base64 `FileDescriptorProto` (Confluent's `format=serialized`).
pub(crate) fn serialized(text: &str, descriptor: &FileDescriptorProto) -> String {
    if from_base64(text).is_some() {
        return text.trim().to_string();
    }
    BASE64.encode(descriptor.encode_to_vec())
}

/// The full name of the file's first message, which names its records.
pub(crate) fn record_name(descriptor: &FileDescriptorProto) -> Option<String> {
    let first = descriptor.message_type.first()?.name.clone()?;
    Some(match descriptor.package.as_deref() {
        Some(p) if !p.is_empty() => format!("{p}.{first}"),
        _ => first,
    })
}

/// Every message of the file by full name (nested ones as `Outer.Inner`).
fn messages(d: &FileDescriptorProto) -> Vec<(String, &DescriptorProto)> {
    fn walk<'a>(
        prefix: &str,
        m: &'a DescriptorProto,
        out: &mut Vec<(String, &'a DescriptorProto)>,
    ) {
        let name = format!("{prefix}{}", m.name());
        for n in &m.nested_type {
            walk(&format!("{name}."), n, out);
        }
        out.push((name, m));
    }
    let mut out = Vec::new();
    for m in &d.message_type {
        walk("", m, &mut out);
    }
    out
}

/// The group of scalar kinds the wire format reads as one another.
fn wire_group(t: Type) -> u8 {
    match t {
        Type::Int32 | Type::Uint32 | Type::Int64 | Type::Uint64 | Type::Bool => 1,
        Type::Sint32 | Type::Sint64 => 2,
        Type::Fixed32 | Type::Sfixed32 => 3,
        Type::Fixed64 | Type::Sfixed64 => 4,
        Type::String | Type::Bytes => 5,
        Type::Double => 6,
        Type::Float => 7,
        Type::Enum => 8,
        Type::Message => 9,
        Type::Group => 10,
    }
}

/// Why a reader with `reader` cannot read what `writer` wrote; empty when it can.
pub(crate) fn violations(
    reader: &FileDescriptorProto,
    writer: &FileDescriptorProto,
) -> Vec<String> {
    let mut out = Vec::new();
    if reader.package() != writer.package() {
        out.push(format!(
            "the package changed from '{}' to '{}'",
            writer.package(),
            reader.package()
        ));
    }
    let read = messages(reader);
    for (name, w) in messages(writer) {
        let Some((_, r)) = read.iter().find(|(n, _)| *n == name) else {
            out.push(format!("message {name} was removed"));
            continue;
        };
        for wf in &w.field {
            let Some(rf) = r.field.iter().find(|f| f.number == wf.number) else {
                continue;
            };
            let at = format!("{name}.{} (field {})", rf.name(), rf.number());
            let (rt, wt) = (rf.r#type(), wf.r#type());
            // A field whose type names a message or enum may carry no kind until resolved.
            let (rnamed, wnamed) = (rf.type_name.is_some(), wf.type_name.is_some());
            if rnamed || wnamed {
                let short = |n: &str| n.trim_start_matches('.').to_string();
                if rnamed != wnamed || short(rf.type_name()) != short(wf.type_name()) {
                    out.push(format!(
                        "{at}: its type changed from {} to {}",
                        wf.type_name(),
                        rf.type_name()
                    ));
                }
            } else if wire_group(rt) != wire_group(wt) {
                out.push(format!("{at}: its kind changed from {wt:?} to {rt:?}"));
            }
            if rf.label() == Label::Repeated && wf.label() != Label::Repeated
                || rf.label() != Label::Repeated && wf.label() == Label::Repeated
            {
                out.push(format!("{at}: it changed between repeated and single"));
            }
        }
        for rf in &r.field {
            let added = !w.field.iter().any(|f| f.number == rf.number);
            if added && rf.label() == Label::Required {
                out.push(format!("{name}.{}: a required field was added", rf.name()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str =
        r#"syntax = "proto3"; package shop; message Order { int64 id = 1; string item = 2; }"#;

    fn check(reader: &str, writer: &str) -> Vec<String> {
        violations(&parse(reader).unwrap(), &parse(writer).unwrap())
    }

    #[test]
    fn text_and_base64_descriptors_are_one_schema() {
        let text = parse(V1).unwrap();
        let b64 = BASE64.encode(text.encode_to_vec());
        let again = parse(&b64).unwrap();
        assert_eq!(canonical(&text), canonical(&again));
        assert_eq!(serialized(&b64, &again), b64);
        assert_eq!(record_name(&text).as_deref(), Some("shop.Order"));
        assert_eq!(parse("message {").unwrap_err().error_code, 42201);
        assert_eq!(
            parse(r#"syntax = "proto3";"#).unwrap_err().error_code,
            42201
        );
    }

    #[test]
    fn confluents_wire_rules() {
        let added = r#"syntax = "proto3"; package shop; message Order { int64 id = 1; string item = 2; int32 qty = 3; }"#;
        assert!(check(added, V1).is_empty());
        assert!(check(V1, added).is_empty());
        let widened =
            r#"syntax = "proto3"; package shop; message Order { uint64 id = 1; bytes item = 2; }"#;
        assert!(check(widened, V1).is_empty());
        let changed =
            r#"syntax = "proto3"; package shop; message Order { double id = 1; string item = 2; }"#;
        assert_eq!(check(changed, V1).len(), 1);
        let renamed_package =
            r#"syntax = "proto3"; package store; message Order { int64 id = 1; string item = 2; }"#;
        assert!(!check(renamed_package, V1).is_empty());
        let two = r#"syntax = "proto3"; package shop; message Order { int64 id = 1; } message Line { int32 n = 1; }"#;
        let one = r#"syntax = "proto3"; package shop; message Order { int64 id = 1; }"#;
        assert_eq!(
            check(one, two),
            vec!["message Line was removed".to_string()]
        );
    }
}
