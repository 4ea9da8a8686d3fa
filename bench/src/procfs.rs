//! What Linux's /proc says about a process (CPU time, resident memory) and the machine.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User plus system CPU seconds of a process, every thread included (`self` for this one).
pub(crate) fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces and parentheses; fields resume after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name come state (field 3) ...; utime and stime are fields 14 and 15.
    let field = |n: usize| -> anyhow::Result<f64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .with_context(|| format!("{path}: field {n} missing"))
    };
    Ok((field(14)? + field(15)?) / clock_ticks())
}

/// Resident set size (VmRSS) of a process, in bytes.
pub(crate) fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .with_context(|| format!("{path}: no VmRSS"))
}

/// How many files a process has open (entries of /proc/<pid>/fd).
pub(crate) fn open_files(pid: u32) -> anyhow::Result<usize> {
    let path = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&path)
        .with_context(|| format!("reading {path}"))?
        .count())
}

/// The soft and hard limits on open files of a process (`self` for this one, whose
/// limits children inherit).
pub(crate) fn open_files_limits(pid: &str) -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line.split_whitespace().skip(3).map(|f| {
        if f == "unlimited" {
            Some(u64::MAX)
        } else {
            f.parse().ok()
        }
    });
    Some((fields.next()??, fields.next()??))
}

/// CPU used by the broker and by this process over a stretch of wall time.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct CpuUsage {
    /// Wall seconds measured.
    pub(crate) wall_s: f64,
    /// Broker CPU seconds; None when the broker is not a child of this process.
    pub(crate) broker_s: Option<f64>,
    /// CPU seconds of this process (librdkafka's threads included).
    pub(crate) client_s: f64,
}

impl CpuUsage {
    /// Broker CPU as a number of cores kept busy.
    pub(crate) fn broker_cores(&self) -> Option<f64> {
        self.broker_s.map(|b| b / self.wall_s.max(1e-9))
    }

    /// Client CPU as a number of cores kept busy.
    pub(crate) fn client_cores(&self) -> f64 {
        self.client_s / self.wall_s.max(1e-9)
    }
}

/// Starts measuring CPU; [`CpuMeter::finish`] gives the usage since.
pub(crate) struct CpuMeter {
    started: Instant,
    broker_pid: Option<String>,
    broker_start: Option<f64>,
    client_start: f64,
}

impl CpuMeter {
    /// Measures this process and, when given, the broker process.
    pub(crate) fn start(broker_pid: Option<u32>) -> anyhow::Result<CpuMeter> {
        let broker_pid = broker_pid.map(|p| p.to_string());
        let broker_start = broker_pid.as_deref().map(cpu_seconds).transpose()?;
        Ok(CpuMeter {
            started: Instant::now(),
            broker_pid,
            broker_start,
            client_start: cpu_seconds("self")?,
        })
    }

    /// The usage since [`CpuMeter::start`].
    pub(crate) fn finish(&self) -> anyhow::Result<CpuUsage> {
        self.finish_at(self.started.elapsed())
    }

    /// The usage since start, over `wall` (when the measured work ended a bit earlier).
    pub(crate) fn finish_at(&self, wall: Duration) -> anyhow::Result<CpuUsage> {
        let broker_s = match (&self.broker_pid, self.broker_start) {
            (Some(pid), Some(start)) => Some(cpu_seconds(pid)? - start),
            _ => None,
        };
        Ok(CpuUsage {
            wall_s: wall.as_secs_f64(),
            broker_s,
            client_s: cpu_seconds("self")? - self.client_start,
        })
    }
}

/// The machine the numbers were measured on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// Cores this process may run on.
    pub(crate) cores: usize,
    /// /proc/cpuinfo's model name.
    pub(crate) cpu_model: String,
    /// MemTotal, bytes.
    pub(crate) memory_bytes: u64,
    /// The kernel release.
    pub(crate) kernel: String,
    /// Load average over 1, 5 and 15 minutes when the run began.
    pub(crate) load_average: [f64; 3],
    /// Proactive reclaim that evicts idle page cache (DAMON pageout), when running.
    pub(crate) page_cache_reclaim: Option<String>,
}

/// Cores this process may run on.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|f| f.parse::<f64>().unwrap_or(f64::NAN));
    let mut next = || it.next().unwrap_or(f64::NAN);
    [next(), next(), next()]
}

/// Describes this machine from /proc; unknown parts stay empty.
pub(crate) fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        cores: cores(),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default(),
        memory_bytes: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        load_average: load_average(),
        page_cache_reclaim: damon_pageout(),
    }
}

/// Describes a running DAMON `pageout` scheme (some VMs use one to hand idle memory back to
/// the host): it evicts page cache left untouched for a few seconds, so a "warm" read may
/// not be.
fn damon_pageout() -> Option<String> {
    let root = std::path::Path::new("/sys/kernel/mm/damon/admin/kdamonds/0");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).map(|s| s.trim().to_string());
    if read("state").ok()? != "on" || read("contexts/0/schemes/0/action").ok()? != "pageout" {
        return None;
    }
    let age = read("contexts/0/schemes/0/access_pattern/age/min")
        .ok()
        .and_then(|a| a.parse::<f64>().ok());
    let interval_us = read("contexts/0/monitoring_attrs/intervals/aggr_us")
        .ok()
        .and_then(|a| a.parse::<f64>().ok());
    Some(match (age, interval_us) {
        (Some(age), Some(us)) => format!(
            "DAMON pageout evicts memory idle for {:.1} s or more",
            age * us / 1e6
        ),
        _ => "DAMON pageout evicts idle memory".to_string(),
    })
}

/// The share (0 to 1) of the bytes of files named `*.log` under `dir` that are in the
/// page cache, by fincore(1); None when fincore is missing or fails.
pub(crate) fn page_cache_share(dir: &std::path::Path) -> Option<f64> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        return None;
    }
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--raw", "--output", "RES,SIZE"])
        .args(&files)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let (mut resident, mut size) = (0u64, 0u64);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split_whitespace().map(|v| v.parse::<u64>().ok());
        resident += f.next()??;
        size += f.next()??;
    }
    (size > 0).then(|| resident as f64 / size as f64)
}
