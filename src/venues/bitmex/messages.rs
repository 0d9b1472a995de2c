//! BitMEX WebSocket messages as sent (`wss://ws.bitmex.com/realtime`), borrowed from the
//! frame. Numbers are kept as raw literals ([`RawValue`]) and checked as exact decimals.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Every object BitMEX sends: a table message (`table`, `action`, `data`), a subscription
/// answer (`success`, `subscribe`/`unsubscribe`), an error (`error`, `status`, `request`) or
/// the welcome (`info`).
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// Table name (`orderBookL2`, `trade`, …).
    #[serde(borrow, default)]
    pub table: Option<&'a str>,
    /// `partial`, `insert`, `update`, `delete`.
    #[serde(borrow, default)]
    pub action: Option<&'a str>,
    /// The rows.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    /// The subscription filter of a `partial` (`{"symbol":"XBTUSD"}`).
    #[serde(borrow, default)]
    pub filter: Option<Filter<'a>>,
    /// Subscription answer.
    #[serde(default)]
    pub success: Option<bool>,
    /// Topic subscribed.
    #[serde(borrow, default)]
    pub subscribe: Option<Cow<'a, str>>,
    /// Topic unsubscribed.
    #[serde(borrow, default)]
    pub unsubscribe: Option<Cow<'a, str>>,
    /// Error text.
    #[serde(borrow, default)]
    pub error: Option<Cow<'a, str>>,
    /// HTTP-like status of an error.
    #[serde(default)]
    pub status: Option<i64>,
    /// The request an answer refers to.
    #[serde(borrow, default)]
    pub request: Option<Request<'a>>,
    /// Welcome text.
    #[serde(borrow, default)]
    pub info: Option<Cow<'a, str>>,
}

/// A `partial`'s filter.
#[derive(Debug, Deserialize)]
pub struct Filter<'a> {
    /// The symbol subscribed.
    #[serde(borrow, default)]
    pub symbol: Option<Cow<'a, str>>,
}

/// A client request echoed in an answer.
#[derive(Debug, Deserialize)]
pub struct Request<'a> {
    /// `subscribe`, `unsubscribe`, …
    #[serde(borrow, default)]
    pub op: Option<Cow<'a, str>>,
    /// Topics (`orderBookL2:XBTUSD`); BitMEX also accepts one bare string.
    #[serde(borrow, default)]
    pub args: Option<Args<'a>>,
}

/// One topic or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Args<'a> {
    /// Several topics.
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
    /// One topic.
    One(#[serde(borrow)] Cow<'a, str>),
}

impl Args<'_> {
    /// The topics.
    pub fn topics(&self) -> Vec<&str> {
        match self {
            Args::Many(v) => v.iter().map(|s| s.as_ref()).collect(),
            Args::One(s) => vec![s.as_ref()],
        }
    }
}

/// One `orderBookL2` row, keyed by (`symbol`, `id`, `side`). `price` is absent on
/// updates and deletes of the 2021 API; `timestamp` only since 2023.
#[derive(Debug, Deserialize)]
pub struct BookRow<'a> {
    /// Symbol.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Row id.
    pub id: u64,
    /// `Buy` or `Sell`.
    #[serde(borrow)]
    pub side: &'a str,
    /// Contracts at the level.
    #[serde(borrow, default)]
    pub size: Option<&'a RawValue>,
    /// Price of the level.
    #[serde(borrow, default)]
    pub price: Option<&'a RawValue>,
    /// Row time (2023 API).
    #[serde(borrow, default)]
    pub timestamp: Option<&'a str>,
}

/// One `trade` row.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeRow<'a> {
    /// Match time.
    #[serde(borrow)]
    pub timestamp: &'a str,
    /// Symbol.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Taker side (`Buy`/`Sell`); absent on settlement prints.
    #[serde(borrow, default)]
    pub side: Option<&'a str>,
    /// Contracts.
    #[serde(borrow)]
    pub size: &'a RawValue,
    /// Price.
    #[serde(borrow)]
    pub price: &'a RawValue,
    /// Match id (a UUID).
    #[serde(borrow, rename = "trdMatchID", default)]
    pub trd_match_id: Option<&'a str>,
    /// `Regular`, `Settlement`, … (newer API).
    #[serde(borrow, default)]
    pub trd_type: Option<&'a str>,
}

/// One `quote` row.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteRow<'a> {
    /// Quote time.
    #[serde(borrow)]
    pub timestamp: &'a str,
    /// Symbol.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Contracts bid (null when the side is empty).
    #[serde(borrow, default)]
    pub bid_size: Option<&'a RawValue>,
    /// Best bid.
    #[serde(borrow, default)]
    pub bid_price: Option<&'a RawValue>,
    /// Best ask.
    #[serde(borrow, default)]
    pub ask_price: Option<&'a RawValue>,
    /// Contracts offered.
    #[serde(borrow, default)]
    pub ask_size: Option<&'a RawValue>,
}

/// The `instrument` fields used here (a `partial` has them all, an `update` only those that
/// changed).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentRow<'a> {
    /// Symbol.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Row time.
    #[serde(borrow, default)]
    pub timestamp: Option<&'a str>,
    /// Mark price.
    #[serde(borrow, default)]
    pub mark_price: Option<&'a RawValue>,
    /// Index price of perpetuals (the settlement index).
    #[serde(borrow, default)]
    pub indicative_settle_price: Option<&'a RawValue>,
    /// Funding rate of the current interval.
    #[serde(borrow, default)]
    pub funding_rate: Option<&'a RawValue>,
    /// Predicted rate of the next interval.
    #[serde(borrow, default)]
    pub indicative_funding_rate: Option<&'a RawValue>,
    /// Next funding time.
    #[serde(borrow, default)]
    pub funding_timestamp: Option<&'a str>,
    /// Open interest, contracts.
    #[serde(borrow, default)]
    pub open_interest: Option<&'a RawValue>,
}

/// One `liquidation` row (an open liquidation order): `insert` carries every field, `update`
/// the changed ones, `delete` only the key.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiquidationRow<'a> {
    /// Order id.
    #[serde(borrow, rename = "orderID")]
    pub order_id: &'a str,
    /// Symbol.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Side of the liquidation order.
    #[serde(borrow, default)]
    pub side: Option<&'a str>,
    /// Price.
    #[serde(borrow, default)]
    pub price: Option<&'a RawValue>,
    /// Contracts left.
    #[serde(borrow, default)]
    pub leaves_qty: Option<&'a RawValue>,
}

/// One `tradeBin1m` row; `timestamp` is the **end** of the bin; prices are null in a bin
/// without trades.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BinRow<'a> {
    /// End of the bin.
    #[serde(borrow)]
    pub timestamp: &'a str,
    /// Symbol.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Open.
    #[serde(borrow, default)]
    pub open: Option<&'a RawValue>,
    /// High.
    #[serde(borrow, default)]
    pub high: Option<&'a RawValue>,
    /// Low.
    #[serde(borrow, default)]
    pub low: Option<&'a RawValue>,
    /// Close.
    #[serde(borrow, default)]
    pub close: Option<&'a RawValue>,
    /// Number of trades.
    #[serde(default)]
    pub trades: Option<i64>,
    /// Contracts traded.
    #[serde(borrow, default)]
    pub volume: Option<&'a RawValue>,
}
