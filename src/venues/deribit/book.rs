//! Deribit's book rules (`book.{instrument}.100ms`): the first notification after subscribing
//! is the full book (`type: snapshot`, with its `change_id`); every later one (`type:
//! change`) carries `prev_change_id`, which must equal the `change_id` of the notification
//! before it. Anything else is a break: the book is discarded and its channel resubscribed
//! ([`crate::venues::VenueSession::resubscribe_book`]), which brings a fresh snapshot. Levels
//! are absolute amounts; a `delete` is amount 0. Deribit sends no checksum.

use crate::book::{Decision, Diff, Sequencer, SnapshotSource};

/// Deribit's sequencer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeribitBook;

impl Sequencer for DeribitBook {
    fn source(&self) -> SnapshotSource {
        SnapshotSource::InBand
    }

    fn decide(&self, diff: &Diff, last: i64, _bridged: bool) -> Decision {
        match diff.prev {
            Some(prev) if prev == last => Decision::Apply,
            // Already in the book (a notification repeated, or older than the snapshot).
            _ if diff.last <= last => Decision::Drop,
            Some(prev) => Decision::Gap {
                expected: last,
                got: prev,
            },
            None => Decision::Reject("change without prev_change_id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(prev: Option<i64>, last: i64) -> Diff {
        Diff {
            first: last,
            last,
            prev,
            ..Diff::default()
        }
    }

    #[test]
    fn prev_change_id_must_continue_the_book() {
        let s = DeribitBook;
        assert_eq!(s.decide(&diff(Some(10), 12), 10, false), Decision::Apply);
        assert_eq!(s.decide(&diff(Some(8), 10), 10, true), Decision::Drop);
        assert_eq!(
            s.decide(&diff(Some(11), 15), 10, true),
            Decision::Gap {
                expected: 10,
                got: 11
            }
        );
        assert_eq!(
            s.decide(&diff(None, 15), 10, true),
            Decision::Reject("change without prev_change_id")
        );
    }
}
