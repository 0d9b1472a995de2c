//! OKX v5 WebSocket and REST payloads as sent (borrowed; decimals and ids kept as text).

use serde::Deserialize;
use serde_json::value::RawValue;

/// `arg` of a push or an event: the channel and its instrument (or instrument type).
#[derive(Debug, Deserialize)]
pub struct Arg<'a> {
    /// Channel name (`books`, `trades`, …).
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    /// Instrument id (`BTC-USDT-SWAP`).
    #[serde(rename = "instId", borrow, default)]
    pub inst_id: Option<&'a str>,
    /// Instrument type (`liquidation-orders` subscribes by type).
    #[serde(rename = "instType", borrow, default)]
    pub inst_type: Option<&'a str>,
}

/// Any frame: an event answer (`event`) or a push (`arg` + `data`).
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// `subscribe`, `unsubscribe`, `error`, `notice`, `channel-conn-count`, …
    #[serde(borrow, default)]
    pub event: Option<&'a str>,
    /// Error code of an `error` event (a string of digits).
    #[serde(borrow, default)]
    pub code: Option<&'a str>,
    /// Error text.
    #[serde(borrow, default)]
    pub msg: Option<std::borrow::Cow<'a, str>>,
    /// The channel.
    #[serde(borrow, default)]
    pub arg: Option<Arg<'a>>,
    /// `snapshot` or `update` (book channels).
    #[serde(borrow, default)]
    pub action: Option<&'a str>,
    /// The payload.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

/// One book level: `[price, size, "0" (deprecated), orders]`.
pub type Level<'a> = Vec<&'a RawValue>;

/// A book message (`books`, `books5`, `bbo-tbt`, the `-l2-tbt` channels) or a REST snapshot.
#[derive(Debug, Deserialize)]
pub struct Book<'a> {
    /// Asks, best first.
    #[serde(borrow, default)]
    pub asks: Vec<Level<'a>>,
    /// Bids, best first.
    #[serde(borrow, default)]
    pub bids: Vec<Level<'a>>,
    /// Generation time, ms text.
    #[serde(borrow, default)]
    pub ts: Option<&'a str>,
    /// Signed CRC32 of the top 25 levels (0 once retired; absent on books5/bbo-tbt).
    #[serde(default)]
    pub checksum: Option<i64>,
    /// Sequence id of this message.
    #[serde(rename = "seqId", default)]
    pub seq_id: Option<i64>,
    /// Sequence id of the previous message (-1 on a snapshot).
    #[serde(rename = "prevSeqId", default)]
    pub prev_seq_id: Option<i64>,
    /// Instrument id (books5 carries it in the data too).
    #[serde(rename = "instId", borrow, default)]
    pub inst_id: Option<&'a str>,
}

/// A trade (`trades`, `trades-all`).
#[derive(Debug, Deserialize)]
pub struct Trade<'a> {
    /// Instrument id.
    #[serde(rename = "instId")]
    pub inst_id: &'a str,
    /// Trade id.
    #[serde(rename = "tradeId")]
    pub trade_id: &'a str,
    /// Price.
    #[serde(borrow)]
    pub px: &'a RawValue,
    /// Size (contracts for derivatives, base currency for spot).
    #[serde(borrow)]
    pub sz: &'a RawValue,
    /// The taker's side.
    pub side: &'a str,
    /// Trade time, ms text.
    pub ts: &'a str,
    /// `trades` (aggregated): how many trades the message aggregates (`tradeId` is the last).
    #[serde(borrow, default)]
    pub count: Option<&'a str>,
}

/// A `tickers` message.
#[derive(Debug, Deserialize)]
pub struct Ticker<'a> {
    /// Instrument type (`SPOT`, `SWAP`, `FUTURES`, `OPTION`).
    #[serde(rename = "instType", default)]
    pub inst_type: Option<&'a str>,
    /// Instrument id.
    #[serde(rename = "instId")]
    pub inst_id: &'a str,
    /// Last price.
    #[serde(borrow, default)]
    pub last: Option<&'a RawValue>,
    /// Best ask.
    #[serde(rename = "askPx", borrow, default)]
    pub ask_px: Option<&'a RawValue>,
    /// Best bid.
    #[serde(rename = "bidPx", borrow, default)]
    pub bid_px: Option<&'a RawValue>,
    /// Open 24 h ago.
    #[serde(rename = "open24h", borrow, default)]
    pub open24h: Option<&'a RawValue>,
    /// 24 h high.
    #[serde(rename = "high24h", borrow, default)]
    pub high24h: Option<&'a RawValue>,
    /// 24 h low.
    #[serde(rename = "low24h", borrow, default)]
    pub low24h: Option<&'a RawValue>,
    /// 24 h volume: contracts (derivatives) or base currency (spot).
    #[serde(rename = "vol24h", borrow, default)]
    pub vol24h: Option<&'a RawValue>,
    /// 24 h volume: base currency (derivatives) or quote currency (spot).
    #[serde(rename = "volCcy24h", borrow, default)]
    pub vol_ccy24h: Option<&'a RawValue>,
    /// Time, ms text.
    pub ts: &'a str,
}

/// An `index-tickers` message.
#[derive(Debug, Deserialize)]
pub struct IndexTicker<'a> {
    /// Index id (`BTC-USDT`).
    #[serde(rename = "instId")]
    pub inst_id: &'a str,
    /// Index price.
    #[serde(rename = "idxPx", borrow)]
    pub idx_px: &'a RawValue,
    /// Open 24 h ago.
    #[serde(rename = "open24h", borrow, default)]
    pub open24h: Option<&'a RawValue>,
    /// 24 h high.
    #[serde(rename = "high24h", borrow, default)]
    pub high24h: Option<&'a RawValue>,
    /// 24 h low.
    #[serde(rename = "low24h", borrow, default)]
    pub low24h: Option<&'a RawValue>,
    /// Time, ms text.
    pub ts: &'a str,
}

/// A `funding-rate` message.
#[derive(Debug, Deserialize)]
pub struct FundingRate<'a> {
    /// Instrument id.
    #[serde(rename = "instId")]
    pub inst_id: &'a str,
    /// The rate charged at `fundingTime`.
    #[serde(rename = "fundingRate", borrow, default)]
    pub funding_rate: Option<&'a RawValue>,
    /// The next settlement, ms text.
    #[serde(rename = "fundingTime", borrow, default)]
    pub funding_time: Option<&'a str>,
    /// Forecast of the following period's rate (may be empty).
    #[serde(rename = "nextFundingRate", borrow, default)]
    pub next_funding_rate: Option<&'a RawValue>,
    /// Push time, ms text (newer messages).
    #[serde(borrow, default)]
    pub ts: Option<&'a str>,
}

/// A `mark-price` message.
#[derive(Debug, Deserialize)]
pub struct MarkPrice<'a> {
    /// Instrument id.
    #[serde(rename = "instId")]
    pub inst_id: &'a str,
    /// Mark price.
    #[serde(rename = "markPx", borrow)]
    pub mark_px: &'a RawValue,
    /// Time, ms text.
    pub ts: &'a str,
}

/// An `open-interest` message.
#[derive(Debug, Deserialize)]
pub struct OpenInterest<'a> {
    /// Instrument id.
    #[serde(rename = "instId")]
    pub inst_id: &'a str,
    /// Open interest in contracts.
    #[serde(borrow)]
    pub oi: &'a RawValue,
    /// Time, ms text.
    pub ts: &'a str,
}

/// One liquidation of a `liquidation-orders` message.
#[derive(Debug, Deserialize)]
pub struct LiquidationDetail<'a> {
    /// The liquidation order's side (`buy` closes a short).
    pub side: &'a str,
    /// Bankruptcy price.
    #[serde(rename = "bkPx", borrow)]
    pub bk_px: &'a RawValue,
    /// Size (contracts for FUTURES/SWAP/OPTION).
    #[serde(borrow)]
    pub sz: &'a RawValue,
    /// Time, ms text.
    pub ts: &'a str,
}

/// A `liquidation-orders` message (one instrument, its liquidations).
#[derive(Debug, Deserialize)]
pub struct Liquidations<'a> {
    /// Instrument id.
    #[serde(rename = "instId")]
    pub inst_id: &'a str,
    /// The liquidations.
    #[serde(borrow)]
    pub details: Vec<LiquidationDetail<'a>>,
}

/// A REST answer: `{"code":"0","msg":"","data":[…]}`.
#[derive(Debug, Deserialize)]
pub struct RestAnswer<'a> {
    /// `"0"` on success.
    #[serde(borrow)]
    pub code: &'a str,
    /// Error text.
    #[serde(default)]
    pub msg: String,
    /// The payload.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}
