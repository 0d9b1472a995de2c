//! Raw Binance WebSocket payloads (spot and USD-M), borrowing strings from the frame.
//! Field names are Binance's one-letter keys; optional fields are the ones absent on one market
//! or in older/newer captures (e.g. `b`/`a` order ids no longer sent in `@trade`).

use serde::Deserialize;
use serde_json::value::RawValue;

/// Combined-stream envelope `{"stream": "...", "data": {...}}`.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// Stream name, e.g. `btcusdt@trade`.
    #[serde(borrow)]
    pub stream: Option<&'a str>,
    /// The payload, parsed once its type is known.
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    /// Subscription answer id.
    pub id: Option<serde_json::Value>,
    /// Error code of an error answer.
    pub code: Option<i64>,
    /// Error message of an error answer.
    pub msg: Option<String>,
}

/// `<symbol>@trade`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Trade<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Trade id.
    #[serde(rename = "t")]
    pub trade_id: i64,
    /// Price.
    #[serde(rename = "p")]
    pub price: &'a str,
    /// Quantity.
    #[serde(rename = "q")]
    pub quantity: &'a str,
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub trade_time: i64,
    /// Buyer is the maker.
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
    /// Futures order type (`MARKET`, `LIQUIDATION`, …).
    #[serde(rename = "X")]
    pub order_type: Option<&'a str>,
}

/// `<symbol>@aggTrade`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AggTrade<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Aggregate trade id (absent in 2019 USD-M captures).
    #[serde(rename = "a")]
    pub agg_id: Option<i64>,
    /// Price.
    #[serde(rename = "p")]
    pub price: &'a str,
    /// Quantity.
    #[serde(rename = "q")]
    pub quantity: &'a str,
    /// First trade id.
    #[serde(rename = "f")]
    pub first_trade_id: i64,
    /// Last trade id.
    #[serde(rename = "l")]
    pub last_trade_id: i64,
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub trade_time: i64,
    /// Buyer is the maker.
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

/// `<symbol>@depth[@100ms]` (`depthUpdate`).
#[derive(Debug, Deserialize)]
pub struct DepthUpdate<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Transaction time, ms (futures).
    #[serde(rename = "T")]
    pub transaction_time: Option<i64>,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// First update id.
    #[serde(rename = "U")]
    pub first_update_id: i64,
    /// Final update id.
    #[serde(rename = "u")]
    pub final_update_id: i64,
    /// Previous final update id (futures).
    #[serde(rename = "pu")]
    pub prev_final_update_id: Option<i64>,
    /// Bids `[price, qty]`.
    #[serde(rename = "b", borrow)]
    pub bids: Vec<[&'a str; 2]>,
    /// Asks `[price, qty]`.
    #[serde(rename = "a", borrow)]
    pub asks: Vec<[&'a str; 2]>,
}

/// `<symbol>@bookTicker`.
#[derive(Debug, Deserialize)]
pub struct BookTicker<'a> {
    /// Book update id.
    #[serde(rename = "u")]
    pub update_id: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Best bid price.
    #[serde(rename = "b")]
    pub bid_price: &'a str,
    /// Best bid quantity.
    #[serde(rename = "B")]
    pub bid_qty: &'a str,
    /// Best ask price.
    #[serde(rename = "a")]
    pub ask_price: &'a str,
    /// Best ask quantity.
    #[serde(rename = "A")]
    pub ask_qty: &'a str,
    /// Event time, ms (futures).
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    /// Transaction time, ms (futures).
    #[serde(rename = "T")]
    pub transaction_time: Option<i64>,
}

/// `<symbol>@ticker` (`24hrTicker`).
#[derive(Debug, Deserialize)]
pub struct Ticker<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Last price.
    #[serde(rename = "c")]
    pub last: &'a str,
    /// Best bid (spot).
    #[serde(rename = "b")]
    pub bid: Option<&'a str>,
    /// Best ask (spot).
    #[serde(rename = "a")]
    pub ask: Option<&'a str>,
    /// Open.
    #[serde(rename = "o")]
    pub open: &'a str,
    /// High.
    #[serde(rename = "h")]
    pub high: &'a str,
    /// Low.
    #[serde(rename = "l")]
    pub low: &'a str,
    /// Base volume.
    #[serde(rename = "v")]
    pub volume: &'a str,
    /// Quote volume.
    #[serde(rename = "q")]
    pub quote_volume: &'a str,
    /// Statistics close time, ms.
    #[serde(rename = "C")]
    pub close_time: i64,
}

/// `<symbol>@markPrice` (`markPriceUpdate`, USD-M).
#[derive(Debug, Deserialize)]
pub struct MarkPrice<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Mark price.
    #[serde(rename = "p")]
    pub mark_price: &'a str,
    /// Index price (newer captures).
    #[serde(rename = "i")]
    pub index_price: Option<&'a str>,
    /// Funding rate.
    #[serde(rename = "r")]
    pub funding_rate: &'a str,
    /// Next funding time, ms.
    #[serde(rename = "T")]
    pub next_funding_time: i64,
}

/// `<symbol>@forceOrder` (USD-M).
#[derive(Debug, Deserialize)]
pub struct ForceOrder<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// The liquidation order.
    #[serde(rename = "o", borrow)]
    pub order: ForceOrderDetail<'a>,
}

/// The order inside a `forceOrder` event.
#[derive(Debug, Deserialize)]
pub struct ForceOrderDetail<'a> {
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// `BUY` or `SELL`.
    #[serde(rename = "S")]
    pub side: &'a str,
    /// Original quantity.
    #[serde(rename = "q")]
    pub quantity: &'a str,
    /// Price.
    #[serde(rename = "p")]
    pub price: &'a str,
    /// Order status.
    #[serde(rename = "X")]
    pub status: &'a str,
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub trade_time: i64,
}

/// `<symbol>@kline_<interval>`.
#[derive(Debug, Deserialize)]
pub struct KlineEvent<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// The candle.
    #[serde(rename = "k", borrow)]
    pub kline: Kline<'a>,
}

/// The candle inside a kline event.
#[derive(Debug, Deserialize)]
pub struct Kline<'a> {
    /// Open time, ms.
    #[serde(rename = "t")]
    pub start: i64,
    /// Close time, ms.
    #[serde(rename = "T")]
    pub stop: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Interval, e.g. `1m`.
    #[serde(rename = "i")]
    pub interval: &'a str,
    /// Open.
    #[serde(rename = "o")]
    pub open: &'a str,
    /// Close.
    #[serde(rename = "c")]
    pub close: &'a str,
    /// High.
    #[serde(rename = "h")]
    pub high: &'a str,
    /// Low.
    #[serde(rename = "l")]
    pub low: &'a str,
    /// Base volume.
    #[serde(rename = "v")]
    pub volume: &'a str,
    /// Number of trades.
    #[serde(rename = "n")]
    pub trades: i64,
    /// Whether the candle is closed.
    #[serde(rename = "x")]
    pub closed: bool,
    /// Quote volume.
    #[serde(rename = "q")]
    pub quote_volume: Option<&'a str>,
}

/// REST depth snapshot (`/api/v3/depth`, `/fapi/v1/depth`).
#[derive(Debug, Deserialize)]
pub struct DepthSnapshot<'a> {
    /// Last update id covered.
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: i64,
    /// Bids.
    #[serde(borrow)]
    pub bids: Vec<[&'a str; 2]>,
    /// Asks.
    #[serde(borrow)]
    pub asks: Vec<[&'a str; 2]>,
}

/// REST open interest (`/fapi/v1/openInterest`).
#[derive(Debug, Deserialize)]
pub struct OpenInterest<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// Open interest in contracts.
    #[serde(rename = "openInterest")]
    pub open_interest: &'a str,
    /// Time, ms.
    pub time: Option<i64>,
}
