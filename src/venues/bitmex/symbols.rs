//! BitMEX symbols ↔ normalized symbols.
//!
//! | BitMEX | normalized | kind |
//! |---|---|---|
//! | `XBTUSD` | `BTC-USD-PERP` | inverse perpetual (XBT is BTC) |
//! | `ETHUSD` | `ETH-USD-PERP` | quanto perpetual |
//! | `XBTUSDT`, `SOLUSDT` | `BTC-USDT-PERP`, `SOL-USDT-PERP` | linear perpetuals |
//! | `XBTZ21` | `BTC-USD-20211231` | inverse quarterly future (month code + year) |
//! | `XRPU21`, `ETHM19` | `XRP-BTC-20210924`, `ETH-BTC-20190628` | futures quoted in XBT |
//! | `XBTUSDTZ21`, `ETHUSDH23` | `BTC-USDT-20211231`, `ETH-USD-20230331` | other futures |
//! | `XBT_USDT` | `BTC-USDT` | spot |
//!
//! A future's month code (`F G H J K M N Q U V X Z` for January … December) and two-digit
//! year name its contract month; the day comes from the instrument list's `expiry`
//! ([`normalized_of_instrument`]) or, without it, BitMEX's documented rule: quarterly and
//! monthly futures settle on the **last Friday of the month** at 12:00 UTC
//! ([`last_friday`]).

use crate::venues::{Instrument, InstrumentKind};

/// Month codes, January first.
pub const MONTH_CODES: [char; 12] = ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'];

/// BitMEX's name of an asset (BTC → XBT).
pub fn venue_asset(asset: &str) -> &str {
    match asset {
        "BTC" => "XBT",
        a => a,
    }
}

/// The normalized name of a BitMEX asset (XBT → BTC; BitMEX's satoshi unit `XBt` too).
pub fn normalized_asset(asset: &str) -> String {
    match asset {
        "XBT" | "XBt" => "BTC".to_string(),
        a => a.to_ascii_uppercase(),
    }
}

/// The BitMEX symbol of a normalized instrument (the pinned mapping; see the module table).
pub fn venue_symbol(i: &Instrument) -> String {
    let base = venue_asset(&i.base);
    let quote = venue_asset(&i.quote);
    match i.kind {
        InstrumentKind::Spot => format!("{base}_{quote}"),
        InstrumentKind::Perpetual => format!("{base}{quote}"),
        InstrumentKind::Future | InstrumentKind::Option => {
            let code = i.expiry.as_deref().and_then(month_code).unwrap_or_default();
            let root = match (base, quote) {
                ("XBT", "USD") => base.to_string(),
                (_, "XBT") => base.to_string(),
                _ => format!("{base}{quote}"),
            };
            format!("{root}{code}")
        }
    }
}

/// `H21` for an expiry `2021MMDD` in March.
fn month_code(expiry: &str) -> Option<String> {
    let m: usize = expiry.get(4..6)?.parse().ok()?;
    let yy = expiry.get(2..4)?;
    Some(format!("{}{yy}", MONTH_CODES.get(m.checked_sub(1)?)?))
}

/// Day of the week of a date, 0 = Monday (Zeller-free: days since 1970-01-01, a Thursday).
fn weekday(y: i64, m: i64, d: i64) -> i64 {
    let days = days_from_civil(y, m, d);
    (days + 3).rem_euclid(7)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// The last Friday of a month, as `YYYYMMDD` (BitMEX's settlement day of dated futures).
pub fn last_friday(y: i64, m: i64) -> String {
    let last = days_in_month(y, m);
    // Friday is 4 (Monday = 0).
    let back = (weekday(y, m, last) - 4).rem_euclid(7);
    format!("{y:04}{m:02}{:02}", last - back)
}

/// Splits a futures symbol into its root and contract month (`XBTZ21` → (`XBT`, 2021, 12)).
pub fn split_future(symbol: &str) -> Option<(&str, i64, i64)> {
    let n = symbol.len();
    if n < 4 || !symbol.is_ascii() {
        return None;
    }
    let (root, tail) = symbol.split_at(n - 3);
    let mut chars = tail.chars();
    let code = chars.next()?;
    let yy: i64 = chars.as_str().parse().ok()?;
    if !chars.as_str().bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let m = MONTH_CODES.iter().position(|c| *c == code)? as i64 + 1;
    Some((root, 2000 + yy, m))
}

/// The normalized symbol of a BitMEX symbol by the pinned rules alone (no instrument list):
/// spot `A_B`; perpetuals ending in `USDT`, `USD`, `EUR`; futures by month code with the
/// last-Friday rule (`XBTZ21` → `BTC-USD-20211231`; an alt root alone, `XRPU21`, is quoted
/// in XBT). `None` when the symbol fits none of these.
pub fn normalized_symbol(symbol: &str) -> Option<String> {
    let ok = |s: String| Instrument::parse(&s).ok().map(|_| s);
    if let Some((b, q)) = symbol.split_once('_') {
        return ok(format!("{}-{}", normalized_asset(b), normalized_asset(q)));
    }
    for quote in ["USDT", "USD", "EUR"] {
        if let Some(base) = symbol.strip_suffix(quote) {
            if !base.is_empty() {
                return ok(format!("{}-{}-PERP", normalized_asset(base), quote));
            }
        }
    }
    let (root, y, m) = split_future(symbol)?;
    let date = last_friday(y, m);
    let (base, quote) = if root == "XBT" {
        ("XBT", "USD")
    } else if let Some(b) = root.strip_suffix("USDT") {
        (b, "USDT")
    } else if let Some(b) = root.strip_suffix("USD") {
        (b, "USD")
    } else {
        (root, "XBT")
    };
    ok(format!(
        "{}-{}-{date}",
        normalized_asset(base),
        normalized_asset(quote)
    ))
}

/// The normalized symbol of an instrument-list row: `typ` `FFWCSX`/`FFWCSF` perpetual,
/// `FFCCSX` future (day from `expiry`), `IFXXXP` spot; base `underlying`, quote
/// `quoteCurrency`. Indices and anything else: `None`.
pub fn normalized_of_instrument(
    typ: &str,
    underlying: &str,
    quote: &str,
    expiry: Option<&str>,
) -> Option<String> {
    let (b, q) = (normalized_asset(underlying), normalized_asset(quote));
    let s = match typ {
        "FFWCSX" | "FFWCSF" => format!("{b}-{q}-PERP"),
        "FFCCSX" => {
            let e = expiry?;
            let date: String = e.get(0..10)?.chars().filter(|c| *c != '-').collect();
            format!("{b}-{q}-{date}")
        }
        "IFXXXP" => format!("{b}-{q}"),
        _ => return None,
    };
    Instrument::parse(&s).ok().map(|_| s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(s: &str) -> String {
        venue_symbol(&Instrument::parse(s).unwrap())
    }

    #[test]
    fn pinned_mapping_both_ways() {
        // Values from the module table (BitMEX's contract list naming).
        for (n, b) in [
            ("BTC-USD-PERP", "XBTUSD"),
            ("ETH-USD-PERP", "ETHUSD"),
            ("BTC-USDT-PERP", "XBTUSDT"),
            ("SOL-USDT-PERP", "SOLUSDT"),
            ("BTC-USD-20211231", "XBTZ21"),
            ("XRP-BTC-20210924", "XRPU21"),
            ("BTC-USDT-20230630", "XBTUSDTM23"),
            ("ETH-USD-20230331", "ETHUSDH23"),
            ("BTC-USDT", "XBT_USDT"),
        ] {
            assert_eq!(v(n), b, "{n}");
            assert_eq!(normalized_symbol(b).as_deref(), Some(n), "{b}");
        }
        assert_eq!(normalized_symbol("XBT"), None);
    }

    #[test]
    fn last_fridays() {
        // Calendar: 2021-12-31 and 2021-09-24 and 2019-06-28 were Fridays.
        assert_eq!(last_friday(2021, 12), "20211231");
        assert_eq!(last_friday(2021, 9), "20210924");
        assert_eq!(last_friday(2019, 6), "20190628");
        assert_eq!(last_friday(2023, 3), "20230331");
        assert_eq!(last_friday(2024, 2), "20240223");
    }

    #[test]
    fn instrument_rows() {
        assert_eq!(
            normalized_of_instrument("FFCCSX", "ETH", "XBT", Some("2019-06-28T12:00:00.000Z"))
                .as_deref(),
            Some("ETH-BTC-20190628")
        );
        assert_eq!(
            normalized_of_instrument("FFWCSX", "XBT", "USD", None).as_deref(),
            Some("BTC-USD-PERP")
        );
        assert_eq!(normalized_of_instrument("MRCXXX", "XBT", "USD", None), None);
    }
}
