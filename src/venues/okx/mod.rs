//! OKX v5 (`okx`, exchange `OKX`): spot, perpetual swaps, dated futures and options on one
//! WebSocket API (`/ws/v5/public`; candles and `trades-all` on `/ws/v5/business`).
//!
//! **Two book modes**, chosen by the feed's WebSocket URL ([`BookMode::from_url`]):
//! - [`BookMode::Rest`] (the default, OKX's documentation since 2026): the `books` channel
//!   sends no initial snapshot and no checksum; the book is bootstrapped from
//!   `GET /api/v5/market/books` and bridged by `seqId`/`prevSeqId` ([`book::OkxRestBook`]).
//! - [`BookMode::InBand`] (a base URL whose path ends in `/inband`, e.g. the replay server of
//!   the 2022 recordings): the venue sends a snapshot right after subscribing and a signed
//!   CRC32 over the top 25 levels with every message ([`book::OkxInBandBook`]); a break costs
//!   an unsubscribe + subscribe of that book.
//!
//! The feed asks for the venue's sequencer before it opens a connection, without the URL: the
//! sequencer handed out ([`book::OkxBook`]) follows the mode of the venue value it came from,
//! which the first session built by that value sets from its URL (each feed builds its own
//! venue value). See `API.md`.
//!
//! **Symbols**: OKX's `instId` is the normalized symbol except perpetuals (`BTC-USDT-SWAP` ↔
//! `BTC-USDT-PERP`) and dates (`BTC-USD-220527` ↔ `BTC-USD-20220527`); the mapping is pinned
//! ([`inst_id`], [`normalized`]).
//!
//! Layout: `messages` (raw payloads), `parse` (pure frame parsing), `book` (the sequencers and
//! OKX's checksum), `http` (REST snapshot), `session` (one connection), `replay` (the mock).

pub mod book;
pub mod http;
pub mod messages;
pub mod parse;
pub mod replay;
mod session;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::book::{Sequencer, Snapshot};
use crate::venues::{
    Channel, Delivery, Instrument, InstrumentKind, Limits, ParseError, SessionSpec, SymbolMap,
    Venue, VenueEvent, VenueSession,
};
pub use book::{OkxBook, OkxInBandBook, OkxRestBook};
pub use parse::Control;
pub use session::OkxSession;

/// The `exchange` of OKX records.
pub const EXCHANGE: &str = "OKX";

/// Production WebSocket host (the session appends `/ws/v5/public` or `/ws/v5/business`).
pub const WS_URL: &str = "wss://ws.okx.com:8443";

/// Production REST host.
pub const REST_URL: &str = "https://www.okx.com";

/// Channels OKX offers here.
const CHANNELS: &[Channel] = &[
    Channel::Trade,
    Channel::AggTrade,
    Channel::Depth,
    Channel::BookTicker,
    Channel::Ticker,
    Channel::Funding,
    Channel::Liquidation,
    Channel::OpenInterest,
    Channel::Candle,
    Channel::PartialDepth,
];

/// How the feed's books are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookMode {
    /// REST snapshot (`GET /api/v5/market/books`) bridged by `seqId`/`prevSeqId`; no checksum
    /// (OKX's documentation since 2026).
    Rest,
    /// In-band snapshot after subscribing, signed CRC32 of the top 25 levels on every message
    /// (OKX before August 2026; the 2022 recordings).
    InBand,
}

impl BookMode {
    /// The mode a WebSocket base URL selects: a path ending in `/inband` (query and trailing
    /// `/` ignored) is [`BookMode::InBand`], anything else [`BookMode::Rest`].
    pub fn from_url(url: &str) -> BookMode {
        let path = url.split(['?', '#']).next().unwrap_or_default();
        if path.trim_end_matches('/').ends_with("/inband") {
            BookMode::InBand
        } else {
            BookMode::Rest
        }
    }

    fn code(self) -> u8 {
        match self {
            BookMode::Rest => 0,
            BookMode::InBand => 1,
        }
    }

    fn of_code(c: u8) -> BookMode {
        if c == 1 {
            BookMode::InBand
        } else {
            BookMode::Rest
        }
    }
}

/// A mode shared between a venue value, its sessions and the sequencers it handed out.
#[derive(Debug, Clone)]
pub struct SharedMode(Arc<AtomicU8>);

impl SharedMode {
    /// A cell holding `mode`.
    pub fn new(mode: BookMode) -> SharedMode {
        SharedMode(Arc::new(AtomicU8::new(mode.code())))
    }

    /// The mode now.
    pub fn get(&self) -> BookMode {
        BookMode::of_code(self.0.load(Ordering::Acquire))
    }

    /// Changes the mode.
    pub fn set(&self, mode: BookMode) {
        self.0.store(mode.code(), Ordering::Release);
    }
}

/// OKX's `instId` of a normalized instrument (`BTC-USDT-PERP` → `BTC-USDT-SWAP`,
/// `BTC-USD-20220527` → `BTC-USD-220527`, options likewise with strike and right).
pub fn inst_id(i: &Instrument) -> String {
    let short = |d: &Option<String>| {
        d.as_deref()
            .map(|d| d.get(2..).unwrap_or(d).to_string())
            .unwrap_or_default()
    };
    match i.kind {
        InstrumentKind::Spot => format!("{}-{}", i.base, i.quote),
        InstrumentKind::Perpetual => format!("{}-{}-SWAP", i.base, i.quote),
        InstrumentKind::Future => format!("{}-{}-{}", i.base, i.quote, short(&i.expiry)),
        InstrumentKind::Option => format!(
            "{}-{}-{}-{}-{}",
            i.base,
            i.quote,
            short(&i.expiry),
            i.strike.as_deref().unwrap_or_default(),
            i.right.unwrap_or('C')
        ),
    }
}

/// The normalized symbol of an OKX `instId` (`BTC-USDT-SWAP` → `BTC-USDT-PERP`,
/// `BTC-USD-220527` → `BTC-USD-20220527`); `None` for what is not an instrument.
pub fn normalized(inst_id: &str) -> Option<String> {
    let parts: Vec<&str> = inst_id.split('-').collect();
    let date =
        |d: &str| (d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit())).then(|| format!("20{d}"));
    let s = match parts[..] {
        [b, q] => format!("{b}-{q}"),
        [b, q, "SWAP"] => format!("{b}-{q}-PERP"),
        [b, q, d] => format!("{b}-{q}-{}", date(d)?),
        [b, q, d, k, r @ ("C" | "P")] => format!("{b}-{q}-{}-{k}-{r}", date(d)?),
        _ => return None,
    };
    Instrument::parse(&s).ok().map(|_| s)
}

/// OKX v5, keeping books in one [`BookMode`].
#[derive(Debug, Clone)]
pub struct Okx {
    mode: SharedMode,
}

impl Default for Okx {
    fn default() -> Self {
        Okx::new()
    }
}

impl Okx {
    /// OKX on its default URL: books bootstrapped over REST ([`BookMode::Rest`]).
    pub fn new() -> Okx {
        Okx::with_mode(BookMode::Rest)
    }

    /// OKX keeping books in `mode` (until a session's URL says otherwise).
    pub fn with_mode(mode: BookMode) -> Okx {
        Okx {
            mode: SharedMode::new(mode),
        }
    }

    /// The book mode now.
    pub fn mode(&self) -> BookMode {
        self.mode.get()
    }

    /// Parses one text frame without a session (tests, benches, fuzzing), as a session in
    /// this venue's mode would parse it; without a session no derivative is subscribed to an
    /// index, so `index-tickers` produce nothing.
    pub fn parse(
        &self,
        text: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
        out: &mut Vec<VenueEvent>,
    ) -> Result<Control, ParseError> {
        parse::parse_frame(
            text,
            receipt_us,
            symbols,
            &parse::Indexes::new(),
            self.mode(),
            out,
        )
    }

    /// A session for `spec` keeping books in `mode`, whatever the URL says.
    pub fn session_for(&self, mode: BookMode, spec: SessionSpec) -> OkxSession {
        OkxSession::new(mode, spec)
    }
}

impl Venue for Okx {
    fn name(&self) -> &'static str {
        "okx"
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
            InstrumentKind::Spot,
            InstrumentKind::Perpetual,
            InstrumentKind::Future,
            InstrumentKind::Option,
        ]
    }

    /// OKX: 3 new connections per second per IP; 480 subscribe/unsubscribe/login messages per
    /// hour per connection; a connection idle for 30 s is closed (hence the 20 s `ping`). No
    /// published cap on subscriptions per connection (kept at 100, in messages of 20 args);
    /// REST `GET /api/v5/market/books`: 40 requests per 2 s per IP.
    fn limits(&self) -> Limits {
        Limits {
            max_streams_per_connection: 100,
            max_streams_per_message: session::ARGS_PER_MESSAGE,
            max_messages_per_second: 3,
            connection_lifetime: Duration::from_secs(24 * 3600),
            rest_weight_per_minute: 1200,
            snapshot_weight: 1,
            max_frame_bytes: 1 << 20,
            subscribe_messages_per_hour: Some(480),
            connections_per_second: Some(3),
            // OKX publishes only the per-second cap (checked 2026-12-07).
            connections_per_hour: None,
        }
    }

    fn venue_symbol(&self, instrument: &Instrument) -> String {
        inst_id(instrument)
    }

    /// Open interest is a streamed channel on OKX (`open-interest`).
    fn delivery(&self, channel: Channel) -> Delivery {
        let _ = channel;
        Delivery::Stream
    }

    /// Candles and every-trade `trades-all` live on `/ws/v5/business`, the rest on
    /// `/ws/v5/public`.
    fn connection_group(&self, channel: Channel) -> &'static str {
        match channel {
            Channel::Candle | Channel::Trade => "business",
            _ => "",
        }
    }

    fn sequencer(&self, depth: u32) -> Arc<dyn Sequencer> {
        let _ = depth;
        Arc::new(OkxBook::new(self.mode.clone()))
    }

    /// The book mode follows the connection's URL (`…/inband` → in band, otherwise REST); the
    /// sequencers this value handed out follow it too.
    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        if !spec.ws_url.is_empty() {
            self.mode.set(BookMode::from_url(&spec.ws_url));
        }
        Box::new(OkxSession::new(self.mode.get(), spec))
    }

    fn snapshot_path(&self, venue_symbol: &str, limit: u32) -> Option<String> {
        Some(http::snapshot_path(venue_symbol, limit))
    }

    fn parse_snapshot(&self, body: &str) -> Result<Snapshot, ParseError> {
        http::parse_snapshot(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_both_ways_and_mode_by_url() {
        let cases = [
            ("BTC-USDT", "BTC-USDT"),
            ("BTC-USDT-PERP", "BTC-USDT-SWAP"),
            ("BTC-USD-20220527", "BTC-USD-220527"),
            ("BTC-USD-20220624-50000-C", "BTC-USD-220624-50000-C"),
        ];
        for (n, v) in cases {
            assert_eq!(inst_id(&Instrument::parse(n).unwrap()), v);
            assert_eq!(normalized(v).as_deref(), Some(n));
        }
        assert_eq!(normalized("BTC-USD-SWAP-X"), None);
        assert_eq!(normalized("BTC-USD-2205"), None);
        assert_eq!(BookMode::from_url("wss://ws.okx.com:8443"), BookMode::Rest);
        assert_eq!(
            BookMode::from_url("ws://127.0.0.1:1/inband"),
            BookMode::InBand
        );
        assert_eq!(
            BookMode::from_url("ws://127.0.0.1:1/inband/?x"),
            BookMode::InBand
        );
        assert_eq!(BookMode::from_url("ws://127.0.0.1:1/"), BookMode::Rest);
    }
}
