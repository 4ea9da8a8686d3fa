//! A `sluice` child process on loopback ports with its own data directory: started,
//! stopped (SIGTERM), killed (SIGKILL), restarted on the same ports and data, and timed
//! until its `/ready` endpoint answers 200.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::procfs;

/// How long a start may take before the broker counts as hung.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a clean stop may take before the broker counts as hung.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// One broker process; killed when dropped, its data directory removed.
pub(crate) struct BrokerProcess {
    bin: PathBuf,
    data_dir: tempfile::TempDir,
    port: u16,
    metrics_port: u16,
    overrides: Vec<(String, String)>,
    child: Option<Child>,
    spawned_at: Instant,
}

/// A port that was free a moment ago on 127.0.0.1.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl BrokerProcess {
    /// Starts `bin` with a fresh data directory under `work_dir` and `overrides` as
    /// `--override` properties, and waits until it is ready.
    pub(crate) fn start(
        bin: &Path,
        work_dir: &Path,
        overrides: &[(String, String)],
    ) -> anyhow::Result<BrokerProcess> {
        if !bin.is_file() {
            bail!(
                "no sluice binary at {} (build it with `cargo build --release --bin sluice`, or pass --sluice-bin)",
                bin.display()
            );
        }
        let data_dir = tempfile::Builder::new()
            .prefix("sluice-bench-")
            .tempdir_in(work_dir)
            .with_context(|| format!("creating a data directory in {}", work_dir.display()))?;
        let mut broker = BrokerProcess {
            bin: bin.to_path_buf(),
            data_dir,
            port: free_port()?,
            metrics_port: free_port()?,
            overrides: overrides.to_vec(),
            child: None,
            spawned_at: Instant::now(),
        };
        broker.spawn()?;
        broker.wait_ready()?;
        Ok(broker)
    }

    /// `host:port` of the Kafka listener.
    pub(crate) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The process id while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The data directory (`log.dirs`).
    pub(crate) fn log_dir(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    /// Resident memory of the running process, in bytes.
    pub(crate) fn rss_bytes(&self) -> anyhow::Result<u64> {
        procfs::rss_bytes(self.pid().context("the broker is not running")?)
    }

    /// Files the running process has open (sockets included).
    pub(crate) fn open_files(&self) -> anyhow::Result<usize> {
        procfs::open_files(self.pid().context("the broker is not running")?)
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("broker.log")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log_dir = self.log_dir();
        let mut props = vec![
            (
                "listeners".to_string(),
                format!("PLAINTEXT://{}", self.bootstrap()),
            ),
            (
                "advertised.listeners".to_string(),
                format!("PLAINTEXT://{}", self.bootstrap()),
            ),
            (
                "log.dirs".to_string(),
                log_dir.to_string_lossy().into_owned(),
            ),
            (
                "metrics.listener".to_string(),
                format!("127.0.0.1:{}", self.metrics_port),
            ),
        ];
        props.extend(self.overrides.iter().cloned());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("opening the broker log")?;
        let mut command = Command::new(&self.bin);
        for (k, v) in &props {
            command.arg("--override").arg(format!("{k}={v}"));
        }
        self.spawned_at = Instant::now();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("NO_COLOR", "1")
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until `/ready` answers 200; returns the time since the process was spawned.
    fn wait_ready(&mut self) -> anyhow::Result<Duration> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.metrics_port));
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "the broker exited ({status}) before it was ready:\n{}",
                        self.log_tail(30)
                    );
                }
            }
            if http_ok(addr, "/ready") {
                return Ok(self.spawned_at.elapsed());
            }
            if self.spawned_at.elapsed() > READY_TIMEOUT {
                bail!(
                    "the broker was not ready after {READY_TIMEOUT:?}:\n{}",
                    self.log_tail(30)
                );
            }
            // The poll interval bounds the error of the measured start-up time.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SIGTERM and waits for the exit; returns how long the shutdown took.
    pub(crate) fn stop(&mut self) -> anyhow::Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        // std only sends SIGKILL; kill(1) sends the SIGTERM a service manager would.
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed", child.id());
        }
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!(
                        "the broker exited with {status} after SIGTERM:\n{}",
                        self.log_tail(30)
                    );
                }
                return Ok(started.elapsed());
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the broker did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SIGKILL and reaps the process: a crash, as far as the data on disk goes.
    pub(crate) fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing the broker")?;
            child.wait().context("reaping the broker")?;
        }
        Ok(())
    }

    /// Starts the stopped broker again on the same ports and data; returns the time
    /// from spawn to ready.
    pub(crate) fn restart(&mut self) -> anyhow::Result<Duration> {
        if self.child.is_some() {
            bail!("restart of a running broker");
        }
        self.spawn()?;
        self.wait_ready()
    }

    /// The last `lines` lines the broker logged.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The last `lines` warnings and errors the broker logged, for a failed case's report
    /// (the log itself goes with the data directory).
    pub(crate) fn log_problems(&self, lines: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let problems: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        problems[problems.len().saturating_sub(lines)..]
            .iter()
            .map(|l| l.to_string())
            .collect()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // Results are taken by now; a quick kill keeps a failed scenario from leaking a broker.
        let _ = self.kill();
    }
}

/// True when `GET path` at `addr` answers 200.
pub(crate) fn http_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}
