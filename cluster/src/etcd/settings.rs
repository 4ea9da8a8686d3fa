//! How to reach etcd: endpoints, key prefix, credentials, TLS, and the session timing.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use crate::error::MetadataError;

/// Connection settings of [`super::EtcdMetadata`] (the `metadata.etcd.*` properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// etcd client URLs (`http://host:port`, `https://host:port`, or `host:port`).
    pub endpoints: Vec<String>,
    /// The key prefix of this cluster (`/sluice`).
    pub prefix: String,
    /// etcd user, when authentication is on.
    pub username: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// TLS to etcd, when set.
    pub tls: Option<EtcdTls>,
    /// `broker.session.timeout.ms`: the lease TTL (rounded up to whole seconds, etcd's unit).
    pub session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`: how often the lease is kept alive.
    pub heartbeat_interval_ms: u64,
}

/// TLS files (PEM) for the connection to etcd.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcdTls {
    /// CA certificates that sign etcd's server certificate.
    pub ca_location: Option<PathBuf>,
    /// Client certificate chain, for etcd's client-certificate authentication.
    pub certificate_location: Option<PathBuf>,
    /// The client certificate's private key.
    pub key_location: Option<PathBuf>,
}

impl EtcdSettings {
    /// Settings for `endpoints` with Kafka's default timing (session 9 s, heartbeat 2 s),
    /// prefix `/sluice`, no credentials and no TLS.
    pub fn new(endpoints: Vec<String>) -> EtcdSettings {
        EtcdSettings {
            endpoints,
            prefix: "/sluice".to_string(),
            username: None,
            password: None,
            tls: None,
            session_timeout_ms: 9000,
            heartbeat_interval_ms: 2000,
        }
    }

    /// The lease TTL in seconds.
    pub(crate) fn ttl_seconds(&self) -> i64 {
        (self.session_timeout_ms.div_ceil(1000)).max(1) as i64
    }

    pub(crate) fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }

    pub(crate) fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// Checks the settings before connecting.
    pub(crate) fn check(&self) -> Result<(), MetadataError> {
        if self.endpoints.is_empty() {
            return Err(MetadataError::Invalid("no etcd endpoints".to_string()));
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms * 2 >= self.session_timeout_ms
        {
            return Err(MetadataError::Invalid(format!(
                "broker.heartbeat.interval.ms {} must be positive and below half of broker.session.timeout.ms {}",
                self.heartbeat_interval_ms, self.session_timeout_ms
            )));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(MetadataError::Invalid(
                "etcd username and password go together".to_string(),
            ));
        }
        Ok(())
    }

    /// The etcd client options.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions, MetadataError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.session_timeout())
            // Detects a dead connection (not just a silent server) within a session.
            .with_keep_alive(self.heartbeat_interval(), self.session_timeout())
            .with_keep_alive_while_idle(true);
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            options = options.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            options = options.with_tls(tls.options()?);
        }
        Ok(options)
    }
}

impl EtcdTls {
    fn options(&self) -> Result<TlsOptions, MetadataError> {
        let Some(ca) = &self.ca_location else {
            return Err(MetadataError::Invalid(
                "TLS to etcd needs a CA (metadata.etcd.ssl.ca.location)".to_string(),
            ));
        };
        let mut options = TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca)?));
        match (&self.certificate_location, &self.key_location) {
            (Some(cert), Some(key)) => {
                options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => {
                return Err(MetadataError::Invalid(
                    "a client certificate for etcd needs both its certificate and key locations"
                        .to_string(),
                ))
            }
        }
        Ok(options)
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, MetadataError> {
    std::fs::read(path)
        .map_err(|e| MetadataError::Invalid(format!("cannot read {}: {e}", path.display())))
}
