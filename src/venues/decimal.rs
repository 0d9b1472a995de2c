//! The one strict check every venue's decimal fields go through before they enter a record or
//! a book: plain digits with an optional fraction (`123`, `0.00100`), a minus sign only where
//! the field can be negative (funding rates, premiums), and no more digits than the book keys
//! and `rust_decimal` represent exactly. Anything else (`NaN`, ``, `-1` for a price, `1e400`,
//! `+1`, ` 1`, `1.`, 40 digits) is `ParseError::BadDecimal`, counted by the feed.

use super::ParseError;

/// Significant digits a decimal may have (what `rust_decimal` holds exactly).
pub const MAX_DIGITS: usize = 28;

/// Fractional digits a decimal may have (the book's exact key scale).
pub const MAX_FRACTION: usize = crate::book::levels::KEY_SCALE as usize;

fn check(s: &str, negative_ok: bool) -> Result<&str, ParseError> {
    let bad = || ParseError::BadDecimal(s.chars().take(48).collect());
    let body = match s.strip_prefix('-') {
        Some(rest) if negative_ok => rest,
        Some(_) => return Err(bad()),
        None => s,
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(bad());
    }
    let frac_len = frac.map_or(0, str::len);
    let significant = int.trim_start_matches('0').len() + frac_len;
    if frac_len > MAX_FRACTION || significant > MAX_DIGITS {
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
        ] {
            assert!(unsigned(bad).is_err(), "{bad:?}");
        }
        assert!(signed("-").is_err() && signed("-.1").is_err() && signed("-1e3").is_err());
    }
}
