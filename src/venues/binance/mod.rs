//! Binance spot and USD-M futures: the same message shapes with a few extra fields on
//! futures (`pu`, `T`, `X`), different hosts, limits and book-sync rules. Everything that
//! differs between Binance markets is one [`Spec`], so a further market (COIN-M, in its own
//! folder) is a `Spec` of its own.

pub mod book;
pub mod http;
pub mod replay;
mod session;
pub mod websocket;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::book::{Sequencer, Snapshot};
use crate::replay::{CorpusError, ReplayMock};
use crate::schema::Normalized;
use crate::venues::{
    Channel, Instrument, InstrumentKind, Limits, ParseError, SessionSpec, SymbolMap, Venue,
    VenueEvent, VenueSession,
};
pub use book::Rules;
pub use session::BinanceSession;

/// Everything that differs between Binance markets.
#[derive(Debug)]
pub struct Spec {
    /// Config name.
    pub name: &'static str,
    /// `exchange` of its records.
    pub exchange: &'static str,
    /// WebSocket base URL (the endpoint path is the session's, see [`Spec::routed`]).
    pub ws_url: &'static str,
    /// Whether market data is split over routed endpoints by stream category (USD-M since
    /// 2026-04-23: `/public/stream` for `depth`, `bookTicker`, `trade`; `/market/stream` for
    /// the rest; see [`category`]), or served on one `/stream` (spot, COIN-M).
    pub routed: bool,
    /// REST base URL.
    pub rest_url: &'static str,
    /// REST path prefix (`/api/v3`, `/fapi/v1`, `/dapi/v1`).
    pub rest_prefix: &'static str,
    /// REST path of `exchangeInfo`.
    pub instruments_path: &'static str,
    /// Book rules.
    pub rules: Rules,
    /// Whether futures streams (mark price, liquidations, open interest) exist.
    pub futures: bool,
    /// Channels offered.
    pub channels: &'static [Channel],
    /// Instrument kinds listed.
    pub kinds: &'static [InstrumentKind],
    /// Limits.
    pub limits: Limits,
    /// Pinned venue symbol of an instrument.
    pub venue_symbol: fn(&Instrument) -> String,
    /// Normalized symbol of an `exchangeInfo` entry (`None`: not offered here).
    pub normalize: fn(&http::SymbolInfo<'_>) -> Option<String>,
    /// Replay fixtures: file prefix and prefixes excluded.
    pub fixtures: (&'static str, &'static [&'static str]),
    /// Quote assets of its symbols, longest first (the replay splits recorded symbols on them).
    pub quotes: &'static [&'static str],
}

const SPOT_CHANNELS: &[Channel] = &[
    Channel::Trade,
    Channel::AggTrade,
    Channel::Depth,
    Channel::BookTicker,
    Channel::Ticker,
    Channel::Candle,
];

/// Channels of Binance futures markets.
pub const FUTURES_CHANNELS: &[Channel] = &[
    Channel::Trade,
    Channel::AggTrade,
    Channel::Depth,
    Channel::BookTicker,
    Channel::Ticker,
    Channel::Candle,
    Channel::Funding,
    Channel::Liquidation,
    Channel::OpenInterest,
];

/// Binance spot.
pub static SPOT: Spec = Spec {
    name: "binance",
    exchange: "BINANCE",
    ws_url: "wss://stream.binance.com:9443",
    routed: false,
    rest_url: "https://api.binance.com",
    rest_prefix: "/api/v3",
    instruments_path: "/api/v3/exchangeInfo",
    rules: Rules::Spot,
    futures: false,
    channels: SPOT_CHANNELS,
    kinds: &[InstrumentKind::Spot],
    // 1024 streams per connection, 5 messages/s, 24 h; REST 6000 weight/min, depth 1000 = 50.
    limits: Limits {
        max_streams_per_connection: 1024,
        max_streams_per_message: 200,
        max_messages_per_second: 5,
        connection_lifetime: Duration::from_secs(24 * 3600),
        rest_weight_per_minute: 6000,
        snapshot_weight: 50,
        ..Limits::BASE
    },
    venue_symbol: |i| format!("{}{}", i.base, i.quote),
    normalize: |s| Some(format!("{}-{}", s.base, s.quote)),
    fixtures: ("binance_", &["binance_futures_", "binance_coinm_"]),
    quotes: &[
        "USDT", "BUSD", "USDC", "TUSD", "BTC", "ETH", "BNB", "EUR", "USD", "TRY", "GBP",
    ],
};

/// Binance USD-M futures (perpetuals).
pub static USDM: Spec = Spec {
    name: "binance_usdm",
    exchange: "BINANCE_FUTURES",
    // `/public/stream` or `/market/stream` is appended per connection (see `routed`); the
    // legacy `/stream` and `/ws` of this host were retired on 2026-04-23 (see API.md).
    ws_url: "wss://fstream.binance.com",
    routed: true,
    rest_url: "https://fapi.binance.com",
    rest_prefix: "/fapi/v1",
    instruments_path: "/fapi/v1/exchangeInfo",
    rules: Rules::UsdM,
    futures: true,
    channels: FUTURES_CHANNELS,
    kinds: &[InstrumentKind::Perpetual],
    // 200 streams per connection, 10 messages/s, 24 h; REST 2400 weight/min, depth 1000 = 20.
    limits: Limits {
        max_streams_per_connection: 200,
        max_streams_per_message: 200,
        max_messages_per_second: 10,
        connection_lifetime: Duration::from_secs(24 * 3600),
        rest_weight_per_minute: 2400,
        snapshot_weight: 20,
        ..Limits::BASE
    },
    venue_symbol: |i| format!("{}{}", i.base, i.quote),
    normalize: |s| {
        (s.contract_type == Some("PERPETUAL")).then(|| format!("{}-{}-PERP", s.base, s.quote))
    },
    fixtures: ("binance_futures_", &[]),
    quotes: &["USDT", "BUSD", "USDC"],
};

/// The routed endpoint category of a stream on a [`Spec::routed`] market (USD-M):
/// `public` for the high-frequency streams (`<symbol>@depth…`, `@bookTicker`, `@trade`),
/// `market` for the regular ones (`@aggTrade`, `@markPrice`, `@kline_…`, `@forceOrder`,
/// `@ticker`, …). Binance's notice names `depth` and `bookTicker` as public and `aggTrade`,
/// `markPrice`, `kline`, `forceOrder`, `ticker` as market; `trade` is public as measured by
/// clients after the switch (sources in API.md).
pub fn category(stream: &str) -> &'static str {
    // `<symbol>@<kind>…`, or an all-market `!<kind>@…`.
    let kind = match stream.strip_prefix('!') {
        Some(all) => all.split('@').next(),
        None => stream.split('@').nth(1),
    }
    .unwrap_or_default();
    if kind.starts_with("depth") || kind == "rpiDepth" || kind == "bookTicker" || kind == "trade" {
        "public"
    } else {
        "market"
    }
}

/// How often Binance futures push `<symbol>@markPrice` whatever the market does: every 3 s
/// (`@markPrice@1s`: every second), USD-M and COIN-M alike.
pub const MARK_PRICE_EVERY: Duration = Duration::from_secs(3);

/// A Binance market.
#[derive(Debug, Clone, Copy)]
pub struct Binance {
    spec: &'static Spec,
}

impl Binance {
    /// Binance spot.
    pub fn spot() -> Binance {
        Binance { spec: &SPOT }
    }

    /// Binance USD-M futures.
    pub fn usdm() -> Binance {
        Binance { spec: &USDM }
    }

    /// A Binance market described by `spec`.
    pub fn with_spec(spec: &'static Spec) -> Binance {
        Binance { spec }
    }

    /// The market's description.
    pub fn spec(&self) -> &'static Spec {
        self.spec
    }

    /// Parses one text frame without a session (tests, benches, fuzzing).
    pub fn parse(
        &self,
        text: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError> {
        websocket::parse::parse_frame(self.spec.exchange, text, receipt_us, symbols, out)
    }

    /// The venue's stream name for a symbol and channel (`None` if not offered).
    pub fn stream_name(&self, venue_symbol: &str, channel: Channel) -> Option<String> {
        let s = venue_symbol.to_ascii_lowercase();
        let futures = self.spec.futures;
        Some(match channel {
            Channel::Trade => format!("{s}@trade"),
            Channel::AggTrade => format!("{s}@aggTrade"),
            Channel::Depth => format!("{s}@depth@100ms"),
            Channel::BookTicker => format!("{s}@bookTicker"),
            Channel::Ticker => format!("{s}@ticker"),
            Channel::Candle => format!("{s}@kline_1m"),
            Channel::Funding if futures => format!("{s}@markPrice"),
            Channel::Liquidation if futures => format!("{s}@forceOrder"),
            Channel::Funding
            | Channel::Liquidation
            | Channel::OpenInterest
            | Channel::PartialDepth => return None,
        })
    }
}

impl Venue for Binance {
    fn name(&self) -> &'static str {
        self.spec.name
    }

    fn exchange(&self) -> &'static str {
        self.spec.exchange
    }

    fn default_ws_url(&self) -> &'static str {
        self.spec.ws_url
    }

    fn default_rest_url(&self) -> Option<&'static str> {
        Some(self.spec.rest_url)
    }

    fn channels(&self) -> &'static [Channel] {
        self.spec.channels
    }

    fn instrument_kinds(&self) -> &'static [InstrumentKind] {
        self.spec.kinds
    }

    fn ticks_every(&self, channel: Channel) -> Option<Duration> {
        (self.spec.futures && channel == Channel::Funding).then_some(MARK_PRICE_EVERY)
    }

    /// USD-M: `public` or `market` ([`category`]); open interest (polled over REST) goes with
    /// `market`. Spot and COIN-M: one group.
    fn connection_group(&self, channel: Channel) -> &'static str {
        if !self.spec.routed {
            return "";
        }
        self.stream_name("x", channel)
            .map_or("market", |stream| category(&stream))
    }

    fn limits(&self) -> Limits {
        self.spec.limits
    }

    fn venue_symbol(&self, instrument: &Instrument) -> String {
        (self.spec.venue_symbol)(instrument)
    }

    fn instruments_path(&self) -> Option<&'static str> {
        Some(self.spec.instruments_path)
    }

    fn parse_instruments(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        http::parse_exchange_info(body, self.spec.normalize)
    }

    fn sequencer(&self, _depth: u32) -> Arc<dyn Sequencer> {
        Arc::new(self.spec.rules)
    }

    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        Box::new(BinanceSession::new(*self, spec))
    }

    fn snapshot_path(&self, venue_symbol: &str, limit: u32) -> Option<String> {
        Some(format!(
            "{}/depth?symbol={venue_symbol}&limit={limit}",
            self.spec.rest_prefix
        ))
    }

    fn parse_snapshot(&self, body: &str) -> Result<Snapshot, ParseError> {
        http::parse_snapshot(body)
    }

    fn open_interest_path(&self, venue_symbol: &str) -> Option<String> {
        self.spec.futures.then(|| {
            format!(
                "{}/openInterest?symbol={venue_symbol}",
                self.spec.rest_prefix
            )
        })
    }

    fn parse_open_interest(
        &self,
        body: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
    ) -> Result<Normalized, ParseError> {
        http::parse_open_interest(self.spec.exchange, body, receipt_us, symbols)
    }
}

impl Binance {
    /// The replay mock serving this market's recordings from `fixtures`.
    pub fn replay_mock(&self, fixtures: &Path) -> Result<Box<dyn ReplayMock>, CorpusError> {
        let (prefix, exclude) = self.spec.fixtures;
        Ok(Box::new(replay::BinanceMock::load(
            fixtures,
            prefix,
            exclude,
            self.spec.futures,
            self.spec.routed,
            self.spec.quotes,
        )?))
    }
}
