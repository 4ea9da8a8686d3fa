//! Tiered storage: one partition filled with copies held back, then the copy to the remote
//! tier timed (upload throughput), then read from offset 0 twice: cold (every chunk from
//! the object store) and warm (from the broker's remote read cache). The object store is
//! an S3-compatible server when `SLUICE_BENCH_S3_ENDPOINT`, `_BUCKET`, `_ACCESS_KEY` and
//! `_SECRET_KEY` name one, else a directory beside the broker's data.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminOptions, AlterConfig, ResourceSpecifier};

use super::consume::{self, CONSUMER, FILL};
use super::produce::{self, Budget};
use super::Ctx;
use crate::client;
use crate::report::Row;
use crate::target::Broker;

/// The scenario's name.
pub(crate) const NAME: &str = "tiered";

/// Runs the upload and the cold and warm remote reads.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    let mut upload = Row::new(NAME, "upload 1KiB p1");
    let cold = Row::new(NAME, "remote read cold");
    let warm = Row::new(NAME, "remote read warm");
    if !ctx.target.is_managed() {
        let why =
            "skipped: needs a broker this process starts (tiered storage is a broker setting)";
        return vec![upload.skip(why), cold.skip(why), warm.skip(why)];
    }
    let segment: u64 = if ctx.args.smoke { 256 << 10 } else { 16 << 20 };
    let store = store_props(ctx);
    upload.setting("store", &store.0);
    let mut props: Vec<(&str, &str)> = store.1.iter().map(|(k, v)| (*k, v.as_str())).collect();
    props.extend([
        ("remote.log.storage.system.enable", "true"),
        ("remote.log.manager.task.interval.ms", "100"),
        ("log.retention.check.interval.ms", "100"),
        ("remote.storage.cache.bytes", "2147483648"),
    ]);
    let result = (|| -> anyhow::Result<Vec<Row>> {
        let mut broker = ctx.target.broker(&props)?;
        let topic = format!("bench-tiered-{}", std::process::id());
        let segment_s = segment.to_string();
        let topic_configs = [
            ("remote.storage.enable", "true"),
            ("segment.bytes", segment_s.as_str()),
            ("local.retention.bytes", segment_s.as_str()),
        ];
        let mut held = topic_configs.to_vec();
        held.push(("remote.log.copy.disable", "true"));
        client::create_topics(&broker.bootstrap(), &[(topic.clone(), 1)], &held, 1)?;
        let budget = Budget {
            seconds: f64::INFINITY,
            messages: None,
            bytes: ctx.args.consume_bytes,
        };
        let written = produce::measure(&broker, &topic, &FILL, &budget).context("filling")?;
        let (_, filled) = local_files(&mut broker, &topic)?;
        upload
            .setting("segment.bytes", segment)
            .setting("records", written.records)
            .note(format!("filled with {} MB", filled / 1_000_000));

        // Copies begin now: the whole backlog goes, then local retention trims the disk.
        let started = Instant::now();
        let mut release = topic_configs.to_vec();
        release.push(("remote.log.copy.disable", "false"));
        alter(&broker.bootstrap(), &topic, &release)?;
        let limit = Duration::from_secs(if ctx.args.smoke { 120 } else { 1800 });
        // Done when local retention has left the active segment and at most one more: a
        // segment goes only once it is copied.
        let left = loop {
            let (files, bytes) = local_files(&mut broker, &topic)?;
            if files <= 2 {
                break bytes;
            }
            if started.elapsed() > limit {
                bail!("{files} segment files still local after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        upload.figure("upload", (filled - left) as f64 / 1e6 / secs, "MB/s");

        let mut rows = vec![upload.clone()];
        for (mut row, _) in [(cold, "cold"), (warm, "warm")] {
            row.setting("records", written.records);
            for (k, v) in CONSUMER {
                row.setting(k, v);
            }
            match consume::read(&mut broker, &topic, written.records) {
                Ok(m) => {
                    m.add_to(&mut row);
                    rows.push(row);
                }
                Err(e) => rows.push(row.fail(&e)),
            }
        }
        Ok(rows)
    })();
    match result {
        Ok(rows) => rows,
        Err(e) => vec![upload.fail(&e)],
    }
}

/// A description of the object store and the broker properties that name it.
fn store_props(ctx: &Ctx<'_>) -> (String, Vec<(&'static str, String)>) {
    let env = |k: &str| std::env::var(format!("SLUICE_BENCH_S3_{k}")).ok();
    if let (Some(endpoint), Some(bucket), Some(key), Some(secret)) = (
        env("ENDPOINT"),
        env("BUCKET"),
        env("ACCESS_KEY"),
        env("SECRET_KEY"),
    ) {
        return (
            format!("s3 {endpoint}/{bucket}"),
            vec![
                ("remote.storage.s3.endpoint", endpoint),
                ("remote.storage.s3.bucket", bucket),
                ("remote.storage.s3.access.key", key),
                ("remote.storage.s3.secret.key", secret),
                ("remote.storage.s3.path.style.access", "true".into()),
            ],
        );
    }
    let dir = ctx
        .target
        .work_dir()
        .join(format!("remote-{}", std::process::id()));
    (
        "directory".into(),
        vec![("remote.storage.local.dir", dir.display().to_string())],
    )
}

/// The partition's segment files on the broker's disk: how many, and their bytes.
fn local_files(broker: &mut Broker, topic: &str) -> anyhow::Result<(usize, u64)> {
    let Some(p) = broker.process() else {
        bail!("the broker is not a process of this run");
    };
    let dir = p.log_dir().join(format!("{topic}-0"));
    let (mut files, mut total) = (0, 0);
    for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
        let entry = entry?;
        if entry.path().extension().is_some_and(|e| e == "log") {
            // Local retention may remove a file between the listing and its size.
            match entry.metadata() {
                Ok(m) => {
                    files += 1;
                    total += m.len();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok((files, total))
}

/// Replaces the topic's configs (AlterConfigs).
fn alter(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) -> anyhow::Result<()> {
    let admin = client::admin(bootstrap)?;
    let mut change = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (k, v) in configs {
        change = change.set(k, v);
    }
    let results =
        futures::executor::block_on(admin.alter_configs(&[change], &AdminOptions::new()))?;
    for r in results {
        if let Err((_, e)) = r {
            bail!("AlterConfigs: {e}");
        }
    }
    Ok(())
}
