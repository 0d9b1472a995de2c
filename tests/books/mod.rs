//! Order books rebuilt by the tests themselves from what reached Kafka, with the venue's
//! checksum written here from its documentation (not the service's code).
#![allow(dead_code)]

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// One side: exact price → (price text, quantity text) as the venue sent them.
pub type Side = BTreeMap<Decimal, (String, String)>;

/// Sets (or, for a zero quantity, deletes) one level.
pub fn set(side: &mut Side, price: &str, quantity: &str) {
    let k: Decimal = price.parse().unwrap();
    if quantity.parse::<Decimal>().unwrap().is_zero() {
        side.remove(&k);
    } else {
        side.insert(k, (price.to_string(), quantity.to_string()));
    }
}

/// Keeps the best `depth` levels of each side (the subscribed window).
pub fn truncate(bids: &mut Side, asks: &mut Side, depth: usize) {
    while bids.len() > depth {
        bids.pop_first();
    }
    while asks.len() > depth {
        asks.pop_last();
    }
}

/// Kraken's checksum, from its documentation: the top 10 asks (lowest first) then the top 10
/// bids (highest first), each price and quantity with the `.` removed and leading zeros
/// stripped, concatenated, CRC32.
pub fn kraken_crc(bids: &Side, asks: &Side) -> u32 {
    let strip = |s: &str| s.replace('.', "").trim_start_matches('0').to_string();
    let mut text = String::new();
    for (p, q) in asks.values().take(10) {
        text += &strip(p);
        text += &strip(q);
    }
    for (p, q) in bids.values().rev().take(10) {
        text += &strip(p);
        text += &strip(q);
    }
    crc32fast::hash(text.as_bytes())
}

/// The ten pairs of the Kraken recording, normalized (XBT is BTC).
pub const KRAKEN_PAIRS: [&str; 10] = [
    "ADA-BTC",
    "BTC-CHF",
    "OMG-USD",
    "OCEAN-BTC",
    "ETH-CHF",
    "SC-EUR",
    "GRT-ETH",
    "KSM-BTC",
    "XMR-USD",
    "WAVES-EUR",
];
