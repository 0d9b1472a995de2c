//! Local order-book synchronization (Binance rules): buffer diffs, bridge the REST snapshot,
//! then require contiguous update ids; any break is a gap that asks for a new snapshot.
//!
//! - Spot: drop diffs with `u <= lastUpdateId`; the first applied needs
//!   `U <= lastUpdateId+1 <= u`; afterwards each `U == previous u + 1`.
//! - USD-M futures: drop `u < lastUpdateId`; the first applied needs `U <= lastUpdateId <= u`;
//!   afterwards each `pu == previous u`.

use std::collections::VecDeque;

use super::levels::{BadDecimal, OrderBook, Side};
/// A diff's levels: price and absolute quantity, the venue's digits, one text buffer per side;
/// the `Level2Delta` record is encoded straight from them.
pub use crate::schema::borrowed::Levels;

/// Which continuity rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// Binance spot (`U`/`u`).
    Spot,
    /// Binance USD-M futures (`U`/`u`/`pu`).
    UsdM,
}

/// One depth diff (owned).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// First update id in the diff (`U`).
    pub first: i64,
    /// Final update id in the diff (`u`).
    pub last: i64,
    /// Previous diff's final update id (`pu`, futures only).
    pub prev: Option<i64>,
    /// Bid levels (price, absolute quantity).
    pub bids: Levels,
    /// Ask levels (price, absolute quantity).
    pub asks: Levels,
    /// Venue event time, µs.
    pub event_time: Option<i64>,
    /// Venue transaction time, µs (futures `T`).
    pub timestamp: Option<i64>,
    /// Local receipt time, µs.
    pub receipt_time: i64,
}

/// A REST depth snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// `lastUpdateId`.
    pub last_update_id: i64,
    /// Bid levels.
    pub bids: Vec<(String, String)>,
    /// Ask levels.
    pub asks: Vec<(String, String)>,
}

/// What happened to a diff or snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Kept until a snapshot arrives.
    Buffered,
    /// Older than the book; ignored.
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
}

#[derive(Debug)]
enum State {
    AwaitingSnapshot,
    Synced { last: i64, bridged: bool },
}

enum Decision {
    Drop,
    Apply,
    Gap { expected: i64, got: i64 },
}

/// The book of one symbol and its sync state.
#[derive(Debug)]
pub struct BookSync {
    rules: Rules,
    state: State,
    book: OrderBook,
    buffer: VecDeque<Diff>,
    buffer_limit: usize,
}

impl BookSync {
    /// An unsynced book; at most `buffer_limit` diffs wait for a snapshot.
    pub fn new(rules: Rules, buffer_limit: usize) -> BookSync {
        BookSync {
            rules,
            state: State::AwaitingSnapshot,
            book: OrderBook::new(),
            buffer: VecDeque::new(),
            buffer_limit: buffer_limit.max(1),
        }
    }

    /// The book (meaningful when synced).
    pub fn book(&self) -> &OrderBook {
        &self.book
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

    /// Forgets the book (e.g. after a reconnect); diffs are buffered until the next snapshot.
    pub fn reset(&mut self) {
        self.state = State::AwaitingSnapshot;
        self.book.clear();
        self.buffer.clear();
    }

    fn decide(&self, d: &Diff, last: i64, bridged: bool) -> Decision {
        match (self.rules, bridged) {
            (Rules::Spot, false) => {
                if d.last <= last {
                    Decision::Drop
                } else if d.first <= last + 1 {
                    Decision::Apply
                } else {
                    Decision::Gap {
                        expected: last + 1,
                        got: d.first,
                    }
                }
            }
            (Rules::Spot, true) => {
                if d.first == last + 1 {
                    Decision::Apply
                } else if d.last <= last {
                    Decision::Drop
                } else {
                    Decision::Gap {
                        expected: last + 1,
                        got: d.first,
                    }
                }
            }
            (Rules::UsdM, false) => {
                if d.last < last {
                    Decision::Drop
                } else if d.first <= last {
                    Decision::Apply
                } else {
                    Decision::Gap {
                        expected: last,
                        got: d.first,
                    }
                }
            }
            (Rules::UsdM, true) => match d.prev {
                Some(pu) if pu == last => Decision::Apply,
                Some(_) if d.last <= last => Decision::Drop,
                pu => Decision::Gap {
                    expected: last,
                    got: pu.unwrap_or(d.first),
                },
            },
        }
    }

    fn apply(&mut self, d: &Diff) -> Result<(), BadDecimal> {
        for (p, q) in d.bids.iter() {
            self.book.apply(Side::Bid, p, q)?;
        }
        for (p, q) in d.asks.iter() {
            self.book.apply(Side::Ask, p, q)?;
        }
        self.state = State::Synced {
            last: d.last,
            bridged: true,
        };
        Ok(())
    }

    /// Takes one diff: buffers it, drops it, applies it, or reports a gap (the book is then
    /// reset and this diff starts the new buffer).
    pub fn on_diff(&mut self, d: Diff) -> Result<Step, BadDecimal> {
        self.take_diff(d).map(|(step, _)| step)
    }

    /// [`BookSync::on_diff`], handing an applied diff back so its levels can move into the
    /// emitted record.
    pub fn take_diff(&mut self, d: Diff) -> Result<(Step, Option<Diff>), BadDecimal> {
        let State::Synced { last, bridged } = self.state else {
            if self.buffer.len() >= self.buffer_limit {
                self.buffer.pop_front();
            }
            self.buffer.push_back(d);
            return Ok((Step::Buffered, None));
        };
        match self.decide(&d, last, bridged) {
            Decision::Drop => Ok((Step::Dropped, None)),
            Decision::Apply => self.apply(&d).map(|()| (Step::Applied, Some(d))),
            Decision::Gap { expected, got } => {
                self.reset();
                self.buffer.push_back(d);
                Ok((Step::Gap { expected, got }, None))
            }
        }
    }

    /// Builds the book from a snapshot and bridges the buffered diffs. `Step::Synced` on
    /// success; `Step::Gap` when the snapshot does not bridge the buffer (too old: fetch a newer
    /// one; the buffer is kept).
    pub fn on_snapshot(&mut self, s: &Snapshot) -> Result<Step, BadDecimal> {
        let mut book = OrderBook::new();
        for (p, q) in &s.bids {
            book.apply(Side::Bid, p, q)?;
        }
        for (p, q) in &s.asks {
            book.apply(Side::Ask, p, q)?;
        }
        let (mut last, mut bridged) = (s.last_update_id, false);
        // Check the whole buffer before touching the book.
        let mut apply_from = self.buffer.len();
        for (i, d) in self.buffer.iter().enumerate() {
            match self.decide(d, last, bridged) {
                Decision::Drop => {}
                Decision::Apply => {
                    apply_from = apply_from.min(i);
                    (last, bridged) = (d.last, true);
                }
                Decision::Gap { expected, got } => {
                    // The snapshot is older than the buffer: keep buffering, fetch again.
                    return Ok(Step::Gap { expected, got });
                }
            }
        }
        self.book = book;
        self.state = State::Synced {
            last: s.last_update_id,
            bridged: false,
        };
        let buffered: Vec<Diff> = self.buffer.drain(..).skip(apply_from).collect();
        for d in &buffered {
            if let State::Synced { last, bridged } = self.state {
                if let Decision::Apply = self.decide(d, last, bridged) {
                    self.apply(d)?;
                }
            }
        }
        Ok(Step::Synced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(first: i64, last: i64, prev: Option<i64>, bid: (&str, &str)) -> Diff {
        Diff {
            first,
            last,
            prev,
            bids: [bid].into_iter().collect(),
            ..Default::default()
        }
    }

    fn snap(id: i64) -> Snapshot {
        Snapshot {
            last_update_id: id,
            bids: vec![("1.0".into(), "5".into())],
            asks: vec![("2.0".into(), "5".into())],
        }
    }

    #[test]
    fn spot_bridges_drops_old_and_detects_gaps() {
        let mut s = BookSync::new(Rules::Spot, 100);
        assert_eq!(
            s.on_diff(diff(5, 8, None, ("0.9", "1"))).unwrap(),
            Step::Buffered
        );
        assert_eq!(
            s.on_diff(diff(9, 12, None, ("1.0", "0"))).unwrap(),
            Step::Buffered
        );
        assert_eq!(
            s.on_diff(diff(13, 13, None, ("0.8", "2"))).unwrap(),
            Step::Buffered
        );
        // lastUpdateId 10: [5,8] dropped, [9,12] bridges 11, [13,13] follows.
        assert_eq!(s.on_snapshot(&snap(10)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(13));
        let (bids, _) = s.book().levels(None);
        assert_eq!(
            bids.iter().map(|l| l.price.as_str()).collect::<Vec<_>>(),
            ["0.8"]
        );
        assert_eq!(
            s.on_diff(diff(14, 15, None, ("0.7", "1"))).unwrap(),
            Step::Applied
        );
        assert_eq!(
            s.on_diff(diff(17, 18, None, ("0.7", "1"))).unwrap(),
            Step::Gap {
                expected: 16,
                got: 17
            }
        );
        assert!(!s.is_synced());
    }

    #[test]
    fn spot_snapshot_too_old_keeps_the_buffer() {
        let mut s = BookSync::new(Rules::Spot, 100);
        s.on_diff(diff(20, 25, None, ("1", "1"))).unwrap();
        assert_eq!(
            s.on_snapshot(&snap(10)).unwrap(),
            Step::Gap {
                expected: 11,
                got: 20
            }
        );
        assert!(!s.is_synced());
        assert_eq!(s.on_snapshot(&snap(22)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(25));
    }

    #[test]
    fn usdm_uses_pu_chain() {
        let mut s = BookSync::new(Rules::UsdM, 100);
        s.on_diff(diff(90, 99, Some(89), ("1", "1"))).unwrap();
        s.on_diff(diff(100, 110, Some(99), ("1", "2"))).unwrap();
        // first applied needs U <= 100 <= u: [100,110]; [90,99] is dropped (u < 100).
        assert_eq!(s.on_snapshot(&snap(100)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(110));
        assert_eq!(
            s.on_diff(diff(111, 120, Some(110), ("1", "3"))).unwrap(),
            Step::Applied
        );
        assert_eq!(
            s.on_diff(diff(125, 130, Some(121), ("1", "3"))).unwrap(),
            Step::Gap {
                expected: 120,
                got: 121
            }
        );
    }

    #[test]
    fn buffer_is_bounded() {
        let mut s = BookSync::new(Rules::Spot, 2);
        for i in 0..5 {
            s.on_diff(diff(i, i, None, ("1", "1"))).unwrap();
        }
        assert_eq!(s.buffer.len(), 2);
    }
}
