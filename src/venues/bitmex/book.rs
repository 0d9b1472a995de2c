//! BitMEX's book rules (`orderBookL2`): the `partial` comes in band after subscribing; rows
//! are keyed by (`symbol`, `id`, `side`) and the session turns them into absolute price
//! levels ([`super::parse`]). There is **no sequence number and no checksum**: every diff
//! applies; the integrity checks are the driver's crossed-book check after every diff, an
//! update or delete of an id the session does not hold (→ `VenueEvent::Resync`, the book is
//! resubscribed), and the periodic REST audit against `/api/v1/orderBook/L2`
//! (`Venue::book_audit_every`, run by the feed; the rule is in `API.md`). Every level is kept
//! (the full book; no depth window), so the whole REST book is compared.

use crate::book::{Decision, Diff, Sequencer, SnapshotSource};

/// BitMEX's sequencer: in-band snapshots, no ids, no checksum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BitmexBook;

impl Sequencer for BitmexBook {
    fn source(&self) -> SnapshotSource {
        SnapshotSource::InBand
    }

    fn decide(&self, _diff: &Diff, _last: i64, _bridged: bool) -> Decision {
        Decision::Apply
    }

    fn has_ids(&self) -> bool {
        false
    }
}
