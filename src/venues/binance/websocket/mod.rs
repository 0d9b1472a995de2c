//! Binance WebSocket: raw payload types (`messages`), their normalization (`parse`)
//! and the scanner for the trade shapes (`scan`).

mod envelope;
pub mod messages;
pub mod parse;
pub mod scan;
