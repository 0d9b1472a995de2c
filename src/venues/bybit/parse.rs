//! Pure parse functions for Bybit v5 public frames. Units and sides, from Bybit's v5
//! documentation (<https://bybit-exchange.github.io/docs/v5/websocket/public/trade> and the
//! pages beside it):
//!
//! - `publicTrade`: `S` is the **taker's** side; `v` is in the base coin (spot, linear,
//!   option) or in USD contracts (inverse); `T` ms. `maker` (buyer was the maker) is
//!   `S == "Sell"`. Block trades (`BT: true`) get `trade_type` `block`.
//! - `orderbook.N`: levels `[price, size]`, size `"0"` deletes; `u` the topic's update id,
//!   `seq` the cross sequence, `cts` the matching-engine time. Depth 1 (`orderbook.1`) is top
//!   of book: a [`TopOfBook`](s::TopOfBook) per message, and a snapshot repeated with the same
//!   `u` (Bybit resends it after 3 s without change) gives no record.
//! - `tickers`: spot sends full snapshots; linear and inverse send a snapshot then deltas of
//!   the changed fields only. [`ParseState`] keeps the last value of every field per symbol,
//!   so each message gives a complete `Ticker`, a complete `Funding` (when the message
//!   touched a funding field and the instrument has funding: perpetuals) and an
//!   `OpenInterest` (when the message carries `openInterest`; linear in the base coin,
//!   inverse in USD contracts, options in contracts).
//! - `allLiquidation`: `S` is the side of the **liquidated position** (`Buy`: a long was
//!   liquidated), so the liquidation order is the other side.
//! - `kline.N`: `start`/`end` (the interval's last ms) kept as sent, `volume` in the base
//!   coin (inverse: contracts), `turnover` in the quote coin (inverse: base coin); `confirm`
//!   closes the candle.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::messages::{Book, Envelope, Kline, Level, Liquidation, Ticker, Trade};
use super::EXCHANGE;
use crate::book::{Diff, Levels, Snapshot};
use crate::schema::borrowed::{EncodedRecord, IdRef, TradeRef};
use crate::schema::v2beta1::{liquidation, trade};
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::unsigned_level;
use crate::venues::json::{ms_text_to_us, ms_to_us, scalar, signed, symbol, unsigned};
use crate::venues::{ParseError, SymbolMap, VenueEvent};

/// What a frame meant to the session, besides the events it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Market data (or nothing new: a repeated depth-1 snapshot).
    Data,
    /// An answer to a `subscribe` or `unsubscribe` request.
    Answer {
        /// `subscribe` or `unsubscribe`.
        op: String,
        /// Whether it succeeded.
        success: bool,
        /// The request id echoed, when one was sent.
        req_id: Option<String>,
        /// The venue's message (an error text on failure).
        msg: String,
    },
    /// The answer to a `ping`.
    Pong,
}

/// The last value of every ticker field of one symbol (Bybit's linear and inverse tickers
/// are deltas). `""` where Bybit has not sent the field (or sends `""`: funding of futures).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickerFields {
    /// Last price.
    pub last: String,
    /// 24 h high.
    pub high: String,
    /// 24 h low.
    pub low: String,
    /// Price 24 h ago (the rolling window's open).
    pub prev_24h: String,
    /// 24 h volume.
    pub volume: String,
    /// 24 h turnover.
    pub turnover: String,
    /// Best bid.
    pub bid: String,
    /// Best bid size.
    pub bid_size: String,
    /// Best ask.
    pub ask: String,
    /// Best ask size.
    pub ask_size: String,
    /// Mark price.
    pub mark: String,
    /// Index price.
    pub index: String,
    /// Open interest.
    pub open_interest: String,
    /// Funding rate.
    pub funding_rate: String,
    /// Next funding time, ms text.
    pub next_funding: String,
}

/// What parsing remembers between frames of one connection: the tickers' last values and the
/// last top of book (depth 1) per venue symbol.
#[derive(Debug, Clone, Default)]
pub struct ParseState {
    tickers: HashMap<String, TickerFields>,
    tops: HashMap<String, Top>,
}

#[derive(Debug, Clone, Default)]
struct Top {
    u: i64,
    bid: (String, String),
    ask: (String, String),
}

impl ParseState {
    /// Nothing remembered.
    pub fn new() -> ParseState {
        ParseState::default()
    }

    /// The ticker fields kept for `venue_symbol`.
    pub fn ticker(&self, venue_symbol: &str) -> Option<&TickerFields> {
        self.tickers.get(venue_symbol)
    }

    /// Forgets everything (a new connection sends fresh snapshots).
    pub fn clear(&mut self) {
        self.tickers.clear();
        self.tops.clear();
    }
}

/// The `{"op":"ping"}` heartbeat.
pub const PING: &str = r#"{"op":"ping"}"#;

/// A `subscribe` or `unsubscribe` request for `topics`, with a request id.
pub fn request(op: &str, topics: &[String], req_id: &str) -> String {
    serde_json::json!({ "op": op, "args": topics, "req_id": req_id }).to_string()
}

fn us(ms: Option<i64>) -> Result<Option<i64>, ParseError> {
    ms.map(ms_to_us).transpose()
}

/// Parses one frame; records, diffs and snapshots go to `out`.
pub fn parse_frame(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    state: &mut ParseState,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    let env: Envelope<'_> = serde_json::from_str(text)?;
    if let Some(op) = env.op {
        return match op {
            "subscribe" | "unsubscribe" => Ok(Control::Answer {
                op: op.to_string(),
                success: env.success.unwrap_or(false),
                req_id: env.req_id.filter(|r| !r.is_empty()),
                msg: env.ret_msg.unwrap_or_default(),
            }),
            // Spot/linear/inverse answer `op: "ping"` with `ret_msg: "pong"`; options `op: "pong"`.
            "ping" | "pong" => Ok(Control::Pong),
            other => Err(ParseError::Unsupported(format!(
                "op {}",
                other.chars().take(32).collect::<String>()
            ))),
        };
    }
    let topic = env
        .topic
        .ok_or_else(|| ParseError::Unsupported("message without topic or op".into()))?;
    let data = env
        .data
        .ok_or_else(|| ParseError::Unsupported("message without data".into()))?
        .get();
    let (channel, rest) = topic.split_once('.').unwrap_or((topic, ""));
    let ts = us(env.ts)?;
    match channel {
        "orderbook" => {
            let (depth, _) = rest.split_once('.').unwrap_or((rest, ""));
            let b: Book<'_> = serde_json::from_str(data)?;
            let cts = us(env.cts)?;
            if depth == "1" {
                top_of_book(&b, env.kind, ts, cts, receipt_us, map, state, out)?;
            } else {
                book(&b, env.kind, ts, cts, receipt_us, map, out)?;
            }
        }
        "publicTrade" => trades(data, ts, receipt_us, map, out)?,
        "tickers" => ticker(data, env.kind, ts, receipt_us, map, state, out)?,
        "allLiquidation" | "liquidation" => liquidations(data, ts, receipt_us, map, out)?,
        "kline" => {
            let (_, sym) = rest.split_once('.').unwrap_or(("", rest));
            klines(data, sym, ts, receipt_us, map, out)?;
        }
        other => {
            return Err(ParseError::Unsupported(
                other.chars().take(32).collect::<String>(),
            ))
        }
    }
    Ok(Control::Data)
}

fn level_texts(levels: &[Level<'_>]) -> Result<Vec<(String, String)>, ParseError> {
    levels
        .iter()
        .map(|(p, q)| Ok((unsigned(p)?.to_string(), unsigned(q)?.to_string())))
        .collect()
}

fn level_refs<'a>(levels: &[Level<'a>]) -> Result<Levels, ParseError> {
    let mut out = Levels::default();
    for (p, q) in levels {
        // Checked and keyed for the book in one pass over each decimal.
        let (p, q) = (scalar(p)?, scalar(q)?);
        out.push_keyed(p, q, unsigned_level(p, q)?);
    }
    Ok(out)
}

fn book(
    b: &Book<'_>,
    kind: Option<&str>,
    ts: Option<i64>,
    cts: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let symbol = symbol(map, b.s)?;
    match kind {
        Some("snapshot") => out.push(VenueEvent::Snapshot {
            symbol: symbol.to_string(),
            snapshot: Snapshot {
                last_update_id: b.u,
                bids: level_texts(&b.b)?,
                asks: level_texts(&b.a)?,
                checksum: None,
            },
        }),
        Some("delta") => out.push(VenueEvent::Diff {
            symbol,
            diff: Diff {
                first: b.u,
                last: b.u,
                prev: None,
                bids: level_refs(&b.b)?,
                asks: level_refs(&b.a)?,
                checksum: None,
                event_time: ts,
                timestamp: cts,
                receipt_time: receipt_us,
            },
        }),
        other => {
            return Err(ParseError::Unsupported(format!(
                "book message type {}",
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

/// Depth 1: the best level of each side. A snapshot replaces both sides (an empty side is
/// empty); a delta replaces the sides it carries (size `"0"` empties one). A message with the
/// `u` already seen gives no record.
#[allow(clippy::too_many_arguments)]
fn top_of_book(
    b: &Book<'_>,
    kind: Option<&str>,
    ts: Option<i64>,
    cts: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    state: &mut ParseState,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let symbol = symbol(map, b.s)?.to_string();
    let snapshot = match kind {
        Some("snapshot") => true,
        Some("delta") => false,
        other => {
            return Err(ParseError::Unsupported(format!(
                "book message type {}",
                other
                    .unwrap_or("(none)")
                    .chars()
                    .take(16)
                    .collect::<String>()
            )))
        }
    };
    let side = |levels: &[Level<'_>]| -> Result<Option<(String, String)>, ParseError> {
        match levels.first() {
            Some((p, q)) => {
                let (p, q) = (unsigned(p)?, unsigned(q)?);
                if q.bytes().all(|c| c == b'0' || c == b'.') {
                    Ok(Some((String::new(), String::new())))
                } else {
                    Ok(Some((p.to_string(), q.to_string())))
                }
            }
            None if snapshot => Ok(Some((String::new(), String::new()))),
            None => Ok(None),
        }
    };
    let (bid, ask) = (side(&b.b)?, side(&b.a)?);
    let top = state.tops.entry(b.s.to_string()).or_default();
    if top.u == b.u && b.u != 0 {
        return Ok(());
    }
    top.u = b.u;
    if let Some(bid) = bid {
        top.bid = bid;
    }
    if let Some(ask) = ask {
        top.ask = ask;
    }
    out.push(VenueEvent::Record(Normalized::TopOfBook(s::TopOfBook {
        exchange: EXCHANGE.into(),
        symbol,
        bid_price: top.bid.0.clone(),
        bid_size: top.bid.1.clone(),
        ask_price: top.ask.0.clone(),
        ask_size: top.ask.1.clone(),
        timestamp: cts.or(ts),
        event_time: ts,
        receipt_time: receipt_us,
        update_id: Some(b.u),
    })));
    Ok(())
}

fn push_trade(
    sym: Arc<str>,
    trade: TradeRef<'_>,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    out.push(VenueEvent::Encoded(EncodedRecord::trade(
        EXCHANGE, sym, trade,
    )));
    Ok(())
}

fn trades(
    data: &str,
    ts: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<Trade<'_>> = serde_json::from_str(data)?;
    for t in &items {
        let (side, maker) = match t.side {
            "Buy" => (trade::Side::Buy, Some(false)),
            "Sell" => (trade::Side::Sell, Some(true)),
            _ => (trade::Side::Unspecified, None),
        };
        if t.i.is_empty() || t.i.len() > 64 {
            return Err(ParseError::Unsupported("trade id".into()));
        }
        let view = TradeRef {
            exchange: EXCHANGE,
            symbol: "",
            side: side as i32,
            trade_id: IdRef::Text(t.i),
            price: unsigned(t.p)?,
            amount: unsigned(t.v)?,
            timestamp: ms_to_us(t.time)?,
            trade_type: t.block.then_some("block"),
            maker,
            event_time: ts,
            match_id: None,
            liquidity_flag: None,
            receipt_time: receipt_us,
        };
        push_trade(symbol(map, t.s)?, view, out)?;
    }
    Ok(())
}

fn liquidations(
    data: &str,
    ts: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<Liquidation<'_>> = serde_json::from_str(data)?;
    for l in &items {
        // The liquidated position's side; the liquidation order is the other one.
        let side = match l.side {
            "Buy" => liquidation::Side::Sell,
            "Sell" => liquidation::Side::Buy,
            _ => liquidation::Side::Unspecified,
        };
        out.push(VenueEvent::Record(Normalized::Liquidation(
            s::Liquidation {
                exchange: EXCHANGE.into(),
                symbol: symbol(map, l.s)?.to_string(),
                side: side as i32,
                quantity: unsigned(l.v)?.into(),
                price: unsigned(l.p)?.into(),
                id: String::new(),
                status: String::new(),
                timestamp: Some(ms_to_us(l.time)?),
                event_time: ts,
                receipt_time: receipt_us,
            },
        )));
    }
    Ok(())
}

/// `1` → `1m`, `60` → `60m`, `D` → `1d`, `W` → `1w`, `M` → `1M`.
fn interval_name(i: &str) -> Result<(String, Option<i64>), ParseError> {
    match i {
        "D" => Ok(("1d".into(), None)),
        "W" => Ok(("1w".into(), None)),
        "M" => Ok(("1M".into(), None)),
        n if !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()) => {
            let m: i64 = n
                .parse()
                .map_err(|_| ParseError::Unsupported("interval".into()))?;
            Ok((format!("{m}m"), Some(m)))
        }
        _ => Err(ParseError::Unsupported("kline interval".into())),
    }
}

fn klines(
    data: &str,
    topic_symbol: &str,
    ts: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let items: Vec<Kline<'_>> = serde_json::from_str(data)?;
    let sym = symbol(map, topic_symbol)?;
    for k in &items {
        let (interval, _) = interval_name(k.interval)?;
        out.push(VenueEvent::Record(Normalized::Candle(s::Candle {
            exchange: EXCHANGE.into(),
            symbol: sym.to_string(),
            start: ms_to_us(k.start)?,
            stop: ms_to_us(k.end)?,
            interval,
            trades: None,
            open: unsigned(k.open)?.into(),
            close: unsigned(k.close)?.into(),
            high: unsigned(k.high)?.into(),
            low: unsigned(k.low)?.into(),
            volume: unsigned(k.volume)?.into(),
            closed: k.confirm,
            timestamp: us(k.timestamp)?,
            event_time: ts,
            receipt_time: receipt_us,
            quote_volume: k
                .turnover
                .map(|t| unsigned(t).map(str::to_string))
                .transpose()?,
        })));
    }
    Ok(())
}

/// A ticker field's text, checked (`""` kept: Bybit's "not applicable").
fn field(raw: Option<&RawValue>, may_be_negative: bool) -> Result<Option<String>, ParseError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = scalar(raw)?;
    if t.is_empty() {
        return Ok(Some(String::new()));
    }
    let t = if may_be_negative {
        signed(raw)?
    } else {
        unsigned(raw)?
    };
    Ok(Some(t.to_string()))
}

fn set(slot: &mut String, v: Option<String>) -> bool {
    match v {
        Some(v) => {
            *slot = v;
            true
        }
        None => false,
    }
}

fn ticker(
    data: &str,
    kind: Option<&str>,
    ts: Option<i64>,
    receipt_us: i64,
    map: &SymbolMap,
    state: &mut ParseState,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let t: Ticker<'_> = serde_json::from_str(data)?;
    let sym = symbol(map, t.symbol)?.to_string();
    let next_funding = match t.next_funding_time.map(scalar).transpose()? {
        Some("") => Some(String::new()),
        Some(ms) => {
            ms_text_to_us(ms)?;
            Some(ms.to_string())
        }
        None => None,
    };
    // Check every field before touching the kept state.
    let fields = [
        field(t.last_price, false)?,
        field(t.high_price_24h, false)?,
        field(t.low_price_24h, false)?,
        field(t.prev_price_24h, false)?,
        field(t.volume_24h, false)?,
        field(t.turnover_24h, false)?,
        field(t.bid1_price, false)?,
        field(t.bid1_size, false)?,
        field(t.ask1_price, false)?,
        field(t.ask1_size, false)?,
        field(t.mark_price, false)?,
        field(t.index_price, false)?,
        field(t.open_interest, false)?,
        field(t.funding_rate, true)?,
        next_funding,
    ];
    let f = match kind {
        Some("snapshot") => {
            let f = state.tickers.entry(t.symbol.to_string()).or_default();
            *f = TickerFields::default();
            f
        }
        Some("delta") => state.tickers.entry(t.symbol.to_string()).or_default(),
        other => {
            return Err(ParseError::Unsupported(format!(
                "ticker message type {}",
                other
                    .unwrap_or("(none)")
                    .chars()
                    .take(16)
                    .collect::<String>()
            )))
        }
    };
    let [last, high, low, prev, volume, turnover, bid, bid_size, ask, ask_size, mark, index, oi, rate, next] =
        fields;
    set(&mut f.last, last);
    set(&mut f.high, high);
    set(&mut f.low, low);
    set(&mut f.prev_24h, prev);
    set(&mut f.volume, volume);
    set(&mut f.turnover, turnover);
    set(&mut f.bid, bid);
    set(&mut f.bid_size, bid_size);
    set(&mut f.ask, ask);
    set(&mut f.ask_size, ask_size);
    let mut funding_touched = set(&mut f.mark, mark);
    funding_touched |= set(&mut f.index, index);
    let oi_sent = set(&mut f.open_interest, oi);
    funding_touched |= set(&mut f.funding_rate, rate);
    funding_touched |= set(&mut f.next_funding, next);
    out.push(VenueEvent::Record(Normalized::Ticker(s::Ticker {
        exchange: EXCHANGE.into(),
        symbol: sym.clone(),
        bid: f.bid.clone(),
        ask: f.ask.clone(),
        timestamp: ts,
        event_time: None,
        receipt_time: receipt_us,
        last: f.last.clone(),
        open: f.prev_24h.clone(),
        high: f.high.clone(),
        low: f.low.clone(),
        volume: f.volume.clone(),
        quote_volume: f.turnover.clone(),
    })));
    if funding_touched && !f.funding_rate.is_empty() {
        out.push(VenueEvent::Record(Normalized::Funding(s::Funding {
            exchange: EXCHANGE.into(),
            symbol: sym.clone(),
            mark_price: f.mark.clone(),
            rate: f.funding_rate.clone(),
            next_funding_time: if f.next_funding.is_empty() {
                None
            } else {
                Some(ms_text_to_us(&f.next_funding)?)
            },
            predicted_rate: None,
            timestamp: ts,
            event_time: None,
            receipt_time: receipt_us,
            index_price: (!f.index.is_empty()).then(|| f.index.clone()),
        })));
    }
    if oi_sent && !f.open_interest.is_empty() {
        out.push(VenueEvent::Record(Normalized::OpenInterest(
            s::OpenInterest {
                exchange: EXCHANGE.into(),
                symbol: sym,
                open_interest: f.open_interest.clone(),
                timestamp: ts,
                event_time: None,
                receipt_time: receipt_us,
            },
        )));
    }
    Ok(())
}
