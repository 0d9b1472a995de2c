//! Every decimal field of every venue goes through one strict check: a recorded message of
//! each channel with one decimal replaced by a hostile value is refused with
//! `ParseError::BadDecimal` (never copied into a record, never rounded into a book level).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use tickflow::book::{OrderBook, Side};
use tickflow::venues::binance::Binance;
use tickflow::venues::decimal;
use tickflow::venues::kraken::{Kraken, WsVersion};
use tickflow::venues::{ParseError, SymbolMap, Venue, VenueEvent};

/// Not plain decimals, or more digits than a book level holds exactly.
const HOSTILE: [&str; 11] = [
    "NaN",
    "",
    "1e400",
    "+1",
    " 1",
    "1.2.3",
    "0x1F",
    "1.",
    "1234567890123456789012345678901234567890",
    "0.0000000000000000001",
    // 21 integer digits: past what a book key holds exactly (10^20).
    "100000000000000000000",
];

fn first_line(dir: &str, file: &str) -> Value {
    let text = std::fs::read_to_string(format!("tests/fixtures/{dir}/{file}")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

fn at<'a>(v: &'a mut Value, path: &str) -> &'a mut Value {
    path.split('/').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &mut v[i],
        Err(_) => &mut v[k],
    })
}

/// Each hostile value (and `-1` where the field cannot be negative) at `path` is refused.
fn refused(
    msg: &Value,
    paths: &[&str],
    negative_ok: bool,
    parse: impl Fn(&str) -> Result<(), ParseError>,
) {
    refused_but(msg, paths, negative_ok, &[], parse)
}

/// [`refused`], except the values in `allowed` (documented meanings, e.g. no funding rate).
fn refused_but(
    msg: &Value,
    paths: &[&str],
    negative_ok: bool,
    allowed: &[&str],
    parse: impl Fn(&str) -> Result<(), ParseError>,
) {
    parse(&msg.to_string()).unwrap_or_else(|e| panic!("the recorded message parses: {e}"));
    for path in paths {
        let mut values: Vec<&str> = HOSTILE
            .iter()
            .copied()
            .filter(|v| !allowed.contains(v))
            .collect();
        if !negative_ok {
            values.push("-1");
        }
        for bad in values {
            let mut m = msg.clone();
            *at(&mut m, path) = Value::String(bad.into());
            match parse(&m.to_string()) {
                Err(ParseError::BadDecimal(_)) => {}
                other => panic!("{path} = {bad:?}: {other:?}"),
            }
        }
    }
}

fn binance(venue: Binance, symbol: &str) -> impl Fn(&str) -> Result<(), ParseError> {
    let map = SymbolMap::new([(symbol.to_string(), "X-Y".to_string())]);
    move |text| {
        let mut out: Vec<VenueEvent> = Vec::new();
        venue.parse(text, 1, &map, &mut out)
    }
}

#[test]
fn binance_spot_and_usdm_channels_refuse_hostile_decimals() {
    let spot = |sym| binance(Binance::spot(), sym);
    let m = first_line("binance", "binance_trade.jsonl");
    refused(&m, &["data/p", "data/q"], false, spot("ETHUSDT"));
    let m = first_line("binance", "binance_aggTrade.jsonl");
    refused(&m, &["data/p", "data/q"], false, spot("NKNUSDT"));
    let m = first_line("binance", "binance_depthUpdate.jsonl");
    refused(&m, &["data/b/0/0", "data/b/2/1"], false, spot("NKNUSDT"));
    let m = first_line("binance", "binance_bookTicker.jsonl");
    refused(
        &m,
        &["data/b", "data/B", "data/a", "data/A"],
        false,
        spot("NKNUSDT"),
    );
    let m = first_line("binance", "binance_ticker.jsonl");
    let paths = [
        "data/c", "data/o", "data/h", "data/l", "data/v", "data/q", "data/b", "data/a",
    ];
    refused(&m, &paths, false, spot("DOGEBNB"));
    let m = first_line("binance", "binance_kline.jsonl");
    let paths = [
        "data/k/o", "data/k/c", "data/k/h", "data/k/l", "data/k/v", "data/k/q",
    ];
    refused(&m, &paths, false, spot("NKNUSDT"));

    let usdm = |sym| binance(Binance::usdm(), sym);
    let m = first_line("binance", "binance_futures_markPrice.jsonl");
    refused(&m, &["data/p"], false, usdm("BTCUSDT"));
    // A funding rate may be negative, and is empty on delivery contracts (Binance's
    // documented `"r":""`), but nothing else goes.
    refused_but(&m, &["data/r"], true, &[""], usdm("BTCUSDT"));
    let mut neg = m.clone();
    *at(&mut neg, "data/r") = Value::String("-0.00010000".into());
    usdm("BTCUSDT")(&neg.to_string()).unwrap();
    let m = first_line("binance", "binance_futures_forceOrder.jsonl");
    refused(&m, &["data/o/q", "data/o/p"], false, usdm("BTCUSDT"));

    // REST: depth snapshots and open interest.
    let v = Binance::usdm();
    let snap = first_line("binance", "binance_futures_depth_snapshot_rest.jsonl");
    refused(&snap, &["bids/0/0", "asks/0/1"], false, |t| {
        v.parse_snapshot(t).map(|_| ())
    });
    let oi = first_line("binance", "binance_futures_openInterest.jsonl")["data"].clone();
    let map = SymbolMap::new([("BTCUSDT".to_string(), "BTC-USDT-PERP".to_string())]);
    refused(&oi, &["openInterest"], false, |t| {
        v.parse_open_interest(t, 1, &map).map(|_| ())
    });
}

#[test]
fn kraken_channels_refuse_hostile_decimals() {
    let venue = Kraken::with_version(WsVersion::V1);
    let map = SymbolMap::new(
        [
            ("XMR/USD", "XMR-USD"),
            ("WAVES/EUR", "WAVES-EUR"),
            ("XBT/USD", "BTC-USD"),
            ("ADA/XBT", "ADA-BTC"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
    );
    let parse = |text: &str| {
        let mut out = Vec::new();
        venue.parse(text, 1, &map, &mut out).map(|_| ())
    };
    let m = first_line("kraken", "kraken_trade.jsonl");
    refused(&m, &["1/0/0", "1/0/1"], false, parse);
    let m = first_line("kraken", "kraken_book_update.jsonl");
    refused(&m, &["1/b/0/0", "1/b/0/1"], false, parse);
    let m = first_line("kraken", "kraken_book_snapshot.jsonl");
    refused(&m, &["1/as/0/0", "1/bs/3/1"], false, parse);
    let m = first_line("kraken", "kraken_ticker.jsonl");
    let paths = [
        "1/a/0", "1/b/0", "1/c/0", "1/v/1", "1/l/1", "1/h/1", "1/o/1",
    ];
    refused(&m, &paths, false, parse);
    let m = first_line("kraken", "kraken_cmp_bbo.jsonl");
    refused(&m, &["1/0", "1/1", "1/3", "1/4"], false, parse);
    let m = first_line("kraken", "kraken_cmp_candlestick.jsonl");
    refused(&m, &["1/2", "1/3", "1/4", "1/5", "1/7"], false, parse);
}

/// The frame check and the book's key have one limit: every edge value the check accepts is a
/// level the book keeps with its own digits (two prices one unit apart stay two levels), and
/// every value just past a limit is refused by both. Values typed by hand.
#[test]
fn a_price_the_check_accepts_is_one_the_book_keys_exactly() {
    let at_the_limit = [
        // 20 integer digits.
        "99999999999999999999",
        "10000000000000000000",
        // Leading zeros are not digits of the value.
        "0000099999999999999999999",
        // 18 places.
        "0.000000000000000001",
        "0.999999999999999999",
        // 20 integer digits and 8 places: 28 significant digits.
        "99999999999999999999.99999999",
        "12345678901234567890.12345678",
        // 10 integer digits and 18 places: 28 significant digits.
        "1234567890.123456789012345678",
    ];
    let mut book = OrderBook::new();
    for p in at_the_limit {
        assert_eq!(decimal::unsigned(p).unwrap(), p);
        book.apply(Side::Bid, p, "1")
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        book.apply(Side::Ask, p, "2")
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        let signed = format!("-{p}");
        assert_eq!(decimal::signed(&signed).unwrap(), signed);
    }
    // "99999999999999999999" and "0000099999999999999999999" are one price.
    assert_eq!(book.len(), (7, 7));
    // One unit of the last place apart: two levels, each with its own digits.
    let mut b = OrderBook::new();
    b.apply(Side::Ask, "99999999999999999999.99999998", "1")
        .unwrap();
    b.apply(Side::Ask, "99999999999999999999.99999999", "2")
        .unwrap();
    b.apply(Side::Ask, "0.000000000000000002", "3").unwrap();
    b.apply(Side::Ask, "0.000000000000000001", "4").unwrap();
    assert_eq!(
        b.top(Side::Ask, 9),
        [
            ("0.000000000000000001", "4"),
            ("0.000000000000000002", "3"),
            ("99999999999999999999.99999998", "1"),
            ("99999999999999999999.99999999", "2"),
        ]
    );

    let just_past = [
        // 21 integer digits (what the key held before: up to ~1.7·10^20).
        "100000000000000000000",
        "170141183460469231731",
        "0000100000000000000000000",
        "100000000000000000000.5",
        // 19 places.
        "0.0000000000000000001",
        "1.0000000000000000000",
    ];
    for p in just_past {
        assert!(decimal::unsigned(p).is_err(), "{p}");
        assert!(decimal::signed(&format!("-{p}")).is_err(), "-{p}");
        assert!(b.apply(Side::Bid, p, "1").is_err(), "{p}");
        assert!(b.apply(Side::Ask, p, "1").is_err(), "{p}");
    }
    // 29 significant digits fit the key but not `rust_decimal`: the check refuses them.
    assert!(decimal::unsigned("99999999999999999999.999999999").is_err());
    assert!(decimal::unsigned("1234567890.1234567890123456789").is_err());
}
