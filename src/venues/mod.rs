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
pub mod bitmex;
pub mod bybit;
pub mod coinbase;
pub mod decimal;
pub mod deribit;
pub mod json;
pub mod kraken;
pub mod okx;
pub(crate) mod scan;
mod session;
mod symbols;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use std::sync::Arc;
use std::time::Duration;

pub use session::{Frame, SessionSpec, Subscription, VenueSession};
pub use symbols::{Instrument, InstrumentKind, SymbolMap};

use crate::book::{Diff, Sequencer, Snapshot};
use crate::replay::{CorpusError, ReplayMock};
use crate::schema::borrowed::EncodedRecord;
use crate::schema::Normalized;

/// A market-data channel a feed can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Candles at the venue's interval ([`Venue::candle_interval`]; 1 minute on most).
    Candle,
    /// The venue's top levels, each message a whole `Level2Book` (OKX `books5`); no local
    /// book is kept. Not with `depth` on the same symbol (both write `Level2Book`).
    PartialDepth,
}

impl Channel {
    /// The config's name of the channel (`book_ticker`, `open_interest`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Trade => "trade",
            Channel::AggTrade => "agg_trade",
            Channel::Depth => "depth",
            Channel::BookTicker => "book_ticker",
            Channel::Ticker => "ticker",
            Channel::Funding => "funding",
            Channel::Liquidation => "liquidation",
            Channel::OpenInterest => "open_interest",
            Channel::Candle => "candle",
            Channel::PartialDepth => "partial_depth",
        }
    }
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
        /// Normalized symbol (shared with the venue's symbol map: no copy per diff).
        symbol: Arc<str>,
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
    /// The session saw a break the books cannot see (a connection-wide sequence such as
    /// Coinbase's `sequence_num` skipped, a venue notice that a book was reset): resync the
    /// book of `symbol`, or every book of the connection when `None`, at once, announced
    /// with `reason`.
    Resync {
        /// Normalized symbol, or `None` for every book of the connection.
        symbol: Option<String>,
        /// Why, for the `FeedEvent` and the log.
        reason: String,
    },
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
            | VenueEvent::Resync { .. }
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
    /// The venue refused one symbol's subscription (unknown or delisted instrument): that
    /// symbol is dropped from the connection and announced; the others carry on.
    #[error("subscription of {symbol:?} refused: {msg}")]
    Refused {
        /// Normalized symbol (or the venue's, when it could not be mapped).
        symbol: String,
        /// The venue's message.
        msg: String,
    },
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
            ParseError::Refused { .. } => "subscription_refused",
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
    /// Largest frame the venue sends (a Coinbase `level2` snapshot of BTC-USD is ~5 MB); the
    /// default of a feed's `max_frame_bytes`.
    pub max_frame_bytes: usize,
    /// Most subscribe/unsubscribe messages per hour on one connection (OKX: 480), when the
    /// venue caps them; resubscribes wait for the quota.
    pub subscribe_messages_per_hour: Option<u32>,
    /// Most new connections per second per IP (OKX: 3), when the venue caps them; every
    /// connection attempt of every feed of the venue in the process waits for it.
    pub connections_per_second: Option<u32>,
    /// Most new connections per hour per IP (BitMEX: 60, a token bucket), when the venue
    /// caps them; enforced like [`Limits::connections_per_second`].
    pub connections_per_hour: Option<u32>,
}

impl Limits {
    /// A base to spread with `..Limits::BASE`: no quotas, 1 MiB frames; every venue states
    /// its own connection and REST figures over it.
    pub const BASE: Limits = Limits {
        max_streams_per_connection: 100,
        max_streams_per_message: 1,
        max_messages_per_second: 1,
        connection_lifetime: Duration::from_secs(24 * 3600),
        rest_weight_per_minute: 60,
        snapshot_weight: 1,
        max_frame_bytes: 1 << 20,
        subscribe_messages_per_hour: None,
        connections_per_second: None,
        connections_per_hour: None,
    };
}

/// How a venue delivers a channel: streamed on the WebSocket, or polled over REST beside it
/// (e.g. Binance open interest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Subscribed on the WebSocket like any channel.
    Stream,
    /// Polled over REST every `open_interest_poll_ms` (not subscribed).
    RestPoll,
}

/// One page of a venue's instrument list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstrumentPage {
    /// (venue symbol, normalized symbol) pairs of tradable instruments on this page.
    pub pairs: Vec<(String, String)>,
    /// Path (with query) of the next page, for lists paged by cursor (Bybit).
    pub next: Option<String>,
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
    /// REST paths (with query) that together list the venue's instruments, each possibly
    /// paged ([`InstrumentPage::next`]); e.g. one per Bybit category. Default: the one
    /// [`Venue::instruments_path`].
    fn instrument_requests(&self) -> Vec<String> {
        self.instruments_path()
            .map(str::to_string)
            .into_iter()
            .collect()
    }
    /// Parses one page of an instrument list answered for `path`. Default: the whole list
    /// in one page through [`Venue::parse_instruments`].
    fn parse_instruments_page(&self, path: &str, body: &str) -> Result<InstrumentPage, ParseError> {
        let _ = path;
        Ok(InstrumentPage {
            pairs: self.parse_instruments(body)?,
            next: None,
        })
    }
    /// How `channel` is delivered (default: streamed, except open interest, polled over REST).
    fn delivery(&self, channel: Channel) -> Delivery {
        match channel {
            Channel::OpenInterest => Delivery::RestPoll,
            _ => Delivery::Stream,
        }
    }
    /// The interval of the venue's candle channel, as written in `Candle.interval` (`1m`;
    /// Coinbase Advanced Trade `5m`).
    fn candle_interval(&self) -> &'static str {
        "1m"
    }
    /// How often `channel` ticks by design whatever the market does (Binance `markPrice`
    /// every 1–3 s), when it does: a subscription silent for longer (plus a margin) is stale
    /// and resubscribed. `None` (the default) for channels that can be quiet (books, trades).
    fn ticks_every(&self, channel: Channel) -> Option<Duration> {
        let _ = channel;
        None
    }
    /// Channels that must share a connection, by group name: a feed opens one connection per
    /// group (Binance USD-M serves `depth`/`bookTicker` on `/public` and the rest on
    /// `/market`). Default: one group.
    fn connection_group(&self, channel: Channel) -> &'static str {
        let _ = channel;
        ""
    }
    /// Symbols that must share a connection, by group name: a feed's symbols are split by
    /// group before they are chunked into connections (Bybit serves each category on its own
    /// URL). Default: one group.
    fn symbol_group(&self, symbol: &str) -> &'static str {
        let _ = symbol;
        ""
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
    /// How often each synced book of a connection is compared with the venue's REST book
    /// ([`Venue::book_audit_path`]), for venues whose stream has no sequence or checksum to
    /// prove the kept book (BitMEX); `None` (the default): never. A feed may override it.
    /// The rule that turns differences into a resync is in `feed::session::audit`.
    fn book_audit_every(&self) -> Option<Duration> {
        None
    }
    /// REST path (with query) of the full book of `venue_symbol` the periodic audit compares
    /// with the kept book (`None`: no audit).
    fn book_audit_path(&self, venue_symbol: &str) -> Option<String> {
        let _ = venue_symbol;
        None
    }
    /// Parses the audit's REST book (every level the kept book holds).
    fn parse_book_audit(&self, body: &str) -> Result<Snapshot, ParseError> {
        let _ = body;
        Err(ParseError::Unsupported("REST book audit".into()))
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
}

/// Builds a venue.
pub type Constructor = fn() -> Box<dyn Venue>;

/// Builds a venue's replay mock from a fixtures folder (test infrastructure: the replay
/// server of `make run` and the tests; not part of the production [`Venue`] trait).
pub type MockConstructor = fn(&std::path::Path) -> Result<Box<dyn ReplayMock>, CorpusError>;

/// One registered venue: config name, implementation, replay mock.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The config's `venue` value.
    pub name: &'static str,
    /// Builds the venue.
    pub venue: Constructor,
    /// Builds its replay mock.
    pub replay: MockConstructor,
}

impl Registration {
    /// A registration: config name, venue constructor, replay-mock constructor.
    pub const fn new(name: &'static str, venue: Constructor, replay: MockConstructor) -> Self {
        Registration {
            name,
            venue,
            replay,
        }
    }
}

use Registration as R;

/// Every venue, by config name: the one place a venue is registered (one line each).
#[rustfmt::skip]
pub static REGISTRY: &[Registration] = &[
    R::new("binance", || Box::new(binance::Binance::spot()), |f| binance::Binance::spot().replay_mock(f)),
    R::new("binance_usdm", || Box::new(binance::Binance::usdm()), |f| binance::Binance::usdm().replay_mock(f)),
    R::new("binance_coinm", || Box::new(binance_coinm::coinm()), |f| binance_coinm::coinm().replay_mock(f)),
    R::new("kraken", || Box::new(kraken::Kraken::new()), kraken::replay::mock),
    R::new("bitmex", || Box::new(bitmex::Bitmex::new()), bitmex::replay::mock),
    R::new("bybit", || Box::new(bybit::Bybit::new()), bybit::replay::mock),
    R::new("coinbase", || Box::new(coinbase::Coinbase::new()), coinbase::replay::mock),
    R::new("deribit", || Box::new(deribit::Deribit::new()), deribit::replay::mock),
    R::new("okx", || Box::new(okx::Okx::new()), okx::replay::mock),
];

/// The venue implementation for a configured venue name.
pub fn by_name(name: &str) -> Option<Box<dyn Venue>> {
    REGISTRY
        .iter()
        .find(|r| r.name == name)
        .map(|r| (r.venue)())
}

/// The registered venue names, for error messages.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|r| r.name).collect()
}

/// Starts a replay server for `cfg.venue` serving `cfg.fixtures` (the venue's mock, paced at
/// its message rate).
pub async fn replay_server(
    cfg: crate::replay::ReplayServerConfig,
) -> Result<crate::replay::ReplayServer, crate::replay::ReplayError> {
    let reg = REGISTRY
        .iter()
        .find(|r| r.name == cfg.venue)
        .ok_or_else(|| crate::replay::ReplayError::Venue(cfg.venue.clone()))?;
    let mock = (reg.replay)(&cfg.fixtures)?;
    let rate = (reg.venue)().limits().max_messages_per_second;
    crate::replay::ReplayServer::start(cfg, mock, rate).await
}
