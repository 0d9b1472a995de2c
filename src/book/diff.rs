//! One depth diff as the venue sent it, shared by the sequencers and the driver.

use crate::schema::borrowed::Levels;

/// One depth diff (owned).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// First update id in the diff (Binance `U`; 0 where the venue has no ids).
    pub first: i64,
    /// Final update id in the diff (Binance `u`, OKX `seqId`, Deribit `change_id`).
    pub last: i64,
    /// Previous diff's final update id (Binance futures `pu`, OKX `prevSeqId`, Deribit
    /// `prev_change_id`).
    pub prev: Option<i64>,
    /// Bid levels (price, absolute quantity).
    pub bids: Levels,
    /// Ask levels (price, absolute quantity).
    pub asks: Levels,
    /// The venue's checksum of the book after this diff (Kraken, OKX).
    pub checksum: Option<u32>,
    /// Venue event time, µs.
    pub event_time: Option<i64>,
    /// Venue transaction time, µs (futures `T`).
    pub timestamp: Option<i64>,
    /// Local receipt time, µs.
    pub receipt_time: i64,
}

/// Bytes of a [`Levels`] index entry per level (where its price and quantity end).
pub const LEVEL_INDEX_BYTES: usize = 2 * std::mem::size_of::<usize>();

impl Diff {
    /// Bytes the diff holds while buffered: the struct itself (its slot in the buffer), its
    /// levels' text and their per-level index. The snapshot-wait buffers' memory bounds count
    /// these.
    pub fn buffered_bytes(&self) -> usize {
        std::mem::size_of::<Diff>()
            + self.bids.text_len()
            + self.asks.text_len()
            + (self.bids.len() + self.asks.len()) * LEVEL_INDEX_BYTES
            + self.bids.key_bytes()
            + self.asks.key_bytes()
    }
}
