//! Books rebuilt from the records and checked against the venue's own checksum on every
//! `Level2Delta` that carries one (Kraken v1/v2, OKX), with no venue ids needed (no I/O here).
//!
//! The two topics are separate, so their relative order is not in Kafka; it is in the
//! records' receipt times, which a feed stamps in the order it applies frames (one task reads
//! and applies, and a republished full book is stamped when it is built). From each full book
//! of a symbol (its own checksum checked when it carries one), the symbol's deltas (in their
//! topic's order) received at or after it and before the symbol's next full book are applied
//! (absolute quantities: a delta the book already holds changes nothing), the venue's depth
//! window kept, and the venue's checksum of the rebuilt book compared with the delta's. The
//! first disagreement ends the rebuild until the next full book (the book is unknown after a
//! hole); it is *announced* when a `FeedEvent` of the symbol (or of its whole connection)
//! other than `SYNCED` covers the time since the delta before it, else it makes the audit
//! unclean.

use serde::Serialize;

use super::records::{announced, BookAt, DeltaAt};
use crate::book::{OrderBook, Sequencer, Side};
use crate::schema::FeedEvent;

/// A record whose checksum the rebuilt book does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChecksumMismatch {
    /// Where the record is (partition, offset); a full book or a delta (see `record`).
    pub at: (i32, i64),
    /// `"level2_book"` (a full book disagreeing with its own checksum) or `"level2_delta"`.
    pub record: String,
    /// The record's receipt time, µs.
    pub receipt_us: i64,
    /// The venue's checksum the record carries, and the one of the rebuilt book.
    pub venue: u32,
    /// The checksum of the book rebuilt here.
    pub rebuilt: u32,
    /// Where the rebuild started (partition, offset of the full book).
    pub from: (i32, i64),
    /// The `FeedEvent` kinds that announced a loss there (empty: unannounced).
    pub announced_by: Vec<String>,
}

/// The checksum check of one symbol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChecksumCheck {
    /// Records (full books and deltas) whose checksum was compared with a rebuilt book.
    pub checked: u64,
    /// Of those, how many agreed.
    pub agreed: u64,
    /// Deltas with a checksum and no rebuilt book to check it on (before the first full
    /// book read, or after a disagreement until the next full book).
    pub without_book: u64,
    /// The disagreements, announced or not.
    pub mismatches: Vec<ChecksumMismatch>,
}

impl ChecksumCheck {
    /// Disagreements no `FeedEvent` announced.
    pub fn unannounced(&self) -> impl Iterator<Item = &ChecksumMismatch> {
        self.mismatches.iter().filter(|m| m.announced_by.is_empty())
    }
}

/// Parses a record's checksum text (`None` when absent or not a u32).
fn parse(c: Option<&str>) -> Option<u32> {
    c?.parse().ok()
}

/// Checks one symbol: its full books and deltas (each in topic order), its feed events and
/// its connection's, against `seq`'s checksum. Symbols of venues without a checksum give an
/// empty check.
pub fn check(
    books: &[&BookAt],
    deltas: &[&DeltaAt],
    events: &[&FeedEvent],
    seq: &dyn Sequencer,
) -> ChecksumCheck {
    let mut out = ChecksumCheck::default();
    if seq.checksum(&mut OrderBook::new()).is_none() {
        return out;
    }
    let mut starts: Vec<&BookAt> = books.to_vec();
    starts.sort_by_key(|b| b.book.receipt_time);
    // Index of the first delta not yet consumed by an earlier full book's window.
    let mut d = 0usize;
    // Deltas before the first full book have nothing to be applied to.
    let first_book = starts.first().map_or(i64::MAX, |b| b.book.receipt_time);
    while let Some(x) = deltas.get(d).filter(|x| x.delta.receipt_time < first_book) {
        out.without_book += u64::from(has_checksum(x));
        d += 1;
    }
    for (i, start) in starts.iter().enumerate() {
        let until = starts.get(i + 1).map_or(i64::MAX, |b| b.book.receipt_time);
        let mut book = if seq.ordered_book() {
            OrderBook::ordered()
        } else {
            OrderBook::new()
        };
        let mut ok = true;
        for l in &start.book.bids {
            ok &= book.apply(Side::Bid, &l.price, &l.quantity).is_ok();
        }
        for l in &start.book.asks {
            ok &= book.apply(Side::Ask, &l.price, &l.quantity).is_ok();
        }
        let mut alive = ok;
        let mut last_receipt = start.book.receipt_time;
        if let (true, Some(venue), Some(rebuilt)) = (
            ok,
            parse(start.book.checksum.as_deref()),
            seq.checksum(&mut book),
        ) {
            out.checked += 1;
            if venue == rebuilt {
                out.agreed += 1;
            } else {
                alive = false;
                out.mismatches.push(ChecksumMismatch {
                    at: (start.partition, start.offset),
                    record: "level2_book".into(),
                    receipt_us: start.book.receipt_time,
                    venue,
                    rebuilt,
                    from: (start.partition, start.offset),
                    // A full book is built from the kept book: nothing announces it wrong.
                    announced_by: Vec::new(),
                });
            }
        }
        while let Some(x) = deltas.get(d) {
            let delta = &x.delta;
            if delta.receipt_time >= until {
                break;
            }
            d += 1;
            if delta.receipt_time < start.book.receipt_time {
                // Before this book (a delta the previous window did not reach): held by it.
                continue;
            }
            if !alive {
                out.without_book += u64::from(has_checksum(x));
                continue;
            }
            for l in &delta.bids {
                alive &= book.apply(Side::Bid, &l.price, &l.quantity).is_ok();
            }
            for l in &delta.asks {
                alive &= book.apply(Side::Ask, &l.price, &l.quantity).is_ok();
            }
            if let Some(depth) = seq.max_depth() {
                book.truncate(depth);
            }
            let (Some(venue), Some(rebuilt)) =
                (parse(delta.checksum.as_deref()), seq.checksum(&mut book))
            else {
                last_receipt = delta.receipt_time;
                continue;
            };
            out.checked += 1;
            if alive && venue == rebuilt {
                out.agreed += 1;
            } else {
                alive = false;
                out.mismatches.push(ChecksumMismatch {
                    at: (x.partition, x.offset),
                    record: "level2_delta".into(),
                    receipt_us: delta.receipt_time,
                    venue,
                    rebuilt,
                    from: (start.partition, start.offset),
                    announced_by: announced(events, last_receipt, delta.receipt_time),
                });
            }
            last_receipt = delta.receipt_time;
        }
    }
    out
}

fn has_checksum(x: &DeltaAt) -> bool {
    x.delta.checksum.is_some()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::book::crc32_top_levels;
    use crate::schema::v2beta1::feed_event::Kind;
    use crate::schema::v2beta1::{level2_book, level2_delta};
    use crate::schema::{Level2Book, Level2Delta};

    /// Kraken's rule (top 10 levels, `.` and leading zeros removed), at a window of 10.
    #[derive(Debug)]
    struct Crc;
    impl Sequencer for Crc {
        fn source(&self) -> crate::book::SnapshotSource {
            crate::book::SnapshotSource::InBand
        }
        fn decide(&self, _: &crate::book::Diff, _: i64, _: bool) -> crate::book::Decision {
            crate::book::Decision::Apply
        }
        fn max_depth(&self) -> Option<usize> {
            Some(10)
        }
        fn checksum(&self, book: &mut OrderBook) -> Option<u32> {
            Some(crc32_top_levels(book, 10))
        }
    }

    /// CRC32 of a text typed by hand from Kraken's documented rule.
    fn crc(text: &str) -> String {
        crc32fast::hash(text.as_bytes()).to_string()
    }

    fn book(offset: i64, t: i64, bid: (&str, &str), ask: (&str, &str), sum: &str) -> BookAt {
        let lv = |(p, q): (&str, &str)| level2_book::PriceLevel {
            price: p.into(),
            quantity: q.into(),
        };
        BookAt {
            partition: 0,
            offset,
            book: Level2Book {
                exchange: "KRAKEN".into(),
                symbol: "BTC-USD".into(),
                bids: vec![lv(bid)],
                asks: vec![lv(ask)],
                checksum: Some(sum.into()),
                receipt_time: t,
                ..Default::default()
            },
        }
    }

    fn delta(offset: i64, t: i64, bid: (&str, &str), sum: &str) -> DeltaAt {
        DeltaAt {
            partition: 0,
            offset,
            delta: Level2Delta {
                exchange: "KRAKEN".into(),
                symbol: "BTC-USD".into(),
                bids: vec![level2_delta::PriceLevel {
                    price: bid.0.into(),
                    quantity: bid.1.into(),
                }],
                checksum: Some(sum.into()),
                receipt_time: t,
                ..Default::default()
            },
        }
    }

    fn lost(since: i64, at: i64) -> FeedEvent {
        FeedEvent {
            exchange: "KRAKEN".into(),
            kind: Kind::RecordLost as i32,
            since: Some(since),
            timestamp: at,
            receipt_time: at,
            ..Default::default()
        }
    }

    /// Book: ask 101.0 × 2.0, bid 100.0 × 1.0 → "1010" "20" then "1000" "10".
    /// Delta 1 sets bid 100.0 to 3.0 → "1010" "20" "1000" "30".
    /// Delta 2 adds bid 99.5 × 0.5 → "1010" "20" "1000" "30" "995" "5".
    fn stream() -> (BookAt, DeltaAt, DeltaAt) {
        (
            book(
                0,
                10,
                ("100.0", "1.0"),
                ("101.0", "2.0"),
                &crc("101020100010"),
            ),
            delta(0, 20, ("100.0", "3.0"), &crc("101020100030")),
            delta(1, 30, ("99.5", "0.5"), &crc("1010201000309955")),
        )
    }

    #[test]
    fn a_rebuilt_book_agrees_with_every_checksum() {
        let (b, d1, d2) = stream();
        let c = check(&[&b], &[&d1, &d2], &[], &Crc);
        assert_eq!((c.checked, c.agreed, c.without_book), (3, 3, 0));
        assert!(c.mismatches.is_empty());
    }

    #[test]
    fn a_removed_delta_is_an_unannounced_mismatch_at_the_next_one() {
        let (b, _d1, d2) = stream();
        let c = check(&[&b], &[&d2], &[], &Crc);
        assert_eq!(c.mismatches.len(), 1, "{c:?}");
        let m = &c.mismatches[0];
        assert_eq!(
            (m.at, m.record.as_str(), m.receipt_us),
            ((0, 1), "level2_delta", 30)
        );
        assert_eq!(m.venue.to_string(), crc("1010201000309955"));
        assert_eq!(m.rebuilt.to_string(), crc("1010201000109955"));
        assert!(m.announced_by.is_empty());
        assert_eq!(c.unannounced().count(), 1);
    }

    #[test]
    fn a_mismatch_inside_an_announced_interval_is_announced_and_stops_the_rebuild() {
        let (b, _d1, d2) = stream();
        let d3 = delta(2, 40, ("99.0", "1"), &crc("whatever"));
        let c = check(&[&b], &[&d2, &d3], &[&lost(15, 25)], &Crc);
        assert_eq!(c.mismatches.len(), 1);
        assert_eq!(
            c.mismatches[0].announced_by,
            vec!["RECORD_LOST".to_string()]
        );
        assert_eq!(c.unannounced().count(), 0);
        // The delta after the hole is not checked on an unknown book.
        assert_eq!(c.without_book, 1);
    }

    #[test]
    fn a_later_full_book_restarts_the_rebuild_and_deltas_before_a_book_wait() {
        let (b, _d1, d2) = stream();
        let early = delta(0, 5, ("1", "1"), &crc("x"));
        // A full book after the hole, holding delta 1's bid and delta 2's level.
        let again = book(
            1,
            35,
            ("100.0", "3.0"),
            ("101.0", "2.0"),
            &crc("101020100030"),
        );
        let d4 = delta(3, 50, ("99.0", "2.0"), &crc("10102010003099020"));
        let c = check(&[&b, &again], &[&early, &d2, &d4], &[], &Crc);
        assert_eq!(c.without_book, 1, "{c:?}");
        // Book 1, book 2 and delta 4 agree; delta 2 (after the removed delta 1) does not.
        assert_eq!((c.checked, c.agreed), (4, 3), "{c:?}");
        assert_eq!(c.mismatches[0].at, (0, 1));
    }

    #[test]
    fn venues_without_a_checksum_are_not_checked() {
        #[derive(Debug)]
        struct None_;
        impl Sequencer for None_ {
            fn source(&self) -> crate::book::SnapshotSource {
                crate::book::SnapshotSource::InBand
            }
            fn decide(&self, _: &crate::book::Diff, _: i64, _: bool) -> crate::book::Decision {
                crate::book::Decision::Apply
            }
        }
        let (b, d1, d2) = stream();
        assert_eq!(
            check(&[&b], &[&d1, &d2], &[], &None_),
            ChecksumCheck::default()
        );
    }
}
