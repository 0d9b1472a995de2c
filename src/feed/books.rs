//! The book keeper of one feed: one `BookSync` per symbol, turning diffs and snapshots into
//! `Level2Delta` / `Level2Book` records, and every break of continuity into a `FeedEvent`
//! record, and saying when a (re)sync snapshot is needed.

use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::book::levels::BadDecimal;
#[cfg(doc)]
use crate::book::sync::DEFAULT_BUFFER_BYTES;
use crate::book::{BookSync, Break, Diff, Sequencer, Snapshot, SnapshotSource, Step};
use crate::producer::ProduceEvent;
use crate::schema::borrowed::{EncodedRecord, Level2DeltaRef};
use crate::schema::v2beta1::feed_event::Kind;
use crate::schema::{DataType, FeedEvent, Level2Book, Normalized};

/// What the feed must do after a book step.
#[derive(Debug, Default)]
pub struct BookOutput {
    /// Records to produce, in order (deltas already encoded, full books and feed events typed).
    pub records: Vec<ProduceEvent>,
    /// A snapshot is needed for this symbol (sync lost or not yet synced): a REST fetch or a
    /// resubscribe, as the sequencer's source says.
    pub need_snapshot: bool,
    /// A gap was detected: (expected, got).
    pub gap: Option<(i64, i64)>,
    /// The book failed a check and was discarded (checksum, crossed book, or
    /// [`Break::Stalled`]: too many diffs in a row dropped as older than it).
    pub broken: Option<Break>,
    /// An impossible diff was not applied; the synced book was discarded with it
    /// (`need_snapshot` is set).
    pub rejected: Option<&'static str>,
    /// Diffs pushed out of the snapshot-wait buffers: this symbol's (its own cap), and, when
    /// the connection's budget ([`BookKeeper::with_buffer_budget`]) is full, other symbols'
    /// too. Each symbol that lost diffs gets a `BUFFER_OVERFLOW` record in `records`.
    pub overflowed: u64,
    /// `overflowed` by symbol: the feed counts each in `book_diffs_skipped{exchange, symbol,
    /// reason="buffer_overflow"}`.
    pub overflowed_by_symbol: Vec<(Arc<str>, u64)>,
    /// A level the book could not take (the book was discarded).
    pub bad_decimal: Option<BadDecimal>,
    /// The diff was older than the book (or came before an in-band snapshot): not applied.
    pub dropped: bool,
    /// The book (re)synced.
    pub synced: bool,
    /// Buffered diffs a snapshot's bridge skipped as out of order (ids no growing stream has
    /// there): their levels never reached the book. Announced by a `REJECTED_UPDATE` record in
    /// `records`; the feed counts them in `book_diffs_skipped{exchange, symbol,
    /// reason="out_of_order"}`.
    pub out_of_order: u64,
    /// Buffered diffs a snapshot's bridge skipped as impossible (the sequencer rejected them).
    /// Announced by a `REJECTED_UPDATE` record; counted in `book_diffs_skipped{exchange,
    /// symbol, reason="bridge_rejected"}`.
    pub bridge_rejected: u64,
}

struct Entry {
    /// The normalized symbol, shared by the records.
    symbol: Arc<str>,
    sync: BookSync,
    deltas_since_book: u32,
    last_event_time: Option<i64>,
    last_timestamp: Option<i64>,
}

/// Books by normalized symbol.
type Books = hashbrown::HashMap<String, Entry, FxBuildHasher>;

/// Default budget of the diffs all books of one connection may buffer while they await
/// their snapshots (64 MiB, counted by [`Diff::buffered_bytes`]).
pub const DEFAULT_BUFFER_BUDGET: usize = crate::config::DEFAULT_BOOK_BUFFER_BYTES;

/// Books of all symbols of one feed.
pub struct BookKeeper {
    exchange: &'static str,
    seq: Arc<dyn Sequencer>,
    every: u32,
    depth: Option<usize>,
    books: Books,
    /// Bytes all books may buffer together.
    budget: usize,
    /// Bytes all books buffer now.
    buffered: usize,
}

/// A `FeedEvent` record.
pub fn feed_event(
    exchange: &str,
    symbol: &str,
    kind: Kind,
    reason: String,
    action: &str,
    now_us: i64,
) -> FeedEvent {
    FeedEvent {
        exchange: exchange.into(),
        symbol: symbol.into(),
        kind: kind as i32,
        reason,
        action: action.into(),
        // Per-symbol events concern its book; connection-wide ones (empty symbol) every channel.
        data_type: if symbol.is_empty() {
            String::new()
        } else {
            DataType::Level2Delta.as_str().into()
        },
        timestamp: now_us,
        receipt_time: now_us,
        ..FeedEvent::default()
    }
}

/// The `FeedEvent` kind of a discarded book: a stalled book is a gap (its updates stopped
/// reaching it).
fn break_kind(b: &Break) -> Kind {
    match b {
        Break::Checksum { .. } => Kind::ChecksumMismatch,
        Break::Crossed { .. } => Kind::CrossedBook,
        Break::Stalled { .. } => Kind::Gap,
    }
}

impl BookKeeper {
    /// Books for `exchange` kept by the venue's sequencer; a full book every `every` deltas.
    pub fn new(
        exchange: &'static str,
        seq: Arc<dyn Sequencer>,
        every: u32,
        depth: Option<usize>,
    ) -> BookKeeper {
        BookKeeper {
            exchange,
            seq,
            every,
            depth,
            books: Books::default(),
            budget: DEFAULT_BUFFER_BUDGET,
            buffered: 0,
        }
    }

    /// Bounds the diffs all books of this connection buffer together while awaiting their
    /// snapshots at `bytes` (default [`DEFAULT_BUFFER_BUDGET`]; one book alone may use all of
    /// it, instead of [`DEFAULT_BUFFER_BYTES`] each). When a diff takes the total past the
    /// budget, the oldest diffs of the book buffering the most are pushed out (that book is the
    /// furthest from bridging its snapshot), counted in [`BookOutput::overflowed`] and
    /// announced as `BUFFER_OVERFLOW` for their symbol.
    pub fn with_buffer_budget(mut self, bytes: usize) -> BookKeeper {
        self.budget = bytes.max(1);
        let budget = self.budget;
        for e in self.books.values_mut() {
            e.sync.set_buffer_bytes(budget);
        }
        self
    }

    /// Bytes all books buffer now ([`Diff::buffered_bytes`]), never above the budget after a
    /// step.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Brings the buffered total back within the budget, pushing out the oldest diffs of the
    /// largest buffers first; each symbol that lost diffs is counted and announced in `out`.
    fn enforce_budget(&mut self, out: &mut BookOutput, now: i64) {
        while self.buffered > self.budget {
            let Some((sym, e)) = self
                .books
                .iter_mut()
                .max_by_key(|(_, e)| e.sync.buffered().1)
            else {
                break;
            };
            let held = e.sync.buffered().1;
            if held == 0 {
                break;
            }
            let excess = self.buffered - self.budget;
            let n = e.sync.shed_to(held.saturating_sub(excess));
            let left = e.sync.buffered().1;
            self.buffered = self.buffered - held + left;
            let symbol = e.symbol.clone();
            let sym = sym.clone();
            if n > 0 {
                out.overflowed += n;
                match out
                    .overflowed_by_symbol
                    .iter_mut()
                    .find(|(s, _)| *s == symbol)
                {
                    Some((_, c)) => *c += n,
                    None => out.overflowed_by_symbol.push((symbol, n)),
                }
                out.records.push(self.event(
                    &sym,
                    Kind::BufferOverflow,
                    format!(
                        "{n} buffered diffs pushed out: the connection's snapshot-wait budget \
                         ({} bytes) is full",
                        self.budget
                    ),
                    now,
                ));
            }
        }
    }

    /// The venue's book rules.
    pub fn sequencer(&self) -> &Arc<dyn Sequencer> {
        &self.seq
    }

    fn entry(&mut self, symbol: &str) -> &mut Entry {
        Self::entry_in(&mut self.books, &self.seq, self.budget, symbol)
    }

    /// `symbol`'s entry, created when new: one lookup, the key allocated only for a new
    /// symbol. Borrows only the map, so the keeper's other fields stay usable beside it.
    fn entry_in<'b>(
        books: &'b mut Books,
        seq: &Arc<dyn Sequencer>,
        budget: usize,
        symbol: &str,
    ) -> &'b mut Entry {
        books.entry_ref(symbol).or_insert_with(|| Entry {
            symbol: Arc::from(symbol),
            sync: BookSync::new(seq.clone(), 50_000).with_buffer_bytes(budget),
            deltas_since_book: 0,
            last_event_time: None,
            last_timestamp: None,
        })
    }

    /// Forgets every book (after a reconnect).
    pub fn reset_all(&mut self) {
        for e in self.books.values_mut() {
            e.sync.reset();
        }
        self.buffered = 0;
    }

    /// Forgets one book (e.g. after a delta of it was lost); it needs a new snapshot.
    pub fn reset(&mut self, symbol: &str) {
        if let Some(e) = self.books.get_mut(symbol) {
            let held = e.sync.buffered().1;
            e.sync.reset();
            self.buffered -= held;
        }
    }

    /// Symbols with a book.
    pub fn symbols(&self) -> Vec<String> {
        self.books.keys().cloned().collect()
    }

    /// A full `Level2Book` of `symbol`'s book as it stands (`None` without a book).
    fn full_book(&mut self, symbol: &str, receipt_us: i64) -> Option<ProduceEvent> {
        let e = self.books.get_mut(symbol)?;
        let (bids, asks) = e.sync.book().levels(self.depth);
        let ids = self.seq.has_ids();
        Some(ProduceEvent::typed(Normalized::Level2Book(Level2Book {
            exchange: self.exchange.into(),
            symbol: symbol.into(),
            bids,
            asks,
            timestamp: e.last_timestamp,
            sequence: e.sync.last_update_id().filter(|_| ids),
            checksum: e.sync.checksum().map(|c| c.to_string()),
            event_time: e.last_event_time,
            last_update_id: e.sync.last_update_id().filter(|_| ids),
            receipt_time: receipt_us,
        })))
    }

    /// A full `Level2Book` of a synced symbol now (e.g. to republish after a lost delta).
    pub fn republish(&mut self, symbol: &str, receipt_us: i64) -> Option<ProduceEvent> {
        if !self.books.get(symbol)?.sync.is_synced() {
            return None;
        }
        self.full_book(symbol, receipt_us)
    }

    fn event(&self, symbol: &str, kind: Kind, reason: String, now: i64) -> ProduceEvent {
        let action = self.seq.source().recovery();
        ProduceEvent::typed(Normalized::FeedEvent(feed_event(
            self.exchange,
            symbol,
            kind,
            reason,
            action,
            now,
        )))
    }

    /// Takes one diff.
    pub fn on_diff(&mut self, symbol: &str, diff: Diff) -> Result<BookOutput, BadDecimal> {
        let (every, exchange, ids) = (self.every, self.exchange, self.seq.has_ids());
        let mut out = BookOutput::default();
        let receipt = diff.receipt_time;
        let mut e = Self::entry_in(&mut self.books, &self.seq, self.budget, symbol);
        let held = e.sync.buffered().1;
        let step = e.sync.take_diff(diff);
        out.overflowed = e.sync.take_overflowed();
        let now_held = e.sync.buffered().1;
        self.buffered = self.buffered - held + now_held;
        if out.overflowed > 0 {
            out.overflowed_by_symbol
                .push((e.symbol.clone(), out.overflowed));
        }
        let step = match step {
            Ok(s) => s,
            Err(bad) => {
                // The book was discarded: a level it could not take leaves it unknown.
                out.need_snapshot = true;
                out.records.push(self.event(
                    symbol,
                    Kind::RejectedUpdate,
                    format!("{bad}; book discarded"),
                    receipt,
                ));
                out.bad_decimal = Some(bad);
                return Ok(out);
            }
        };
        let own_overflow = out.overflowed;
        // Over budget (or this book shed): other books may shed too; the entry is looked up
        // again after. Otherwise (every applied diff) the one lookup serves.
        if own_overflow > 0 || self.buffered > self.budget {
            self.enforce_budget(&mut out, receipt);
            if own_overflow > 0 {
                out.records.push(self.event(
                    symbol,
                    Kind::BufferOverflow,
                    format!("{own_overflow} buffered diffs pushed out while awaiting a snapshot"),
                    receipt,
                ));
            }
            e = Self::entry_in(&mut self.books, &self.seq, self.budget, symbol);
        }
        match step {
            (Step::Buffered, _) => out.need_snapshot = true,
            (Step::Dropped, _) => out.dropped = true,
            (Step::Synced, _) | (Step::Applied, None) => {}
            (Step::Applied, Some(diff)) => {
                e.last_event_time = diff.event_time;
                e.last_timestamp = diff.timestamp;
                e.deltas_since_book += 1;
                let mut text = itoa::Buffer::new();
                let checksum = diff.checksum.map(|c| text.format(c));
                // Encoded straight from the applied diff's levels (no owned record between).
                let mut bytes = Vec::new();
                Level2DeltaRef {
                    exchange,
                    symbol: &e.symbol,
                    bids: &diff.bids,
                    asks: &diff.asks,
                    timestamp: diff.timestamp,
                    sequence: ids.then_some(diff.last),
                    checksum,
                    event_time: diff.event_time,
                    last_update_id: ids.then_some(diff.last),
                    receipt_time: receipt,
                    first_update_id: ids.then_some(diff.first),
                    prev_update_id: diff.prev.filter(|_| ids),
                }
                .encode(&mut bytes);
                out.records.push(ProduceEvent::encoded(EncodedRecord {
                    data_type: DataType::Level2Delta,
                    exchange,
                    symbol: e.symbol.clone(),
                    bytes,
                    venue_us: diff.event_time.or(diff.timestamp).filter(|t| *t > 0),
                    receipt_us: receipt,
                }));
                if every > 0 && e.deltas_since_book >= every {
                    e.deltas_since_book = 0;
                    out.records.extend(self.full_book(symbol, receipt));
                }
            }
            (Step::Gap { expected, got }, _) => {
                out.gap = Some((expected, got));
                out.need_snapshot = true;
                let mut ev = feed_event(
                    exchange,
                    symbol,
                    Kind::Gap,
                    format!("update id {got} came where {expected} was due"),
                    self.seq.source().recovery(),
                    receipt,
                );
                ev.expected_id = Some(expected);
                ev.got_id = Some(got);
                out.records
                    .push(ProduceEvent::typed(Normalized::FeedEvent(ev)));
            }
            (Step::Broken(b), _) => {
                let mut ev = feed_event(
                    exchange,
                    symbol,
                    break_kind(&b),
                    b.to_string(),
                    self.seq.source().recovery(),
                    receipt,
                );
                if let (Break::Stalled { last, got, .. }, true) = (&b, ids) {
                    ev.expected_id = Some(last.saturating_add(1));
                    ev.got_id = Some(*got);
                }
                out.records
                    .push(ProduceEvent::typed(Normalized::FeedEvent(ev)));
                out.broken = Some(b);
                out.need_snapshot = true;
            }
            (Step::Rejected(why), _) => {
                out.rejected = Some(why);
                out.need_snapshot = true;
                out.records.push(self.event(
                    symbol,
                    Kind::RejectedUpdate,
                    format!("{why}; book discarded"),
                    receipt,
                ));
            }
        }
        Ok(out)
    }

    /// Takes a snapshot (REST or in band) for `symbol`.
    pub fn on_snapshot(
        &mut self,
        symbol: &str,
        snap: &Snapshot,
        receipt_us: i64,
    ) -> Result<BookOutput, BadDecimal> {
        let mut out = BookOutput::default();
        let e = self.entry(symbol);
        let held = e.sync.buffered().1;
        let step = e.sync.on_snapshot(snap);
        let now_held = e.sync.buffered().1;
        out.out_of_order = e.sync.take_out_of_order();
        out.bridge_rejected = e.sync.take_bridge_rejected();
        self.buffered = self.buffered - held + now_held;
        for (n, what) in [
            (
                out.out_of_order,
                "out of order (an id no growing stream has there)",
            ),
            (out.bridge_rejected, "as impossible"),
        ] {
            if n > 0 {
                out.records
                    .push(ProduceEvent::typed(Normalized::FeedEvent(feed_event(
                        self.exchange,
                        symbol,
                        Kind::RejectedUpdate,
                        format!("{n} buffered diffs skipped {what} while bridging the snapshot"),
                        "",
                        receipt_us,
                    ))));
            }
        }
        let e = self.entry(symbol);
        match step? {
            Step::Synced => {
                e.deltas_since_book = 0;
                out.synced = true;
                out.records.extend(self.full_book(symbol, receipt_us));
                let e = &self.books[symbol];
                let ids = self.seq.has_ids();
                let mut ev = feed_event(
                    self.exchange,
                    symbol,
                    Kind::Synced,
                    match self.seq.source() {
                        SnapshotSource::Rest => "book built from a REST snapshot".into(),
                        SnapshotSource::InBand => "book built from an in-band snapshot".into(),
                    },
                    "",
                    receipt_us,
                );
                ev.got_id = e.sync.last_update_id().filter(|_| ids);
                out.records
                    .push(ProduceEvent::typed(Normalized::FeedEvent(ev)));
            }
            Step::Gap { expected, got } => {
                out.gap = Some((expected, got));
                out.need_snapshot = true;
            }
            Step::Broken(b) => {
                out.records.push(self.event(
                    symbol,
                    break_kind(&b),
                    format!("snapshot: {b}"),
                    receipt_us,
                ));
                out.broken = Some(b);
                out.need_snapshot = true;
            }
            _ => {}
        }
        Ok(out)
    }

    /// `symbol`'s book as kept (at full depth; meaningful when synced).
    pub fn book(&self, symbol: &str) -> Option<&crate::book::OrderBook> {
        self.books.get(symbol).map(|e| e.sync.book())
    }

    /// Whether `symbol`'s book is in sync.
    pub fn is_synced(&self, symbol: &str) -> bool {
        self.books.get(symbol).is_some_and(|e| e.sync.is_synced())
    }
}
