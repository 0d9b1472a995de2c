//! Golden tests on recorded Binance messages (tests/fixtures/binance, see SOURCES.md):
//! exact normalized fields per channel, every recorded line parses, and every recorded
//! snapshot/diff pair syncs with zero gaps to the same book as an independent reconstruction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use std::sync::Arc;
use tickflow::book::{BookSync, Diff, Levels, Snapshot, Step};
use tickflow::feed::books::BookKeeper;
use tickflow::producer::Payload;
use tickflow::schema::v2beta1::{liquidation, trade};
use tickflow::schema::{self as s, Normalized};
use tickflow::venues::binance::Rules;
use tickflow::venues::{binance::Binance, SymbolMap, Venue, VenueEvent};

const DIR: &str = "tests/fixtures/binance";
const RECEIPT: i64 = 1_700_000_000_000_001;

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{DIR}/{file}"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every symbol of a fixture file, mapped the way the config would pin it.
fn symbols(venue: &dyn Venue, files: &[&str]) -> SymbolMap {
    let perp = venue.exchange() == "BINANCE_FUTURES";
    let mut pairs = Vec::new();
    for f in files {
        for l in lines(f) {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            let data = v.get("data").unwrap_or(&v);
            let sym = data["s"]
                .as_str()
                .or(data["o"]["s"].as_str())
                .or(data["symbol"].as_str());
            if let Some(sym) = sym {
                let norm = format!("{sym}-X{}", if perp { "-PERP" } else { "" });
                pairs.push((sym.to_string(), norm));
            }
        }
    }
    SymbolMap::new(pairs)
}

fn one(venue: &Binance, file: &str, line: usize, map: &SymbolMap) -> VenueEvent {
    let mut out = Vec::new();
    venue
        .parse(&lines(file)[line - 1], RECEIPT, map, &mut out)
        .unwrap();
    assert_eq!(out.len(), 1);
    match out.pop().unwrap() {
        // Trades are encoded straight from the frame; the golden fields are checked on what
        // those bytes decode to.
        e @ VenueEvent::Encoded(_) => VenueEvent::Record(e.record().unwrap()),
        e => e,
    }
}

fn map1(venue_sym: &str, norm: &str) -> SymbolMap {
    SymbolMap::new([(venue_sym.to_string(), norm.to_string())])
}

#[test]
fn spot_trade_with_legacy_order_ids() {
    let v = Binance::spot();
    let VenueEvent::Record(Normalized::Trade(t)) =
        one(&v, "binance_trade.jsonl", 1, &map1("ETHUSDT", "ETH-USDT"))
    else {
        panic!()
    };
    assert_eq!(
        t,
        s::Trade {
            exchange: "BINANCE".into(),
            symbol: "ETH-USDT".into(),
            // m = true: the buyer was the maker, so the taker sold.
            side: trade::Side::Sell as i32,
            trade_id: "705291099".into(),
            price: "4149.74000000".into(),
            amount: "0.43870000".into(),
            timestamp: 1_639_351_062_243_000,
            raw_id: "705291099".into(),
            trade_type: None,
            maker: Some(true),
            event_time: Some(1_639_351_062_244_000),
            match_id: None,
            liquidity_flag: None,
            receipt_time: RECEIPT,
        }
    );
    let VenueEvent::Record(Normalized::Trade(t)) =
        one(&v, "binance_trade.jsonl", 2, &map1("BNBBTC", "BNB-BTC"))
    else {
        panic!()
    };
    assert_eq!(
        t.side,
        trade::Side::Buy as i32,
        "m = false: the taker bought"
    );
    assert_eq!(
        (t.price.as_str(), t.amount.as_str()),
        ("0.00426990", "33.82000000")
    );
}

#[test]
fn futures_trade_without_order_ids_and_with_order_type() {
    let v = Binance::usdm();
    let VenueEvent::Record(Normalized::Trade(t)) = one(
        &v,
        "binance_futures_trade.jsonl",
        1,
        &map1("BTCUSDT", "BTC-USDT-PERP"),
    ) else {
        panic!()
    };
    assert_eq!(t.exchange, "BINANCE_FUTURES");
    assert_eq!(t.symbol, "BTC-USDT-PERP");
    assert_eq!(
        (t.trade_id.as_str(), t.price.as_str(), t.amount.as_str()),
        ("2691833663", "24670.90", "0.022")
    );
    assert_eq!(t.trade_type.as_deref(), Some("MARKET"));
    assert_eq!(t.side, trade::Side::Sell as i32);
    assert_eq!(
        (t.timestamp, t.event_time),
        (1_660_228_023_973_000, Some(1_660_228_023_980_000))
    );
}

#[test]
fn agg_trade() {
    let v = Binance::spot();
    let VenueEvent::Record(Normalized::Trade(t)) = one(
        &v,
        "binance_aggTrade.jsonl",
        1,
        &map1("NKNUSDT", "NKN-USDT"),
    ) else {
        panic!()
    };
    assert_eq!(
        (t.trade_id.as_str(), t.price.as_str(), t.amount.as_str()),
        ("15683430", "0.35280000", "58.00000000")
    );
    assert_eq!(t.match_id.as_deref(), Some("19862790-19862790"));
    assert_eq!(t.trade_type.as_deref(), Some("aggregate"));
    assert_eq!(t.side, trade::Side::Buy as i32);
    assert_eq!(
        (t.timestamp, t.event_time, t.receipt_time),
        (1_633_998_523_963_000, Some(1_633_998_523_963_000), RECEIPT)
    );
}

#[test]
fn depth_update_becomes_a_diff() {
    let v = Binance::usdm();
    let VenueEvent::Diff { symbol, diff } = one(
        &v,
        "binance_futures_depthUpdate.jsonl",
        1,
        &map1("SUSHIUSDT", "SUSHI-USDT-PERP"),
    ) else {
        panic!()
    };
    assert_eq!(&*symbol, "SUSHI-USDT-PERP");
    assert_eq!(
        (diff.first, diff.last, diff.prev),
        (600_859_599_090, 600_859_600_917, Some(600_859_598_061))
    );
    let pairs = |v: &Levels| {
        v.iter()
            .map(|(p, q)| (p.to_string(), q.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pairs(&diff.bids)[1],
        ("7.6090".to_string(), "0".to_string())
    );
    assert_eq!(
        pairs(&diff.asks),
        vec![
            ("7.6150".into(), "1563".into()),
            ("7.6220".into(), "3284".into())
        ]
    );
    assert_eq!(
        (diff.event_time, diff.timestamp),
        (Some(1_626_992_741_037_000), Some(1_626_992_741_024_000))
    );
}

#[test]
fn book_ticker_spot_and_futures() {
    let VenueEvent::Record(Normalized::TopOfBook(b)) = one(
        &Binance::spot(),
        "binance_bookTicker.jsonl",
        1,
        &map1("NKNUSDT", "NKN-USDT"),
    ) else {
        panic!()
    };
    assert_eq!(
        (
            b.bid_price.as_str(),
            b.bid_size.as_str(),
            b.ask_price.as_str(),
            b.ask_size.as_str()
        ),
        ("0.35210000", "672.00000000", "0.35260000", "3199.00000000")
    );
    assert_eq!(
        (b.update_id, b.event_time, b.timestamp),
        (Some(499_869_768), None, None)
    );
    let VenueEvent::Record(Normalized::TopOfBook(b)) = one(
        &Binance::usdm(),
        "binance_futures_bookTicker.jsonl",
        1,
        &map1("SUSHIUSDT", "SUSHI-USDT-PERP"),
    ) else {
        panic!()
    };
    assert_eq!(
        (b.event_time, b.timestamp),
        (Some(1_626_992_741_017_000), Some(1_626_992_741_012_000))
    );
}

#[test]
fn ticker_funding_liquidation_candle_open_interest() {
    let u = Binance::usdm();
    let btc = map1("BTCUSDT", "BTC-USDT-PERP");
    let VenueEvent::Record(Normalized::Ticker(t)) =
        one(&u, "binance_futures_ticker.jsonl", 1, &btc)
    else {
        panic!()
    };
    assert_eq!(
        (
            t.last.as_str(),
            t.open.as_str(),
            t.high.as_str(),
            t.low.as_str()
        ),
        ("10223.74", "10311.91", "10329.38", "10080.70")
    );
    assert_eq!(
        (t.volume.as_str(), t.quote_volume.as_str(), t.bid.as_str()),
        ("20248.900", "207024349.13", "")
    );
    assert_eq!(
        (t.timestamp, t.event_time),
        (Some(1_568_693_103_463_000), Some(1_568_693_103_467_000))
    );

    let VenueEvent::Record(Normalized::Funding(f)) =
        one(&u, "binance_futures_markPrice.jsonl", 2, &btc)
    else {
        panic!()
    };
    assert_eq!(
        f,
        s::Funding {
            exchange: "BINANCE_FUTURES".into(),
            symbol: "BTC-USDT-PERP".into(),
            mark_price: "11857.56000000".into(),
            rate: "0.00015640".into(),
            next_funding_time: Some(1_597_564_800_000_000),
            predicted_rate: None,
            timestamp: Some(1_597_536_008_000_000),
            event_time: Some(1_597_536_008_000_000),
            receipt_time: RECEIPT,
            index_price: Some("11851.86949091".into()),
        }
    );

    let VenueEvent::Record(Normalized::Liquidation(l)) =
        one(&u, "binance_futures_forceOrder.jsonl", 1, &btc)
    else {
        panic!()
    };
    assert_eq!(l.side, liquidation::Side::Buy as i32);
    assert_eq!(
        (l.quantity.as_str(), l.price.as_str(), l.status.as_str()),
        ("0.014", "4793.91", "FILLED")
    );
    assert_eq!(
        (l.timestamp, l.event_time),
        (Some(1_584_059_031_421_000), Some(1_584_059_031_426_000))
    );

    let VenueEvent::Record(Normalized::Candle(c)) = one(
        &Binance::spot(),
        "binance_kline.jsonl",
        1,
        &map1("NKNUSDT", "NKN-USDT"),
    ) else {
        panic!()
    };
    assert_eq!(
        (c.start, c.stop, c.interval.as_str(), c.trades),
        (1_633_998_480_000_000, 1_633_998_539_999_000, "1m", Some(30))
    );
    assert_eq!(
        (
            c.open.as_str(),
            c.close.as_str(),
            c.high.as_str(),
            c.low.as_str(),
            c.volume.as_str()
        ),
        (
            "0.35270000",
            "0.35280000",
            "0.35280000",
            "0.35220000",
            "25877.00000000"
        )
    );
    assert!(!c.closed);
    assert_eq!(c.quote_volume.as_deref(), Some("9116.04600000"));

    let body = r#"{"symbol":"BTCUSDT","openInterest":"26286.181","time":1583127900000}"#;
    let Normalized::OpenInterest(o) = u.parse_open_interest(body, RECEIPT, &btc).unwrap() else {
        panic!()
    };
    assert_eq!(
        (o.open_interest.as_str(), o.timestamp),
        ("26286.181", Some(1_583_127_900_000_000))
    );
}

#[test]
fn every_recorded_line_parses() {
    let spot = [
        "binance_trade.jsonl",
        "binance_aggTrade.jsonl",
        "binance_depthUpdate.jsonl",
        "binance_bookTicker.jsonl",
        "binance_ticker.jsonl",
        "binance_kline.jsonl",
    ];
    let fut = [
        "binance_futures_trade.jsonl",
        "binance_futures_aggTrade.jsonl",
        "binance_futures_depthUpdate.jsonl",
        "binance_futures_bookTicker.jsonl",
        "binance_futures_ticker.jsonl",
        "binance_futures_kline.jsonl",
        "binance_futures_markPrice.jsonl",
        "binance_futures_forceOrder.jsonl",
    ];
    for (venue, files) in [(&Binance::spot(), &spot[..]), (&Binance::usdm(), &fut[..])] {
        let map = symbols(venue, files);
        for f in files {
            for (i, l) in lines(f).iter().enumerate() {
                let mut out = Vec::new();
                venue
                    .parse(l, RECEIPT, &map, &mut out)
                    .unwrap_or_else(|e| panic!("{f}:{}: {e}", i + 1));
                assert_eq!(out.len(), 1, "{f}:{}", i + 1);
                if let Some(VenueEvent::Encoded(e)) = out.first() {
                    // The direct encoding is byte for byte prost's encoding of the same record.
                    let record = e.decode().unwrap();
                    assert_eq!(record.encode_to_vec(), e.bytes, "{f}:{}", i + 1);
                    assert_eq!(
                        (record.exchange(), record.symbol()),
                        (e.exchange, &*e.symbol)
                    );
                    let Normalized::Trade(t) = &record else {
                        panic!("{f}: only trades take the direct path")
                    };
                    assert_eq!(t.receipt_time, RECEIPT);
                    assert!(!t.price.is_empty() && !t.trade_id.is_empty() && t.timestamp > 0);
                }
            }
        }
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let v = Binance::spot();
    let map = map1("ETHUSDT", "ETH-USDT");
    let mut out = Vec::new();
    let e = v.parse("{not json", RECEIPT, &map, &mut out).unwrap_err();
    assert_eq!(e.kind(), "malformed");
    let e = v
        .parse(&lines("binance_trade.jsonl")[1], RECEIPT, &map, &mut out)
        .unwrap_err();
    assert_eq!(e.kind(), "unknown_symbol");
    let e = v
        .parse(
            r#"{"stream":"ethusdt@foo","data":{}}"#,
            RECEIPT,
            &map,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(e.kind(), "unsupported");
    let e = v
        .parse(
            r#"{"code":2,"msg":"Invalid request"}"#,
            RECEIPT,
            &map,
            &mut out,
        )
        .unwrap_err();
    assert!(e.is_terminal());
    v.parse(r#"{"result":null,"id":1}"#, RECEIPT, &map, &mut out)
        .unwrap();
    assert_eq!(out, vec![VenueEvent::Control]);
}

/// Snapshot symbols from the MANIFEST notes (`REST https://…?symbol=X&…`).
fn snapshots(file: &str) -> Vec<(String, Snapshot)> {
    let manifest = std::fs::read_to_string(format!("{DIR}/MANIFEST.tsv")).unwrap();
    let syms: Vec<String> = manifest
        .lines()
        .filter(|l| l.starts_with(&format!("{file}\t")))
        .map(|l| {
            l.split("symbol=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let v = Binance::spot();
    lines(file)
        .iter()
        .zip(syms)
        .map(|(l, s)| (s, v.parse_snapshot(l).unwrap()))
        .collect()
}

type BookSide = Vec<(Decimal, String)>;

/// An independent reconstruction: a plain map, filtered only by update id.
fn reconstruct(snap: &Snapshot, diffs: &[Diff]) -> (BookSide, BookSide) {
    let mut bids: HashMap<Decimal, String> = HashMap::new();
    let mut asks: HashMap<Decimal, String> = HashMap::new();
    let set = |m: &mut HashMap<Decimal, String>, p: &str, q: &str| {
        let k = Decimal::from_str(p).unwrap();
        if Decimal::from_str(q).unwrap().is_zero() {
            m.remove(&k);
        } else {
            m.insert(k, q.to_string());
        }
    };
    for (p, q) in &snap.bids {
        set(&mut bids, p, q);
    }
    for (p, q) in &snap.asks {
        set(&mut asks, p, q);
    }
    for d in diffs.iter().filter(|d| d.last > snap.last_update_id) {
        for (p, q) in d.bids.iter() {
            set(&mut bids, p, q);
        }
        for (p, q) in d.asks.iter() {
            set(&mut asks, p, q);
        }
    }
    let mut b: Vec<_> = bids.into_iter().collect();
    let mut a: Vec<_> = asks.into_iter().collect();
    b.sort_by_key(|x| std::cmp::Reverse(x.0));
    a.sort_by_key(|x| x.0);
    (b, a)
}

fn check_corpus(venue: &Binance, rules: Rules, diff_file: &str, snap_file: &str) -> usize {
    let map = symbols(venue, &[diff_file]);
    let mut per_symbol: HashMap<String, Vec<Diff>> = HashMap::new();
    for l in lines(diff_file) {
        let mut out = Vec::new();
        venue.parse(&l, RECEIPT, &map, &mut out).unwrap();
        if let Some(VenueEvent::Diff { symbol, diff }) = out.pop() {
            per_symbol.entry(symbol.to_string()).or_default().push(diff);
        }
    }
    let mut checked = 0;
    for (sym, snap) in snapshots(snap_file) {
        let norm = map.normalized(&sym).unwrap().to_string();
        let diffs = per_symbol.remove(&norm).unwrap_or_default();
        let mut sync = BookSync::new(Arc::new(rules), 10_000);
        // Half the diffs arrive before the snapshot (buffered), the rest after.
        let split = diffs.len() / 2;
        for d in &diffs[..split] {
            assert_eq!(sync.on_diff(d.clone()).unwrap(), Step::Buffered);
        }
        assert_eq!(sync.on_snapshot(&snap).unwrap(), Step::Synced, "{sym}");
        // The feed's book keeper, alongside: each applied diff becomes one Level2Delta, encoded
        // straight from the diff, byte for byte what prost makes of the same record.
        let mut keeper = BookKeeper::new(venue.exchange(), Arc::new(rules), 0, None);
        for d in &diffs[..split] {
            assert!(keeper.on_diff(&norm, d.clone()).unwrap().records.is_empty());
        }
        assert!(keeper.on_snapshot(&norm, &snap, RECEIPT).unwrap().synced);
        for d in &diffs[split..] {
            let step = sync.on_diff(d.clone()).unwrap();
            assert!(
                matches!(step, Step::Applied | Step::Dropped),
                "{sym}: {step:?}"
            );
            let records = keeper.on_diff(&norm, d.clone()).unwrap().records;
            assert_eq!(records.len(), usize::from(step == Step::Applied), "{sym}");
            for r in records {
                let Payload::Normalized(e) = &r.payload else {
                    panic!("deltas are encoded")
                };
                let Normalized::Level2Delta(delta) = e.decode().unwrap() else {
                    panic!("{sym}: not a Level2Delta")
                };
                assert_eq!(prost::Message::encode_to_vec(&delta), e.bytes, "{sym}");
                assert_eq!(
                    (delta.bids, delta.asks),
                    (d.bids.to_price_levels(), d.asks.to_price_levels())
                );
                assert_eq!(
                    (
                        delta.first_update_id,
                        delta.last_update_id,
                        delta.prev_update_id
                    ),
                    (Some(d.first), Some(d.last), d.prev)
                );
                assert_eq!(
                    (delta.event_time, delta.timestamp, delta.receipt_time),
                    (d.event_time, d.timestamp, d.receipt_time)
                );
                assert_eq!(
                    (delta.exchange.as_str(), delta.symbol.as_str()),
                    (venue.exchange(), norm.as_str())
                );
            }
        }
        let (bids, asks) = sync.book().levels(None);
        let (eb, ea) = reconstruct(&snap, &diffs);
        let got = |v: &[s::v2beta1::level2_book::PriceLevel]| {
            v.iter()
                .map(|l| (Decimal::from_str(&l.price).unwrap(), l.quantity.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(got(&bids), eb, "{sym} bids");
        assert_eq!(got(&asks), ea, "{sym} asks");
        assert_eq!(
            sync.last_update_id(),
            diffs
                .iter()
                .map(|d| d.last)
                .max()
                .filter(|&u| u > snap.last_update_id)
                .or(Some(snap.last_update_id))
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_recorded_spot_snapshot_syncs_without_gaps() {
    assert_eq!(
        check_corpus(
            &Binance::spot(),
            Rules::Spot,
            "binance_depthUpdate.jsonl",
            "binance_depth_snapshot_rest.jsonl"
        ),
        4
    );
}

#[test]
fn every_recorded_usdm_snapshot_syncs_without_gaps() {
    assert_eq!(
        check_corpus(
            &Binance::usdm(),
            Rules::UsdM,
            "binance_futures_depthUpdate.jsonl",
            "binance_futures_depth_snapshot_rest.jsonl"
        ),
        4
    );
}

#[test]
fn an_injected_gap_is_detected() {
    let v = Binance::spot();
    let map = symbols(&v, &["binance_depthUpdate.jsonl"]);
    let (_, snap) = snapshots("binance_depth_snapshot_rest.jsonl").remove(0);
    let mut sync = BookSync::new(Arc::new(Rules::Spot), 1000);
    sync.on_snapshot(&snap).unwrap();
    let mut gaps = 0;
    for (i, l) in lines("binance_depthUpdate.jsonl").iter().enumerate() {
        let mut out = Vec::new();
        v.parse(l, RECEIPT, &map, &mut out).unwrap();
        let Some(VenueEvent::Diff { symbol, diff }) = out.pop() else {
            continue;
        };
        if &*symbol != "NKNUSDT-X" || i == 40 {
            continue; // other symbols; line 41 is dropped to inject a gap
        }
        if let Step::Gap { .. } = sync.on_diff(diff).unwrap() {
            gaps += 1;
        }
    }
    assert_eq!(gaps, 1);
}

#[test]
fn exchange_info_maps_tradable_symbols() {
    let body = r#"{"timezone":"UTC","symbols":[
        {"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","contractType":"PERPETUAL"},
        {"symbol":"BTCUSDT_250328","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","contractType":"CURRENT_QUARTER"},
        {"symbol":"LUNAUSDT","status":"BREAK","baseAsset":"LUNA","quoteAsset":"USDT","contractType":"PERPETUAL"}]}"#;
    assert_eq!(
        Binance::usdm().parse_instruments(body).unwrap(),
        vec![("BTCUSDT".to_string(), "BTC-USDT-PERP".to_string())]
    );
    let spot = r#"{"symbols":[{"symbol":"NKNUSDT","status":"TRADING","baseAsset":"NKN","quoteAsset":"USDT"}]}"#;
    assert_eq!(
        Binance::spot().parse_instruments(spot).unwrap(),
        vec![("NKNUSDT".to_string(), "NKN-USDT".to_string())]
    );
    assert_eq!(
        Binance::spot().parse_instruments("{}").unwrap_err().kind(),
        "malformed"
    );
}
