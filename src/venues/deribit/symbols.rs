//! Deribit instrument names ↔ normalized symbols (pinned; no instrument list needed).
//!
//! | Deribit | normalized | kind |
//! |---|---|---|
//! | `BTC-PERPETUAL` | `BTC-USD-PERP` | inverse perpetual (USD quote, BTC settled) |
//! | `BTC-31DEC21` | `BTC-USD-20211231` | inverse future |
//! | `BTC-31DEC21-50000-C` | `BTC-USD-20211231-50000-C` | option (coin settled) |
//! | `BTC_USDC-PERPETUAL` | `BTC-USDC-PERP` | linear perpetual (USDC settled) |
//! | `ETH_USDC-28JUN24` | `ETH-USDC-20240628` | linear future |
//! | `XRP_USDC-9MAR24-0d5-C` | `XRP-USDC-20240309-0.5-C` | linear option (`d` is the decimal point) |
//! | `BTC_USDC` | `BTC-USDC` | spot |
//!
//! Days are written without a leading zero (`9MAR24`), years with two digits (20YY).
//! Combos (`BTC-FS-…`, `BTC-CS-…`, `…_PERP` spreads) have no normalized form.

use crate::venues::{Instrument, InstrumentKind};

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// `31DEC21` → `20211231`.
fn date_to_normalized(d: &str) -> Option<String> {
    let digits = d.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&digits) || d.len() != digits + 5 {
        return None;
    }
    let day: u32 = d.get(..digits)?.parse().ok()?;
    let month = MONTHS
        .iter()
        .position(|m| Some(*m) == d.get(digits..digits + 3))?
        + 1;
    let year = d.get(digits + 3..)?;
    if !(1..=31).contains(&day) || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("20{year}{month:02}{day:02}"))
}

/// `20211231` → `31DEC21`; `20240309` → `9MAR24`.
fn date_to_venue(d: &str) -> Option<String> {
    if d.len() != 8 || !d.starts_with("20") {
        return None;
    }
    let month: usize = d.get(4..6)?.parse().ok()?;
    let day: u32 = d.get(6..8)?.parse().ok()?;
    Some(format!(
        "{day}{}{}",
        MONTHS.get(month.checked_sub(1)?)?,
        d.get(2..4)?
    ))
}

fn asset(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The normalized symbol of a Deribit instrument name, `None` for combos and anything else
/// this mapping does not cover.
pub fn normalized(name: &str) -> Option<String> {
    let mut parts = name.split('-');
    let currency = parts.next()?;
    let (base, quote) = match currency.split_once('_') {
        Some((b, q)) => (b, q),
        None => (currency, "USD"),
    };
    if !asset(base) || !asset(quote) {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    let s = match rest.as_slice() {
        [] if currency.contains('_') => format!("{base}-{quote}"),
        ["PERPETUAL"] => format!("{base}-{quote}-PERP"),
        [d] => format!("{base}-{quote}-{}", date_to_normalized(d)?),
        [d, strike, right @ ("C" | "P")] => {
            if strike.is_empty()
                || !strike.bytes().all(|b| b.is_ascii_digit() || b == b'd')
                || strike.starts_with('d')
                || strike.ends_with('d')
                || strike.matches('d').count() > 1
            {
                return None;
            }
            format!(
                "{base}-{quote}-{}-{}-{right}",
                date_to_normalized(d)?,
                strike.replace('d', ".")
            )
        }
        _ => return None,
    };
    Instrument::parse(&s).ok().map(|_| s)
}

/// The Deribit instrument name of a normalized instrument (USD-quoted ones are the inverse
/// `BTC-…` family, others the linear `BASE_QUOTE-…` family).
pub fn venue_name(i: &Instrument) -> Option<String> {
    let currency = if i.quote == "USD" {
        i.base.clone()
    } else {
        format!("{}_{}", i.base, i.quote)
    };
    Some(match i.kind {
        InstrumentKind::Spot => format!("{}_{}", i.base, i.quote),
        InstrumentKind::Perpetual => format!("{currency}-PERPETUAL"),
        InstrumentKind::Future => format!("{currency}-{}", date_to_venue(i.expiry.as_deref()?)?),
        InstrumentKind::Option => format!(
            "{currency}-{}-{}-{}",
            date_to_venue(i.expiry.as_deref()?)?,
            i.strike.as_deref()?.replace('.', "d"),
            i.right?
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_both_ways() {
        assert_eq!(date_to_normalized("31DEC21").as_deref(), Some("20211231"));
        assert_eq!(date_to_normalized("9MAR24").as_deref(), Some("20240309"));
        assert_eq!(date_to_normalized("31DEX21"), None);
        assert_eq!(date_to_normalized("123DEC21"), None);
        assert_eq!(date_to_venue("20211231").as_deref(), Some("31DEC21"));
        assert_eq!(date_to_venue("20240309").as_deref(), Some("9MAR24"));
    }
}
