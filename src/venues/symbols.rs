//! Symbols: one normalization for every venue, and the venue symbol ↔ normalized map.
//!
//! | kind | normalized | example |
//! |---|---|---|
//! | spot | `BASE-QUOTE` | `BTC-USDT` |
//! | perpetual | `BASE-QUOTE-PERP` | `BTC-USD-PERP` |
//! | dated future | `BASE-QUOTE-YYYYMMDD` | `BTC-USD-20211231` |
//! | option | `BASE-QUOTE-YYYYMMDD-STRIKE-C` or `-P` | `BTC-USD-20211231-50000-C` |
//!
//! Assets are upper-case letters and digits. Each venue maps both ways in its own folder.

use std::sync::Arc;

use rustc_hash::FxHashMap;

/// What kind of instrument a normalized symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstrumentKind {
    /// `BASE-QUOTE`.
    Spot,
    /// `BASE-QUOTE-PERP`.
    Perpetual,
    /// `BASE-QUOTE-YYYYMMDD`.
    Future,
    /// `BASE-QUOTE-YYYYMMDD-STRIKE-C|P`.
    Option,
}

impl InstrumentKind {
    /// The normalized form, with an example, for error messages.
    pub fn form(self) -> &'static str {
        match self {
            InstrumentKind::Spot => "BASE-QUOTE (e.g. BTC-USDT)",
            InstrumentKind::Perpetual => "BASE-QUOTE-PERP (e.g. BTC-USDT-PERP)",
            InstrumentKind::Future => "BASE-QUOTE-YYYYMMDD (e.g. BTC-USD-20211231)",
            InstrumentKind::Option => {
                "BASE-QUOTE-YYYYMMDD-STRIKE-C|P (e.g. BTC-USD-20211231-50000-C)"
            }
        }
    }
}

/// A normalized symbol, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Its kind.
    pub kind: InstrumentKind,
    /// Expiry `YYYYMMDD` (futures and options).
    pub expiry: Option<String>,
    /// Strike (options), the venue's digits.
    pub strike: Option<String>,
    /// `C` or `P` (options).
    pub right: Option<char>,
}

fn asset(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn date(s: &str) -> bool {
    s.len() == 8
        && s.bytes().all(|b| b.is_ascii_digit())
        && matches!(
            s.get(4..6),
            Some("01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12")
        )
        && s.get(6..8)
            .and_then(|d| d.parse::<u8>().ok())
            .is_some_and(|d| (1..=31).contains(&d))
}

impl Instrument {
    /// Parses a normalized symbol; the error says which form was expected.
    pub fn parse(symbol: &str) -> Result<Instrument, String> {
        let parts: Vec<&str> = symbol.split('-').collect();
        let bad = || {
            format!("{symbol:?} is not a normalized symbol: spot BASE-QUOTE, perpetual BASE-QUOTE-PERP, future BASE-QUOTE-YYYYMMDD, option BASE-QUOTE-YYYYMMDD-STRIKE-C|P")
        };
        if parts.len() < 2 || !asset(parts[0]) || !asset(parts[1]) {
            return Err(bad());
        }
        let mut i = Instrument {
            base: parts[0].to_string(),
            quote: parts[1].to_string(),
            kind: InstrumentKind::Spot,
            expiry: None,
            strike: None,
            right: None,
        };
        match parts[2..] {
            [] => {}
            ["PERP"] => i.kind = InstrumentKind::Perpetual,
            [d] if date(d) => {
                i.kind = InstrumentKind::Future;
                i.expiry = Some(d.to_string());
            }
            [d, strike, right @ ("C" | "P")]
                if date(d)
                    && !strike.is_empty()
                    && strike.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
            {
                i.kind = InstrumentKind::Option;
                i.expiry = Some(d.to_string());
                i.strike = Some(strike.to_string());
                i.right = right.chars().next();
            }
            _ => return Err(bad()),
        }
        Ok(i)
    }
}

/// Maps venue symbols (`BTCUSDT`) to normalized ones (`BTC-USDT`, `BTC-USDT-PERP`).
#[derive(Debug, Clone, Default)]
pub struct SymbolMap {
    // Looked up once per message: a fast (non-DoS-resistant) hash; the keys come from the config.
    to_normalized: FxHashMap<String, Arc<str>>,
}

impl SymbolMap {
    /// A map from (venue symbol, normalized symbol) pairs. Venue symbols are kept exactly as
    /// the venue spells them (no case folding: `BTC-USD` on Coinbase, `XBTUSD` on BitMEX,
    /// `BTC-31DEC21` on Deribit); a session looks up the spelling its frames carry.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> SymbolMap {
        SymbolMap {
            to_normalized: pairs.into_iter().map(|(v, n)| (v, Arc::from(n))).collect(),
        }
    }

    /// The normalized symbol of a venue symbol, if configured.
    pub fn normalized(&self, venue_symbol: &str) -> Option<&str> {
        self.to_normalized.get(venue_symbol).map(|s| &**s)
    }

    /// The normalized symbol of a venue symbol, shared (no copy).
    pub fn shared(&self, venue_symbol: &str) -> Option<Arc<str>> {
        self.to_normalized.get(venue_symbol).cloned()
    }

    /// Whether no symbol is configured.
    pub fn is_empty(&self) -> bool {
        self.to_normalized.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_forms_parse_and_others_do_not() {
        let i = Instrument::parse("BTC-USDT").unwrap();
        assert_eq!(
            (i.base.as_str(), i.quote.as_str(), i.kind),
            ("BTC", "USDT", InstrumentKind::Spot)
        );
        assert_eq!(
            Instrument::parse("BTC-USD-PERP").unwrap().kind,
            InstrumentKind::Perpetual
        );
        let f = Instrument::parse("BTC-USD-20211231").unwrap();
        assert_eq!(
            (f.kind, f.expiry.as_deref()),
            (InstrumentKind::Future, Some("20211231"))
        );
        let o = Instrument::parse("BTC-USD-20211231-50000-C").unwrap();
        assert_eq!(
            (o.kind, o.strike.as_deref(), o.right),
            (InstrumentKind::Option, Some("50000"), Some('C'))
        );
        for bad in [
            "BTC",
            "btc-usdt",
            "BTC-USDT-",
            "BTC-USD-20211331",
            "BTC-USD-2021123",
            "BTC-USD-20211231-X-C",
            "BTC-USD-20211231-1-Q",
            "BTC--USDT",
        ] {
            assert!(Instrument::parse(bad).is_err(), "{bad}");
        }
    }
}
