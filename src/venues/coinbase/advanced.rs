//! Coinbase Advanced Trade WebSocket (`wss://advanced-trade-ws.coinbase.com`, public market
//! data): pure parse and request functions. Every frame is
//! `{"channel","timestamp","sequence_num","events":[…]}`; `sequence_num` numbers every frame
//! of one connection across channels (the session checks it).

use std::collections::HashMap;

use serde_json::json;

use super::messages::*;
use super::{push_trade, taker_of_maker, trade_id, EXCHANGE};
use crate::book::{Diff, Levels, Snapshot};
use crate::schema::borrowed::TradeRef;
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::{unsigned, unsigned_level};
use crate::venues::json::{rfc3339_to_us, secs_to_us, symbol};
use crate::venues::{ParseError, SymbolMap, VenueEvent};

/// Candle bucket of the `candles` channel, µs (5 minutes).
pub const CANDLE_US: i64 = 300_000_000;

/// What a frame meant to the session, besides the events it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Market data (records, diffs or snapshots went to `out`).
    Data,
    /// Every subscription of the connection now: channel → products.
    Subscriptions(HashMap<String, Vec<String>>),
    /// A heartbeat with its counter.
    Heartbeat(u64),
}

/// A parsed frame: its `sequence_num` (when it has one) and what it meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The connection-wide frame number.
    pub sequence: Option<u64>,
    /// What it meant.
    pub control: Control,
}

/// A `subscribe` or `unsubscribe` message for one channel (Coinbase takes one channel per
/// message); `heartbeats` takes no products.
pub fn request(kind: &str, channel: &str, products: &[&str]) -> String {
    if products.is_empty() {
        json!({ "type": kind, "channel": channel }).to_string()
    } else {
        json!({ "type": kind, "product_ids": products, "channel": channel }).to_string()
    }
}

/// Parses one Advanced Trade frame. `keep_trade(symbol, id)` says whether a trade is new
/// (the venue's recent-id set); trades it refuses are not produced.
pub fn parse_frame(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    keep_trade: &mut dyn FnMut(&str, &str) -> bool,
    out: &mut Vec<VenueEvent>,
) -> Result<Parsed, ParseError> {
    let env: AdvEnvelope<'_> = serde_json::from_str(text)?;
    if env.kind == Some("error") {
        return Err(ParseError::Venue {
            code: 0,
            msg: env.message.unwrap_or_else(|| "error".into()),
        });
    }
    let channel = env
        .channel
        .ok_or_else(|| ParseError::Unsupported("frame without channel".into()))?;
    let sent = env.timestamp.map(rfc3339_to_us).transpose()?;
    let events = env
        .events
        .ok_or_else(|| ParseError::Unsupported(format!("{channel} without events")))?
        .get();
    let control = match channel {
        "l2_data" => {
            book(events, sent, receipt_us, map, out)?;
            Control::Data
        }
        "market_trades" => {
            trades(events, receipt_us, sent, map, keep_trade, out)?;
            Control::Data
        }
        "ticker" => {
            ticker(events, sent, receipt_us, map, out)?;
            Control::Data
        }
        "candles" => {
            candles(events, sent, receipt_us, map, out)?;
            Control::Data
        }
        "heartbeats" => {
            let hb: Vec<AdvHeartbeat> = serde_json::from_str(events)?;
            Control::Heartbeat(hb.first().map_or(0, |h| h.heartbeat_counter))
        }
        "subscriptions" => {
            let subs: Vec<AdvSubscriptions> = serde_json::from_str(events)?;
            Control::Subscriptions(
                subs.into_iter()
                    .next()
                    .map(|s| s.subscriptions)
                    .unwrap_or_default(),
            )
        }
        other => return Err(ParseError::Unsupported(other.chars().take(32).collect())),
    };
    Ok(Parsed {
        sequence: env.sequence_num,
        control,
    })
}

fn book(
    events: &str,
    sent: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let events: Vec<AdvBookEvent<'_>> = serde_json::from_str(events)?;
    for e in &events {
        let symbol = symbol(map, e.product_id)?;
        match e.kind {
            "snapshot" => {
                let (mut bids, mut asks) = (Vec::new(), Vec::new());
                for l in &e.updates {
                    let level = (
                        unsigned(l.price_level)?.to_string(),
                        unsigned(l.new_quantity)?.to_string(),
                    );
                    match l.side {
                        "bid" => bids.push(level),
                        "offer" | "ask" => asks.push(level),
                        other => return Err(ParseError::Unsupported(format!("side {other}"))),
                    }
                }
                out.push(VenueEvent::Snapshot {
                    symbol: symbol.to_string(),
                    snapshot: Snapshot {
                        last_update_id: 0,
                        bids,
                        asks,
                        checksum: None,
                    },
                });
            }
            "update" => {
                let mut bids = Levels::with_capacity(e.updates.len(), 32 * e.updates.len());
                let mut asks = Levels::with_capacity(e.updates.len(), 32 * e.updates.len());
                let mut time = None;
                for l in &e.updates {
                    // Checked and keyed for the book in one pass over each decimal.
                    let (p, q) = (l.price_level, l.new_quantity);
                    let key = unsigned_level(p, q)?;
                    match l.side {
                        "bid" => bids.push_keyed(p, q, key),
                        "offer" | "ask" => asks.push_keyed(p, q, key),
                        other => return Err(ParseError::Unsupported(format!("side {other}"))),
                    }
                    if let Some(t) = l.event_time {
                        let t = rfc3339_to_us(t)?;
                        time = Some(time.map_or(t, |x: i64| x.max(t)));
                    }
                }
                out.push(VenueEvent::Diff {
                    symbol,
                    diff: Diff {
                        bids,
                        asks,
                        timestamp: time,
                        event_time: sent,
                        receipt_time: receipt_us,
                        ..Diff::default()
                    },
                });
            }
            other => {
                return Err(ParseError::Unsupported(format!(
                    "l2_data event {}",
                    other.chars().take(32).collect::<String>()
                )))
            }
        }
    }
    Ok(())
}

fn trades(
    events: &str,
    receipt_us: i64,
    sent: Option<i64>,
    map: &SymbolMap,
    keep_trade: &mut dyn FnMut(&str, &str) -> bool,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let events: Vec<AdvTradesEvent<'_>> = serde_json::from_str(events)?;
    // Every trade of the frame is checked before any is kept (a bad one refuses the frame
    // whole, and marks none as produced).
    let mut views = Vec::new();
    for e in &events {
        // Snapshots and updates alike list trades newest first: produced oldest first.
        for t in e.trades.iter().rev() {
            let symbol = symbol(map, t.product_id)?;
            let (side, buyer_maker) = taker_of_maker(t.side)?;
            let view = TradeRef {
                exchange: EXCHANGE,
                symbol: "",
                side: side as i32,
                trade_id: trade_id(t.trade_id)?,
                price: unsigned(t.price)?,
                amount: unsigned(t.size)?,
                timestamp: rfc3339_to_us(t.time)?,
                trade_type: None,
                maker: Some(buyer_maker),
                event_time: sent,
                match_id: None,
                liquidity_flag: None,
                receipt_time: receipt_us,
            };
            views.push((symbol, t.trade_id, view));
        }
    }
    for (symbol, id, view) in views {
        if keep_trade(&symbol, id) {
            push_trade(symbol, view, out);
        }
    }
    Ok(())
}

fn opt(t: Option<&str>) -> Result<String, ParseError> {
    match t {
        Some(t) if !t.is_empty() => Ok(unsigned(t)?.to_string()),
        _ => Ok(String::new()),
    }
}

/// A ticker gives both records: `Ticker` (last, 24 h high/low/volume, best bid/ask) and
/// `TopOfBook` (best bid/ask with their sizes); the session keeps those subscribed.
fn ticker(
    events: &str,
    sent: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let events: Vec<AdvTickerEvent<'_>> = serde_json::from_str(events)?;
    for e in &events {
        for t in &e.tickers {
            let symbol = symbol(map, t.product_id)?.to_string();
            out.push(VenueEvent::Record(Normalized::Ticker(s::Ticker {
                exchange: EXCHANGE.into(),
                symbol: symbol.clone(),
                bid: opt(t.best_bid)?,
                ask: opt(t.best_ask)?,
                timestamp: sent,
                event_time: None,
                receipt_time: receipt_us,
                last: opt(t.price)?,
                // Only a percentage change is sent: the open is not known exactly.
                open: String::new(),
                high: opt(t.high_24_h)?,
                low: opt(t.low_24_h)?,
                volume: opt(t.volume_24_h)?,
                quote_volume: String::new(),
            })));
            out.push(VenueEvent::Record(Normalized::TopOfBook(s::TopOfBook {
                exchange: EXCHANGE.into(),
                symbol,
                bid_price: opt(t.best_bid)?,
                bid_size: opt(t.best_bid_quantity)?,
                ask_price: opt(t.best_ask)?,
                ask_size: opt(t.best_ask_quantity)?,
                timestamp: sent,
                event_time: None,
                receipt_time: receipt_us,
                update_id: None,
            })));
        }
    }
    Ok(())
}

fn candles(
    events: &str,
    sent: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let events: Vec<AdvCandlesEvent<'_>> = serde_json::from_str(events)?;
    for e in &events {
        for c in &e.candles {
            let start = secs_to_us(c.start)?;
            out.push(VenueEvent::Record(Normalized::Candle(s::Candle {
                exchange: EXCHANGE.into(),
                symbol: symbol(map, c.product_id)?.to_string(),
                start,
                stop: start + CANDLE_US,
                interval: "5m".into(),
                trades: None,
                open: unsigned(c.open)?.into(),
                close: unsigned(c.close)?.into(),
                high: unsigned(c.high)?.into(),
                low: unsigned(c.low)?.into(),
                volume: unsigned(c.volume)?.into(),
                // Updates of the current bucket: never marked closed.
                closed: false,
                timestamp: sent,
                event_time: None,
                receipt_time: receipt_us,
                quote_volume: None,
            })));
        }
    }
    Ok(())
}
