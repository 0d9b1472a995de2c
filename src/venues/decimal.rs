//! The one strict check every venue's decimal fields go through before they enter a record or
//! a book: plain digits with an optional fraction (`123`, `0.00100`), a minus sign only where
//! the field can be negative (funding rates, premiums), and no more digits than the book keys
//! and `rust_decimal` represent exactly ([`MAX_INTEGER`] integer digits and [`MAX_FRACTION`]
//! places, from the book key's own limits, and [`MAX_DIGITS`] significant digits). Anything else (`NaN`, ``, `-1` for a price, `1e400`,
//! `+1`, ` 1`, `1.`, 40 digits) is `ParseError::BadDecimal`, counted by the feed.

use super::ParseError;

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
