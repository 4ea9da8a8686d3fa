//! A broker-wide budget of open segment files. Segments open their file on first use and
//! the least recently used ones are closed past the budget (the CLOCK algorithm), so that
//! 100,000 partitions, or partitions of thousands of segments, fit in the process's
//! open-files limit.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::StorageError;

/// The budget, shared by every segment of a data directory.
#[derive(Debug)]
pub(crate) struct OpenFiles {
    capacity: usize,
    clock: Mutex<Clock>,
    /// Files opened since start, for tests and metrics.
    opens: AtomicUsize,
}

#[derive(Debug, Default)]
struct Clock {
    /// Segments whose file is open, in the order the hand visits them.
    ring: Vec<Weak<SegmentFile>>,
    hand: usize,
}

impl OpenFiles {
    /// A budget of `capacity` open segment files (at least one).
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(OpenFiles {
            capacity: capacity.max(1),
            clock: Mutex::new(Clock::default()),
            opens: AtomicUsize::new(0),
        })
    }

    /// The budget.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many segment files are open now.
    pub(crate) fn open_now(&self) -> usize {
        let mut clock = self.lock();
        clock.ring.retain(|s| s.strong_count() > 0);
        clock.ring.len()
    }

    /// How many times a segment file was opened.
    #[cfg(test)]
    pub(crate) fn opens(&self) -> usize {
        self.opens.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a newly opened file and closes others while over the budget: a file used
    /// since the hand last passed gets a second chance, one in use right now is skipped.
    fn opened(&self, segment: Weak<SegmentFile>) {
        self.opens.fetch_add(1, Ordering::Relaxed);
        let mut clock = self.lock();
        clock.ring.push(segment);
        let mut visits = 2 * clock.ring.len();
        while clock.ring.len() > self.capacity && visits > 0 {
            visits -= 1;
            if clock.hand >= clock.ring.len() {
                clock.hand = 0;
            }
            let hand = clock.hand;
            let Some(seg) = clock.ring[hand].upgrade() else {
                // Its segment was deleted, which closed the file.
                clock.ring.swap_remove(hand);
                continue;
            };
            if seg.referenced.swap(false, Ordering::Relaxed) || seg.pinned.load(Ordering::Relaxed) {
                clock.hand += 1;
                continue;
            }
            let closed = match seg.slot.try_lock() {
                Ok(mut slot) => {
                    // Readers holding the handle keep the file open until they finish.
                    *slot = None;
                    true
                }
                Err(_) => false,
            };
            if closed {
                clock.ring.swap_remove(hand);
            } else {
                clock.hand += 1;
            }
        }
    }
}

/// A segment's file, opened when used.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    path: PathBuf,
    slot: Mutex<Option<Arc<File>>>,
    referenced: AtomicBool,
    /// Never closed by the budget: its path does not name its file (yet).
    pinned: AtomicBool,
    budget: Arc<OpenFiles>,
}

impl SegmentFile {
    /// A segment file that `file` already has open; `pinned` as in [`Self::set_pinned`].
    pub(crate) fn with_open(
        budget: &Arc<OpenFiles>,
        path: PathBuf,
        file: File,
        pinned: bool,
    ) -> Arc<Self> {
        let seg = Arc::new(SegmentFile {
            path,
            slot: Mutex::new(Some(Arc::new(file))),
            referenced: AtomicBool::new(true),
            pinned: AtomicBool::new(pinned),
            budget: budget.clone(),
        });
        budget.opened(Arc::downgrade(&seg));
        seg
    }

    /// A segment file to open on first use.
    pub(crate) fn closed(budget: &Arc<OpenFiles>, path: PathBuf) -> Arc<Self> {
        Arc::new(SegmentFile {
            path,
            slot: Mutex::new(None),
            referenced: AtomicBool::new(false),
            pinned: AtomicBool::new(false),
            budget: budget.clone(),
        })
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the file open whatever the budget (`true`), or lets the budget close it.
    pub(crate) fn set_pinned(&self, pinned: bool) {
        self.pinned.store(pinned, Ordering::Relaxed);
    }

    /// The open file, opened again if the budget closed it.
    pub(crate) fn handle(self: &Arc<Self>) -> Result<Arc<File>, StorageError> {
        self.referenced.store(true, Ordering::Relaxed);
        if let Some(f) = &*self.lock_slot() {
            return Ok(f.clone());
        }
        // Opened outside the lock; a racing opener's file wins and this one is dropped.
        let file = Arc::new(open_segment(&self.path)?);
        {
            let mut slot = self.lock_slot();
            if let Some(f) = &*slot {
                return Ok(f.clone());
            }
            *slot = Some(file.clone());
        }
        self.budget.opened(Arc::downgrade(self));
        Ok(file)
    }

    fn lock_slot(&self) -> MutexGuard<'_, Option<Arc<File>>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens a segment file for reading and appending.
pub(crate) fn open_segment(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    fn text(f: &File) -> String {
        let mut buf = [0u8; 64];
        let n = f.read_at(&mut buf, 0).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn files_past_the_budget_are_closed_and_reopened_on_use() {
        let dir = tempfile::tempdir().unwrap();
        let budget = OpenFiles::new(3);
        let segs: Vec<_> = (0..10)
            .map(|i| {
                let path = dir.path().join(format!("{i}.log"));
                let mut f = File::create(&path).unwrap();
                write!(f, "segment {i}").unwrap();
                SegmentFile::closed(&budget, path)
            })
            .collect();
        for round in 0..3 {
            for (i, s) in segs.iter().enumerate() {
                let f = s.handle().unwrap();
                assert_eq!(text(&f), format!("segment {i}"), "round {round}");
                assert!(budget.open_now() <= 3);
            }
        }
        assert_eq!(budget.opens(), 30);
        // A file in use stays usable after the budget closes its slot.
        let held = segs[0].handle().unwrap();
        for s in &segs[1..] {
            s.handle().unwrap();
        }
        assert_eq!(text(&held), "segment 0");
        // Deleted segments leave the ring.
        drop(segs);
        let extra = SegmentFile::closed(&budget, dir.path().join("0.log"));
        extra.handle().unwrap();
        assert_eq!(budget.open_now(), 1);
    }
}
