//! Binance's book-sync rules (spot, USD-M and COIN-M futures): buffer diffs, bridge the REST
//! snapshot, then require contiguous update ids; any break asks for a new snapshot.
//!
//! - Spot: drop diffs with `u <= lastUpdateId`; the first applied needs
//!   `U <= lastUpdateId+1 <= u`; afterwards each `U == previous u + 1`.
//! - Futures (USD-M, COIN-M): drop `u < lastUpdateId`; the first applied needs
//!   `U <= lastUpdateId <= u`; afterwards each `pu == previous u`.
//!
//! Binance has no book checksum.
//!
//! Every diff must have `u >= U`, and on futures `u >= pu` too: a diff ending before it
//! starts, or before the diff it claims to follow, is impossible and rejected, never applied
//! (even when its `pu` continues the chain).
//!
//! An implausible *span* inside one diff is rejected ([`MAX_DIFF_SPAN`]); an implausible jump
//! past the last applied id (say `U = u = i64::MAX`) is a gap, not a rejection: futures ids are
//! shared by every symbol of the market (about 1.5·10^5 a second in the recorded USD-M stream),
//! so a quiet symbol's next diff can lie far past its last one, and a rule that rejected it
//! would reject every later diff too and freeze the book. The generic driver instead skips such
//! a diff when it bridges the next snapshot, once a later buffered diff proves it out of order
//! ([`crate::book::BookSync::take_out_of_order`]).

use crate::book::{Decision, Diff, Sequencer, SnapshotSource};

/// The most update ids one diff may plausibly span (`u - U`); a wider one is rejected.
///
/// Measured on the recorded USD-M stream (tests/fixtures/binance, 769 diffs of 4 symbols,
/// 100 ms each): the widest diff spans 12 496 ids, the median 1 740, and the market-wide id
/// rate peaks at about 1.5·10^5 a second (14 860 ids in 109 ms on CTKUSDT). Spot ids are per
/// symbol and far slower (at most 15 in one recorded diff). 10^7 is 800 times the widest diff
/// recorded and a full second of ids at 65 times the recorded peak rate, so it only refuses
/// what no 100 ms (or 250/500 ms) diff can span; the former 10^8 let one absurd `u` up to 10^8
/// ahead through, after which every genuine diff was dropped as old.
pub const MAX_DIFF_SPAN: i64 = 10_000_000;

/// Which continuity rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// Binance spot (`U`/`u`).
    Spot,
    /// Binance futures, USD-M and COIN-M (`U`/`u`/`pu`).
    UsdM,
}

impl Sequencer for Rules {
    fn source(&self) -> SnapshotSource {
        SnapshotSource::Rest
    }

    fn decide(&self, d: &Diff, last: i64, bridged: bool) -> Decision {
        if d.last < d.first {
            return Decision::Reject("u_before_U");
        }
        // Futures: the diff ends at or after the one it follows (`u >= pu`).
        if d.prev.is_some_and(|pu| d.last < pu) {
            return Decision::Reject("u_before_pu");
        }
        if d.last
            .checked_sub(d.first)
            .is_none_or(|span| span > MAX_DIFF_SPAN)
        {
            return Decision::Reject("implausible_span");
        }
        let Some(next) = last.checked_add(1) else {
            return Decision::Reject("id_overflow");
        };
        match (self, bridged) {
            (Rules::Spot, false) => {
                if d.last <= last {
                    Decision::Drop
                } else if d.first <= next {
                    Decision::Apply
                } else {
                    Decision::Gap {
                        expected: next,
                        got: d.first,
                    }
                }
            }
            (Rules::Spot, true) => {
                if d.first == next {
                    Decision::Apply
                } else if d.last <= last {
                    Decision::Drop
                } else {
                    Decision::Gap {
                        expected: next,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::{BookSync, Diff, Snapshot, Step};
    use std::sync::Arc;

    fn sync(r: Rules, n: usize) -> BookSync {
        BookSync::new(Arc::new(r), n)
    }

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
            ..Default::default()
        }
    }

    #[test]
    fn spot_bridges_drops_old_and_detects_gaps() {
        let mut s = sync(Rules::Spot, 100);
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
        let mut s = sync(Rules::Spot, 100);
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
        let mut s = sync(Rules::UsdM, 100);
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
        let mut s = sync(Rules::Spot, 2);
        for i in 0..5 {
            s.on_diff(diff(i, i, None, ("1", "1"))).unwrap();
        }
        assert_eq!(s.buffered().0, 2);
    }

    #[test]
    fn impossible_diffs_are_rejected_not_applied() {
        let mut s = sync(Rules::Spot, 100);
        // Each is rejected, not applied; the synced book that cannot apply it is discarded
        // (resynced from the next snapshot).
        for (d, why) in [
            // u < U.
            (diff(12, 11, None, ("0.5", "1")), "u_before_U"),
            // One 100 ms diff spanning more than 10^7 updates.
            (
                diff(11, 11 + 200_000_000, None, ("0.5", "1")),
                "implausible_span",
            ),
            // A span past i64's range (found by the book_sequences fuzz target).
            (diff(i64::MIN, 11, None, ("0.5", "1")), "implausible_span"),
        ] {
            assert_eq!(s.on_snapshot(&snap(10)).unwrap(), Step::Synced);
            assert_eq!(s.on_diff(d).unwrap(), Step::Rejected(why));
            assert!(!s.is_synced());
            assert_eq!(s.buffered().0, 0, "the impossible diff is not kept");
        }
        // Nothing of them reached the book: the next snapshot and its due diff continue.
        assert_eq!(s.on_snapshot(&snap(10)).unwrap(), Step::Synced);
        assert_eq!(s.book().len(), (1, 1));
        assert_eq!(
            s.on_diff(diff(11, 11, None, ("0.5", "1"))).unwrap(),
            Step::Applied
        );
    }

    #[test]
    fn usdm_applies_a_diff_only_when_u_is_at_least_u_start_and_pu() {
        let synced = || {
            let mut s = sync(Rules::UsdM, 100);
            s.on_diff(diff(95, 105, Some(94), ("0.9", "1"))).unwrap();
            assert_eq!(s.on_snapshot(&snap(100)).unwrap(), Step::Synced);
            assert_eq!(s.last_update_id(), Some(105));
            s
        };
        // pu = 105 continues the chain, but u = 104 ends before U = 106: rejected, not applied
        // (the synced book that cannot apply it is discarded and resynced).
        let mut s = synced();
        assert_eq!(
            s.on_diff(diff(106, 104, Some(105), ("0.5", "1"))).unwrap(),
            Step::Rejected("u_before_U")
        );
        assert!(!s.is_synced());
        // pu = 105 continues the chain and U <= u, but u = 103 ends before pu = 105.
        let mut s = synced();
        assert_eq!(
            s.on_diff(diff(101, 103, Some(105), ("0.5", "1"))).unwrap(),
            Step::Rejected("u_before_pu")
        );
        assert!(!s.is_synced());
        // u = pu (a diff carrying no new id) is possible and applied.
        let mut s = synced();
        assert_eq!(
            s.on_diff(diff(105, 105, Some(105), ("0.8", "1"))).unwrap(),
            Step::Applied
        );
        assert_eq!(
            s.on_diff(diff(106, 112, Some(105), ("0.7", "1"))).unwrap(),
            Step::Applied
        );
        assert_eq!(s.last_update_id(), Some(112));
        assert_eq!(bids(&s), ["1.0", "0.9", "0.8", "0.7"]);
    }

    #[test]
    fn usdm_rejects_u_before_pu_while_bridging_too() {
        let mut s = sync(Rules::UsdM, 100);
        // Buffered before the snapshot: [98,102] with pu 120 is impossible (u < pu).
        s.on_diff(diff(98, 102, Some(120), ("0.5", "1"))).unwrap();
        s.on_diff(diff(99, 104, Some(97), ("0.9", "1"))).unwrap();
        // lastUpdateId 100: the impossible diff is not the one bridging it.
        assert_eq!(s.on_snapshot(&snap(100)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(104));
        assert_eq!(bids(&s), ["1.0", "0.9"]);
    }

    #[test]
    fn the_span_bound_keeps_recorded_diffs_and_refuses_wider_ones() {
        let mut s = sync(Rules::UsdM, 100);
        assert_eq!(s.on_snapshot(&snap(1_000)).unwrap(), Step::Synced);
        // The widest recorded USD-M diff spans 12 496 ids; this one holds lastUpdateId 1000.
        assert_eq!(
            s.on_diff(diff(999, 13_495, Some(998), ("0.9", "1")))
                .unwrap(),
            Step::Applied
        );
        assert_eq!(
            s.on_diff(diff(13_496, 13_497, Some(13_495), ("0.95", "1")))
                .unwrap(),
            Step::Applied
        );
        // 10^7 ids: still applied.
        assert_eq!(
            s.on_diff(diff(13_498, 10_013_498, Some(13_497), ("0.8", "1")))
                .unwrap(),
            Step::Applied
        );
        assert_eq!(s.last_update_id(), Some(10_013_498));
        assert_eq!(bids(&s), ["1.0", "0.95", "0.9", "0.8"]);
        // 10^7 + 1 ids in one diff: rejected, never applied (the book is discarded).
        assert_eq!(
            s.on_diff(diff(10_013_499, 20_013_500, Some(10_013_498), ("0.7", "1")))
                .unwrap(),
            Step::Rejected("implausible_span")
        );
        assert!(!s.is_synced());
    }

    #[test]
    fn ids_at_i64_max_do_not_overflow() {
        for rules in [Rules::Spot, Rules::UsdM] {
            let mut s = sync(rules, 100);
            assert_eq!(s.on_snapshot(&snap(i64::MAX)).unwrap(), Step::Synced);
            assert_eq!(
                s.on_diff(diff(i64::MAX, i64::MAX, Some(i64::MAX), ("0.5", "1")))
                    .unwrap(),
                Step::Rejected("id_overflow")
            );
        }
    }

    #[test]
    fn a_crossed_book_is_discarded() {
        let mut s = sync(Rules::Spot, 100);
        // Book: bid 1.0, ask 2.0. A bid at 2.5 without the ask going: crossed.
        assert_eq!(s.on_snapshot(&snap(10)).unwrap(), Step::Synced);
        assert_eq!(
            s.on_diff(diff(11, 11, None, ("2.5", "3"))).unwrap(),
            Step::Broken(crate::book::Break::Crossed {
                bid: "2.5".into(),
                ask: "2.0".into()
            })
        );
        assert!(!s.is_synced());
        // A bid equal to the ask (a locked book) is crossed too.
        let mut s = sync(Rules::Spot, 100);
        s.on_snapshot(&snap(10)).unwrap();
        assert!(matches!(
            s.on_diff(diff(11, 11, None, ("2.00", "3"))).unwrap(),
            Step::Broken(crate::book::Break::Crossed { .. })
        ));
        // Deleting the best ask first, then raising the bid, is fine.
        let mut s = sync(Rules::Spot, 100);
        s.on_snapshot(&snap(10)).unwrap();
        let mut d = diff(11, 11, None, ("2.5", "3"));
        d.asks.push("2.0", "0");
        d.asks.push("3.0", "1");
        assert_eq!(s.on_diff(d).unwrap(), Step::Applied);
    }

    #[test]
    fn the_snapshot_wait_buffer_is_capped_in_bytes() {
        let mut s = sync(Rules::Spot, 1_000_000).with_buffer_bytes(1_000);
        let big = "9".repeat(200);
        for i in 0..20 {
            let d = diff(i, i, None, (big.as_str(), "1"));
            assert_eq!(s.on_diff(d).unwrap(), Step::Buffered);
        }
        // Each diff holds itself, 201 bytes of level text and one level's index entry.
        let per = std::mem::size_of::<Diff>() + 201 + crate::book::sync::LEVEL_INDEX_BYTES;
        let (n, bytes) = s.buffered();
        assert_eq!((n, bytes), (1_000 / per, 1_000 / per * per));
        assert_eq!(s.take_overflowed(), (20 - 1_000 / per) as u64);
    }

    /// The bid prices of the book, best first.
    fn bids(s: &BookSync) -> Vec<String> {
        s.book()
            .levels(None)
            .0
            .into_iter()
            .map(|l| l.price)
            .collect()
    }

    #[test]
    fn a_diff_with_an_impossible_id_does_not_keep_the_book_from_resyncing() {
        let mut s = sync(Rules::Spot, 100);
        assert_eq!(s.on_snapshot(&snap(10)).unwrap(), Step::Synced);
        assert_eq!(
            s.on_diff(diff(11, 12, None, ("0.9", "1"))).unwrap(),
            Step::Applied
        );
        // U = u = i64::MAX where 13 is due: the book is discarded; the diff starts the buffer.
        assert_eq!(
            s.on_diff(diff(i64::MAX, i64::MAX, None, ("0.5", "1")))
                .unwrap(),
            Step::Gap {
                expected: 13,
                got: i64::MAX
            }
        );
        assert!(!s.is_synced());
        // The venue's stream goes on while a snapshot is fetched.
        for d in [
            diff(13, 14, None, ("0.8", "2")),
            diff(15, 16, None, ("0.7", "3")),
        ] {
            assert_eq!(s.on_diff(d).unwrap(), Step::Buffered);
        }
        // lastUpdateId 13: [13,14] bridges it, so the diff ahead of it is out of order.
        assert_eq!(s.on_snapshot(&snap(13)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(16));
        assert_eq!(bids(&s), ["1.0", "0.8", "0.7"]);
        assert_eq!(s.take_out_of_order(), 1);
        assert_eq!(s.buffered(), (0, 0));
        assert_eq!(
            s.on_diff(diff(17, 17, None, ("0.6", "1"))).unwrap(),
            Step::Applied
        );

        // The same, with a snapshot newer than every genuine diff buffered: they are dropped,
        // the impossible one skipped, and the book continues from the snapshot.
        let mut s = sync(Rules::Spot, 100);
        for d in [
            diff(i64::MAX, i64::MAX, None, ("0.5", "1")),
            diff(13, 14, None, ("0.8", "2")),
        ] {
            assert_eq!(s.on_diff(d).unwrap(), Step::Buffered);
        }
        assert_eq!(s.on_snapshot(&snap(20)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(20));
        assert_eq!(bids(&s), ["1.0"]);
        assert_eq!(s.take_out_of_order(), 1);
        assert_eq!(
            s.on_diff(diff(21, 22, None, ("0.6", "1"))).unwrap(),
            Step::Applied
        );
    }

    #[test]
    fn an_impossible_id_inside_or_after_the_bridge_is_skipped_once_the_stream_goes_on() {
        // Inside: [11,12] bridges 10, [MAX] does not continue it, [13,14] does.
        let mut s = sync(Rules::Spot, 100);
        for d in [
            diff(11, 12, None, ("0.9", "1")),
            diff(i64::MAX - 5, i64::MAX - 1, None, ("0.5", "1")),
            diff(13, 14, None, ("0.8", "1")),
        ] {
            s.on_diff(d).unwrap();
        }
        assert_eq!(s.on_snapshot(&snap(10)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(14));
        assert_eq!(bids(&s), ["1.0", "0.9", "0.8"]);
        assert_eq!(s.take_out_of_order(), 1);

        // Last in the buffer: nothing proves it wrong yet, so it is a gap (fetch again) and
        // the buffer is kept; once the stream goes on past it, the next snapshot syncs.
        let mut s = sync(Rules::Spot, 100);
        s.on_diff(diff(11, 12, None, ("0.9", "1"))).unwrap();
        s.on_diff(diff(i64::MAX, i64::MAX, None, ("0.5", "1")))
            .unwrap();
        assert_eq!(
            s.on_snapshot(&snap(10)).unwrap(),
            Step::Gap {
                expected: 13,
                got: i64::MAX
            }
        );
        assert_eq!(s.buffered().0, 2);
        assert_eq!(s.take_out_of_order(), 0);
        s.on_diff(diff(13, 14, None, ("0.8", "1"))).unwrap();
        assert_eq!(s.on_snapshot(&snap(10)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(14));
        assert_eq!(s.take_out_of_order(), 1);
    }

    #[test]
    fn a_hole_in_the_buffered_stream_is_still_a_gap() {
        // [13,14] never came: nothing after [15,16] comes back to 13, so no diff is skipped
        // and the snapshot cannot be completed.
        let mut s = sync(Rules::Spot, 100);
        s.on_diff(diff(11, 12, None, ("0.9", "1"))).unwrap();
        s.on_diff(diff(15, 16, None, ("0.8", "1"))).unwrap();
        s.on_diff(diff(17, 18, None, ("0.7", "1"))).unwrap();
        assert_eq!(
            s.on_snapshot(&snap(10)).unwrap(),
            Step::Gap {
                expected: 13,
                got: 15
            }
        );
        assert!(!s.is_synced());
        assert_eq!(s.buffered().0, 3);
        // A snapshot past the hole: [11,12] dropped, [15,16] bridges 14.
        assert_eq!(s.on_snapshot(&snap(14)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(18));
        assert_eq!(bids(&s), ["1.0", "0.8", "0.7"]);
        assert_eq!(s.take_out_of_order(), 0);
    }

    #[test]
    fn usdm_skips_an_impossible_id_ahead_of_the_pu_chain() {
        let mut s = sync(Rules::UsdM, 100);
        s.on_diff(diff(95, 105, Some(94), ("0.9", "1"))).unwrap();
        assert_eq!(s.on_snapshot(&snap(100)).unwrap(), Step::Synced);
        assert_eq!(
            s.on_diff(diff(106, 110, Some(105), ("0.8", "1"))).unwrap(),
            Step::Applied
        );
        // pu = u = U = i64::MAX where pu 110 is due.
        assert_eq!(
            s.on_diff(diff(i64::MAX, i64::MAX, Some(i64::MAX), ("0.5", "1")))
                .unwrap(),
            Step::Gap {
                expected: 110,
                got: i64::MAX
            }
        );
        s.on_diff(diff(111, 120, Some(110), ("0.7", "1"))).unwrap();
        s.on_diff(diff(121, 130, Some(120), ("0.6", "1"))).unwrap();
        // lastUpdateId 115: [111,120] holds it (U <= 115 <= u), [121,130] follows by pu.
        assert_eq!(s.on_snapshot(&snap(115)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(130));
        assert_eq!(bids(&s), ["1.0", "0.7", "0.6"]);
        assert_eq!(s.take_out_of_order(), 1);
    }

    #[test]
    fn a_diff_larger_than_the_byte_cap_is_not_buffered() {
        let mut s = sync(Rules::Spot, 1_000_000).with_buffer_bytes(1_000);
        let big = "9".repeat(2_000);
        assert_eq!(
            s.on_diff(diff(11, 12, None, ("0.9", "1"))).unwrap(),
            Step::Buffered
        );
        assert_eq!(
            s.on_diff(diff(13, 14, None, ("0.8", "1"))).unwrap(),
            Step::Buffered
        );
        // 2001 bytes of level text against a 1000-byte cap: neither it nor the two diffs before
        // it are kept (they could never bridge onto the diffs after the lost one).
        assert_eq!(
            s.on_diff(diff(15, 16, None, (big.as_str(), "1"))).unwrap(),
            Step::Buffered
        );
        assert_eq!(s.buffered(), (0, 0));
        assert_eq!(s.take_overflowed(), 3);
        assert_eq!(
            s.on_diff(diff(17, 18, None, ("0.7", "1"))).unwrap(),
            Step::Buffered
        );
        // A snapshot from before the lost diff cannot be completed: fetch a newer one.
        assert_eq!(
            s.on_snapshot(&snap(12)).unwrap(),
            Step::Gap {
                expected: 13,
                got: 17
            }
        );
        // One the following diffs bridge (lastUpdateId 16: [17,18] is due) syncs the book.
        assert_eq!(s.on_snapshot(&snap(16)).unwrap(), Step::Synced);
        assert_eq!(s.last_update_id(), Some(18));
        assert_eq!(s.take_overflowed(), 0);
    }
}
