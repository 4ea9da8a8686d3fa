//! One share-partition: a share group's view of one topic partition, as Kafka's
//! SharePartition keeps it (KIP-932). Records from the share-partition start offset on are
//! in flight: each is available, acquired by one member under a time lock, acknowledged
//! or archived, with the number of times it was delivered. Fresh records are taken from
//! the log after the last one in flight, so the records in flight are bounded
//! (`group.share.partition.max.record.locks`).

use std::collections::BTreeMap;
use std::time::Instant;

use super::records::{ShareState, StateBatch};

/// Kafka's delivery state codes in the durable state.
const STATE_AVAILABLE: i8 = 0;
const STATE_ACKNOWLEDGED: i8 = 2;
const STATE_ARCHIVED: i8 = 4;

/// The state of a record in flight, with Kafka's names and codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordState {
    /// May be acquired.
    Available,
    /// Held by one member until it acknowledges it or its lock expires.
    Acquired,
    /// Accepted: done.
    Acknowledged,
    /// Rejected, a gap, or delivered too often: done, never delivered again.
    Archived,
}

impl RecordState {
    fn is_terminal(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

/// How a member acknowledges a record (ShareFetch/ShareAcknowledge's AcknowledgeTypes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckType {
    /// No record at this offset (a marker, a compacted or aborted record): archived.
    Gap,
    /// Processed.
    Accept,
    /// To be delivered again, to any member.
    Release,
    /// Never to be delivered again.
    Reject,
}

impl AckType {
    /// The type of a wire code; `None` for a code Kafka does not define.
    pub(crate) fn from_code(code: i8) -> Option<Self> {
        match code {
            0 => Some(AckType::Gap),
            1 => Some(AckType::Accept),
            2 => Some(AckType::Release),
            3 => Some(AckType::Reject),
            _ => None,
        }
    }
}

/// Why an acknowledgement is refused: the whole batch of a request for the partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckError {
    /// A record not acquired by the member (INVALID_RECORD_STATE).
    InvalidRecordState,
    /// Malformed: ranges out of order or a types list of the wrong length (INVALID_REQUEST).
    InvalidRequest,
}

/// One record in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InFlight {
    pub(crate) state: RecordState,
    pub(crate) delivery_count: i16,
    /// The member that holds it while acquired.
    pub(crate) member: Option<String>,
    pub(crate) lock_deadline: Option<Instant>,
}

/// Acquired offsets with one delivery count (ShareFetch's AcquiredRecords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AcquiredRange {
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) delivery_count: i16,
}

/// A batch of the log as acquisition sees it: its offsets, and whether it belongs to an
/// aborted transaction (read_committed share groups never deliver those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogBatch {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) aborted: bool,
}

/// The limits of one share-partition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// `group.share.delivery.count.limit`: a record delivered this often is archived
    /// instead of made available again.
    pub(crate) delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks`: most offsets in flight.
    pub(crate) max_in_flight: i64,
}

/// Record transitions since they were last taken ([`SharePartition::take_stats`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShareStats {
    /// Deliveries, first ones and again.
    pub(crate) delivered: u64,
    /// Deliveries of a record delivered before.
    pub(crate) redelivered: u64,
    /// Records acknowledged (ACCEPT).
    pub(crate) acknowledged: u64,
    /// Records archived: rejected, gaps, or delivered to the limit.
    pub(crate) archived: u64,
}

/// A share group's state of one partition.
#[derive(Debug)]
pub(crate) struct SharePartition {
    /// The share-partition start offset: every record before it is done.
    start_offset: i64,
    /// The offset after the last record in flight: fresh records are taken from here.
    next_fresh: i64,
    /// Every offset in [start_offset, next_fresh) that is not done, and done ones not yet
    /// passed by the start offset.
    in_flight: BTreeMap<i64, InFlight>,
    limits: Limits,
    /// The durable state's epoch, bumped when an operator resets the share-partition.
    state_epoch: i32,
    stats: ShareStats,
}

impl SharePartition {
    /// A share-partition whose records start at `start_offset`.
    pub(crate) fn new(start_offset: i64, limits: Limits) -> Self {
        SharePartition {
            start_offset,
            next_fresh: start_offset,
            in_flight: BTreeMap::new(),
            limits,
            state_epoch: 0,
            stats: ShareStats::default(),
        }
    }

    /// A share-partition as its durable state left it: what was acquired then is
    /// available again, with the deliveries counted so far.
    pub(crate) fn from_state(state: &ShareState, limits: Limits) -> Self {
        let mut p = SharePartition::new(state.start_offset, limits);
        p.state_epoch = state.state_epoch;
        for b in &state.batches {
            let record_state = match b.delivery_state {
                STATE_ACKNOWLEDGED => RecordState::Acknowledged,
                STATE_ARCHIVED => RecordState::Archived,
                _ => RecordState::Available,
            };
            for offset in b.first_offset.max(state.start_offset)..=b.last_offset {
                p.in_flight.insert(
                    offset,
                    InFlight {
                        state: record_state,
                        delivery_count: b.delivery_count,
                        member: None,
                        lock_deadline: None,
                    },
                );
                p.next_fresh = p.next_fresh.max(offset + 1);
            }
        }
        p.advance_start();
        p
    }

    /// The durable form of the state, written by the leader of `leader_epoch`: acquired
    /// records as available, with their counts.
    pub(crate) fn snapshot(&self, leader_epoch: i32) -> ShareState {
        let mut batches: Vec<StateBatch> = Vec::new();
        for (offset, r) in &self.in_flight {
            let delivery_state = match r.state {
                RecordState::Available | RecordState::Acquired => STATE_AVAILABLE,
                RecordState::Acknowledged => STATE_ACKNOWLEDGED,
                RecordState::Archived => STATE_ARCHIVED,
            };
            match batches.last_mut() {
                Some(b)
                    if b.last_offset + 1 == *offset
                        && b.delivery_state == delivery_state
                        && b.delivery_count == r.delivery_count =>
                {
                    b.last_offset = *offset;
                }
                _ => batches.push(StateBatch {
                    first_offset: *offset,
                    last_offset: *offset,
                    delivery_state,
                    delivery_count: r.delivery_count,
                }),
            }
        }
        ShareState {
            state_epoch: self.state_epoch,
            leader_epoch,
            start_offset: self.start_offset,
            batches,
        }
    }

    /// The transitions since the last call.
    pub(crate) fn take_stats(&mut self) -> ShareStats {
        std::mem::take(&mut self.stats)
    }

    /// Records acquired and records available again now.
    pub(crate) fn in_flight_counts(&self) -> (usize, usize) {
        self.in_flight
            .values()
            .fold((0, 0), |(a, v), r| match r.state {
                RecordState::Acquired => (a + 1, v),
                RecordState::Available => (a, v + 1),
                _ => (a, v),
            })
    }

    /// The share-partition start offset.
    pub(crate) fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// Where fresh records are read from.
    pub(crate) fn next_fresh(&self) -> i64 {
        self.next_fresh
    }

    /// How many records in flight are in `state`.
    #[cfg(test)]
    pub(crate) fn count(&self, state: RecordState) -> usize {
        self.in_flight.values().filter(|r| r.state == state).count()
    }

    /// Whether anything is available to acquire without reading further in the log.
    #[cfg(test)]
    pub(crate) fn has_available(&self) -> bool {
        self.in_flight
            .values()
            .any(|r| r.state == RecordState::Available)
    }

    /// Whether fresh records may be taken: the offsets in flight are below the limit.
    pub(crate) fn has_room(&self) -> bool {
        self.next_fresh - self.start_offset < self.limits.max_in_flight
    }

    /// Moves past records the log no longer has (retention, DeleteRecords): what was in
    /// flight below the log start offset is gone.
    pub(crate) fn skip_to_log_start(&mut self, log_start_offset: i64) {
        if log_start_offset <= self.start_offset {
            return;
        }
        self.in_flight = self.in_flight.split_off(&log_start_offset);
        self.start_offset = log_start_offset;
        self.next_fresh = self.next_fresh.max(log_start_offset);
        self.advance_start();
    }

    /// Acquires for `member` records made available again, up to `max_records`; each
    /// is delivered once more.
    pub(crate) fn acquire_available(
        &mut self,
        member: &str,
        max_records: usize,
        lock_deadline: Instant,
    ) -> Vec<AcquiredRange> {
        let mut taken = Vec::new();
        for (offset, r) in self.in_flight.iter_mut() {
            if taken.len() >= max_records {
                break;
            }
            if r.state != RecordState::Available {
                continue;
            }
            r.state = RecordState::Acquired;
            r.delivery_count = r.delivery_count.saturating_add(1);
            r.member = Some(member.to_string());
            r.lock_deadline = Some(lock_deadline);
            taken.push((*offset, r.delivery_count));
        }
        self.stats.delivered += taken.len() as u64;
        self.stats.redelivered += taken.len() as u64;
        ranges(taken)
    }

    /// Acquires for `member` fresh records of `batches` (whole batches, in offset order,
    /// from the log at `next_fresh`), while fewer than `max_records` are taken and the
    /// partition has room; the last batch is taken whole.
    pub(crate) fn acquire_fresh(
        &mut self,
        member: &str,
        batches: &[LogBatch],
        max_records: usize,
        lock_deadline: Instant,
    ) -> Vec<AcquiredRange> {
        let mut taken = 0usize;
        let mut out = Vec::new();
        for b in batches {
            if taken >= max_records || !self.has_room() {
                break;
            }
            if b.last_offset < self.next_fresh {
                continue;
            }
            let first = b.base_offset.max(self.next_fresh);
            if b.aborted {
                for offset in first..=b.last_offset {
                    self.in_flight.insert(
                        offset,
                        InFlight {
                            state: RecordState::Archived,
                            delivery_count: 0,
                            member: None,
                            lock_deadline: None,
                        },
                    );
                }
                self.stats.archived += (b.last_offset - first + 1) as u64;
                self.next_fresh = b.last_offset + 1;
                continue;
            }
            for offset in first..=b.last_offset {
                self.in_flight.insert(
                    offset,
                    InFlight {
                        state: RecordState::Acquired,
                        delivery_count: 1,
                        member: Some(member.to_string()),
                        lock_deadline: Some(lock_deadline),
                    },
                );
            }
            taken += (b.last_offset - first + 1) as usize;
            self.stats.delivered += (b.last_offset - first + 1) as u64;
            self.next_fresh = b.last_offset + 1;
            out.push(AcquiredRange {
                first_offset: first,
                last_offset: b.last_offset,
                delivery_count: 1,
            });
        }
        self.advance_start();
        merge(out)
    }

    /// Applies one request's acknowledgements of the partition for `member`, all or
    /// none: `(first, last, types)` with one type for the range or one per offset.
    pub(crate) fn acknowledge(
        &mut self,
        member: &str,
        batches: &[(i64, i64, Vec<AckType>)],
    ) -> Result<(), AckError> {
        let mut changes = Vec::new();
        let mut previous_last = i64::MIN;
        for (first, last, types) in batches {
            let (first, last) = (*first, *last);
            let len = last.checked_sub(first).map(|d| d + 1).unwrap_or(0);
            if len <= 0 || first <= previous_last {
                return Err(AckError::InvalidRequest);
            }
            if types.len() != 1 && types.len() as i64 != len {
                return Err(AckError::InvalidRequest);
            }
            previous_last = last;
            for offset in first..=last {
                let ack = if types.len() == 1 {
                    types[0]
                } else {
                    types[(offset - first) as usize]
                };
                // Records before the start offset are done already.
                if offset < self.start_offset {
                    continue;
                }
                match self.in_flight.get(&offset) {
                    Some(r)
                        if r.state == RecordState::Acquired
                            && r.member.as_deref() == Some(member) => {}
                    _ => return Err(AckError::InvalidRecordState),
                }
                changes.push((offset, ack));
            }
        }
        for (offset, ack) in changes {
            let limit = self.limits.delivery_count_limit;
            if let Some(r) = self.in_flight.get_mut(&offset) {
                r.state = match ack {
                    AckType::Accept => RecordState::Acknowledged,
                    AckType::Release if r.delivery_count < limit => RecordState::Available,
                    AckType::Release | AckType::Reject | AckType::Gap => RecordState::Archived,
                };
                match r.state {
                    RecordState::Acknowledged => self.stats.acknowledged += 1,
                    RecordState::Archived => self.stats.archived += 1,
                    _ => {}
                }
                r.member = None;
                r.lock_deadline = None;
            }
        }
        self.advance_start();
        Ok(())
    }

    /// Makes what `member` holds available again (archived at the delivery limit): its
    /// session closed or its connection went. Returns how many records were released.
    pub(crate) fn release_member(&mut self, member: &str) -> usize {
        let released = self.release_where(|r| r.member.as_deref() == Some(member));
        self.advance_start();
        released
    }

    /// Releases records whose lock expired by `now`; returns how many.
    pub(crate) fn expire_locks(&mut self, now: Instant) -> usize {
        let released = self.release_where(|r| r.lock_deadline.is_some_and(|d| d <= now));
        self.advance_start();
        released
    }

    /// The earliest lock deadline, for the timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.in_flight
            .values()
            .filter_map(|r| r.lock_deadline)
            .min()
    }

    fn release_where(&mut self, held: impl Fn(&InFlight) -> bool) -> usize {
        let limit = self.limits.delivery_count_limit;
        let mut released = 0;
        for r in self.in_flight.values_mut() {
            if r.state != RecordState::Acquired || !held(r) {
                continue;
            }
            r.state = if r.delivery_count >= limit {
                self.stats.archived += 1;
                RecordState::Archived
            } else {
                RecordState::Available
            };
            r.member = None;
            r.lock_deadline = None;
            released += 1;
        }
        released
    }

    /// Moves the start offset past every done record at its front.
    fn advance_start(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if !entry.get().state.is_terminal() {
                break;
            }
            let offset = *entry.key();
            entry.remove();
            self.start_offset = offset + 1;
        }
        if self.in_flight.is_empty() {
            self.start_offset = self.start_offset.max(self.next_fresh);
        }
    }
}

/// Offsets with delivery counts as contiguous ranges of one count.
fn ranges(taken: Vec<(i64, i16)>) -> Vec<AcquiredRange> {
    merge(
        taken
            .into_iter()
            .map(|(o, c)| AcquiredRange {
                first_offset: o,
                last_offset: o,
                delivery_count: c,
            })
            .collect(),
    )
}

/// Joins adjacent ranges with the same delivery count.
fn merge(ranges: Vec<AcquiredRange>) -> Vec<AcquiredRange> {
    let mut out: Vec<AcquiredRange> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(prev)
                if prev.last_offset + 1 == r.first_offset
                    && prev.delivery_count == r.delivery_count =>
            {
                prev.last_offset = r.last_offset;
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
