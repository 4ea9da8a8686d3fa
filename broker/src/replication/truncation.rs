//! Where a follower truncates after the leader reports that its log diverged (Fetch's
//! diverging epoch, KIP-320), as Kafka's `AbstractFetcherThread.getOffsetTruncationState`.

/// An epoch and the end offset of that epoch, as OffsetForLeaderEpoch answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEndOffset {
    /// The epoch (-1: undefined).
    pub(crate) epoch: i32,
    /// The end offset of the epoch (-1: undefined).
    pub(crate) end_offset: i64,
}

/// Where to truncate, and whether that settles the divergence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncation {
    /// Truncate the log to this offset (a no-op at or past the log end offset).
    pub(crate) offset: i64,
    /// False when the follower's epoch differs from the leader's: the next fetch,
    /// with the follower's new last epoch, will find the rest.
    pub(crate) complete: bool,
}

/// The truncation for the leader's answer `leader`, given the follower's own end offset
/// for that epoch (`follower`), its log end offset and its high watermark.
pub(crate) fn truncation(
    leader: EpochEndOffset,
    follower: EpochEndOffset,
    log_end_offset: i64,
    high_watermark: i64,
) -> Truncation {
    if leader.end_offset < 0 {
        // The leader knows nothing of the epoch: fall back to what is committed.
        return Truncation {
            offset: high_watermark.min(log_end_offset),
            complete: true,
        };
    }
    if leader.epoch < 0 || follower.end_offset < 0 {
        return Truncation {
            offset: leader.end_offset.min(log_end_offset),
            complete: true,
        };
    }
    if follower.epoch != leader.epoch {
        // The follower has no batches of the leader's epoch: cut to where its own
        // largest earlier epoch ends and ask again.
        return Truncation {
            offset: follower.end_offset.min(log_end_offset),
            complete: false,
        };
    }
    Truncation {
        offset: leader
            .end_offset
            .min(follower.end_offset)
            .min(log_end_offset),
        complete: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eo(epoch: i32, end_offset: i64) -> EpochEndOffset {
        EpochEndOffset { epoch, end_offset }
    }

    #[test]
    fn same_epoch_cuts_at_the_smaller_end() {
        // The follower wrote 0..120 in epoch 3 as leader; the new leader kept 0..100 of it.
        assert_eq!(
            truncation(eo(3, 100), eo(3, 120), 120, 90),
            Truncation {
                offset: 100,
                complete: true
            }
        );
        assert_eq!(
            truncation(eo(3, 130), eo(3, 120), 120, 90),
            Truncation {
                offset: 120,
                complete: true
            },
            "nothing diverged"
        );
    }

    #[test]
    fn a_different_epoch_cuts_to_the_followers_epoch_end_and_asks_again() {
        // The leader's largest epoch not above the follower's 5 is 4; the follower never
        // had epoch 4 and its largest below is 2, ending at 80.
        assert_eq!(
            truncation(eo(4, 95), eo(2, 80), 120, 60),
            Truncation {
                offset: 80,
                complete: false
            }
        );
    }

    #[test]
    fn undefined_answers_fall_back() {
        assert_eq!(
            truncation(eo(-1, -1), eo(3, 120), 120, 90),
            Truncation {
                offset: 90,
                complete: true
            },
            "the leader knows no such epoch: truncate to the high watermark"
        );
        assert_eq!(
            truncation(eo(-1, 70), eo(3, 120), 120, 90),
            Truncation {
                offset: 70,
                complete: true
            }
        );
        assert_eq!(
            truncation(eo(3, 100), eo(-1, -1), 120, 90),
            Truncation {
                offset: 100,
                complete: true
            }
        );
    }
}
