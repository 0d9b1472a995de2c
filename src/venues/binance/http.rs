//! Binance REST: depth snapshots and open interest.

use super::websocket::messages::{DepthSnapshot, OpenInterest};
use crate::book::Snapshot;
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::unsigned;
use crate::venues::{ParseError, SymbolMap};

/// Parses `/api/v3/depth` or `/fapi/v1/depth`.
pub fn parse_snapshot(body: &str) -> Result<Snapshot, ParseError> {
    let d: DepthSnapshot<'_> = serde_json::from_str(body)?;
    let conv = |v: &[[&str; 2]]| -> Result<Vec<(String, String)>, ParseError> {
        v.iter()
            .map(|[p, q]| Ok((unsigned(p)?.to_string(), unsigned(q)?.to_string())))
            .collect()
    };
    Ok(Snapshot {
        last_update_id: d.last_update_id,
        bids: conv(&d.bids)?,
        asks: conv(&d.asks)?,
        checksum: None,
    })
}

/// Parses `/fapi/v1/openInterest`.
pub fn parse_open_interest(
    exchange: &'static str,
    body: &str,
    receipt_us: i64,
    map: &SymbolMap,
) -> Result<Normalized, ParseError> {
    let oi: OpenInterest<'_> = serde_json::from_str(body)?;
    let symbol = map
        .normalized(oi.symbol)
        .ok_or_else(|| ParseError::UnknownSymbol(oi.symbol.to_string()))?;
    Ok(Normalized::OpenInterest(s::OpenInterest {
        exchange: exchange.into(),
        symbol: symbol.to_string(),
        open_interest: unsigned(oi.open_interest)?.into(),
        timestamp: oi.time.map(|t| t.saturating_mul(1000)),
        event_time: None,
        receipt_time: receipt_us,
    }))
}

#[derive(serde::Deserialize)]
struct ExchangeInfo<'a> {
    #[serde(borrow)]
    symbols: Vec<SymbolInfo<'a>>,
}

/// One entry of `exchangeInfo.symbols` (spot, USD-M and COIN-M share these fields).
#[derive(Debug, serde::Deserialize)]
pub struct SymbolInfo<'a> {
    /// Venue symbol, e.g. `BTCUSDT`, `BTCUSD_PERP`.
    pub symbol: &'a str,
    /// Spot and USD-M trading status.
    pub status: Option<&'a str>,
    /// COIN-M trading status.
    #[serde(rename = "contractStatus")]
    pub contract_status: Option<&'a str>,
    /// Base asset.
    #[serde(rename = "baseAsset")]
    pub base: &'a str,
    /// Quote asset.
    #[serde(rename = "quoteAsset")]
    pub quote: &'a str,
    /// Futures contract type (`PERPETUAL`, `CURRENT_QUARTER`, …).
    #[serde(rename = "contractType")]
    pub contract_type: Option<&'a str>,
}

/// Parses `exchangeInfo` into (venue symbol, normalized symbol) pairs of trading symbols;
/// `normalize` names each listed instrument (`None` skips it).
pub fn parse_exchange_info(
    body: &str,
    normalize: fn(&SymbolInfo<'_>) -> Option<String>,
) -> Result<Vec<(String, String)>, ParseError> {
    let info: ExchangeInfo<'_> = serde_json::from_str(body)?;
    Ok(info
        .symbols
        .iter()
        .filter(|s| {
            s.status
                .or(s.contract_status)
                .is_none_or(|st| st == "TRADING")
        })
        .filter_map(|s| Some((s.symbol.to_string(), normalize(s)?)))
        .collect())
}
