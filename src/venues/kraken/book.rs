//! Kraken's book rules (v1 and v2 alike): the snapshot comes in band right after subscribing;
//! updates carry no ids, every one applies; after each update the book is truncated to the
//! subscribed depth (Kraken sends no deletes for levels that fall out of the window); the
//! CRC32 checksum of the top 10 levels per side, carried by every update (v1) or every
//! message (v2), is the only continuity check. A break costs a resubscribe of that pair's book
//! ([`crate::venues::VenueSession::resubscribe_book`]), which brings a fresh snapshot.

use crate::book::{crc32_top_levels, Decision, Diff, OrderBook, Sequencer, SnapshotSource};

/// Book depths Kraken accepts (both API versions).
pub const DEPTHS: [u32; 5] = [10, 25, 100, 500, 1000];

/// The depth subscribed for a configured depth: the smallest Kraken depth that covers it
/// (1000 at most).
pub fn venue_depth(configured: u32) -> u32 {
    DEPTHS
        .iter()
        .copied()
        .find(|d| *d >= configured)
        .unwrap_or(1000)
}

/// Levels per side the checksum covers.
pub const CHECKSUM_LEVELS: usize = 10;

/// Kraken's sequencer for books of one subscribed depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KrakenBook {
    depth: u32,
}

impl KrakenBook {
    /// Rules for a book subscribed for `configured` levels (rounded up to a Kraken depth).
    pub fn new(configured: u32) -> KrakenBook {
        KrakenBook {
            depth: venue_depth(configured),
        }
    }

    /// The subscribed depth.
    pub fn depth(&self) -> u32 {
        self.depth
    }
}

impl Sequencer for KrakenBook {
    fn source(&self) -> SnapshotSource {
        SnapshotSource::InBand
    }

    fn decide(&self, _diff: &Diff, _last: i64, _bridged: bool) -> Decision {
        Decision::Apply
    }

    fn has_ids(&self) -> bool {
        false
    }

    fn max_depth(&self) -> Option<usize> {
        Some(self.depth as usize)
    }

    fn checksum(&self, book: &mut OrderBook) -> Option<u32> {
        Some(crc32_top_levels(book, CHECKSUM_LEVELS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_round_up_to_kraken_depths() {
        assert_eq!(venue_depth(0), 10);
        assert_eq!(venue_depth(10), 10);
        assert_eq!(venue_depth(11), 25);
        assert_eq!(venue_depth(1000), 1000);
        assert_eq!(venue_depth(5000), 1000);
        assert_eq!(KrakenBook::new(20).max_depth(), Some(25));
    }
}
