//! Kafka's Fetch long poll, shared by consumer and follower fetches: read, and while the
//! answer is not ready, wait for one of the partitions to move, until the deadline.

use std::time::Duration;

use futures::future::select_all;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::timed;

/// Reads with `read` until `ready` accepts the result, no partition is left to wait on,
/// or `deadline` passes; between reads it waits for any of `waiters` to change. Returns
/// the last read and the time spent waiting (the request's remote time).
pub(super) async fn long_poll<T>(
    deadline: Instant,
    mut waiters: Vec<watch::Receiver<i64>>,
    mut read: impl FnMut() -> T,
    ready: impl Fn(&T) -> bool,
) -> (T, Duration) {
    let mut waited = Duration::ZERO;
    loop {
        let result = read();
        if ready(&result) || waiters.is_empty() || Instant::now() >= deadline {
            return (result, waited);
        }
        let changed = select_all(waiters.iter_mut().map(|w| Box::pin(w.changed())));
        let (woken, took) = timed(tokio::time::timeout_at(deadline, changed)).await;
        waited += took;
        // Timed out, or a partition went away with its topic: answer with what is there.
        let done = matches!(woken, Err(_) | Ok((Err(_), _, _)));
        drop(woken);
        if done {
            return (read(), waited);
        }
        for w in &mut waiters {
            w.borrow_and_update();
        }
    }
}
