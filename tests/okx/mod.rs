//! OKX books rebuilt by the tests themselves, with OKX's checksum written here from its
//! documentation (not the service's code): the top 25 bids and asks interleaved
//! (`bid1:qty1:ask1:qty1:bid2:…`; when one side is shorter the other's levels follow alone),
//! prices and sizes as OKX sent them, joined by `:`, CRC32 read as a signed 32-bit integer.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// One side: exact price → (price text, size text) as OKX sent them.
pub type Side = BTreeMap<Decimal, (String, String)>;

/// Sets (or, for a zero size, deletes) one level.
pub fn set(side: &mut Side, price: &str, size: &str) {
    let k: Decimal = price.parse().unwrap();
    if size.parse::<Decimal>().unwrap().is_zero() {
        side.remove(&k);
    } else {
        side.insert(k, (price.to_string(), size.to_string()));
    }
}

/// OKX's checksum of a book (signed, as OKX sends it).
pub fn okx_crc(bids: &Side, asks: &Side) -> i32 {
    let b: Vec<&(String, String)> = bids.values().rev().take(25).collect();
    let a: Vec<&(String, String)> = asks.values().take(25).collect();
    let mut parts: Vec<String> = Vec::new();
    for i in 0..25 {
        if let Some((p, q)) = b.get(i) {
            parts.push(format!("{p}:{q}"));
        }
        if let Some((p, q)) = a.get(i) {
            parts.push(format!("{p}:{q}"));
        }
    }
    crc32fast::hash(parts.join(":").as_bytes()) as i32
}

/// The three instruments of the 2022 book recording, normalized.
pub const BOOK_SYMBOLS: [&str; 3] = ["BTC-USD-20220527", "UNI-USD-PERP", "BTC-USDT"];
