//! Local order books: the exact-decimal order book (`levels`), the generic driver that keeps
//! one in sync (`sync`), and what a venue tells that driver (`sequencer`). Venue rules live in
//! each venue's folder (`src/venues/<venue>/book.rs`).

pub mod diff;
pub mod levels;
pub mod sequencer;
pub mod sync;

pub use levels::{decimal_key, OrderBook, Side};
pub use sequencer::{crc32_top_levels, Decision, Sequencer, SnapshotSource};
pub use sync::{BookSync, Break, Diff, Levels, Snapshot, Step, MAX_CONSECUTIVE_DROPS};
