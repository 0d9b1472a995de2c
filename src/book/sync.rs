//! The generic book driver: one symbol's book and its sync state. The venue's [`Sequencer`]
//! says where snapshots come from and how continuity is checked; the driver buffers diffs until
//! a REST snapshot bridges them (or drops them until an in-band snapshot arrives), applies what
//! continues the book, checks the venue's checksum and that the book is not crossed after every
//! update, and reports every break with its reason. A break discards the book: the feed resyncs
//! it (REST refetch or resubscribe, as the source says).

use std::collections::VecDeque;
use std::sync::Arc;

pub use super::diff::{Diff, LEVEL_INDEX_BYTES};
use super::levels::{BadDecimal, OrderBook, Side};
use super::sequencer::{Decision, Sequencer, SnapshotSource};
/// A diff's levels: price and absolute quantity, the venue's digits, one text buffer per side;
/// the `Level2Delta` record is encoded straight from them.
pub use crate::schema::borrowed::Levels;

/// A depth snapshot (REST or in band).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// `lastUpdateId` (0 where the venue has no ids).
    pub last_update_id: i64,
    /// Bid levels.
    pub bids: Vec<(String, String)>,
    /// Ask levels.
    pub asks: Vec<(String, String)>,
    /// The venue's checksum of this book, where it sends one.
    pub checksum: Option<u32>,
}

/// Why a book was discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The venue's checksum disagrees with the book kept here.
    Checksum {
        /// The venue's.
        venue: u32,
        /// Ours.
        local: u32,
    },
    /// The best bid is at or above the best ask after an update.
    Crossed {
        /// Best bid price.
        bid: String,
        /// Best ask price.
        ask: String,
    },
    /// [`MAX_CONSECUTIVE_DROPS`] diffs in a row were older than the synced book: its last id
    /// is wrong (an absurd id was applied, or the stream restarted), and every genuine diff
    /// would be dropped silently from now on.
    Stalled {
        /// Diffs dropped in a row.
        dropped: u32,
        /// The book's last applied update id.
        last: i64,
        /// The final update id of the last diff dropped.
        got: i64,
    },
}

impl Break {
    /// Short label for metrics and `FeedEvent.reason`.
    pub fn kind(&self) -> &'static str {
        match self {
            Break::Checksum { .. } => "checksum_mismatch",
            Break::Crossed { .. } => "crossed_book",
            Break::Stalled { .. } => "stalled_book",
        }
    }
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Checksum { venue, local } => {
                write!(f, "checksum mismatch: venue {venue}, local {local}")
            }
            Break::Crossed { bid, ask } => write!(f, "crossed book: bid {bid} >= ask {ask}"),
            Break::Stalled { dropped, last, got } => write!(
                f,
                "stalled book: {dropped} diffs in a row dropped as older than the book \
                 (last applied id {last}, last diff dropped ends at {got}); book discarded"
            ),
        }
    }
}

/// What happened to a diff or snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Kept until a snapshot arrives (or, when it does not fit the buffer's byte cap, counted
    /// as overflowed: see [`BookSync::take_overflowed`]); a snapshot is needed either way.
    Buffered,
    /// Older than the book (or waiting for an in-band snapshot); ignored. The
    /// [`MAX_CONSECUTIVE_DROPS`]th in a row on a synced book is [`Break::Stalled`] instead.
    Dropped,
    /// Applied to the book.
    Applied,
    /// The book is in sync (snapshot plus bridged buffered diffs).
    Synced,
    /// Continuity broken: the book is discarded and a new snapshot is needed.
    Gap {
        /// The id the rules expected.
        expected: i64,
        /// The id that came.
        got: i64,
    },
    /// The book failed a check after an update: it is discarded and a new snapshot is needed.
    Broken(Break),
    /// The diff is impossible and was not applied. A synced book that cannot apply a diff no
    /// longer follows the venue: it is discarded and a new snapshot is needed (the impossible
    /// diff itself is not buffered).
    Rejected(&'static str),
}

#[derive(Debug)]
enum State {
    AwaitingSnapshot,
    Synced { last: i64, bridged: bool },
}

/// Default bound of the diffs buffered while a REST snapshot is awaited, in bytes
/// ([`Diff::buffered_bytes`]); the feed's [`crate::feed::books::BookKeeper`] sets its
/// connection-wide budget instead.
pub const DEFAULT_BUFFER_BYTES: usize = 16 << 20;

/// Diffs in a row a synced book may drop as older than itself before it is declared stalled
/// ([`Break::Stalled`]) and discarded. A stream that continues the book drops none once
/// synced (the diffs a snapshot already holds are dropped while bridging it); a venue that
/// repeats a few diffs around a reconnect drops a handful. 100 diffs are 10 s of a Binance
/// symbol's 100 ms stream: long enough to never fire on such a seam, short enough that a book
/// whose last id went absurd (one diff with `u` far ahead) is resynced within seconds instead
/// of silently frozen.
pub const MAX_CONSECUTIVE_DROPS: u32 = 100;

/// The book of one symbol and its sync state.
#[derive(Debug)]
pub struct BookSync {
    seq: Arc<dyn Sequencer>,
    state: State,
    book: OrderBook,
    buffer: VecDeque<Diff>,
    buffer_limit: usize,
    buffer_bytes: usize,
    buffer_byte_limit: usize,
    /// Diffs pushed out of a full buffer or too large for it (counted by the feed).
    overflowed: u64,
    /// Buffered diffs a snapshot's bridge skipped as out of order.
    out_of_order: u64,
    /// Buffered diffs a snapshot's bridge skipped as impossible (the sequencer rejected them).
    bridge_rejected: u64,
    /// Diffs dropped in a row since the last applied one (synced book only).
    drops: u32,
    /// Prices of the levels the last check's depth window deleted (bids, asks).
    truncated: (Vec<String>, Vec<String>),
}

impl BookSync {
    /// An unsynced book; at most `buffer_limit` diffs (and [`DEFAULT_BUFFER_BYTES`]) wait for
    /// a snapshot.
    pub fn new(seq: Arc<dyn Sequencer>, buffer_limit: usize) -> BookSync {
        let book = if seq.ordered_book() {
            OrderBook::ordered()
        } else {
            OrderBook::new()
        };
        BookSync {
            seq,
            state: State::AwaitingSnapshot,
            book,
            buffer: VecDeque::new(),
            buffer_limit: buffer_limit.max(1),
            buffer_bytes: 0,
            buffer_byte_limit: DEFAULT_BUFFER_BYTES,
            overflowed: 0,
            out_of_order: 0,
            bridge_rejected: 0,
            drops: 0,
            truncated: (Vec::new(), Vec::new()),
        }
    }

    /// Caps the buffered diffs at `bytes` ([`Diff::buffered_bytes`]).
    pub fn with_buffer_bytes(mut self, bytes: usize) -> BookSync {
        self.set_buffer_bytes(bytes);
        self
    }

    /// [`BookSync::with_buffer_bytes`] on a book in place (diffs already buffered stay until
    /// the next one is buffered).
    pub fn set_buffer_bytes(&mut self, bytes: usize) {
        self.buffer_byte_limit = bytes.max(1);
    }

    /// The venue's rules.
    pub fn sequencer(&self) -> &Arc<dyn Sequencer> {
        &self.seq
    }

    /// The book (meaningful when synced).
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// The venue's checksum of the book as it stands (`None` when the venue has none).
    pub fn checksum(&mut self) -> Option<u32> {
        self.seq.checksum(&mut self.book)
    }

    /// Whether the book is in sync.
    pub fn is_synced(&self) -> bool {
        matches!(self.state, State::Synced { .. })
    }

    /// The last applied update id, when synced.
    pub fn last_update_id(&self) -> Option<i64> {
        match self.state {
            State::Synced { last, .. } => Some(last),
            State::AwaitingSnapshot => None,
        }
    }

    /// Diffs buffered now, and their bytes ([`Diff::buffered_bytes`]).
    pub fn buffered(&self) -> (usize, usize) {
        (self.buffer.len(), self.buffer_bytes)
    }

    /// Diffs pushed out of the full buffer, or too large to be buffered, so far (and the counter
    /// reset).
    pub fn take_overflowed(&mut self) -> u64 {
        std::mem::take(&mut self.overflowed)
    }

    /// Buffered diffs skipped as out of order when a snapshot was bridged (an id no stream
    /// that only grows can have there; see [`BookSync::on_snapshot`]) so far, and the counter
    /// reset.
    pub fn take_out_of_order(&mut self) -> u64 {
        std::mem::take(&mut self.out_of_order)
    }

    /// Buffered diffs skipped as impossible (the sequencer's [`Decision::Reject`]) when a
    /// snapshot was bridged so far, and the counter reset. Their levels never reach the book.
    pub fn take_bridge_rejected(&mut self) -> u64 {
        std::mem::take(&mut self.bridge_rejected)
    }

    /// Pushes the oldest buffered diffs out until at most `bytes` remain; how many went (they
    /// are not counted in [`BookSync::take_overflowed`]: the caller that sheds counts them).
    /// What remains is still a contiguous tail of the stream, so a newer snapshot bridges it.
    pub fn shed_to(&mut self, bytes: usize) -> u64 {
        let mut n = 0;
        while self.buffer_bytes > bytes {
            let Some(old) = self.buffer.pop_front() else {
                break;
            };
            self.buffer_bytes -= old.buffered_bytes();
            n += 1;
        }
        n
    }

    /// Forgets the book (e.g. after a reconnect); diffs are buffered until the next snapshot.
    pub fn reset(&mut self) {
        self.state = State::AwaitingSnapshot;
        self.book.clear();
        self.buffer.clear();
        self.buffer_bytes = 0;
        self.drops = 0;
    }

    /// Keeps `d` until a snapshot arrives, within both caps: older diffs are pushed out to make
    /// room. A diff larger than the whole byte cap is not kept: it and the diffs before it are
    /// counted as overflowed and the buffer is emptied (diffs before a lost one can never bridge
    /// onto the diffs after it), so only a snapshot the following diffs bridge syncs the book.
    fn buffer(&mut self, d: Diff) {
        let bytes = d.buffered_bytes();
        if bytes > self.buffer_byte_limit {
            self.overflowed += self.buffer.len() as u64 + 1;
            self.buffer.clear();
            self.buffer_bytes = 0;
            return;
        }
        while !self.buffer.is_empty()
            && (self.buffer.len() >= self.buffer_limit
                || self.buffer_bytes + bytes > self.buffer_byte_limit)
        {
            if let Some(old) = self.buffer.pop_front() {
                self.buffer_bytes -= old.buffered_bytes();
                self.overflowed += 1;
            }
        }
        self.buffer_bytes += bytes;
        self.buffer.push_back(d);
    }

    fn apply_levels(book: &mut OrderBook, d: &Diff) -> Result<(), BadDecimal> {
        for (side, levels) in [(Side::Bid, &d.bids), (Side::Ask, &d.asks)] {
            match levels.keys() {
                // Keyed by the venue's parser as it checked them: no decimal read again.
                Some(keys) => {
                    for ((p, q), k) in levels.iter().zip(keys) {
                        book.apply_keyed(side, *k, p, q)?;
                    }
                }
                None => {
                    for (p, q) in levels.iter() {
                        book.apply(side, p, q)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The checks after an update: depth window (the levels it deletes are kept in
    /// `self.truncated`), checksum, crossed book.
    fn check(&mut self, checksum: Option<u32>) -> Option<Break> {
        self.truncated.0.clear();
        self.truncated.1.clear();
        if let Some(depth) = self.seq.max_depth() {
            let (bids, asks) = &mut self.truncated;
            self.book.truncate_into(depth, bids, asks);
        }
        if let Some(venue) = checksum {
            if let Some(local) = self.seq.checksum(&mut self.book) {
                if local != venue {
                    return Some(Break::Checksum { venue, local });
                }
            }
        }
        self.book
            .crossed()
            .map(|(bid, ask)| Break::Crossed { bid, ask })
    }

    /// Applies a diff the rules accepted, then checks the book. A level the book cannot take
    /// or a failed check leaves the book unknown: it is discarded (reset) and the reason
    /// returned.
    fn apply_checked(&mut self, d: &Diff) -> Result<Option<Break>, BadDecimal> {
        if let Err(e) = Self::apply_levels(&mut self.book, d) {
            self.reset();
            return Err(e);
        }
        self.state = State::Synced {
            last: d.last,
            bridged: true,
        };
        self.drops = 0;
        let broken = self.check(d.checksum);
        if broken.is_some() {
            self.reset();
        }
        Ok(broken)
    }

    /// Takes one diff: buffers it, drops it, applies it, or reports a gap (the book is then
    /// reset and this diff starts the new buffer).
    pub fn on_diff(&mut self, d: Diff) -> Result<Step, BadDecimal> {
        self.take_diff(d).map(|(step, _)| step)
    }

    /// [`BookSync::on_diff`], handing an applied diff back so its levels can move into the
    /// emitted record. The levels the book's depth window deleted after it are appended to the
    /// diff as deletions (quantity `"0"`), so the diff applied in order to the book before it
    /// gives exactly the book after it, at full depth.
    pub fn take_diff(&mut self, d: Diff) -> Result<(Step, Option<Diff>), BadDecimal> {
        let State::Synced { last, bridged } = self.state else {
            if self.seq.source() == SnapshotSource::InBand {
                // Before its snapshot (e.g. the tail of an old subscription): nothing to keep.
                return Ok((Step::Dropped, None));
            }
            self.buffer(d);
            return Ok((Step::Buffered, None));
        };
        match self.seq.decide(&d, last, bridged) {
            Decision::Drop => {
                self.drops += 1;
                if self.drops < MAX_CONSECUTIVE_DROPS {
                    return Ok((Step::Dropped, None));
                }
                let stalled = Break::Stalled {
                    dropped: self.drops,
                    last,
                    got: d.last,
                };
                self.reset();
                if self.seq.source() == SnapshotSource::Rest {
                    // Perhaps a genuine diff the wrong last id hid: the next snapshot decides.
                    self.buffer(d);
                }
                Ok((Step::Broken(stalled), None))
            }
            Decision::Reject(why) => {
                // The book cannot follow the venue past this diff: resync.
                self.reset();
                Ok((Step::Rejected(why), None))
            }
            Decision::Apply => match self.apply_checked(&d)? {
                Some(b) => Ok((Step::Broken(b), None)),
                None => {
                    // Levels the depth window deleted are deletions of this diff too (the
                    // venue does not send them): appended after the diff's own levels, so
                    // the diff applied in order to the previous book gives this book.
                    let mut d = d;
                    for p in self.truncated.0.drain(..) {
                        d.bids.push(&p, "0");
                    }
                    for p in self.truncated.1.drain(..) {
                        d.asks.push(&p, "0");
                    }
                    Ok((Step::Applied, Some(d)))
                }
            },
            Decision::Gap { expected, got } => {
                self.reset();
                if self.seq.source() == SnapshotSource::Rest {
                    self.buffer(d);
                }
                Ok((Step::Gap { expected, got }, None))
            }
        }
    }

    /// Which buffered diffs continue a snapshot at `id`, in order (`true` at their index); or
    /// the gap that keeps the snapshot from being completed.
    ///
    /// Binance's procedure: drop what the snapshot already holds; the first diff kept must
    /// bridge the snapshot (spot `U <= lastUpdateId+1 <= u`), each next one continue the last;
    /// otherwise fetch a newer snapshot. A diff that does not continue the chain is a gap only
    /// when nothing buffered after it does: update ids only grow, so a later diff that
    /// continues the chain (or is older than it) proves the diffs between were out of order
    /// (an impossible id, a diff from elsewhere). Those are skipped and counted
    /// ([`BookSync::take_out_of_order`]); they must not make every snapshot "too old" and keep
    /// the symbol from ever syncing again. A stream that only grows never skips a diff here:
    /// a snapshot older than the whole buffer, or a hole in it, is still a gap.
    ///
    /// Returns the chain, the diffs skipped as out of order, and the diffs skipped as rejected.
    fn bridge(&self, id: i64) -> Result<(Vec<bool>, u64, u64), Step> {
        let mut chain = vec![false; self.buffer.len()];
        let (mut skipped, mut rejected) = (0u64, 0u64);
        let (mut last, mut bridged) = (id, false);
        let mut i = 0;
        while let Some(d) = self.buffer.get(i) {
            match self.seq.decide(d, last, bridged) {
                Decision::Drop => i += 1,
                Decision::Reject(_) => {
                    rejected += 1;
                    i += 1;
                }
                Decision::Apply => {
                    chain[i] = true;
                    (last, bridged) = (d.last, true);
                    i += 1;
                }
                Decision::Gap { expected, got } => {
                    // Diffs i..j are all gaps or rejects at this position (it does not move
                    // until j), so one look-ahead covers them all: linear in the buffer.
                    let back = (i + 1..self.buffer.len()).find(|&j| {
                        matches!(
                            self.seq.decide(&self.buffer[j], last, bridged),
                            Decision::Apply | Decision::Drop
                        )
                    });
                    let Some(j) = back else {
                        // The snapshot is older than the buffer, or the buffer has a hole:
                        // keep buffering, fetch again.
                        return Err(Step::Gap { expected, got });
                    };
                    for d in self.buffer.range(i..j) {
                        match self.seq.decide(d, last, bridged) {
                            Decision::Gap { .. } => skipped += 1,
                            Decision::Reject(_) => rejected += 1,
                            _ => {}
                        }
                    }
                    i = j;
                }
            }
        }
        Ok((chain, skipped, rejected))
    }

    /// Builds the book from a snapshot and bridges the buffered diffs (Binance's procedure;
    /// diffs out of order in the buffer are skipped, see [`BookSync::take_out_of_order`], and
    /// impossible ones too, see [`BookSync::take_bridge_rejected`]).
    /// `Step::Synced` on success; `Step::Gap` when the snapshot does not bridge the buffer (too
    /// old, or a hole in the buffered stream: fetch a newer one; the buffer is kept);
    /// `Step::Broken` when the snapshot fails its checksum or is crossed.
    pub fn on_snapshot(&mut self, s: &Snapshot) -> Result<Step, BadDecimal> {
        let mut book = if self.seq.ordered_book() {
            OrderBook::ordered()
        } else {
            OrderBook::new()
        };
        for (p, q) in &s.bids {
            book.apply(Side::Bid, p, q)?;
        }
        for (p, q) in &s.asks {
            book.apply(Side::Ask, p, q)?;
        }
        // Check the whole buffer before touching the book.
        let (chain, skipped, rejected) = match self.bridge(s.last_update_id) {
            Ok(plan) => plan,
            Err(gap) => return Ok(gap),
        };
        self.out_of_order += skipped;
        self.bridge_rejected += rejected;
        self.drops = 0;
        self.book = book;
        self.state = State::Synced {
            last: s.last_update_id,
            bridged: false,
        };
        if let Some(b) = self.check(s.checksum) {
            self.reset();
            return Ok(Step::Broken(b));
        }
        let buffered: Vec<Diff> = self.buffer.drain(..).collect();
        self.buffer_bytes = 0;
        for (d, _) in buffered.iter().zip(chain).filter(|(_, apply)| *apply) {
            if let State::Synced { last, bridged } = self.state {
                if let Decision::Apply = self.seq.decide(d, last, bridged) {
                    if let Some(b) = self.apply_checked(d)? {
                        return Ok(Step::Broken(b));
                    }
                }
            }
        }
        Ok(Step::Synced)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Contiguous ids (`first` must follow `last`), as a generic venue's rules.
    #[derive(Debug)]
    struct Ids(SnapshotSource);

    impl Sequencer for Ids {
        fn source(&self) -> SnapshotSource {
            self.0
        }

        fn decide(&self, d: &Diff, last: i64, _bridged: bool) -> Decision {
            if d.last < d.first {
                Decision::Reject("u_before_U")
            } else if d.last <= last {
                Decision::Drop
            } else if d.first == last + 1 {
                Decision::Apply
            } else {
                Decision::Gap {
                    expected: last + 1,
                    got: d.first,
                }
            }
        }
    }

    fn diff(first: i64, last: i64, price: &str) -> Diff {
        Diff {
            first,
            last,
            bids: [(price, "1")].into_iter().collect(),
            ..Diff::default()
        }
    }

    fn synced(source: SnapshotSource, id: i64) -> BookSync {
        let mut s = BookSync::new(Arc::new(Ids(source)), 1000);
        let snap = Snapshot {
            last_update_id: id,
            bids: vec![("1".into(), "1".into())],
            asks: vec![("2".into(), "1".into())],
            checksum: None,
        };
        assert_eq!(s.on_snapshot(&snap).unwrap(), Step::Synced);
        s
    }

    #[test]
    fn after_one_absurd_id_the_genuine_diffs_stall_the_book_and_it_is_discarded() {
        for source in [SnapshotSource::Rest, SnapshotSource::InBand] {
            let mut s = synced(source, 10);
            assert_eq!(s.on_diff(diff(11, 11, "1.1")).unwrap(), Step::Applied);
            // One diff continues the book but ends absurdly far ahead.
            assert_eq!(
                s.on_diff(diff(12, 1_000_000_000, "1.2")).unwrap(),
                Step::Applied
            );
            // The genuine stream (13, 14, ...) is now "older than the book".
            for id in 13..13 + 99 {
                assert_eq!(s.on_diff(diff(id, id, "1.3")).unwrap(), Step::Dropped);
                assert!(s.is_synced());
            }
            // The 100th in a row: the book stopped applying; discarded, a snapshot needed.
            let step = s.on_diff(diff(112, 112, "1.3")).unwrap();
            assert_eq!(
                step,
                Step::Broken(Break::Stalled {
                    dropped: 100,
                    last: 1_000_000_000,
                    got: 112
                })
            );
            assert!(!s.is_synced() && s.book().is_empty());
            // From a REST source the diff waits for the snapshot with the ones after it.
            let kept = usize::from(source == SnapshotSource::Rest);
            assert_eq!(s.buffered().0, kept, "{source:?}");
        }
    }

    #[test]
    fn drops_interrupted_by_an_applied_diff_do_not_stall_the_book() {
        let mut s = synced(SnapshotSource::Rest, 100);
        for round in 0..3 {
            for _ in 0..MAX_CONSECUTIVE_DROPS - 1 {
                assert_eq!(s.on_diff(diff(50, 60, "1.1")).unwrap(), Step::Dropped);
            }
            let next = 101 + round;
            assert_eq!(s.on_diff(diff(next, next, "1.2")).unwrap(), Step::Applied);
        }
        assert!(s.is_synced());
        assert_eq!(s.last_update_id(), Some(103));
    }

    #[test]
    fn a_buffered_diff_counts_itself_its_text_and_its_level_index() {
        let mut d = diff(1, 1, "1.5");
        d.asks.push("2.25", "10");
        // "1.5" "1" and "2.25" "10": 4 + 6 bytes of text, two index entries of two usizes.
        let want = std::mem::size_of::<Diff>() + 10 + 2 * 2 * std::mem::size_of::<usize>();
        assert_eq!(d.buffered_bytes(), want);
        let mut s = BookSync::new(Arc::new(Ids(SnapshotSource::Rest)), 10);
        assert_eq!(s.on_diff(d).unwrap(), Step::Buffered);
        assert_eq!(s.buffered(), (1, want));
    }

    #[test]
    fn one_impossible_diff_on_a_synced_book_discards_it() {
        for source in [SnapshotSource::Rest, SnapshotSource::InBand] {
            let mut s = synced(source, 10);
            assert_eq!(s.on_diff(diff(11, 11, "1.1")).unwrap(), Step::Applied);
            assert_eq!(
                s.on_diff(diff(15, 12, "1.2")).unwrap(),
                Step::Rejected("u_before_U")
            );
            assert!(!s.is_synced() && s.book().is_empty());
            // The impossible diff is not kept for the next snapshot.
            assert_eq!(s.buffered(), (0, 0));
            // The next diffs wait for (REST) or are dropped until (in band) a new snapshot.
            let want = match source {
                SnapshotSource::Rest => Step::Buffered,
                SnapshotSource::InBand => Step::Dropped,
            };
            assert_eq!(s.on_diff(diff(12, 12, "1.2")).unwrap(), want);
        }
    }
}
