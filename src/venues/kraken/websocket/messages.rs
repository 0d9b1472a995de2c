//! Raw Kraken WebSocket payloads (v1 arrays and events, v2 objects), borrowing their text
//! from the frame. Decimals stay the venue's literals: v1 sends them as strings, v2 as JSON
//! numbers, read here as [`RawValue`]s so their exact digits survive.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::scalar;
use crate::venues::ParseError;

/// A JSON array's first `N` elements as raw text (further elements are counted, not kept):
/// Kraken v1 packs records into positional arrays whose length grew over the API's life.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a, const N: usize> {
    items: [Option<&'a RawValue>; N],
    len: usize,
}

impl<'a, const N: usize> Fields<'a, N> {
    /// Number of elements in the array.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`, raw.
    pub fn raw(&self, i: usize) -> Option<&'a RawValue> {
        self.items.get(i).copied().flatten()
    }

    /// Element `i` as the text the venue wrote (a string's content or a number's literal).
    pub fn text(&self, i: usize) -> Result<&'a str, ParseError> {
        let raw = self
            .raw(i)
            .ok_or_else(|| ParseError::Unsupported(format!("array without element {i}")))?;
        scalar(raw)
    }

    /// Element `i` as text, when present.
    pub fn opt_text(&self, i: usize) -> Result<Option<&'a str>, ParseError> {
        self.raw(i).map(scalar).transpose()
    }
}

impl<'de: 'a, 'a, const N: usize> Deserialize<'de> for Fields<'a, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, const N: usize>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a, const N: usize> Visitor<'de> for V<'a, N> {
            type Value = Fields<'a, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut fields = Fields {
                    items: [None; N],
                    len: 0,
                };
                while let Some(v) = seq.next_element::<&'de RawValue>()? {
                    if let Some(slot) = fields.items.get_mut(fields.len) {
                        *slot = Some(v);
                    }
                    fields.len += 1;
                }
                Ok(fields)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// v1 book level `[price, volume, timestamp(, "r")]` (`"r"`: republished after truncation).
pub type V1Level<'a> = Fields<'a, 4>;

/// v1 `{"event": …}` message: heartbeat, systemStatus, subscriptionStatus, pong, error.
#[derive(Debug, Deserialize)]
pub struct V1Event<'a> {
    /// Event name.
    #[serde(borrow)]
    pub event: &'a str,
    /// `subscribed`, `unsubscribed`, `error` (subscriptionStatus); `online`, … (systemStatus).
    #[serde(borrow)]
    pub status: Option<&'a str>,
    /// Venue pair of a subscription answer.
    #[serde(borrow)]
    pub pair: Option<&'a str>,
    /// Channel name of a subscription answer (`book-1000`).
    #[serde(rename = "channelName", borrow)]
    pub channel_name: Option<&'a str>,
    /// The subscription answered.
    #[serde(borrow)]
    pub subscription: Option<V1Subscription<'a>>,
    /// Error text.
    #[serde(rename = "errorMessage")]
    pub error_message: Option<String>,
}

/// The `subscription` object of a v1 request or answer.
#[derive(Debug, Deserialize)]
pub struct V1Subscription<'a> {
    /// Channel: `book`, `trade`, `ticker`, `spread`, `ohlc`.
    #[serde(borrow)]
    pub name: &'a str,
    /// Book depth.
    pub depth: Option<u32>,
    /// Candle interval, minutes.
    pub interval: Option<u32>,
}

/// v1 book payload: a snapshot (`as`/`bs`) or an update (`a` and/or `b`, checksum `c` in the
/// last payload of the frame).
#[derive(Debug, Deserialize)]
pub struct V1Book<'a> {
    /// Snapshot asks.
    #[serde(rename = "as", borrow)]
    pub snapshot_asks: Option<Vec<V1Level<'a>>>,
    /// Snapshot bids.
    #[serde(rename = "bs", borrow)]
    pub snapshot_bids: Option<Vec<V1Level<'a>>>,
    /// Updated asks.
    #[serde(rename = "a", borrow)]
    pub asks: Option<Vec<V1Level<'a>>>,
    /// Updated bids.
    #[serde(rename = "b", borrow)]
    pub bids: Option<Vec<V1Level<'a>>>,
    /// CRC32 of the top 10 levels after the update, decimal text.
    #[serde(rename = "c", borrow)]
    pub checksum: Option<&'a str>,
}

/// v1 trade `[price, volume, time, side "b"/"s", orderType "m"/"l", misc]`.
pub type V1Trade<'a> = Fields<'a, 6>;

/// v1 ticker payload: positional arrays per statistic (index 1 = last 24 hours).
#[derive(Debug, Deserialize)]
pub struct V1Ticker<'a> {
    /// Ask `[price, wholeLotVolume, lotVolume]`.
    #[serde(borrow)]
    pub a: Fields<'a, 3>,
    /// Bid `[price, wholeLotVolume, lotVolume]`.
    #[serde(borrow)]
    pub b: Fields<'a, 3>,
    /// Last trade `[price, lotVolume]`.
    #[serde(borrow)]
    pub c: Fields<'a, 2>,
    /// Volume `[today, last 24 hours]`.
    #[serde(borrow)]
    pub v: Fields<'a, 2>,
    /// Low `[today, last 24 hours]`.
    #[serde(borrow)]
    pub l: Fields<'a, 2>,
    /// High `[today, last 24 hours]`.
    #[serde(borrow)]
    pub h: Fields<'a, 2>,
    /// Open `[today, last 24 hours]`.
    #[serde(borrow)]
    pub o: Fields<'a, 2>,
}

/// v1 spread `[bid, ask, timestamp, bidVolume, askVolume]` (volumes since API 1.x).
pub type V1Spread<'a> = Fields<'a, 5>;

/// v1 ohlc `[time, etime, open, high, low, close, vwap, volume, count]`: `time` is the
/// candle's last update, `etime` the end of its interval.
pub type V1Ohlc<'a> = Fields<'a, 9>;

/// v2 message envelope: a channel message (`channel`, `type`, `data`) or a method answer
/// (`method`, `success`, `result`, `error`).
#[derive(Debug, Deserialize)]
pub struct V2Envelope<'a> {
    /// Channel of a data message.
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    /// `snapshot` or `update`.
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    /// The payload.
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    /// Method of an answer (`subscribe`, `unsubscribe`, `pong`, `ping`).
    #[serde(borrow)]
    pub method: Option<&'a str>,
    /// Whether the request succeeded.
    pub success: Option<bool>,
    /// Error text of a failed request.
    pub error: Option<String>,
    /// What was subscribed.
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
    /// Symbol of a failed subscription.
    pub symbol: Option<String>,
    /// Message time (`ohlc`).
    #[serde(borrow)]
    pub timestamp: Option<&'a str>,
}

/// The `result` of a v2 subscribe answer.
#[derive(Debug, Deserialize)]
pub struct V2SubscribeResult<'a> {
    /// Channel subscribed.
    #[serde(borrow)]
    pub channel: &'a str,
    /// Pair subscribed (absent for `instrument`).
    #[serde(borrow)]
    pub symbol: Option<&'a str>,
}

/// v2 book level.
#[derive(Debug, Deserialize)]
pub struct V2Level<'a> {
    /// Price literal.
    #[serde(borrow)]
    pub price: &'a RawValue,
    /// Quantity literal.
    #[serde(borrow)]
    pub qty: &'a RawValue,
}

/// v2 `book` data item.
#[derive(Debug, Deserialize)]
pub struct V2Book<'a> {
    /// Pair.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Bids.
    #[serde(borrow, default)]
    pub bids: Vec<V2Level<'a>>,
    /// Asks.
    #[serde(borrow, default)]
    pub asks: Vec<V2Level<'a>>,
    /// CRC32 of the top 10 levels after this message.
    pub checksum: Option<u32>,
    /// Update time (updates).
    #[serde(borrow)]
    pub timestamp: Option<&'a str>,
}

/// v2 `trade` data item.
#[derive(Debug, Deserialize)]
pub struct V2Trade<'a> {
    /// Pair.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Taker side, `buy` or `sell`.
    #[serde(borrow)]
    pub side: &'a str,
    /// Price literal.
    #[serde(borrow)]
    pub price: &'a RawValue,
    /// Quantity literal.
    #[serde(borrow)]
    pub qty: &'a RawValue,
    /// Taker order type, `market` or `limit`.
    #[serde(borrow)]
    pub ord_type: Option<&'a str>,
    /// Trade id, a sequence number per book.
    pub trade_id: Option<i64>,
    /// Trade time.
    #[serde(borrow)]
    pub timestamp: &'a str,
}

/// v2 `ticker` data item.
#[derive(Debug, Deserialize)]
pub struct V2Ticker<'a> {
    /// Pair.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Best bid.
    #[serde(borrow)]
    pub bid: Option<&'a RawValue>,
    /// Best bid quantity.
    #[serde(borrow)]
    pub bid_qty: Option<&'a RawValue>,
    /// Best ask.
    #[serde(borrow)]
    pub ask: Option<&'a RawValue>,
    /// Best ask quantity.
    #[serde(borrow)]
    pub ask_qty: Option<&'a RawValue>,
    /// Last trade price.
    #[serde(borrow)]
    pub last: Option<&'a RawValue>,
    /// 24h volume (base).
    #[serde(borrow)]
    pub volume: Option<&'a RawValue>,
    /// 24h low.
    #[serde(borrow)]
    pub low: Option<&'a RawValue>,
    /// 24h high.
    #[serde(borrow)]
    pub high: Option<&'a RawValue>,
    /// 24h price change.
    #[serde(borrow)]
    pub change: Option<&'a RawValue>,
    /// Time (newer messages).
    #[serde(borrow)]
    pub timestamp: Option<&'a str>,
}

/// v2 `ohlc` data item.
#[derive(Debug, Deserialize)]
pub struct V2Ohlc<'a> {
    /// Pair.
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Open.
    #[serde(borrow)]
    pub open: &'a RawValue,
    /// High.
    #[serde(borrow)]
    pub high: &'a RawValue,
    /// Low.
    #[serde(borrow)]
    pub low: &'a RawValue,
    /// Close.
    #[serde(borrow)]
    pub close: &'a RawValue,
    /// Volume (base).
    #[serde(borrow)]
    pub volume: &'a RawValue,
    /// Number of trades.
    #[serde(borrow)]
    pub trades: Option<&'a RawValue>,
    /// Start of the interval.
    #[serde(borrow)]
    pub interval_begin: Option<&'a str>,
    /// Interval, minutes.
    pub interval: i64,
}

/// v2 `instrument` data: the pairs (assets are not needed).
#[derive(Debug, Deserialize)]
pub struct V2Instruments<'a> {
    /// Tradable pairs.
    #[serde(borrow, default)]
    pub pairs: Vec<V2Pair<'a>>,
}

/// One pair of the v2 `instrument` channel.
#[derive(Debug, Deserialize)]
pub struct V2Pair<'a> {
    /// Pair (`BTC/USD`).
    #[serde(borrow)]
    pub symbol: &'a str,
    /// Price decimal places.
    pub price_precision: u32,
    /// Quantity decimal places.
    pub qty_precision: u32,
}
