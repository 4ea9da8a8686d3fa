//! `sluice-bench`: runs named scenarios against a Sluice broker with librdkafka, prints
//! one table and writes JSON. A benchmark for people, never a timed test: CI runs
//! `--smoke`, which only proves every scenario still works.

mod args;
mod broker_process;
mod client;
mod etcd_process;
mod procfs;
mod report;
mod scenarios;
mod stats;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use clap::Parser as _;

use crate::args::Args;
use crate::report::{Results, Status};
use crate::scenarios::Ctx;
use crate::target::Target;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the selected scenarios; true when none failed.
fn run() -> anyhow::Result<bool> {
    let mut args = Args::parse();
    if args.list {
        for s in scenarios::ALL {
            println!("{:<12} {}", s.name, s.about);
        }
        return Ok(true);
    }
    args.apply_smoke();
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        bail!("--seconds must be positive");
    }
    let selected = scenarios::select(&args.scenarios).map_err(|unmatched| {
        anyhow::anyhow!(
            "no scenario matches {} (--list shows them)",
            unmatched.join(", ")
        )
    })?;
    let target = match &args.bootstrap {
        Some(b) => Target::External(b.clone()),
        None => Target::Managed {
            bin: args
                .sluice_bin
                .clone()
                .unwrap_or_else(target::default_sluice_bin),
            work_dir: args.work_dir.clone().unwrap_or_else(std::env::temp_dir),
            overrides: args.broker_overrides()?,
        },
    };
    let broker = match &target {
        Target::Managed { bin, .. } => {
            if !bin.is_file() {
                bail!(
                    "no sluice binary at {} (build it with `cargo build --release --bin sluice`, or pass --sluice-bin)",
                    bin.display()
                );
            }
            bin.display().to_string()
        }
        Target::External(b) => format!("external broker at {b}"),
    };
    let machine = procfs::machine();
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    eprintln!(
        "sluice-bench{}: {broker}; librdkafka {librdkafka}; {} cores, load average {:.2}",
        if args.smoke { " --smoke" } else { "" },
        machine.cores,
        machine.load_average[0]
    );
    if let Some(reclaim) = machine.page_cache_reclaim.as_ref().filter(|_| !args.smoke) {
        eprintln!("warning: {reclaim}; page cache reads may not be warm");
    }
    if machine.load_average[0] >= 1.0 && !args.smoke {
        eprintln!("warning: the machine is busy (load average above 1); the numbers will show it");
    }

    let started_at = report::utc_now();
    let started = Instant::now();
    let mut rows = Vec::new();
    for scenario in selected {
        eprintln!("{}", scenario.name);
        let ctx = Ctx {
            args: &args,
            target: &target,
            earlier: &rows,
        };
        let new = (scenario.run)(&ctx);
        for r in new.iter().filter(|r| r.status == Status::Failed) {
            eprintln!("  FAILED {}: {}", r.case, r.notes.join("; "));
        }
        rows.extend(new);
    }
    scenarios::limits::annotate(&mut rows);

    println!("\n{}", report::table(&rows));
    let results = Results {
        started_at: started_at.clone(),
        duration_s: started.elapsed().as_secs_f64(),
        machine,
        load_average_after: procfs::load_average(),
        librdkafka,
        broker,
        args: args.clone(),
        rows,
    };
    let path = args
        .json
        .clone()
        .unwrap_or_else(|| default_json_path(&started_at));
    report::write_json(&results, &path)?;
    let failed = results
        .rows
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    println!(
        "{} cases in {:.0} s, {failed} failed; load average {:.2} before, {:.2} after; JSON: {}",
        results.rows.len(),
        results.duration_s,
        results.machine.load_average[0],
        results.load_average_after[0],
        path.display()
    );
    Ok(failed == 0)
}

/// `$CARGO_TARGET_DIR/bench/<time>.json`, else `target/bench/<time>.json`.
fn default_json_path(started_at: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    // Colons are awkward in file names on some systems and in shells.
    dir.join("bench")
        .join(format!("{}.json", started_at.replace(':', "")))
}
