//! Confluent's REST API over the registry's state. A request (method, path, query, body)
//! becomes an answer, or records to write to `_schemas` first and the answer to give once
//! they are written. No sockets here: a listener drives it.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::compat::CompatibilityLevel;
use crate::format::SchemaType;
use crate::records::{Record, Reference};
use crate::state::Registry;
use crate::RegistryError;

/// An HTTP request, as far as the API reads it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'a str,
    /// The path, percent-encoded, without the query.
    pub path: &'a str,
    /// The query string, without the `?`.
    pub query: &'a str,
    /// The body.
    pub body: &'a [u8],
}

/// What to answer: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply { status: 200, body }
    }
}

impl From<RegistryError> for Reply {
    fn from(e: RegistryError) -> Self {
        Reply {
            status: e.status,
            body: json!({"error_code": e.error_code, "message": e.message}),
        }
    }
}

/// What a request comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answer at once.
    Reply(Reply),
    /// Write `records` to `_schemas`, apply them, then answer with `reply`.
    Write {
        /// The records, in order.
        records: Vec<Record>,
        /// The answer once they are written.
        reply: Reply,
    },
}

/// The body of a registration, a lookup or a compatibility check.
#[derive(Deserialize)]
struct SchemaBody {
    #[serde(default)]
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
}

/// The body of PUT /config.
#[derive(Deserialize)]
struct ConfigBody {
    #[serde(default)]
    compatibility: String,
}

/// Answers one request against `registry`.
pub fn handle(req: &Request<'_>, registry: &Registry) -> Outcome {
    match route(req, registry) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Reply(e.into()),
    }
}

fn not_found() -> RegistryError {
    RegistryError {
        status: 404,
        error_code: 404,
        message: "HTTP 404 Not Found".into(),
    }
}

fn not_allowed() -> RegistryError {
    RegistryError {
        status: 405,
        error_code: 405,
        message: "HTTP 405 Method Not Allowed".into(),
    }
}

fn route(req: &Request<'_>, r: &Registry) -> Result<Outcome, RegistryError> {
    let segments = path_segments(req.path);
    let q = |name: &str| query_flag(req.query, name);
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let reply = |v: Value| Ok(Outcome::Reply(Reply::ok(v)));
    match (req.method, parts.as_slice()) {
        ("GET", []) => reply(json!({})),
        ("GET", ["schemas", "types"]) => reply(json!(["JSON", "PROTOBUF", "AVRO"])),
        ("GET", ["schemas", "ids", id]) => {
            let s = r.schema(parse_id(id)?)?;
            let mut body =
                json!({"schema": s.formatted(query_value(req.query, "format").as_deref())});
            if s.schema_type != SchemaType::Avro {
                body["schemaType"] = json!(s.schema_type.name());
            }
            if !s.references.is_empty() {
                body["references"] = json!(s.references);
            }
            reply(body)
        }
        ("GET", ["schemas", "ids", id, what @ ("versions" | "subjects")]) => {
            let id = parse_id(id)?;
            r.schema(id)?;
            let uses = r.uses(id, q("deleted"));
            reply(if *what == "versions" {
                json!(uses
                    .iter()
                    .map(|(s, v)| json!({"subject": s, "version": v}))
                    .collect::<Vec<_>>())
            } else {
                let mut subjects: Vec<&String> = uses.iter().map(|(s, _)| s).collect();
                subjects.dedup();
                json!(subjects)
            })
        }
        ("GET", ["subjects"]) => {
            let prefix = query_value(req.query, "subjectPrefix").unwrap_or_default();
            let mut subjects = r.subjects(q("deleted"));
            subjects.retain(|s| s.starts_with(prefix.as_str()));
            reply(json!(subjects))
        }
        ("GET", ["subjects", s, "versions"]) => reply(json!(r.versions(s, q("deleted"))?)),
        ("GET", ["subjects", s, "versions", v]) => {
            let (n, id) = r.version(s, parse_version(v)?, q("deleted"))?;
            let mut body = version_body(r, s, n, id)?;
            if let Some(format) = query_value(req.query, "format") {
                body["schema"] = json!(r.schema(id)?.formatted(Some(&format)));
            }
            reply(body)
        }
        ("GET", ["subjects", s, "versions", v, "referencedby"]) => {
            let (n, _) = r.version(s, parse_version(v)?, q("deleted"))?;
            reply(json!(r.referenced_by(s, n)))
        }
        ("GET", ["subjects", s, "versions", v, "schema"]) => {
            let (_, id) = r.version(s, parse_version(v)?, q("deleted"))?;
            let text = &r.schema(id)?.schema;
            reply(serde_json::from_str(text).unwrap_or_else(|_| json!(text)))
        }
        ("POST", ["subjects", s, "versions"]) => {
            let body: SchemaBody = parse_body(req.body)?;
            let registration =
                r.register(s, schema_type(&body)?, &body.schema, &body.references)?;
            let answer = Reply::ok(json!({"id": registration.id}));
            Ok(match registration.record {
                None => Outcome::Reply(answer),
                Some(record) => Outcome::Write {
                    records: vec![record],
                    reply: answer,
                },
            })
        }
        ("POST", ["subjects", s]) => {
            let body: SchemaBody = parse_body(req.body)?;
            let (n, id) = r.lookup(s, schema_type(&body)?, &body.schema, &body.references)?;
            reply(version_body(r, s, n, id)?)
        }
        ("DELETE", ["subjects", s]) => {
            let (versions, records) = r.delete_subject(s, q("permanent"))?;
            Ok(Outcome::Write {
                records,
                reply: Reply::ok(json!(versions)),
            })
        }
        ("DELETE", ["subjects", s, "versions", v]) => {
            let (n, records) = r.delete_version(s, parse_version(v)?, q("permanent"))?;
            Ok(Outcome::Write {
                records,
                reply: Reply::ok(json!(n)),
            })
        }
        ("GET", ["config"]) => reply(json!({"compatibilityLevel": r.compatibility(None).name()})),
        ("GET", ["config", s]) => {
            let level = match r.subject_compatibility(s) {
                Some(l) => l,
                None if q("defaultToGlobal") => r.compatibility(None),
                None => return Err(no_subject_config(s)),
            };
            reply(json!({"compatibilityLevel": level.name()}))
        }
        ("PUT", ["config"]) => set_config(None, req.body),
        ("PUT", ["config", s]) => set_config(Some(s), req.body),
        ("DELETE", ["config", s]) => {
            let previous = r
                .subject_compatibility(s)
                .ok_or_else(|| no_subject_config(s))?;
            Ok(Outcome::Write {
                records: vec![Record::Config {
                    subject: Some((*s).to_string()),
                    level: None,
                }],
                reply: Reply::ok(json!({"compatibilityLevel": previous.name()})),
            })
        }
        ("POST", ["compatibility", "subjects", s, "versions", rest @ ..]) if rest.len() <= 1 => {
            let body: SchemaBody = parse_body(req.body)?;
            let version = rest.first().map(|v| parse_version(v)).transpose()?;
            let reasons = r.check(
                s,
                schema_type(&body)?,
                &body.schema,
                &body.references,
                version,
            )?;
            let mut answer = json!({"is_compatible": reasons.is_empty()});
            if q("verbose") {
                answer["messages"] = json!(reasons);
            }
            reply(answer)
        }
        ("GET", ["mode"]) => reply(json!({"mode": "READWRITE"})),
        (_, [] | ["schemas", ..] | ["subjects", ..] | ["config", ..] | ["mode"]) => {
            if matches!(req.method, "GET" | "POST" | "PUT" | "DELETE") && known_path(&parts) {
                Err(not_allowed())
            } else {
                Err(not_found())
            }
        }
        _ => Err(not_found()),
    }
}

/// The segments of a request path, percent-decoded.
pub fn path_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

/// Whether some method serves the path.
fn known_path(parts: &[&str]) -> bool {
    matches!(
        parts,
        [] | ["schemas", "types"]
            | ["schemas", "ids", _]
            | ["schemas", "ids", _, "versions" | "subjects"]
            | ["subjects"]
            | ["subjects", _]
            | ["subjects", _, "versions"]
            | ["subjects", _, "versions", _]
            | ["subjects", _, "versions", _, "schema" | "referencedby"]
            | ["config"]
            | ["config", _]
            | ["mode"]
    )
}

fn set_config(subject: Option<&str>, body: &[u8]) -> Result<Outcome, RegistryError> {
    let body: ConfigBody = parse_body(body)?;
    let level: CompatibilityLevel = body.compatibility.parse()?;
    Ok(Outcome::Write {
        records: vec![Record::Config {
            subject: subject.map(str::to_string),
            level: Some(level),
        }],
        reply: Reply::ok(json!({"compatibility": level.name()})),
    })
}

fn no_subject_config(subject: &str) -> RegistryError {
    RegistryError {
        status: 404,
        error_code: 40408,
        message: format!(
            "Subject '{subject}' does not have subject-level compatibility configured"
        ),
    }
}

fn version_body(
    r: &Registry,
    subject: &str,
    version: i32,
    id: i32,
) -> Result<Value, RegistryError> {
    let s = r.schema(id)?;
    let mut body = json!({"subject": subject, "version": version, "id": id, "schema": s.schema});
    if s.schema_type != SchemaType::Avro {
        body["schemaType"] = json!(s.schema_type.name());
    }
    if !s.references.is_empty() {
        body["references"] = json!(s.references);
    }
    Ok(body)
}

/// The schema's type; an empty schema is Confluent's 42201 "Empty schema".
fn schema_type(body: &SchemaBody) -> Result<SchemaType, RegistryError> {
    if body.schema.is_empty() {
        return Err(RegistryError::invalid_schema("Empty schema"));
    }
    body.schema_type
        .as_deref()
        .map_or(Ok(SchemaType::Avro), str::parse)
}

/// The body as JSON of the request's shape: malformed JSON, or a value of the wrong type,
/// is 400 as Confluent's registry answers it.
fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError {
        status: 400,
        error_code: 400,
        message: format!("Invalid request body: {e}"),
    })
}

fn parse_id(id: &str) -> Result<i32, RegistryError> {
    id.parse().map_err(|_| not_found())
}

/// A version in a path: a positive number, or `latest` (and -1) for the latest.
fn parse_version(v: &str) -> Result<i32, RegistryError> {
    if v == "latest" {
        return Ok(-1);
    }
    match v.parse::<i32>() {
        Ok(n) if n >= 1 || n == -1 => Ok(n),
        _ => Err(RegistryError::invalid_version(v)),
    }
}

/// The percent-decoded value of `name` in the query.
fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(&v.replace('+', " ")))
}

/// Whether the query sets `name` to true.
fn query_flag(query: &str, name: &str) -> bool {
    query_value(query, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `%XX` escapes decoded; what is not valid UTF-8 afterwards is replaced.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "rest_tests.rs"]
mod tests;
