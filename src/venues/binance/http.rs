//! Binance REST: depth snapshots and open interest.

use super::websocket::messages::{DepthSnapshot, OpenInterest};
use crate::book::Snapshot;
use crate::schema::{self as s, Normalized};
use crate::venues::decimal::unsigned;
use crate::venues::{ParseError, SymbolMap};

/// An error answer of Binance's REST API: `{"code":-1121,"msg":"Invalid symbol."}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    code: i64,
    msg: String,
}

/// Reads `body` as `T`; a body that is Binance's error answer instead is
/// [`ParseError::Venue`] with its code and message, anything else malformed.
fn answer<'a, T: serde::Deserialize<'a>>(body: &'a str) -> Result<T, ParseError> {
    serde_json::from_str(body).map_err(|e| match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { code, msg }) => ParseError::Venue { code, msg },
        Err(_) => ParseError::Malformed(e),
    })
}

/// Parses `/api/v3/depth` or `/fapi/v1/depth`.
pub fn parse_snapshot(body: &str) -> Result<Snapshot, ParseError> {
    let d: DepthSnapshot<'_> = answer(body)?;
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
    let oi: OpenInterest<'_> = answer(body)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn map() -> SymbolMap {
        SymbolMap::new([("BTCUSD_PERP".to_string(), "BTC-USD-PERP".to_string())])
    }

    #[test]
    fn an_error_answer_is_a_venue_error_with_its_code_and_message() {
        // Binance's answer to an unknown symbol (error code -1121, "Invalid symbol.").
        let body = r#"{"code":-1121,"msg":"Invalid symbol."}"#;
        match parse_open_interest("BINANCE_DELIVERY", body, 1, &map()) {
            Err(ParseError::Venue { code, msg }) => {
                assert_eq!((code, msg.as_str()), (-1121, "Invalid symbol."));
            }
            other => panic!("{other:?}"),
        }
        match parse_snapshot(body) {
            Err(ParseError::Venue { code, msg }) => {
                assert_eq!((code, msg.as_str()), (-1121, "Invalid symbol."));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn open_interest_is_read_and_other_bodies_are_malformed() {
        // The recorded COIN-M answer (tests/fixtures/binance_coinm, line 2 of openInterest).
        let body = r#"{"symbol":"BTCUSD_PERP","pair":"BTCUSD","openInterest":"5827897","contractType":"PERPETUAL","time":1654336819740}"#;
        let Normalized::OpenInterest(oi) =
            parse_open_interest("BINANCE_DELIVERY", body, 7, &map()).unwrap()
        else {
            panic!("not open interest");
        };
        assert_eq!(oi.symbol, "BTC-USD-PERP");
        assert_eq!(oi.open_interest, "5827897");
        assert_eq!(oi.timestamp, Some(1_654_336_819_740_000));
        assert_eq!(oi.receipt_time, 7);
        for bad in [
            r#"{"code":-1121}"#,
            r#"{"msg":"x"}"#,
            "<html>502</html>",
            "",
        ] {
            assert!(
                matches!(
                    parse_open_interest("BINANCE_DELIVERY", bad, 1, &map()),
                    Err(ParseError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
