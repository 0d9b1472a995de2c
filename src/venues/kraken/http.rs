//! Kraken REST: the instrument list (`/0/public/AssetPairs`).

use serde::Deserialize;
use std::collections::HashMap;

use super::normalized_pair;
use crate::venues::ParseError;

#[derive(Deserialize)]
struct AssetPairs {
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    result: HashMap<String, AssetPair>,
}

#[derive(Deserialize)]
struct AssetPair {
    /// The WebSocket name, e.g. `XBT/USD`.
    wsname: Option<String>,
    /// `online`, `cancel_only`, `post_only`, `limit_only`, `reduce_only` (absent in older
    /// answers: tradable).
    status: Option<String>,
}

/// Parses `AssetPairs` into (WebSocket pair, normalized symbol) pairs of online spot pairs.
/// Dark-pool pairs (`.d`) have no WebSocket name and are skipped.
pub fn parse_asset_pairs(body: &str) -> Result<Vec<(String, String)>, ParseError> {
    let a: AssetPairs = serde_json::from_str(body)?;
    if let Some(e) = a.error.first() {
        return Err(ParseError::Venue {
            code: 0,
            msg: e.clone(),
        });
    }
    let mut out: Vec<(String, String)> = a
        .result
        .into_values()
        .filter(|p| p.status.as_deref().is_none_or(|s| s == "online"))
        .filter_map(|p| {
            let ws = p.wsname?;
            let norm = normalized_pair(&ws)?;
            Some((ws, norm))
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_pairs_by_their_websocket_names() {
        // Shaped like Kraken's documented answer (fields trimmed).
        let body = r#"{"error":[],"result":{
            "XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","base":"XXBT","quote":"ZUSD","status":"online"},
            "XDGUSD":{"altname":"XDGUSD","wsname":"XDG/USD","base":"XXDG","quote":"ZUSD","status":"online"},
            "XETHZEUR":{"altname":"ETHEUR","wsname":"ETH/EUR","base":"XETH","quote":"ZEUR","status":"cancel_only"},
            "XXBTZUSD.d":{"altname":"XBTUSD.d","base":"XXBT","quote":"ZUSD"}}}"#;
        assert_eq!(
            parse_asset_pairs(body).unwrap(),
            vec![
                ("XBT/USD".to_string(), "BTC-USD".to_string()),
                ("XDG/USD".to_string(), "DOGE-USD".to_string()),
            ]
        );
        assert!(matches!(
            parse_asset_pairs(r#"{"error":["EGeneral:Too many requests"]}"#),
            Err(ParseError::Venue { .. })
        ));
    }
}
