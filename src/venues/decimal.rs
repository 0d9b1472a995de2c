//! The one strict check every venue's decimal fields go through before they enter a record or
//! a book: plain digits with an optional fraction (`123`, `0.00100`), a minus sign only where
//! the field can be negative (funding rates, premiums), and no more digits than the book keys
//! and `rust_decimal` represent exactly ([`MAX_INTEGER`] integer digits and [`MAX_FRACTION`]
//! places, from the book key's own limits, and [`MAX_DIGITS`] significant digits). Anything else (`NaN`, ``, `-1` for a price, `1e400`,
//! `+1`, ` 1`, `1.`, 40 digits) is `ParseError::BadDecimal`, counted by the feed.

use super::ParseError;
use crate::schema::borrowed::LevelKey;

/// Significant digits a decimal may have (what `rust_decimal` holds exactly).
pub const MAX_DIGITS: usize = 28;

/// Fractional digits a decimal may have (the book's exact key scale).
pub const MAX_FRACTION: usize = crate::book::levels::KEY_SCALE as usize;

/// Integer digits a decimal may have, leading zeros aside (what the book's key holds exactly:
/// [`crate::book::levels::KEY_INTEGER_DIGITS`]).
pub const MAX_INTEGER: usize = crate::book::levels::KEY_INTEGER_DIGITS as usize;

/// One pass over the bytes (this runs for every level of every diff on the hot path).
fn check(s: &str, negative_ok: bool) -> Result<&str, ParseError> {
    let bad = || ParseError::BadDecimal(s.chars().take(48).collect());
    let b = s.as_bytes();
    let start = usize::from(b.first() == Some(&b'-'));
    if start == 1 && !negative_ok {
        return Err(bad());
    }
    let (mut dot, mut significant, mut leading) = (None, 0usize, true);
    // Integer digits from the first non-zero one (what the book key must hold).
    let mut integer = 0usize;
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b'0'..=b'9' => {
                // Leading zeros of the integer part are not significant; every fraction digit is.
                if !(leading && c == b'0' && dot.is_none()) {
                    leading = false;
                    significant += 1;
                    if dot.is_none() {
                        integer += 1;
                    }
                }
            }
            b'.' if dot.is_none() => dot = Some(i),
            _ => return Err(bad()),
        }
    }
    let fraction = match dot {
        // Digits on both sides of the point.
        Some(d) if d == start || d + 1 == b.len() => return Err(bad()),
        Some(d) => b.len() - d - 1,
        None if start == b.len() => return Err(bad()),
        None => 0,
    };
    if fraction > MAX_FRACTION || integer > MAX_INTEGER || significant > MAX_DIGITS {
        return Err(bad());
    }
    Ok(s)
}

/// One level of a book side: the price and the quantity pass [`unsigned`], and in the same
/// pass the price becomes the book's exact key (units of 10^-18, as
/// `crate::book::levels::decimal_key` has it) and the quantity's zeroness is found. The hot
/// path of a depth diff reads each decimal once.
pub fn unsigned_level(price: &str, quantity: &str) -> Result<LevelKey, ParseError> {
    let (price_key, _) = keyed(price)?;
    let (_, zero) = keyed(quantity)?;
    Ok(LevelKey {
        price: price_key,
        zero,
    })
}

/// [`unsigned`]'s check and, in the same pass, the value as the book's key and whether it is
/// zero.
fn keyed(s: &str) -> Result<(i128, bool), ParseError> {
    match keyed_prefix(s.as_bytes()) {
        Some((n, key, zero)) if n == s.len() => Ok((key, zero)),
        _ => Err(ParseError::BadDecimal(s.chars().take(48).collect())),
    }
}

/// The unsigned decimal at the start of `b`, read once: its length (it ends at the first
/// byte that is neither a digit nor its one point), its value as the book's key and whether
/// it is zero; `None` when that prefix is not a decimal [`unsigned`] accepts. A scanner reads
/// a quoted decimal with it and then expects the closing quote.
pub fn keyed_prefix(b: &[u8]) -> Option<(usize, i128, bool)> {
    // Digits accumulate (up to 19 in a u64, the common case, the rest in an i128). At most
    // MAX_INTEGER + MAX_FRACTION (38) digits pass the limits below, under i128::MAX.
    let (mut small, mut wide, mut digits, mut dot) = (0u64, None::<i128>, 0usize, None);
    let mut n = 0;
    while let Some(&c) = b.get(n) {
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            if digits < 19 {
                small = small * 10 + u64::from(d);
            } else {
                let w = wide.unwrap_or(i128::from(small));
                wide = Some(w.checked_mul(10)?.checked_add(i128::from(d))?);
            }
            digits += 1;
        } else if c == b'.' && dot.is_none() {
            dot = Some(n);
        } else {
            break;
        }
        n += 1;
    }
    let (integer_len, fraction) = match dot {
        // Digits on both sides of the point.
        Some(d) if d == 0 || d + 1 == n => return None,
        Some(d) => (d, n - d - 1),
        None if n == 0 => return None,
        None => (n, 0),
    };
    // Leading zeros of the integer part are not significant; every fraction digit is.
    let leading = b
        .get(..integer_len)?
        .iter()
        .take_while(|c| **c == b'0')
        .count();
    let integer = integer_len - leading;
    if fraction > MAX_FRACTION || integer > MAX_INTEGER || integer + fraction > MAX_DIGITS {
        return None;
    }
    // The limits keep the key below 10^(MAX_INTEGER + MAX_FRACTION) = 10^38: no overflow. Up
    // to 19 digits it is one 64 × 64 → 128-bit multiplication.
    let scale = *POW10.get(MAX_FRACTION - fraction)?;
    match wide {
        None => Some((n, i128::from(small) * i128::from(scale), small == 0)),
        Some(w) => Some((n, w.checked_mul(i128::from(scale))?, w == 0)),
    }
}

/// 10^0 ..= 10^[`MAX_FRACTION`] (10^18 < u64::MAX).
const POW10: [u64; MAX_FRACTION + 1] = {
    let mut t = [1u64; MAX_FRACTION + 1];
    let mut i = 1;
    while i <= MAX_FRACTION {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// A decimal that cannot be negative (prices, quantities, volumes).
pub fn unsigned(s: &str) -> Result<&str, ParseError> {
    check(s, false)
}

/// A decimal that may be negative (funding rates, premiums, price changes).
pub fn signed(s: &str) -> Result<&str, ParseError> {
    check(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass level check accepts exactly what [`unsigned`] accepts, and its key and
    /// zeroness are the book's own (`decimal_key`), over hand-picked edge cases and many
    /// generated strings.
    #[test]
    fn the_one_pass_level_key_is_the_books_key() {
        use crate::book::levels::decimal_key;
        let mut cases: Vec<String> = [
            "0",
            "1",
            "0.00000001",
            "123456.78900000",
            "000.5",
            "0.0",
            "00.000",
            "99999999999999999999.12345678",
            "99999999999999999999",
            "00099999999999999999999",
            "100000000000000000000",
            "0.000000000000000001",
            "0.0000000000000000001",
            "1234567890123456789",
            "12345678901234567890",
            "1234567890.123456789012345678",
            "9999999999999999999.999999999",
            "",
            ".",
            "1.",
            ".5",
            "1.2.3",
            "-1",
            "+1",
            "1e5",
            " 1",
            "NaN",
            "58850.01000000",
            "7.609",
            "7.6090",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Generated: digits, dots and a few other bytes, lengths 0..45.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 46) as usize;
            let mut t = String::with_capacity(len);
            let mut y = x;
            for _ in 0..len {
                y = y
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                t.push(match (y >> 33) % 23 {
                    0 => '.',
                    1 => '-',
                    2 => 'e',
                    3..=8 => '0',
                    n => char::from(b'0' + (n % 10) as u8),
                });
            }
            cases.push(t);
        }
        for s in &cases {
            let checked = unsigned(s).is_ok();
            match keyed(s) {
                Ok((key, zero)) => {
                    assert!(checked, "{s:?} keyed but refused by the check");
                    assert_eq!(Some(key), decimal_key(s).ok(), "{s:?}");
                    assert_eq!(zero, key == 0, "{s:?}");
                }
                Err(_) => assert!(!checked, "{s:?} passes the check but was not keyed"),
            }
        }
        assert_eq!(
            unsigned_level("0.35130000", "0.00000000").unwrap(),
            LevelKey {
                price: 351_300_000_000_000_000,
                zero: true
            }
        );
        assert!(unsigned_level("1", "-1").is_err());
    }

    #[test]
    fn plain_decimals_pass_and_everything_else_is_refused() {
        for ok in [
            "0",
            "1",
            "0.00000001",
            "123456.78900000",
            "000.5",
            "99999999999999999999.12345678",
            "99999999999999999999", // 20 integer digits: the book key's limit
            "00099999999999999999999",
        ] {
            assert_eq!(unsigned(ok).unwrap(), ok);
        }
        assert_eq!(signed("-0.00010000").unwrap(), "-0.00010000");
        for bad in [
            "",
            "NaN",
            "nan",
            "inf",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.",
            ".5",
            "1.2.3",
            "1e400",
            "1E5",
            "0x10",
            "1,5",
            "١",
            "--1",
            // 40 significant digits: two different 40-digit prices would share one level.
            "1234567890123456789012345678901234567890",
            "0.0000000000000000001", // 19 fractional digits
            "100000000000000000000", // 21 integer digits: more than a book key holds
            "0100000000000000000000.1",
        ] {
            assert!(unsigned(bad).is_err(), "{bad:?}");
        }
        assert!(signed("-").is_err() && signed("-.1").is_err() && signed("-1e3").is_err());
    }
}
