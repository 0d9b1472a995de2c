//! Binance payloads → normalized records. Times are converted from ms to µs; decimals are
//! passed through as the venue's strings.

use std::sync::Arc;

use super::envelope::{combined_fast, stream_kind};
use super::messages::*;
use super::scan::{scan_frame, Depth, Scanned};
use crate::book::{Diff, Levels};
use crate::schema::borrowed::{EncodedRecord, IdRef, TradeRef};
use crate::schema::v2beta1::{liquidation, trade};
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::{signed, unsigned, unsigned_level};
use crate::venues::{ParseError, SymbolMap, VenueEvent};

fn us(ms: i64) -> i64 {
    ms.saturating_mul(1000)
}

fn symbol(map: &SymbolMap, venue_symbol: &str) -> Result<String, ParseError> {
    map.normalized(venue_symbol)
        .map(str::to_string)
        .ok_or_else(|| ParseError::UnknownSymbol(venue_symbol.to_string()))
}

/// The normalized symbol of a venue symbol, shared with the map (no copy).
fn shared_symbol(map: &SymbolMap, venue_symbol: &str) -> Result<Arc<str>, ParseError> {
    map.shared(venue_symbol)
        .ok_or_else(|| ParseError::UnknownSymbol(venue_symbol.to_string()))
}

/// What Binance's `trade` and `aggTrade` share.
struct Taken<'a> {
    buyer_is_maker: bool,
    price: &'a str,
    amount: &'a str,
    trade_ms: i64,
    event_ms: i64,
}

impl<'a> Taken<'a> {
    fn new(
        buyer_is_maker: bool,
        price: &'a str,
        amount: &'a str,
        trade_ms: i64,
        event_ms: i64,
    ) -> Self {
        Taken {
            buyer_is_maker,
            price,
            amount,
            trade_ms,
            event_ms,
        }
    }

    /// The trade record of these fields (symbol filled in by [`encoded`]).
    fn view(self, exchange: &'a str, id: IdRef<'a>, receipt_us: i64) -> TradeRef<'a> {
        TradeRef {
            exchange,
            symbol: "",
            side: taker_side(self.buyer_is_maker),
            trade_id: id,
            price: self.price,
            amount: self.amount,
            timestamp: us(self.trade_ms),
            trade_type: None,
            maker: Some(self.buyer_is_maker),
            event_time: Some(us(self.event_ms)),
            match_id: None,
            liquidity_flag: None,
            receipt_time: receipt_us,
        }
    }
}

/// Trades are encoded straight from the borrowed frame (no owned record in between).
/// `trade` comes without its symbol, which is looked up here.
fn encoded(
    exchange: &'static str,
    map: &SymbolMap,
    venue_symbol: &str,
    out: &mut Vec<VenueEvent>,
    trade: TradeRef<'_>,
) -> Result<(), ParseError> {
    let symbol = map
        .shared(venue_symbol)
        .ok_or_else(|| ParseError::UnknownSymbol(venue_symbol.to_string()))?;
    out.push(VenueEvent::Encoded(EncodedRecord::trade(
        exchange, symbol, trade,
    )));
    Ok(())
}

/// Binance's `m` is "buyer is maker": the taker, whose side the trade carries, sold.
fn taker_side(buyer_is_maker: bool) -> i32 {
    if buyer_is_maker {
        trade::Side::Sell as i32
    } else {
        trade::Side::Buy as i32
    }
}

fn levels(raw: &[[&str; 2]]) -> Result<Levels, ParseError> {
    let bytes = raw.iter().map(|[p, q]| p.len() + q.len()).sum();
    let mut levels = Levels::with_capacity(raw.len(), bytes);
    for [p, q] in raw {
        levels.push_keyed(p, q, unsigned_level(p, q)?);
    }
    Ok(levels)
}

/// A `trade` event (from the scanner or the typed parse) → its encoded record.
fn on_trade(
    exchange: &'static str,
    t: &Trade<'_>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let common = Taken::new(
        t.buyer_is_maker,
        unsigned(t.price)?,
        unsigned(t.quantity)?,
        t.trade_time,
        t.event_time,
    );
    let trade = TradeRef {
        trade_type: t.order_type,
        ..common.view(exchange, IdRef::Num(t.trade_id), receipt_us)
    };
    encoded(exchange, map, t.symbol, out, trade)
}

/// An `aggTrade` event (from the scanner or the typed parse) → its encoded record.
fn on_agg_trade(
    exchange: &'static str,
    t: &AggTrade<'_>,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let common = Taken::new(
        t.buyer_is_maker,
        unsigned(t.price)?,
        unsigned(t.quantity)?,
        t.trade_time,
        t.event_time,
    );
    let id = IdRef::Num(t.agg_id.unwrap_or(t.first_trade_id));
    let trade = TradeRef {
        trade_type: Some("aggregate"),
        match_id: Some(IdRef::Range(t.first_trade_id, t.last_trade_id)),
        ..common.view(exchange, id, receipt_us)
    };
    encoded(exchange, map, t.symbol, out, trade)
}

/// A depth update (from the scanner or the typed parse) → its diff for the book.
fn depth_diff(symbol: Arc<str>, d: Depth<'_>, receipt_us: i64) -> VenueEvent {
    VenueEvent::Diff {
        symbol,
        diff: Diff {
            first: d.first_update_id,
            last: d.final_update_id,
            prev: d.prev_final_update_id,
            bids: d.bids,
            asks: d.asks,
            checksum: None,
            event_time: Some(us(d.event_time)),
            timestamp: d.transaction_time.map(us),
            receipt_time: receipt_us,
        },
    }
}

/// Parses the payload text `json` of stream `kind` (the part after `@`, or the `e` event type).
pub fn parse_payload(
    exchange: &'static str,
    kind: &str,
    json: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let record = match kind {
        "trade" => {
            let t: Trade<'_> = serde_json::from_str(json)?;
            return on_trade(exchange, &t, receipt_us, map, out);
        }
        "aggTrade" => {
            let t: AggTrade<'_> = serde_json::from_str(json)?;
            return on_agg_trade(exchange, &t, receipt_us, map, out);
        }
        "depth" | "depthUpdate" => {
            let d: DepthUpdate<'_> = serde_json::from_str(json)?;
            // The symbol is looked up before the levels are checked (which error wins).
            let symbol = shared_symbol(map, d.symbol)?;
            let depth = Depth {
                event_time: d.event_time,
                transaction_time: d.transaction_time,
                symbol: d.symbol,
                first_update_id: d.first_update_id,
                final_update_id: d.final_update_id,
                prev_final_update_id: d.prev_final_update_id,
                bids: levels(&d.bids)?,
                asks: levels(&d.asks)?,
            };
            out.push(depth_diff(symbol, depth, receipt_us));
            return Ok(());
        }
        "bookTicker" => {
            let b: BookTicker<'_> = serde_json::from_str(json)?;
            Normalized::TopOfBook(s::TopOfBook {
                exchange: exchange.into(),
                symbol: symbol(map, b.symbol)?,
                bid_price: unsigned(b.bid_price)?.into(),
                bid_size: unsigned(b.bid_qty)?.into(),
                ask_price: unsigned(b.ask_price)?.into(),
                ask_size: unsigned(b.ask_qty)?.into(),
                timestamp: b.transaction_time.map(us),
                event_time: b.event_time.map(us),
                receipt_time: receipt_us,
                update_id: Some(b.update_id),
            })
        }
        "ticker" | "24hrTicker" => {
            let t: Ticker<'_> = serde_json::from_str(json)?;
            Normalized::Ticker(s::Ticker {
                exchange: exchange.into(),
                symbol: symbol(map, t.symbol)?,
                bid: t.bid.map(unsigned).transpose()?.unwrap_or_default().into(),
                ask: t.ask.map(unsigned).transpose()?.unwrap_or_default().into(),
                timestamp: Some(us(t.close_time)),
                event_time: Some(us(t.event_time)),
                receipt_time: receipt_us,
                last: unsigned(t.last)?.into(),
                open: unsigned(t.open)?.into(),
                high: unsigned(t.high)?.into(),
                low: unsigned(t.low)?.into(),
                volume: unsigned(t.volume)?.into(),
                quote_volume: unsigned(t.quote_volume)?.into(),
            })
        }
        "markPrice" | "markPriceUpdate" => {
            let m: MarkPrice<'_> = serde_json::from_str(json)?;
            Normalized::Funding(s::Funding {
                exchange: exchange.into(),
                symbol: symbol(map, m.symbol)?,
                mark_price: unsigned(m.mark_price)?.into(),
                // Delivery contracts (COIN-M quarterlies) have no funding: `"r":""`.
                rate: if m.funding_rate.is_empty() {
                    String::new()
                } else {
                    signed(m.funding_rate)?.into()
                },
                // Delivery contracts (COIN-M quarterlies) send `"T":0`: no funding.
                next_funding_time: (m.next_funding_time > 0).then(|| us(m.next_funding_time)),
                predicted_rate: None,
                timestamp: Some(us(m.event_time)),
                event_time: Some(us(m.event_time)),
                receipt_time: receipt_us,
                index_price: m.index_price.map(unsigned).transpose()?.map(str::to_string),
            })
        }
        "forceOrder" => {
            let f: ForceOrder<'_> = serde_json::from_str(json)?;
            let o = f.order;
            let side = match o.side {
                "BUY" => liquidation::Side::Buy,
                "SELL" => liquidation::Side::Sell,
                _ => liquidation::Side::Unspecified,
            };
            Normalized::Liquidation(s::Liquidation {
                exchange: exchange.into(),
                symbol: symbol(map, o.symbol)?,
                side: side as i32,
                quantity: unsigned(o.quantity)?.into(),
                price: unsigned(o.price)?.into(),
                id: String::new(),
                status: o.status.into(),
                timestamp: Some(us(o.trade_time)),
                event_time: Some(us(f.event_time)),
                receipt_time: receipt_us,
            })
        }
        k if k == "kline" || k.starts_with("kline_") => {
            let e: KlineEvent<'_> = serde_json::from_str(json)?;
            let k = e.kline;
            Normalized::Candle(s::Candle {
                exchange: exchange.into(),
                symbol: symbol(map, k.symbol)?,
                start: us(k.start),
                stop: us(k.stop),
                interval: k.interval.into(),
                trades: Some(k.trades),
                open: unsigned(k.open)?.into(),
                close: unsigned(k.close)?.into(),
                high: unsigned(k.high)?.into(),
                low: unsigned(k.low)?.into(),
                volume: unsigned(k.volume)?.into(),
                closed: k.closed,
                timestamp: Some(us(k.stop)),
                event_time: Some(us(e.event_time)),
                receipt_time: receipt_us,
                quote_volume: k
                    .quote_volume
                    .map(unsigned)
                    .transpose()?
                    .map(str::to_string),
            })
        }
        other => return Err(ParseError::Unsupported(other.to_string())),
    };
    out.push(VenueEvent::Record(record));
    Ok(())
}

/// Parses one frame: a combined-stream envelope, a raw event, or a control answer. Trades in
/// Binance's fixed shapes are read by the scanner ([`super::scan`]); everything else, and
/// anything the scanner declines, by [`parse_frame_general`], with the same results.
pub fn parse_frame(
    exchange: &'static str,
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    match scan_frame(text) {
        Some(Scanned::Trade(t)) => on_trade(exchange, &t, receipt_us, map, out),
        Some(Scanned::AggTrade(t)) => on_agg_trade(exchange, &t, receipt_us, map, out),
        Some(Scanned::Depth(d)) => {
            out.push(depth_diff(shared_symbol(map, d.symbol)?, d, receipt_us));
            Ok(())
        }
        None => parse_frame_general(exchange, text, receipt_us, map, out),
    }
}

/// [`parse_frame`] through `serde_json` typed parses only: the authority the scanner is
/// checked against.
pub fn parse_frame_general(
    exchange: &'static str,
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    if let Some((stream, data)) = combined_fast(text) {
        // The payload is validated by its typed parse. When that fails (e.g. the "payload" was
        // `{..},"code":1`), the general path below parses the frame and says what is wrong.
        match parse_payload(exchange, stream_kind(stream), data, receipt_us, map, out) {
            Err(ParseError::Malformed(_)) => {}
            done => return done,
        }
    }
    let env: Envelope<'_> = serde_json::from_str(text)?;
    if let (Some(code), Some(msg)) = (env.code, &env.msg) {
        return Err(ParseError::Venue {
            code,
            msg: msg.clone(),
        });
    }
    match (env.stream, env.data) {
        (Some(stream), Some(data)) => parse_payload(
            exchange,
            stream_kind(stream),
            data.get(),
            receipt_us,
            map,
            out,
        ),
        _ if env.id.is_some() => {
            out.push(VenueEvent::Control);
            Ok(())
        }
        _ => {
            // A raw (non-combined) event: dispatch on its `e` field.
            #[derive(serde::Deserialize)]
            struct Kind<'a> {
                #[serde(rename = "e", borrow)]
                e: Option<&'a str>,
            }
            let k: Kind<'_> = serde_json::from_str(text)?;
            match k.e {
                Some(kind) => parse_payload(exchange, kind, text, receipt_us, map, out),
                None => Err(ParseError::Unsupported("event without type".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADE: &str = r#"{"e":"trade","E":1700000000001,"s":"BTCUSDT","t":7,"p":"1.10","q":"2.000","T":1700000000000,"m":true}"#;

    fn map() -> SymbolMap {
        SymbolMap::new([("BTCUSDT".to_string(), "BTC-USDT".to_string())])
    }

    fn parse(text: &str) -> Result<Vec<VenueEvent>, ParseError> {
        let mut out = Vec::new();
        parse_frame("BINANCE", text, 5, &map(), &mut out).map(|()| out)
    }

    #[test]
    fn fast_and_general_envelope_paths_agree() {
        let fast = format!(r#"{{"stream":"btcusdt@trade","data":{TRADE}}}"#);
        assert!(combined_fast(&fast).is_some());
        // Other key order and whitespace take the general path.
        let general = format!(r#"{{ "data": {TRADE}, "stream": "btcusdt@trade" }}"#);
        assert!(combined_fast(&general).is_none());
        let (a, b) = (parse(&fast).unwrap(), parse(&general).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.len(), 1);
        assert_eq!(
            combined_fast(r#"{"stream":"btcusdt@depth@100ms","data":{"x":1}}"#),
            Some(("btcusdt@depth@100ms", r#"{"x":1}"#))
        );
        assert_eq!(stream_kind("btcusdt@depth@100ms"), "depth");
        assert_eq!(stream_kind("btcusdt@kline_1m"), "kline_1m");
    }

    #[test]
    fn a_fast_path_miss_falls_back_to_the_general_parse() {
        // Looks like the fast shape, but the "payload" runs into further keys.
        let venue_error = format!(
            r#"{{"stream":"btcusdt@trade","data":{TRADE},"code":-1121,"msg":"Invalid symbol."}}"#
        );
        assert!(matches!(
            parse(&venue_error),
            Err(ParseError::Venue { code: -1121, .. })
        ));
        let truncated = r#"{"stream":"btcusdt@trade","data":{"e":"trade","#;
        assert!(matches!(parse(truncated), Err(ParseError::Malformed(_))));
    }
}
