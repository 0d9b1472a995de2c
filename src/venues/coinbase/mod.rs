//! Coinbase spot (`coinbase`, exchange `COINBASE`): the Advanced Trade WebSocket (the default)
//! and the Exchange feed, in-band book snapshots, no checksum; a connection-wide frame
//! sequence on Advanced Trade.
//!
//! **Which API a feed speaks** is chosen by its WebSocket URL ([`Api::from_url`]): a host
//! `ws-feed…` (`wss://ws-feed.exchange.coinbase.com`) or a path ending in `/exchange` (a replay
//! server's Exchange endpoint) speaks the Exchange feed; any other URL
//! (`wss://advanced-trade-ws.coinbase.com`, a replay server's root) speaks Advanced Trade.
//!
//! **Trade side**: on both APIs the trade's `side` is the **maker order's** side (Exchange
//! `match`: documented; Advanced Trade `market_trades`: every trade of the recording at the
//! best ask says `SELL`, every one at the best bid `BUY`). The record carries the taker's
//! side, the opposite.
//!
//! **Integrity**: Advanced Trade numbers every frame of a connection (`sequence_num`, across
//! channels, answers and heartbeats included); a skipped number resyncs every book of the
//! connection ([`VenueEvent::Resync`] with no symbol, then [`VenueSession::resubscribe_book`]
//! brings fresh `level2` snapshots). The Exchange feed's `level2_batch` carries no sequence at
//! all: only the crossed-book check can see a loss there.
//!
//! **Trades across reconnects**: `market_trades` starts with a snapshot of recent trades,
//! Exchange `matches` with a `last_match`; both repeat trades already produced before a
//! reconnect. The venue value (one per feed, shared by every connection and reconnection of
//! the feed) keeps a bounded set of the trade ids produced recently ([`RecentTrades`]); a
//! trade already in it is not produced again.
//!
//! Layout: `messages` (raw payloads), `advanced` and `exchange` (pure parse and request
//! functions), `session` (the stateful connection), `book` (the sequencer), `http` (the
//! products list), `replay` (the mock). Endpoints, limits and rules: `API.md`.

pub mod advanced;
pub mod book;
pub mod exchange;
pub mod http;
pub mod messages;
pub mod replay;
mod session;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::book::Sequencer;
use crate::schema::borrowed::{EncodedRecord, IdRef, TradeRef};
use crate::schema::v2beta1::trade;
use crate::venues::{
    Channel, Instrument, InstrumentKind, Limits, ParseError, SessionSpec, SymbolMap, Venue,
    VenueEvent, VenueSession,
};
pub use book::CoinbaseBook;
pub use session::CoinbaseSession;

/// The `exchange` of Coinbase records.
pub const EXCHANGE: &str = "COINBASE";

/// Advanced Trade market-data WebSocket (the default).
pub const WS_URL_ADVANCED: &str = "wss://advanced-trade-ws.coinbase.com";
/// Exchange feed WebSocket.
pub const WS_URL_EXCHANGE: &str = "wss://ws-feed.exchange.coinbase.com";

/// Largest frame accepted: a `level2` snapshot of BTC-USD is one ~5 MB frame.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Trade ids remembered for the dedupe across reconnects (per feed).
pub const RECENT_TRADES: usize = 100_000;

/// Channels of Advanced Trade: `market_trades`, `level2`, `ticker` (as ticker and as book
/// ticker), 5-minute `candles`.
const CHANNELS: &[Channel] = &[
    Channel::Trade,
    Channel::Depth,
    Channel::Ticker,
    Channel::BookTicker,
    Channel::Candle,
];

/// Coinbase's WebSocket APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `wss://advanced-trade-ws.coinbase.com`: `{"channel","sequence_num","events"}` frames.
    Advanced,
    /// `wss://ws-feed.exchange.coinbase.com`: `{"type",…}` messages.
    Exchange,
}

impl Api {
    /// The API a WebSocket URL speaks: host `ws-feed…` or a path ending in `/exchange` is the
    /// Exchange feed, anything else Advanced Trade.
    pub fn from_url(url: &str) -> Api {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let path_start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host = &rest[..path_start];
        let path = rest[path_start..]
            .split(['?', '#'])
            .next()
            .unwrap_or_default();
        if host.starts_with("ws-feed") || path.trim_end_matches('/').ends_with("/exchange") {
            Api::Exchange
        } else {
            Api::Advanced
        }
    }
}

/// The taker's side of a trade whose `side` is the maker's (`buy`/`BUY` → taker sold), and
/// whether the buyer was the maker.
pub fn taker_of_maker(maker_side: &str) -> Result<(trade::Side, bool), ParseError> {
    if maker_side.eq_ignore_ascii_case("buy") {
        Ok((trade::Side::Sell, true))
    } else if maker_side.eq_ignore_ascii_case("sell") {
        Ok((trade::Side::Buy, false))
    } else {
        Err(ParseError::Unsupported(format!(
            "trade side {}",
            maker_side.chars().take(16).collect::<String>()
        )))
    }
}

/// A trade id: a number when it is one (Coinbase's are), else its text.
pub fn trade_id(text: &str) -> Result<IdRef<'_>, ParseError> {
    if text.is_empty() || text.len() > 64 {
        return Err(ParseError::Unsupported("trade id".into()));
    }
    let canonical =
        text.bytes().all(|b| b.is_ascii_digit()) && (!text.starts_with('0') || text == "0");
    Ok(match text.parse::<i64>() {
        Ok(n) if canonical => IdRef::Num(n),
        _ => IdRef::Text(text),
    })
}

/// Encodes a trade straight from the frame's text.
pub fn push_trade(symbol: Arc<str>, trade: TradeRef<'_>, out: &mut Vec<VenueEvent>) {
    out.push(VenueEvent::Encoded(EncodedRecord::trade(
        EXCHANGE, symbol, trade,
    )));
}

/// (symbol, trade id).
type TradeKey = (Arc<str>, Box<str>);

/// The trade ids produced recently, per symbol, bounded (oldest forgotten first): shared by
/// every connection of a feed so that a reconnect's trade snapshot produces nothing twice.
#[derive(Debug)]
pub struct RecentTrades {
    inner: Mutex<(HashSet<TradeKey>, VecDeque<TradeKey>)>,
    capacity: usize,
}

impl RecentTrades {
    /// A set remembering at most `capacity` ids.
    pub fn new(capacity: usize) -> RecentTrades {
        RecentTrades {
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
            capacity: capacity.max(1),
        }
    }

    /// Whether `(symbol, id)` is new; it is remembered from now on.
    pub fn insert(&self, symbol: &str, id: &str) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *g;
        let key: TradeKey = (Arc::from(symbol), Box::from(id));
        if set.contains(&key) {
            return false;
        }
        if order.len() >= self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        set.insert(key.clone());
        order.push_back(key);
        true
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Coinbase spot, speaking one API by default (each connection speaks its URL's).
#[derive(Debug, Clone)]
pub struct Coinbase {
    api: Api,
    recent: Arc<RecentTrades>,
}

impl Default for Coinbase {
    fn default() -> Self {
        Coinbase::new()
    }
}

impl Coinbase {
    /// Coinbase on its default URL, Advanced Trade.
    pub fn new() -> Coinbase {
        Coinbase::with_api(Api::Advanced)
    }

    /// Coinbase speaking `api` by default.
    pub fn with_api(api: Api) -> Coinbase {
        Coinbase {
            api,
            recent: Arc::new(RecentTrades::new(RECENT_TRADES)),
        }
    }

    /// The default API.
    pub fn api(&self) -> Api {
        self.api
    }

    /// The trade ids produced recently (shared by this venue's sessions).
    pub fn recent_trades(&self) -> &Arc<RecentTrades> {
        &self.recent
    }

    /// A session for `spec` speaking `api`.
    pub fn session_for(&self, api: Api, spec: SessionSpec) -> CoinbaseSession {
        CoinbaseSession::new(api, spec, self.recent.clone())
    }

    /// Parses one text frame without a session and without dedupe (tests, benches, fuzzing).
    pub fn parse(
        &self,
        text: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError> {
        let mut keep = |_: &str, _: &str| true;
        let before = out.len();
        let result = match self.api {
            Api::Advanced => {
                advanced::parse_frame(text, receipt_us, symbols, &mut keep, out).map(|_| ())
            }
            Api::Exchange => {
                exchange::parse_frame(text, receipt_us, symbols, &mut keep, out).map(|_| ())
            }
        };
        if result.is_err() {
            out.truncate(before);
        }
        result
    }
}

impl Venue for Coinbase {
    fn name(&self) -> &'static str {
        "coinbase"
    }

    fn exchange(&self) -> &'static str {
        EXCHANGE
    }

    fn default_ws_url(&self) -> &'static str {
        match self.api {
            Api::Advanced => WS_URL_ADVANCED,
            Api::Exchange => WS_URL_EXCHANGE,
        }
    }

    fn default_rest_url(&self) -> Option<&'static str> {
        Some("https://api.coinbase.com")
    }

    fn instruments_path(&self) -> Option<&'static str> {
        Some(http::PRODUCTS_PATH)
    }

    fn parse_instruments(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        http::parse_products(body)
    }

    /// Advanced Trade's channels. The Exchange feed serves `Trade`, `Depth` and `Ticker` only
    /// (its session subscribes nothing for the others).
    fn channels(&self) -> &'static [Channel] {
        CHANNELS
    }

    fn instrument_kinds(&self) -> &'static [InstrumentKind] {
        &[InstrumentKind::Spot]
    }

    /// Unauthenticated clients: 8 messages per second per IP (subscribes paced at that);
    /// connections 8 per second per IP on the Advanced Trade page (750 on another of
    /// Coinbase's pages: the lower figure is kept). No per-connection subscription cap or
    /// lifetime is published; connections are rotated daily. Frames up to 16 MiB (the BTC-USD
    /// `level2` snapshot is ~5 MB). No REST book snapshots (in band).
    fn limits(&self) -> Limits {
        Limits {
            max_streams_per_connection: 200,
            max_streams_per_message: session::PRODUCTS_PER_MESSAGE,
            max_messages_per_second: 8,
            connection_lifetime: Duration::from_secs(24 * 3600),
            rest_weight_per_minute: 600,
            snapshot_weight: 1,
            max_frame_bytes: MAX_FRAME_BYTES,
            connections_per_second: Some(8),
            ..Limits::BASE
        }
    }

    /// Coinbase writes products as `BASE-QUOTE`, the normalized spot form.
    fn venue_symbol(&self, instrument: &Instrument) -> String {
        format!("{}-{}", instrument.base, instrument.quote)
    }

    fn candle_interval(&self) -> &'static str {
        "5m"
    }

    fn sequencer(&self, depth: u32) -> Arc<dyn Sequencer> {
        let _ = depth;
        Arc::new(CoinbaseBook)
    }

    /// The API follows the connection's URL; without one, this venue's default.
    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        let api = if spec.ws_url.is_empty() {
            self.api
        } else {
            Api::from_url(&spec.ws_url)
        };
        Box::new(self.session_for(api, spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_by_url() {
        assert_eq!(Api::from_url(WS_URL_ADVANCED), Api::Advanced);
        assert_eq!(Api::from_url(WS_URL_EXCHANGE), Api::Exchange);
        assert_eq!(
            Api::from_url("wss://ws-feed.pro.coinbase.com"),
            Api::Exchange
        );
        assert_eq!(Api::from_url("ws://127.0.0.1:18084"), Api::Advanced);
        assert_eq!(Api::from_url("ws://127.0.0.1:18084/"), Api::Advanced);
        assert_eq!(
            Api::from_url("ws://127.0.0.1:18084/exchange"),
            Api::Exchange
        );
        assert_eq!(
            Api::from_url("ws://127.0.0.1:18084/exchange/?x=1"),
            Api::Exchange
        );
    }

    #[test]
    fn maker_side_to_taker_side() {
        assert_eq!(taker_of_maker("SELL").unwrap(), (trade::Side::Buy, false));
        assert_eq!(taker_of_maker("buy").unwrap(), (trade::Side::Sell, true));
        assert!(taker_of_maker("up").is_err());
    }

    #[test]
    fn recent_trades_are_bounded() {
        let r = RecentTrades::new(2);
        assert!(r.insert("BTC-USD", "1"));
        assert!(!r.insert("BTC-USD", "1"));
        assert!(r.insert("ETH-USD", "1"));
        assert!(r.insert("BTC-USD", "2"));
        // "BTC-USD 1" was forgotten, the oldest.
        assert!(r.insert("BTC-USD", "1"));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn trade_ids() {
        assert_eq!(trade_id("1068572090").unwrap(), IdRef::Num(1_068_572_090));
        assert_eq!(trade_id("0").unwrap(), IdRef::Num(0));
        assert_eq!(trade_id("007").unwrap(), IdRef::Text("007"));
        assert_eq!(trade_id("abc").unwrap(), IdRef::Text("abc"));
        assert!(trade_id("").is_err());
    }
}
