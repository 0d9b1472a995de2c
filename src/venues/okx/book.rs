//! OKX's book rules, in two sequencers (one per [`BookMode`]), and the one the feed holds
//! ([`OkxBook`]), which follows the venue value's mode.
//!
//! **REST mode** ([`OkxRestBook`], OKX's documentation since 2026): no snapshot comes over the
//! WebSocket; the book starts from `GET /api/v5/market/books` (its `seqId`). Buffered events
//! at or before the snapshot (`seqId <= snapshot seqId`) are dropped; the first one applied
//! must bracket it (`prevSeqId <= snapshot seqId < seqId`), otherwise the snapshot is older
//! than the stream and is fetched again. After it, every message's `prevSeqId` must equal the
//! last applied `seqId`: this covers OKX's documented special cases, a quiet-book message
//! (`bids`/`asks` empty, `seqId == prevSeqId` == the last one) and a sequence reset after
//! maintenance (`seqId < prevSeqId`, its `prevSeqId` still the last one). Anything else is a
//! break: the book is dropped and refetched. The `checksum` is 0 from 2026-06-23 and is not
//! read.
//!
//! **In-band mode** ([`OkxInBandBook`], OKX before August 2026, the 2022 recordings): the
//! snapshot (`action: snapshot`, `prevSeqId: -1` where ids are sent) comes right after
//! subscribing; every message carries a signed CRC32 of the top 25 levels ([`okx_crc32`]),
//! checked after each update (a `checksum` of 0 is not checked: OKX sends 0 once the field is
//! retired). Messages with `seqId`/`prevSeqId` are chained as in REST mode; the 2022
//! recordings predate the ids, and their checksum is their only check. A break costs an
//! unsubscribe + subscribe of that book.

use crate::book::{Decision, Diff, OrderBook, Sequencer, Side, SnapshotSource};

use super::{BookMode, SharedMode};

/// Levels per side OKX's checksum covers.
pub const CHECKSUM_LEVELS: usize = 25;

/// OKX's checksum: the top 25 bids and asks interleaved (`bid:qty:ask:qty:…`, best first;
/// where one side is shorter, the other's levels follow alone), price and size texts exactly
/// as OKX sent them, joined by `:`, CRC32 read as a signed 32-bit integer. Returned as the
/// same 32 bits unsigned (compare with `checksum as i32 as u32`).
pub fn okx_crc32(book: &OrderBook) -> u32 {
    let bids = book.top(Side::Bid, CHECKSUM_LEVELS);
    let asks = book.top(Side::Ask, CHECKSUM_LEVELS);
    let mut h = crc32fast::Hasher::new();
    let mut first = true;
    let mut put = |p: &str, q: &str| {
        if !first {
            h.update(b":");
        }
        first = false;
        h.update(p.as_bytes());
        h.update(b":");
        h.update(q.as_bytes());
    };
    for i in 0..CHECKSUM_LEVELS {
        if let Some((p, q)) = bids.get(i) {
            put(p, q);
        }
        if let Some((p, q)) = asks.get(i) {
            put(p, q);
        }
    }
    h.finalize()
}

/// `seqId`/`prevSeqId` continuity shared by both modes, for a message carrying them.
fn chain(prev: i64, diff: &Diff, last: i64, bridged: bool) -> Decision {
    if !bridged {
        // At the snapshot: drop what it holds; the first applied event brackets it.
        if diff.last <= last {
            Decision::Drop
        } else if prev <= last {
            Decision::Apply
        } else {
            Decision::Gap {
                expected: last,
                got: prev,
            }
        }
    } else if prev == last {
        // Normal, quiet book (seqId == prevSeqId), or a reset (seqId < prevSeqId).
        Decision::Apply
    } else if diff.last <= last && prev < diff.last {
        // A message already applied (an older one again).
        Decision::Drop
    } else {
        Decision::Gap {
            expected: last,
            got: prev,
        }
    }
}

/// OKX's REST-bootstrap book (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkxRestBook;

impl Sequencer for OkxRestBook {
    fn source(&self) -> SnapshotSource {
        SnapshotSource::Rest
    }

    fn decide(&self, diff: &Diff, last: i64, bridged: bool) -> Decision {
        match diff.prev {
            Some(prev) => chain(prev, diff, last, bridged),
            None => Decision::Reject("book message without seqId/prevSeqId"),
        }
    }
}

/// OKX's in-band book with its CRC32 (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkxInBandBook;

impl Sequencer for OkxInBandBook {
    fn source(&self) -> SnapshotSource {
        SnapshotSource::InBand
    }

    fn decide(&self, diff: &Diff, last: i64, bridged: bool) -> Decision {
        let _ = bridged;
        match diff.prev {
            // After an in-band snapshot with a `seqId`, the next `prevSeqId` is that id.
            Some(prev) if last > 0 => chain(prev, diff, last, true),
            // The 2022 recordings carry no ids: the checksum is the only check.
            _ => Decision::Apply,
        }
    }

    /// Ids are not written into the records in this mode (the recordings have none).
    fn has_ids(&self) -> bool {
        false
    }

    fn ordered_book(&self) -> bool {
        true
    }

    fn checksum(&self, book: &mut OrderBook) -> Option<u32> {
        Some(okx_crc32(book))
    }
}

/// The sequencer a feed holds: [`OkxRestBook`] or [`OkxInBandBook`] as the venue value's
/// mode says (set from the connection's URL when its session is built).
#[derive(Debug, Clone)]
pub struct OkxBook {
    mode: SharedMode,
}

impl OkxBook {
    /// Rules following `mode`.
    pub fn new(mode: SharedMode) -> OkxBook {
        OkxBook { mode }
    }

    fn rules(&self) -> &'static dyn Sequencer {
        match self.mode.get() {
            BookMode::Rest => &OkxRestBook,
            BookMode::InBand => &OkxInBandBook,
        }
    }
}

impl Sequencer for OkxBook {
    fn source(&self) -> SnapshotSource {
        self.rules().source()
    }

    fn decide(&self, diff: &Diff, last: i64, bridged: bool) -> Decision {
        self.rules().decide(diff, last, bridged)
    }

    /// Ordered in both modes (the in-band checksum reads the top 25; the mode may change after
    /// a book was built).
    fn has_ids(&self) -> bool {
        self.rules().has_ids()
    }

    fn ordered_book(&self) -> bool {
        true
    }

    fn checksum(&self, book: &mut OrderBook) -> Option<u32> {
        self.rules().checksum(book)
    }
}
