//! Kraken WebSocket v1 (`wss://ws.kraken.com`): pure parse and request functions. Data
//! frames are arrays `[channelID, payload(, payload), channelName, pair]`; control messages
//! are `{"event": …}` objects. Times are seconds with six decimals, as text.

use serde_json::json;
use serde_json::value::RawValue;

use super::messages::*;
use super::scan::scan_book_update;
use super::{push_trade, secs_to_us, symbol, Control, EXCHANGE};
use crate::book::{Diff, Levels, Snapshot};
use crate::schema::borrowed::{IdRef, LevelKey, TradeRef};
use crate::schema::v2beta1::trade;
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::{unsigned, unsigned_level};
use crate::venues::{ParseError, SymbolMap, VenueEvent};

/// The client heartbeat (answered `{"event":"pong"}`).
pub const PING: &str = r#"{"event":"ping"}"#;

/// A `subscribe` (or `unsubscribe`, with `event`) request for `pairs` on channel `name`
/// (`book` with `depth`, `ohlc` with `interval`).
pub fn request(
    event: &str,
    pairs: &[&str],
    name: &str,
    depth: Option<u32>,
    interval: Option<u32>,
) -> String {
    let mut sub = json!({ "name": name });
    if let Some(d) = depth {
        sub["depth"] = json!(d);
    }
    if let Some(i) = interval {
        sub["interval"] = json!(i);
    }
    json!({ "event": event, "pair": pairs, "subscription": sub }).to_string()
}

fn str_of(raw: &RawValue) -> Result<&str, ParseError> {
    Ok(serde_json::from_str::<&str>(raw.get())?)
}

/// Parses one v1 frame; records, diffs and snapshots go to `out`. Book updates, the bulk of
/// a book subscription, are read by the purpose-built scanner ([`super::scan`]); anything it
/// declines takes [`parse_frame_general`], with the same result.
pub fn parse_frame(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    let Some(u) = scan_book_update(text) else {
        return parse_frame_general(text, receipt_us, map, out);
    };
    let symbol = symbol(map, u.pair)?;
    out.push(VenueEvent::Diff {
        symbol,
        diff: Diff {
            receipt_time: receipt_us,
            bids: u.bids,
            asks: u.asks,
            checksum: u.checksum,
            timestamp: (u.latest_us > 0).then_some(u.latest_us),
            ..Diff::default()
        },
    });
    Ok(Control::Data)
}

/// Parses one v1 frame with `serde_json` alone (the authority the scanner is held to).
pub fn parse_frame_general(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    if text.trim_start().starts_with('{') {
        return parse_event(text);
    }
    let parts: Vec<&RawValue> = serde_json::from_str(text)?;
    let n = parts.len();
    if n < 4 {
        return Err(ParseError::Unsupported(format!("{n}-element array frame")));
    }
    let name = str_of(parts[n - 2])?;
    let pair = str_of(parts[n - 1])?;
    let payloads = &parts[1..n - 2];
    match name {
        b if b == "book" || b.starts_with("book-") => book(pair, payloads, receipt_us, map, out)?,
        "trade" => trades(pair, payloads, receipt_us, map, out)?,
        "ticker" => ticker(pair, payloads, receipt_us, map, out)?,
        "spread" => spread(pair, payloads, receipt_us, map, out)?,
        o if o.starts_with("ohlc-") => ohlc(o, pair, payloads, receipt_us, map, out)?,
        other => return Err(ParseError::Unsupported(other.to_string())),
    }
    Ok(Control::Data)
}

/// Parses a v1 `{"event": …}` message.
pub fn parse_event(text: &str) -> Result<Control, ParseError> {
    let e: V1Event<'_> = serde_json::from_str(text)?;
    match e.event {
        "heartbeat" | "pong" | "systemStatus" => Ok(Control::Quiet),
        "subscriptionStatus" => match e.status {
            Some("subscribed") => Ok(Control::Subscribed {
                channel: e
                    .subscription
                    .map(|s| s.name.to_string())
                    .or_else(|| e.channel_name.map(str::to_string))
                    .unwrap_or_default(),
                pair: e.pair.map(str::to_string),
            }),
            Some("unsubscribed") => Ok(Control::Unsubscribed),
            _ => Err(ParseError::Venue {
                code: 0,
                msg: format!(
                    "{} ({})",
                    e.error_message.as_deref().unwrap_or("subscription error"),
                    e.pair.unwrap_or("no pair")
                ),
            }),
        },
        "error" => Err(ParseError::Venue {
            code: 0,
            msg: e.error_message.unwrap_or_default(),
        }),
        other => Err(ParseError::Unsupported(format!("event {other}"))),
    }
}

/// Appends levels to `into`; returns the latest level time, µs.
fn levels(raw: &[V1Level<'_>], into: &mut Levels) -> Result<i64, ParseError> {
    let mut latest = 0;
    for l in raw {
        // Each decimal read once: checked and keyed for the book together.
        let p = l.text(0)?;
        let price = unsigned_level(p, "0")?.price;
        let q = l.text(1)?;
        let zero = unsigned_level("0", q)?.zero;
        latest = latest.max(secs_to_us(l.text(2)?)?);
        into.push_keyed(p, q, LevelKey { price, zero });
    }
    Ok(latest)
}

fn owned(levels: &Levels) -> Vec<(String, String)> {
    levels
        .iter()
        .map(|(p, q)| (p.to_string(), q.to_string()))
        .collect()
}

fn book(
    pair: &str,
    payloads: &[&RawValue],
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let symbol = symbol(map, pair)?;
    let mut diff = Diff {
        receipt_time: receipt_us,
        ..Diff::default()
    };
    let mut latest = 0;
    let mut updates = false;
    for raw in payloads {
        let b: V1Book<'_> = serde_json::from_str(raw.get())?;
        if b.snapshot_asks.is_some() || b.snapshot_bids.is_some() {
            let (mut bids, mut asks) = (Levels::default(), Levels::default());
            levels(b.snapshot_bids.as_deref().unwrap_or_default(), &mut bids)?;
            levels(b.snapshot_asks.as_deref().unwrap_or_default(), &mut asks)?;
            out.push(VenueEvent::Snapshot {
                symbol: symbol.to_string(),
                snapshot: Snapshot {
                    last_update_id: 0,
                    bids: owned(&bids),
                    asks: owned(&asks),
                    checksum: None,
                },
            });
            continue;
        }
        updates = true;
        if let Some(a) = &b.asks {
            latest = latest.max(levels(a, &mut diff.asks)?);
        }
        if let Some(bids) = &b.bids {
            latest = latest.max(levels(bids, &mut diff.bids)?);
        }
        if let Some(c) = b.checksum {
            diff.checksum = Some(
                c.parse::<u32>()
                    .map_err(|_| ParseError::BadDecimal(c.to_string()))?,
            );
        }
    }
    if updates {
        diff.timestamp = (latest > 0).then_some(latest);
        out.push(VenueEvent::Diff { symbol, diff });
    }
    Ok(())
}

fn first<'a>(payloads: &[&'a RawValue]) -> Result<&'a RawValue, ParseError> {
    payloads
        .first()
        .copied()
        .ok_or_else(|| ParseError::Unsupported("frame without payload".into()))
}

fn trades(
    pair: &str,
    payloads: &[&RawValue],
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let list: Vec<V1Trade<'_>> = serde_json::from_str(first(payloads)?.get())?;
    for t in &list {
        // Kraken's side is the taker's: "b" = the taker bought.
        let (side, buyer_maker) = match t.text(3)? {
            "b" => (trade::Side::Buy, Some(false)),
            "s" => (trade::Side::Sell, Some(true)),
            _ => (trade::Side::Unspecified, None),
        };
        let trade_type = match t.text(4)? {
            "m" => "market",
            "l" => "limit",
            other => other,
        };
        let view = TradeRef {
            exchange: EXCHANGE,
            symbol: "",
            side: side as i32,
            trade_id: IdRef::Text(""),
            price: unsigned(t.text(0)?)?,
            amount: unsigned(t.text(1)?)?,
            timestamp: secs_to_us(t.text(2)?)?,
            trade_type: (!trade_type.is_empty()).then_some(trade_type),
            maker: buyer_maker,
            event_time: None,
            match_id: None,
            liquidity_flag: None,
            receipt_time: receipt_us,
        };
        push_trade(map, pair, view, out)?;
    }
    Ok(())
}

fn ticker(
    pair: &str,
    payloads: &[&RawValue],
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let t: V1Ticker<'_> = serde_json::from_str(first(payloads)?.get())?;
    // Index 1 of each statistic covers the last 24 hours (index 0: today).
    out.push(VenueEvent::Record(Normalized::Ticker(s::Ticker {
        exchange: EXCHANGE.into(),
        symbol: symbol(map, pair)?.to_string(),
        bid: unsigned(t.b.text(0)?)?.into(),
        ask: unsigned(t.a.text(0)?)?.into(),
        timestamp: None,
        event_time: None,
        receipt_time: receipt_us,
        last: unsigned(t.c.text(0)?)?.into(),
        open: unsigned(t.o.text(1)?)?.into(),
        high: unsigned(t.h.text(1)?)?.into(),
        low: unsigned(t.l.text(1)?)?.into(),
        volume: unsigned(t.v.text(1)?)?.into(),
        quote_volume: String::new(),
    })));
    Ok(())
}

fn spread(
    pair: &str,
    payloads: &[&RawValue],
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let sp: V1Spread<'_> = serde_json::from_str(first(payloads)?.get())?;
    out.push(VenueEvent::Record(Normalized::TopOfBook(s::TopOfBook {
        exchange: EXCHANGE.into(),
        symbol: symbol(map, pair)?.to_string(),
        bid_price: unsigned(sp.text(0)?)?.into(),
        bid_size: sp
            .opt_text(3)?
            .map(unsigned)
            .transpose()?
            .unwrap_or_default()
            .into(),
        ask_price: unsigned(sp.text(1)?)?.into(),
        ask_size: sp
            .opt_text(4)?
            .map(unsigned)
            .transpose()?
            .unwrap_or_default()
            .into(),
        timestamp: Some(secs_to_us(sp.text(2)?)?),
        event_time: None,
        receipt_time: receipt_us,
        update_id: None,
    })));
    Ok(())
}

fn ohlc(
    name: &str,
    pair: &str,
    payloads: &[&RawValue],
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let minutes: i64 = name
        .strip_prefix("ohlc-")
        .and_then(|m| m.parse().ok())
        .filter(|m| (1..=21_600).contains(m))
        .ok_or_else(|| ParseError::Unsupported(name.to_string()))?;
    let c: V1Ohlc<'_> = serde_json::from_str(first(payloads)?.get())?;
    let end = secs_to_us(c.text(1)?)?;
    let trades = c.text(8)?;
    out.push(VenueEvent::Record(Normalized::Candle(s::Candle {
        exchange: EXCHANGE.into(),
        symbol: symbol(map, pair)?.to_string(),
        start: end - minutes * 60_000_000,
        stop: end,
        interval: format!("{minutes}m"),
        trades: Some(
            trades
                .parse()
                .map_err(|_| ParseError::BadDecimal(trades.to_string()))?,
        ),
        open: unsigned(c.text(2)?)?.into(),
        close: unsigned(c.text(5)?)?.into(),
        high: unsigned(c.text(3)?)?.into(),
        low: unsigned(c.text(4)?)?.into(),
        volume: unsigned(c.text(7)?)?.into(),
        // v1 sends the running candle; it is never marked final.
        closed: false,
        timestamp: Some(secs_to_us(c.text(0)?)?),
        event_time: None,
        receipt_time: receipt_us,
        quote_volume: None,
    })));
    Ok(())
}
