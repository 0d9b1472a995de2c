//! Deribit (`deribit`, exchange `DERIBIT`): JSON-RPC 2.0 over WebSocket API v2; futures,
//! perpetuals and options, inverse (USD quoted, coin settled) and linear (USDC settled).
//!
//! Channels: `book.{instrument}.100ms` (in-band snapshot then changes chained by
//! `prev_change_id`, see [`book`]), `trades.{instrument}.100ms`, `ticker.{instrument}.100ms`
//! (→ `Ticker`, `Funding` for perpetuals, `OpenInterest`), `quote.{instrument}` (→
//! `TopOfBook`). Units are the venue's, as sent: amounts of inverse futures and perpetuals
//! are USD, of options and linear instruments the base coin (see `API.md`).
//!
//! Layout: `symbols` (instrument names), `messages` (raw payloads), `parse` (pure parse and
//! request functions), `book` (sequencer), `session` (one connection), `replay` (the mock).

pub mod book;
pub mod messages;
pub mod parse;
pub mod replay;
mod session;
pub mod symbols;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::book::Sequencer;
use crate::venues::{
    Channel, Delivery, Instrument, InstrumentKind, Limits, ParseError, SessionSpec, SymbolMap,
    Venue, VenueEvent, VenueSession,
};
pub use book::DeribitBook;
pub use parse::Control;
pub use session::{channel_name, DeribitSession, HEARTBEAT_SECS};

/// The `exchange` of Deribit records.
pub const EXCHANGE: &str = "DERIBIT";

/// WebSocket API v2 URL.
pub const WS_URL: &str = "wss://www.deribit.com/ws/api/v2";

/// REST base URL (instrument list).
pub const REST_URL: &str = "https://www.deribit.com";

/// The instrument list (every currency, live instruments).
pub const INSTRUMENTS_PATH: &str = "/api/v2/public/get_instruments?currency=any&expired=false";

const CHANNELS: &[Channel] = &[
    Channel::Trade,
    Channel::Depth,
    Channel::BookTicker,
    Channel::Ticker,
    Channel::Funding,
    Channel::OpenInterest,
];

/// Deribit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deribit;

impl Deribit {
    /// Deribit on its default URL.
    pub fn new() -> Deribit {
        Deribit
    }

    /// Parses one frame without a session (tests, benches, fuzzing): a ticker gives every
    /// record it carries.
    pub fn parse(
        &self,
        text: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
        out: &mut Vec<VenueEvent>,
    ) -> Result<Control, ParseError> {
        parse::parse_frame(text, receipt_us, symbols, out)
    }

    /// The session type, for tests.
    pub fn session_for(&self, spec: SessionSpec) -> DeribitSession {
        DeribitSession::new(spec)
    }
}

#[derive(Deserialize)]
struct InstrumentList {
    result: Vec<InstrumentInfo>,
}

#[derive(Deserialize)]
struct InstrumentInfo {
    instrument_name: String,
    #[serde(default = "active")]
    is_active: bool,
}

fn active() -> bool {
    true
}

impl Venue for Deribit {
    fn name(&self) -> &'static str {
        "deribit"
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

    fn instruments_path(&self) -> Option<&'static str> {
        Some(INSTRUMENTS_PATH)
    }

    /// Active instruments with a normalized form (combos have none).
    fn parse_instruments(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        let list: InstrumentList = serde_json::from_str(body)?;
        Ok(list
            .result
            .into_iter()
            .filter(|i| i.is_active)
            .filter_map(|i| {
                let n = symbols::normalized(&i.instrument_name)?;
                Some((i.instrument_name, n))
            })
            .collect())
    }

    fn channels(&self) -> &'static [Channel] {
        CHANNELS
    }

    fn instrument_kinds(&self) -> &'static [InstrumentKind] {
        &[
            InstrumentKind::Perpetual,
            InstrumentKind::Future,
            InstrumentKind::Option,
        ]
    }

    /// Deribit's public requests are credit-limited (about 20 per second sustained); the
    /// session sends one subscribe message per instrument, at 10 per second. No published
    /// cap on channels per connection (500 kept here); connections are not closed on a
    /// schedule. A full `book` snapshot of a busy instrument is a few hundred kB.
    fn limits(&self) -> Limits {
        Limits {
            max_streams_per_connection: 500,
            max_streams_per_message: 4,
            max_messages_per_second: 10,
            connection_lifetime: Duration::from_secs(24 * 3600),
            rest_weight_per_minute: 600,
            snapshot_weight: 1,
            max_frame_bytes: 4 << 20,
            ..Limits::BASE
        }
    }

    fn venue_symbol(&self, instrument: &Instrument) -> String {
        symbols::venue_name(instrument).unwrap_or_default()
    }

    /// Open interest comes with the ticker channel.
    fn delivery(&self, _channel: Channel) -> Delivery {
        Delivery::Stream
    }

    fn sequencer(&self, _depth: u32) -> Arc<dyn Sequencer> {
        Arc::new(DeribitBook)
    }

    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        Box::new(DeribitSession::new(spec))
    }
}
