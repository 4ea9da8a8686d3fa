//! ^C (SIGINT) and SIGTERM as a clean stop for `consume` and `produce`: listened for from
//! creation on, so that a signal arriving between two awaits is not lost to the default
//! action (which would end the process without committing offsets or a summary).

use crate::error::CliError;

/// A registered listener for ^C and SIGTERM.
pub(crate) struct Interrupt {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    /// Registers the handlers now (they replace the default action for the process's life).
    pub(crate) fn new() -> Result<Interrupt, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let register = |kind| {
                signal(kind).map_err(|source| CliError::Io {
                    what: "listening for ^C",
                    source,
                })
            };
            Ok(Interrupt {
                int: register(SignalKind::interrupt())?,
                term: register(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Interrupt {})
    }

    /// Completes at the next ^C or SIGTERM.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
