//! `sluice scram`: adds, removes and lists SCRAM users in a data directory whose broker
//! is stopped, so the first users exist before anyone can authenticate (what
//! `kafka-storage format --add-scram` does for Kafka). A running broker takes changes by
//! AlterUserScramCredentials instead.

use anyhow::Context;
use rand::RngCore;
use sluice_config::{BrokerConfig, SaslMechanism};
use sluice_storage::Credentials;

use crate::sasl::scram::{self, ScramHash, MAX_ITERATIONS, MIN_ITERATIONS};

/// What `sluice scram` is asked to do.
#[derive(Debug)]
pub enum ScramAdmin {
    /// Sets a user's password for a mechanism.
    Set {
        /// The user name.
        user: String,
        /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
        mechanism: String,
        /// The password.
        password: String,
        /// PBKDF2 iterations.
        iterations: i32,
    },
    /// Removes a user's credential for a mechanism.
    Delete {
        /// The user name.
        user: String,
        /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
        mechanism: String,
    },
    /// Lists users, mechanisms and iterations.
    List,
}

fn hash_of(mechanism: &str) -> anyhow::Result<ScramHash> {
    SaslMechanism::from_name(mechanism)
        .and_then(|m| ScramHash::from_mechanism(m.name()))
        .with_context(|| {
            format!("unknown mechanism {mechanism}: use SCRAM-SHA-256 or SCRAM-SHA-512")
        })
}

/// Runs a `sluice scram` command against the data directory of `config`.
pub fn run_scram_admin(config: &BrokerConfig, command: ScramAdmin) -> anyhow::Result<()> {
    let dir = &config.log_dir;
    let credentials = Credentials::open_offline(dir).with_context(|| {
        format!(
            "opening {} (a running broker holds it: change users with AlterUserScramCredentials, \
             e.g. kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[password=...]')",
            dir.display()
        )
    })?;
    match command {
        ScramAdmin::Set {
            user,
            mechanism,
            password,
            iterations,
        } => {
            let hash = hash_of(&mechanism)?;
            anyhow::ensure!(!user.is_empty(), "the user name must not be empty");
            anyhow::ensure!(
                (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations),
                "iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}"
            );
            anyhow::ensure!(!password.is_empty(), "the password must not be empty");
            let mut salt = [0u8; 32];
            rand::rng().fill_bytes(&mut salt);
            let salted = hash.salted_password(password.as_bytes(), &salt, iterations as u32);
            let credential = scram::credential(hash, &salt, iterations, &salted);
            credentials.apply(
                &[],
                &[(user.clone(), hash.mechanism().to_string(), credential)],
            )?;
            println!("set {} credential of {user}", hash.mechanism());
        }
        ScramAdmin::Delete { user, mechanism } => {
            let hash = hash_of(&mechanism)?;
            anyhow::ensure!(
                credentials.get(&user, hash.mechanism())?.is_some(),
                "{user} has no {} credential",
                hash.mechanism()
            );
            credentials.apply(&[(user.clone(), hash.mechanism().to_string())], &[])?;
            println!("deleted {} credential of {user}", hash.mechanism());
        }
        ScramAdmin::List => {
            for c in credentials.list()? {
                println!("{}\t{}\titerations={}", c.user, c.mechanism, c.iterations);
            }
        }
    }
    Ok(())
}
