//! Kraken WebSocket: raw payload types (`messages`), the two API versions' pure parse and
//! request functions (`v1`, `v2`), and what both share: exact time and decimal conversion,
//! per-pair precisions, and what a frame meant to the session ([`Control`]).

pub mod messages;
pub mod scan;
pub mod v1;
pub mod v2;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::schema::borrowed::{EncodedRecord, TradeRef};
use crate::venues::{ParseError, SymbolMap, VenueEvent};

/// The `exchange` of Kraken records.
pub const EXCHANGE: &str = "KRAKEN";

/// What a frame meant to the session, besides the events it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Market data (records, diffs or snapshots went to `out`).
    Data,
    /// A subscription was confirmed: channel name (`book`, `trade`, `ohlc`, `instrument`, …)
    /// and the venue pair (`None` for channels without one).
    Subscribed {
        /// Channel name as the venue writes it in its answer.
        channel: String,
        /// Venue pair.
        pair: Option<String>,
    },
    /// An unsubscribe was confirmed.
    Unsubscribed,
    /// A heartbeat, a pong or a status message: nothing to do.
    Quiet,
    /// The venue pinged (v2 server `ping`): the answer went to `out` as a `Send`.
    Pinged,
    /// Pair precisions from the v2 `instrument` channel: venue pair → precision.
    Instruments(Vec<(String, Precision)>),
}

/// Decimal places of a pair's prices and quantities (Kraken's `price_precision` and
/// `qty_precision`), used to write v2 book levels the way the checksum reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    /// Price decimal places.
    pub price: u32,
    /// Quantity decimal places.
    pub qty: u32,
}

/// Pinned precisions of a few v2 pairs, used until (or without) the `instrument` channel.
/// BTC/USD is the pair of Kraken's worked checksum examples (price 1, qty 8 places); the
/// `instrument` channel is authoritative and overrides these.
pub const PINNED_PRECISIONS: &[(&str, Precision)] = &[
    ("BTC/USD", Precision { price: 1, qty: 8 }),
    ("BTC/EUR", Precision { price: 1, qty: 8 }),
    ("ETH/USD", Precision { price: 2, qty: 8 }),
    ("ETH/EUR", Precision { price: 2, qty: 8 }),
];

/// Precisions by v2 pair: learned from the `instrument` channel, else pinned.
#[derive(Debug, Clone, Default)]
pub struct Precisions {
    learned: HashMap<String, Precision>,
}

impl Precisions {
    /// No precisions learned yet (pinned ones apply).
    pub fn new() -> Precisions {
        Precisions::default()
    }

    /// Records what the `instrument` channel said.
    pub fn learn(&mut self, pairs: impl IntoIterator<Item = (String, Precision)>) {
        self.learned.extend(pairs);
    }

    /// The precision of `pair`, if known.
    pub fn get(&self, pair: &str) -> Option<Precision> {
        self.learned.get(pair).copied().or_else(|| {
            PINNED_PRECISIONS
                .iter()
                .find(|(p, _)| *p == pair)
                .map(|(_, prec)| *prec)
        })
    }
}

fn bad(text: &str) -> ParseError {
    ParseError::BadDecimal(text.to_string())
}

pub use crate::venues::json::{rfc3339_to_us, scalar, secs_to_us, us_to_secs};

/// A non-negative decimal literal (plain or with an exponent) written with exactly `places`
/// decimals (`0.1`, 8 → `0.10000000`; `45283.5`, 1 → `45283.5`): Kraken's v2 checksum reads
/// prices and quantities in this form. More decimals than `places` are rounded half away from
/// zero (Kraken sends at most the pair's precision).
pub fn fixed(text: &str, places: u32) -> Result<String, ParseError> {
    let parsed = if text.bytes().any(|b| b == b'e' || b == b'E') {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str(text)
    };
    let mut d = parsed.map_err(|_| bad(text))?;
    if d.is_sign_negative() {
        if !d.is_zero() {
            return Err(bad(text));
        }
        d.set_sign_positive(true);
    }
    d.rescale(places);
    if d.scale() != places {
        return Err(bad(text));
    }
    Ok(d.to_string())
}

/// Looks up the normalized symbol of a venue pair.
pub fn symbol(map: &SymbolMap, pair: &str) -> Result<Arc<str>, ParseError> {
    map.shared(pair)
        .ok_or_else(|| ParseError::UnknownSymbol(pair.to_string()))
}

/// Encodes a trade straight from the frame's text (symbol filled in here).
pub fn push_trade(
    map: &SymbolMap,
    pair: &str,
    trade: TradeRef<'_>,
    out: &mut Vec<VenueEvent>,
) -> Result<(), ParseError> {
    let symbol = symbol(map, pair)?;
    out.push(VenueEvent::Encoded(EncodedRecord::trade(
        EXCHANGE, symbol, trade,
    )));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_exact() {
        assert_eq!(
            secs_to_us("1618678133.365913").unwrap(),
            1_618_678_133_365_913
        );
        assert_eq!(
            secs_to_us("1675209660.000000").unwrap(),
            1_675_209_660_000_000
        );
        assert_eq!(secs_to_us("1618678133.3").unwrap(), 1_618_678_133_300_000);
        assert_eq!(
            secs_to_us("1618678133.3659139").unwrap(),
            1_618_678_133_365_913
        );
        assert_eq!(secs_to_us("1654302625").unwrap(), 1_654_302_625_000_000);
        for b in [
            "",
            ".5",
            "-1.0",
            "1e9",
            "1.2.3",
            "1234567890123.0",
            "１",
            "1.5x",
            "12 .5",
        ] {
            assert!(secs_to_us(b).is_err(), "{b}");
        }
        assert_eq!(us_to_secs(1_618_678_133_000_123), "1618678133.000123");
        assert_eq!(
            rfc3339_to_us("2023-09-25T07:49:37.708706Z").unwrap(),
            1_695_628_177_708_706
        );
        assert_eq!(
            rfc3339_to_us("2023-10-04T16:26:30.524394914Z").unwrap(),
            1_696_436_790_524_394
        );
        assert_eq!(rfc3339_to_us("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            rfc3339_to_us("2023-09-25T09:49:37.7+02:00").unwrap(),
            1_695_628_177_700_000
        );
        for b in [
            "2023-09-25",
            "2023-13-25T07:49:37Z",
            "2023-09-25T07:49:37",
            "2023-09-25T07:49:37.Z",
        ] {
            assert!(rfc3339_to_us(b).is_err(), "{b}");
        }
    }

    #[test]
    fn fixed_writes_the_pair_precision() {
        assert_eq!(fixed("0.1", 8).unwrap(), "0.10000000");
        assert_eq!(fixed("45283.5", 1).unwrap(), "45283.5");
        assert_eq!(fixed("45281", 1).unwrap(), "45281.0");
        assert_eq!(fixed("1e-5", 8).unwrap(), "0.00001000");
        assert_eq!(fixed("0", 8).unwrap(), "0.00000000");
        assert_eq!(fixed("-0.0", 2).unwrap(), "0.00");
        assert!(fixed("-1", 2).is_err());
        assert!(fixed("abc", 2).is_err());
    }
}
