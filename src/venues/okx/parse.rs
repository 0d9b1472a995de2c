//! OKX v5 frames → records, book diffs and snapshots (pure functions; the session keeps the
//! state). Units and sides as OKX documents them (<https://www.okx.com/docs-v5/en/>):
//!
//! - trades (`trades`, `trades-all`): `side` is the taker's; `sz` is in contracts for
//!   derivatives and in base currency for spot; `ts` in ms. `trades-all` sends every trade;
//!   `trades` aggregates the fills of one taker order at one price (`count` trades, `tradeId`
//!   the last of them): `trade_type` "aggregate", `match_id` `first-last` trade ids.
//! - `tickers` → `Ticker`: `volume` is the base-currency 24 h volume (`vol24h` for spot,
//!   `volCcy24h` for derivatives, whose `vol24h` counts contracts); `quote_volume` is
//!   `volCcy24h` for spot and empty for derivatives (OKX sends no quote volume for them).
//! - `index-tickers` → one `Funding` per derivative subscribed to `funding` on that index
//!   (the session knows them, [`Indexes`]): `index_price` = `idxPx`, `timestamp` = `ts`,
//!   `mark_price` and `rate` empty.
//! - `bbo-tbt` → `TopOfBook`; `books5` → `Level2Book` (five levels, each message whole).
//! - `books`, `books-l2-tbt`, `books50-l2-tbt` → book snapshots and diffs (see `book`).
//! - `funding-rate` → `Funding` (`rate`, `next_funding_time` = `fundingTime`, the settlement the
//!   rate applies at, `predicted_rate` = `nextFundingRate` when sent, `mark_price` empty);
//!   `mark-price` → `Funding` with `mark_price` only (`rate` empty).
//! - `open-interest` → `OpenInterest` in contracts (`oi`).
//! - `liquidation-orders` → one `Liquidation` per detail: `side` is the liquidation order's
//!   (`buy` closes a short), `price` the bankruptcy price `bkPx`, `quantity` `sz` (contracts);
//!   instruments not configured are skipped (the channel streams a whole instrument type).
//! - `candle1m` → `Candle` (`[ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm]`; 2022 messages stop at
//!   `volCcy`): `stop` = start + 60 s, `closed` when `confirm` is `"1"`, volumes as for tickers.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::messages::{self as m, Envelope};
use super::{BookMode, EXCHANGE};
use crate::book::{Diff, Levels, Snapshot};
use crate::schema::borrowed::{EncodedRecord, IdRef, TradeRef};
use crate::schema::v2beta1::{level2_book, liquidation, trade};
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::unsigned_level;
use crate::venues::json::{ms_text_to_us, scalar, signed, unsigned};
use crate::venues::{ParseError, SymbolMap, VenueEvent};

/// Index `instId` (`BTC-USDT`) → the normalized derivatives whose `funding` it serves.
pub type Indexes = HashMap<String, Vec<Arc<str>>>;

/// The client heartbeat (OKX answers the text `pong`).
pub const PING: &str = "ping";

/// OKX's answer to `ping`.
pub const PONG: &str = "pong";

/// What a frame meant to the session, besides the events it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Market data (records, diffs or snapshots went to `out`).
    Data,
    /// A subscription was confirmed: channel and `instId` (or `instType`).
    Subscribed {
        /// Channel name.
        channel: String,
        /// `instId`, or `instType` for channels subscribed by type.
        key: String,
    },
    /// An unsubscription was confirmed.
    Unsubscribed,
    /// `pong`, a notice, a connection count, an in-band snapshot ignored in REST mode.
    Quiet,
}

fn unsupported(what: impl Into<String>) -> ParseError {
    ParseError::Unsupported(what.into())
}

fn text(raw: Option<&RawValue>) -> Result<String, ParseError> {
    match raw {
        Some(r) => {
            let t = scalar(r)?;
            if t.is_empty() {
                Ok(String::new())
            } else {
                Ok(unsigned(r)?.to_string())
            }
        }
        None => Ok(String::new()),
    }
}

fn opt_signed(raw: Option<&RawValue>) -> Result<Option<String>, ParseError> {
    match raw {
        Some(r) if !scalar(r)?.is_empty() => Ok(Some(signed(r)?.to_string())),
        _ => Ok(None),
    }
}

fn sym(map: &SymbolMap, inst_id: &str) -> Result<Arc<str>, ParseError> {
    crate::venues::json::symbol(map, inst_id)
}

/// Whether an `instId` is spot (`BASE-QUOTE`).
fn is_spot(inst_id: &str) -> bool {
    inst_id.bytes().filter(|b| *b == b'-').count() == 1
}

/// The instrument id inside an OKX error text (`…,instId:BTC-XXX doesn't exist.`).
fn inst_in_msg(msg: &str) -> Option<&str> {
    let rest = &msg[msg.find("instId:")? + "instId:".len()..];
    let end = rest.find([',', ' ', '"', '}']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|s| !s.is_empty())
}

/// Parses one OKX frame (text). `indexes` maps an `index-tickers` index to the derivatives
/// it serves; `mode` says what an in-band book snapshot is: a snapshot (in-band mode) or
/// nothing (REST mode, where OKX's procedure ignores it).
pub fn parse_frame(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    indexes: &Indexes,
    mode: BookMode,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    if text == PONG {
        return Ok(Control::Quiet);
    }
    let env: Envelope<'_> = serde_json::from_str(text)?;
    if let Some(event) = env.event {
        return match event {
            "subscribe" | "unsubscribe" => {
                let arg = env
                    .arg
                    .ok_or_else(|| unsupported(format!("{event} answer without arg")))?;
                if event == "unsubscribe" {
                    return Ok(Control::Unsubscribed);
                }
                Ok(Control::Subscribed {
                    channel: arg.channel.unwrap_or_default().to_string(),
                    key: arg
                        .inst_id
                        .or(arg.inst_type)
                        .unwrap_or_default()
                        .to_string(),
                })
            }
            "error" => {
                let msg = env.msg.as_deref().unwrap_or_default().to_string();
                let code = env.code.and_then(|c| c.parse().ok()).unwrap_or(0);
                match inst_in_msg(&msg) {
                    Some(id) if code == 60018 => Err(ParseError::Refused {
                        symbol: map
                            .normalized(id)
                            .map_or_else(|| id.chars().take(64).collect(), str::to_string),
                        msg,
                    }),
                    _ => Err(ParseError::Venue { code, msg }),
                }
            }
            "notice" | "channel-conn-count" | "channel-conn-count-error" | "login" => {
                Ok(Control::Quiet)
            }
            other => Err(unsupported(format!("event {other}"))),
        };
    }
    let arg = env
        .arg
        .ok_or_else(|| unsupported("frame without event or arg"))?;
    let channel = arg
        .channel
        .ok_or_else(|| unsupported("arg without channel"))?;
    let data = env
        .data
        .ok_or_else(|| unsupported(format!("{channel} without data")))?
        .get();
    match channel {
        "books" | "books-l2-tbt" | "books50-l2-tbt" => {
            let inst = arg
                .inst_id
                .ok_or_else(|| unsupported("book without instId"))?;
            return book(env.action, inst, data, receipt_us, map, mode, out);
        }
        "books5" => books5(arg.inst_id, data, receipt_us, map, out)?,
        "bbo-tbt" => bbo(arg.inst_id, data, receipt_us, map, out)?,
        "trades" => trades(data, receipt_us, map, true, out)?,
        "trades-all" => trades(data, receipt_us, map, false, out)?,
        "tickers" => tickers(data, receipt_us, map, out)?,
        "index-tickers" => index_tickers(data, receipt_us, indexes, out)?,
        "funding-rate" => funding_rate(data, receipt_us, map, out)?,
        "mark-price" => mark_price(data, receipt_us, map, out)?,
        "open-interest" => open_interest(data, receipt_us, map, out)?,
        "liquidation-orders" => liquidations(data, receipt_us, map, out)?,
        "candle1m" => {
            let inst = arg
                .inst_id
                .ok_or_else(|| unsupported("candle without instId"))?;
            candles(inst, data, receipt_us, map, out)?
        }
        other => return Err(unsupported(other.to_string())),
    }
    Ok(Control::Data)
}

/// Price and size of one level (`[px, sz, "0", orders]`), checked.
fn level<'a>(l: &[&'a RawValue]) -> Result<(&'a str, &'a str), ParseError> {
    match l {
        [p, q, ..] => Ok((unsigned(p)?, unsigned(q)?)),
        _ => Err(unsupported("book level without price and size")),
    }
}

fn owned(levels: &[m::Level<'_>]) -> Result<Vec<(String, String)>, ParseError> {
    levels
        .iter()
        .map(|l| level(l).map(|(p, q)| (p.to_string(), q.to_string())))
        .collect()
}

fn borrowed(levels: &[m::Level<'_>]) -> Result<Levels, ParseError> {
    let mut out = Levels::with_capacity(levels.len(), 16 * levels.len());
    for l in levels {
        match l.as_slice() {
            // Checked and keyed for the book in one pass over each decimal.
            [p, q, ..] => {
                let (p, q) = (scalar(p)?, scalar(q)?);
                out.push_keyed(p, q, unsigned_level(p, q)?);
            }
            _ => return Err(unsupported("book level without price and size")),
        }
    }
    Ok(out)
}

/// OKX's signed checksum as the book driver compares it; 0 (retired) is not checked.
fn checksum(c: Option<i64>) -> Result<Option<u32>, ParseError> {
    match c {
        None | Some(0) => Ok(None),
        Some(c) => i32::try_from(c)
            .map(|c| Some(c as u32))
            .map_err(|_| ParseError::BadDecimal(c.to_string())),
    }
}

fn book(
    action: Option<&str>,
    inst: &str,
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    mode: BookMode,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    let items: Vec<m::Book<'_>> = serde_json::from_str(data)?;
    let symbol = sym(map, inst)?;
    for b in &items {
        let timestamp = b.ts.map(ms_text_to_us).transpose()?;
        match action {
            Some("snapshot") => {
                if mode == BookMode::Rest {
                    // OKX's procedure: the first (snapshot) event is ignored; the book comes
                    // from GET /api/v5/market/books.
                    return Ok(Control::Quiet);
                }
                out.push(VenueEvent::Snapshot {
                    symbol: symbol.to_string(),
                    snapshot: Snapshot {
                        last_update_id: b.seq_id.unwrap_or(0),
                        bids: owned(&b.bids)?,
                        asks: owned(&b.asks)?,
                        checksum: checksum(b.checksum)?,
                    },
                });
            }
            Some("update") => {
                let id = b.seq_id.unwrap_or(0);
                out.push(VenueEvent::Diff {
                    symbol: symbol.clone(),
                    diff: Diff {
                        first: id,
                        last: id,
                        prev: b.prev_seq_id,
                        bids: borrowed(&b.bids)?,
                        asks: borrowed(&b.asks)?,
                        checksum: checksum(b.checksum)?,
                        event_time: None,
                        timestamp,
                        receipt_time: receipt_us,
                    },
                });
            }
            other => {
                return Err(unsupported(format!(
                    "book action {}",
                    other.unwrap_or("(none)")
                )))
            }
        }
    }
    Ok(Control::Data)
}

fn books5(
    inst: Option<&str>,
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::Book<'_>> = serde_json::from_str(data)?;
    for b in &items {
        let inst = b
            .inst_id
            .or(inst)
            .ok_or_else(|| unsupported("books5 without instId"))?;
        let side = |v: &[m::Level<'_>]| -> Result<Vec<level2_book::PriceLevel>, ParseError> {
            v.iter()
                .map(|l| {
                    level(l).map(|(p, q)| level2_book::PriceLevel {
                        price: p.into(),
                        quantity: q.into(),
                    })
                })
                .collect()
        };
        out.push(VenueEvent::Record(Normalized::Level2Book(s::Level2Book {
            exchange: EXCHANGE.into(),
            symbol: sym(map, inst)?.to_string(),
            bids: side(&b.bids)?,
            asks: side(&b.asks)?,
            timestamp: b.ts.map(ms_text_to_us).transpose()?,
            sequence: b.seq_id,
            checksum: None,
            event_time: None,
            last_update_id: b.seq_id,
            receipt_time: receipt_us,
        })));
    }
    Ok(())
}

fn bbo(
    inst: Option<&str>,
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::Book<'_>> = serde_json::from_str(data)?;
    for b in &items {
        let inst = b
            .inst_id
            .or(inst)
            .ok_or_else(|| unsupported("bbo-tbt without instId"))?;
        let best = |v: &[m::Level<'_>]| -> Result<(String, String), ParseError> {
            match v.first() {
                Some(l) => level(l).map(|(p, q)| (p.to_string(), q.to_string())),
                None => Ok((String::new(), String::new())),
            }
        };
        let (bid_price, bid_size) = best(&b.bids)?;
        let (ask_price, ask_size) = best(&b.asks)?;
        out.push(VenueEvent::Record(Normalized::TopOfBook(s::TopOfBook {
            exchange: EXCHANGE.into(),
            symbol: sym(map, inst)?.to_string(),
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            timestamp: b.ts.map(ms_text_to_us).transpose()?,
            event_time: None,
            receipt_time: receipt_us,
            update_id: b.seq_id,
        })));
    }
    Ok(())
}

/// The trade ids an aggregated `trades` message covers: `tradeId` is the last, `count` how
/// many (`tradeId` 123 with `count` 3 covers 121 to 123); `None` when either is not a number.
fn aggregated_ids(trade_id: &str, count: Option<&str>) -> Result<Option<(i64, i64)>, ParseError> {
    let Some(count) = count.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let n: i64 = count
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| unsupported(format!("trade count {count:?}")))?;
    let Ok(last) = trade_id.parse::<i64>() else {
        return Ok(None);
    };
    Ok(last.checked_sub(n - 1).map(|first| (first, last)))
}

fn trades(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    aggregated: bool,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::Trade<'_>> = serde_json::from_str(data)?;
    for t in &items {
        // `side` is the taker's: a taker buy means the seller was the maker.
        let (side, buyer_maker) = match t.side {
            "buy" => (trade::Side::Buy, Some(false)),
            "sell" => (trade::Side::Sell, Some(true)),
            other => return Err(unsupported(format!("trade side {other:?}"))),
        };
        let symbol = sym(map, t.inst_id)?;
        let view = TradeRef {
            exchange: EXCHANGE,
            symbol: &symbol,
            side: side as i32,
            trade_id: IdRef::Text(t.trade_id),
            price: unsigned(t.px)?,
            amount: unsigned(t.sz)?,
            timestamp: ms_text_to_us(t.ts)?,
            trade_type: aggregated.then_some("aggregate"),
            maker: buyer_maker,
            event_time: None,
            match_id: match aggregated {
                true => aggregated_ids(t.trade_id, t.count)?.map(|(a, b)| IdRef::Range(a, b)),
                false => None,
            },
            liquidity_flag: None,
            receipt_time: receipt_us,
        };
        out.push(VenueEvent::Encoded(EncodedRecord::trade(
            EXCHANGE,
            symbol.clone(),
            view,
        )));
    }
    Ok(())
}

fn tickers(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::Ticker<'_>> = serde_json::from_str(data)?;
    for t in &items {
        let spot = match t.inst_type {
            Some(kind) => kind == "SPOT" || kind == "MARGIN",
            None => is_spot(t.inst_id),
        };
        let (volume, quote_volume) = if spot {
            (text(t.vol24h)?, text(t.vol_ccy24h)?)
        } else {
            (text(t.vol_ccy24h)?, String::new())
        };
        out.push(VenueEvent::Record(Normalized::Ticker(s::Ticker {
            exchange: EXCHANGE.into(),
            symbol: sym(map, t.inst_id)?.to_string(),
            bid: text(t.bid_px)?,
            ask: text(t.ask_px)?,
            timestamp: Some(ms_text_to_us(t.ts)?),
            event_time: None,
            receipt_time: receipt_us,
            last: text(t.last)?,
            open: text(t.open24h)?,
            high: text(t.high24h)?,
            low: text(t.low24h)?,
            volume,
            quote_volume,
        })));
    }
    Ok(())
}

fn index_tickers(
    data: &str,
    receipt_us: i64,
    indexes: &Indexes,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::IndexTicker<'_>> = serde_json::from_str(data)?;
    for t in &items {
        // An index no configured derivative takes its funding from: nothing to say.
        let Some(symbols) = indexes.get(t.inst_id) else {
            continue;
        };
        let index_price = unsigned(t.idx_px)?.to_string();
        let timestamp = ms_text_to_us(t.ts)?;
        for symbol in symbols {
            out.push(VenueEvent::Record(Normalized::Funding(s::Funding {
                exchange: EXCHANGE.into(),
                symbol: symbol.to_string(),
                mark_price: String::new(),
                rate: String::new(),
                next_funding_time: None,
                predicted_rate: None,
                timestamp: Some(timestamp),
                event_time: None,
                receipt_time: receipt_us,
                index_price: Some(index_price.clone()),
            })));
        }
    }
    Ok(())
}

fn funding_rate(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::FundingRate<'_>> = serde_json::from_str(data)?;
    for f in &items {
        out.push(VenueEvent::Record(Normalized::Funding(s::Funding {
            exchange: EXCHANGE.into(),
            symbol: sym(map, f.inst_id)?.to_string(),
            mark_price: String::new(),
            rate: opt_signed(f.funding_rate)?.unwrap_or_default(),
            next_funding_time: f
                .funding_time
                .filter(|t| !t.is_empty())
                .map(ms_text_to_us)
                .transpose()?,
            predicted_rate: opt_signed(f.next_funding_rate)?,
            timestamp: f
                .ts
                .filter(|t| !t.is_empty())
                .map(ms_text_to_us)
                .transpose()?,
            event_time: None,
            receipt_time: receipt_us,
            index_price: None,
        })));
    }
    Ok(())
}

fn mark_price(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::MarkPrice<'_>> = serde_json::from_str(data)?;
    for p in &items {
        out.push(VenueEvent::Record(Normalized::Funding(s::Funding {
            exchange: EXCHANGE.into(),
            symbol: sym(map, p.inst_id)?.to_string(),
            mark_price: unsigned(p.mark_px)?.to_string(),
            rate: String::new(),
            next_funding_time: None,
            predicted_rate: None,
            timestamp: Some(ms_text_to_us(p.ts)?),
            event_time: None,
            receipt_time: receipt_us,
            index_price: None,
        })));
    }
    Ok(())
}

fn open_interest(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::OpenInterest<'_>> = serde_json::from_str(data)?;
    for o in &items {
        out.push(VenueEvent::Record(Normalized::OpenInterest(
            s::OpenInterest {
                exchange: EXCHANGE.into(),
                symbol: sym(map, o.inst_id)?.to_string(),
                open_interest: unsigned(o.oi)?.to_string(),
                timestamp: Some(ms_text_to_us(o.ts)?),
                event_time: None,
                receipt_time: receipt_us,
            },
        )));
    }
    Ok(())
}

fn liquidations(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<m::Liquidations<'_>> = serde_json::from_str(data)?;
    for l in &items {
        // The channel streams every instrument of the type: keep the configured ones.
        let Some(symbol) = map.shared(l.inst_id) else {
            continue;
        };
        for d in &l.details {
            let side = match d.side {
                "buy" => liquidation::Side::Buy,
                "sell" => liquidation::Side::Sell,
                other => return Err(unsupported(format!("liquidation side {other:?}"))),
            };
            out.push(VenueEvent::Record(Normalized::Liquidation(
                s::Liquidation {
                    exchange: EXCHANGE.into(),
                    symbol: symbol.to_string(),
                    side: side as i32,
                    quantity: unsigned(d.sz)?.to_string(),
                    price: unsigned(d.bk_px)?.to_string(),
                    id: String::new(),
                    status: String::new(),
                    timestamp: Some(ms_text_to_us(d.ts)?),
                    event_time: None,
                    receipt_time: receipt_us,
                },
            )));
        }
    }
    Ok(())
}

fn candles(
    inst: &str,
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let rows: Vec<Vec<&RawValue>> = serde_json::from_str(data)?;
    let symbol = sym(map, inst)?.to_string();
    for r in &rows {
        let [ts, o, h, l, c, vol, vol_ccy, rest @ ..] = &r[..] else {
            return Err(unsupported("candle with fewer than 7 fields"));
        };
        let start = ms_text_to_us(scalar(ts)?)?;
        let quote = match rest.first() {
            Some(q) => unsigned(q)?.to_string(),
            None => String::new(),
        };
        let (volume, quote_volume) = if is_spot(inst) {
            (
                unsigned(vol)?.to_string(),
                Some(unsigned(vol_ccy)?.to_string()),
            )
        } else {
            (
                unsigned(vol_ccy)?.to_string(),
                Some(quote).filter(|q| !q.is_empty()),
            )
        };
        let closed = match rest.get(1) {
            Some(c) => scalar(c)? == "1",
            None => false,
        };
        out.push(VenueEvent::Record(Normalized::Candle(s::Candle {
            exchange: EXCHANGE.into(),
            symbol: symbol.clone(),
            start,
            stop: start + 60_000_000,
            interval: "1m".into(),
            trades: None,
            open: unsigned(o)?.to_string(),
            close: unsigned(c)?.to_string(),
            high: unsigned(h)?.to_string(),
            low: unsigned(l)?.to_string(),
            volume,
            closed,
            timestamp: None,
            event_time: None,
            receipt_time: receipt_us,
            quote_volume,
        })));
    }
    Ok(())
}
