//! Bybit REST: the instrument lists (`GET /v5/market/instruments-info?category=…`), one
//! request per category, paged by `cursor` (`result.nextPageCursor`; spot answers in one
//! page). Options list only one base coin per request (BTC when none is named), so the
//! option list is requested for BTC, ETH and SOL. Every instrument in `Trading` status is
//! named from its own fields: spot `baseCoin-quoteCoin`; perpetuals `base-quote-PERP`;
//! futures `base-quote-YYYYMMDD` (from `deliveryTime`, UTC); options
//! `base-quote-YYYYMMDD-STRIKE-C|P` (the strike from the symbol).

use super::messages::{InstrumentInfo, InstrumentsAnswer};
use super::{Category, INSTRUMENTS_PATH};
use crate::venues::json::ms_text_to_us;
use crate::venues::{Instrument, InstrumentPage, ParseError};

/// Option base coins whose lists are requested.
pub const OPTION_BASE_COINS: [&str; 3] = ["BTC", "ETH", "SOL"];

/// Page size asked for (Bybit's maximum).
pub const PAGE_LIMIT: u32 = 1000;

/// The first page of every category's list.
pub fn instrument_requests() -> Vec<String> {
    let mut out = Vec::new();
    for c in Category::ALL {
        match c {
            Category::Spot => out.push(format!("{INSTRUMENTS_PATH}?category=spot")),
            Category::Option => {
                for coin in OPTION_BASE_COINS {
                    out.push(format!(
                        "{INSTRUMENTS_PATH}?category=option&baseCoin={coin}&limit={PAGE_LIMIT}"
                    ));
                }
            }
            _ => out.push(format!(
                "{INSTRUMENTS_PATH}?category={}&limit={PAGE_LIMIT}",
                c.as_str()
            )),
        }
    }
    out
}

/// `value` percent-encoded for a query (unreserved characters kept).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` with its `cursor` parameter set to `cursor`.
pub fn with_cursor(path: &str, cursor: &str) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
        .collect();
    let c = format!("cursor={}", encode(cursor));
    params.push(&c);
    format!("{base}?{}", params.join("&"))
}

/// The value of `key` in `path`'s query.
fn query_value<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
}

/// `YYYYMMDD` (UTC) of a time in ms given as text.
fn ymd_of_ms(ms: &str) -> Option<String> {
    let us = ms_text_to_us(ms).ok()?;
    let days = us.div_euclid(86_400_000_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Some(format!("{y:04}{m:02}{d:02}"))
}

/// The normalized symbol of one listed instrument of `category` (`None`: not one this
/// service names, e.g. an unknown contract type).
pub fn normalized(category: Category, i: &InstrumentInfo) -> Option<String> {
    let (b, q) = (i.base_coin.as_str(), i.quote_coin.as_str());
    let s = match category {
        Category::Spot => format!("{b}-{q}"),
        Category::Linear | Category::Inverse => match i.contract_type.as_str() {
            "LinearPerpetual" | "InversePerpetual" => format!("{b}-{q}-PERP"),
            "LinearFutures" | "InverseFutures" => {
                format!("{b}-{q}-{}", ymd_of_ms(&i.delivery_time)?)
            }
            _ => return None,
        },
        Category::Option => {
            let strike = i.symbol.split('-').nth(2)?;
            let right = match i.options_type.as_str() {
                "Call" => 'C',
                "Put" => 'P',
                _ => return None,
            };
            format!("{b}-{q}-{}-{strike}-{right}", ymd_of_ms(&i.delivery_time)?)
        }
    };
    Instrument::parse(&s).ok().map(|_| s)
}

/// Parses one page answered for `path`: the (venue symbol, normalized symbol) pairs of
/// instruments in `Trading` status, and the next page's path when `nextPageCursor` is set.
pub fn parse_instruments_page(path: &str, body: &str) -> Result<InstrumentPage, ParseError> {
    let a: InstrumentsAnswer = serde_json::from_str(body)?;
    if a.ret_code != 0 {
        return Err(ParseError::Venue {
            code: a.ret_code,
            msg: a.ret_msg.chars().take(200).collect(),
        });
    }
    let r = a
        .result
        .ok_or_else(|| ParseError::Unsupported("instrument list without result".into()))?;
    let category = Category::from_name(&r.category)
        .or_else(|| query_value(path, "category").and_then(Category::from_name))
        .ok_or_else(|| ParseError::Unsupported("instrument list of no category".into()))?;
    let mut pairs: Vec<(String, String)> = r
        .list
        .iter()
        .filter(|i| i.status == "Trading")
        .filter_map(|i| Some((i.symbol.clone(), normalized(category, i)?)))
        .collect();
    pairs.sort();
    let next = r
        .next_page_cursor
        .filter(|c| !c.is_empty())
        .map(|c| with_cursor(path, &c));
    Ok(InstrumentPage { pairs, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_cursors() {
        // 2023-09-29T08:00:00Z = 1695974400000 ms.
        assert_eq!(ymd_of_ms("1695974400000").as_deref(), Some("20230929"));
        assert_eq!(ymd_of_ms("0").as_deref(), Some("19700101"));
        // 2024-02-29T00:00:00Z = 1709164800000 ms (leap day).
        assert_eq!(ymd_of_ms("1709164800000").as_deref(), Some("20240229"));
        assert_eq!(ymd_of_ms("x"), None);
        assert_eq!(
            with_cursor("/p?category=linear&limit=1000", "ab=c%"),
            "/p?category=linear&limit=1000&cursor=ab%3Dc%25"
        );
        assert_eq!(
            with_cursor("/p?category=linear&cursor=old", "new"),
            "/p?category=linear&cursor=new"
        );
        assert_eq!(instrument_requests().len(), 6);
    }
}
