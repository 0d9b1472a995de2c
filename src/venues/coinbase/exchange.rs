//! Coinbase Exchange feed (`wss://ws-feed.exchange.coinbase.com`, formerly Coinbase Pro): pure
//! parse and request functions. Messages are objects with a `type`: `snapshot` + `l2update`
//! (`level2_batch`, no sequence), `match` / `last_match` (`matches`), `ticker`,
//! `subscriptions`, `heartbeat`, `error`.

use serde_json::json;

use super::messages::*;
use super::{push_trade, taker_of_maker, EXCHANGE};
use crate::book::{Diff, Levels, Snapshot};
use crate::schema::borrowed::{IdRef, TradeRef};
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::{unsigned, unsigned_level};
use crate::venues::json::{rfc3339_to_us, symbol};
use crate::venues::{ParseError, SymbolMap, VenueEvent};

/// What a frame meant to the session, besides the events it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Market data.
    Data,
    /// Every subscription of the connection now: (channel, products).
    Subscriptions(Vec<(String, Vec<String>)>),
    /// A heartbeat or another quiet message.
    Quiet,
}

/// A `subscribe` / `unsubscribe` message for `channels` on `products`.
pub fn request(kind: &str, channels: &[&str], products: &[&str]) -> String {
    json!({ "type": kind, "product_ids": products, "channels": channels }).to_string()
}

/// Parses one Exchange feed frame. `keep_trade(symbol, id)` says whether a trade is new.
pub fn parse_frame(
    text: &str,
    receipt_us: i64,
    map: &SymbolMap,
    keep_trade: &mut dyn FnMut(&str, &str) -> bool,
    out: &mut Vec<VenueEvent>,
) -> Result<Control, ParseError> {
    let m: ExMessage<'_> = serde_json::from_str(text)?;
    let product = || {
        m.product_id
            .ok_or_else(|| ParseError::Unsupported(format!("{} without product_id", m.kind)))
    };
    match m.kind {
        "snapshot" => {
            let symbol = symbol(map, product()?)?.to_string();
            let side =
                |v: &Option<Vec<(&str, &str)>>| -> Result<Vec<(String, String)>, ParseError> {
                    v.iter()
                        .flatten()
                        .map(|(p, q)| Ok((unsigned(p)?.to_string(), unsigned(q)?.to_string())))
                        .collect()
                };
            out.push(VenueEvent::Snapshot {
                symbol,
                snapshot: Snapshot {
                    last_update_id: 0,
                    bids: side(&m.bids)?,
                    asks: side(&m.asks)?,
                    checksum: None,
                },
            });
        }
        "l2update" => {
            let symbol = symbol(map, product()?)?;
            let changes = m.changes.as_deref().unwrap_or_default();
            let mut bids = Levels::with_capacity(changes.len(), 24 * changes.len());
            let mut asks = Levels::with_capacity(changes.len(), 24 * changes.len());
            for (side, p, q) in changes {
                // Checked and keyed for the book in one pass over each decimal.
                let key = unsigned_level(p, q)?;
                match *side {
                    "buy" => bids.push_keyed(p, q, key),
                    "sell" => asks.push_keyed(p, q, key),
                    other => {
                        return Err(ParseError::Unsupported(format!(
                            "side {}",
                            other.chars().take(16).collect::<String>()
                        )))
                    }
                }
            }
            out.push(VenueEvent::Diff {
                symbol,
                diff: Diff {
                    bids,
                    asks,
                    timestamp: m.time.map(rfc3339_to_us).transpose()?,
                    receipt_time: receipt_us,
                    ..Diff::default()
                },
            });
        }
        "match" | "last_match" => {
            let symbol = symbol(map, product()?)?;
            let missing = |f: &str| ParseError::Unsupported(format!("match without {f}"));
            let id = m.trade_id.ok_or_else(|| missing("trade_id"))?;
            // `side` is the maker order's side: the taker did the opposite.
            let (side, buyer_maker) = taker_of_maker(m.side.ok_or_else(|| missing("side"))?)?;
            let view = TradeRef {
                exchange: EXCHANGE,
                symbol: "",
                side: side as i32,
                trade_id: IdRef::Num(id),
                price: unsigned(m.price.ok_or_else(|| missing("price"))?)?,
                amount: unsigned(m.size.ok_or_else(|| missing("size"))?)?,
                timestamp: rfc3339_to_us(m.time.ok_or_else(|| missing("time"))?)?,
                trade_type: None,
                maker: Some(buyer_maker),
                event_time: None,
                match_id: None,
                liquidity_flag: None,
                receipt_time: receipt_us,
            };
            if keep_trade(&symbol, &id.to_string()) {
                push_trade(symbol, view, out);
            }
        }
        "ticker" => {
            let opt = |t: Option<&str>| -> Result<String, ParseError> {
                Ok(t.map(unsigned).transpose()?.unwrap_or_default().to_string())
            };
            out.push(VenueEvent::Record(Normalized::Ticker(s::Ticker {
                exchange: EXCHANGE.into(),
                symbol: symbol(map, product()?)?.to_string(),
                bid: opt(m.best_bid)?,
                ask: opt(m.best_ask)?,
                timestamp: m.time.map(rfc3339_to_us).transpose()?,
                event_time: None,
                receipt_time: receipt_us,
                last: opt(m.price)?,
                open: opt(m.open_24h)?,
                high: opt(m.high_24h)?,
                low: opt(m.low_24h)?,
                volume: opt(m.volume_24h)?,
                quote_volume: String::new(),
            })));
        }
        "subscriptions" => {
            return Ok(Control::Subscriptions(
                m.channels
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| (c.name, c.product_ids))
                    .collect(),
            ))
        }
        "heartbeat" => return Ok(Control::Quiet),
        "error" => {
            return Err(ParseError::Venue {
                code: 0,
                msg: format!(
                    "{} ({})",
                    m.message.as_deref().unwrap_or("error"),
                    m.reason.as_deref().unwrap_or("no reason")
                ),
            })
        }
        other => return Err(ParseError::Unsupported(other.chars().take(32).collect())),
    }
    Ok(Control::Data)
}
