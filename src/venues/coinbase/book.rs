//! Coinbase's book rules (Advanced Trade `level2` and Exchange `level2_batch` alike): the
//! snapshot comes in band right after subscribing; updates carry absolute sizes (`"0"`
//! removes the level) and no per-book ids or checksum, so every update applies. Continuity is
//! the connection's business: Advanced Trade's `sequence_num` counts every frame of the
//! connection and the session resyncs every book when it skips
//! ([`crate::venues::VenueEvent::Resync`]); the Exchange feed has no sequence on
//! `level2_batch`. The generic driver still refuses a crossed book.

use crate::book::{Decision, Diff, Sequencer, SnapshotSource};

/// Coinbase's sequencer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoinbaseBook;

impl Sequencer for CoinbaseBook {
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
