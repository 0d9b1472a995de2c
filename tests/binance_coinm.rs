//! Binance COIN-M futures (`binance_coinm`): golden tests on real COIN-M messages
//! (tests/fixtures/binance_coinm, see SOURCES.md), symbol mapping both ways, `exchangeInfo`
//! normalization, config validation and the replay server. No broker needed.
//!
//! Every expected value below is typed by hand from Binance's documented field semantics
//! (`m` = buyer is maker, so the taker sold; times ms → µs; decimals exactly as sent; quantities
//! in contracts), not copied from the parser's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt;
use tickflow::book::{BookSync, Diff, Levels, Snapshot, Step};
use tickflow::config::Config;
use tickflow::replay::{ReplayServer, ReplayServerConfig};
use tickflow::schema::v2beta1::{liquidation, trade};
use tickflow::schema::{self as s, Normalized};
use tickflow::venues::binance::Binance;
use tickflow::venues::binance_coinm::{coinm, COINM};
use tickflow::venues::{
    Channel, Instrument, InstrumentKind, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent,
};
use tokio_tungstenite::tungstenite::Message;

const DIR: &str = "tests/fixtures/binance_coinm";
const RECEIPT: i64 = 1_700_000_000_000_001;
const EXCHANGE: &str = "BINANCE_DELIVERY";

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{DIR}/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> SymbolMap {
    SymbolMap::new(pairs.iter().map(|(v, n)| (v.to_string(), n.to_string())))
}

/// The one event of fixture line `line` (1-based); trades are decoded from their bytes.
fn one(file: &str, line: usize, symbols: &SymbolMap) -> VenueEvent {
    let mut out = Vec::new();
    coinm()
        .parse(&lines(file)[line - 1], RECEIPT, symbols, &mut out)
        .unwrap_or_else(|e| panic!("{file}:{line}: {e}"));
    assert_eq!(out.len(), 1, "{file}:{line}");
    match out.pop().unwrap() {
        e @ VenueEvent::Encoded(_) => VenueEvent::Record(e.record().unwrap()),
        e => e,
    }
}

fn record(file: &str, line: usize, symbols: &SymbolMap) -> Normalized {
    match one(file, line, symbols) {
        VenueEvent::Record(r) => r,
        other => panic!("{file}:{line}: {other:?}"),
    }
}

fn levels(v: &[(&str, &str)]) -> Levels {
    v.iter().copied().collect()
}

fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(p, q)| (p.to_string(), q.to_string()))
        .collect()
}

/// The REST body inside a `{"stream":..,"data":<body>}` fixture line, byte for byte.
fn body(line: &str) -> &str {
    line.split_once(r#","data":"#)
        .unwrap()
        .1
        .strip_suffix('}')
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The market's description.

#[test]
fn spec_is_the_documented_coin_m_market() {
    let v = coinm();
    assert!(std::ptr::eq(v.spec(), &COINM));
    assert_eq!(v.name(), "binance_coinm");
    assert_eq!(v.exchange(), "BINANCE_DELIVERY");
    assert_eq!(v.default_ws_url(), "wss://dstream.binance.com");
    assert_eq!(v.default_rest_url(), Some("https://dapi.binance.com"));
    assert_eq!(v.instruments_path(), Some("/dapi/v1/exchangeInfo"));
    assert_eq!(
        v.instrument_kinds(),
        &[InstrumentKind::Perpetual, InstrumentKind::Future]
    );
    assert_eq!(
        v.channels(),
        &[
            Channel::Trade,
            Channel::AggTrade,
            Channel::Depth,
            Channel::BookTicker,
            Channel::Ticker,
            Channel::Candle,
            Channel::Funding,
            Channel::Liquidation,
            Channel::OpenInterest,
        ]
    );
    let l = v.limits();
    assert_eq!(l.max_streams_per_connection, 200);
    assert_eq!(l.max_messages_per_second, 10);
    assert_eq!(l.connection_lifetime, Duration::from_secs(86_400));
    assert_eq!(l.rest_weight_per_minute, 2400);
    assert_eq!(l.snapshot_weight, 20);
    assert_eq!(
        v.snapshot_path("BTCUSD_PERP", 1000).as_deref(),
        Some("/dapi/v1/depth?symbol=BTCUSD_PERP&limit=1000")
    );
    assert_eq!(
        v.open_interest_path("BTCUSD_211231").as_deref(),
        Some("/dapi/v1/openInterest?symbol=BTCUSD_211231")
    );
    // Registered under its config name.
    let registered = tickflow::venues::by_name("binance_coinm").unwrap();
    assert_eq!(
        (registered.name(), registered.exchange()),
        ("binance_coinm", "BINANCE_DELIVERY")
    );
    assert!(tickflow::venues::names().contains(&"binance_coinm"));
}

#[test]
fn session_subscribes_the_lower_case_coin_m_streams() {
    let subs: Vec<Subscription> = [
        (Channel::AggTrade, "BTC-USD-PERP", "BTCUSD_PERP"),
        (Channel::Depth, "BTC-USD-20211231", "BTCUSD_211231"),
        (Channel::Funding, "BTC-USD-PERP", "BTCUSD_PERP"),
        (Channel::Liquidation, "BTC-USD-PERP", "BTCUSD_PERP"),
        (Channel::OpenInterest, "BTC-USD-PERP", "BTCUSD_PERP"),
    ]
    .into_iter()
    .map(|(channel, symbol, venue_symbol)| Subscription {
        channel,
        symbol: symbol.into(),
        venue_symbol: venue_symbol.into(),
    })
    .collect();
    let mut session = coinm().session(SessionSpec {
        subscriptions: subs,
        symbols: map(&[
            ("BTCUSD_PERP", "BTC-USD-PERP"),
            ("BTCUSD_211231", "BTC-USD-20211231"),
        ]),
        book_depth: 1000,
        ws_url: String::new(),
    });
    assert_eq!(session.path(), "/stream");
    let msgs = session.subscribe();
    assert_eq!(msgs.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&msgs[0]).unwrap();
    assert_eq!(v["method"], "SUBSCRIBE");
    // Open interest is polled over REST, not subscribed.
    assert_eq!(
        v["params"],
        serde_json::json!([
            "btcusd_perp@aggTrade",
            "btcusd_211231@depth@100ms",
            "btcusd_perp@markPrice",
            "btcusd_perp@forceOrder"
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Symbols.

#[test]
fn venue_symbols_of_perpetuals_and_quarterlies() {
    let v = coinm();
    for (normalized, venue) in [
        ("BTC-USD-PERP", "BTCUSD_PERP"),
        ("ETH-USD-PERP", "ETHUSD_PERP"),
        ("BTC-USD-20211231", "BTCUSD_211231"),
        ("ETH-USD-20220624", "ETHUSD_220624"),
        ("BNB-USD-20220325", "BNBUSD_220325"),
    ] {
        assert_eq!(
            v.venue_symbol(&Instrument::parse(normalized).unwrap()),
            venue,
            "{normalized}"
        );
    }
}

/// A hand-written `/dapi/v1/exchangeInfo` answer in the documented COIN-M shape: `pair`,
/// `contractType`, `deliveryDate` (ms), `contractStatus` (no `status`), `contractSize`
/// (USD 100 for BTC, 10 otherwise), base/quote `BTC`/`USD`, margin asset the coin.
const EXCHANGE_INFO: &str = r#"{
  "timezone": "UTC",
  "serverTime": 1638316800000,
  "rateLimits": [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}
  ],
  "exchangeFilters": [],
  "symbols": [
    {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL",
     "deliveryDate": 4133404800000, "onboardDate": 1597042800000, "contractStatus": "TRADING",
     "contractSize": 100, "marginAsset": "BTC", "baseAsset": "BTC", "quoteAsset": "USD",
     "pricePrecision": 1, "quantityPrecision": 0, "underlyingType": "COIN", "filters": []},
    {"symbol": "BTCUSD_211231", "pair": "BTCUSD", "contractType": "CURRENT_QUARTER",
     "deliveryDate": 1640937600000, "onboardDate": 1625212800000, "contractStatus": "TRADING",
     "contractSize": 100, "marginAsset": "BTC", "baseAsset": "BTC", "quoteAsset": "USD",
     "pricePrecision": 1, "quantityPrecision": 0, "underlyingType": "COIN", "filters": []},
    {"symbol": "BTCUSD_220325", "pair": "BTCUSD", "contractType": "NEXT_QUARTER",
     "deliveryDate": 1648195200000, "onboardDate": 1632988800000, "contractStatus": "TRADING",
     "contractSize": 100, "marginAsset": "BTC", "baseAsset": "BTC", "quoteAsset": "USD",
     "pricePrecision": 1, "quantityPrecision": 0, "underlyingType": "COIN", "filters": []},
    {"symbol": "ETHUSD_PERP", "pair": "ETHUSD", "contractType": "PERPETUAL",
     "deliveryDate": 4133404800000, "onboardDate": 1597042800000, "contractStatus": "TRADING",
     "contractSize": 10, "marginAsset": "ETH", "baseAsset": "ETH", "quoteAsset": "USD",
     "pricePrecision": 2, "quantityPrecision": 0, "underlyingType": "COIN", "filters": []},
    {"symbol": "ETHUSD_210924", "pair": "ETHUSD", "contractType": "CURRENT_QUARTER_DELIVERING",
     "deliveryDate": 1632470400000, "onboardDate": 1616745600000, "contractStatus": "DELIVERING",
     "contractSize": 10, "marginAsset": "ETH", "baseAsset": "ETH", "quoteAsset": "USD",
     "pricePrecision": 2, "quantityPrecision": 0, "underlyingType": "COIN", "filters": []},
    {"symbol": "ADAUSD_PERP", "pair": "ADAUSD", "contractType": "PERPETUAL",
     "deliveryDate": 4133404800000, "onboardDate": 1597042800000, "contractStatus": "PENDING_TRADING",
     "contractSize": 10, "marginAsset": "ADA", "baseAsset": "ADA", "quoteAsset": "USD",
     "pricePrecision": 5, "quantityPrecision": 0, "underlyingType": "COIN", "filters": []},
    {"symbol": "LINKUSD_PERP", "pair": "LINKUSD", "contractType": "PERPETUAL_DELIVERING",
     "deliveryDate": 1640937600000, "onboardDate": 1597042800000, "contractStatus": "TRADING",
     "contractSize": 10, "marginAsset": "LINK", "baseAsset": "LINK", "quoteAsset": "USD",
     "pricePrecision": 3, "quantityPrecision": 0, "underlyingType": "COIN", "filters": []}
  ]
}"#;

#[test]
fn exchange_info_normalizes_trading_perpetuals_and_quarterlies_only() {
    let v = coinm();
    let pairs = v.parse_instruments(EXCHANGE_INFO).unwrap();
    let expected = [
        ("BTCUSD_PERP", "BTC-USD-PERP"),
        ("BTCUSD_211231", "BTC-USD-20211231"),
        ("BTCUSD_220325", "BTC-USD-20220325"),
        ("ETHUSD_PERP", "ETH-USD-PERP"),
    ];
    assert_eq!(pairs, owned(&expected));
    // Both ways: the pinned mapping of each normalized symbol is the listed venue symbol.
    for (venue, normalized) in expected {
        assert_eq!(
            v.venue_symbol(&Instrument::parse(normalized).unwrap()),
            venue
        );
    }
}

#[test]
fn exchange_info_skips_deliveries_without_a_date_suffix() {
    let body = r#"{"symbols":[
      {"symbol":"BTCUSD_QUARTER","contractType":"CURRENT_QUARTER","contractStatus":"TRADING","baseAsset":"BTC","quoteAsset":"USD"},
      {"symbol":"BTCUSD_211331","contractType":"NEXT_QUARTER","contractStatus":"TRADING","baseAsset":"BTC","quoteAsset":"USD"},
      {"symbol":"BTCUSD_220325","contractType":"NEXT_QUARTER","contractStatus":"TRADING","baseAsset":"BTC","quoteAsset":"USD"}
    ]}"#;
    assert_eq!(
        coinm().parse_instruments(body).unwrap(),
        owned(&[("BTCUSD_220325", "BTC-USD-20220325")])
    );
}

// ---------------------------------------------------------------------------------------------
// Config.

const CONFIG_HEAD: &str = "[[feeds]]\nvenue = \"binance_coinm\"\n";

#[test]
fn config_accepts_coin_m_perpetuals_and_quarterlies() {
    let cfg = Config::from_toml_str(&format!(
        "{CONFIG_HEAD}symbols = [\"BTC-USD-PERP\", \"BTC-USD-20211231\"]\n\
         channels = [\"depth\", \"agg_trade\", \"book_ticker\", \"funding\", \"liquidation\", \"open_interest\", \"ticker\", \"candle\"]\n"
    ))
    .unwrap();
    assert_eq!(cfg.feeds.len(), 1);
    assert_eq!(cfg.feeds[0].venue, "binance_coinm");
    assert_eq!(cfg.feeds[0].symbols, ["BTC-USD-PERP", "BTC-USD-20211231"]);
}

#[test]
fn config_refuses_a_spot_symbol_on_coin_m() {
    let err = Config::from_toml_str(&format!(
        "{CONFIG_HEAD}symbols = [\"BTC-USD-PERP\", \"BTC-USD\"]\nchannels = [\"agg_trade\"]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("feeds[0].symbols"), "{err}");
    assert!(err.contains("\"BTC-USD\""), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Golden records, one channel at a time.

#[test]
fn agg_trade_of_a_quarterly_and_a_perpetual() {
    let symbols = map(&[
        ("BTCUSD_210625", "BTC-USD-20210625"),
        ("BTCUSD_PERP", "BTC-USD-PERP"),
    ]);
    let Normalized::Trade(t) = record("binance_coinm_aggTrade.jsonl", 1, &symbols) else {
        panic!()
    };
    assert_eq!(
        t,
        s::Trade {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-20210625".into(),
            // m = true: the buyer was the maker, so the taker sold.
            side: trade::Side::Sell as i32,
            trade_id: "5091038".into(),
            price: "62838.0".into(),
            // 5 contracts (USD 500), as sent.
            amount: "5".into(),
            timestamp: 1_616_201_787_407_000,
            raw_id: "5091038".into(),
            trade_type: Some("aggregate".into()),
            maker: Some(true),
            event_time: Some(1_616_201_787_561_000),
            match_id: Some("7621250-7621250".into()),
            liquidity_flag: None,
            receipt_time: RECEIPT,
        }
    );
    let Normalized::Trade(t) = record("binance_coinm_aggTrade.jsonl", 2, &symbols) else {
        panic!()
    };
    assert_eq!(
        t,
        s::Trade {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-PERP".into(),
            side: trade::Side::Sell as i32,
            trade_id: "41045788".into(),
            price: "58570.1".into(),
            amount: "58".into(),
            timestamp: 1_616_201_883_304_000,
            raw_id: "41045788".into(),
            trade_type: Some("aggregate".into()),
            maker: Some(true),
            event_time: Some(1_616_201_883_458_000),
            match_id: Some("91864326-91864327".into()),
            liquidity_flag: None,
            receipt_time: RECEIPT,
        }
    );
}

#[test]
fn book_ticker() {
    let symbols = map(&[
        ("ETHUSD_PERP", "ETH-USD-PERP"),
        ("XMRUSD_PERP", "XMR-USD-PERP"),
    ]);
    let Normalized::TopOfBook(b) = record("binance_coinm_bookTicker.jsonl", 1, &symbols) else {
        panic!()
    };
    assert_eq!(
        b,
        s::TopOfBook {
            exchange: EXCHANGE.into(),
            symbol: "ETH-USD-PERP".into(),
            bid_price: "1776.25".into(),
            bid_size: "10779".into(),
            ask_price: "1776.26".into(),
            ask_size: "37544".into(),
            timestamp: Some(1_653_817_930_434_000),
            event_time: Some(1_653_817_930_438_000),
            receipt_time: RECEIPT,
            update_id: Some(462_169_572_570),
        }
    );
    let Normalized::TopOfBook(b) = record("binance_coinm_bookTicker.jsonl", 2, &symbols) else {
        panic!()
    };
    assert_eq!(
        b,
        s::TopOfBook {
            exchange: EXCHANGE.into(),
            symbol: "XMR-USD-PERP".into(),
            bid_price: "172.74".into(),
            bid_size: "86".into(),
            ask_price: "172.81".into(),
            ask_size: "25".into(),
            timestamp: Some(1_653_811_915_499_000),
            event_time: Some(1_653_811_915_502_000),
            receipt_time: RECEIPT,
            update_id: Some(462_118_190_224),
        }
    );
}

#[test]
fn kline_volume_in_contracts_and_q_in_the_base_asset() {
    let symbols = map(&[
        ("BTCUSD_220624", "BTC-USD-20220624"),
        ("ETHUSD_PERP", "ETH-USD-PERP"),
    ]);
    let Normalized::Candle(c) = record("binance_coinm_kline.jsonl", 1, &symbols) else {
        panic!()
    };
    assert_eq!(
        c,
        s::Candle {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-20220624".into(),
            start: 1_653_818_820_000_000,
            stop: 1_653_818_879_999_000,
            interval: "1m".into(),
            trades: Some(12),
            open: "29105.5".into(),
            close: "29107.9".into(),
            high: "29107.9".into(),
            low: "29096.9".into(),
            // v: 191 contracts; q: 0.65623556 BTC (COIN-M's "base asset volume").
            volume: "191".into(),
            closed: false,
            timestamp: Some(1_653_818_879_999_000),
            event_time: Some(1_653_818_854_836_000),
            receipt_time: RECEIPT,
            quote_volume: Some("0.65623556".into()),
        }
    );
    let Normalized::Candle(c) = record("binance_coinm_kline.jsonl", 2, &symbols) else {
        panic!()
    };
    assert_eq!(
        c,
        s::Candle {
            exchange: EXCHANGE.into(),
            symbol: "ETH-USD-PERP".into(),
            start: 1_653_818_940_000_000,
            stop: 1_653_818_999_999_000,
            interval: "1m".into(),
            trades: Some(763),
            open: "1786.56".into(),
            close: "1788.67".into(),
            high: "1789.24".into(),
            low: "1785.25".into(),
            volume: "401601".into(),
            closed: false,
            timestamp: Some(1_653_818_999_999_000),
            event_time: Some(1_653_818_962_599_000),
            receipt_time: RECEIPT,
            quote_volume: Some("2246.59444657".into()),
        }
    );
}

#[test]
fn mark_price_and_funding_of_perpetuals() {
    let symbols = map(&[
        ("BTCUSD_PERP", "BTC-USD-PERP"),
        ("ETHUSD_PERP", "ETH-USD-PERP"),
    ]);
    let Normalized::Funding(f) = record("binance_coinm_markPrice.jsonl", 1, &symbols) else {
        panic!()
    };
    assert_eq!(
        f,
        s::Funding {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-PERP".into(),
            mark_price: "59012.56007222".into(),
            rate: "0.00073689".into(),
            next_funding_time: Some(1_617_321_600_000_000),
            predicted_rate: None,
            timestamp: Some(1_617_309_477_000_000),
            event_time: Some(1_617_309_477_000_000),
            receipt_time: RECEIPT,
            // This 2021 recording has no `i`.
            index_price: None,
        }
    );
    let Normalized::Funding(f) = record("binance_coinm_markPrice.jsonl", 3, &symbols) else {
        panic!()
    };
    assert_eq!(
        f,
        s::Funding {
            exchange: EXCHANGE.into(),
            symbol: "ETH-USD-PERP".into(),
            mark_price: "1981.89000000".into(),
            rate: "0.00100944".into(),
            next_funding_time: Some(1_617_321_600_000_000),
            predicted_rate: None,
            timestamp: Some(1_617_309_501_002_000),
            event_time: Some(1_617_309_501_002_000),
            receipt_time: RECEIPT,
            index_price: None,
        }
    );
    // Binance's documented example (not a recording), with the index price `i`.
    let Normalized::Funding(f) = record("binance_coinm_markPrice.jsonl", 5, &symbols) else {
        panic!()
    };
    assert_eq!(
        f,
        s::Funding {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-PERP".into(),
            mark_price: "11012.31359011".into(),
            rate: "0.00000000".into(),
            next_funding_time: Some(1_596_096_000_000_000),
            predicted_rate: None,
            timestamp: Some(1_596_095_725_000_000),
            event_time: Some(1_596_095_725_000_000),
            receipt_time: RECEIPT,
            index_price: Some("10933.62615417".into()),
        }
    );
}

/// Binance documents `"r":""` and `"T":0` on the mark-price stream of a delivery contract:
/// there is no funding, so the record should have no next funding time.
#[test]
fn mark_price_of_a_delivery_contract_has_no_funding_time() {
    let symbols = map(&[("BTCUSD_201225", "BTC-USD-20201225")]);
    let Normalized::Funding(f) = record("binance_coinm_markPrice.jsonl", 4, &symbols) else {
        panic!()
    };
    assert_eq!(
        f,
        s::Funding {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-20201225".into(),
            mark_price: "10934.62615417".into(),
            rate: "".into(),
            next_funding_time: None,
            predicted_rate: None,
            timestamp: Some(1_596_095_725_000_000),
            event_time: Some(1_596_095_725_000_000),
            receipt_time: RECEIPT,
            index_price: Some("10933.62615417".into()),
        }
    );
}

#[test]
fn ticker_volume_in_contracts_and_q_in_the_base_asset() {
    let symbols = map(&[
        ("BNBUSD_220624", "BNB-USD-20220624"),
        ("BTCUSD_PERP", "BTC-USD-PERP"),
        ("AVAXUSD_PERP", "AVAX-USD-PERP"),
        ("APEUSD_PERP", "APE-USD-PERP"),
    ]);
    let Normalized::Ticker(t) = record("binance_coinm_ticker.jsonl", 2, &symbols) else {
        panic!()
    };
    assert_eq!(
        t,
        s::Ticker {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-PERP".into(),
            // The futures 24h ticker has no best bid/ask.
            bid: "".into(),
            ask: "".into(),
            // C: statistics close time.
            timestamp: Some(1_653_815_020_145_000),
            event_time: Some(1_653_815_020_148_000),
            receipt_time: RECEIPT,
            last: "29031.8".into(),
            open: "28793.6".into(),
            high: "29222.8".into(),
            low: "28728.4".into(),
            // v: 12229247 contracts (USD 100 each); q: 42252.54497257 BTC.
            volume: "12229247".into(),
            quote_volume: "42252.54497257".into(),
        }
    );
    let Normalized::Ticker(t) = record("binance_coinm_ticker.jsonl", 1, &symbols) else {
        panic!()
    };
    assert_eq!(
        t,
        s::Ticker {
            exchange: EXCHANGE.into(),
            symbol: "BNB-USD-20220624".into(),
            bid: "".into(),
            ask: "".into(),
            timestamp: Some(1_653_814_590_774_000),
            event_time: Some(1_653_814_590_778_000),
            receipt_time: RECEIPT,
            last: "296.672".into(),
            open: "295.538".into(),
            high: "305.367".into(),
            low: "293.303".into(),
            volume: "654348".into(),
            quote_volume: "21868.80776371".into(),
        }
    );
    // Trailing zeros are the venue's and stay.
    let Normalized::Ticker(t) = record("binance_coinm_ticker.jsonl", 4, &symbols) else {
        panic!()
    };
    assert_eq!(
        t,
        s::Ticker {
            exchange: EXCHANGE.into(),
            symbol: "APE-USD-PERP".into(),
            bid: "".into(),
            ask: "".into(),
            timestamp: Some(1_653_814_800_354_000),
            event_time: Some(1_653_814_800_360_000),
            receipt_time: RECEIPT,
            last: "6.1180".into(),
            open: "6.1690".into(),
            high: "6.3870".into(),
            low: "5.9620".into(),
            volume: "859567".into(),
            quote_volume: "1386191.58913317".into(),
        }
    );
}

#[test]
fn depth_update_is_a_pu_chained_diff() {
    let symbols = map(&[
        ("BTCUSD_210625", "BTC-USD-20210625"),
        ("BTCUSD_PERP", "BTC-USD-PERP"),
    ]);
    let VenueEvent::Diff { symbol, diff } = one("binance_coinm_depthUpdate.jsonl", 1, &symbols)
    else {
        panic!()
    };
    assert_eq!(&*symbol, "BTC-USD-20210625");
    assert_eq!(
        diff,
        Diff {
            first: 127_531_213_607,
            last: 127_531_214_406,
            prev: Some(127_531_213_513),
            bids: levels(&[("35943.8", "60"), ("35965.2", "896")]),
            asks: levels(&[("36038.3", "9"), ("36038.4", "21")]),
            checksum: None,
            event_time: Some(1_622_368_000_245_000),
            timestamp: Some(1_622_368_000_234_000),
            receipt_time: RECEIPT,
        }
    );
    let VenueEvent::Diff { symbol, diff } = one("binance_coinm_depthUpdate.jsonl", 2, &symbols)
    else {
        panic!()
    };
    assert_eq!(&*symbol, "BTC-USD-PERP");
    assert_eq!(
        diff,
        Diff {
            first: 127_559_587_191,
            last: 127_559_588_177,
            prev: Some(127_559_587_113),
            bids: levels(&[("35365.9", "1400"), ("35425.8", "561")]),
            asks: levels(&[("35817.8", "7885"), ("35818.7", "307")]),
            checksum: None,
            event_time: Some(1_622_370_862_564_000),
            timestamp: Some(1_622_370_862_553_000),
            receipt_time: RECEIPT,
        }
    );
}

#[test]
fn liquidation_from_the_documented_example() {
    let symbols = map(&[("BTCUSD_200925", "BTC-USD-20200925")]);
    let Normalized::Liquidation(l) = record("binance_coinm_forceOrder.jsonl", 1, &symbols) else {
        panic!()
    };
    assert_eq!(
        l,
        s::Liquidation {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-20200925".into(),
            side: liquidation::Side::Sell as i32,
            quantity: "1".into(),
            price: "9425.5".into(),
            id: "".into(),
            status: "FILLED".into(),
            timestamp: Some(1_591_154_240_949_000),
            event_time: Some(1_591_154_240_950_000),
            receipt_time: RECEIPT,
        }
    );
}

#[test]
fn rest_depth_snapshots() {
    let v = coinm();
    let snaps = lines("binance_coinm_depth_snapshot_rest.jsonl");
    assert_eq!(
        v.parse_snapshot(&snaps[0]).unwrap(),
        Snapshot {
            last_update_id: 466_364_745_366,
            bids: owned(&[("30626.7", "827"), ("30624.4", "11"), ("30624.3", "1")]),
            asks: owned(&[("30626.8", "114"), ("30627.7", "30"), ("30630.2", "4")]),
            checksum: None,
        }
    );
    assert_eq!(
        v.parse_snapshot(&snaps[1]).unwrap(),
        Snapshot {
            last_update_id: 466_437_000_380,
            bids: owned(&[("30401.8", "12984"), ("30401.5", "53"), ("30401.4", "150")]),
            asks: owned(&[("30401.9", "1788"), ("30402.0", "1"), ("30402.1", "384")]),
            checksum: None,
        }
    );
}

#[test]
fn rest_open_interest_in_contracts() {
    let v = coinm();
    let symbols = map(&[
        ("BTCUSD_220624", "BTC-USD-20220624"),
        ("BTCUSD_PERP", "BTC-USD-PERP"),
    ]);
    let oi = lines("binance_coinm_openInterest.jsonl");
    assert_eq!(
        v.parse_open_interest(body(&oi[0]), RECEIPT, &symbols)
            .unwrap(),
        Normalized::OpenInterest(s::OpenInterest {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-20220624".into(),
            open_interest: "2470927".into(),
            timestamp: Some(1_654_336_766_113_000),
            event_time: None,
            receipt_time: RECEIPT,
        })
    );
    assert_eq!(
        v.parse_open_interest(body(&oi[1]), RECEIPT, &symbols)
            .unwrap(),
        Normalized::OpenInterest(s::OpenInterest {
            exchange: EXCHANGE.into(),
            symbol: "BTC-USD-PERP".into(),
            open_interest: "5827897".into(),
            timestamp: Some(1_654_336_819_740_000),
            event_time: None,
            receipt_time: RECEIPT,
        })
    );
}

/// Every line of every served fixture parses to exactly one event; the partial-depth
/// (`@depth20`, `@depth5`) vectors kept for reference are not diffs and are refused.
#[test]
fn every_recorded_line_parses_and_partial_depth_is_refused() {
    let files = [
        "binance_coinm_aggTrade.jsonl",
        "binance_coinm_bookTicker.jsonl",
        "binance_coinm_depthUpdate.jsonl",
        "binance_coinm_forceOrder.jsonl",
        "binance_coinm_kline.jsonl",
        "binance_coinm_markPrice.jsonl",
        "binance_coinm_ticker.jsonl",
    ];
    let symbol_of = |l: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let d = &v["data"];
        d["s"]
            .as_str()
            .or(d["o"]["s"].as_str())
            .unwrap()
            .to_string()
    };
    let mut pairs = Vec::new();
    for f in files.iter().chain(&["binance_coinm_cmp_l2_topk.jsonl"]) {
        for l in lines(f) {
            let venue = symbol_of(&l);
            let (pair, contract) = venue.split_once('_').unwrap();
            let base = pair.strip_suffix("USD").unwrap();
            let normalized = match contract {
                "PERP" => format!("{base}-USD-PERP"),
                yymmdd => format!("{base}-USD-20{yymmdd}"),
            };
            pairs.push((venue, normalized));
        }
    }
    let symbols = SymbolMap::new(pairs);
    for f in files {
        for (i, l) in lines(f).iter().enumerate() {
            let mut out = Vec::new();
            coinm()
                .parse(l, RECEIPT, &symbols, &mut out)
                .unwrap_or_else(|e| panic!("{f}:{}: {e}", i + 1));
            assert_eq!(out.len(), 1, "{f}:{}", i + 1);
            assert!(
                matches!(
                    out[0],
                    VenueEvent::Record(_) | VenueEvent::Encoded(_) | VenueEvent::Diff { .. }
                ),
                "{f}:{}",
                i + 1
            );
        }
    }
    for (i, l) in lines("binance_coinm_cmp_l2_topk.jsonl").iter().enumerate() {
        let mut out = Vec::new();
        let e = coinm().parse(l, RECEIPT, &symbols, &mut out).unwrap_err();
        assert_eq!(e.kind(), "unsupported", "cmp_l2_topk:{}", i + 1);
        assert!(out.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Book rules.

/// No contiguous COIN-M depth recording exists: every recorded diff predates its symbol's
/// recorded snapshot, so the pair does not bridge. The futures rule drops such stale diffs
/// (`u` < `lastUpdateId`) and the book is exactly the snapshot.
#[test]
fn recorded_snapshot_and_diff_do_not_bridge_and_the_stale_diff_is_dropped() {
    let v = coinm();
    let symbols = map(&[("BTCUSD_PERP", "BTC-USD-PERP")]);
    let VenueEvent::Diff { diff, .. } = one("binance_coinm_depthUpdate.jsonl", 2, &symbols) else {
        panic!()
    };
    let snap = v
        .parse_snapshot(&lines("binance_coinm_depth_snapshot_rest.jsonl")[1])
        .unwrap();
    assert!(diff.last < snap.last_update_id);
    let mut sync = BookSync::new(v.sequencer(1000), 10_000);
    assert_eq!(sync.on_diff(diff.clone()).unwrap(), Step::Buffered);
    assert_eq!(sync.on_snapshot(&snap).unwrap(), Step::Synced);
    assert_eq!(sync.last_update_id(), Some(466_437_000_380));
    assert_eq!(sync.on_diff(diff).unwrap(), Step::Dropped);
    let (bids, asks) = sync.book().levels(None);
    let text = |v: Vec<s::v2beta1::level2_book::PriceLevel>| {
        v.into_iter()
            .map(|l| (l.price, l.quantity))
            .collect::<Vec<_>>()
    };
    assert_eq!(text(bids), snap.bids);
    assert_eq!(text(asks), snap.asks);
}

/// COIN-M keeps books by the futures rules (Binance's "How to manage a local order book"
/// for COIN-M): the first diff after the snapshot has `U <= lastUpdateId <= u`, each next
/// one `pu` = previous `u`. The diffs here are synthetic (ids only), built to those rules.
#[test]
fn coin_m_books_follow_the_futures_pu_chain() {
    let diff = |first: i64, last: i64, prev: i64| Diff {
        first,
        last,
        prev: Some(prev),
        bids: levels(&[("30401.7", "5")]),
        ..Diff::default()
    };
    let snap = Snapshot {
        last_update_id: 1000,
        bids: owned(&[("30401.8", "12984")]),
        asks: owned(&[("30401.9", "1788")]),
        checksum: None,
    };
    let synced = || {
        let mut sync = BookSync::new(coinm().sequencer(1000), 100);
        assert_eq!(sync.on_snapshot(&snap).unwrap(), Step::Synced);
        sync
    };
    // U <= 1000 <= u bridges; then pu must equal the previous u.
    let mut sync = synced();
    assert_eq!(sync.on_diff(diff(990, 1010, 989)).unwrap(), Step::Applied);
    assert_eq!(sync.on_diff(diff(1011, 1020, 1010)).unwrap(), Step::Applied);
    assert!(matches!(
        sync.on_diff(diff(1030, 1040, 1025)).unwrap(),
        Step::Gap { .. }
    ));
    // The spot bridge (U = lastUpdateId + 1) is not the futures one: a gap here.
    let mut sync = synced();
    assert!(matches!(
        sync.on_diff(diff(1001, 1010, 1000)).unwrap(),
        Step::Gap { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Replay.

async fn replay() -> ReplayServer {
    tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance_coinm".into(),
        fixtures: DIR.into(),
        speed: 0.0,
        loops: 1,
        ..ReplayServerConfig::default()
    })
    .await
    .unwrap()
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn replay_serves_dapi_depth_open_interest_and_exchange_info() {
    let server = replay().await;
    let base = server.rest_url();
    let v = coinm();

    let (status, text) = get(&format!(
        "{base}{}",
        v.snapshot_path("BTCUSD_PERP", 1000).unwrap()
    ))
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        v.parse_snapshot(&text).unwrap(),
        Snapshot {
            last_update_id: 466_437_000_380,
            bids: owned(&[("30401.8", "12984"), ("30401.5", "53"), ("30401.4", "150")]),
            asks: owned(&[("30401.9", "1788"), ("30402.0", "1"), ("30402.1", "384")]),
            checksum: None,
        }
    );
    let (status, text) = get(&format!(
        "{base}/dapi/v1/depth?symbol=BTCUSD_220624&limit=5"
    ))
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        v.parse_snapshot(&text).unwrap().last_update_id,
        466_364_745_366
    );
    let (status, _) = get(&format!(
        "{base}/dapi/v1/depth?symbol=ETHUSD_PERP&limit=1000"
    ))
    .await;
    assert_eq!(status, 400, "no ETHUSD_PERP snapshot was recorded");

    let symbols = map(&[("BTCUSD_PERP", "BTC-USD-PERP")]);
    let (status, text) = get(&format!(
        "{base}{}",
        v.open_interest_path("BTCUSD_PERP").unwrap()
    ))
    .await;
    assert_eq!(status, 200, "{text}");
    let Normalized::OpenInterest(oi) = v.parse_open_interest(&text, RECEIPT, &symbols).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (oi.symbol.as_str(), oi.open_interest.as_str()),
        ("BTC-USD-PERP", "5827897")
    );

    let (status, text) = get(&format!("{base}{}", v.instruments_path().unwrap())).await;
    assert_eq!(status, 200, "{text}");
    let listed = v.parse_instruments(&text).unwrap();
    for (venue, normalized) in [
        ("BTCUSD_PERP", "BTC-USD-PERP"),
        ("ETHUSD_PERP", "ETH-USD-PERP"),
        ("XMRUSD_PERP", "XMR-USD-PERP"),
        ("AVAXUSD_PERP", "AVAX-USD-PERP"),
        ("APEUSD_PERP", "APE-USD-PERP"),
        ("BTCUSD_210625", "BTC-USD-20210625"),
        ("BTCUSD_220624", "BTC-USD-20220624"),
        ("BTCUSD_200925", "BTC-USD-20200925"),
        ("BTCUSD_201225", "BTC-USD-20201225"),
    ] {
        assert!(
            listed.contains(&(venue.to_string(), normalized.to_string())),
            "{venue} → {normalized} missing from {listed:?}"
        );
    }
}

/// The synthesized symbol list splits `BNBUSD` on the quote `BUSD` (listed before `USD`).
#[tokio::test]
async fn replay_exchange_info_lists_bnb_usd_as_bnb_and_usd() {
    let server = replay().await;
    let v = coinm();
    let (_, text) = get(&format!(
        "{}{}",
        server.rest_url(),
        v.instruments_path().unwrap()
    ))
    .await;
    let listed = v.parse_instruments(&text).unwrap();
    assert!(listed.contains(&("BNBUSD_220624".to_string(), "BNB-USD-20220624".to_string())));
}

#[tokio::test]
async fn replay_plays_the_subscribed_coin_m_streams() {
    let server = replay().await;
    let url = format!(
        "{}/stream?streams=btcusd_perp@aggTrade/btcusd_perp@depth@100ms",
        server.ws_url()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let symbols = map(&[("BTCUSD_PERP", "BTC-USD-PERP")]);
    let mut events = Vec::new();
    // One recorded frame each; the server then idles like a quiet venue.
    for _ in 0..2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else {
            panic!("{msg:?}")
        };
        coinm()
            .parse(text.as_str(), RECEIPT, &symbols, &mut events)
            .unwrap();
    }
    // Replay order is event time: the 2021-03 trade before the 2021-05 diff.
    let [VenueEvent::Encoded(t), VenueEvent::Diff { symbol, diff }] = &events[..] else {
        panic!("{events:?}")
    };
    let Some(Normalized::Trade(t)) = t.decode().ok() else {
        panic!()
    };
    assert_eq!(
        (t.symbol.as_str(), t.trade_id.as_str(), t.amount.as_str()),
        ("BTC-USD-PERP", "41045788", "58")
    );
    assert_eq!(
        (&**symbol, diff.last, diff.prev),
        ("BTC-USD-PERP", 127_559_588_177, Some(127_559_587_113))
    );
}

/// Spot and USD-M replays of the shared Binance folder do not pick up COIN-M files, and
/// COIN-M reads only its own prefix.
#[test]
fn fixture_prefixes_keep_the_markets_apart() {
    assert_eq!(COINM.fixtures, ("binance_coinm_", &[][..]));
    assert!(Binance::spot()
        .spec()
        .fixtures
        .1
        .contains(&"binance_coinm_"));
    assert!(!"binance_coinm_aggTrade.jsonl".starts_with(Binance::usdm().spec().fixtures.0));
}
