//! A value loaded from files and loaded again when they change: TLS stores, PLAIN user
//! files, JWKS files. Changes are noticed by modification time and size, checked at
//! most once a second as the value is asked for; a change that does not load is logged
//! and the previous value stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often the files are checked for changes, at most.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

type Loader<T> = Box<dyn Fn() -> anyhow::Result<T> + Send + Sync>;

/// A value built from files, rebuilt when they change.
pub(crate) struct Reloading<T> {
    what: String,
    paths: Vec<PathBuf>,
    load: Loader<T>,
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Arc<T>,
    stamps: Vec<Option<(SystemTime, u64)>>,
    checked: Instant,
}

impl<T> Reloading<T> {
    /// Loads the value now; `what` names it in log lines.
    pub(crate) fn new(
        what: impl Into<String>,
        paths: Vec<PathBuf>,
        load: impl Fn() -> anyhow::Result<T> + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let stamps = stamps(&paths);
        let value = Arc::new(load()?);
        Ok(Reloading {
            what: what.into(),
            paths,
            load: Box::new(load),
            state: Mutex::new(State {
                value,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The current value, loaded again first if a file changed.
    pub(crate) fn current(&self) -> Arc<T> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.checked.elapsed() >= RELOAD_CHECK {
            s.checked = Instant::now();
            let now = stamps(&self.paths);
            if now != s.stamps {
                s.stamps = now;
                match (self.load)() {
                    Ok(v) => {
                        s.value = Arc::new(v);
                        tracing::info!(what = %self.what, files = ?self.paths, "reloaded");
                    }
                    Err(e) => tracing::error!(
                        what = %self.what,
                        error = format!("{e:#}"),
                        "changed files do not load; keeping the previous ones"
                    ),
                }
            }
        }
        s.value.clone()
    }
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    paths.iter().map(|p| stamp(p)).collect()
}
