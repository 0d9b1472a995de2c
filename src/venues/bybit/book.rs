//! Bybit's book rules (`orderbook.{50,200,1000}`; options 25/100): the snapshot comes in band
//! after subscribing; every delta carries `u`, the topic's update id, which must be the
//! previous `u` + 1 (a delta with any other `u` is a gap: resubscribe). **Any snapshot
//! replaces the book** whatever its `u`: Bybit may resend one at any time, and after a
//! service restart it sends one with `u = 1`, which is an overwrite, not a gap (the driver
//! rebuilds the book from every snapshot it is given; the next delta must then be that
//! snapshot's `u` + 1). Bybit sends a delete (`size "0"`) for every level that leaves the
//! subscribed window (checked on the recording: books stay at exactly 200 levels a side), so
//! the book keeps every level it is given. Bybit has no checksum. `seq` (the cross sequence)
//! and `cts` (matching-engine time) are not continuity ids.

use crate::book::{Decision, Diff, Sequencer, SnapshotSource};

/// Bybit's sequencer for kept books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BybitBook {
    depth: u32,
}

impl BybitBook {
    /// Rules for books of `configured` levels (the session rounds it to a Bybit depth).
    pub fn new(configured: u32) -> BybitBook {
        BybitBook { depth: configured }
    }

    /// The configured depth.
    pub fn depth(&self) -> u32 {
        self.depth
    }
}

impl Sequencer for BybitBook {
    fn source(&self) -> SnapshotSource {
        SnapshotSource::InBand
    }

    /// `u` must be exactly the last `u` + 1; anything else (a skip, a repeat, a step back)
    /// is a gap. Bybit's update ids are positive: a delta with `u <= 0` is impossible.
    fn decide(&self, diff: &Diff, last: i64, _bridged: bool) -> Decision {
        if diff.last <= 0 {
            return Decision::Reject("update id not positive");
        }
        match last.checked_add(1) {
            Some(next) if diff.last == next => Decision::Apply,
            Some(next) => Decision::Gap {
                expected: next,
                got: diff.last,
            },
            None => Decision::Reject("update id overflow"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(u: i64) -> Diff {
        Diff {
            first: u,
            last: u,
            ..Diff::default()
        }
    }

    #[test]
    fn contiguous_u_or_gap() {
        let b = BybitBook::new(200);
        assert_eq!(b.decide(&d(11), 10, false), Decision::Apply);
        assert_eq!(
            b.decide(&d(12), 10, true),
            Decision::Gap {
                expected: 11,
                got: 12
            }
        );
        assert_eq!(
            b.decide(&d(10), 10, true),
            Decision::Gap {
                expected: 11,
                got: 10
            }
        );
        assert_eq!(b.decide(&d(2), 1, true), Decision::Apply);
        assert!(matches!(b.decide(&d(0), 1, true), Decision::Reject(_)));
        assert!(matches!(
            b.decide(&d(5), i64::MAX, true),
            Decision::Reject(_)
        ));
        assert_eq!(b.max_depth(), None);
        assert!(b.has_ids());
    }
}
