//! The checks of `tickflow audit`, on records already read and decoded (no I/O here).
//!
//! Per (exchange, symbol), the `Level2Delta`s are walked in their topic's order (one key,
//! one partition: the order they were produced in). A delta continues the chain when its
//! venue ids follow the previous state: `prev_update_id` equals the last id (Binance USD-M
//! `pu`), or `first_update_id <= last + 1 <= last_update_id` (Binance spot `U`/`u`, and the
//! first diff after a snapshot). A `SYNCED` `FeedEvent` of the symbol sets the state to its
//! `got_id` and starts a new interval. A delta that does not continue the chain is a
//! *break*; it is *announced* when a `FeedEvent` of the symbol (or one of the whole
//! connection, with no symbol) other than `SYNCED` falls between the two deltas in time
//! (its `since`..`timestamp` interval overlaps theirs), or a `SYNCED` there restarts the
//! chain exactly at the delta. Deltas without venue ids cannot be checked by ids and are
//! counted as such. Trades are checked for duplicates by their venue id (exchange, symbol,
//! trade type, trade id); trades without one (Kraken v1) are counted, not checked. Full books are compared with the book the records before them
//! rebuild ([`super::books`]), and books rebuilt from the records are checked against the
//! venue's checksum on every record that carries one ([`super::checksums`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::books::BookCheck;
use super::checksums::ChecksumCheck;
use super::records::{announced, kind_name};
pub use super::records::{continues, BookAt, DeltaAt, TradeAt};
use crate::book::Sequencer;
use crate::schema::v2beta1::feed_event::Kind;
use crate::schema::FeedEvent;

/// One break of a symbol's delta chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The last venue id before the break (`None`: unknown).
    pub after_id: Option<i64>,
    /// The first venue id of the delta that does not continue it.
    pub first_id: Option<i64>,
    /// Where that delta is (partition, offset).
    pub at: (i32, i64),
    /// Receipt times (µs) of the delta before and the delta after the break.
    pub between_us: (i64, i64),
    /// The `FeedEvent` kinds that announced it (empty: unannounced).
    pub announced_by: Vec<String>,
}

/// An interval whose delta chain is contiguous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interval {
    /// First and last venue ids covered.
    pub ids: (i64, i64),
    /// Receipt times (µs) of its first and last delta.
    pub receipt_us: (i64, i64),
    /// Deltas in it.
    pub deltas: u64,
    /// Whether it began at a `SYNCED` event (else at the first delta read).
    pub from_synced: bool,
}

/// A venue trade id found more than once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    /// Trade type (empty when none) and venue trade id.
    pub trade: (String, String),
    /// Where each copy is (partition, offset).
    pub at: Vec<(i32, i64)>,
}

/// What the audit found for one (exchange, symbol).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SymbolReport {
    /// Contiguous intervals, in order.
    pub intervals: Vec<Interval>,
    /// Breaks, in order.
    pub breaks: Vec<Break>,
    /// Deltas without venue ids (not checked by ids).
    pub unchecked_deltas: u64,
    /// `FeedEvent`s of the symbol, by kind.
    pub feed_events: BTreeMap<String, u64>,
    /// Trades read.
    pub trades: u64,
    /// Of those, trades without a venue id (Kraken v1): not checked for duplicates.
    pub trades_without_id: u64,
    /// Trade ids found more than once.
    pub duplicate_trades: Vec<Duplicate>,
    /// Full books compared with the book rebuilt from the one before and the deltas between.
    pub books: BookCheck,
    /// Records checked against the venue's checksum of the book rebuilt from the records.
    pub checksums: ChecksumCheck,
}

impl SymbolReport {
    /// Breaks no `FeedEvent` announced.
    pub fn unannounced(&self) -> impl Iterator<Item = &Break> {
        self.breaks.iter().filter(|b| b.announced_by.is_empty())
    }

    /// Whether anything here is unannounced (a break, a duplicate trade, a full book that
    /// the records before it do not rebuild, or a venue checksum they do not give).
    pub fn is_clean(&self) -> bool {
        self.unannounced().next().is_none()
            && self.duplicate_trades.is_empty()
            && self.books.mismatches.is_empty()
            && self.checksums.unannounced().next().is_none()
    }
}

/// The whole audit, per (exchange, symbol).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Per `EXCHANGE:SYMBOL`.
    pub symbols: BTreeMap<String, SymbolReport>,
    /// Unannounced breaks, all symbols.
    pub unannounced_breaks: u64,
    /// Duplicate trade ids, all symbols.
    pub duplicate_trades: u64,
    /// Full books the records before them do not rebuild, all symbols.
    pub book_mismatches: u64,
    /// Records whose venue checksum the rebuilt book does not give, unannounced, all symbols.
    pub checksum_mismatches: u64,
}

impl Report {
    /// Whether nothing unannounced was found.
    pub fn is_clean(&self) -> bool {
        self.unannounced_breaks == 0
            && self.duplicate_trades == 0
            && self.book_mismatches == 0
            && self.checksum_mismatches == 0
    }
}

/// A trade's venue identity: exchange, symbol, trade type (empty when none), trade id.
type TradeKey = (String, String, String, String);

fn key(exchange: &str, symbol: &str) -> String {
    format!("{exchange}:{symbol}")
}

/// The venue rules (checksum, depth window) of an (exchange, symbol), when known.
pub type Rules<'a> = &'a dyn Fn(&str, &str) -> Option<std::sync::Arc<dyn Sequencer>>;

/// Audits deltas and full books (each in topic order), feed events and trades; `rules` gives
/// the venue's checksum of a symbol's book.
pub fn audit(
    deltas: &[DeltaAt],
    books: &[BookAt],
    events: &[FeedEvent],
    trades: &[TradeAt],
    rules: Rules<'_>,
) -> Report {
    let mut report = Report::default();
    // Feed events per symbol, and the connection-wide ones (no symbol) per exchange.
    let mut by_symbol: BTreeMap<String, Vec<&FeedEvent>> = BTreeMap::new();
    let mut by_exchange: BTreeMap<&str, Vec<&FeedEvent>> = BTreeMap::new();
    for e in events {
        if e.symbol.is_empty() {
            by_exchange.entry(&e.exchange).or_default().push(e);
        } else {
            let k = key(&e.exchange, &e.symbol);
            *report
                .symbols
                .entry(k.clone())
                .or_default()
                .feed_events
                .entry(kind_name(e.kind))
                .or_default() += 1;
            by_symbol.entry(k).or_default().push(e);
        }
    }
    let mut per_symbol: BTreeMap<String, Vec<&DeltaAt>> = BTreeMap::new();
    for d in deltas {
        per_symbol
            .entry(key(&d.delta.exchange, &d.delta.symbol))
            .or_default()
            .push(d);
    }
    let mut books_of: BTreeMap<String, Vec<&BookAt>> = BTreeMap::new();
    for b in books {
        books_of
            .entry(key(&b.book.exchange, &b.book.symbol))
            .or_default()
            .push(b);
    }
    for (k, bs) in &books_of {
        let ds = per_symbol.get(k).cloned().unwrap_or_default();
        let Some(first) = bs.first() else { continue };
        let (exchange, symbol) = (&first.book.exchange, &first.book.symbol);
        let mut evs: Vec<&FeedEvent> = by_symbol.get(k).cloned().unwrap_or_default();
        evs.extend(by_exchange.get(exchange.as_str()).into_iter().flatten());
        let r = report.symbols.entry(k.clone()).or_default();
        r.books = super::books::check(bs, &ds);
        report.book_mismatches += r.books.mismatches.len() as u64;
        if let Some(seq) = rules(exchange, symbol) {
            r.checksums = super::checksums::check(bs, &ds, &evs, seq.as_ref());
            report.checksum_mismatches += r.checksums.unannounced().count() as u64;
        }
    }
    for (k, ds) in per_symbol {
        let exchange = ds
            .first()
            .map(|d| d.delta.exchange.as_str())
            .unwrap_or_default();
        let mut evs: Vec<&FeedEvent> = by_symbol.get(&k).cloned().unwrap_or_default();
        evs.extend(by_exchange.get(exchange).into_iter().flatten());
        let r = report.symbols.entry(k).or_default();
        chain(r, &ds, &evs);
        report.unannounced_breaks += r.unannounced().count() as u64;
    }
    let mut seen: BTreeMap<TradeKey, Vec<(i32, i64)>> = BTreeMap::new();
    for t in trades {
        let tr = &t.trade;
        let r = report
            .symbols
            .entry(key(&tr.exchange, &tr.symbol))
            .or_default();
        r.trades += 1;
        if tr.trade_id.is_empty() {
            r.trades_without_id += 1;
            continue;
        }
        seen.entry((
            tr.exchange.clone(),
            tr.symbol.clone(),
            tr.trade_type.clone().unwrap_or_default(),
            tr.trade_id.clone(),
        ))
        .or_default()
        .push((t.partition, t.offset));
    }
    for ((exchange, symbol, trade_type, id), at) in seen {
        if at.len() > 1 {
            report.duplicate_trades += 1;
            report
                .symbols
                .entry(key(&exchange, &symbol))
                .or_default()
                .duplicate_trades
                .push(Duplicate {
                    trade: (trade_type, id),
                    at,
                });
        }
    }
    report
}

/// Walks one symbol's deltas.
fn chain(r: &mut SymbolReport, deltas: &[&DeltaAt], events: &[&FeedEvent]) {
    // SYNCED events in time order: each restarts the chain at its `got_id`.
    let mut synced: Vec<(i64, i64)> = events
        .iter()
        .filter(|e| e.kind == Kind::Synced as i32)
        .filter_map(|e| Some((e.receipt_time.max(e.timestamp), e.got_id?)))
        .collect();
    synced.sort_unstable();
    let mut next_sync = 0;
    let mut last: Option<(i64, i64)> = None; // (venue id, receipt time)
    let mut current: Option<Interval> = None;
    for d in deltas {
        let delta = &d.delta;
        let (Some(end), receipt) = (delta.last_update_id, delta.receipt_time) else {
            r.unchecked_deltas += 1;
            continue;
        };
        // SYNCED events received up to this delta: the latest one is the state to continue.
        let mut resynced: Option<i64> = None;
        while let Some((at, got)) = synced.get(next_sync) {
            if *at > receipt {
                break;
            }
            resynced = Some(*got);
            next_sync += 1;
        }
        let from_sync = resynced.is_some_and(|g| continues(g, delta));
        let from_last = last.is_some_and(|(l, _)| continues(l, delta));
        if from_last && !from_sync {
            if let Some(i) = current.as_mut() {
                i.ids.1 = end;
                i.receipt_us.1 = receipt;
                i.deltas += 1;
            }
        } else {
            if let Some((l, at)) = last.filter(|_| !from_last) {
                let mut announced_by = announced(events, at, receipt);
                if from_sync {
                    announced_by.push("SYNCED".into());
                    announced_by.sort();
                }
                r.breaks.push(Break {
                    after_id: Some(l),
                    first_id: delta.first_update_id.or(delta.prev_update_id),
                    at: (d.partition, d.offset),
                    between_us: (at, receipt),
                    announced_by,
                });
            }
            r.intervals.extend(current.take());
            current = Some(Interval {
                ids: (delta.first_update_id.unwrap_or(end), end),
                receipt_us: (receipt, receipt),
                deltas: 1,
                from_synced: from_sync,
            });
        }
        last = Some((end, receipt));
    }
    r.intervals.extend(current);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::{Level2Delta, Trade};

    /// A Binance spot diff `U..=u` received at `t` µs.
    fn diff(offset: i64, first: i64, last: i64, t: i64) -> DeltaAt {
        DeltaAt {
            partition: 0,
            offset,
            delta: Level2Delta {
                exchange: "BINANCE".into(),
                symbol: "BTC-USDT".into(),
                first_update_id: Some(first),
                last_update_id: Some(last),
                sequence: Some(last),
                receipt_time: t,
                ..Level2Delta::default()
            },
        }
    }

    fn event(kind: Kind, symbol: &str, t: i64, got: Option<i64>) -> FeedEvent {
        FeedEvent {
            exchange: "BINANCE".into(),
            symbol: symbol.into(),
            kind: kind as i32,
            timestamp: t,
            receipt_time: t,
            got_id: got,
            ..FeedEvent::default()
        }
    }

    #[test]
    fn a_contiguous_chain_after_synced_is_one_interval() {
        let events = [event(Kind::Synced, "BTC-USDT", 1_000, Some(100))];
        let deltas = [
            diff(0, 95, 104, 1_010),
            diff(1, 105, 110, 1_020),
            diff(2, 111, 111, 1_030),
        ];
        let r = audit(&deltas, &[], &events, &[], &|_, _| None);
        assert!(r.is_clean(), "{r:?}");
        let s = &r.symbols["BINANCE:BTC-USDT"];
        assert_eq!(
            s.intervals,
            vec![Interval {
                ids: (95, 111),
                receipt_us: (1_010, 1_030),
                deltas: 3,
                from_synced: true
            }]
        );
        assert!(s.breaks.is_empty());
    }

    #[test]
    fn a_missing_delta_is_an_unannounced_break() {
        let events = [event(Kind::Synced, "BTC-USDT", 1_000, Some(100))];
        // 105..=110 is missing.
        let deltas = [diff(0, 101, 104, 1_010), diff(2, 111, 111, 1_030)];
        let r = audit(&deltas, &[], &events, &[], &|_, _| None);
        assert!(!r.is_clean());
        assert_eq!(r.unannounced_breaks, 1);
        let s = &r.symbols["BINANCE:BTC-USDT"];
        assert_eq!(
            s.breaks,
            vec![Break {
                after_id: Some(104),
                first_id: Some(111),
                at: (0, 2),
                between_us: (1_010, 1_030),
                announced_by: vec![],
            }]
        );
        assert_eq!(s.intervals.len(), 2);
    }

    #[test]
    fn a_break_with_a_gap_event_and_a_resync_between_is_announced() {
        let events = [
            event(Kind::Synced, "BTC-USDT", 1_000, Some(100)),
            event(Kind::Gap, "BTC-USDT", 1_015, None),
            event(Kind::Synced, "BTC-USDT", 1_025, Some(200)),
        ];
        let deltas = [diff(0, 101, 104, 1_010), diff(1, 195, 201, 1_030)];
        let r = audit(&deltas, &[], &events, &[], &|_, _| None);
        assert!(r.is_clean(), "{r:?}");
        let s = &r.symbols["BINANCE:BTC-USDT"];
        assert_eq!(s.breaks.len(), 1);
        assert_eq!(s.breaks[0].announced_by, vec!["GAP", "SYNCED"]);
        assert!(s.intervals[1].from_synced);
        assert_eq!(s.feed_events["SYNCED"], 2);
    }

    #[test]
    fn a_connection_wide_record_lost_announces_the_break_it_covers() {
        let mut lost = event(Kind::RecordLost, "", 1_050, None);
        lost.since = Some(1_012);
        let deltas = [diff(0, 101, 104, 1_010), diff(1, 120, 121, 1_060)];
        let r = audit(&deltas, &[], &[lost.clone()], &[], &|_, _| None);
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(
            r.symbols["BINANCE:BTC-USDT"].breaks[0].announced_by,
            vec!["RECORD_LOST"]
        );
        // The same loss announced too late (after the delta) announces nothing.
        lost.since = Some(2_000);
        lost.timestamp = 2_010;
        lost.receipt_time = 2_010;
        let r = audit(&deltas, &[], &[lost], &[], &|_, _| None);
        assert_eq!(r.unannounced_breaks, 1);
    }

    #[test]
    fn usdm_deltas_continue_by_prev_update_id() {
        let mut a = diff(0, 90, 104, 1_010);
        a.delta.prev_update_id = Some(88);
        let mut b = diff(1, 107, 110, 1_020);
        b.delta.prev_update_id = Some(104);
        let r = audit(
            &[a, b],
            &[],
            &[event(Kind::Synced, "BTC-USDT", 1_000, Some(100))],
            &[],
            &|_, _| None,
        );
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(r.symbols["BINANCE:BTC-USDT"].intervals.len(), 1);
    }

    #[test]
    fn deltas_without_ids_are_counted_unchecked() {
        let mut d = diff(0, 1, 1, 10);
        d.delta.first_update_id = None;
        d.delta.last_update_id = None;
        let r = audit(&[d], &[], &[], &[], &|_, _| None);
        assert!(r.is_clean());
        assert_eq!(r.symbols["BINANCE:BTC-USDT"].unchecked_deltas, 1);
    }

    #[test]
    fn a_trade_id_twice_is_a_duplicate_but_another_trade_type_is_not() {
        let t = |offset, id: &str, kind: Option<&str>| TradeAt {
            partition: 0,
            offset,
            trade: Trade {
                exchange: "BINANCE".into(),
                symbol: "ETH-USDT".into(),
                trade_id: id.into(),
                trade_type: kind.map(str::to_string),
                ..Trade::default()
            },
        };
        let r = audit(
            &[],
            &[],
            &[],
            &[
                t(0, "705291099", None),
                t(1, "226532", Some("agg")),
                t(2, "705291099", None),
                t(3, "705291099", Some("agg")),
                t(4, "", None),
                t(5, "", None),
            ],
            &|_, _| None,
        );
        assert_eq!(r.duplicate_trades, 1);
        assert_eq!(
            r.symbols["BINANCE:ETH-USDT"].duplicate_trades,
            vec![Duplicate {
                trade: (String::new(), "705291099".into()),
                at: vec![(0, 0), (0, 2)],
            }]
        );
        // Two trades without a venue id are no duplicate of each other: they are not checked.
        assert_eq!(r.symbols["BINANCE:ETH-USDT"].trades, 6);
        assert_eq!(r.symbols["BINANCE:ETH-USDT"].trades_without_id, 2);
        assert!(!r.is_clean());
    }
}
