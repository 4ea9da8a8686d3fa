//! What broker-side schema validation costs: produce throughput of records in the Schema
//! Registry's wire format to a topic with `confluent.value.schema.validation=true` and to
//! one without, on the same broker, alternating so that both see the same machine.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context as _;

use super::produce::{measure_payloads, Budget, Case};
use super::{case, Ctx};
use crate::broker_process::free_port;
use crate::client;
use crate::report::Row;

/// The scenario's name.
pub(crate) const NAME: &str = "schema-validation";

/// The schema the records are framed with (the payload itself is not Avro: validation
/// checks the framing and the id, not the bytes after them).
const SCHEMA: &str =
    r#"{"type":"record","name":"Event","fields":[{"name":"body","type":"bytes"}]}"#;

/// Registers `SCHEMA` under `subject` with a raw HTTP/1.1 POST; returns its id.
fn register(registry: &str, subject: &str) -> anyhow::Result<i32> {
    let body = serde_json::json!({ "schema": SCHEMA }).to_string();
    let mut stream =
        TcpStream::connect(registry).with_context(|| format!("connecting to {registry}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST /subjects/{subject}/versions HTTP/1.1\r\nHost: {registry}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let json = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("no HTTP body")?;
    let value: serde_json::Value =
        serde_json::from_str(json.trim()).with_context(|| format!("registry answer: {answer}"))?;
    value["id"]
        .as_i64()
        .and_then(|id| i32::try_from(id).ok())
        .with_context(|| format!("no id in {value}"))
}

/// Runs the cases: 1 KiB and 100 B records, uncompressed and lz4, each produced to the
/// validated topic and to the plain one.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    if !ctx.target.is_managed() {
        return vec![case(NAME, "skipped", |row| {
            row.note("needs a broker this process starts, with the Schema Registry on");
            Ok(())
        })];
    }
    let mut rows = Vec::new();
    let sizes: &[usize] = if ctx.args.smoke { &[100] } else { &[1024, 100] };
    for &record_size in sizes {
        for compression in ["none", "lz4"] {
            let c = Case {
                record_size,
                partitions: 1,
                acks: "1",
                fsync: false,
                compression,
            };
            eprintln!("  schema-validation {}", c.name());
            let mut validated = None;
            let mut plain = None;
            rows.push(case(NAME, &format!("{} validated", c.name()), |row| {
                let (v, p) = run_pair(ctx, &c, row)?;
                validated = Some(v);
                plain = Some(p);
                Ok(())
            }));
            if let (Some(v), Some(p)) = (validated, plain) {
                rows.push(case(NAME, &format!("{} not validated", c.name()), |row| {
                    row.figure("rate", p, "rec/s").figure(
                        "validated/plain",
                        100.0 * v / p.max(1e-9),
                        "%",
                    );
                    Ok(())
                }));
            }
        }
    }
    rows
}

/// Both topics on one broker, three alternating runs each; the best rate of each.
fn run_pair(ctx: &Ctx<'_>, c: &Case, row: &mut Row) -> anyhow::Result<(f64, f64)> {
    let port = free_port()?;
    let listener = format!("http://127.0.0.1:{port}");
    let broker = ctx
        .target
        .broker(&[("schema.registry.listeners", listener.as_str())])?;
    let validated = format!("bench-validated-{}", std::process::id());
    let plain = format!("bench-plain-{}", std::process::id());
    client::create_topics(
        &broker.bootstrap(),
        &[(validated.clone(), 1)],
        &[("confluent.value.schema.validation", "true")],
        1,
    )?;
    client::create_topics(&broker.bootstrap(), &[(plain.clone(), 1)], &[], 1)?;
    let id = register(&format!("127.0.0.1:{port}"), &format!("{validated}-value"))?;
    let framed: Vec<Vec<u8>> = client::payloads(c.record_size.saturating_sub(5).max(1), 1024)
        .into_iter()
        .map(|p| {
            let mut v = vec![0u8];
            v.extend_from_slice(&id.to_be_bytes());
            v.extend_from_slice(&p);
            v
        })
        .collect();
    let budget = Budget {
        seconds: ctx.args.seconds / 3.0,
        messages: ctx.args.messages.map(|m| m / 3),
        bytes: ctx.args.bytes / 3,
    };
    let (mut best_v, mut best_p) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        let v = measure_payloads(&broker, &validated, c, &budget, &framed)
            .map_err(|e| broker.explain(e))?;
        let p = measure_payloads(&broker, &plain, c, &budget, &framed)
            .map_err(|e| broker.explain(e))?;
        best_v = best_v.max(v.records_per_s());
        best_p = best_p.max(p.records_per_s());
    }
    row.setting("record.size", c.record_size)
        .setting("compression.type", c.compression)
        .setting("runs", "3 alternating, best of each");
    row.figure("rate", best_v, "rec/s");
    Ok((best_v, best_p))
}
