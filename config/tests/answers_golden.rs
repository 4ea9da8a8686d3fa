//! Pins every answer the config crate gives (start-up parsing, DescribeConfigs for
//! brokers and topics, the dynamic-config checks) to `answers_golden.txt`, so that a
//! change in how configs are declared cannot change what a client or operator sees.
//! After an intended change: `SLUICE_BLESS=1 cargo test --workspace -- answers_golden`.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write;

use sluice_config::{
    describe_broker_configs, describe_topic_configs, dynamic_def, is_static_broker_property,
    topic_config_names, topic_config_type, validate_dynamic_configs, validate_topic_config,
    validate_topic_overrides, BrokerConfig, BrokerLayers, DescribedConfig,
};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn dump(out: &mut String, title: &str, configs: &[DescribedConfig]) {
    writeln!(out, "## {title}").unwrap();
    for c in configs {
        writeln!(
            out,
            "{} = {:?} source={:?} type={:?} read_only={} sensitive={} doc={:?}",
            c.name, c.value, c.source, c.config_type, c.read_only, c.sensitive, c.doc
        )
        .unwrap();
        for s in &c.synonyms {
            writeln!(out, "    {} = {:?} {:?}", s.name, s.value, s.source).unwrap();
        }
    }
}

/// Names worth probing beyond those DescribeConfigs lists.
const EXTRA_NAMES: &[&str] = &[
    "broker.id",
    "log.dir",
    "log.roll.hours",
    "log.retention.minutes",
    "log.retention.hours",
    "listener.security.protocol.map",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "connection.failed.authentication.delay.ms",
    "max.connections.per.ip.overrides",
    "metrics.listener",
    "quota.window.num",
    "quota.window.size.seconds",
    "cluster.id",
    "process.roles",
    "num.network.threads",
    "zookeeper.connect",
    "sasl.enabled.mechanisms",
    "ssl.keystore.location",
    "listener.name.sasl_ssl.ssl.keystore.location",
    "listener.name.x.plain.sasl.jaas.config",
    "listener.name.x.max.connections",
    "custom.thing",
    "background.threads",
    "log.flush.scheduler.interval.ms",
];

fn all_names() -> Vec<String> {
    let b = BrokerConfig::default();
    let mut names: Vec<String> = describe_broker_configs(&b, &BrokerLayers::from_static(&b), true)
        .into_iter()
        .map(|c| c.name)
        .chain(EXTRA_NAMES.iter().map(|s| s.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn answers() -> String {
    let mut out = String::new();
    let b = BrokerConfig::default();
    let layers = BrokerLayers::from_static(&b);
    dump(
        &mut out,
        "default broker, per broker",
        &describe_broker_configs(&b, &layers, true),
    );
    dump(
        &mut out,
        "default topic",
        &describe_topic_configs(&b, &layers, &BTreeMap::new()),
    );

    let static_props = map(&[
        ("log.dirs", "/tmp/x"),
        ("log.retention.hours", "2"),
        ("log.roll.hours", "3"),
        ("num.partitions", "4"),
        ("log.cleanup.policy", "compact"),
        ("compression.type", "zstd"),
        ("ssl.key.password", "secret"),
        ("log.flush.interval.messages", "10"),
        ("log.flush.interval.ms", "500"),
        ("listeners", "PLAINTEXT://127.0.0.1:9093"),
        ("process.roles", "broker,controller"),
        ("group.max.size", "7"),
        ("offsets.retention.minutes", "30"),
    ]);
    BrokerConfig::from_properties(static_props.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .expect("static properties");
    let layers = BrokerLayers {
        static_props,
        cluster_default: map(&[
            ("log.retention.ms", "60000"),
            ("max.connections", "50"),
            ("background.threads", "4"),
            ("custom.thing", "x"),
        ]),
        per_broker: map(&[
            ("log.segment.bytes", "4096"),
            ("listener.name.plaintext.ssl.keystore.location", "/k"),
            ("sasl.jaas.config", "secret"),
        ]),
    };
    let effective = layers.effective().expect("effective");
    dump(
        &mut out,
        "layered broker, per broker",
        &describe_broker_configs(&effective, &layers, true),
    );
    dump(
        &mut out,
        "layered broker, cluster default",
        &describe_broker_configs(&effective, &layers, false),
    );
    let overrides = map(&[
        ("retention.ms", "1000"),
        ("cleanup.policy", "delete,compact"),
        ("flush.ms", "9"),
    ]);
    dump(
        &mut out,
        "layered topic",
        &describe_topic_configs(&effective, &layers, &overrides),
    );

    writeln!(out, "## start-up parsing and dynamic checks").unwrap();
    for name in all_names() {
        writeln!(
            out,
            "{name}: dynamic={:?} static={}",
            dynamic_def(&name),
            is_static_broker_property(&name)
        )
        .unwrap();
        for value in ["bogus", "-5", "0", "1", "true", "", "PLAINTEXT://:1"] {
            let parsed = BrokerConfig::from_properties([(name.as_str(), value)]).map(|_| ());
            let dynamic: Vec<_> = [true, false]
                .into_iter()
                .map(|per_broker| {
                    validate_dynamic_configs(
                        &map(&[(&name, value)]),
                        per_broker,
                        &is_static_broker_property,
                    )
                })
                .collect();
            writeln!(out, "    {value:?}: parse={parsed:?} dynamic={dynamic:?}").unwrap();
        }
    }

    writeln!(out, "## topic config checks").unwrap();
    for name in topic_config_names().chain(["retention.msec"]) {
        writeln!(out, "{name}: type={:?}", topic_config_type(name)).unwrap();
        for value in [
            "bogus",
            "-5",
            "-1",
            "0",
            "1",
            "0.5",
            "true",
            "delete,compact",
            "LogAppendTime",
        ] {
            writeln!(
                out,
                "    {value:?}: {:?}",
                validate_topic_config(name, value)
            )
            .unwrap();
        }
    }
    let b = BrokerConfig::default();
    writeln!(
        out,
        "lags: {:?}",
        validate_topic_overrides(
            &b,
            &map(&[
                ("min.compaction.lag.ms", "10"),
                ("max.compaction.lag.ms", "5")
            ])
        )
    )
    .unwrap();
    out
}

#[test]
fn answers_golden() {
    // Cargo names the package's directory when it runs the test; the compile-time one may
    // be a checkout elsewhere whose build this target directory reused.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    let path = dir.join("tests/answers_golden.txt");
    let got = answers();
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "config answers changed at line {}:\n got: {:?}\nwant: {:?}\n(after an intended change: SLUICE_BLESS=1 cargo test --workspace -- answers_golden)",
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}
