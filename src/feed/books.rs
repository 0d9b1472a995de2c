//! The book keeper of one feed: one `BookSync` per symbol, turning diffs and snapshots into
//! `Level2Delta` / `Level2Book` records, and saying when a (re)sync snapshot is needed.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::book::{BookSync, Diff, Rules, Snapshot, Step};
use crate::producer::ProduceEvent;
use crate::schema::borrowed::{EncodedRecord, Level2DeltaRef};
use crate::schema::{DataType, Level2Book, Normalized};

/// What the feed must do after a book step.
#[derive(Debug, Default)]
pub struct BookOutput {
    /// Records to produce, in order (deltas already encoded, full books typed).
    pub records: Vec<ProduceEvent>,
    /// A snapshot is needed for this symbol (sync lost or not yet synced).
    pub need_snapshot: bool,
    /// A gap was detected: (expected, got).
    pub gap: Option<(i64, i64)>,
    /// The book (re)synced.
    pub synced: bool,
}

struct Entry {
    /// The normalized symbol, shared by the records.
    symbol: Arc<str>,
    sync: BookSync,
    deltas_since_book: u32,
    last_event_time: Option<i64>,
    last_timestamp: Option<i64>,
}

/// Books of all symbols of one feed.
pub struct BookKeeper {
    exchange: &'static str,
    rules: Rules,
    every: u32,
    depth: Option<usize>,
    books: FxHashMap<String, Entry>,
}

impl BookKeeper {
    /// Books for `exchange` with the venue's rules; a full book every `every` deltas.
    pub fn new(
        exchange: &'static str,
        rules: Rules,
        every: u32,
        depth: Option<usize>,
    ) -> BookKeeper {
        BookKeeper {
            exchange,
            rules,
            every,
            depth,
            books: FxHashMap::default(),
        }
    }

    fn entry(&mut self, symbol: &str) -> &mut Entry {
        let rules = self.rules;
        if !self.books.contains_key(symbol) {
            // Allocate the key only for a new symbol, not per diff.
            let fresh = Entry {
                symbol: Arc::from(symbol),
                sync: BookSync::new(rules, 50_000),
                deltas_since_book: 0,
                last_event_time: None,
                last_timestamp: None,
            };
            self.books.insert(symbol.to_string(), fresh);
        }
        match self.books.get_mut(symbol) {
            Some(e) => e,
            None => unreachable!("inserted above"),
        }
    }

    /// Forgets every book (after a reconnect).
    pub fn reset_all(&mut self) {
        for e in self.books.values_mut() {
            e.sync.reset();
        }
    }

    fn full_book(&self, symbol: &str, e: &Entry, receipt_us: i64) -> ProduceEvent {
        let (bids, asks) = e.sync.book().levels(self.depth);
        ProduceEvent::typed(Normalized::Level2Book(Level2Book {
            exchange: self.exchange.into(),
            symbol: symbol.into(),
            bids,
            asks,
            timestamp: e.last_timestamp,
            sequence: e.sync.last_update_id(),
            checksum: None,
            event_time: e.last_event_time,
            last_update_id: e.sync.last_update_id(),
            receipt_time: receipt_us,
        }))
    }

    /// Takes one diff.
    pub fn on_diff(
        &mut self,
        symbol: &str,
        diff: Diff,
    ) -> Result<BookOutput, crate::book::levels::BadDecimal> {
        let (every, exchange) = (self.every, self.exchange);
        let mut out = BookOutput::default();
        let e = self.entry(symbol);
        match e.sync.take_diff(diff)? {
            (Step::Buffered, _) => out.need_snapshot = true,
            (Step::Dropped | Step::Synced, _) | (Step::Applied, None) => {}
            (Step::Applied, Some(diff)) => {
                e.last_event_time = diff.event_time;
                e.last_timestamp = diff.timestamp;
                e.deltas_since_book += 1;
                let receipt = diff.receipt_time;
                // Encoded straight from the applied diff's levels (no owned record between).
                let mut bytes = Vec::new();
                Level2DeltaRef {
                    exchange,
                    symbol: &e.symbol,
                    bids: &diff.bids,
                    asks: &diff.asks,
                    timestamp: diff.timestamp,
                    sequence: Some(diff.last),
                    checksum: None,
                    event_time: diff.event_time,
                    last_update_id: Some(diff.last),
                    receipt_time: receipt,
                    first_update_id: Some(diff.first),
                    prev_update_id: diff.prev,
                }
                .encode(&mut bytes);
                out.records.push(ProduceEvent::encoded(EncodedRecord {
                    data_type: DataType::Level2Delta,
                    exchange,
                    symbol: e.symbol.clone(),
                    bytes,
                }));
                let e = &self.books[symbol];
                if every > 0 && e.deltas_since_book >= every {
                    out.records.push(self.full_book(symbol, e, receipt));
                    self.entry(symbol).deltas_since_book = 0;
                }
            }
            (Step::Gap { expected, got }, _) => {
                out.gap = Some((expected, got));
                out.need_snapshot = true;
            }
        }
        Ok(out)
    }

    /// Takes a REST snapshot for `symbol`.
    pub fn on_snapshot(
        &mut self,
        symbol: &str,
        snap: &Snapshot,
        receipt_us: i64,
    ) -> Result<BookOutput, crate::book::levels::BadDecimal> {
        let mut out = BookOutput::default();
        let e = self.entry(symbol);
        match e.sync.on_snapshot(snap)? {
            Step::Synced => {
                e.deltas_since_book = 0;
                out.synced = true;
                let e = &self.books[symbol];
                out.records.push(self.full_book(symbol, e, receipt_us));
            }
            Step::Gap { expected, got } => {
                out.gap = Some((expected, got));
                out.need_snapshot = true;
            }
            _ => {}
        }
        Ok(out)
    }

    /// Whether `symbol`'s book is in sync.
    pub fn is_synced(&self, symbol: &str) -> bool {
        self.books.get(symbol).is_some_and(|e| e.sync.is_synced())
    }
}
