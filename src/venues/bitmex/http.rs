//! BitMEX REST: the instrument list (`/api/v1/instrument/active`) and the full L2 book
//! (`/api/v1/orderBook/L2?symbol=…&depth=0`), the latter for the periodic comparison of a
//! kept book with the venue's (`Venue::book_audit_path`; the rule is in `API.md`).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::parse::unsigned;
use super::symbols::normalized_of_instrument;
use crate::book::Snapshot;
use crate::venues::ParseError;

/// REST path of the active instruments.
pub const INSTRUMENTS_PATH: &str = "/api/v1/instrument/active";

/// REST path of the full L2 book of `symbol` (`depth=0`: every level).
pub fn order_book_path(symbol: &str) -> String {
    format!("/api/v1/orderBook/L2?symbol={symbol}&depth=0")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstrumentInfo {
    symbol: String,
    #[serde(default)]
    typ: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    underlying: String,
    #[serde(default)]
    quote_currency: String,
    #[serde(default)]
    expiry: Option<String>,
}

/// Parses the instrument list into (BitMEX symbol, normalized symbol) pairs of open
/// perpetuals, futures and spot pairs (the futures' day from `expiry`).
pub fn parse_instruments(body: &str) -> Result<Vec<(String, String)>, ParseError> {
    let list: Vec<InstrumentInfo> = serde_json::from_str(body)?;
    let mut out: Vec<(String, String)> = list
        .into_iter()
        .filter(|i| i.state == "Open")
        .filter_map(|i| {
            let n = normalized_of_instrument(
                &i.typ,
                &i.underlying,
                &i.quote_currency,
                i.expiry.as_deref(),
            )?;
            Some((i.symbol, n))
        })
        .collect();
    out.sort();
    Ok(out)
}

#[derive(Deserialize)]
struct L2Row<'a> {
    side: &'a str,
    #[serde(borrow)]
    size: &'a RawValue,
    #[serde(borrow)]
    price: &'a RawValue,
}

/// Parses a REST L2 book (rows like the WebSocket's `partial`) into a snapshot.
pub fn parse_order_book(body: &str) -> Result<Snapshot, ParseError> {
    let rows: Vec<L2Row<'_>> = serde_json::from_str(body)?;
    let mut snap = Snapshot::default();
    for r in rows {
        let level = (
            unsigned(r.price)?.into_owned(),
            unsigned(r.size)?.into_owned(),
        );
        match r.side {
            "Buy" => snap.bids.push(level),
            "Sell" => snap.asks.push(level),
            other => return Err(ParseError::Unsupported(format!("book side {other:.16}"))),
        }
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn instruments_and_rest_book() {
        let body = r#"[
          {"symbol":"XBTUSD","typ":"FFWCSX","state":"Open","underlying":"XBT","quoteCurrency":"USD","expiry":null},
          {"symbol":"XBTZ21","typ":"FFCCSX","state":"Open","underlying":"XBT","quoteCurrency":"USD","expiry":"2021-12-31T12:00:00.000Z"},
          {"symbol":".BXBT","typ":"MRCXXX","state":"Unlisted","underlying":"XBT","quoteCurrency":"USD"}
        ]"#;
        assert_eq!(
            parse_instruments(body).unwrap(),
            vec![
                ("XBTUSD".to_string(), "BTC-USD-PERP".to_string()),
                ("XBTZ21".to_string(), "BTC-USD-20211231".to_string()),
            ]
        );
        let book = r#"[{"symbol":"XBTUSD","id":8796323950,"side":"Sell","size":38760,"price":36760.5},
                       {"symbol":"XBTUSD","id":8796385500,"side":"Buy","size":136,"price":36145}]"#;
        let s = parse_order_book(book).unwrap();
        assert_eq!(s.asks, vec![("36760.5".to_string(), "38760".to_string())]);
        assert_eq!(s.bids, vec![("36145".to_string(), "136".to_string())]);
    }
}
