//! The machine's physical limits, measured the same way each time: loopback TCP bandwidth
//! (iperf3, one stream) and, in the filesystem of the brokers' data, sequential write
//! bandwidth and the fdatasync rate (fio). Sluice's figures are then given as a share of
//! the limit that bounds them.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

use super::{consume, produce, Ctx};
use crate::report::{Row, Status};

/// The scenario's name.
pub(crate) const NAME: &str = "limits";

const LOOPBACK: &str = "loopback TCP (iperf3, 1 stream)";
const SEQ_WRITE: &str = "seq write 1MiB O_DIRECT (fio)";
const SEQ_READ: &str = "seq read 1MiB O_DIRECT (fio)";
const SYNC_1M: &str = "seq write 1MiB + fdatasync (fio)";
const SYNC_4K: &str = "seq write 4KiB + fdatasync (fio)";

/// Measures each limit whose tool is installed.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    let smoke = ctx.args.smoke;
    let mut rows = vec![measure(LOOPBACK, "iperf3", |row| iperf(smoke, row))];
    let fio_jobs: [(&str, &[&str]); 4] = [
        (SEQ_WRITE, &["--rw=write", "--bs=1M", "--direct=1"]),
        // Read back with O_DIRECT, so the page cache fio's layout filled does not count.
        (SEQ_READ, &["--rw=read", "--bs=1M", "--direct=1"]),
        (SYNC_1M, &["--rw=write", "--bs=1M", "--fdatasync=1"]),
        (SYNC_4K, &["--rw=write", "--bs=4k", "--fdatasync=1"]),
    ];
    for (case, job) in fio_jobs {
        rows.push(measure(case, "fio", |row| fio(ctx, job, row)));
    }
    rows
}

/// Runs `f` for the row `case` unless `tool` is missing, which is a skip, not a failure.
fn measure(case: &str, tool: &str, f: impl FnOnce(&mut Row) -> anyhow::Result<()>) -> Row {
    let row = Row::new(NAME, case);
    match Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return row.skip(format!(
                "skipped: {tool} is not installed (Debian: apt-get install {tool})"
            ))
        }
        _ => {}
    }
    super::case(NAME, case, f)
}

/// One iperf3 client against a one-shot iperf3 server on loopback.
fn iperf(smoke: bool, row: &mut Row) -> anyhow::Result<()> {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port()
        .to_string();
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting iperf3 -s")?;
    let seconds = if smoke { "1" } else { "5" };
    let started = Instant::now();
    // The server needs a moment to listen; the client is retried rather than probing the
    // port, since a probe would use up the one-shot server's only test. iperf3 -J exits 0
    // even when it cannot connect, so the JSON tells whether it measured.
    let measured = loop {
        let out = Command::new("iperf3")
            .args(["-c", "127.0.0.1", "-p", &port, "-t", seconds, "-J"])
            .output()
            .context("running iperf3 -c")?;
        let json: Value = serde_json::from_slice(&out.stdout).context("iperf3's JSON")?;
        let bits = json
            .pointer("/end/sum_received/bits_per_second")
            .and_then(Value::as_f64);
        match bits {
            Some(bits) => break Ok(bits),
            None if started.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            None => {
                break Err(anyhow::anyhow!(
                    "iperf3 reported no bandwidth: {}",
                    json.pointer("/error").unwrap_or(&Value::Null)
                ))
            }
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    let bits = measured?;
    row.figure("bandwidth", bits / 8.0 / 1e6, "MB/s")
        .setting("seconds", seconds)
        .note("the limit of produce (no flush) and consume payload MB/s");
    Ok(())
}

/// One fio job writing a file in a scratch directory next to the brokers' data.
fn fio(ctx: &Ctx<'_>, job: &[&str], row: &mut Row) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("sluice-bench-fio-")
        .tempdir_in(ctx.target.work_dir())
        .context("creating fio's directory")?;
    let (size, runtime) = if ctx.args.smoke {
        ("16M", "1")
    } else {
        ("1G", "10")
    };
    let output = Command::new("fio")
        .args(["--name=bench", "--ioengine=psync", "--output-format=json"])
        .arg(format!("--directory={}", dir.path().display()))
        .arg(format!("--size={size}"))
        .arg(format!("--runtime={runtime}"))
        .args(job)
        .output()
        .context("running fio")?;
    if !output.status.success() {
        bail!(
            "fio failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let json: Value = serde_json::from_slice(&output.stdout).context("fio's JSON")?;
    let direction = if job.contains(&"--rw=read") {
        "read"
    } else {
        "write"
    };
    let stats = json
        .pointer(&format!("/jobs/0/{direction}"))
        .with_context(|| format!("fio reported no {direction} statistics"))?;
    let number = |key: &str| -> anyhow::Result<f64> {
        stats
            .get(key)
            .and_then(Value::as_f64)
            .with_context(|| format!("fio reported no {key}"))
    };
    row.figure("bandwidth", number("bw_bytes")? / 1e6, "MB/s");
    if job.contains(&"--fdatasync=1") {
        row.figure("fdatasync", number("iops")?, "ops/s");
    }
    row.setting("fio", job.join(" "))
        .setting("size", size)
        .setting("runtime s", runtime)
        .setting("directory", ctx.target.work_dir().display());
    if job.contains(&"--bs=1M") && job.contains(&"--fdatasync=1") {
        row.note("the limit of produce payload MB/s with fsync");
    }
    if direction == "read" {
        row.note("the limit of consume payload MB/s from a cold page cache");
    }
    Ok(())
}

/// Adds `of limit` (a percentage) to the produce and consume rows, from the limits measured.
pub(crate) fn annotate(rows: &mut [Row]) {
    let limit = |case: &str| {
        rows.iter()
            .find(|r| r.scenario == NAME && r.case == case && r.status == Status::Ok)
            .and_then(|r| r.get("bandwidth"))
    };
    let (loopback, synced, read) = (limit(LOOPBACK), limit(SYNC_1M), limit(SEQ_READ));
    for row in rows.iter_mut() {
        let Some(payload) = row.get("payload") else {
            continue;
        };
        let bound = match row.scenario.as_str() {
            produce::NAME
                if row
                    .settings
                    .contains_key("broker log.flush.interval.messages") =>
            {
                synced
            }
            consume::NAME if row.case.contains("cold") => read,
            produce::NAME | consume::NAME => loopback,
            _ => None,
        };
        if let Some(bound) = bound.filter(|b| *b > 0.0) {
            row.figure("of limit", 100.0 * payload / bound, "%");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_with_fsync_is_compared_with_fdatasync_bandwidth() {
        let mut loopback = Row::new(NAME, LOOPBACK);
        loopback.figure("bandwidth", 1000.0, "MB/s");
        let mut synced = Row::new(NAME, SYNC_1M);
        synced.figure("bandwidth", 200.0, "MB/s");
        let mut fsync = Row::new(produce::NAME, "a");
        fsync
            .figure("payload", 100.0, "MB/s")
            .setting("broker log.flush.interval.messages", "1");
        let mut plain = Row::new(produce::NAME, "b");
        plain.figure("payload", 100.0, "MB/s");
        let mut rows = vec![loopback, synced, fsync, plain];
        annotate(&mut rows);
        assert_eq!(rows[2].get("of limit"), Some(50.0));
        assert_eq!(rows[3].get("of limit"), Some(10.0));
    }
}
