//! Raw Coinbase WebSocket payloads (Advanced Trade and Exchange feed), borrowing their text
//! from the frame. Decimals are strings on both APIs; they stay the venue's literals.

use serde::Deserialize;
use serde_json::value::RawValue;

/// Advanced Trade envelope: `{"channel","timestamp","sequence_num","events":[…]}`, or an
/// error `{"type":"error","message":…}`.
#[derive(Debug, Deserialize)]
pub struct AdvEnvelope<'a> {
    /// `l2_data`, `market_trades`, `ticker`, `candles`, `heartbeats`, `subscriptions`.
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    /// Send time (RFC 3339, nanoseconds).
    #[serde(borrow)]
    pub timestamp: Option<&'a str>,
    /// Frame number of the connection, across channels.
    pub sequence_num: Option<u64>,
    /// The channel's events, raw.
    #[serde(borrow)]
    pub events: Option<&'a RawValue>,
    /// `error` on an error answer.
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    /// Error text.
    pub message: Option<String>,
}

/// One `l2_data` event.
#[derive(Debug, Deserialize)]
pub struct AdvBookEvent<'a> {
    /// `snapshot` or `update`.
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    /// Product.
    #[serde(borrow)]
    pub product_id: &'a str,
    /// Levels.
    #[serde(borrow)]
    pub updates: Vec<AdvLevel<'a>>,
}

/// One `l2_data` level: `new_quantity` is the level's absolute size (`"0"` removes it).
#[derive(Debug, Deserialize)]
pub struct AdvLevel<'a> {
    /// `bid` or `offer`.
    #[serde(borrow)]
    pub side: &'a str,
    /// Matching-engine time of the change.
    #[serde(borrow)]
    pub event_time: Option<&'a str>,
    /// Price.
    #[serde(borrow)]
    pub price_level: &'a str,
    /// Absolute size.
    #[serde(borrow)]
    pub new_quantity: &'a str,
}

/// One `market_trades` event.
#[derive(Debug, Deserialize)]
pub struct AdvTradesEvent<'a> {
    /// `snapshot` (recent trades) or `update`; both list trades newest first.
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    /// Trades.
    #[serde(borrow)]
    pub trades: Vec<AdvTrade<'a>>,
}

/// One Advanced Trade trade.
#[derive(Debug, Deserialize)]
pub struct AdvTrade<'a> {
    /// Product.
    #[serde(borrow)]
    pub product_id: &'a str,
    /// Trade id (decimal text).
    #[serde(borrow)]
    pub trade_id: &'a str,
    /// Price.
    #[serde(borrow)]
    pub price: &'a str,
    /// Size, base units.
    #[serde(borrow)]
    pub size: &'a str,
    /// Trade time.
    #[serde(borrow)]
    pub time: &'a str,
    /// `BUY` / `SELL`: the **maker's** side (see the module docs).
    #[serde(borrow)]
    pub side: &'a str,
}

/// One `ticker` event.
#[derive(Debug, Deserialize)]
pub struct AdvTickerEvent<'a> {
    /// `snapshot` or `update`.
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    /// Tickers.
    #[serde(borrow)]
    pub tickers: Vec<AdvTicker<'a>>,
}

/// One Advanced Trade ticker.
#[derive(Debug, Deserialize)]
pub struct AdvTicker<'a> {
    /// Product.
    #[serde(borrow)]
    pub product_id: &'a str,
    /// Last trade price.
    #[serde(borrow)]
    pub price: Option<&'a str>,
    /// 24 h volume, base units.
    #[serde(borrow)]
    pub volume_24_h: Option<&'a str>,
    /// 24 h low.
    #[serde(borrow)]
    pub low_24_h: Option<&'a str>,
    /// 24 h high.
    #[serde(borrow)]
    pub high_24_h: Option<&'a str>,
    /// Best bid price.
    #[serde(borrow)]
    pub best_bid: Option<&'a str>,
    /// Best ask price.
    #[serde(borrow)]
    pub best_ask: Option<&'a str>,
    /// Best bid size.
    #[serde(borrow)]
    pub best_bid_quantity: Option<&'a str>,
    /// Best ask size.
    #[serde(borrow)]
    pub best_ask_quantity: Option<&'a str>,
}

/// One `candles` event.
#[derive(Debug, Deserialize)]
pub struct AdvCandlesEvent<'a> {
    /// `snapshot` or `update`.
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    /// Candles.
    #[serde(borrow)]
    pub candles: Vec<AdvCandle<'a>>,
}

/// One 5-minute candle.
#[derive(Debug, Deserialize)]
pub struct AdvCandle<'a> {
    /// Bucket start, UNIX seconds (text).
    #[serde(borrow)]
    pub start: &'a str,
    /// High.
    #[serde(borrow)]
    pub high: &'a str,
    /// Low.
    #[serde(borrow)]
    pub low: &'a str,
    /// Open.
    #[serde(borrow)]
    pub open: &'a str,
    /// Close.
    #[serde(borrow)]
    pub close: &'a str,
    /// Volume, base units.
    #[serde(borrow)]
    pub volume: &'a str,
    /// Product.
    #[serde(borrow)]
    pub product_id: &'a str,
}

/// One `heartbeats` event.
#[derive(Debug, Deserialize)]
pub struct AdvHeartbeat {
    /// Counter, +1 every second.
    pub heartbeat_counter: u64,
}

/// One `subscriptions` event: every subscription of the connection now, by channel.
#[derive(Debug, Deserialize)]
pub struct AdvSubscriptions {
    /// Channel → products (`heartbeats` → `["heartbeats"]`).
    pub subscriptions: std::collections::HashMap<String, Vec<String>>,
}

/// Exchange feed message (every type in one struct; fields by type).
#[derive(Debug, Deserialize)]
pub struct ExMessage<'a> {
    /// `snapshot`, `l2update`, `match`, `last_match`, `ticker`, `subscriptions`, `heartbeat`,
    /// `error`.
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    /// Product.
    #[serde(borrow)]
    pub product_id: Option<&'a str>,
    /// Snapshot bids `[[price, size]]`.
    #[serde(borrow)]
    pub bids: Option<Vec<(&'a str, &'a str)>>,
    /// Snapshot asks `[[price, size]]`.
    #[serde(borrow)]
    pub asks: Option<Vec<(&'a str, &'a str)>>,
    /// `l2update` changes `[[side, price, size]]`.
    #[serde(borrow)]
    pub changes: Option<Vec<(&'a str, &'a str, &'a str)>>,
    /// Time (RFC 3339).
    #[serde(borrow)]
    pub time: Option<&'a str>,
    /// Trade id (match / ticker).
    pub trade_id: Option<i64>,
    /// Match: the maker's side; ticker: the taker's side.
    #[serde(borrow)]
    pub side: Option<&'a str>,
    /// Match size.
    #[serde(borrow)]
    pub size: Option<&'a str>,
    /// Match or last price.
    #[serde(borrow)]
    pub price: Option<&'a str>,
    /// Ticker 24 h open.
    #[serde(borrow)]
    pub open_24h: Option<&'a str>,
    /// Ticker 24 h volume.
    #[serde(borrow)]
    pub volume_24h: Option<&'a str>,
    /// Ticker 24 h low.
    #[serde(borrow)]
    pub low_24h: Option<&'a str>,
    /// Ticker 24 h high.
    #[serde(borrow)]
    pub high_24h: Option<&'a str>,
    /// Ticker best bid.
    #[serde(borrow)]
    pub best_bid: Option<&'a str>,
    /// Ticker best ask.
    #[serde(borrow)]
    pub best_ask: Option<&'a str>,
    /// Subscriptions answer: channels.
    pub channels: Option<Vec<ExChannel>>,
    /// Error text.
    pub message: Option<String>,
    /// Error reason.
    pub reason: Option<String>,
}

/// A channel of an Exchange `subscriptions` answer.
#[derive(Debug, Deserialize)]
pub struct ExChannel {
    /// Channel name.
    pub name: String,
    /// Products.
    #[serde(default)]
    pub product_ids: Vec<String>,
}
