//! Bybit v5 public market data (`bybit`, exchange `BYBIT`): spot, linear (USDT/USDC
//! perpetuals and futures), inverse (USD perpetuals and futures) and options.
//!
//! **One connection serves one category**: `wss://stream.bybit.com/v5/public/{category}`. The
//! session picks the category from the kinds of its symbols ([`Category::of`]): spot symbols →
//! `spot`; perpetuals and futures quoted in USDT or USDC → `linear`, in USD → `inverse`;
//! options → `option`. A feed may name symbols of several categories: the venue's
//! [`Venue::symbol_group`] is the category, so the service opens one connection per category.
//! A session still given symbols of several categories (a test driving it directly) speaks
//! the category of its first subscription and leaves the others out of its subscribe
//! messages ([`BybitSession::foreign`] lists them).
//!
//! **Symbols** (pinned mapping, [`venue_symbol`]): spot `BTC-USDT` → `BTCUSDT`; USDT
//! perpetual `BTC-USDT-PERP` → `BTCUSDT`; USDC perpetual `BTC-USDC-PERP` → `BTCPERP`; inverse
//! `BTC-USD-PERP` → `BTCUSD`; inverse future `BTC-USD-20230929` → `BTCUSDU23`; USDC future
//! `BTC-USDC-20251226` → `BTC-26DEC25`; USDT future → `BTCUSDT-26DEC25`; USDC option
//! `BTC-USD-20230106-17500-C` → `BTC-6JAN23-17500-C` (the instrument list writes USDC-settled
//! options' quote as `USD`; USDT options add `-USDT`). The
//! instrument list (`/v5/market/instruments-info`, one request per category, paged by
//! cursor) is authoritative and names every instrument from its own fields ([`http`]).
//!
//! Layout: `messages` (raw payloads), `parse` (pure parse functions), `book` (the sequencer),
//! `session` (one connection), `http` (instrument lists), `replay` (the mock).

pub mod book;
pub mod http;
pub mod messages;
pub mod parse;
pub mod replay;
mod session;

use std::sync::Arc;
use std::time::Duration;

use crate::book::Sequencer;
use crate::venues::{
    Channel, Delivery, Instrument, InstrumentKind, InstrumentPage, Limits, ParseError, SessionSpec,
    SymbolMap, Venue, VenueEvent, VenueSession,
};
pub use book::BybitBook;
pub use parse::{Control, ParseState};
pub use session::BybitSession;

/// The `exchange` of Bybit records.
pub const EXCHANGE: &str = "BYBIT";

/// Default WebSocket base URL (the session appends `/v5/public/{category}`).
pub const WS_URL: &str = "wss://stream.bybit.com";

/// Default REST base URL.
pub const REST_URL: &str = "https://api.bybit.com";

/// REST path of the instrument list.
pub const INSTRUMENTS_PATH: &str = "/v5/market/instruments-info";

/// Channels Bybit offers here: `publicTrade`, `orderbook.{50,200,1000}` (options 25/100) as
/// a kept book, `orderbook.1` as top of book, `tickers` (ticker; funding and open interest
/// for linear and inverse), `allLiquidation`, `kline.1`.
const CHANNELS: &[Channel] = &[
    Channel::Trade,
    Channel::Depth,
    Channel::BookTicker,
    Channel::Ticker,
    Channel::Funding,
    Channel::OpenInterest,
    Channel::Liquidation,
    Channel::Candle,
];

/// A Bybit v5 product category: one WebSocket URL and one instrument list each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Spot pairs.
    Spot,
    /// USDT and USDC perpetuals and futures (quantities in the base coin).
    Linear,
    /// USD-margined (inverse) perpetuals and futures (quantities in USD contracts).
    Inverse,
    /// Options (quantities in the base coin).
    Option,
}

impl Category {
    /// Every category, in instrument-request order.
    pub const ALL: [Category; 4] = [
        Category::Spot,
        Category::Linear,
        Category::Inverse,
        Category::Option,
    ];

    /// The name in URLs and REST queries.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Spot => "spot",
            Category::Linear => "linear",
            Category::Inverse => "inverse",
            Category::Option => "option",
        }
    }

    /// The category from its name.
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The category serving a normalized instrument: spot → spot, options → option,
    /// perpetuals and futures quoted in USD → inverse, otherwise linear.
    pub fn of(instrument: &Instrument) -> Category {
        match instrument.kind {
            InstrumentKind::Spot => Category::Spot,
            InstrumentKind::Option => Category::Option,
            InstrumentKind::Perpetual | InstrumentKind::Future => {
                if instrument.quote == "USD" {
                    Category::Inverse
                } else {
                    Category::Linear
                }
            }
        }
    }

    /// The WebSocket path of this category.
    pub fn ws_path(self) -> String {
        format!("/v5/public/{}", self.as_str())
    }

    /// Book depths Bybit serves as kept books (`orderbook.N`) in this category.
    pub fn depths(self) -> &'static [u32] {
        match self {
            Category::Option => &[25, 100],
            _ => &[50, 200, 1000],
        }
    }

    /// The depth subscribed for a configured depth: the smallest one that covers it, else
    /// the deepest.
    pub fn book_depth(self, configured: u32) -> u32 {
        let d = self.depths();
        d.iter()
            .copied()
            .find(|x| *x >= configured)
            .unwrap_or(d[d.len() - 1])
    }

    /// Whether its ticker carries funding (linear and inverse).
    pub fn has_funding(self) -> bool {
        matches!(self, Category::Linear | Category::Inverse)
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Futures month codes (inverse futures: `BTCUSDU23` is September 2023).
const MONTH_CODES: [char; 12] = ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'];

/// `YYYYMMDD` → Bybit's `DMMMYY` (`20230106` → `6JAN23`), when it is a date.
fn bybit_date(ymd: &str) -> Option<String> {
    let y = ymd.get(2..4)?;
    let m: usize = ymd.get(4..6)?.parse().ok()?;
    let d: u32 = ymd.get(6..8)?.parse().ok()?;
    Some(format!("{d}{}{y}", MONTHS.get(m.checked_sub(1)?)?))
}

/// The Bybit symbol of a normalized instrument (the pinned mapping; the instrument list is
/// authoritative).
pub fn venue_symbol(i: &Instrument) -> String {
    let (b, q) = (i.base.as_str(), i.quote.as_str());
    let expiry = i.expiry.as_deref().unwrap_or_default();
    match i.kind {
        InstrumentKind::Spot => format!("{b}{q}"),
        InstrumentKind::Perpetual => match q {
            "USDC" => format!("{b}PERP"),
            _ => format!("{b}{q}"),
        },
        InstrumentKind::Future => {
            let date = bybit_date(expiry).unwrap_or_default();
            match q {
                "USD" => {
                    let m: usize = expiry.get(4..6).and_then(|m| m.parse().ok()).unwrap_or(0);
                    let code = m
                        .checked_sub(1)
                        .and_then(|m| MONTH_CODES.get(m))
                        .copied()
                        .unwrap_or('?');
                    format!("{b}USD{code}{}", expiry.get(2..4).unwrap_or_default())
                }
                "USDC" => format!("{b}-{date}"),
                _ => format!("{b}{q}-{date}"),
            }
        }
        InstrumentKind::Option => {
            let date = bybit_date(expiry).unwrap_or_default();
            let strike = i.strike.as_deref().unwrap_or_default();
            let right = i.right.unwrap_or('C');
            match q {
                "USDC" | "USD" => format!("{b}-{date}-{strike}-{right}"),
                _ => format!("{b}-{date}-{strike}-{right}-{q}"),
            }
        }
    }
}

/// Bybit v5 public market data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bybit;

impl Bybit {
    /// Bybit on its default URLs.
    pub fn new() -> Bybit {
        Bybit
    }

    /// Parses one text frame of `category` without a session (tests, benches, fuzzing):
    /// every record the frame gives (a ticker gives ticker, funding and open-interest records;
    /// the session keeps those its subscriptions asked for).
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

    /// A session for `spec` (the concrete type; [`Venue::session`] boxes it).
    pub fn session_for(&self, spec: SessionSpec) -> BybitSession {
        BybitSession::new(spec)
    }

    /// The replay mock serving `fixtures`.
    pub fn replay_mock(
        &self,
        fixtures: &std::path::Path,
    ) -> Result<Box<dyn crate::replay::ReplayMock>, crate::replay::CorpusError> {
        replay::mock(fixtures)
    }
}

impl Venue for Bybit {
    fn name(&self) -> &'static str {
        "bybit"
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

    /// Bybit documents 10 args per subscribe request (spot), 21,000 characters of args per
    /// connection and 500 new connections per 5 minutes per IP; it publishes no client
    /// message rate for public streams (10/s is conservative) and closes no connection on a
    /// schedule (rotated daily).
    fn limits(&self) -> Limits {
        Limits {
            max_streams_per_connection: 200,
            max_streams_per_message: session::ARGS_PER_MESSAGE,
            max_messages_per_second: 10,
            connection_lifetime: Duration::from_secs(24 * 3600),
            rest_weight_per_minute: 600,
            snapshot_weight: 1,
            ..Limits::BASE
        }
    }

    fn venue_symbol(&self, instrument: &Instrument) -> String {
        venue_symbol(instrument)
    }

    fn instruments_path(&self) -> Option<&'static str> {
        Some(INSTRUMENTS_PATH)
    }

    fn instrument_requests(&self) -> Vec<String> {
        http::instrument_requests()
    }

    fn parse_instruments_page(&self, path: &str, body: &str) -> Result<InstrumentPage, ParseError> {
        http::parse_instruments_page(path, body)
    }

    fn parse_instruments(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        Ok(http::parse_instruments_page(INSTRUMENTS_PATH, body)?.pairs)
    }

    /// Open interest comes with the `tickers` stream (linear, inverse, option).
    fn delivery(&self, _channel: Channel) -> Delivery {
        Delivery::Stream
    }

    /// Each category is served on its own URL (`/v5/public/{category}`): one connection per
    /// category; a symbol that does not parse stays with the first group (and is refused by
    /// config validation before it gets here).
    fn symbol_group(&self, symbol: &str) -> &'static str {
        Instrument::parse(symbol).map_or("", |i| Category::of(&i).as_str())
    }

    fn sequencer(&self, depth: u32) -> Arc<dyn Sequencer> {
        Arc::new(BybitBook::new(depth))
    }

    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        Box::new(BybitSession::new(spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> String {
        venue_symbol(&Instrument::parse(s).unwrap())
    }

    #[test]
    fn symbols_and_categories() {
        assert_eq!(sym("BTC-USDT"), "BTCUSDT");
        assert_eq!(sym("BTC-USDT-PERP"), "BTCUSDT");
        assert_eq!(sym("BTC-USDC-PERP"), "BTCPERP");
        assert_eq!(sym("BTC-USD-PERP"), "BTCUSD");
        assert_eq!(sym("BTC-USD-20230929"), "BTCUSDU23");
        assert_eq!(sym("BTC-USDC-20251226"), "BTC-26DEC25");
        assert_eq!(sym("BTC-USDT-20251226"), "BTCUSDT-26DEC25");
        assert_eq!(sym("BTC-USDC-20230106-17500-C"), "BTC-6JAN23-17500-C");
        assert_eq!(sym("BTC-USD-20230106-17500-C"), "BTC-6JAN23-17500-C");
        assert_eq!(sym("ETH-USDT-20250328-2000-P"), "ETH-28MAR25-2000-P-USDT");
        let cat = |s: &str| Category::of(&Instrument::parse(s).unwrap());
        assert_eq!(cat("BTC-USDT"), Category::Spot);
        assert_eq!(cat("BTC-USDT-PERP"), Category::Linear);
        assert_eq!(cat("BTC-USDC-20251226"), Category::Linear);
        assert_eq!(cat("BTC-USD-PERP"), Category::Inverse);
        assert_eq!(cat("BTC-USD-20230929"), Category::Inverse);
        assert_eq!(cat("BTC-USDC-20230106-17500-C"), Category::Option);
        assert_eq!(Category::Spot.book_depth(100), 200);
        assert_eq!(Category::Linear.book_depth(1), 50);
        assert_eq!(Category::Linear.book_depth(5000), 1000);
        assert_eq!(Category::Option.book_depth(50), 100);
        assert_eq!(Category::Option.book_depth(10), 25);
        assert_eq!(Category::Inverse.ws_path(), "/v5/public/inverse");
    }
}
