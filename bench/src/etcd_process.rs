//! An `etcd` child process (Debian's `etcd-server`) on loopback ports with its own data
//! directory, for the scenarios that run a cluster.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::broker_process::{free_port, http_ok};

/// How long etcd may take to answer `/health`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One etcd member; killed when dropped, its data directory removed.
pub(crate) struct EtcdProcess {
    child: Child,
    client_port: u16,
    _dir: tempfile::TempDir,
}

/// The etcd binary: on the PATH, else Debian's.
fn etcd_bin() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("etcd"))
        .chain([PathBuf::from("/usr/bin/etcd")])
        .find(|p| p.is_file())
}

impl EtcdProcess {
    /// Starts etcd under `work_dir` and waits until it is healthy.
    pub(crate) fn start(work_dir: &Path) -> anyhow::Result<EtcdProcess> {
        let Some(bin) = etcd_bin() else {
            bail!("no etcd binary (install Debian's etcd-server)");
        };
        let dir = tempfile::Builder::new()
            .prefix("sluice-bench-etcd-")
            .tempdir_in(work_dir)
            .context("creating etcd's data directory")?;
        let (client_port, peer_port) = (free_port()?, free_port()?);
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log"))?;
        let child = Command::new(&bin)
            .arg("--name")
            .arg("bench")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .arg("--initial-cluster")
            .arg(format!("bench={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut etcd = EtcdProcess {
            child,
            client_port,
            _dir: dir,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, client_port));
        let started = Instant::now();
        while !http_ok(addr, "/health") {
            if let Some(status) = etcd.child.try_wait()? {
                bail!("etcd exited ({status}) before it was healthy");
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("etcd was not healthy after {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(etcd)
    }

    /// The client URL brokers connect to.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
