//! Venues: one folder per exchange behind small traits. A [`Venue`] describes a connection
//! type (endpoints, limits, symbols, book rules, REST calls, replay mock) and builds one
//! stateful [`VenueSession`] per WebSocket connection, which produces the subscribe messages,
//! answers the venue's heartbeat and parses frames. The generic code (config validation, the
//! feed loop, the book driver, the replay engine) learns everything venue-specific from these
//! traits and never matches on a venue's name.
//!
//! Adding a venue: a folder `src/venues/<venue>/` and one line in [`REGISTRY`].

pub mod binance;
pub mod binance_coinm;
pub mod decimal;
pub mod kraken;
mod session;
mod symbols;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use std::sync::Arc;
use std::time::Duration;

pub use session::{Frame, SessionSpec, Subscription, VenueSession};
pub use symbols::{Instrument, InstrumentKind, SymbolMap};

use crate::book::{Diff, Sequencer, Snapshot};
use crate::replay::ReplayMock;
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
    /// A book snapshot sent over the WebSocket (replaces the symbol's book).
    Snapshot {
        /// Normalized symbol.
        symbol: String,
        /// The snapshot.
        snapshot: Snapshot,
    },
    /// A message the session must send now (a heartbeat answer).
    Send(String),
    /// A control frame (subscription answer, heartbeat); nothing to produce.
    Control,
}

impl VenueEvent {
    /// The normalized record this event carries, decoding an encoded one (`None` for diffs
    /// and control frames).
    pub fn record(&self) -> Option<Normalized> {
        match self {
            VenueEvent::Record(r) => Some(r.clone()),
            VenueEvent::Encoded(e) => e.decode().ok(),
            VenueEvent::Diff { .. }
            | VenueEvent::Snapshot { .. }
            | VenueEvent::Send(_)
            | VenueEvent::Control => None,
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
    /// A binary frame that could not be read.
    #[error("undecodable binary frame: {0}")]
    Binary(String),
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
            ParseError::Binary(_) => "binary",
        }
    }
}

/// A venue's published connection and request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most subscriptions one connection may carry (more symbols open more connections).
    pub max_streams_per_connection: usize,
    /// Most subscriptions in one subscribe message.
    pub max_streams_per_message: usize,
    /// Most client messages per second on one connection.
    pub max_messages_per_second: u32,
    /// How long the venue keeps a connection before closing it (rotated 10 min earlier).
    pub connection_lifetime: Duration,
    /// REST weight per minute (the venue's published budget).
    pub rest_weight_per_minute: u32,
    /// REST weight one depth snapshot costs.
    pub snapshot_weight: u32,
}

/// One exchange connection type (e.g. Binance spot, Kraken): everything the generic code needs
/// to know about it. Implemented once per venue, in its folder.
pub trait Venue: Send + Sync + std::fmt::Debug + 'static {
    /// The name in the config's `venue` key, e.g. `binance_usdm`.
    fn name(&self) -> &'static str;
    /// The `exchange` value of its records, e.g. `BINANCE`.
    fn exchange(&self) -> &'static str;
    /// Default WebSocket base URL.
    fn default_ws_url(&self) -> &'static str;
    /// Default REST base URL (`None` when the venue needs no REST).
    fn default_rest_url(&self) -> Option<&'static str>;
    /// Channels it offers.
    fn channels(&self) -> &'static [Channel];
    /// Instrument kinds it lists (the symbol forms the config may name).
    fn instrument_kinds(&self) -> &'static [InstrumentKind];
    /// Its connection and request limits.
    fn limits(&self) -> Limits;
    /// Venue symbol of a normalized instrument (`BTC-USDT` → `BTCUSDT`), without asking the
    /// venue (the pinned mapping).
    fn venue_symbol(&self, instrument: &Instrument) -> String;
    /// REST path of the venue's instrument list, if it has one.
    fn instruments_path(&self) -> Option<&'static str> {
        None
    }
    /// Parses the instrument list into (venue symbol, normalized symbol) pairs of tradable
    /// instruments.
    fn parse_instruments(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        let _ = body;
        Err(ParseError::Unsupported("instrument list".into()))
    }
    /// The book rules of its depth channel, for books of `depth` levels.
    fn sequencer(&self, depth: u32) -> Arc<dyn Sequencer>;
    /// A session for one connection carrying `spec`'s subscriptions.
    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession>;
    /// REST path (with query) of a depth snapshot, for venues whose snapshots come over REST.
    fn snapshot_path(&self, venue_symbol: &str, limit: u32) -> Option<String> {
        let _ = (venue_symbol, limit);
        None
    }
    /// Parses a REST depth snapshot.
    fn parse_snapshot(&self, body: &str) -> Result<Snapshot, ParseError> {
        let _ = body;
        Err(ParseError::Unsupported("REST snapshot".into()))
    }
    /// REST path of the open-interest endpoint, if the venue has one.
    fn open_interest_path(&self, venue_symbol: &str) -> Option<String> {
        let _ = venue_symbol;
        None
    }
    /// Parses an open-interest answer.
    fn parse_open_interest(
        &self,
        body: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
    ) -> Result<Normalized, ParseError> {
        let _ = (body, receipt_us, symbols);
        Err(ParseError::Unsupported("open interest".into()))
    }
    /// The replay mock that serves this venue's recordings from `fixtures`.
    fn replay(
        &self,
        fixtures: &std::path::Path,
    ) -> Result<Box<dyn ReplayMock>, crate::replay::CorpusError>;
}

/// Builds a venue.
pub type Constructor = fn() -> Box<dyn Venue>;

/// Every venue, by config name: the one place a venue is registered.
pub static REGISTRY: &[(&str, Constructor)] = &[
    ("binance", || Box::new(binance::Binance::spot())),
    ("binance_usdm", || Box::new(binance::Binance::usdm())),
    ("binance_coinm", || Box::new(binance_coinm::coinm())),
    ("kraken", || Box::new(kraken::Kraken::new())),
];

/// The venue implementation for a configured venue name.
pub fn by_name(name: &str) -> Option<Box<dyn Venue>> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, f)| f())
}

/// The registered venue names, for error messages.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(n, _)| *n).collect()
}
