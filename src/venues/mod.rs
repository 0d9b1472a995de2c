//! Venues: one folder per exchange behind the shared [`Venue`] trait. A venue knows its
//! endpoints and subscribe messages, parses its raw frames into normalized records or book
//! diffs, and names its book-sync rules. Adding a venue touches no other venue.

pub mod binance;
mod symbols;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use symbols::SymbolMap;

use crate::book::{Diff, Rules, Snapshot};
use crate::schema::borrowed::EncodedRecord;
use crate::schema::Normalized;

/// A market-data channel a feed can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Individual trades.
    Trade,
    /// Aggregated trades.
    AggTrade,
    /// Depth diffs kept in a local book (plus REST snapshots).
    Depth,
    /// Best bid/offer.
    BookTicker,
    /// 24h rolling ticker.
    Ticker,
    /// Mark price and funding (derivatives).
    Funding,
    /// Forced liquidations (derivatives).
    Liquidation,
    /// Open interest, polled over REST (derivatives).
    OpenInterest,
    /// 1-minute candles.
    Candle,
}

/// What a frame turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum VenueEvent {
    /// A normalized record, ready to produce.
    Record(Normalized),
    /// A normalized record encoded straight from the frame (the trade hot path).
    Encoded(EncodedRecord),
    /// An order-book diff for the symbol's book keeper.
    Diff {
        /// Normalized symbol.
        symbol: String,
        /// The diff.
        diff: Diff,
    },
    /// A control frame (subscription answer); nothing to produce.
    Control,
}

impl VenueEvent {
    /// The normalized record this event carries, decoding an encoded one (`None` for diffs
    /// and control frames).
    pub fn record(&self) -> Option<Normalized> {
        match self {
            VenueEvent::Record(r) => Some(r.clone()),
            VenueEvent::Encoded(e) => e.decode().ok(),
            VenueEvent::Diff { .. } | VenueEvent::Control => None,
        }
    }
}

/// A frame that could not be turned into records. None of these stop a feed.
#[derive(Debug, Error)]
pub enum ParseError {
    /// Not the JSON the venue documents.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A symbol that is not configured.
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    /// A stream or event type this venue does not handle.
    #[error("unsupported message type {0:?}")]
    Unsupported(String),
    /// Larger than the configured frame limit.
    #[error("oversized frame: {0} bytes")]
    Oversized(usize),
    /// The venue reported an error.
    #[error("venue error {code}: {msg}")]
    Venue {
        /// Venue error code.
        code: i64,
        /// Venue message.
        msg: String,
    },
    /// A decimal that is not a decimal.
    #[error("bad decimal {0:?}")]
    BadDecimal(String),
}

impl ParseError {
    /// Terminal errors mean the connection itself is wrong (reconnect); others only drop
    /// the frame. A venue error answer (bad subscription) is terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, ParseError::Venue { .. })
    }

    /// Short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Malformed(_) => "malformed",
            ParseError::UnknownSymbol(_) => "unknown_symbol",
            ParseError::Unsupported(_) => "unsupported",
            ParseError::Oversized(_) => "oversized",
            ParseError::Venue { .. } => "venue_error",
            ParseError::BadDecimal(_) => "bad_decimal",
        }
    }
}

/// One exchange connection type (e.g. Binance spot, Binance USD-M).
pub trait Venue: Send + Sync + std::fmt::Debug + 'static {
    /// The `exchange` value of its records, e.g. `BINANCE`.
    fn exchange(&self) -> &'static str;
    /// Default WebSocket base URL.
    fn default_ws_url(&self) -> &'static str;
    /// Default REST base URL.
    fn default_rest_url(&self) -> &'static str;
    /// Path of the combined-stream WebSocket endpoint.
    fn ws_path(&self) -> &'static str;
    /// The venue's stream name for a symbol and channel (`None` if not offered).
    fn stream_name(&self, venue_symbol: &str, channel: Channel) -> Option<String>;
    /// A subscribe request for `streams`.
    fn subscribe_request(&self, streams: &[String], id: u64) -> String;
    /// Most streams one connection may carry.
    fn max_streams_per_connection(&self) -> usize;
    /// Most client messages per second.
    fn max_messages_per_second(&self) -> u32;
    /// How long the venue keeps a connection before closing it.
    fn connection_lifetime(&self) -> std::time::Duration;
    /// Parses one text frame.
    fn parse(
        &self,
        text: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError>;
    /// The book-sync rules of its depth stream.
    fn book_rules(&self) -> Rules;
    /// REST path (with query) of a depth snapshot.
    fn snapshot_path(&self, venue_symbol: &str, limit: u32) -> String;
    /// Parses a REST depth snapshot.
    fn parse_snapshot(&self, body: &str) -> Result<Snapshot, ParseError>;
    /// REST path of the open-interest endpoint, if the venue has one.
    fn open_interest_path(&self, venue_symbol: &str) -> Option<String>;
    /// Parses an open-interest answer.
    fn parse_open_interest(
        &self,
        body: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
    ) -> Result<Normalized, ParseError>;
    /// Venue symbol of a normalized symbol (`BTC-USDT` → `BTCUSDT`), without asking the venue.
    fn venue_symbol(&self, normalized: &str) -> String;
    /// REST path of the venue's symbol list, if it has one.
    fn exchange_info_path(&self) -> Option<&'static str>;
    /// Parses the symbol list into (venue symbol, normalized symbol) pairs of tradable symbols.
    fn parse_exchange_info(&self, body: &str) -> Result<Vec<(String, String)>, ParseError>;
}

/// The venue implementation for a configured venue name.
pub fn by_name(name: &str) -> Option<Box<dyn Venue>> {
    match name {
        "binance" => Some(Box::new(binance::Binance::spot())),
        "binance_usdm" => Some(Box::new(binance::Binance::usdm())),
        _ => None,
    }
}
