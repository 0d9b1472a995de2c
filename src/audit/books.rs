//! Books rebuilt from the records: every `Level2Book` of a symbol, plus the `Level2Delta`s after
//! it, must give the next `Level2Book` of that symbol (no I/O here).
//!
//! Only venue ids make the two topics comparable (they are separate topics, so their relative
//! order is not in Kafka): from a full book with `last_update_id = L`, the deltas (in their
//! topic's order) that continue the chain from `L` are applied until the chain reaches the next
//! full book's id `L'`. If it lands exactly on `L'`, the rebuilt book and the full book are
//! compared; if not (a break, which the chain check reports, or a delta spanning `L'`), the
//! pair is counted as not comparable. Books without ids (Kraken, BitMEX, Coinbase) are not
//! compared here; where the venue has a checksum (Kraken) `super::checksums` checks them.
//!
//! A full book may be a venue's top levels only (a REST snapshot of 1 000 levels, a depth
//! window): levels outside the price range the starting book covers cannot be known from it,
//! so only prices inside both books' covered ranges are compared; there every level must agree
//! exactly (same decimal text of quantity; absent on one side is a difference).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::records::{continues, BookAt, DeltaAt};
use crate::schema::v2beta1::level2_book;

/// A full book the rebuilt book does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookMismatch {
    /// The venue id both books are at.
    pub last_update_id: i64,
    /// Where the full book is (partition, offset).
    pub at: (i32, i64),
    /// Where the rebuild started (partition, offset of the earlier full book).
    pub from: (i32, i64),
    /// The first differing level: side, price, the full book's quantity, the rebuilt one's.
    pub first_difference: (String, String, Option<String>, Option<String>),
}

/// The book comparison of one symbol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BookCheck {
    /// Full books compared with a book rebuilt from the one before and the deltas between.
    pub compared: u64,
    /// Of those, how many agreed at every comparable level.
    pub agreed: u64,
    /// Pairs whose delta chain did not land exactly on the later book's id (or without ids).
    pub not_comparable: u64,
    /// The ones that did not agree.
    pub mismatches: Vec<BookMismatch>,
}

type Side = BTreeMap<Decimal, String>;

fn side_of(levels: &[level2_book::PriceLevel]) -> Option<Side> {
    let mut s = Side::new();
    for l in levels {
        let p: Decimal = l.price.parse().ok()?;
        s.insert(p, l.quantity.clone());
    }
    Some(s)
}

fn apply(side: &mut Side, price: &str, quantity: &str) -> Option<()> {
    let p: Decimal = price.parse().ok()?;
    let q: Decimal = quantity.parse().ok()?;
    if q.is_zero() {
        side.remove(&p);
    } else {
        side.insert(p, quantity.to_string());
    }
    Some(())
}

/// The price range a book's side covers (`None` when empty).
fn range(s: &Side) -> Option<(Decimal, Decimal)> {
    Some((*s.keys().next()?, *s.keys().next_back()?))
}

/// The first level inside `within` where `full` and `rebuilt` differ.
fn first_difference(
    name: &str,
    full: &Side,
    rebuilt: &Side,
    within: Option<(Decimal, Decimal)>,
) -> Option<(String, String, Option<String>, Option<String>)> {
    let (lo, hi) = within?;
    let prices: std::collections::BTreeSet<&Decimal> = full
        .range(lo..=hi)
        .chain(rebuilt.range(lo..=hi))
        .map(|(p, _)| p)
        .collect();
    prices.into_iter().find_map(|p| {
        let (a, b) = (full.get(p), rebuilt.get(p));
        let same = match (a, b) {
            (Some(x), Some(y)) => x.parse::<Decimal>().ok() == y.parse::<Decimal>().ok(),
            (None, None) => true,
            _ => false,
        };
        (!same).then(|| (name.to_string(), p.to_string(), a.cloned(), b.cloned()))
    })
}

fn intersect(
    a: Option<(Decimal, Decimal)>,
    b: Option<(Decimal, Decimal)>,
) -> Option<(Decimal, Decimal)> {
    let ((a0, a1), (b0, b1)) = (a?, b?);
    let (lo, hi) = (a0.max(b0), a1.min(b1));
    (lo <= hi).then_some((lo, hi))
}

/// Compares each full book of one symbol (in topic order) with the book rebuilt from the one
/// before it and the deltas (in topic order) between them.
pub fn check(books: &[&BookAt], deltas: &[&DeltaAt]) -> BookCheck {
    let mut out = BookCheck::default();
    let mut cursor = 0usize;
    for pair in books.windows(2) {
        let (start, next) = (pair[0], pair[1]);
        let (Some(from_id), Some(to_id)) = (start.book.last_update_id, next.book.last_update_id)
        else {
            out.not_comparable += 1;
            continue;
        };
        let (Some(mut bids), Some(mut asks)) =
            (side_of(&start.book.bids), side_of(&start.book.asks))
        else {
            out.not_comparable += 1;
            continue;
        };
        let covered = (range(&bids), range(&asks));
        // Deltas are in id order within an incarnation: skip those at or before the start.
        while deltas
            .get(cursor)
            .is_some_and(|d| d.delta.last_update_id.is_some_and(|u| u <= from_id))
        {
            cursor += 1;
        }
        let mut last = from_id;
        let mut ok = true;
        let mut i = cursor;
        while last < to_id {
            let Some(d) = deltas.get(i) else { break };
            let delta = &d.delta;
            let Some(end) = delta.last_update_id else {
                ok = false;
                break;
            };
            if end <= last {
                i += 1;
                continue;
            }
            if !continues(last, delta) {
                ok = false;
                break;
            }
            for l in &delta.bids {
                ok &= apply(&mut bids, &l.price, &l.quantity).is_some();
            }
            for l in &delta.asks {
                ok &= apply(&mut asks, &l.price, &l.quantity).is_some();
            }
            last = end;
            i += 1;
        }
        if !ok || last != to_id {
            out.not_comparable += 1;
            continue;
        }
        let (Some(full_bids), Some(full_asks)) =
            (side_of(&next.book.bids), side_of(&next.book.asks))
        else {
            out.not_comparable += 1;
            continue;
        };
        out.compared += 1;
        let diff = first_difference(
            "bid",
            &full_bids,
            &bids,
            intersect(covered.0, range(&full_bids)),
        )
        .or_else(|| {
            first_difference(
                "ask",
                &full_asks,
                &asks,
                intersect(covered.1, range(&full_asks)),
            )
        });
        match diff {
            None => out.agreed += 1,
            Some(first_difference) => out.mismatches.push(BookMismatch {
                last_update_id: to_id,
                at: (next.partition, next.offset),
                from: (start.partition, start.offset),
                first_difference,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::v2beta1::level2_delta;
    use crate::schema::{Level2Book, Level2Delta};

    fn lv(p: &str, q: &str) -> level2_book::PriceLevel {
        level2_book::PriceLevel {
            price: p.into(),
            quantity: q.into(),
        }
    }

    fn book(offset: i64, id: i64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> BookAt {
        BookAt {
            partition: 0,
            offset,
            book: Level2Book {
                exchange: "BINANCE".into(),
                symbol: "BTC-USDT".into(),
                bids: bids.iter().map(|(p, q)| lv(p, q)).collect(),
                asks: asks.iter().map(|(p, q)| lv(p, q)).collect(),
                last_update_id: Some(id),
                ..Level2Book::default()
            },
        }
    }

    fn delta(offset: i64, first: i64, last: i64, bids: &[(&str, &str)]) -> DeltaAt {
        DeltaAt {
            partition: 0,
            offset,
            delta: Level2Delta {
                exchange: "BINANCE".into(),
                symbol: "BTC-USDT".into(),
                bids: bids
                    .iter()
                    .map(|(p, q)| level2_delta::PriceLevel {
                        price: p.to_string(),
                        quantity: q.to_string(),
                    })
                    .collect(),
                first_update_id: Some(first),
                last_update_id: Some(last),
                ..Level2Delta::default()
            },
        }
    }

    #[test]
    fn a_book_rebuilt_from_the_one_before_and_its_deltas_agrees_or_names_the_level() {
        // Book at 100: bids 99.0 × 1, 98.0 × 2; asks 101.0 × 1.
        let b0 = book(0, 100, &[("99.0", "1"), ("98.0", "2")], &[("101.0", "1")]);
        // 101..=102 sets 99.0 to 3; 103..=105 removes 98.0 and adds 98.5 × 0.5.
        let d = [
            delta(0, 101, 102, &[("99.0", "3")]),
            delta(1, 103, 105, &[("98.0", "0"), ("98.5", "0.5")]),
        ];
        let ds: Vec<&DeltaAt> = d.iter().collect();
        // The venue's book at 105, typed by hand: bids 99.0 × 3, 98.5 × 0.5; asks as before
        // ("1.0" is the same quantity as "1").
        let good = book(
            1,
            105,
            &[("99.0", "3"), ("98.5", "0.50")],
            &[("101.0", "1.0")],
        );
        let r = check(&[&b0, &good], &ds);
        assert_eq!((r.compared, r.agreed, r.not_comparable), (1, 1, 0));
        // A book at 105 that still shows 98.0: named, with both quantities.
        let bad = book(
            2,
            105,
            &[("99.0", "3"), ("98.5", "0.5"), ("98.0", "2")],
            &[("101.0", "1")],
        );
        let r = check(&[&b0, &bad], &ds);
        assert_eq!((r.compared, r.agreed), (1, 0));
        assert_eq!(
            r.mismatches,
            vec![BookMismatch {
                last_update_id: 105,
                at: (0, 2),
                from: (0, 0),
                first_difference: ("bid".into(), "98.0".into(), Some("2".into()), None),
            }]
        );
        // Levels below what the starting book covered (97.0) are not judged.
        let deeper = book(
            3,
            105,
            &[("99.0", "3"), ("98.5", "0.5"), ("97.0", "4")],
            &[("101.0", "1")],
        );
        assert_eq!(check(&[&b0, &deeper], &ds).agreed, 1);
    }

    #[test]
    fn a_chain_that_does_not_land_on_the_next_id_is_not_compared() {
        let b0 = book(0, 100, &[("99.0", "1")], &[("101.0", "1")]);
        let b1 = book(1, 104, &[("99.0", "7")], &[("101.0", "1")]);
        // 101..=102 then 105..=106: 103..=104 is missing.
        let d = [
            delta(0, 101, 102, &[("99.0", "3")]),
            delta(1, 105, 106, &[]),
        ];
        let ds: Vec<&DeltaAt> = d.iter().collect();
        let r = check(&[&b0, &b1], &ds);
        assert_eq!((r.compared, r.not_comparable), (0, 1));
    }
}
