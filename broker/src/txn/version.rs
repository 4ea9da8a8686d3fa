//! Which transaction protocol a client speaks.

/// The transaction protocol a client speaks (KIP-890's `transaction.version`), as the
/// request versions it uses tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnVersion {
    /// Partitions added by AddPartitionsToTxn; the epoch stays for the producer's life.
    V1,
    /// Partitions added by the first Produce or TxnOffsetCommit; every transaction end
    /// bumps the producer epoch (EndTxn v5+, Produce v12+, TxnOffsetCommit v5+).
    V2,
}

impl TxnVersion {
    /// `ClientTransactionVersion` of `__transaction_state` (0 is Kafka's for old clients).
    pub(super) fn record_code(self) -> i16 {
        match self {
            TxnVersion::V1 => 0,
            TxnVersion::V2 => 2,
        }
    }
}
