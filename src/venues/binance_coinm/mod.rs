//! Binance COIN-M futures (coin-margined, inverse): perpetuals (`BTCUSD_PERP`) and quarterly
//! deliveries (`BTCUSD_211231`). The same message shapes and `pu`-chained book as USD-M, so the
//! whole market is one [`Spec`] on top of [`crate::venues::binance`]; `exchange` is
//! `BINANCE_DELIVERY`, cryptofeed's name for this market.
//!
//! Symbols: `BTCUSD_PERP` ↔ `BTC-USD-PERP`, `BTCUSD_211231` ↔ `BTC-USD-20211231` (the venue's
//! `YYMMDD` delivery date read as `20YYMMDD`).
//!
//! Quantities are **contracts**, not coins: one contract is USD 100 for BTC and USD 10 for the
//! other underlyings (`contractSize` in `/dapi/v1/exchangeInfo`). The normalized records carry
//! the venue's quantities as sent: trade `amount`, book and top-of-book sizes, liquidation
//! `quantity`, open interest, ticker and candle `volume` are contract counts. Binance's `q` on
//! the 24h ticker and on klines is the *base-asset* volume on COIN-M (e.g. BTC), and it is what
//! `quote_volume` carries for this venue.

use std::time::Duration;

use crate::venues::binance::http::SymbolInfo;
use crate::venues::binance::{Binance, Rules, Spec, FUTURES_CHANNELS};
use crate::venues::{Instrument, InstrumentKind, Limits};

/// Binance COIN-M futures.
pub static COINM: Spec = Spec {
    name: "binance_coinm",
    exchange: "BINANCE_DELIVERY",
    // COIN-M is not routed: one `/stream` for every stream (checked 2026-12-06, see API.md).
    ws_url: "wss://dstream.binance.com",
    routed: false,
    rest_url: "https://dapi.binance.com",
    rest_prefix: "/dapi/v1",
    instruments_path: "/dapi/v1/exchangeInfo",
    rules: Rules::UsdM,
    futures: true,
    channels: FUTURES_CHANNELS,
    kinds: &[InstrumentKind::Perpetual, InstrumentKind::Future],
    // WebSocket (developers.binance.com/docs/derivatives/coin-margined-futures/
    // websocket-market-streams): "A single connection can listen to a maximum of 200 streams",
    // "WebSocket connections have a limit of 10 incoming messages per second", "A single
    // connection is only valid for 24 hours".
    // REST: 2400 request weight per minute per IP ("The default rate limit per IP is
    // 2,400/min", Binance FAQ "Rate Limits on Binance Futures", USD-M and COIN-M alike);
    // GET /dapi/v1/depth with limit 1000 weighs 20 (coin-margined-futures/market-data/
    // Order-Book: 5–50 → 2, 100 → 5, 500 → 10, 1000 → 20). No separate cap on the streams of
    // one SUBSCRIBE message is documented: as on USD-M, one message may carry all 200.
    limits: Limits {
        max_streams_per_connection: 200,
        max_streams_per_message: 200,
        max_messages_per_second: 10,
        connection_lifetime: Duration::from_secs(24 * 3600),
        rest_weight_per_minute: 2400,
        snapshot_weight: 20,
        ..Limits::BASE
    },
    venue_symbol,
    normalize,
    fixtures: ("binance_coinm_", &[]),
    quotes: &["USD"],
};

/// Binance COIN-M futures as a venue.
pub fn coinm() -> Binance {
    Binance::with_spec(&COINM)
}

/// The COIN-M symbol of an instrument: `BTC-USD-PERP` → `BTCUSD_PERP`,
/// `BTC-USD-20211231` → `BTCUSD_211231`. Other kinds are not listed on COIN-M (the config
/// refuses them); they map to the bare pair.
pub fn venue_symbol(i: &Instrument) -> String {
    let pair = format!("{}{}", i.base, i.quote);
    match i.kind {
        InstrumentKind::Perpetual => format!("{pair}_PERP"),
        InstrumentKind::Future => match i.expiry.as_deref().and_then(|d| d.get(2..)) {
            Some(yymmdd) => format!("{pair}_{yymmdd}"),
            None => pair,
        },
        InstrumentKind::Spot | InstrumentKind::Option => pair,
    }
}

/// The normalized symbol of a COIN-M `exchangeInfo` entry: `PERPETUAL` → `BASE-QUOTE-PERP`;
/// `CURRENT_QUARTER` / `NEXT_QUARTER` → `BASE-QUOTE-20YYMMDD` from the symbol's `_YYMMDD`
/// suffix; any other contract type (e.g. the `*_DELIVERING` states) is not offered.
pub fn normalize(s: &SymbolInfo<'_>) -> Option<String> {
    let symbol = match s.contract_type? {
        "PERPETUAL" => format!("{}-{}-PERP", s.base, s.quote),
        "CURRENT_QUARTER" | "NEXT_QUARTER" => {
            let (_, yymmdd) = s.symbol.rsplit_once('_')?;
            if yymmdd.len() != 6 || !yymmdd.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            format!("{}-{}-20{yymmdd}", s.base, s.quote)
        }
        _ => return None,
    };
    // Only well-formed symbols of the kinds listed here (a bad date or asset is skipped).
    Instrument::parse(&symbol)
        .ok()
        .filter(|i| COINM.kinds.contains(&i.kind))
        .map(|_| symbol)
}
