//! Pure parse functions of BitMEX frames. The only state is [`ParseState`]: per book, the
//! rows seen (`id → price`, since 2021 updates and deletes carry no price), and the
//! instrument and liquidation fields merged from partial updates.
//!
//! Units: sizes are **contracts** as BitMEX sends them (`XBTUSD`: 1 contract = 1 USD,
//! inverse; linear `…USDT`: contracts of the instrument's `underlyingToPositionMultiplier`;
//! quanto `ETHUSD`: contracts of a fixed XBT multiplier). They are carried as sent, never
//! converted to coins (the coin `homeNotional` BitMEX adds is a float and is not used).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::messages::*;
use super::EXCHANGE;
use crate::book::{Diff, Levels, Snapshot};
use crate::schema::borrowed::{EncodedRecord, IdRef, TradeRef};
use crate::schema::v2beta1::{liquidation, trade};
use crate::schema::{self as s, Normalized};
use crate::venues::json::{rfc3339_to_us, scalar, symbol};
use crate::venues::{decimal, ParseError, SymbolMap, VenueEvent};

/// The client heartbeat (BitMEX answers the text `pong`).
pub const PING: &str = "ping";

/// What a frame was, besides the events it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A table message (records, diffs, snapshots, or nothing for rows dropped).
    Data,
    /// `{"success":true,"subscribe":topic}`.
    Subscribed(String),
    /// `{"success":true,"unsubscribe":topic}`.
    Unsubscribed(String),
    /// The welcome message.
    Welcome,
    /// `pong`.
    Pong,
}

/// One book side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookSide {
    /// `Buy`.
    Bid,
    /// `Sell`.
    Ask,
}

fn side_of(s: &str) -> Result<BookSide, ParseError> {
    match s {
        "Buy" => Ok(BookSide::Bid),
        "Sell" => Ok(BookSide::Ask),
        other => Err(ParseError::Unsupported(format!(
            "book side {:?}",
            other.chars().take(16).collect::<String>()
        ))),
    }
}

/// The rows of one symbol's `orderBookL2`: (id, side) → price text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdBook {
    rows: HashMap<(u64, BookSide), String>,
}

impl IdBook {
    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The price of a row.
    pub fn price(&self, id: u64, side: BookSide) -> Option<&str> {
        self.rows.get(&(id, side)).map(String::as_str)
    }
}

/// Instrument fields merged from partial updates.
#[derive(Debug, Clone, Default)]
struct InstrumentState {
    mark: Option<String>,
    index: Option<String>,
    rate: Option<String>,
    predicted: Option<String>,
    next_funding: Option<i64>,
}

/// An open liquidation order.
#[derive(Debug, Clone, Default)]
struct LiquidationState {
    side: i32,
    price: String,
    qty: String,
}

/// Open liquidation orders remembered at most (older ones are forgotten).
pub const MAX_LIQUIDATIONS: usize = 10_000;

/// What parsing keeps between frames of one connection.
#[derive(Debug, Clone)]
pub struct ParseState {
    /// Venue symbol → its book rows; absent until its `partial` (rows before it are dropped).
    books: HashMap<String, IdBook>,
    instruments: HashMap<String, InstrumentState>,
    liquidations: HashMap<String, LiquidationState>,
    /// Whether `instrument` rows produce `Funding` records.
    pub funding: bool,
    /// Whether `instrument` rows produce `OpenInterest` records.
    pub open_interest: bool,
}

impl Default for ParseState {
    fn default() -> Self {
        ParseState {
            books: HashMap::new(),
            instruments: HashMap::new(),
            liquidations: HashMap::new(),
            funding: true,
            open_interest: true,
        }
    }
}

impl ParseState {
    /// A state producing every record kind.
    pub fn new() -> ParseState {
        ParseState::default()
    }

    /// Forgets a book: its rows are dropped until its next `partial`.
    pub fn forget_book(&mut self, venue_symbol: &str) {
        self.books.remove(venue_symbol);
    }

    /// Forgets everything of the connection (a new connection starts from partials).
    pub fn clear(&mut self) {
        self.books.clear();
        self.instruments.clear();
        self.liquidations.clear();
    }

    /// The rows of a book, once its `partial` arrived.
    pub fn book(&self, venue_symbol: &str) -> Option<&IdBook> {
        self.books.get(venue_symbol)
    }
}

fn bad(text: &str) -> ParseError {
    ParseError::BadDecimal(text.chars().take(48).collect())
}

/// A number literal in plain decimal form: BitMEX's JSON writes small and large floats with
/// an exponent (`1e-7`, `-2.5e-05`); they are rewritten exactly, by moving the point in the
/// text. Exponents beyond ±40 are refused.
pub fn plain(text: &str) -> Result<Cow<'_, str>, ParseError> {
    let Some(e) = text.find(['e', 'E']) else {
        return Ok(Cow::Borrowed(text));
    };
    let (mant, exp) = (&text[..e], &text[e + 1..]);
    let exp: i32 = exp
        .strip_prefix('+')
        .unwrap_or(exp)
        .parse()
        .map_err(|_| bad(text))?;
    if !(-40..=40).contains(&exp) {
        return Err(bad(text));
    }
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad(text));
    }
    let digits: String = format!("{int}{frac}");
    // Position of the point from the start of `digits`.
    let point = int.len() as i32 + exp;
    let mut out = String::with_capacity(digits.len() + 44);
    if neg {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..(-point) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        for _ in 0..(point as usize - digits.len()) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    // Strip redundant leading zeros of the integer part ("007.5" → "7.5").
    let body = out.trim_start_matches('-');
    let trimmed = body.trim_start_matches('0');
    let body = if trimmed.is_empty() || trimmed.starts_with('.') {
        format!("0{trimmed}")
    } else {
        trimmed.to_string()
    };
    let body = if body.contains('.') {
        body.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        body
    };
    Ok(Cow::Owned(if neg { format!("-{body}") } else { body }))
}

/// An unsigned exact decimal from a JSON literal (prices, sizes).
pub fn unsigned(raw: &RawValue) -> Result<Cow<'_, str>, ParseError> {
    let p = plain(scalar(raw)?)?;
    decimal::unsigned(&p)?;
    Ok(p)
}

/// A signed exact decimal from a JSON literal (funding rates).
pub fn signed(raw: &RawValue) -> Result<Cow<'_, str>, ParseError> {
    let p = plain(scalar(raw)?)?;
    decimal::signed(&p)?;
    Ok(p)
}

fn opt_unsigned(raw: Option<&RawValue>) -> Result<Option<String>, ParseError> {
    raw.map(|r| unsigned(r).map(Cow::into_owned)).transpose()
}

fn opt_signed(raw: Option<&RawValue>) -> Result<Option<String>, ParseError> {
    raw.map(|r| signed(r).map(Cow::into_owned)).transpose()
}

/// The symbol of a topic (`orderBookL2:XBTUSD` → `XBTUSD`).
pub fn topic_symbol(topic: &str) -> Option<&str> {
    topic.split_once(':').map(|(_, s)| s)
}

/// Parses one BitMEX text frame; records, diffs and snapshots go to `out`.
pub fn parse_frame(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    state: &mut ParseState,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    let t = text.trim();
    if t == "pong" {
        return Ok(Control::Pong);
    }
    let env: Envelope<'_> = serde_json::from_str(t)?;
    if let Some(table) = env.table {
        let action = env.action.unwrap_or_default();
        let data = env.data.map(RawValue::get).unwrap_or("[]");
        match table {
            "orderBookL2" | "orderBookL2_25" => {
                let filter = env.filter.as_ref().and_then(|f| f.symbol.as_deref());
                book(action, data, filter, receipt_us, map, state, out)?
            }
            "trade" => trades(action, data, receipt_us, map, out)?,
            "quote" => quotes(data, receipt_us, map, out)?,
            "instrument" => instruments(data, receipt_us, map, state, out)?,
            "liquidation" => liquidations(action, data, receipt_us, map, state, out)?,
            "tradeBin1m" => bins(action, data, receipt_us, map, out)?,
            other => {
                return Err(ParseError::Unsupported(
                    other.chars().take(32).collect::<String>(),
                ))
            }
        }
        return Ok(Control::Data);
    }
    if env.success == Some(true) {
        if let Some(t) = env.subscribe {
            return Ok(Control::Subscribed(t.into_owned()));
        }
        if let Some(t) = env.unsubscribe {
            return Ok(Control::Unsubscribed(t.into_owned()));
        }
    }
    if let Some(error) = env.error {
        let topics: Vec<String> = env
            .request
            .as_ref()
            .and_then(|r| r.args.as_ref())
            .map(|a| a.topics().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        if error.contains("already subscribed") {
            // A resubscribe raced the unsubscribe: the topic is live.
            if let [t] = topics.as_slice() {
                return Ok(Control::Subscribed(t.clone()));
            }
        }
        let symbols: Vec<&str> = topics.iter().filter_map(|t| topic_symbol(t)).collect();
        let code = env.status.unwrap_or(0);
        if let Some(first) = symbols.first() {
            if (code == 400 || code == 0) && symbols.iter().all(|s| s == first) {
                return Err(ParseError::Refused {
                    symbol: map.normalized(first).unwrap_or(first).to_string(),
                    msg: error.chars().take(200).collect(),
                });
            }
        }
        return Err(ParseError::Venue {
            code,
            msg: error.chars().take(200).collect(),
        });
    }
    if env.info.is_some() {
        return Ok(Control::Welcome);
    }
    Err(ParseError::Unsupported("message without table".into()))
}

/// One symbol's diff being built from a message's rows.
struct Pending<'a> {
    venue: &'a str,
    bids: Levels,
    asks: Levels,
    time: Option<i64>,
    broken: bool,
}

#[allow(clippy::too_many_arguments)]
fn book(
    action: &str,
    data: &str,
    filter: Option<&str>,
    receipt_us: i64,
    map: &SymbolMap,
    state: &mut ParseState,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let rows: Vec<BookRow<'_>> = serde_json::from_str(data)?;
    if action == "partial" {
        return partial(&rows, filter, map, state, out);
    }
    let kind = match action {
        "insert" | "update" | "delete" => action,
        other => return Err(ParseError::Unsupported(format!("orderBookL2 {other:.16}"))),
    };
    // Check every row first: a frame is applied whole or not at all.
    let mut checked: Vec<(Cow<'_, str>, Option<Cow<'_, str>>, BookSide)> =
        Vec::with_capacity(rows.len());
    for r in &rows {
        let side = side_of(r.side)?;
        let size = match (kind, r.size) {
            ("delete", _) => Cow::Borrowed("0"),
            (_, Some(sz)) => unsigned(sz)?,
            (_, None) => return Err(bad("missing size")),
        };
        let price = r.price.map(unsigned).transpose()?;
        if kind == "insert" && price.is_none() {
            return Err(bad("insert without price"));
        }
        checked.push((size, price, side));
    }
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for (r, (size, price, side)) in rows.iter().zip(checked) {
        let at = match pending.iter().position(|p| p.venue == r.symbol) {
            Some(i) => i,
            None => {
                pending.push(Pending {
                    venue: r.symbol,
                    bids: Levels::default(),
                    asks: Levels::default(),
                    time: None,
                    broken: false,
                });
                pending.len() - 1
            }
        };
        let p = &mut pending[at];
        if p.broken {
            continue;
        }
        // Before its partial (or after a break), a book's rows are dropped.
        let Some(idbook) = state.books.get_mut(r.symbol) else {
            p.broken = true;
            continue;
        };
        if let Some(t) = r.timestamp {
            let t = rfc3339_to_us(t)?;
            p.time = Some(p.time.map_or(t, |x| x.max(t)));
        }
        let levels = match side {
            BookSide::Bid => &mut p.bids,
            BookSide::Ask => &mut p.asks,
        };
        let key = (r.id, side);
        let known = idbook.rows.get(&key);
        match (kind, known) {
            ("insert", None) => {
                let price = price.unwrap_or_default();
                levels.push(&price, &size);
                idbook.rows.insert(key, price.into_owned());
            }
            ("update", Some(old)) => match price {
                Some(new) if new.as_ref() != old.as_str() => {
                    // The row moved (the 2023 API sends every row's price): the old level
                    // goes, the new one comes.
                    levels.push(old, "0");
                    levels.push(&new, &size);
                    idbook.rows.insert(key, new.into_owned());
                }
                _ => levels.push(old, &size),
            },
            ("delete", Some(old)) => {
                levels.push(old, "0");
                idbook.rows.remove(&key);
            }
            (_, known) => {
                let why = if known.is_some() {
                    "insert of a known"
                } else {
                    "unknown"
                };
                let normalized = symbol(map, r.symbol)?;
                state.books.remove(r.symbol);
                p.broken = true;
                p.bids = Levels::default();
                p.asks = Levels::default();
                out.push(VenueEvent::Resync {
                    symbol: Some(normalized.to_string()),
                    reason: format!(
                        "orderBookL2 {kind} of {why} row id {} ({})",
                        r.id,
                        match side {
                            BookSide::Bid => "Buy",
                            BookSide::Ask => "Sell",
                        }
                    ),
                });
            }
        }
    }
    for p in pending {
        if p.bids.is_empty() && p.asks.is_empty() {
            continue;
        }
        let normalized = symbol(map, p.venue)?;
        out.push(VenueEvent::Diff {
            symbol: normalized,
            diff: Diff {
                bids: p.bids,
                asks: p.asks,
                event_time: p.time,
                timestamp: p.time,
                receipt_time: receipt_us,
                ..Diff::default()
            },
        });
    }
    Ok(())
}

fn partial(
    rows: &[BookRow<'_>],
    filter: Option<&str>,
    map: &SymbolMap,
    state: &mut ParseState,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let mut symbols: Vec<&str> = Vec::new();
    if let Some(f) = filter {
        symbols.push(f);
    }
    for r in rows {
        if !symbols.contains(&r.symbol) {
            symbols.push(r.symbol);
        }
    }
    for venue in symbols {
        let normalized = symbol(map, venue)?;
        let mut idbook = IdBook::default();
        let mut snapshot = Snapshot::default();
        for r in rows.iter().filter(|r| r.symbol == venue) {
            let side = side_of(r.side)?;
            let price = r
                .price
                .map(unsigned)
                .transpose()?
                .ok_or_else(|| bad("partial row without price"))?;
            let size = r
                .size
                .map(unsigned)
                .transpose()?
                .ok_or_else(|| bad("partial row without size"))?;
            let level = (price.to_string(), size.into_owned());
            match side {
                BookSide::Bid => snapshot.bids.push(level),
                BookSide::Ask => snapshot.asks.push(level),
            }
            idbook.rows.insert((r.id, side), price.into_owned());
        }
        state.books.insert(venue.to_string(), idbook);
        out.push(VenueEvent::Snapshot {
            symbol: normalized.to_string(),
            snapshot,
        });
    }
    Ok(())
}

fn trades(
    action: &str,
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    // The partial repeats the last trades before the subscription: not new prints (a
    // resubscribe would duplicate them).
    if action == "partial" {
        return Ok(());
    }
    let rows: Vec<TradeRow<'_>> = serde_json::from_str(data)?;
    for r in &rows {
        // BitMEX's `side` is the taker's (the aggressor); settlement prints have none.
        let side = match r.side {
            Some("Buy") => trade::Side::Buy,
            Some("Sell") => trade::Side::Sell,
            _ => trade::Side::Unspecified,
        };
        let price = unsigned(r.price)?;
        let amount = unsigned(r.size)?;
        let symbol = symbol(map, r.symbol)?;
        let view = TradeRef {
            exchange: EXCHANGE,
            symbol: &symbol,
            side: side as i32,
            trade_id: IdRef::Text(r.trd_match_id.unwrap_or_default()),
            price: &price,
            amount: &amount,
            timestamp: rfc3339_to_us(r.timestamp)?,
            trade_type: r.trd_type,
            maker: match side {
                trade::Side::Buy => Some(false),
                trade::Side::Sell => Some(true),
                trade::Side::Unspecified => None,
            },
            event_time: None,
            match_id: None,
            liquidity_flag: None,
            receipt_time: receipt_us,
        };
        out.push(VenueEvent::Encoded(EncodedRecord::trade(
            EXCHANGE,
            Arc::clone(&symbol),
            view,
        )));
    }
    Ok(())
}

fn quotes(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let rows: Vec<QuoteRow<'_>> = serde_json::from_str(data)?;
    for r in &rows {
        let ts = rfc3339_to_us(r.timestamp)?;
        out.push(VenueEvent::Record(Normalized::TopOfBook(s::TopOfBook {
            exchange: EXCHANGE.into(),
            symbol: symbol(map, r.symbol)?.to_string(),
            // An empty side is null: written as "".
            bid_price: opt_unsigned(r.bid_price)?.unwrap_or_default(),
            bid_size: opt_unsigned(r.bid_size)?.unwrap_or_default(),
            ask_price: opt_unsigned(r.ask_price)?.unwrap_or_default(),
            ask_size: opt_unsigned(r.ask_size)?.unwrap_or_default(),
            timestamp: Some(ts),
            event_time: None,
            receipt_time: receipt_us,
            update_id: None,
        })));
    }
    Ok(())
}

fn instruments(
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    state: &mut ParseState,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let rows: Vec<InstrumentRow<'_>> = serde_json::from_str(data)?;
    for r in &rows {
        // The instrument table lists every instrument when subscribed without a symbol.
        let Some(normalized) = map.shared(r.symbol) else {
            continue;
        };
        let ts = r.timestamp.map(rfc3339_to_us).transpose()?;
        let mark = opt_unsigned(r.mark_price)?;
        let index = opt_unsigned(r.indicative_settle_price)?;
        let rate = opt_signed(r.funding_rate)?;
        let predicted = opt_signed(r.indicative_funding_rate)?;
        let next = r.funding_timestamp.map(rfc3339_to_us).transpose()?;
        let oi = opt_unsigned(r.open_interest)?;
        let changed = mark.is_some()
            || index.is_some()
            || rate.is_some()
            || predicted.is_some()
            || next.is_some();
        let st = state.instruments.entry(r.symbol.to_string()).or_default();
        if let Some(v) = mark {
            st.mark = Some(v);
        }
        if let Some(v) = index {
            st.index = Some(v);
        }
        if let Some(v) = rate {
            st.rate = Some(v);
        }
        if let Some(v) = predicted {
            st.predicted = Some(v);
        }
        if next.is_some() {
            st.next_funding = next;
        }
        if state.funding && changed {
            if let (Some(mark), Some(rate)) = (&st.mark, &st.rate) {
                out.push(VenueEvent::Record(Normalized::Funding(s::Funding {
                    exchange: EXCHANGE.into(),
                    symbol: normalized.to_string(),
                    mark_price: mark.clone(),
                    rate: rate.clone(),
                    next_funding_time: st.next_funding,
                    predicted_rate: st.predicted.clone(),
                    timestamp: ts,
                    event_time: None,
                    receipt_time: receipt_us,
                    index_price: st.index.clone(),
                })));
            }
        }
        if state.open_interest {
            if let Some(oi) = oi {
                out.push(VenueEvent::Record(Normalized::OpenInterest(
                    s::OpenInterest {
                        exchange: EXCHANGE.into(),
                        symbol: normalized.to_string(),
                        open_interest: oi,
                        timestamp: ts,
                        event_time: None,
                        receipt_time: receipt_us,
                    },
                )));
            }
        }
    }
    Ok(())
}

fn liquidations(
    action: &str,
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    state: &mut ParseState,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let rows: Vec<LiquidationRow<'_>> = serde_json::from_str(data)?;
    for r in &rows {
        let normalized = symbol(map, r.symbol)?;
        let side = match r.side {
            Some("Buy") => Some(liquidation::Side::Buy as i32),
            Some("Sell") => Some(liquidation::Side::Sell as i32),
            _ => None,
        };
        let price = opt_unsigned(r.price)?;
        let qty = opt_unsigned(r.leaves_qty)?;
        let status = match action {
            // Orders open when subscribing: remembered, not announced again.
            "partial" => None,
            "insert" => Some("new"),
            "update" => Some("update"),
            "delete" => Some("closed"),
            other => return Err(ParseError::Unsupported(format!("liquidation {other:.16}"))),
        };
        let known = state.liquidations.remove(r.order_id);
        let mut st = known.unwrap_or_default();
        if let Some(sd) = side {
            st.side = sd;
        }
        if let Some(p) = price {
            st.price = p;
        }
        if let Some(q) = qty {
            st.qty = q;
        }
        if let Some(status) = status {
            out.push(VenueEvent::Record(Normalized::Liquidation(
                s::Liquidation {
                    exchange: EXCHANGE.into(),
                    symbol: normalized.to_string(),
                    side: st.side,
                    quantity: st.qty.clone(),
                    price: st.price.clone(),
                    id: r.order_id.to_string(),
                    status: status.to_string(),
                    timestamp: None,
                    event_time: None,
                    receipt_time: receipt_us,
                },
            )));
        }
        if action != "delete" {
            if state.liquidations.len() >= MAX_LIQUIDATIONS {
                state.liquidations.clear();
            }
            state.liquidations.insert(r.order_id.to_string(), st);
        }
    }
    Ok(())
}

fn bins(
    action: &str,
    data: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    // The partial repeats the last closed bin.
    if action == "partial" {
        return Ok(());
    }
    let rows: Vec<BinRow<'_>> = serde_json::from_str(data)?;
    for r in &rows {
        let (Some(o), Some(h), Some(l), Some(c)) = (r.open, r.high, r.low, r.close) else {
            // A bin without trades has null prices: no candle.
            continue;
        };
        let stop = rfc3339_to_us(r.timestamp)?;
        out.push(VenueEvent::Record(Normalized::Candle(s::Candle {
            exchange: EXCHANGE.into(),
            symbol: symbol(map, r.symbol)?.to_string(),
            start: stop - 60_000_000,
            stop,
            interval: "1m".into(),
            trades: r.trades,
            open: unsigned(o)?.into_owned(),
            close: unsigned(c)?.into_owned(),
            high: unsigned(h)?.into_owned(),
            low: unsigned(l)?.into_owned(),
            volume: opt_unsigned(r.volume)?.unwrap_or_default(),
            // A bin is published once, when it closes.
            closed: true,
            timestamp: Some(stop),
            event_time: None,
            receipt_time: receipt_us,
            quote_volume: None,
        })));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exponents_become_plain_decimals() {
        assert_eq!(plain("1e-7").unwrap(), "0.0000001");
        assert_eq!(plain("-2.5e-05").unwrap(), "-0.000025");
        assert_eq!(plain("1.25E+3").unwrap(), "1250");
        assert_eq!(plain("1.2345e2").unwrap(), "123.45");
        assert_eq!(plain("0.0001").unwrap(), "0.0001");
        assert!(plain("1e400").is_err());
        assert!(plain("1e").is_err());
        assert!(plain("e5").is_err());
    }
}
