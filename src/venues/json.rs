//! What every JSON venue needs and no venue owns: exact time conversion (RFC 3339, seconds
//! and milliseconds texts → µs since the epoch, by text arithmetic, never through a float) and
//! number literals taken as the venue wrote them, checked as exact decimals.

use serde_json::value::RawValue;

use super::decimal;
use super::{ParseError, SymbolMap};

fn bad(text: &str) -> ParseError {
    ParseError::BadDecimal(text.chars().take(48).collect())
}

/// A time in seconds with a fraction (`"1618678133.365913"`, Kraken v1, Deribit) → µs since the epoch, by text
/// arithmetic (never through a float); digits past the µs are truncated.
pub fn secs_to_us(text: &str) -> Result<i64, ParseError> {
    match secs_prefix(text.as_bytes()) {
        Some((n, us)) if n == text.len() => Ok(us),
        _ => Err(bad(text)),
    }
}

/// The seconds time [`secs_to_us`] reads at the start of `b` (up to 12 integer digits, then
/// an optional `.` and digits), in one pass: how many bytes it spans and its µs; `None` when
/// `b` does not start with one. A scanner checks what follows (`secs_to_us` accepts exactly
/// the texts this spans whole).
pub fn secs_prefix(b: &[u8]) -> Option<(usize, i64)> {
    let mut i = 0;
    let mut secs: i64 = 0;
    while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        if i == 12 {
            return None;
        }
        secs = secs * 10 + i64::from(c - b'0');
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let (mut us, mut places): (i64, u32) = (0, 0);
    if b.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if places < 6 {
                us = us * 10 + i64::from(c - b'0');
                places += 1;
            }
            i += 1;
        }
    }
    Some((i, secs * 1_000_000 + us * 10i64.pow(6 - places)))
}

/// µs since the epoch → seconds text with six decimals (`1618678133.365913`).
pub fn us_to_secs(us: i64) -> String {
    format!(
        "{}.{:06}",
        us.div_euclid(1_000_000),
        us.rem_euclid(1_000_000)
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 time (`2023-09-25T07:49:37.708706Z`: Kraken v2, Coinbase, BitMEX; up to nine decimals, `Z` or
/// `±HH:MM`) → µs since the epoch, by text arithmetic; digits past the µs are truncated.
pub fn rfc3339_to_us(text: &str) -> Result<i64, ParseError> {
    let err = || bad(text);
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, ParseError> {
        let s = text.get(r).ok_or_else(err)?;
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        s.parse().map_err(|_| err())
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(err());
    }
    let mut i = 19;
    let mut us = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                us = us * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(err());
        }
        for _ in (i - start)..6 {
            us *= 10;
        }
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    Ok(secs * 1_000_000 + us)
}

/// The text of a JSON scalar as the venue wrote it: a number's literal, or a string's content
/// (strings with escapes are refused).
pub fn scalar(raw: &RawValue) -> Result<&str, ParseError> {
    let t = raw.get();
    match t.as_bytes().first() {
        Some(b'"') => t
            .get(1..t.len() - 1)
            .filter(|s| t.len() >= 2 && t.ends_with('"') && !s.contains('\\'))
            .ok_or_else(|| bad(t)),
        Some(b'-' | b'0'..=b'9') => Ok(t),
        _ => Err(bad(t)),
    }
}

/// Milliseconds since the epoch (a JSON integer or its text) → µs; refuses what does not fit.
pub fn ms_to_us(ms: i64) -> Result<i64, ParseError> {
    ms.checked_mul(1000)
        .filter(|us| *us >= 0)
        .ok_or_else(|| bad(&ms.to_string()))
}

/// A text of milliseconds since the epoch (`"1672304486865"`, Bybit and OKX write them as
/// strings) → µs.
pub fn ms_text_to_us(text: &str) -> Result<i64, ParseError> {
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(text));
    }
    ms_to_us(text.parse().map_err(|_| bad(text))?)
}

/// A number literal or string (as the venue wrote it) checked as a non-negative exact decimal:
/// prices, sizes, volumes. Exponents, NaN and hostile digit counts are refused.
pub fn unsigned(raw: &RawValue) -> Result<&str, ParseError> {
    decimal::unsigned(scalar(raw)?)
}

/// Like [`unsigned`], for fields that may be negative (funding rates, changes).
pub fn signed(raw: &RawValue) -> Result<&str, ParseError> {
    decimal::signed(scalar(raw)?)
}

/// The normalized symbol of a venue symbol, exactly as the venue writes it (no case folding:
/// the [`SymbolMap`] was built with the venue's own spelling).
pub fn symbol(map: &SymbolMap, venue_symbol: &str) -> Result<std::sync::Arc<str>, ParseError> {
    map.shared(venue_symbol)
        .ok_or_else(|| ParseError::UnknownSymbol(venue_symbol.chars().take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_exact_to_the_microsecond() {
        // 2023-09-25T07:49:37Z is 1695628177 s (date -d ... +%s).
        assert_eq!(
            rfc3339_to_us("2023-09-25T07:49:37.708706Z").ok(),
            Some(1_695_628_177_708_706)
        );
        assert_eq!(
            rfc3339_to_us("2023-09-25T07:49:37.708706123Z").ok(),
            Some(1_695_628_177_708_706)
        );
        assert_eq!(
            rfc3339_to_us("2023-09-25T09:49:37.5+02:00").ok(),
            Some(1_695_628_177_500_000)
        );
        assert!(rfc3339_to_us("2023-13-25T07:49:37Z").is_err());
        assert!(rfc3339_to_us("yesterday").is_err());
    }

    #[test]
    fn milliseconds_and_seconds() {
        assert_eq!(
            ms_text_to_us("1672304486865").ok(),
            Some(1_672_304_486_865_000)
        );
        assert!(ms_text_to_us("-1").is_err());
        assert!(ms_text_to_us("99999999999999999999").is_err());
        assert!(ms_to_us(i64::MAX).is_err());
        assert_eq!(
            secs_to_us("1618678133.365913").ok(),
            Some(1_618_678_133_365_913)
        );
        assert_eq!(us_to_secs(1_618_678_133_365_913), "1618678133.365913");
    }

    #[test]
    fn literals_are_taken_as_written_and_checked() {
        let raw = |t: &str| serde_json::from_str::<Box<RawValue>>(t).unwrap();
        let n = raw("45283.50");
        assert_eq!(unsigned(&n).ok(), Some("45283.50"));
        let s = raw("\"0.00100\"");
        assert_eq!(unsigned(&s).ok(), Some("0.00100"));
        let neg = raw("\"-0.0001\"");
        assert!(unsigned(&neg).is_err());
        assert_eq!(signed(&neg).ok(), Some("-0.0001"));
        let exp = raw("1e400");
        assert!(unsigned(&exp).is_err());
    }
}
