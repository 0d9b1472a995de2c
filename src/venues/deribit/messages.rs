//! Raw Deribit JSON-RPC payloads, borrowing their text from the frame. Decimals are JSON
//! numbers, read as [`RawValue`]s so that the literal digits survive (never through `f64`).

use serde::Deserialize;
use serde_json::value::RawValue;

/// Any JSON-RPC message: a notification (`method` + `params`) or an answer (`id` + `result`
/// or `error`).
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// `subscription` or `heartbeat` for notifications.
    #[serde(borrow)]
    pub method: Option<&'a str>,
    /// The request id an answer belongs to.
    pub id: Option<u64>,
    /// Notification parameters.
    #[serde(borrow)]
    pub params: Option<Params<'a>>,
    /// A successful answer's result.
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
    /// A failed answer's error.
    #[serde(borrow)]
    pub error: Option<RpcError<'a>>,
}

/// Notification parameters: `{"channel", "data"}` or, for heartbeats, `{"type"}`.
#[derive(Debug, Deserialize)]
pub struct Params<'a> {
    /// Channel name (`book.BTC-PERPETUAL.100ms`).
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    /// Channel data.
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    /// Heartbeat type: `heartbeat` or `test_request`.
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
}

/// A JSON-RPC error.
#[derive(Debug, Deserialize)]
pub struct RpcError<'a> {
    /// Error code (`-32602` invalid params, `10020` invalid instrument, …).
    #[serde(default)]
    pub code: i64,
    /// Message.
    #[serde(default, borrow)]
    pub message: Option<&'a str>,
    /// Further detail (`{"param","reason"}`), kept raw.
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
}

/// A book level: `[action, price, amount]`, action `new`, `change` or `delete`.
pub type BookLevel<'a> = (&'a str, &'a RawValue, &'a RawValue);

/// `book.{instrument}.{interval}` data.
#[derive(Debug, Deserialize)]
pub struct Book<'a> {
    /// `snapshot` (the first notification) or `change`.
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    /// ms since the epoch.
    pub timestamp: i64,
    /// Instrument name.
    #[serde(borrow)]
    pub instrument_name: &'a str,
    /// Id of this change.
    pub change_id: i64,
    /// Id of the change before it (absent on snapshots).
    pub prev_change_id: Option<i64>,
    /// Bid levels.
    #[serde(borrow)]
    pub bids: Vec<BookLevel<'a>>,
    /// Ask levels.
    #[serde(borrow)]
    pub asks: Vec<BookLevel<'a>>,
}

/// One trade of `trades.{instrument}.{interval}`.
#[derive(Debug, Deserialize)]
pub struct Trade<'a> {
    /// ms since the epoch.
    pub timestamp: i64,
    /// Price (quote currency; options in the base coin).
    #[serde(borrow)]
    pub price: &'a RawValue,
    /// Amount: USD for inverse futures and perpetuals, base coin for options and linear
    /// instruments.
    #[serde(borrow)]
    pub amount: &'a RawValue,
    /// Taker side: `buy` or `sell`.
    #[serde(borrow)]
    pub direction: &'a str,
    /// Instrument name.
    #[serde(borrow)]
    pub instrument_name: &'a str,
    /// Trade id (text: USDC instruments prefix it).
    #[serde(borrow)]
    pub trade_id: &'a str,
    /// `M`, `T` or `MT` when a side was liquidated.
    #[serde(borrow)]
    pub liquidation: Option<&'a str>,
    /// Present on block trades.
    #[serde(borrow)]
    pub block_trade_id: Option<&'a str>,
}

/// 24 h statistics of a ticker.
#[derive(Debug, Default, Deserialize)]
pub struct Stats<'a> {
    /// Volume in the base currency.
    #[serde(borrow)]
    pub volume: Option<&'a RawValue>,
    /// Volume in USD.
    #[serde(borrow)]
    pub volume_usd: Option<&'a RawValue>,
    /// Volume in the quote currency (futures and spot).
    #[serde(borrow)]
    pub volume_notional: Option<&'a RawValue>,
    /// Highest price.
    #[serde(borrow)]
    pub high: Option<&'a RawValue>,
    /// Lowest price.
    #[serde(borrow)]
    pub low: Option<&'a RawValue>,
}

/// `ticker.{instrument}.{interval}` data.
#[derive(Debug, Deserialize)]
pub struct Ticker<'a> {
    /// ms since the epoch.
    pub timestamp: i64,
    /// Instrument name.
    #[serde(borrow)]
    pub instrument_name: &'a str,
    /// Mark price.
    #[serde(borrow)]
    pub mark_price: Option<&'a RawValue>,
    /// Index price.
    #[serde(borrow)]
    pub index_price: Option<&'a RawValue>,
    /// Last trade price (`null` before any trade).
    #[serde(borrow)]
    pub last_price: Option<&'a RawValue>,
    /// Best bid (`0` when there is none).
    #[serde(borrow)]
    pub best_bid_price: Option<&'a RawValue>,
    /// Best ask (`0` when there is none).
    #[serde(borrow)]
    pub best_ask_price: Option<&'a RawValue>,
    /// Open interest (USD for inverse instruments, base coin for options and linear ones).
    #[serde(borrow)]
    pub open_interest: Option<&'a RawValue>,
    /// Funding of the last 8 hours (perpetuals).
    #[serde(borrow)]
    pub funding_8h: Option<&'a RawValue>,
    /// Funding rate now (perpetuals).
    #[serde(borrow)]
    pub current_funding: Option<&'a RawValue>,
    /// 24 h statistics.
    #[serde(default, borrow)]
    pub stats: Stats<'a>,
}

/// `quote.{instrument}` data.
#[derive(Debug, Deserialize)]
pub struct Quote<'a> {
    /// ms since the epoch.
    pub timestamp: i64,
    /// Instrument name.
    #[serde(borrow)]
    pub instrument_name: &'a str,
    /// Best bid price.
    #[serde(borrow)]
    pub best_bid_price: Option<&'a RawValue>,
    /// Best bid amount.
    #[serde(borrow)]
    pub best_bid_amount: Option<&'a RawValue>,
    /// Best ask price.
    #[serde(borrow)]
    pub best_ask_price: Option<&'a RawValue>,
    /// Best ask amount.
    #[serde(borrow)]
    pub best_ask_amount: Option<&'a RawValue>,
}
