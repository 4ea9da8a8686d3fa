//! `sluice schema ...`: a Schema Registry's REST API (Sluice's built-in one, or
//! Confluent's), over HTTP/1.1 with hyper, or HTTPS with rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::{header, Request};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::{json, Value};

use crate::CliError;

/// Where the registry is and who calls it.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The registry's URL.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub registry: String,
    /// HTTP basic auth credentials.
    #[arg(long, global = true, value_name = "USER:PASSWORD")]
    pub user: Option<String>,
    /// A PEM file of the CA certificates to trust for an https:// registry.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// A schema's format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaTypeArg {
    /// Apache Avro.
    Avro,
    /// JSON Schema.
    Json,
    /// Protocol Buffers (.proto text).
    Protobuf,
}

/// `sluice schema ...`
#[derive(Debug, Subcommand)]
pub enum SchemaAction {
    /// Registers the schema in FILE under SUBJECT; prints its id.
    Register {
        /// The subject, e.g. orders-value.
        subject: String,
        /// The schema file.
        file: PathBuf,
        /// The schema's format.
        #[arg(long = "type", value_enum, default_value = "avro")]
        schema_type: SchemaTypeArg,
    },
    /// Prints a schema: the one with --id, or a version of SUBJECT.
    Get {
        /// The subject.
        #[arg(required_unless_present = "id")]
        subject: Option<String>,
        /// A schema id instead of a subject.
        #[arg(long, conflicts_with = "subject")]
        id: Option<i32>,
        /// The version: a number or latest.
        #[arg(long, default_value = "latest")]
        version: String,
    },
    /// Lists the subjects, or a subject's versions.
    List {
        /// The subject whose versions to list.
        subject: Option<String>,
        /// Include soft-deleted subjects or versions.
        #[arg(long)]
        deleted: bool,
    },
    /// Deletes a subject, or one version of it; --permanent after a soft delete.
    Delete {
        /// The subject.
        subject: String,
        /// Only this version.
        #[arg(long)]
        version: Option<String>,
        /// Remove for good (the subject or version must be soft-deleted first).
        #[arg(long)]
        permanent: bool,
    },
    /// Checks the schema in FILE against a version of SUBJECT; exits 1 when incompatible.
    Compat {
        /// The subject.
        subject: String,
        /// The schema file.
        file: PathBuf,
        /// The version to check against: a number or latest.
        #[arg(long, default_value = "latest")]
        version: String,
        /// The schema's format.
        #[arg(long = "type", value_enum, default_value = "avro")]
        schema_type: SchemaTypeArg,
    },
}

/// How long one request to the registry may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one schema command, printing its result on stdout.
pub async fn run(args: &RegistryArgs, action: SchemaAction) -> Result<(), CliError> {
    let registry = Registry::new(args)?;
    match action {
        SchemaAction::Register {
            subject,
            file,
            schema_type,
        } => {
            let body = schema_body(&file, schema_type)?;
            let path = format!("/subjects/{}/versions", encode(&subject));
            let answer = registry.call("POST", &path, Some(body)).await?;
            println!("{}", answer["id"]);
        }
        SchemaAction::Get {
            subject,
            id,
            version,
        } => {
            let answer = match (id, subject) {
                (Some(id), _) => {
                    registry
                        .call("GET", &format!("/schemas/ids/{id}"), None)
                        .await?
                }
                (None, Some(s)) => {
                    let path = format!("/subjects/{}/versions/{}", encode(&s), encode(&version));
                    registry.call("GET", &path, None).await?
                }
                (None, None) => return Err(CliError::Usage("give a subject or --id".into())),
            };
            println!("{answer}");
        }
        SchemaAction::List { subject, deleted } => {
            let path = match &subject {
                Some(s) => format!("/subjects/{}/versions?deleted={deleted}", encode(s)),
                None => format!("/subjects?deleted={deleted}"),
            };
            for item in registry
                .call("GET", &path, None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{}",
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_string)
                );
            }
        }
        SchemaAction::Delete {
            subject,
            version,
            permanent,
        } => {
            let path = match &version {
                Some(v) => format!(
                    "/subjects/{}/versions/{}?permanent={permanent}",
                    encode(&subject),
                    encode(v)
                ),
                None => format!("/subjects/{}?permanent={permanent}", encode(&subject)),
            };
            println!("{}", registry.call("DELETE", &path, None).await?);
        }
        SchemaAction::Compat {
            subject,
            file,
            version,
            schema_type,
        } => {
            let body = schema_body(&file, schema_type)?;
            let path = format!(
                "/compatibility/subjects/{}/versions/{}?verbose=true",
                encode(&subject),
                encode(&version)
            );
            let answer = registry.call("POST", &path, Some(body)).await?;
            if answer["is_compatible"] == json!(true) {
                println!("compatible");
            } else {
                println!("incompatible");
                for m in answer["messages"].as_array().into_iter().flatten() {
                    println!("  {}", m.as_str().unwrap_or_default());
                }
                return Err(CliError::Refused(format!(
                    "the schema is not compatible with {subject} version {version}"
                )));
            }
        }
    }
    Ok(())
}

fn schema_body(file: &Path, schema_type: SchemaTypeArg) -> Result<Value, CliError> {
    let schema = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let mut body = json!({ "schema": schema });
    match schema_type {
        SchemaTypeArg::Avro => {}
        SchemaTypeArg::Json => body["schemaType"] = json!("JSON"),
        SchemaTypeArg::Protobuf => body["schemaType"] = json!("PROTOBUF"),
    }
    Ok(body)
}

/// A path segment, percent-encoded.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One registry, reached over HTTP or HTTPS.
struct Registry {
    host: String,
    port: u16,
    base_path: String,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    authorization: Option<String>,
}

impl Registry {
    fn new(args: &RegistryArgs) -> Result<Self, CliError> {
        let bad = |why: &str| CliError::Usage(format!("--registry {}: {why}", args.registry));
        let (https, rest) = if let Some(r) = args.registry.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = args.registry.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("expected http:// or https://"));
        };
        let (authority, base_path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("the port is not a number"))?),
            None => (authority, if https { 443 } else { 80 }),
        };
        let tls = match (https, &args.ca_file) {
            (false, _) => None,
            (true, Some(ca)) => Some(crate::security::https_client_config(ca)?),
            (true, None) => return Err(bad("an https registry needs --ca-file")),
        };
        Ok(Registry {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            base_path: base_path.trim_end_matches('/').to_string(),
            tls,
            authorization: args
                .user
                .as_ref()
                .map(|u| format!("Basic {}", BASE64.encode(u))),
        })
    }

    /// Sends one request; a non-2xx answer is an error carrying the registry's message.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        let addr = format!("{}:{}", self.host, self.port);
        let fail = |reason: String| CliError::Unreachable {
            addr: addr.clone(),
            reason,
        };
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| fail(e.to_string()))?;
            let request = self.request(method, path, body)?;
            let response = match &self.tls {
                None => send(tcp, request).await,
                Some(config) => {
                    let name = ServerName::try_from(self.host.clone())
                        .map_err(|e| fail(format!("not a TLS server name: {e}")))?;
                    let tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| fail(format!("TLS handshake: {e}")))?;
                    send(tls, request).await
                }
            };
            response.map_err(|e| fail(e.to_string()))
        };
        let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| fail(format!("no answer in {} s", TIMEOUT.as_secs())))??;
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({ "message": String::from_utf8_lossy(&bytes).into_owned() }));
        if (200..300).contains(&status) {
            return Ok(value);
        }
        Err(CliError::Refused(format!(
            "the registry answered {status}{}: {}",
            value["error_code"]
                .as_i64()
                .map(|c| format!(" (error code {c})"))
                .unwrap_or_default(),
            value["message"].as_str().unwrap_or_default()
        )))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Request<Full<Bytes>>, CliError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_path))
            .header(header::HOST, format!("{}:{}", self.host, self.port))
            .header(header::ACCEPT, "application/vnd.schemaregistry.v1+json");
        if let Some(auth) = &self.authorization {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        let body = match body {
            Some(v) => {
                builder = builder.header(
                    header::CONTENT_TYPE,
                    "application/vnd.schemaregistry.v1+json",
                );
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(body))
            .map_err(|e| CliError::Usage(format!("the request: {e}")))
    }
}

async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok((status, bytes))
}
