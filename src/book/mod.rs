//! Local order books: exact-decimal price levels (`book`) and venue sync rules (`sync`).

pub mod levels;
pub mod sync;

pub use levels::{OrderBook, Side};
pub use sync::{BookSync, Diff, Levels, Rules, Snapshot, Step};
