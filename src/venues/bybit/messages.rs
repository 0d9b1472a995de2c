//! Raw Bybit v5 WebSocket payloads, borrowing their text from the frame. Decimals are strings
//! (kept as [`RawValue`]s so their exact digits survive); times are integers of milliseconds.

use serde::Deserialize;
use serde_json::value::RawValue;

/// Every v5 public message: a topic message (`topic`, `type`, `ts`, `data`, `cts`) or an
/// operation answer (`op`, `success`, `ret_msg`, `req_id`).
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// `orderbook.200.BTCUSDT`, `publicTrade.BTCUSDT`, …
    #[serde(borrow)]
    pub topic: Option<&'a str>,
    /// `snapshot` or `delta`.
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    /// Time the system generated the message, ms.
    pub ts: Option<i64>,
    /// Matching-engine time of a book message, ms.
    pub cts: Option<i64>,
    /// The payload.
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    /// Operation of an answer: `subscribe`, `unsubscribe`, `ping`, `pong`.
    #[serde(borrow)]
    pub op: Option<&'a str>,
    /// Whether the operation succeeded.
    pub success: Option<bool>,
    /// The venue's message (`subscribe`, `pong`, an error text).
    pub ret_msg: Option<String>,
    /// The request id the client sent.
    pub req_id: Option<String>,
}

/// A book level `[price, size]`.
pub type Level<'a> = (&'a RawValue, &'a RawValue);

/// `orderbook.N.SYMBOL` data.
#[derive(Debug, Deserialize)]
pub struct Book<'a> {
    /// Symbol.
    #[serde(borrow)]
    pub s: &'a str,
    /// Bids, best first.
    #[serde(borrow, default)]
    pub b: Vec<Level<'a>>,
    /// Asks, best first.
    #[serde(borrow, default)]
    pub a: Vec<Level<'a>>,
    /// Update id of the topic.
    pub u: i64,
    /// Cross sequence.
    pub seq: Option<i64>,
}

/// One `publicTrade` item.
#[derive(Debug, Deserialize)]
pub struct Trade<'a> {
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub time: i64,
    /// Symbol.
    #[serde(borrow)]
    pub s: &'a str,
    /// Taker side, `Buy` or `Sell`.
    #[serde(rename = "S", borrow)]
    pub side: &'a str,
    /// Quantity (base coin; inverse: USD contracts).
    #[serde(borrow)]
    pub v: &'a RawValue,
    /// Price.
    #[serde(borrow)]
    pub p: &'a RawValue,
    /// Trade id.
    #[serde(borrow)]
    pub i: &'a str,
    /// Block trade.
    #[serde(rename = "BT", default)]
    pub block: bool,
}

/// One `allLiquidation` item.
#[derive(Debug, Deserialize)]
pub struct Liquidation<'a> {
    /// Time, ms.
    #[serde(rename = "T")]
    pub time: i64,
    /// Symbol.
    #[serde(borrow)]
    pub s: &'a str,
    /// Side of the **liquidated position**: `Buy` = a long was liquidated.
    #[serde(rename = "S", borrow)]
    pub side: &'a str,
    /// Quantity.
    #[serde(borrow)]
    pub v: &'a RawValue,
    /// Bankruptcy price.
    #[serde(borrow)]
    pub p: &'a RawValue,
}

/// One `kline.N` item.
#[derive(Debug, Deserialize)]
pub struct Kline<'a> {
    /// Start, ms.
    pub start: i64,
    /// End (last ms of the interval).
    pub end: i64,
    /// Interval: `1`, `3`, … `720`, `D`, `W`, `M`.
    #[serde(borrow)]
    pub interval: &'a str,
    /// Open.
    #[serde(borrow)]
    pub open: &'a RawValue,
    /// Close.
    #[serde(borrow)]
    pub close: &'a RawValue,
    /// High.
    #[serde(borrow)]
    pub high: &'a RawValue,
    /// Low.
    #[serde(borrow)]
    pub low: &'a RawValue,
    /// Volume (base coin; inverse: contracts).
    #[serde(borrow)]
    pub volume: &'a RawValue,
    /// Turnover (quote coin; inverse: base coin).
    #[serde(borrow)]
    pub turnover: Option<&'a RawValue>,
    /// Whether the candle is closed.
    #[serde(default)]
    pub confirm: bool,
    /// Time of the last update, ms.
    pub timestamp: Option<i64>,
}

/// `tickers.SYMBOL` data, every category's fields (a delta carries only those that changed).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticker<'a> {
    /// Symbol.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Last price.
    #[serde(borrow)]
    pub last_price: Option<&'a RawValue>,
    /// 24 h high.
    #[serde(rename = "highPrice24h", borrow)]
    pub high_price_24h: Option<&'a RawValue>,
    /// 24 h low.
    #[serde(rename = "lowPrice24h", borrow)]
    pub low_price_24h: Option<&'a RawValue>,
    /// Price 24 h ago.
    #[serde(rename = "prevPrice24h", borrow)]
    pub prev_price_24h: Option<&'a RawValue>,
    /// 24 h volume.
    #[serde(rename = "volume24h", borrow)]
    pub volume_24h: Option<&'a RawValue>,
    /// 24 h turnover.
    #[serde(rename = "turnover24h", borrow)]
    pub turnover_24h: Option<&'a RawValue>,
    /// Best bid (linear, inverse).
    #[serde(rename = "bid1Price", alias = "bidPrice", borrow)]
    pub bid1_price: Option<&'a RawValue>,
    /// Best bid size.
    #[serde(rename = "bid1Size", alias = "bidSize", borrow)]
    pub bid1_size: Option<&'a RawValue>,
    /// Best ask.
    #[serde(rename = "ask1Price", alias = "askPrice", borrow)]
    pub ask1_price: Option<&'a RawValue>,
    /// Best ask size.
    #[serde(rename = "ask1Size", alias = "askSize", borrow)]
    pub ask1_size: Option<&'a RawValue>,
    /// Mark price.
    #[serde(borrow)]
    pub mark_price: Option<&'a RawValue>,
    /// Index price.
    #[serde(borrow)]
    pub index_price: Option<&'a RawValue>,
    /// Open interest (linear: base coin; inverse: USD contracts; option: contracts).
    #[serde(borrow)]
    pub open_interest: Option<&'a RawValue>,
    /// Funding rate (`""` for futures).
    #[serde(borrow)]
    pub funding_rate: Option<&'a RawValue>,
    /// Next funding time, ms as text (`""` for futures).
    #[serde(borrow)]
    pub next_funding_time: Option<&'a RawValue>,
}

/// The instrument list answer (`/v5/market/instruments-info`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentsAnswer {
    /// 0 on success.
    pub ret_code: i64,
    /// The venue's message.
    #[serde(default)]
    pub ret_msg: String,
    /// The page.
    pub result: Option<InstrumentsResult>,
}

/// One page of instruments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentsResult {
    /// `spot`, `linear`, `inverse`, `option`.
    #[serde(default)]
    pub category: String,
    /// The instruments.
    #[serde(default)]
    pub list: Vec<InstrumentInfo>,
    /// Cursor of the next page (absent or `""` on the last).
    #[serde(default)]
    pub next_page_cursor: Option<String>,
}

/// One instrument (the fields used here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentInfo {
    /// Bybit symbol.
    pub symbol: String,
    /// `Trading`, `PreLaunch`, `Delivering`, `Closed`, …
    #[serde(default)]
    pub status: String,
    /// Base coin.
    #[serde(default)]
    pub base_coin: String,
    /// Quote coin.
    #[serde(default)]
    pub quote_coin: String,
    /// `LinearPerpetual`, `LinearFutures`, `InversePerpetual`, `InverseFutures`.
    #[serde(default)]
    pub contract_type: String,
    /// Delivery time, ms as text (`"0"` for perpetuals).
    #[serde(default)]
    pub delivery_time: String,
    /// `Call` or `Put`.
    #[serde(default)]
    pub options_type: String,
}
