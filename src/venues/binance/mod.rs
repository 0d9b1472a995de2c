//! Binance spot and USD-M futures: the same message shapes with a few extra fields on
//! futures (`pu`, `T`, `X`), different hosts and book-sync rules.

pub mod http;
pub mod websocket;

use std::time::Duration;

use crate::book::{Rules, Snapshot};
use crate::schema::Normalized;
use crate::venues::{Channel, ParseError, SymbolMap, Venue, VenueEvent};

/// Which Binance market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// Spot (`stream.binance.com`, `api.binance.com`).
    Spot,
    /// USD-M perpetual futures (`fstream.binance.com`, `fapi.binance.com`).
    UsdM,
}

/// A Binance venue.
#[derive(Debug, Clone, Copy)]
pub struct Binance {
    market: Market,
}

impl Binance {
    /// Binance spot.
    pub fn spot() -> Binance {
        Binance {
            market: Market::Spot,
        }
    }

    /// Binance USD-M futures.
    pub fn usdm() -> Binance {
        Binance {
            market: Market::UsdM,
        }
    }
}

impl Venue for Binance {
    fn exchange(&self) -> &'static str {
        match self.market {
            Market::Spot => "BINANCE",
            Market::UsdM => "BINANCE_FUTURES",
        }
    }

    fn default_ws_url(&self) -> &'static str {
        match self.market {
            Market::Spot => "wss://stream.binance.com:9443",
            Market::UsdM => "wss://fstream.binance.com",
        }
    }

    fn default_rest_url(&self) -> &'static str {
        match self.market {
            Market::Spot => "https://api.binance.com",
            Market::UsdM => "https://fapi.binance.com",
        }
    }

    fn ws_path(&self) -> &'static str {
        "/stream"
    }

    fn stream_name(&self, venue_symbol: &str, channel: Channel) -> Option<String> {
        let s = venue_symbol.to_ascii_lowercase();
        let futures = self.market == Market::UsdM;
        Some(match channel {
            Channel::Trade => format!("{s}@trade"),
            Channel::AggTrade => format!("{s}@aggTrade"),
            Channel::Depth => format!("{s}@depth@100ms"),
            Channel::BookTicker => format!("{s}@bookTicker"),
            Channel::Ticker => format!("{s}@ticker"),
            Channel::Candle => format!("{s}@kline_1m"),
            Channel::Funding if futures => format!("{s}@markPrice"),
            Channel::Liquidation if futures => format!("{s}@forceOrder"),
            Channel::Funding | Channel::Liquidation | Channel::OpenInterest => return None,
        })
    }

    fn subscribe_request(&self, streams: &[String], id: u64) -> String {
        serde_json::json!({ "method": "SUBSCRIBE", "params": streams, "id": id }).to_string()
    }

    fn max_streams_per_connection(&self) -> usize {
        match self.market {
            Market::Spot => 1024,
            Market::UsdM => 200,
        }
    }

    fn max_messages_per_second(&self) -> u32 {
        match self.market {
            Market::Spot => 5,
            Market::UsdM => 10,
        }
    }

    fn connection_lifetime(&self) -> Duration {
        Duration::from_secs(24 * 3600)
    }

    fn parse(
        &self,
        text: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError> {
        websocket::parse::parse_frame(self.exchange(), text, receipt_us, symbols, out)
    }

    fn book_rules(&self) -> Rules {
        match self.market {
            Market::Spot => Rules::Spot,
            Market::UsdM => Rules::UsdM,
        }
    }

    fn snapshot_path(&self, venue_symbol: &str, limit: u32) -> String {
        match self.market {
            Market::Spot => format!("/api/v3/depth?symbol={venue_symbol}&limit={limit}"),
            Market::UsdM => format!("/fapi/v1/depth?symbol={venue_symbol}&limit={limit}"),
        }
    }

    fn parse_snapshot(&self, body: &str) -> Result<Snapshot, ParseError> {
        http::parse_snapshot(body)
    }

    fn open_interest_path(&self, venue_symbol: &str) -> Option<String> {
        (self.market == Market::UsdM)
            .then(|| format!("/fapi/v1/openInterest?symbol={venue_symbol}"))
    }

    fn parse_open_interest(
        &self,
        body: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
    ) -> Result<Normalized, ParseError> {
        http::parse_open_interest(self.exchange(), body, receipt_us, symbols)
    }

    fn venue_symbol(&self, normalized: &str) -> String {
        normalized.trim_end_matches("-PERP").replace('-', "")
    }

    fn exchange_info_path(&self) -> Option<&'static str> {
        Some(match self.market {
            Market::Spot => "/api/v3/exchangeInfo",
            Market::UsdM => "/fapi/v1/exchangeInfo",
        })
    }

    fn parse_exchange_info(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        http::parse_exchange_info(body, self.market == Market::UsdM)
    }
}
