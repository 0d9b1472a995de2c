//! BitMEX (`bitmex`, exchange `BITMEX`): one WebSocket (`wss://ws.bitmex.com/realtime`)
//! carrying `orderBookL2` (in-band `partial`, then `insert`/`update`/`delete` rows keyed by
//! (`symbol`, `id`, `side`)), `trade`, `quote` (top of book), `instrument` (mark and index
//! price, funding rate, open interest: streamed, not polled), `liquidation` and `tradeBin1m`
//! (1-minute candles). No sequence numbers and no checksum: see [`book`] and `API.md`.
//!
//! **Symbols**: see [`symbols`] (`XBTUSD` ↔ `BTC-USD-PERP`, `XBTZ21` ↔ `BTC-USD-20211231`,
//! `XBTUSDT` ↔ `BTC-USDT-PERP`, `XBT_USDT` ↔ `BTC-USDT`). **Sizes are contracts**, carried as
//! sent ([`parse`]).
//!
//! Layout: `messages` (wire types), `parse` (pure functions over a [`ParseState`]), `session`
//! (the connection), `book` (the sequencer), `http` (REST), `replay` (the mock).

pub mod book;
pub mod http;
pub mod messages;
pub mod parse;
pub mod replay;
pub mod session;
pub mod symbols;

use std::sync::Arc;
use std::time::Duration;

use crate::book::Sequencer;
use crate::venues::{
    Channel, Delivery, Instrument, InstrumentKind, Limits, ParseError, SessionSpec, SymbolMap,
    Venue, VenueEvent, VenueSession,
};
pub use book::BitmexBook;
pub use parse::{Control, ParseState};
pub use session::BitmexSession;

/// The `exchange` of BitMEX records.
pub const EXCHANGE: &str = "BITMEX";

/// WebSocket base URL (the session appends `/realtime`).
pub const WS_URL: &str = "wss://ws.bitmex.com";

/// REST base URL.
pub const REST_URL: &str = "https://www.bitmex.com";

/// Default period of the REST book audit of each book (`Venue::book_audit_every`).
pub const BOOK_AUDIT_EVERY: Duration = Duration::from_secs(300);

const CHANNELS: &[Channel] = &[
    Channel::Depth,
    Channel::Trade,
    Channel::BookTicker,
    Channel::Funding,
    Channel::OpenInterest,
    Channel::Liquidation,
    Channel::Candle,
];

/// BitMEX derivatives and spot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bitmex;

impl Bitmex {
    /// The venue.
    pub fn new() -> Bitmex {
        Bitmex
    }

    /// Parses one text frame without a session (tests, benches, fuzzing).
    pub fn parse(
        &self,
        text: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
        state: &mut ParseState,
        out: &mut Vec<VenueEvent>,
    ) -> Result<Control, ParseError> {
        parse::parse_frame(text, receipt_us, symbols, state, out)
    }
}

impl Venue for Bitmex {
    fn name(&self) -> &'static str {
        "bitmex"
    }

    fn exchange(&self) -> &'static str {
        EXCHANGE
    }

    fn default_ws_url(&self) -> &'static str {
        WS_URL
    }

    fn default_rest_url(&self) -> Option<&'static str> {
        Some(REST_URL)
    }

    fn channels(&self) -> &'static [Channel] {
        CHANNELS
    }

    fn instrument_kinds(&self) -> &'static [InstrumentKind] {
        &[
            InstrumentKind::Perpetual,
            InstrumentKind::Future,
            InstrumentKind::Spot,
        ]
    }

    /// BitMEX limits new WebSocket connections to 60 per hour per IP (token bucket; raised
    /// from 20 and then 40, checked 2026-12-07) and unauthenticated REST to 30 requests per
    /// minute; subscriptions themselves are not rate-limited and no per-connection topic cap
    /// is published (100 here, 20 per message, 5 client messages per second: conservative).
    /// Connections are not closed on a schedule. A full `orderBookL2` partial of a busy
    /// symbol is several MB.
    fn limits(&self) -> Limits {
        Limits {
            max_streams_per_connection: 100,
            max_streams_per_message: session::TOPICS_PER_MESSAGE,
            max_messages_per_second: 5,
            connection_lifetime: Duration::from_secs(24 * 3600),
            rest_weight_per_minute: 30,
            snapshot_weight: 1,
            max_frame_bytes: 16 << 20,
            connections_per_hour: Some(60),
            ..Limits::BASE
        }
    }

    /// Every book is compared with `/api/v1/orderBook/L2` every 5 minutes (spread over the
    /// connection's books): a feed of N books spends N/5 of the 30 REST requests per minute.
    fn book_audit_every(&self) -> Option<Duration> {
        Some(BOOK_AUDIT_EVERY)
    }

    fn book_audit_path(&self, venue_symbol: &str) -> Option<String> {
        Some(http::order_book_path(venue_symbol))
    }

    fn parse_book_audit(&self, body: &str) -> Result<crate::book::Snapshot, ParseError> {
        http::parse_order_book(body)
    }

    fn venue_symbol(&self, instrument: &Instrument) -> String {
        symbols::venue_symbol(instrument)
    }

    fn instruments_path(&self) -> Option<&'static str> {
        Some(http::INSTRUMENTS_PATH)
    }

    fn parse_instruments(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        http::parse_instruments(body)
    }

    /// Open interest is a field of the streamed `instrument` table.
    fn delivery(&self, _channel: Channel) -> Delivery {
        Delivery::Stream
    }

    fn sequencer(&self, _depth: u32) -> Arc<dyn Sequencer> {
        Arc::new(BitmexBook)
    }

    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        Box::new(BitmexSession::new(spec))
    }
}
