//! Which broker the scenarios run against: one started per case by this process, or an
//! existing one given with `--bootstrap`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::broker_process::BrokerProcess;
use crate::procfs::CpuMeter;

/// Where the brokers come from.
pub(crate) enum Target {
    /// Start `bin` for each case, with `overrides` (from `--broker-override`) on top of the case's.
    Managed {
        bin: PathBuf,
        work_dir: PathBuf,
        overrides: Vec<(String, String)>,
    },
    /// Use the broker at this bootstrap address as it is.
    External(String),
}

impl Target {
    /// A broker for one case: a fresh process with `props` when managed; the external
    /// broker otherwise (where `props` cannot apply).
    pub(crate) fn broker(&self, props: &[(&str, &str)]) -> anyhow::Result<Broker> {
        match self {
            Target::Managed {
                bin,
                work_dir,
                overrides,
            } => {
                let mut all: Vec<(String, String)> = props
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                all.extend(overrides.iter().cloned());
                Ok(Broker::Managed(BrokerProcess::start(bin, work_dir, &all)?))
            }
            Target::External(bootstrap) => Ok(Broker::External(bootstrap.clone())),
        }
    }

    /// True when this process starts the brokers (and so can restart and measure them).
    pub(crate) fn is_managed(&self) -> bool {
        matches!(self, Target::Managed { .. })
    }

    /// The directory for scratch files (the brokers' data, fio's files).
    pub(crate) fn work_dir(&self) -> PathBuf {
        match self {
            Target::Managed { work_dir, .. } => work_dir.clone(),
            Target::External(_) => std::env::temp_dir(),
        }
    }
}

/// The broker of one case.
pub(crate) enum Broker {
    /// A child process of this one.
    Managed(BrokerProcess),
    /// Someone else's broker.
    External(String),
}

impl Broker {
    /// `host:port` to bootstrap clients from.
    pub(crate) fn bootstrap(&self) -> String {
        match self {
            Broker::Managed(p) => p.bootstrap(),
            Broker::External(b) => b.clone(),
        }
    }

    /// The child process, when there is one.
    pub(crate) fn process(&mut self) -> Option<&mut BrokerProcess> {
        match self {
            Broker::Managed(p) => Some(p),
            Broker::External(_) => None,
        }
    }

    /// Adds the broker's last logged warnings and errors to a failed case's error.
    pub(crate) fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        let mut problems = match self {
            Broker::Managed(p) => p.log_problems(5),
            Broker::External(_) => Vec::new(),
        };
        if let Broker::Managed(p) = self {
            // Running out of file descriptors shows up as storage errors far from the cause.
            let pid = p.pid().map(|pid| pid.to_string());
            let open = p.open_files().ok();
            let limit = pid.and_then(|pid| crate::procfs::open_files_limits(&pid));
            if let (Some(open), Some((soft, _))) = (open, limit) {
                if open as u64 * 10 >= soft * 9 {
                    problems.push(format!("{open} files open, its limit is {soft}"));
                }
            }
        }
        if problems.is_empty() {
            error
        } else {
            anyhow::anyhow!(
                "{error:#}; the broker:\n      {}",
                problems.join("\n      ")
            )
        }
    }

    /// Starts measuring CPU of this process and, when it is a child, of the broker.
    pub(crate) fn cpu_meter(&self) -> anyhow::Result<CpuMeter> {
        let pid = match self {
            Broker::Managed(p) => Some(p.pid().context("the broker is not running")?),
            Broker::External(_) => None,
        };
        CpuMeter::start(pid)
    }
}

/// The default sluice binary: the release build in `$CARGO_TARGET_DIR`, else in
/// `~/.cache/sluice-target`, the target directory this project's scripts use.
pub(crate) fn default_sluice_bin() -> PathBuf {
    let candidates = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/sluice-target")))
        .map(|dir| dir.join("release").join("sluice"))
        .collect::<Vec<_>>();
    candidates
        .iter()
        .find(|p| p.is_file())
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("target/release/sluice"))
}
