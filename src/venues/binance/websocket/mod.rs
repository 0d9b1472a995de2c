//! Binance WebSocket: raw payload types (`messages`) and their normalization (`parse`).

pub mod messages;
pub mod parse;
