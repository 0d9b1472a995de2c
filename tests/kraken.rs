//! Kraken: golden tests on recorded WebSocket v1 messages (tests/fixtures/kraken, see
//! SOURCES.md) with expected values typed from Kraken's documented semantics; every recorded
//! book update of every pair synced through `BookSync` with zero checksum mismatches and the
//! same final book as an independent reconstruction; checksum and crossed-book breaks and the
//! in-band resync; the documented WebSocket v2 examples (checksums included); the session's
//! requests; and the replay mock end to end over a real WebSocket. No broker needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde_json::Value;
use tickflow::book::{BookSync, Break, Diff, Sequencer, Snapshot, Step};
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::trade;
use tickflow::schema::{self as s, Normalized};
use tickflow::venues::kraken::{normalized_pair, Control, Kraken, WsVersion};
use tickflow::venues::{
    Channel, Frame, ParseError, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent,
    VenueSession,
};
use tokio_tungstenite::tungstenite::Message;

const DIR: &str = "tests/fixtures/kraken";
const RECEIPT: i64 = 1_700_000_000_000_001;
/// The recorded books' depth (`book-1000`).
const DEPTH: u32 = 1000;

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{DIR}/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn v1() -> Kraken {
    Kraken::with_version(WsVersion::V1)
}

/// Every v1 pair of the fixtures, mapped the way the config would pin it.
fn v1_symbols() -> &'static SymbolMap {
    static MAP: OnceLock<SymbolMap> = OnceLock::new();
    MAP.get_or_init(all_v1_symbols)
}

fn all_v1_symbols() -> SymbolMap {
    let mut pairs = Vec::new();
    for f in [
        "kraken_book_snapshot.jsonl",
        "kraken_book_update.jsonl",
        "kraken_trade.jsonl",
        "kraken_ticker.jsonl",
        "kraken_cmp_bbo.jsonl",
        "kraken_cmp_candlestick.jsonl",
        "kraken_cmp_trade.jsonl",
        "kraken_cmp_ticker.jsonl",
        "kraken_cmp_l2_event.jsonl",
    ] {
        for l in lines(f) {
            let v: Value = serde_json::from_str(&l).unwrap();
            if let Some(pair) = v.as_array().and_then(|a| a.last()).and_then(Value::as_str) {
                if let Some(n) = normalized_pair(pair) {
                    pairs.push((pair.to_string(), n));
                }
            }
        }
    }
    SymbolMap::new(pairs)
}

fn parse_v1(text: &str) -> Result<Vec<VenueEvent>, ParseError> {
    let mut out = Vec::new();
    v1().parse(text, RECEIPT, v1_symbols(), &mut out)?;
    Ok(out)
}

fn records(events: Vec<VenueEvent>) -> Vec<Normalized> {
    events.iter().map(|e| e.record().unwrap()).collect()
}

fn the_trade(r: &Normalized) -> &s::Trade {
    match r {
        Normalized::Trade(t) => t,
        other => panic!("not a trade: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// v1 golden tests, one per channel
// ---------------------------------------------------------------------------------------------

#[test]
fn v1_trades_carry_the_taker_side_exact_digits_and_microseconds() {
    let t = lines("kraken_trade.jsonl");
    // [993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]
    let r = records(parse_v1(&t[0]).unwrap());
    assert_eq!(r.len(), 1);
    assert_eq!(
        the_trade(&r[0]),
        &s::Trade {
            exchange: "KRAKEN".into(),
            symbol: "XMR-USD".into(),
            side: trade::Side::Sell as i32,
            trade_id: String::new(),
            price: "354.11000000".into(),
            amount: "0.89594024".into(),
            timestamp: 1_618_678_142_557_535,
            raw_id: String::new(),
            trade_type: Some("limit".into()),
            maker: Some(true),
            event_time: None,
            match_id: None,
            liquidity_flag: None,
            receipt_time: RECEIPT,
        }
    );
    // [993,[["354.55000000","1.25690315","1618678145.715785","b","m",""]],…]: a market buy.
    let r = records(parse_v1(&t[1]).unwrap());
    let b = the_trade(&r[0]);
    assert_eq!(b.side, trade::Side::Buy as i32);
    assert_eq!(b.trade_type.as_deref(), Some("market"));
    assert_eq!(b.maker, Some(false));
    assert_eq!(b.timestamp, 1_618_678_145_715_785);
    // Two trades in one frame, in order.
    let r = records(parse_v1(&t[3]).unwrap());
    let got: Vec<(&str, &str, i64)> = r
        .iter()
        .map(the_trade)
        .map(|t| (t.price.as_str(), t.amount.as_str(), t.timestamp))
        .collect();
    assert_eq!(
        got,
        [
            ("354.04000000", "0.28245396", 1_618_678_150_826_417),
            ("353.81000000", "1.71754604", 1_618_678_150_827_816)
        ]
    );
    // Every recorded line parses: 10 trades in 8 frames.
    let n: usize = t.iter().map(|l| parse_v1(l).unwrap().len()).sum();
    assert_eq!(n, 10);
    // crypto-msg-parser's vector: XBT/USD is BTC-USD.
    let c = records(parse_v1(&lines("kraken_cmp_trade.jsonl")[0]).unwrap());
    let c = the_trade(&c[0]);
    assert_eq!(
        (
            c.symbol.as_str(),
            c.side,
            c.price.as_str(),
            c.amount.as_str(),
            c.timestamp
        ),
        (
            "BTC-USD",
            trade::Side::Buy as i32,
            "57126.70000",
            "0.02063928",
            1_616_333_924_737_428
        )
    );
}

#[test]
fn v1_ticker_uses_the_24h_figures() {
    let t = lines("kraken_ticker.jsonl");
    // WAVES/EUR: a=13.253900, b=13.232900, c=13.253900, v[1]=72035.05488104,
    // l[1]=13.021800, h[1]=14.211200, o[1]=13.428300.
    let r = records(parse_v1(&t[0]).unwrap());
    assert_eq!(
        r,
        [Normalized::Ticker(s::Ticker {
            exchange: "KRAKEN".into(),
            symbol: "WAVES-EUR".into(),
            bid: "13.232900".into(),
            ask: "13.253900".into(),
            timestamp: None,
            event_time: None,
            receipt_time: RECEIPT,
            last: "13.253900".into(),
            open: "13.428300".into(),
            high: "14.211200".into(),
            low: "13.021800".into(),
            volume: "72035.05488104".into(),
            quote_volume: String::new(),
        })]
    );
    // KSM/XBT is KSM-BTC.
    let r = records(parse_v1(&t[2]).unwrap());
    assert!(
        matches!(&r[0], Normalized::Ticker(x) if x.symbol == "KSM-BTC" && x.bid == "0.00758000")
    );
    for l in &t {
        assert_eq!(parse_v1(l).unwrap().len(), 1, "{l}");
    }
    let c = records(parse_v1(&lines("kraken_cmp_ticker.jsonl")[0]).unwrap());
    assert!(
        matches!(&c[0], Normalized::Ticker(x) if x.symbol == "BTC-USD" && x.open == "31614.50000" && x.volume == "5243.60824494")
    );
}

#[test]
fn v1_spread_is_the_top_of_book() {
    // [341,["31760.00000","31760.10000","1654031976.197239","0.02167307","6.46761464"],"spread","XBT/USD"]
    let r = records(parse_v1(&lines("kraken_cmp_bbo.jsonl")[0]).unwrap());
    assert_eq!(
        r,
        [Normalized::TopOfBook(s::TopOfBook {
            exchange: "KRAKEN".into(),
            symbol: "BTC-USD".into(),
            bid_price: "31760.00000".into(),
            bid_size: "0.02167307".into(),
            ask_price: "31760.10000".into(),
            ask_size: "6.46761464".into(),
            timestamp: Some(1_654_031_976_197_239),
            event_time: None,
            receipt_time: RECEIPT,
            update_id: None,
        })]
    );
}

#[test]
fn v1_ohlc_is_a_running_one_minute_candle() {
    // [343,["1675209613.118218","1675209660.000000","23135.00000","23135.40000","23135.00000",
    //  "23135.40000","23135.13297","0.39012812",7],"ohlc-1","XBT/USD"]: time = last update,
    // etime = end of the interval.
    let r = records(parse_v1(&lines("kraken_cmp_candlestick.jsonl")[0]).unwrap());
    assert_eq!(
        r,
        [Normalized::Candle(s::Candle {
            exchange: "KRAKEN".into(),
            symbol: "BTC-USD".into(),
            start: 1_675_209_600_000_000,
            stop: 1_675_209_660_000_000,
            interval: "1m".into(),
            trades: Some(7),
            open: "23135.00000".into(),
            close: "23135.40000".into(),
            high: "23135.40000".into(),
            low: "23135.00000".into(),
            volume: "0.39012812".into(),
            closed: false,
            timestamp: Some(1_675_209_613_118_218),
            event_time: None,
            receipt_time: RECEIPT,
            quote_volume: None,
        })]
    );
}

#[test]
fn v1_book_frames_snapshot_update_and_two_payload_update() {
    let l = lines("kraken_cmp_l2_event.jsonl");
    // An empty snapshot (PERP/EUR) is a snapshot with no levels.
    match &parse_v1(&l[0]).unwrap()[..] {
        [VenueEvent::Snapshot { symbol, snapshot }] => {
            assert_eq!(symbol, "PERP-EUR");
            assert!(snapshot.bids.is_empty() && snapshot.asks.is_empty());
            assert_eq!(snapshot.checksum, None);
        }
        other => panic!("{other:?}"),
    }
    match &parse_v1(&l[1]).unwrap()[..] {
        [VenueEvent::Snapshot { symbol, snapshot }] => {
            assert_eq!(symbol, "BTC-USD");
            assert_eq!(
                snapshot.asks[0],
                ("39090.60000".into(), "0.00007039".into())
            );
            assert_eq!(
                snapshot.bids[2],
                ("39071.20000".into(), "0.76000000".into())
            );
        }
        other => panic!("{other:?}"),
    }
    // [320,{"b":[["39071.40000","7.26106570","1622714256.068601"]],"c":"2040672112"},…]
    match &parse_v1(&l[2]).unwrap()[..] {
        [VenueEvent::Diff { symbol, diff }] => {
            assert_eq!(symbol.to_string(), "BTC-USD");
            assert_eq!(
                diff.bids.iter().collect::<Vec<_>>(),
                [("39071.40000", "7.26106570")]
            );
            assert!(diff.asks.is_empty());
            assert_eq!(diff.checksum, Some(2_040_672_112));
            assert_eq!(diff.timestamp, Some(1_622_714_256_068_601));
            assert_eq!((diff.first, diff.last, diff.prev), (0, 0, None));
        }
        other => panic!("{other:?}"),
    }
    // `a` and `b` in two payload objects, checksum in the last: one diff.
    match &parse_v1(&l[3]).unwrap()[..] {
        [VenueEvent::Diff { diff, .. }] => {
            assert_eq!(
                diff.asks.iter().collect::<Vec<_>>(),
                [("38800.00000", "0.02203518")]
            );
            assert_eq!(
                diff.bids.iter().collect::<Vec<_>>(),
                [("38800.00000", "0.03017320")]
            );
            assert_eq!(diff.checksum, Some(2_479_000_840));
            assert_eq!(diff.timestamp, Some(1_622_766_170_577_304));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v1_events_and_errors() {
    let control = |t: &str| {
        let mut out = Vec::new();
        v1().parse(t, RECEIPT, v1_symbols(), &mut out)
    };
    assert_eq!(control(r#"{"event":"heartbeat"}"#).unwrap(), Control::Quiet);
    assert_eq!(
        control(r#"{"connectionID":8628615390848610000,"event":"systemStatus","status":"online","version":"1.0.0"}"#).unwrap(),
        Control::Quiet
    );
    assert_eq!(
        control(r#"{"channelID":10001,"channelName":"book-1000","event":"subscriptionStatus","pair":"XBT/USD","status":"subscribed","subscription":{"depth":1000,"name":"book"}}"#).unwrap(),
        Control::Subscribed { channel: "book".into(), pair: Some("XBT/USD".into()) }
    );
    let err = control(r#"{"errorMessage":"Subscription depth not supported","event":"subscriptionStatus","pair":"XBT/USD","status":"error","subscription":{"depth":42,"name":"book"}}"#).unwrap_err();
    assert!(matches!(&err, ParseError::Venue { msg, .. } if msg.contains("depth not supported")));
    assert!(err.is_terminal());
    assert!(matches!(
        control(r#"[1,{"b":[]},"book-10","NOPE/USD"]"#),
        Err(ParseError::UnknownSymbol(_))
    ));
    assert!(matches!(
        control(r#"[1,[],"nonsense","XBT/USD"]"#),
        Err(ParseError::Unsupported(_))
    ));
    assert!(matches!(
        control(r#"[1,[["1.0","2.0","x","b","m",""]],"trade","XBT/USD"]"#),
        Err(ParseError::BadDecimal(_))
    ));
    assert!(control("[1,").is_err());
}

// ---------------------------------------------------------------------------------------------
// Books: every recorded update of every pair
// ---------------------------------------------------------------------------------------------

/// Bids (best first) and asks (best first) as (price, quantity) texts.
type BothSides = (Vec<(String, String)>, Vec<(String, String)>);

/// A recorded update: symbol, diff, the frame's text.
type Recorded = (String, Diff, String);

/// An independent book: a plain BTreeMap per side (exact decimal keys), the Kraken rules
/// written out again.
#[derive(Default, Clone)]
struct Plain {
    bids: BTreeMap<Decimal, (String, String)>,
    asks: BTreeMap<Decimal, (String, String)>,
}

impl Plain {
    fn set(&mut self, bid: bool, p: &str, q: &str) {
        let side = if bid { &mut self.bids } else { &mut self.asks };
        let k = Decimal::from_str(p).unwrap();
        if q.bytes().all(|b| b == b'0' || b == b'.') {
            side.remove(&k);
        } else {
            side.insert(k, (p.to_string(), q.to_string()));
        }
    }

    fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            let worst = *self.bids.keys().next().unwrap();
            self.bids.remove(&worst);
        }
        while self.asks.len() > depth {
            let worst = *self.asks.keys().next_back().unwrap();
            self.asks.remove(&worst);
        }
    }

    /// Kraken's documented checksum, computed from scratch.
    fn checksum(&self) -> u32 {
        let strip = |s: &str| s.replace('.', "").trim_start_matches('0').to_string();
        let mut text = String::new();
        for (p, q) in self.asks.values().take(10) {
            text += &(strip(p) + &strip(q));
        }
        for (p, q) in self.bids.values().rev().take(10) {
            text += &(strip(p) + &strip(q));
        }
        crc32fast::hash(text.as_bytes())
    }

    fn levels(&self) -> BothSides {
        (
            self.bids.values().rev().cloned().collect(),
            self.asks.values().cloned().collect(),
        )
    }
}

fn synced_levels(b: &BookSync) -> BothSides {
    let (bids, asks) = b.book().levels(None);
    let f = |v: Vec<tickflow::schema::v2beta1::level2_book::PriceLevel>| {
        v.into_iter().map(|l| (l.price, l.quantity)).collect()
    };
    (f(bids), f(asks))
}

fn kraken_seq() -> Arc<dyn Sequencer> {
    v1().sequencer(DEPTH)
}

/// Snapshots by normalized symbol, and the recorded update frames in order.
fn recorded_books() -> (HashMap<String, Snapshot>, Vec<Recorded>) {
    let mut snaps = HashMap::new();
    for l in lines("kraken_book_snapshot.jsonl") {
        for e in parse_v1(&l).unwrap() {
            match e {
                VenueEvent::Snapshot { symbol, snapshot } => {
                    snaps.insert(symbol, snapshot);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let mut diffs = Vec::new();
    for l in lines("kraken_book_update.jsonl") {
        let mut ev = parse_v1(&l).unwrap();
        assert_eq!(ev.len(), 1);
        match ev.pop().unwrap() {
            VenueEvent::Diff { symbol, diff } => diffs.push((symbol.to_string(), diff, l)),
            other => panic!("{other:?}"),
        }
    }
    (snaps, diffs)
}

fn plain_of(s: &Snapshot) -> Plain {
    let mut p = Plain::default();
    for (pr, q) in &s.bids {
        p.set(true, pr, q);
    }
    for (pr, q) in &s.asks {
        p.set(false, pr, q);
    }
    p.truncate(DEPTH as usize);
    p
}

#[test]
fn every_recorded_update_of_every_pair_keeps_the_checksum() {
    let (snaps, diffs) = recorded_books();
    assert_eq!(snaps.len(), 10);
    assert_eq!(diffs.len(), 4269);
    let mut books: HashMap<String, BookSync> = HashMap::new();
    let mut plain: HashMap<String, Plain> = HashMap::new();
    for (sym, snap) in &snaps {
        let mut b = BookSync::new(kraken_seq(), 16);
        assert_eq!(b.on_snapshot(snap).unwrap(), Step::Synced, "{sym}");
        books.insert(sym.clone(), b);
        plain.insert(sym.clone(), plain_of(snap));
    }
    let (mut applied, mut mismatches, mut plain_mismatches) = (0, 0, 0);
    let mut per_pair: HashMap<&str, usize> = HashMap::new();
    for (sym, diff, line) in &diffs {
        // The independent reconstruction, from the frame's own levels.
        let p = plain.get_mut(sym).unwrap();
        for (pr, q) in diff.asks.iter() {
            p.set(false, pr, q);
        }
        for (pr, q) in diff.bids.iter() {
            p.set(true, pr, q);
        }
        p.truncate(DEPTH as usize);
        if Some(p.checksum()) != diff.checksum {
            plain_mismatches += 1;
        }
        match books.get_mut(sym).unwrap().on_diff(diff.clone()).unwrap() {
            Step::Applied => applied += 1,
            Step::Broken(Break::Checksum { .. }) => {
                mismatches += 1;
                eprintln!("mismatch on {line}");
            }
            other => panic!("{sym}: {other:?} on {line}"),
        }
        *per_pair.entry(sym.as_str()).or_default() += 1;
    }
    assert_eq!((applied, mismatches), (4269, 0));
    assert_eq!(plain_mismatches, 0);
    assert_eq!(per_pair.len(), 10);
    assert_eq!(per_pair["XMR-USD"], 846);
    assert_eq!(per_pair["GRT-ETH"], 20);
    for (sym, b) in &books {
        assert!(b.is_synced());
        assert_eq!(synced_levels(b), plain[sym].levels(), "{sym}");
        assert_eq!(b.last_update_id(), Some(0));
    }
}

#[test]
fn a_corrupted_level_breaks_the_checksum_and_an_in_band_snapshot_resyncs() {
    let (snaps, diffs) = recorded_books();
    let sym = "XMR-USD";
    let ours: Vec<&Recorded> = diffs.iter().filter(|d| d.0 == sym).collect();
    let mut book = BookSync::new(kraken_seq(), 16);
    let mut plain = plain_of(&snaps[sym]);
    book.on_snapshot(&snaps[sym]).unwrap();
    let apply_plain = |p: &mut Plain, d: &Diff| {
        for (pr, q) in d.asks.iter() {
            p.set(false, pr, q);
        }
        for (pr, q) in d.bids.iter() {
            p.set(true, pr, q);
        }
        p.truncate(DEPTH as usize);
    };
    for (_, d, _) in &ours[..100] {
        assert_eq!(book.on_diff(d.clone()).unwrap(), Step::Applied);
        apply_plain(&mut plain, d);
    }
    // One level of the next update corrupted (its quantity's last digit changed): the venue's
    // checksum no longer matches the book.
    let (_, next, _) = ours[100];
    let mut corrupt = next.clone();
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    for (p, q) in next.bids.iter() {
        bids.push((p.to_string(), q.to_string()));
    }
    for (p, q) in next.asks.iter() {
        asks.push((p.to_string(), q.to_string()));
    }
    let target = if bids.is_empty() {
        &mut asks
    } else {
        &mut bids
    };
    let q = &mut target[0].1;
    let last = q.pop().unwrap();
    q.push(if last == '1' { '2' } else { '1' });
    corrupt.bids = bids.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect();
    corrupt.asks = asks.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect();
    match book.on_diff(corrupt).unwrap() {
        Step::Broken(Break::Checksum { venue, local }) => {
            assert_eq!(Some(venue), next.checksum);
            assert_ne!(venue, local);
        }
        other => panic!("{other:?}"),
    }
    assert!(!book.is_synced());
    // Until the snapshot, diffs are dropped (in-band source).
    apply_plain(&mut plain, next);
    assert_eq!(book.on_diff(ours[101].1.clone()).unwrap(), Step::Dropped);
    apply_plain(&mut plain, &ours[101].1);
    // The resubscribe brings an in-band snapshot of the venue's book: in sync again, and every
    // later recorded update matches.
    let (bids, asks) = plain.levels();
    let snap = Snapshot {
        last_update_id: 0,
        bids,
        asks,
        checksum: None,
    };
    assert_eq!(book.on_snapshot(&snap).unwrap(), Step::Synced);
    for (_, d, l) in &ours[102..] {
        assert_eq!(book.on_diff(d.clone()).unwrap(), Step::Applied, "{l}");
        apply_plain(&mut plain, d);
    }
    assert_eq!(synced_levels(&book), plain.levels());
}

#[test]
fn a_crossed_book_breaks() {
    let (snaps, _) = recorded_books();
    let snap = &snaps["XMR-USD"];
    let mut book = BookSync::new(kraken_seq(), 16);
    book.on_snapshot(snap).unwrap();
    let best_ask = snap
        .asks
        .iter()
        .min_by_key(|(p, _)| Decimal::from_str(p).unwrap())
        .unwrap()
        .0
        .clone();
    // A bid at the best ask (no checksum, so only the crossed-book check speaks).
    let diff = Diff {
        bids: [(best_ask.as_str(), "1.00000000")].into_iter().collect(),
        ..Diff::default()
    };
    match book.on_diff(diff).unwrap() {
        Step::Broken(Break::Crossed { bid, ask }) => {
            assert_eq!(bid, best_ask);
            assert_eq!(ask, best_ask);
        }
        other => panic!("{other:?}"),
    }
    assert!(!book.is_synced());
}

#[test]
fn the_book_is_a_window_of_the_subscribed_depth() {
    // Depth 10: an 11th bid inserted above the worst pushes the worst out (no delete is sent).
    let seq = v1().sequencer(10);
    assert_eq!(seq.max_depth(), Some(10));
    assert!(!seq.has_ids());
    let mut book = BookSync::new(seq, 4);
    let bids: Vec<(String, String)> = (0..10)
        .map(|i| (format!("1.{:02}", 50 - i), "1".into()))
        .collect();
    let asks: Vec<(String, String)> = (0..10)
        .map(|i| (format!("2.{:02}", i), "1".into()))
        .collect();
    book.on_snapshot(&Snapshot {
        bids,
        asks,
        ..Snapshot::default()
    })
    .unwrap();
    let d = Diff {
        bids: [("1.455", "2")].into_iter().collect(),
        ..Diff::default()
    };
    assert_eq!(book.on_diff(d).unwrap(), Step::Applied);
    let (bids, _) = synced_levels(&book);
    assert_eq!(bids.len(), 10);
    assert_eq!(bids.last().unwrap().0, "1.42");
    assert!(bids.iter().any(|(p, _)| p == "1.455"));
}

#[test]
fn kraken_v1_documented_checksum_example() {
    // Kraken's v1 checksum guide: this book's checksum is 974947235.
    let asks = [
        "0.05005", "0.05010", "0.05015", "0.05020", "0.05025", "0.05030", "0.05035", "0.05040",
        "0.05045", "0.05050",
    ];
    let bids = [
        "0.05000", "0.04995", "0.04990", "0.04980", "0.04975", "0.04970", "0.04965", "0.04960",
        "0.04955", "0.04950",
    ];
    let lv = |v: &[&str]| {
        v.iter()
            .map(|p| (p.to_string(), "0.00000500".to_string()))
            .collect()
    };
    let snap = Snapshot {
        bids: lv(&bids),
        asks: lv(&asks),
        ..Snapshot::default()
    };
    let seq = v1().sequencer(10);
    let mut book = BookSync::new(seq.clone(), 4);
    book.on_snapshot(&snap).unwrap();
    assert_eq!(book.checksum(), Some(974_947_235));
    // And as a v1 update frame carrying it: applies cleanly.
    let frame = r#"[0,{"b":[["0.04950","0.00000500","1582905488.509872"]],"c":"974947235"},"book-10","XBT/USD"]"#;
    let mut out = Vec::new();
    v1().parse(frame, RECEIPT, v1_symbols(), &mut out).unwrap();
    let Some(VenueEvent::Diff { diff, .. }) = out.pop() else {
        panic!()
    };
    assert_eq!(book.on_diff(diff).unwrap(), Step::Applied);
}

// ---------------------------------------------------------------------------------------------
// v2: Kraken's documentation examples
// ---------------------------------------------------------------------------------------------

fn v2_lines() -> Vec<String> {
    lines("v2_docs_examples.jsonl")
}

fn spec(channels: &[Channel], symbols: &[&str], v1_form: bool) -> SessionSpec {
    let mut subs = Vec::new();
    let mut pairs = Vec::new();
    for sym in symbols {
        let i = tickflow::venues::Instrument::parse(sym).unwrap();
        let venue = Kraken::with_version(if v1_form {
            WsVersion::V1
        } else {
            WsVersion::V2
        })
        .venue_symbol(&i);
        pairs.push((venue.clone(), sym.to_string()));
        for c in channels {
            subs.push(Subscription {
                channel: *c,
                symbol: sym.to_string(),
                venue_symbol: venue.clone(),
            });
        }
    }
    SessionSpec {
        subscriptions: subs,
        symbols: SymbolMap::new(pairs),
        book_depth: 10,
        ws_url: String::new(),
    }
}

fn feed(session: &mut dyn VenueSession, text: &str) -> Vec<VenueEvent> {
    let mut out = Vec::new();
    session
        .on_frame(Frame::Text(text), RECEIPT, &mut out)
        .unwrap();
    out
}

#[test]
fn v2_documented_book_checksums_with_the_pair_precision() {
    let l = v2_lines();
    let mut session =
        Kraken::new().session(spec(&[Channel::Depth], &["MATIC-USD", "BTC-USD"], false));
    let subs = session.subscribe();
    assert!(subs[0].contains(r#""channel":"instrument""#), "{subs:?}");
    assert_eq!(session.unconfirmed(), 3);
    // The instrument snapshot gives MATIC/USD 4 price and 8 quantity decimals.
    assert_eq!(feed(&mut *session, &l[2]), [VenueEvent::Control]);
    let seq = Kraken::new().sequencer(10);
    let mut book = BookSync::new(seq.clone(), 4);
    let snap = match &feed(&mut *session, &l[3])[..] {
        [VenueEvent::Snapshot { symbol, snapshot }] => {
            assert_eq!(symbol, "MATIC-USD");
            snapshot.clone()
        }
        other => panic!("{other:?}"),
    };
    // JSON numbers written with the pair's precision: 0.566 → 0.5660, 18097.1547 → 18097.15470000.
    assert!(snap
        .bids
        .contains(&("0.5660".into(), "18097.15470000".into())));
    assert_eq!(snap.checksum, Some(2_439_117_997));
    assert_eq!(book.on_snapshot(&snap).unwrap(), Step::Synced);
    assert_eq!(book.checksum(), Some(2_439_117_997));
    match feed(&mut *session, &l[4]).pop() {
        Some(VenueEvent::Diff { symbol, diff }) => {
            assert_eq!(&*symbol, "MATIC-USD");
            assert_eq!(diff.checksum, Some(2_114_181_697));
            assert_eq!(diff.timestamp, Some(1_696_613_755_440_295));
            assert_eq!(
                diff.bids.iter().collect::<Vec<_>>(),
                [("0.5657", "1098.39475580")]
            );
            assert_eq!(book.on_diff(diff).unwrap(), Step::Applied);
        }
        other => panic!("{other:?}"),
    }
    // The checksum guide's BTC/USD example (pinned precision 1/8; strings in the guide).
    let mut btc = BookSync::new(seq, 4);
    match feed(&mut *session, &l[5]).pop() {
        Some(VenueEvent::Snapshot { symbol, snapshot }) => {
            assert_eq!(symbol, "BTC-USD");
            assert_eq!(snapshot.checksum, Some(3_310_070_434));
            assert_eq!(btc.on_snapshot(&snapshot).unwrap(), Step::Synced);
        }
        other => panic!("{other:?}"),
    }
    // Without the pair's precision the literals (0.566, 18097.1547) break the checksum.
    let map = SymbolMap::new([("MATIC/USD".to_string(), "MATIC-USD".to_string())]);
    let mut out = Vec::new();
    Kraken::new().parse(&l[3], RECEIPT, &map, &mut out).unwrap();
    let Some(VenueEvent::Snapshot { snapshot, .. }) = out.pop() else {
        panic!()
    };
    let mut raw = BookSync::new(Kraken::new().sequencer(10), 4);
    assert!(matches!(
        raw.on_snapshot(&snapshot).unwrap(),
        Step::Broken(Break::Checksum { .. })
    ));
}

#[test]
fn v2_documented_trade_ticker_and_candle() {
    let l = v2_lines();
    let map = SymbolMap::new([
        ("MATIC/USD".to_string(), "MATIC-USD".to_string()),
        ("ALGO/USD".to_string(), "ALGO-USD".to_string()),
    ]);
    let parse = |t: &str| {
        let mut out = Vec::new();
        Kraken::new().parse(t, RECEIPT, &map, &mut out).unwrap();
        records(out)
    };
    assert_eq!(
        parse(&l[6]),
        [Normalized::Trade(s::Trade {
            exchange: "KRAKEN".into(),
            symbol: "MATIC-USD".into(),
            side: trade::Side::Sell as i32,
            trade_id: "4665906".into(),
            price: "0.5117".into(),
            amount: "40.0".into(),
            timestamp: 1_695_628_177_708_706,
            raw_id: "4665906".into(),
            trade_type: Some("market".into()),
            maker: Some(true),
            event_time: None,
            match_id: None,
            liquidity_flag: None,
            receipt_time: RECEIPT,
        })]
    );
    // 2023-09-25T09:04:31.742648Z; open = last − change = 0.10035 − (−0.00017).
    let t = parse(&l[7]);
    assert_eq!(
        t[0],
        Normalized::Ticker(s::Ticker {
            exchange: "KRAKEN".into(),
            symbol: "ALGO-USD".into(),
            bid: "0.10025".into(),
            ask: "0.10035".into(),
            timestamp: Some(1_695_632_671_742_648),
            event_time: None,
            receipt_time: RECEIPT,
            last: "0.10035".into(),
            open: "0.10052".into(),
            high: "0.10285".into(),
            low: "0.09979".into(),
            volume: "997038.98383185".into(),
            quote_volume: String::new(),
        })
    );
    assert!(
        matches!(&t[1], Normalized::TopOfBook(b) if b.bid_size == "740.0" && b.ask_price == "0.10035")
    );
    // interval_begin 2023-10-04T16:25:00Z, 5 minutes; message time 16:26:30.524394914.
    assert_eq!(
        parse(&l[8]),
        [Normalized::Candle(s::Candle {
            exchange: "KRAKEN".into(),
            symbol: "MATIC-USD".into(),
            start: 1_696_436_700_000_000,
            stop: 1_696_437_000_000_000,
            interval: "5m".into(),
            trades: Some(12),
            open: "0.5624".into(),
            close: "0.5627".into(),
            high: "0.5628".into(),
            low: "0.5622".into(),
            volume: "30927.68066226".into(),
            closed: false,
            timestamp: Some(1_696_436_790_524_394),
            event_time: None,
            receipt_time: RECEIPT,
            quote_volume: None,
        })]
    );
}

#[test]
fn v2_control_messages() {
    let l = v2_lines();
    let mut session = Kraken::new().session(spec(&[Channel::Depth], &["ALGO-USD"], false));
    session.subscribe();
    assert_eq!(session.unconfirmed(), 2);
    for i in [0, 9, 10] {
        assert_eq!(
            feed(&mut *session, &l[i]),
            [VenueEvent::Control],
            "{}",
            l[i]
        );
    }
    // The documented ack of ALGO/USD's book.
    assert_eq!(feed(&mut *session, &l[1]), [VenueEvent::Control]);
    assert_eq!(session.unconfirmed(), 1);
    // A server ping is answered.
    assert_eq!(
        feed(&mut *session, r#"{"method":"ping"}"#),
        [VenueEvent::Send(r#"{"method":"pong"}"#.into())]
    );
    let mut out = Vec::new();
    let err = session
        .on_frame(Frame::Text(&l[11]), RECEIPT, &mut out)
        .unwrap_err();
    assert!(matches!(&err, ParseError::Venue { msg, .. } if msg.contains("ABC/USD")));
    assert_eq!(session.heartbeat().as_deref(), Some(r#"{"method":"ping"}"#));
    assert!(session
        .on_frame(Frame::Binary(b"\x00"), RECEIPT, &mut out)
        .is_err());
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

#[test]
fn v1_session_subscribes_per_channel_tracks_answers_and_resubscribes_books() {
    let all = [
        Channel::Depth,
        Channel::Trade,
        Channel::Ticker,
        Channel::BookTicker,
        Channel::Candle,
    ];
    // The spec may carry either form of the pair; a v1 session writes XBT.
    let mut s =
        Kraken::new().session_for(WsVersion::V1, spec(&all, &["BTC-USD", "DOGE-EUR"], false));
    assert_eq!(s.path(), "");
    let msgs: Vec<Value> = s
        .subscribe()
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    assert_eq!(msgs.len(), 5);
    assert_eq!(
        msgs[0],
        serde_json::json!({"event":"subscribe","pair":["XBT/USD","XDG/EUR"],"subscription":{"name":"book","depth":10}})
    );
    assert_eq!(
        msgs[4]["subscription"],
        serde_json::json!({"name":"ohlc","interval":1})
    );
    assert_eq!(msgs[3]["subscription"]["name"], "spread");
    assert_eq!(s.unconfirmed(), 10);
    let ok = r#"{"channelID":1,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD","status":"subscribed","subscription":{"depth":10,"name":"book"}}"#;
    assert_eq!(feed(&mut s, ok), [VenueEvent::Control]);
    assert_eq!(s.unconfirmed(), 9);
    assert_eq!(s.heartbeat().as_deref(), Some(r#"{"event":"ping"}"#));
    assert_eq!(s.heartbeat_interval(), Some(Duration::from_secs(30)));
    let again: Vec<Value> = s
        .resubscribe_book("BTC-USD")
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0]["event"], "unsubscribe");
    assert_eq!(again[1]["event"], "subscribe");
    assert_eq!(again[1]["pair"], serde_json::json!(["XBT/USD"]));
    assert_eq!(s.unconfirmed(), 10);
    assert!(s.resubscribe_book("ETH-USD").is_empty());
    // Frames are read with the v1 pairs.
    let ev = feed(
        &mut s,
        r#"[1,[["1.5","2","1618678142.557535","b","m",""]],"trade","XDG/EUR"]"#,
    );
    assert!(matches!(&ev[0].record(), Some(Normalized::Trade(t)) if t.symbol == "DOGE-EUR"));
}

#[test]
fn v2_session_one_ticker_subscription_gives_the_records_asked_for() {
    let mut s = Kraken::new().session(spec(
        &[Channel::BookTicker, Channel::Trade],
        &["ALGO-USD"],
        true,
    ));
    let msgs: Vec<Value> = s
        .subscribe()
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            serde_json::json!({"method":"subscribe","params":{"channel":"trade","symbol":["ALGO/USD"],"snapshot":false}}),
            serde_json::json!({"method":"subscribe","params":{"channel":"ticker","symbol":["ALGO/USD"],"event_trigger":"bbo"}}),
        ]
    );
    // Only the book ticker was asked for: the ticker record is dropped.
    let ev = feed(&mut *s, &v2_lines()[7]);
    assert_eq!(ev.len(), 1);
    assert!(matches!(ev[0].record(), Some(Normalized::TopOfBook(_))));
}

#[test]
fn the_venue_describes_itself() {
    let k = tickflow::venues::by_name("kraken").unwrap();
    assert_eq!(k.exchange(), "KRAKEN");
    assert_eq!(k.default_ws_url(), "wss://ws.kraken.com/v2");
    // REST only for the instrument list (Kraken's public AssetPairs endpoint).
    assert_eq!(k.default_rest_url(), Some("https://api.kraken.com"));
    assert_eq!(k.instruments_path(), Some("/0/public/AssetPairs"));
    assert!(k.channels().contains(&Channel::Depth));
    assert_eq!(
        k.instrument_kinds(),
        [tickflow::venues::InstrumentKind::Spot]
    );
    let i = tickflow::venues::Instrument::parse("BTC-USD").unwrap();
    assert_eq!(k.venue_symbol(&i), "BTC/USD");
    assert_eq!(v1().venue_symbol(&i), "XBT/USD");
    let seq = k.sequencer(1000);
    assert_eq!(seq.source(), tickflow::book::SnapshotSource::InBand);
    assert_eq!(seq.max_depth(), Some(1000));
    assert_eq!(WsVersion::from_url("ws://127.0.0.1:18082"), WsVersion::V1);
}

// ---------------------------------------------------------------------------------------------
// The replay mock, end to end over a WebSocket
// ---------------------------------------------------------------------------------------------

#[derive(Default, Debug)]
struct Tally {
    synced: HashMap<String, usize>,
    applied: usize,
    broken: usize,
    dropped: usize,
    trades: usize,
    trade_times: Vec<i64>,
    tickers: usize,
}

fn step(t: &mut Tally, books: &mut HashMap<String, BookSync>, ev: VenueEvent) {
    match ev {
        VenueEvent::Snapshot { symbol, snapshot } => {
            let b = books
                .entry(symbol.clone())
                .or_insert_with(|| BookSync::new(kraken_seq(), 16));
            assert_eq!(b.on_snapshot(&snapshot).unwrap(), Step::Synced);
            *t.synced.entry(symbol).or_default() += 1;
        }
        VenueEvent::Diff { symbol, diff } => {
            match books.get_mut(&*symbol).unwrap().on_diff(diff).unwrap() {
                Step::Applied => t.applied += 1,
                Step::Dropped => t.dropped += 1,
                Step::Broken(b) => {
                    eprintln!("{symbol}: {b}");
                    t.broken += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        e @ VenueEvent::Encoded(_) => {
            t.trades += 1;
            if let Some(Normalized::Trade(tr)) = e.record() {
                t.trade_times.push(tr.timestamp);
            }
        }
        VenueEvent::Record(Normalized::Ticker(_)) => t.tickers += 1,
        VenueEvent::Control => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn replay_mock_serves_books_that_stay_in_sync_across_resubscribes_and_loops() {
    let server = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "kraken".into(),
        fixtures: DIR.into(),
        loops: 2,
        speed: 0.0,
        ..ReplayServerConfig::default()
    })
    .await
    .unwrap();
    let (snaps, _) = recorded_books();
    let mut book_syms: Vec<&str> = snaps.keys().map(String::as_str).collect();
    book_syms.sort_unstable();
    let mut subs = Vec::new();
    for s in &book_syms {
        subs.push((Channel::Depth, *s));
    }
    for s in ["XMR-USD", "SC-EUR"] {
        subs.push((Channel::Trade, s));
    }
    for s in ["WAVES-EUR", "XMR-USD", "KSM-BTC"] {
        subs.push((Channel::Ticker, s));
    }
    let spec = SessionSpec {
        subscriptions: subs
            .iter()
            .map(|(c, s)| Subscription {
                channel: *c,
                symbol: s.to_string(),
                venue_symbol: String::new(),
            })
            .collect(),
        symbols: SymbolMap::default(),
        book_depth: DEPTH,
        ws_url: String::new(),
    };
    let mut session = v1().session_for(WsVersion::V1, spec);
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap();
    for m in session.subscribe() {
        ws.send(Message::text(m)).await.unwrap();
    }
    ws.send(Message::text(r#"{"event":"ping"}"#)).await.unwrap();
    let mut tally = Tally::default();
    let mut books: HashMap<String, BookSync> = HashMap::new();
    let mut resubscribed = false;
    loop {
        let msg = match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(m)) => m.unwrap(),
        };
        let Message::Text(text) = msg else { continue };
        let mut out = Vec::new();
        session
            .on_frame(Frame::Text(text.as_str()), RECEIPT, &mut out)
            .unwrap();
        for ev in out {
            step(&mut tally, &mut books, ev);
        }
        // Midway through the first loop, XMR-USD's book is resubscribed: the mock sends the book
        // as played so far, and the updates that follow still match it.
        if !resubscribed && tally.applied >= 2000 {
            resubscribed = true;
            for m in session.resubscribe_book("XMR-USD") {
                ws.send(Message::text(m)).await.unwrap();
            }
        }
    }
    assert_eq!(session.unconfirmed(), 0);
    assert_eq!(tally.broken, 0, "{tally:?}");
    // Each loop: every update applied (a few of XMR-USD may arrive between the unsubscribe and
    // the new snapshot and be dropped, as against the venue).
    assert_eq!(tally.applied + tally.dropped, 2 * 4269, "{tally:?}");
    assert!(tally.dropped <= 5, "{tally:?}");
    // Snapshots: on subscribing, on each loop start, and on the resubscribe.
    for s in &book_syms {
        let expected = if *s == "XMR-USD" { 3 } else { 2 };
        assert_eq!(tally.synced[*s], expected, "{s}");
    }
    assert_eq!(tally.trades, 2 * 10);
    // The second loop's trades are the first's, later by the recording's span.
    let mock = tickflow::venues::kraken::replay::KrakenMock::load(DIR.as_ref()).unwrap();
    let frames = tickflow::replay::ReplayMock::frames(&mock);
    let span_us = (frames.last().unwrap().time_ms - frames[0].time_ms + 1) * 1000;
    let (first, second) = tally.trade_times.split_at(10);
    let shifted: Vec<i64> = first.iter().map(|t| t + span_us).collect();
    assert_eq!(second, &shifted[..]);
    assert_eq!(first[0], 1_618_678_142_557_535);
    let tickers = lines("kraken_ticker.jsonl")
        .iter()
        .filter(|l| {
            ["WAVES/EUR", "XMR/USD", "KSM/XBT"]
                .iter()
                .any(|p| l.contains(p))
        })
        .count();
    assert_eq!(tally.tickers, 2 * tickers);
    // The books end as the recording ends.
    let (snaps, diffs) = recorded_books();
    for s in &book_syms {
        let mut plain = plain_of(&snaps[*s]);
        for (sym, d, _) in &diffs {
            if sym == s {
                for (p, q) in d.asks.iter() {
                    plain.set(false, p, q);
                }
                for (p, q) in d.bids.iter() {
                    plain.set(true, p, q);
                }
                plain.truncate(DEPTH as usize);
            }
        }
        assert_eq!(synced_levels(&books[*s]), plain.levels(), "{s}");
    }
}

#[tokio::test]
async fn replay_mock_refuses_a_depth_it_did_not_record() {
    let server = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "kraken".into(),
        fixtures: DIR.into(),
        ..ReplayServerConfig::default()
    })
    .await
    .unwrap();
    let mut session = v1().session_for(WsVersion::V1, spec(&[Channel::Depth], &["XMR-USD"], true));
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap();
    for m in session.subscribe() {
        ws.send(Message::text(m)).await.unwrap();
    }
    let Some(Ok(Message::Text(text))) = ws.next().await else {
        panic!()
    };
    let mut out = Vec::new();
    let err = session
        .on_frame(Frame::Text(text.as_str()), RECEIPT, &mut out)
        .unwrap_err();
    assert!(err.is_terminal(), "{err}");
}
