//! Pure parse and request functions of Deribit's JSON-RPC WebSocket API v2: notifications of
//! the `book`, `trades`, `ticker` and `quote` channels, heartbeats, and answers to requests.
//! Number literals are kept exactly as written ([`crate::venues::json::unsigned`] on the raw
//! value); times are ms since the epoch, written here in µs.

use std::borrow::Cow;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::json;
use serde_json::value::RawValue;

use super::messages::{self as m, BookLevel};
use super::EXCHANGE;
use crate::book::{Diff, Levels, Snapshot};
use crate::schema::borrowed::{EncodedRecord, IdRef, LevelKey, TradeRef};
use crate::schema::v2beta1::trade;
use crate::schema::{self as s, Normalized};
use crate::venues::json::{ms_to_us, scalar, symbol, unsigned};
use crate::venues::{decimal, ParseError, SymbolMap, VenueEvent};

/// What a frame meant to the session, besides the events it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Channel data (records, diffs or snapshots went to `out`).
    Data,
    /// A successful answer to request `id`: the channels a `public/subscribe` or
    /// `public/unsubscribe` result lists (empty for other results, e.g. `"ok"`).
    Answer {
        /// The request id.
        id: u64,
        /// Channels named by the result.
        channels: Vec<String>,
    },
    /// An error answer (to request `id`, when it says which).
    Failed {
        /// The request id.
        id: Option<u64>,
        /// Error code.
        code: i64,
        /// Message and detail.
        msg: String,
    },
    /// A `heartbeat` notification: nothing to do.
    Quiet,
    /// A `test_request`: a `public/test` must be sent (the session sends it, with an id).
    TestRequest,
}

/// A JSON-RPC request `method` with `params` and id `id`.
pub fn request(id: u64, method: &str, params: serde_json::Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

/// `public/subscribe` (or `public/unsubscribe`, `method`) of `channels`.
pub fn subscribe_request(id: u64, method: &str, channels: &[String]) -> String {
    request(id, method, json!({ "channels": channels }))
}

/// `public/set_heartbeat` every `secs` seconds (Deribit's minimum is 10).
pub fn set_heartbeat(id: u64, secs: u64) -> String {
    request(
        id,
        "public/set_heartbeat",
        json!({ "interval": secs.max(10) }),
    )
}

/// The answer to a `test_request`.
pub fn test_request_answer(id: u64) -> String {
    request(id, "public/test", json!({}))
}

/// Parses one frame; records, diffs and snapshots go to `out`. A ticker notification gives
/// every record it carries (`Ticker`, plus `Funding` for perpetuals and `OpenInterest`): a
/// session keeps the ones subscribed.
pub fn parse_frame(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    let env: m::Envelope<'_> = serde_json::from_str(text)?;
    if let Some(e) = env.error {
        let mut msg = e.message.unwrap_or("error").to_string();
        if let Some(d) = e.data {
            msg.push(' ');
            msg.push_str(d.get());
        }
        return Ok(Control::Failed {
            id: env.id,
            code: e.code,
            msg: msg.chars().take(512).collect(),
        });
    }
    match env.method {
        Some("subscription") => {}
        Some("heartbeat") => {
            return match env.params.and_then(|p| p.kind) {
                Some("test_request") => Ok(Control::TestRequest),
                _ => Ok(Control::Quiet),
            }
        }
        Some(other) => return Err(ParseError::Unsupported(format!("method {other}"))),
        None => {
            let id = env
                .id
                .ok_or_else(|| ParseError::Unsupported("message without method or id".into()))?;
            let channels = match env.result {
                Some(r) if r.get().starts_with('[') => {
                    serde_json::from_str::<Vec<String>>(r.get())?
                }
                _ => Vec::new(),
            };
            return Ok(Control::Answer { id, channels });
        }
    }
    let params = env
        .params
        .ok_or_else(|| ParseError::Unsupported("subscription without params".into()))?;
    let channel = params
        .channel
        .ok_or_else(|| ParseError::Unsupported("subscription without channel".into()))?;
    let data = params
        .data
        .ok_or_else(|| ParseError::Unsupported(format!("{channel} without data")))?
        .get();
    match channel.split('.').next().unwrap_or_default() {
        "book" => book(data, receipt_us, map, out)?,
        "trades" => trades(data, receipt_us, map, out)?,
        "ticker" => ticker(data, receipt_us, map, out)?,
        "quote" => quote(data, receipt_us, map, out)?,
        _ => {
            return Err(ParseError::Unsupported(
                channel.chars().take(64).collect::<String>(),
            ))
        }
    }
    Ok(Control::Data)
}

/// A level's quantity: a `delete` is written as `0` (whatever amount it carries), `new` and
/// `change` carry the new absolute amount, as written.
fn level<'a>(l: &BookLevel<'a>) -> Result<(&'a str, &'a str), ParseError> {
    let price = unsigned(l.1)?;
    let qty = match amount(l)? {
        Some(q) => unsigned(q)?,
        None => "0",
    };
    Ok((price, qty))
}

/// A level's amount by its action (`None`: a delete, whose amount is zero).
fn amount<'a>(l: &BookLevel<'a>) -> Result<Option<&'a RawValue>, ParseError> {
    match l.0 {
        "new" | "change" => Ok(Some(l.2)),
        "delete" => Ok(None),
        other => Err(ParseError::Unsupported(format!(
            "book action {}",
            other.chars().take(16).collect::<String>()
        ))),
    }
}

fn side(raw: &[BookLevel<'_>]) -> Result<Levels, ParseError> {
    let mut levels = Levels::with_capacity(raw.len(), raw.len() * 16);
    for l in raw {
        // As [`level`] reads it (the price, then the action and its amount), each decimal
        // once: checked and keyed for the book together.
        let price = scalar(l.1)?;
        let price_key = decimal::unsigned_level(price, "0")?.price;
        let (qty, zero) = match amount(l)? {
            Some(q) => {
                let q = scalar(q)?;
                (q, decimal::unsigned_level("0", q)?.zero)
            }
            None => ("0", true),
        };
        levels.push_keyed(
            price,
            qty,
            LevelKey {
                price: price_key,
                zero,
            },
        );
    }
    Ok(levels)
}

fn owned(raw: &[BookLevel<'_>]) -> Result<Vec<(String, String)>, ParseError> {
    raw.iter()
        .map(|l| level(l).map(|(p, q)| (p.to_string(), q.to_string())))
        .collect()
}

fn book(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let b: m::Book<'_> = serde_json::from_str(data)?;
    let symbol = symbol(map, b.instrument_name)?;
    let timestamp = ms_to_us(b.timestamp)?;
    match b.kind {
        Some("snapshot") => out.push(VenueEvent::Snapshot {
            symbol: symbol.to_string(),
            snapshot: Snapshot {
                last_update_id: b.change_id,
                bids: owned(&b.bids)?,
                asks: owned(&b.asks)?,
                checksum: None,
            },
        }),
        Some("change") => out.push(VenueEvent::Diff {
            symbol,
            diff: Diff {
                first: b.change_id,
                last: b.change_id,
                prev: b.prev_change_id,
                bids: side(&b.bids)?,
                asks: side(&b.asks)?,
                checksum: None,
                event_time: None,
                timestamp: Some(timestamp),
                receipt_time: receipt_us,
            },
        }),
        other => {
            return Err(ParseError::Unsupported(format!(
                "book notification type {}",
                other
                    .unwrap_or("(none)")
                    .chars()
                    .take(16)
                    .collect::<String>()
            )))
        }
    }
    Ok(())
}

fn trades(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::Trade<'_>> = serde_json::from_str(data)?;
    for t in &items {
        let symbol = symbol(map, t.instrument_name)?;
        // `direction` is the taker's side.
        let (side, buyer_maker) = match t.direction {
            "buy" => (trade::Side::Buy, Some(false)),
            "sell" => (trade::Side::Sell, Some(true)),
            _ => (trade::Side::Unspecified, None),
        };
        let trade_type = if t.liquidation.is_some() {
            Some("liquidation")
        } else if t.block_trade_id.is_some() {
            Some("block")
        } else {
            None
        };
        if t.trade_id.is_empty() || t.trade_id.len() > 64 {
            return Err(ParseError::Unsupported("trade id".into()));
        }
        let trade = TradeRef {
            exchange: EXCHANGE,
            symbol: "",
            side: side as i32,
            trade_id: IdRef::Text(t.trade_id),
            price: unsigned(t.price)?,
            amount: unsigned(t.amount)?,
            timestamp: ms_to_us(t.timestamp)?,
            trade_type,
            maker: buyer_maker,
            event_time: None,
            match_id: None,
            liquidity_flag: None,
            receipt_time: receipt_us,
        };
        out.push(VenueEvent::Encoded(EncodedRecord::trade(
            EXCHANGE, symbol, trade,
        )));
    }
    Ok(())
}

/// A number literal as an exact plain decimal: as written, or, for a literal with an
/// exponent (`2.1e-05`), its exact plain form (through `rust_decimal`, never a float).
fn exact(raw: &RawValue, negative_ok: bool) -> Result<Cow<'_, str>, ParseError> {
    let t = scalar(raw)?;
    let text = if t.bytes().any(|b| b == b'e' || b == b'E') {
        let d = Decimal::from_scientific(t)
            .map_err(|_| ParseError::BadDecimal(t.chars().take(48).collect()))?;
        Cow::Owned(d.normalize().to_string())
    } else {
        Cow::Borrowed(t)
    };
    if negative_ok {
        decimal::signed(&text)?;
    } else {
        decimal::unsigned(&text)?;
    }
    Ok(text)
}

fn text_of(raw: Option<&RawValue>, negative_ok: bool) -> Result<String, ParseError> {
    raw.map_or(Ok(String::new()), |r| {
        exact(r, negative_ok).map(Cow::into_owned)
    })
}

fn ticker(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let t: m::Ticker<'_> = serde_json::from_str(data)?;
    let symbol = symbol(map, t.instrument_name)?.to_string();
    let timestamp = Some(ms_to_us(t.timestamp)?);
    // Quote-currency volume: `volume_notional` where sent, else `volume_usd` for USD-quoted
    // (inverse) instruments.
    let quote_volume = match (t.stats.volume_notional, t.stats.volume_usd) {
        (Some(n), _) => text_of(Some(n), false)?,
        (None, Some(u)) if !t.instrument_name.contains('_') => text_of(Some(u), false)?,
        _ => String::new(),
    };
    out.push(VenueEvent::Record(Normalized::Ticker(s::Ticker {
        exchange: EXCHANGE.into(),
        symbol: symbol.clone(),
        bid: text_of(t.best_bid_price, false)?,
        ask: text_of(t.best_ask_price, false)?,
        timestamp,
        event_time: None,
        receipt_time: receipt_us,
        last: text_of(t.last_price, false)?,
        // Deribit sends the 24 h change as a percentage, not the open price.
        open: String::new(),
        high: text_of(t.stats.high, false)?,
        low: text_of(t.stats.low, false)?,
        volume: text_of(t.stats.volume, false)?,
        quote_volume,
    })));
    if t.funding_8h.is_some() || t.current_funding.is_some() {
        out.push(VenueEvent::Record(Normalized::Funding(s::Funding {
            exchange: EXCHANGE.into(),
            symbol: symbol.clone(),
            mark_price: text_of(t.mark_price, false)?,
            rate: text_of(t.funding_8h, true)?,
            next_funding_time: None,
            predicted_rate: t
                .current_funding
                .map(|r| exact(r, true).map(Cow::into_owned))
                .transpose()?,
            timestamp,
            event_time: None,
            receipt_time: receipt_us,
            index_price: t
                .index_price
                .map(|r| exact(r, false).map(Cow::into_owned))
                .transpose()?,
        })));
    }
    if let Some(oi) = t.open_interest {
        out.push(VenueEvent::Record(Normalized::OpenInterest(
            s::OpenInterest {
                exchange: EXCHANGE.into(),
                symbol,
                open_interest: exact(oi, false)?.into_owned(),
                timestamp,
                event_time: None,
                receipt_time: receipt_us,
            },
        )));
    }
    Ok(())
}

fn quote(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let q: m::Quote<'_> = serde_json::from_str(data)?;
    out.push(VenueEvent::Record(Normalized::TopOfBook(s::TopOfBook {
        exchange: EXCHANGE.into(),
        symbol: symbol(map, q.instrument_name)?.to_string(),
        bid_price: text_of(q.best_bid_price, false)?,
        bid_size: text_of(q.best_bid_amount, false)?,
        ask_price: text_of(q.best_ask_price, false)?,
        ask_size: text_of(q.best_ask_amount, false)?,
        timestamp: Some(ms_to_us(q.timestamp)?),
        event_time: None,
        receipt_time: receipt_us,
        update_id: None,
    })));
    Ok(())
}

/// Whether `text` is a plain decimal equal to zero (used by the replay mock).
pub fn is_zero(text: &str) -> bool {
    Decimal::from_str(text).is_ok_and(|d| d.is_zero())
}
