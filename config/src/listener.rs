//! `listeners` and `advertised.listeners`: `NAME://host:port` lists.

use crate::ConfigError;

/// The security protocol of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// Plain TCP, no authentication.
    Plaintext,
}

/// One listener endpoint: its name, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name (`PLAINTEXT`, or a custom name).
    pub name: String,
    /// Host to bind or advertise; empty means all interfaces (bind) or the default host.
    pub host: String,
    /// TCP port; 0 binds an ephemeral port.
    pub port: u16,
    /// The security protocol in force on this listener.
    pub security_protocol: SecurityProtocol,
}

impl Listener {
    /// The `host:port` string to bind.
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses a comma-separated listener list such as `PLAINTEXT://127.0.0.1:9092`.
pub(crate) fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item.split_once("://").ok_or_else(|| {
            ConfigError::invalid(key, value, format!("`{item}` is not NAME://host:port"))
        })?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| ConfigError::invalid(key, value, format!("`{item}` has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| ConfigError::invalid(key, value, format!("`{port}` is not a port")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = name.to_ascii_uppercase();
        let security_protocol = match name.as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            other => {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    format!("listener `{other}`: only PLAINTEXT listeners are supported so far"),
                ))
            }
        };
        if out.iter().any(|l| l.name == name) {
            return Err(ConfigError::invalid(
                key,
                value,
                format!("listener `{name}` appears twice"),
            ));
        }
        out.push(Listener {
            name,
            host,
            port,
            security_protocol,
        });
    }
    if out.is_empty() {
        return Err(ConfigError::invalid(key, value, "no listener given"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_ipv6() {
        let l = parse_listeners("listeners", "PLAINTEXT://[::1]:9093").unwrap();
        assert_eq!(l[0].host, "::1");
        assert_eq!(l[0].port, 9093);
        assert_eq!(l[0].bind_address(), "[::1]:9093");
        let l = parse_listeners("listeners", "PLAINTEXT://:9092").unwrap();
        assert_eq!(l[0].bind_address(), "0.0.0.0:9092");
    }

    #[test]
    fn rejects_missing_port() {
        assert!(matches!(
            parse_listeners("listeners", "PLAINTEXT://localhost"),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
