//! Kraken spot (`kraken`, exchange `KRAKEN`): WebSocket v1 and v2, in-band book snapshots
//! with CRC32 checksums, no REST.
//!
//! **Which API version a feed speaks** is chosen by its WebSocket URL: a URL whose path ends
//! in `/v2` (`wss://ws.kraken.com/v2`, the default and the current API) speaks v2; any other
//! (`wss://ws.kraken.com`, or a replay server's root) speaks v1, the array-framed API of the
//! recorded fixtures ([`WsVersion::from_url`]). The URL reaches the venue only as
//! [`Kraken::for_ws_url`] / [`Kraken::session_for`]: until [`SessionSpec`] carries the URL the
//! feed connects to, [`Venue::session`] speaks this value's version (v2 for the registered
//! `kraken`).
//!
//! **Symbols**: normalized `BTC-USD` is `XBT/USD` in v1 and `BTC/USD` in v2; v1 also writes
//! DOGE as `XDG`. The mapping is pinned ([`venue_pair`], [`normalized_pair`]); Kraken's
//! instrument list is not fetched.
//!
//! Layout (NautilusTrader-style): `websocket/{messages,v1,v2}` are pure parse and request
//! functions, `session` the stateful connection, `book` the sequencer, `replay` the mock.

pub mod book;
pub mod http;
pub mod replay;
mod session;
pub mod websocket;

use std::sync::Arc;
use std::time::Duration;

use crate::book::Sequencer;
use crate::venues::{
    Channel, Instrument, InstrumentKind, Limits, ParseError, SessionSpec, SymbolMap, Venue,
    VenueEvent, VenueSession,
};
pub use book::KrakenBook;
pub use session::KrakenSession;
pub use websocket::{Control, Precision, Precisions, EXCHANGE};

/// WebSocket v1 base URL.
pub const WS_URL_V1: &str = "wss://ws.kraken.com";
/// WebSocket v2 base URL (the default).
pub const WS_URL_V2: &str = "wss://ws.kraken.com/v2";

/// Channels Kraken offers here: `trade`, `book`, `spread` (v1) / `ticker` with
/// `event_trigger: bbo` (v2) as book ticker, `ticker`, 1-minute `ohlc`.
const CHANNELS: &[Channel] = &[
    Channel::Trade,
    Channel::Depth,
    Channel::BookTicker,
    Channel::Ticker,
    Channel::Candle,
];

/// Kraken's WebSocket API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WsVersion {
    /// `wss://ws.kraken.com`: array frames, `XBT/USD` pairs, string decimals.
    V1,
    /// `wss://ws.kraken.com/v2`: object messages, `BTC/USD` pairs, number decimals.
    V2,
}

impl WsVersion {
    /// The version a WebSocket URL speaks: `…/v2` (query and trailing `/` ignored) is v2,
    /// anything else v1.
    pub fn from_url(url: &str) -> WsVersion {
        let path = url.split(['?', '#']).next().unwrap_or_default();
        if path.trim_end_matches('/').ends_with("/v2") {
            WsVersion::V2
        } else {
            WsVersion::V1
        }
    }
}

/// An asset as Kraken writes it in `version` (v1: BTC → XBT, DOGE → XDG).
pub fn venue_asset(asset: &str, version: WsVersion) -> &str {
    match (version, asset) {
        (WsVersion::V1, "BTC") => "XBT",
        (WsVersion::V1, "DOGE") => "XDG",
        (WsVersion::V2, "XBT") => "BTC",
        (WsVersion::V2, "XDG") => "DOGE",
        (_, a) => a,
    }
}

/// A normalized asset of a Kraken (v1 or v2) asset (XBT → BTC, XDG → DOGE).
pub fn normalized_asset(asset: &str) -> &str {
    match asset {
        "XBT" => "BTC",
        "XDG" => "DOGE",
        a => a,
    }
}

/// The Kraken pair of a spot instrument in `version` (`BTC-USD` → `XBT/USD` or `BTC/USD`).
pub fn venue_pair(instrument: &Instrument, version: WsVersion) -> String {
    format!(
        "{}/{}",
        venue_asset(&instrument.base, version),
        venue_asset(&instrument.quote, version)
    )
}

/// The same pair as `pair` (either version's form) written for `version`.
pub fn pair_in(pair: &str, version: WsVersion) -> String {
    match pair.split_once('/') {
        Some((b, q)) => format!("{}/{}", venue_asset(b, version), venue_asset(q, version)),
        None => pair.to_string(),
    }
}

/// The normalized symbol of a Kraken pair (`XBT/USD` or `BTC/USD` → `BTC-USD`).
pub fn normalized_pair(pair: &str) -> Option<String> {
    let (b, q) = pair.split_once('/')?;
    let s = format!("{}-{}", normalized_asset(b), normalized_asset(q));
    Instrument::parse(&s).ok().map(|_| s)
}

/// Kraken spot, speaking one API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kraken {
    version: WsVersion,
}

impl Default for Kraken {
    fn default() -> Self {
        Kraken::new()
    }
}

impl Kraken {
    /// Kraken on its default URL, WebSocket v2.
    pub fn new() -> Kraken {
        Kraken {
            version: WsVersion::V2,
        }
    }

    /// Kraken speaking `version`.
    pub fn with_version(version: WsVersion) -> Kraken {
        Kraken { version }
    }

    /// Kraken speaking the version `ws_url` selects ([`WsVersion::from_url`]).
    pub fn for_ws_url(ws_url: &str) -> Kraken {
        Kraken::with_version(WsVersion::from_url(ws_url))
    }

    /// The API version.
    pub fn version(&self) -> WsVersion {
        self.version
    }

    /// Parses one text frame without a session (tests, benches, fuzzing); v2 book levels use
    /// the pinned precisions.
    pub fn parse(
        &self,
        text: &str,
        receipt_us: i64,
        symbols: &SymbolMap,
        out: &mut Vec<VenueEvent>,
    ) -> Result<Control, ParseError> {
        match self.version {
            WsVersion::V1 => websocket::v1::parse_frame(text, receipt_us, symbols, out),
            WsVersion::V2 => {
                websocket::v2::parse_frame(text, receipt_us, symbols, &Precisions::new(), out)
            }
        }
    }

    /// A session for `spec` speaking `version` (whatever this venue's default is).
    pub fn session_for(&self, version: WsVersion, spec: SessionSpec) -> KrakenSession {
        KrakenSession::new(version, spec)
    }
}

impl Venue for Kraken {
    fn name(&self) -> &'static str {
        "kraken"
    }

    fn exchange(&self) -> &'static str {
        EXCHANGE
    }

    fn default_ws_url(&self) -> &'static str {
        match self.version {
            WsVersion::V1 => WS_URL_V1,
            WsVersion::V2 => WS_URL_V2,
        }
    }

    fn default_rest_url(&self) -> Option<&'static str> {
        Some("https://api.kraken.com")
    }

    fn instruments_path(&self) -> Option<&'static str> {
        Some("/0/public/AssetPairs")
    }

    fn parse_instruments(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        http::parse_asset_pairs(body)
    }

    fn channels(&self) -> &'static [Channel] {
        CHANNELS
    }

    fn instrument_kinds(&self) -> &'static [InstrumentKind] {
        &[InstrumentKind::Spot]
    }

    /// Kraken publishes no per-connection subscription cap or client message rate for public
    /// data; these are conservative. Connections are not closed by the venue on a schedule
    /// (rotated daily). No REST is used (book snapshots come in band).
    fn limits(&self) -> Limits {
        Limits {
            max_streams_per_connection: 200,
            max_streams_per_message: session::PAIRS_PER_MESSAGE,
            max_messages_per_second: 10,
            connection_lifetime: Duration::from_secs(24 * 3600),
            rest_weight_per_minute: 60,
            snapshot_weight: 1,
            ..Limits::BASE
        }
    }

    fn venue_symbol(&self, instrument: &Instrument) -> String {
        venue_pair(instrument, self.version)
    }

    fn sequencer(&self, depth: u32) -> Arc<dyn Sequencer> {
        Arc::new(KrakenBook::new(depth))
    }

    /// The API version follows the connection's URL (`…/v2` → v2, otherwise v1); without
    /// one, this venue's own version.
    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        let version = if spec.ws_url.is_empty() {
            self.version
        } else {
            WsVersion::from_url(&spec.ws_url)
        };
        Box::new(KrakenSession::new(version, spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_by_url_and_symbols() {
        assert_eq!(WsVersion::from_url("wss://ws.kraken.com/v2"), WsVersion::V2);
        assert_eq!(
            WsVersion::from_url("wss://ws.kraken.com/v2/"),
            WsVersion::V2
        );
        assert_eq!(
            WsVersion::from_url("ws://127.0.0.1:1/v2?x=1"),
            WsVersion::V2
        );
        assert_eq!(WsVersion::from_url("wss://ws.kraken.com"), WsVersion::V1);
        assert_eq!(WsVersion::from_url("ws://127.0.0.1:18082/"), WsVersion::V1);
        let i = Instrument::parse("BTC-USD").unwrap();
        assert_eq!(venue_pair(&i, WsVersion::V1), "XBT/USD");
        assert_eq!(venue_pair(&i, WsVersion::V2), "BTC/USD");
        let d = Instrument::parse("DOGE-XBT").unwrap();
        assert_eq!(venue_pair(&d, WsVersion::V1), "XDG/XBT");
        assert_eq!(venue_pair(&d, WsVersion::V2), "DOGE/BTC");
        assert_eq!(normalized_pair("XBT/USD").as_deref(), Some("BTC-USD"));
        assert_eq!(normalized_pair("XDG/EUR").as_deref(), Some("DOGE-EUR"));
        assert_eq!(normalized_pair("ADA/XBT").as_deref(), Some("ADA-BTC"));
        assert_eq!(normalized_pair("nope"), None);
        assert_eq!(pair_in("BTC/USD", WsVersion::V1), "XBT/USD");
        assert_eq!(Kraken::new().default_ws_url(), WS_URL_V2);
    }
}
