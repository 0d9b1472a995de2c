//! Kraken WebSocket v2 (`wss://ws.kraken.com/v2`, the current API): pure parse and request
//! functions. Messages are objects: channel data `{"channel","type","data":[…]}` and method
//! answers `{"method","success","result"}`. Prices and quantities are JSON numbers; their
//! literals are kept, and book levels are written with the pair's precision (from the
//! `instrument` channel, else pinned) so that the book checksum reads them as Kraken does.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::json;
use serde_json::value::RawValue;

use super::messages::*;
use super::{fixed, push_trade, rfc3339_to_us, scalar, symbol, Control, Precision, Precisions};
use crate::book::{Diff, Levels, Snapshot};
use crate::schema::borrowed::{IdRef, TradeRef};
use crate::schema::v2beta1::trade;
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::unsigned;
use crate::venues::{ParseError, SymbolMap, VenueEvent};

use super::EXCHANGE;

/// The client heartbeat (answered `{"method":"pong",…}`).
pub const PING: &str = r#"{"method":"ping"}"#;

/// The answer to a server `ping`.
pub const PONG: &str = r#"{"method":"pong"}"#;

/// A `subscribe` or `unsubscribe` (`method`) request for `channel` on `symbols` (none for
/// `instrument`), with the channel's further parameters (`depth`, `interval`,
/// `event_trigger`, …).
pub fn request(
    method: &str,
    channel: &str,
    symbols: &[&str],
    params: &[(&str, serde_json::Value)],
) -> String {
    let mut p = json!({ "channel": channel });
    if !symbols.is_empty() {
        p["symbol"] = json!(symbols);
    }
    for (k, v) in params {
        p[*k] = v.clone();
    }
    json!({ "method": method, "params": p }).to_string()
}

/// Parses one v2 frame; records, diffs, snapshots and answers to send go to `out`.
pub fn parse_frame(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    precisions: &Precisions,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    let env: V2Envelope<'_> = serde_json::from_str(text)?;
    if env.success == Some(false) || (env.error.is_some() && env.channel.is_none()) {
        return Err(ParseError::Venue {
            code: 0,
            msg: format!(
                "{} ({})",
                env.error.as_deref().unwrap_or("request failed"),
                env.symbol.as_deref().unwrap_or("no symbol")
            ),
        });
    }
    if let Some(method) = env.method {
        return match method {
            "subscribe" => {
                let r: V2SubscribeResult<'_> = serde_json::from_str(
                    env.result
                        .ok_or_else(|| ParseError::Unsupported("answer without result".into()))?
                        .get(),
                )?;
                Ok(Control::Subscribed {
                    channel: r.channel.to_string(),
                    pair: r.symbol.map(str::to_string),
                })
            }
            "unsubscribe" => Ok(Control::Unsubscribed),
            "pong" => Ok(Control::Quiet),
            "ping" => {
                out.push(VenueEvent::Send(PONG.to_string()));
                Ok(Control::Pinged)
            }
            other => Err(ParseError::Unsupported(format!("method {other}"))),
        };
    }
    let channel = env
        .channel
        .ok_or_else(|| ParseError::Unsupported("message without channel or method".into()))?;
    if matches!(channel, "heartbeat" | "status") {
        return Ok(Control::Quiet);
    }
    let data = env
        .data
        .ok_or_else(|| ParseError::Unsupported(format!("{channel} without data")))?
        .get();
    match channel {
        "book" => book(env.kind, data, receipt_us, map, precisions, out)?,
        "trade" => trades(data, receipt_us, map, out)?,
        "ticker" => ticker(data, receipt_us, map, out)?,
        "ohlc" => ohlc(data, env.timestamp, receipt_us, map, out)?,
        "instrument" => {
            let i: V2Instruments<'_> = serde_json::from_str(data)?;
            return Ok(Control::Instruments(
                i.pairs
                    .iter()
                    .map(|p| {
                        let prec = Precision {
                            price: p.price_precision,
                            qty: p.qty_precision,
                        };
                        (p.symbol.to_string(), prec)
                    })
                    .collect(),
            ));
        }
        other => return Err(ParseError::Unsupported(other.to_string())),
    }
    Ok(Control::Data)
}

/// A level's text: with the pair's precision when known, else the literal.
fn level_text(raw: &RawValue, places: Option<u32>) -> Result<String, ParseError> {
    let t = scalar(raw)?;
    let text = match places {
        Some(p) => fixed(t, p)?,
        None => t.to_string(),
    };
    unsigned(&text)?;
    Ok(text)
}

fn levels(
    raw: &[V2Level<'_>],
    prec: Option<Precision>,
) -> Result<Vec<(String, String)>, ParseError> {
    raw.iter()
        .map(|l| {
            Ok((
                level_text(l.price, prec.map(|p| p.price))?,
                level_text(l.qty, prec.map(|p| p.qty))?,
            ))
        })
        .collect()
}

fn book(
    kind: Option<&str>,
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    precisions: &Precisions,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<V2Book<'_>> = serde_json::from_str(data)?;
    for b in &items {
        let symbol = symbol(map, b.symbol)?;
        let prec = precisions.get(b.symbol);
        let (bids, asks) = (levels(&b.bids, prec)?, levels(&b.asks, prec)?);
        match kind {
            Some("snapshot") => out.push(VenueEvent::Snapshot {
                symbol: symbol.to_string(),
                snapshot: Snapshot {
                    last_update_id: 0,
                    bids,
                    asks,
                    checksum: b.checksum,
                },
            }),
            Some("update") => {
                let side = |v: &[(String, String)]| -> Levels {
                    v.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect()
                };
                out.push(VenueEvent::Diff {
                    symbol,
                    diff: Diff {
                        bids: side(&bids),
                        asks: side(&asks),
                        checksum: b.checksum,
                        timestamp: b.timestamp.map(rfc3339_to_us).transpose()?,
                        receipt_time: receipt_us,
                        ..Diff::default()
                    },
                });
            }
            other => {
                return Err(ParseError::Unsupported(format!(
                    "book message type {}",
                    other.unwrap_or("(none)")
                )))
            }
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
    let items: Vec<V2Trade<'_>> = serde_json::from_str(data)?;
    for t in &items {
        // `side` is the taker's.
        let (side, buyer_maker) = match t.side {
            "buy" => (trade::Side::Buy, Some(false)),
            "sell" => (trade::Side::Sell, Some(true)),
            _ => (trade::Side::Unspecified, None),
        };
        let view = TradeRef {
            exchange: EXCHANGE,
            symbol: "",
            side: side as i32,
            trade_id: t.trade_id.map_or(IdRef::Text(""), IdRef::Num),
            price: unsigned(scalar(t.price)?)?,
            amount: unsigned(scalar(t.qty)?)?,
            timestamp: rfc3339_to_us(t.timestamp)?,
            trade_type: t.ord_type,
            maker: buyer_maker,
            event_time: None,
            match_id: None,
            liquidity_flag: None,
            receipt_time: receipt_us,
        };
        push_trade(map, t.symbol, view, out)?;
    }
    Ok(())
}

fn text_of(raw: Option<&RawValue>) -> Result<String, ParseError> {
    match raw {
        Some(r) => Ok(unsigned(scalar(r)?)?.to_string()),
        None => Ok(String::new()),
    }
}

/// `last - change`, exactly (v2 sends no open price); empty when either is missing.
fn open_of(last: Option<&RawValue>, change: Option<&RawValue>) -> Result<String, ParseError> {
    let (Some(last), Some(change)) = (last, change) else {
        return Ok(String::new());
    };
    let dec = |r: &RawValue| -> Result<Decimal, ParseError> {
        let t = scalar(r)?;
        if t.bytes().any(|b| b == b'e' || b == b'E') {
            Decimal::from_scientific(t)
        } else {
            Decimal::from_str(t)
        }
        .map_err(|_| ParseError::BadDecimal(t.to_string()))
    };
    let open = dec(last)?
        .checked_sub(dec(change)?)
        .ok_or_else(|| ParseError::BadDecimal(scalar(last).unwrap_or_default().to_string()))?;
    let open = open.to_string();
    unsigned(&open)?;
    Ok(open)
}

/// A ticker message gives both records: the session keeps the ones its subscriptions asked
/// for (`Ticker` for the ticker channel, `TopOfBook` for book tickers).
fn ticker(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<V2Ticker<'_>> = serde_json::from_str(data)?;
    for t in &items {
        let symbol = symbol(map, t.symbol)?.to_string();
        let timestamp = t.timestamp.map(rfc3339_to_us).transpose()?;
        out.push(VenueEvent::Record(Normalized::Ticker(s::Ticker {
            exchange: EXCHANGE.into(),
            symbol: symbol.clone(),
            bid: text_of(t.bid)?,
            ask: text_of(t.ask)?,
            timestamp,
            event_time: None,
            receipt_time: receipt_us,
            last: text_of(t.last)?,
            open: open_of(t.last, t.change)?,
            high: text_of(t.high)?,
            low: text_of(t.low)?,
            volume: text_of(t.volume)?,
            quote_volume: String::new(),
        })));
        out.push(VenueEvent::Record(Normalized::TopOfBook(s::TopOfBook {
            exchange: EXCHANGE.into(),
            symbol,
            bid_price: text_of(t.bid)?,
            bid_size: text_of(t.bid_qty)?,
            ask_price: text_of(t.ask)?,
            ask_size: text_of(t.ask_qty)?,
            timestamp,
            event_time: None,
            receipt_time: receipt_us,
            update_id: None,
        })));
    }
    Ok(())
}

fn ohlc(
    data: &str,
    message_time: Option<&str>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<V2Ohlc<'_>> = serde_json::from_str(data)?;
    let time = message_time.map(rfc3339_to_us).transpose()?;
    for c in &items {
        if !(1..=21_600).contains(&c.interval) {
            return Err(ParseError::Unsupported(format!("interval {}", c.interval)));
        }
        let begin = c
            .interval_begin
            .ok_or_else(|| ParseError::Unsupported("candle without interval_begin".into()))?;
        let start = rfc3339_to_us(begin)?;
        let trades = c
            .trades
            .map(scalar)
            .transpose()?
            .map(|t| {
                t.parse::<i64>()
                    .map_err(|_| ParseError::BadDecimal(t.to_string()))
            })
            .transpose()?;
        out.push(VenueEvent::Record(Normalized::Candle(s::Candle {
            exchange: EXCHANGE.into(),
            symbol: symbol(map, c.symbol)?.to_string(),
            start,
            stop: start + c.interval * 60_000_000,
            interval: format!("{}m", c.interval),
            trades,
            open: unsigned(scalar(c.open)?)?.into(),
            close: unsigned(scalar(c.close)?)?.into(),
            high: unsigned(scalar(c.high)?)?.into(),
            low: unsigned(scalar(c.low)?)?.into(),
            volume: unsigned(scalar(c.volume)?)?.into(),
            closed: false,
            timestamp: time,
            event_time: None,
            receipt_time: receipt_us,
            quote_volume: None,
        })));
    }
    Ok(())
}
