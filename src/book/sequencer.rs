//! What a venue tells the generic book driver ([`crate::book::BookSync`]): where a book's
//! snapshot comes from, how continuity is checked, the venue's checksum, and what a break costs.
//! Each venue implements [`Sequencer`] in its own folder (`src/venues/<venue>/book.rs`).

use super::diff::Diff;
use super::levels::OrderBook;

/// Where a book's snapshot comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSource {
    /// A REST request; diffs are buffered until it arrives and bridged onto it (Binance).
    Rest,
    /// The WebSocket itself, right after subscribing (Kraken, OKX, Bybit, Deribit).
    InBand,
}

impl SnapshotSource {
    /// What a continuity break costs with this source: a REST refetch or a resubscribe.
    pub fn recovery(self) -> &'static str {
        match self {
            SnapshotSource::Rest => "rest_refetch",
            SnapshotSource::InBand => "resubscribe",
        }
    }
}

/// What the sequencer decides about one diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Older than the book: ignore it.
    Drop,
    /// Continues the book: apply it.
    Apply,
    /// Continuity broken: `expected` was due, `got` came.
    Gap {
        /// The id the rules expected.
        expected: i64,
        /// The id that came.
        got: i64,
    },
    /// The diff itself is impossible (`u < U`, an id past `i64::MAX`, an implausible jump):
    /// it is not applied and is counted with this reason.
    Reject(&'static str),
}

/// A venue's continuity rules for one kind of book. Stateless: the driver keeps the last id.
pub trait Sequencer: Send + Sync + std::fmt::Debug {
    /// Where snapshots come from.
    fn source(&self) -> SnapshotSource;

    /// The decision for `diff` given the last applied id; `bridged` is false while the book is
    /// still at its snapshot (the first diff after a REST snapshot has looser rules).
    fn decide(&self, diff: &Diff, last: i64, bridged: bool) -> Decision;

    /// Whether diffs carry venue update ids (written into `Level2Delta`); venues without ids
    /// (Kraken) rely on their checksum alone.
    fn has_ids(&self) -> bool {
        true
    }

    /// Levels the venue keeps per side; deeper levels are deleted after each update (Kraken's
    /// book is a window of the subscribed depth). `None` keeps every level.
    fn max_depth(&self) -> Option<usize> {
        None
    }

    /// Whether the book is read in price order after every update (a depth window or a
    /// top-N checksum): it then keeps its levels in a tree instead of a hash map.
    fn ordered_book(&self) -> bool {
        self.max_depth().is_some()
    }

    /// The venue's checksum of `book`, compared with the one a diff or snapshot carries.
    /// `None` when the venue has no checksum (or has deprecated it: say so in its folder).
    /// Takes the book mutably to refresh what it keeps for checksums
    /// ([`OrderBook::top_digits`]); it changes no level.
    fn checksum(&self, book: &mut OrderBook) -> Option<u32> {
        let _ = book;
        None
    }
}

/// The checksum Kraken (v1 and v2) and others of its family use: CRC32 of the concatenated
/// `price` and `quantity` texts of the top `n` asks (best first) then the top `n` bids, each
/// with its `.` removed and leading zeros stripped.
pub fn crc32_top_levels(book: &mut OrderBook, n: usize) -> u32 {
    use super::levels::Side;
    // The asks' CRC is kept with their text: continued over the bids' text.
    let mut h = crc32fast::Hasher::new_with_initial(book.top_digits_crc32(Side::Ask, n));
    h.update(book.top_digits(Side::Bid, n));
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::levels::Side;

    #[test]
    fn checksum_text_drops_points_and_leading_zeros_only() {
        let mut book = OrderBook::ordered();
        book.apply(Side::Ask, "0.05005", "0.00100").unwrap();
        book.apply(Side::Ask, "100.0", "10").unwrap();
        book.apply(Side::Bid, "0.0500", "000.5").unwrap();
        // Asks best first, then bids: "5005" "100" | "1000" "10" | "500" "5".
        let text = b"50051001000105005";
        assert_eq!(crc32_top_levels(&mut book, 10), crc32fast::hash(text));
        // Only the best level per side.
        assert_eq!(
            crc32_top_levels(&mut book, 1),
            crc32fast::hash(b"50051005005")
        );
        // Long levels (10 bids of 60 digits): the kept text holds them whole, same CRC.
        let mut long = OrderBook::ordered();
        let mut text = String::new();
        for i in 1..=10u32 {
            let quantity = format!("{i}{}", "7".repeat(39));
            let price = format!("{i}.{}", "1".repeat(18));
            long.apply(Side::Bid, &price, &quantity).unwrap();
            text.insert_str(0, &format!("{}{quantity}", price.replace('.', "")));
        }
        assert_eq!(
            crc32_top_levels(&mut long, 10),
            crc32fast::hash(text.as_bytes())
        );
    }
}
