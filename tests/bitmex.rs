//! BitMEX (`bitmex`): golden tests per table with every expected value typed by hand from
//! BitMEX's documented semantics (trade `side` is the taker's; sizes are contracts, carried
//! as sent: 1 XBTUSD contract = 1 USD; `tradeBin1m.timestamp` is the bin's end; times RFC 3339
//! → µs, computed with `date -u -d … +%s`), and book tests over the whole recorded session
//! (10 books: partial, then 445 inserts, 1090 updates without prices, 434 deletes), rebuilt
//! here independently from the raw rows and compared with the generic book driver's book.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod books;

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::value::RawValue;
use tickflow::book::{BookSync, Break, Step};
use tickflow::schema::v2beta1::{liquidation, trade};
use tickflow::schema::Normalized;
use tickflow::venues::bitmex::{Bitmex, BitmexSession, Control, ParseState};
use tickflow::venues::{
    Channel, Frame, ParseError, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent,
    VenueSession,
};

const FIX: &str = "tests/fixtures/bitmex";
const RECEIPT: i64 = 1_700_000_000_000_000;

/// The recorded session's ten symbols with their normalized names, typed by hand (XBT is
/// BTC; `U21` is September 2021, whose last Friday is the 24th; XRPU21/TRXU21 are quoted in
/// XBT).
const SESSION_SYMBOLS: [(&str, &str); 10] = [
    ("XRPU21", "XRP-BTC-20210924"),
    ("UNIUSDT", "UNI-USDT-PERP"),
    ("XBTUSD", "BTC-USD-PERP"),
    ("ADAUSDT", "ADA-USDT-PERP"),
    ("SOLUSDT", "SOL-USDT-PERP"),
    ("TRXU21", "TRX-BTC-20210924"),
    ("EOSUSDT", "EOS-USDT-PERP"),
    ("TRXUSDT", "TRX-USDT-PERP"),
    ("BCHUSD", "BCH-USD-PERP"),
    ("MATICUSDT", "MATIC-USDT-PERP"),
];

fn map() -> SymbolMap {
    let mut pairs: Vec<(String, String)> = SESSION_SYMBOLS
        .iter()
        .map(|(v, n)| (v.to_string(), n.to_string()))
        .collect();
    for (v, n) in [
        ("ETHUSD", "ETH-USD-PERP"),
        ("XBTM21", "BTC-USD-20210625"),
        ("XBTF23", "BTC-USD-20230127"),
        ("ETHH21", "ETH-BTC-20210326"),
        ("ETHUSDH21", "ETH-USD-20210326"),
        ("XBTUSDT", "BTC-USDT-PERP"),
        ("XBT_USDT", "BTC-USDT"),
        ("ETHM19", "ETH-BTC-20190628"),
        ("LTCM19", "LTC-BTC-20190628"),
        ("ETHH22", "ETH-BTC-20220325"),
        ("ETHUSDM22", "ETH-USD-20220624"),
    ] {
        pairs.push((v.into(), n.into()));
    }
    SymbolMap::new(pairs)
}

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{FIX}/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn parse(state: &mut ParseState, text: &str) -> Result<Vec<VenueEvent>, ParseError> {
    let mut out = Vec::new();
    Bitmex::new().parse(text, RECEIPT, &map(), state, &mut out)?;
    Ok(out)
}

fn records(events: &[VenueEvent]) -> Vec<Normalized> {
    events.iter().filter_map(VenueEvent::record).collect()
}

#[test]
fn trades_carry_the_taker_side_contracts_and_the_match_id() {
    let t = lines("bitmex_cmp_trade.jsonl");
    let mut st = ParseState::new();
    // Line 1: XBTUSD, side Sell = the taker sold; 900 contracts = 900 USD, inverse.
    let r = records(&parse(&mut st, &t[0]).unwrap());
    let Normalized::Trade(x) = &r[0] else {
        panic!()
    };
    assert_eq!(r.len(), 1);
    assert_eq!(x.exchange, "BITMEX");
    assert_eq!(x.symbol, "BTC-USD-PERP");
    assert_eq!(x.side, trade::Side::Sell as i32);
    assert_eq!(x.maker, Some(true), "the buyer was the maker");
    assert_eq!((x.price.as_str(), x.amount.as_str()), ("56927", "900"));
    assert_eq!(x.trade_id, "d1b82d61-d902-349c-936c-2588b8204aff");
    assert_eq!(x.raw_id, "d1b82d61-d902-349c-936c-2588b8204aff");
    // 2021-03-12T02:00:04 = 1615514404 s.
    assert_eq!(x.timestamp, 1_615_514_404_608_000);
    assert_eq!(x.receipt_time, RECEIPT);
    // Line 2 is a `partial`: the trades before subscribing, not new prints.
    assert!(records(&parse(&mut st, &t[1]).unwrap()).is_empty());
    // Line 4: a settlement print has no side: unspecified, typed `Settlement`.
    let r = records(&parse(&mut st, &t[3]).unwrap());
    let Normalized::Trade(x) = &r[0] else {
        panic!()
    };
    assert_eq!(x.symbol, "BTC-USD-20230127");
    assert_eq!(x.side, trade::Side::Unspecified as i32);
    assert_eq!(x.maker, None);
    assert_eq!(x.trade_type.as_deref(), Some("Settlement"));
    assert_eq!((x.price.as_str(), x.amount.as_str()), ("22957.36", "1500"));
    assert_eq!(x.timestamp, 1_674_820_800_000_000);
    // Line 5: ETHH21 (ETH/XBT future), the taker bought 1 contract at 0.03191 XBT.
    let r = records(&parse(&mut st, &t[4]).unwrap());
    let Normalized::Trade(x) = &r[0] else {
        panic!()
    };
    assert_eq!(x.symbol, "ETH-BTC-20210326");
    assert_eq!(x.side, trade::Side::Buy as i32);
    assert_eq!(x.maker, Some(false));
    assert_eq!((x.price.as_str(), x.amount.as_str()), ("0.03191", "1"));
    assert_eq!(x.timestamp, 1_615_513_563_886_000);
    // The tardis capture: XBTUSD Sell 1000 @ 8544.5.
    let r = records(&parse(&mut st, &lines("bitmex_tardis_trade.jsonl")[0]).unwrap());
    let Normalized::Trade(x) = &r[0] else {
        panic!()
    };
    assert_eq!((x.price.as_str(), x.amount.as_str()), ("8544.5", "1000"));
    assert_eq!(x.trade_id, "f73b6f28-075a-3548-a81c-8c843afd2746");
}

#[test]
fn quotes_are_top_of_book_in_contracts() {
    let mut st = ParseState::new();
    let r = records(&parse(&mut st, &lines("bitmex_cmp_bbo.jsonl")[0]).unwrap());
    assert_eq!(r.len(), 2);
    let Normalized::TopOfBook(a) = &r[0] else {
        panic!()
    };
    assert_eq!(a.symbol, "BTC-USD-PERP");
    assert_eq!(
        (
            a.bid_price.as_str(),
            a.bid_size.as_str(),
            a.ask_price.as_str(),
            a.ask_size.as_str()
        ),
        ("19917.5", "2100", "19918", "3600")
    );
    // 2022-07-01T00:00:07 = 1656633607 s.
    assert_eq!(a.timestamp, Some(1_656_633_607_138_000));
    let Normalized::TopOfBook(b) = &r[1] else {
        panic!()
    };
    assert_eq!(
        (b.ask_price.as_str(), b.ask_size.as_str()),
        ("19923", "33900")
    );
    assert_eq!(b.timestamp, Some(1_656_633_607_161_000));
    // Linear XBTUSDT: contracts too (160000 contracts as sent, not coins).
    let r = records(&parse(&mut st, &lines("bitmex_cmp_bbo.jsonl")[1]).unwrap());
    let Normalized::TopOfBook(c) = &r[0] else {
        panic!()
    };
    assert_eq!(c.symbol, "BTC-USDT-PERP");
    assert_eq!(
        (c.bid_size.as_str(), c.bid_price.as_str()),
        ("160000", "19921")
    );
}

#[test]
fn trade_bins_are_closed_one_minute_candles_ending_at_their_timestamp() {
    let c = lines("bitmex_cmp_candlestick.jsonl");
    let mut st = ParseState::new();
    // Line 2: XBTUSD bin stamped 00:07:00 covers 00:06:00–00:07:00.
    let r = records(&parse(&mut st, &c[1]).unwrap());
    let Normalized::Candle(k) = &r[0] else {
        panic!()
    };
    assert_eq!(k.symbol, "BTC-USD-PERP");
    assert_eq!(
        (k.start, k.stop),
        (1_675_209_960_000_000, 1_675_210_020_000_000)
    );
    assert_eq!(k.interval, "1m");
    assert!(k.closed);
    assert_eq!(
        (
            k.open.as_str(),
            k.high.as_str(),
            k.low.as_str(),
            k.close.as_str()
        ),
        ("23077.5", "23096.5", "23076.5", "23085")
    );
    assert_eq!((k.trades, k.volume.as_str()), (Some(93), "342600"));
    // Line 1: spot XBT_USDT.
    let r = records(&parse(&mut st, &c[0]).unwrap());
    let Normalized::Candle(k) = &r[0] else {
        panic!()
    };
    assert_eq!(k.symbol, "BTC-USDT");
    assert_eq!(
        (k.start, k.stop),
        (1_677_629_100_000_000, 1_677_629_160_000_000)
    );
    assert_eq!(k.volume, "170000");
    // tradeBin5m is not a channel here.
    assert!(matches!(
        parse(&mut st, &c[2]),
        Err(ParseError::Unsupported(_))
    ));
    // A bin without trades (null prices, documented shape): no candle.
    let docs = lines("docs_examples.jsonl");
    assert!(records(&parse(&mut st, &docs[10]).unwrap()).is_empty());
}

#[test]
fn instrument_rows_give_funding_and_open_interest() {
    let mut st = ParseState::new();
    // Recorded partial (futures, no funding): open interest only, in contracts.
    let r = records(&parse(&mut st, &lines("bitmex_instrument_partial.jsonl")[0]).unwrap());
    assert_eq!(r.len(), 2);
    let Normalized::OpenInterest(o) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(o.symbol, "ETH-BTC-20190628");
    assert_eq!(o.open_interest, "150499");
    // 2019-05-31T23:59:30 = 1559347170 s.
    assert_eq!(o.timestamp, Some(1_559_347_170_000_000));
    let Normalized::OpenInterest(o) = &r[1] else {
        panic!()
    };
    assert_eq!(
        (o.symbol.as_str(), o.open_interest.as_str()),
        ("LTC-BTC-20190628", "204654")
    );
    // Updates: a tick direction alone says nothing; open interest alone, without time.
    let u = lines("bitmex_instrument_update.jsonl");
    assert!(records(&parse(&mut st, &u[0]).unwrap()).is_empty());
    let r = records(&parse(&mut st, &u[2]).unwrap());
    let Normalized::OpenInterest(o) = &r[0] else {
        panic!()
    };
    assert_eq!(
        (o.symbol.as_str(), o.open_interest.as_str(), o.timestamp),
        ("ETH-USD-PERP", "58922153", None)
    );

    // Documented shape of a perpetual (constructed example, see SOURCES.md).
    let d = lines("docs_examples.jsonl");
    let r = records(&parse(&mut st, &d[2]).unwrap());
    assert_eq!(r.len(), 2);
    let Normalized::Funding(f) = &r[0] else {
        panic!()
    };
    assert_eq!(f.symbol, "BTC-USD-PERP");
    assert_eq!(
        (f.mark_price.as_str(), f.rate.as_str()),
        ("43250.61", "0.0001")
    );
    assert_eq!(f.index_price.as_deref(), Some("43251.2"));
    assert_eq!(f.predicted_rate.as_deref(), Some("0.000087"));
    // 2024-01-05T12:00:00 = 1704456000 s; 04:00:00 = 1704427200 s.
    assert_eq!(f.next_funding_time, Some(1_704_456_000_000_000));
    assert_eq!(f.timestamp, Some(1_704_427_200_000_000));
    let Normalized::OpenInterest(o) = &r[1] else {
        panic!()
    };
    assert_eq!(o.open_interest, "617834100");
    // An update of the mark: the rate is kept from the partial.
    let r = records(&parse(&mut st, &d[3]).unwrap());
    let Normalized::Funding(f) = &r[0] else {
        panic!()
    };
    assert_eq!(
        (f.mark_price.as_str(), f.rate.as_str()),
        ("43249.9", "0.0001")
    );
    assert_eq!(f.index_price.as_deref(), Some("43250.51"));
    assert_eq!(f.timestamp, Some(1_704_427_205_000_000));
    // JSON exponent -1e-7 is the exact decimal -0.0000001.
    let r = records(&parse(&mut st, &d[4]).unwrap());
    let Normalized::Funding(f) = &r[0] else {
        panic!()
    };
    assert_eq!(f.predicted_rate.as_deref(), Some("-0.0000001"));
}

#[test]
fn liquidations_are_announced_updated_and_closed() {
    let mut st = ParseState::new();
    let r = records(&parse(&mut st, &lines("bitmex_liquidation_insert.jsonl")[0]).unwrap());
    let Normalized::Liquidation(l) = &r[0] else {
        panic!()
    };
    assert_eq!(l.symbol, "BTC-USD-PERP");
    assert_eq!(l.side, liquidation::Side::Buy as i32);
    assert_eq!((l.price.as_str(), l.quantity.as_str()), ("10106", "9214"));
    assert_eq!(l.id, "dd9cea25-207c-0dab-15b5-b88da776f500");
    assert_eq!(l.status, "new");
    // Documented update shape: only leavesQty; side and price are the order's.
    let r = records(&parse(&mut st, &lines("docs_examples.jsonl")[9]).unwrap());
    let Normalized::Liquidation(l) = &r[0] else {
        panic!()
    };
    assert_eq!(
        (l.price.as_str(), l.quantity.as_str(), l.status.as_str()),
        ("10106", "5000", "update")
    );
    assert_eq!(l.side, liquidation::Side::Buy as i32);
    // The recorded delete: the order is gone.
    let r = records(&parse(&mut st, &lines("bitmex_liquidation_delete.jsonl")[0]).unwrap());
    let Normalized::Liquidation(l) = &r[0] else {
        panic!()
    };
    assert_eq!((l.status.as_str(), l.quantity.as_str()), ("closed", "5000"));
}

#[test]
fn control_messages_and_refusals() {
    let d = lines("docs_examples.jsonl");
    let mut st = ParseState::new();
    let mut out = Vec::new();
    let b = Bitmex::new();
    assert_eq!(
        b.parse(&d[0], 0, &map(), &mut st, &mut out).unwrap(),
        Control::Welcome
    );
    assert_eq!(
        b.parse(&d[1], 0, &map(), &mut st, &mut out).unwrap(),
        Control::Subscribed("orderBookL2:XBTUSD".into())
    );
    assert_eq!(
        b.parse("pong", 0, &map(), &mut st, &mut out).unwrap(),
        Control::Pong
    );
    // One symbol refused: that symbol only.
    match b.parse(&d[11], 0, &map(), &mut st, &mut out) {
        Err(ParseError::Refused { symbol, msg }) => {
            assert_eq!(symbol, "XBTZ19");
            assert_eq!(msg, "Unknown or expired symbol.");
        }
        other => panic!("{other:?}"),
    }
    // Rate limited: the connection is wrong (terminal).
    let e = b.parse(&d[12], 0, &map(), &mut st, &mut out).unwrap_err();
    assert!(e.is_terminal(), "{e:?}");
    assert!(out.is_empty());
}

#[test]
fn hostile_input_is_a_typed_error() {
    let mut st = ParseState::new();
    let cases = [
        "",
        "{",
        "[1,2]",
        r#"{"table":"trade","action":"insert","data":[{"timestamp":"2021-03-12T02:00:04.608Z","symbol":"XBTUSD","side":"Buy","size":1e400,"price":1}]}"#,
        r#"{"table":"trade","action":"insert","data":[{"timestamp":"2021-03-12T02:00:04.608Z","symbol":"XBTUSD","side":"Buy","size":-5,"price":1}]}"#,
        r#"{"table":"trade","action":"insert","data":[{"timestamp":"yesterday","symbol":"XBTUSD","side":"Buy","size":5,"price":1}]}"#,
        r#"{"table":"trade","action":"insert","data":[{"timestamp":"2021-03-12T02:00:04.608Z","symbol":"NOPE","side":"Buy","size":5,"price":1}]}"#,
        r#"{"table":"quote","action":"insert","data":[{"timestamp":"2021-03-12T02:00:04.608Z","symbol":"XBTUSD","bidPrice":"NaN"}]}"#,
        r#"{"table":"orderBookL2","action":"partial","data":[{"symbol":"XBTUSD","id":-1,"side":"Buy","size":1,"price":1}]}"#,
        r#"{"table":"orderBookL2","action":"partial","data":[{"symbol":"XBTUSD","id":1,"side":"Up","size":1,"price":1}]}"#,
        r#"{"table":"orderBookL2","action":"partial","data":[{"symbol":"XBTUSD","id":1,"side":"Buy","size":1}]}"#,
        r#"{"table":"orderBookL2","action":"upsert","data":[]}"#,
        r#"{"table":"nope","action":"insert","data":[]}"#,
        r#"{"hello":1}"#,
    ];
    for c in cases {
        assert!(parse(&mut st, c).is_err(), "{c}");
    }
}

/// One raw `orderBookL2` row, read here without the venue's code.
#[derive(Deserialize)]
struct RawRow<'a> {
    symbol: &'a str,
    id: u64,
    side: &'a str,
    #[serde(borrow, default)]
    size: Option<&'a RawValue>,
    #[serde(borrow, default)]
    price: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawMsg<'a> {
    table: &'a str,
    action: &'a str,
    #[serde(borrow)]
    data: Vec<RawRow<'a>>,
}

/// Rows by (id, side) → (price, size), per symbol.
type Rows = HashMap<String, BTreeMap<(u64, String), (String, String)>>;

/// The documented row semantics, applied independently: partial replaces the symbol's rows,
/// insert adds, update sets the size (and the price when given), delete removes; rows before
/// a symbol's partial are ignored.
fn reconstruct(frames: &[String]) -> Rows {
    let mut rows: Rows = HashMap::new();
    for f in frames {
        let Ok(m) = serde_json::from_str::<RawMsg<'_>>(f) else {
            continue;
        };
        if m.table != "orderBookL2" {
            continue;
        }
        if m.action == "partial" {
            for r in &m.data {
                rows.insert(r.symbol.to_string(), BTreeMap::new());
            }
        }
        for r in &m.data {
            let Some(book) = rows.get_mut(r.symbol) else {
                continue;
            };
            let k = (r.id, r.side.to_string());
            let text = |v: Option<&RawValue>| v.map(|v| v.get().to_string());
            match m.action {
                "partial" | "insert" => {
                    book.insert(k, (text(r.price).unwrap(), text(r.size).unwrap()));
                }
                "update" => {
                    let row = book.get_mut(&k).expect("update of a held row");
                    if let Some(p) = text(r.price) {
                        row.0 = p;
                    }
                    row.1 = text(r.size).unwrap();
                }
                "delete" => {
                    book.remove(&k).expect("delete of a held row");
                }
                _ => panic!("{}", m.action),
            }
        }
    }
    rows
}

/// (bids, asks) by exact price from rows.
fn sides(rows: &BTreeMap<(u64, String), (String, String)>) -> (books::Side, books::Side) {
    let (mut bids, mut asks) = (books::Side::new(), books::Side::new());
    for ((_, side), (p, q)) in rows {
        match side.as_str() {
            "Buy" => books::set(&mut bids, p, q),
            "Sell" => books::set(&mut asks, p, q),
            s => panic!("{s}"),
        }
    }
    (bids, asks)
}

/// A side as exact price → exact quantity (BitMEX writes some prices with an exponent,
/// `1e-8`; the books hold the same value written plainly).
fn exact(side: &books::Side) -> BTreeMap<rust_decimal::Decimal, rust_decimal::Decimal> {
    side.iter()
        .map(|(k, (_, q))| (*k, q.parse().unwrap()))
        .collect()
}

fn book_sides(b: &BookSync) -> (books::Side, books::Side) {
    let (bids, asks) = b.book().levels(None);
    let (mut sb, mut sa) = (books::Side::new(), books::Side::new());
    for l in bids {
        books::set(&mut sb, &l.price, &l.quantity);
    }
    for l in asks {
        books::set(&mut sa, &l.price, &l.quantity);
    }
    (sb, sa)
}

/// Feeds events to per-symbol books; returns (snapshots, diffs applied, resyncs).
fn drive(
    books: &mut HashMap<String, BookSync>,
    events: Vec<VenueEvent>,
    counts: &mut (usize, usize, Vec<String>),
) {
    for ev in events {
        match ev {
            VenueEvent::Snapshot { symbol, snapshot } => {
                let b = books
                    .entry(symbol.clone())
                    .or_insert_with(|| BookSync::new(Bitmex::new().sequencer(0), 16));
                assert_eq!(b.on_snapshot(&snapshot).unwrap(), Step::Synced, "{symbol}");
                counts.0 += 1;
            }
            VenueEvent::Diff { symbol, diff } => {
                let b = books.get_mut(&*symbol).expect("a diff after its partial");
                let step = b.on_diff(diff).unwrap();
                assert_eq!(step, Step::Applied, "{symbol}");
                counts.1 += 1;
            }
            VenueEvent::Resync { symbol, .. } => counts.2.push(symbol.unwrap_or_default()),
            _ => {}
        }
    }
}

fn session_spec(channels: &[Channel]) -> SessionSpec {
    let mut subs = Vec::new();
    for (v, n) in SESSION_SYMBOLS {
        for c in channels {
            subs.push(Subscription {
                channel: *c,
                symbol: n.into(),
                venue_symbol: v.into(),
            });
        }
    }
    SessionSpec {
        subscriptions: subs,
        symbols: map(),
        book_depth: 0,
        ws_url: String::new(),
    }
}

#[test]
fn every_recorded_book_replays_without_a_gap_and_equals_an_independent_reconstruction() {
    let frames = lines("bitmex_session.jsonl");
    let mut session = BitmexSession::new(session_spec(&[
        Channel::Depth,
        Channel::Trade,
        Channel::BookTicker,
    ]));
    let subs = session.subscribe();
    assert_eq!(subs.len(), 2, "30 topics, 20 per message");
    let mut books = HashMap::new();
    let mut counts = (0, 0, Vec::new());
    let mut rows_in = (0usize, 0usize, 0usize);
    for f in &frames {
        let mut out = Vec::new();
        session.on_frame(Frame::Text(f), RECEIPT, &mut out).unwrap();
        if f.contains("\"table\":\"orderBookL2\"") {
            let m: RawMsg<'_> = serde_json::from_str(f).unwrap();
            match m.action {
                "insert" => rows_in.0 += m.data.len(),
                "update" => rows_in.1 += m.data.len(),
                "delete" => rows_in.2 += m.data.len(),
                _ => {}
            }
        }
        drive(&mut books, out, &mut counts);
    }
    assert_eq!(counts.0, 10, "one partial per book");
    assert!(counts.2.is_empty(), "no resync: {:?}", counts.2);
    assert_eq!(
        counts.1,
        445 + 1090 + 434,
        "every insert/update/delete frame applied"
    );
    assert!(rows_in.1 > 0);
    let expected = reconstruct(&frames);
    for (venue, normalized) in SESSION_SYMBOLS {
        let b = &books[normalized];
        assert!(b.is_synced(), "{normalized}");
        let (eb, ea) = sides(&expected[venue]);
        let (gb, ga) = book_sides(b);
        assert!(!eb.is_empty() && !ea.is_empty(), "{venue}");
        assert_eq!(exact(&gb), exact(&eb), "{normalized} bids");
        assert_eq!(exact(&ga), exact(&ea), "{normalized} asks");
        // The session holds one row per level.
        assert_eq!(
            session.state().book(venue).unwrap().len(),
            expected[venue].len(),
            "{venue}"
        );
    }
}

#[test]
fn the_2023_api_with_prices_on_every_row_and_arbitrary_ids() {
    // Documented shape (constructed example): ids unrelated to prices, price on every row.
    let d = lines("docs_examples.jsonl");
    let mut st = ParseState::new();
    let mut books = HashMap::new();
    let mut counts = (0, 0, Vec::new());
    for l in &d[5..9] {
        drive(&mut books, parse(&mut st, l).unwrap(), &mut counts);
    }
    assert_eq!((counts.0, counts.1), (1, 3));
    let (bids, asks) = book_sides(&books["BTC-USD-PERP"]);
    // Asks: 43251 × 100 (43250.5 deleted). Bids: 43250.5 × 1200, 43250 × 3500, 43249.5 × 200.
    let t = |s: &books::Side| -> Vec<(String, String)> { s.values().cloned().collect() };
    assert_eq!(t(&asks), vec![("43251".into(), "100".into())]);
    assert_eq!(
        t(&bids),
        vec![
            ("43249.5".into(), "200".into()),
            ("43250".into(), "3500".into()),
            ("43250.5".into(), "1200".into()),
        ]
    );
    // The delete's diff is the level at quantity 0; the update's time is the row's.
    let ev = parse(&mut st, r#"{"table":"orderBookL2","action":"delete","data":[{"symbol":"XBTUSD","id":8819777,"side":"Buy","price":43249.5,"timestamp":"2024-01-05T04:00:00.400Z"}]}"#).unwrap();
    let VenueEvent::Diff { diff, .. } = &ev[0] else {
        panic!()
    };
    assert_eq!(diff.bids.iter().collect::<Vec<_>>(), vec![("43249.5", "0")]);
    assert_eq!(diff.event_time, Some(1_704_427_200_400_000));
}

#[test]
fn the_orderbook_l2_25_vectors_and_rows_before_a_partial() {
    let v = lines("bitmex_cmp_order_book_l2_25.jsonl");
    let mut st = ParseState::new();
    // Line 6: a delete of ETHZ21 with no partial before it: dropped, not a resync.
    assert!(parse(&mut st, &v[5]).unwrap().is_empty());
    let snap = parse(&mut st, &v[0]).unwrap();
    let VenueEvent::Snapshot { symbol, snapshot } = &snap[0] else {
        panic!()
    };
    assert_eq!(symbol, "BTC-USD-PERP");
    assert_eq!(
        snapshot.asks[1],
        ("36189.5".to_string(), "125714".to_string())
    );
    assert_eq!(snapshot.bids[2], ("36142".to_string(), "18067".to_string()));
    // Insert at 36760.5, update (no price: from the id) to 36760, delete at 0.
    let want = [("36760.5", "38760"), ("36760.5", "36760"), ("36760.5", "0")];
    for (line, w) in v[1..4].iter().zip(want) {
        let ev = parse(&mut st, line).unwrap();
        let VenueEvent::Diff { diff, .. } = &ev[0] else {
            panic!()
        };
        assert!(diff.bids.is_empty());
        assert_eq!(diff.asks.iter().collect::<Vec<_>>(), vec![w]);
    }
}

#[test]
fn an_unknown_id_is_detected_resynced_and_the_book_comes_back() {
    let frames = lines("bitmex_session.jsonl");
    let mut session = BitmexSession::new(session_spec(&[Channel::Depth]));
    session.subscribe();
    for t in session.topics().to_vec() {
        let ack = format!(r#"{{"success":true,"subscribe":"{t}"}}"#);
        session
            .on_frame(Frame::Text(&ack), RECEIPT, &mut Vec::new())
            .unwrap();
    }
    assert_eq!(session.unconfirmed(), 0);
    let mut books = HashMap::new();
    let mut counts = (0, 0, Vec::new());
    // Play the first half, then a row BitMEX never inserted.
    let half = frames.len() / 2;
    for f in &frames[..half] {
        let mut out = Vec::new();
        session.on_frame(Frame::Text(f), RECEIPT, &mut out).unwrap();
        drive(&mut books, out, &mut counts);
    }
    let mut out = Vec::new();
    session
        .on_frame(
            Frame::Text(r#"{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":1,"side":"Buy","size":7}]}"#),
            RECEIPT,
            &mut out,
        )
        .unwrap();
    let [VenueEvent::Resync { symbol, reason }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(symbol.as_deref(), Some("BTC-USD-PERP"));
    assert!(reason.contains("unknown row id 1"), "{reason}");
    // The feed resubscribes the book: unsubscribe + subscribe of its topic.
    let msgs = session.resubscribe_book("BTC-USD-PERP");
    assert_eq!(
        msgs,
        vec![
            r#"{"args":["orderBookL2:XBTUSD"],"op":"unsubscribe"}"#.to_string(),
            r#"{"args":["orderBookL2:XBTUSD"],"op":"subscribe"}"#.to_string(),
        ]
    );
    assert_eq!(session.unconfirmed(), 1);
    books.get_mut("BTC-USD-PERP").unwrap().reset();
    // Until the new partial, XBTUSD rows are dropped (the other books carry on).
    let next = half + 40;
    for f in &frames[half..next] {
        let mut out = Vec::new();
        session.on_frame(Frame::Text(f), RECEIPT, &mut out).unwrap();
        assert!(out
            .iter()
            .all(|e| !matches!(e, VenueEvent::Diff { symbol, .. } if &**symbol == "BTC-USD-PERP")));
        drive(&mut books, out, &mut counts);
    }
    // The fresh partial: the book as the independent reconstruction has it at this point.
    let expected = reconstruct(&frames[..next]);
    let rows: Vec<String> = expected["XBTUSD"]
        .iter()
        .map(|((id, side), (p, q))| {
            format!(r#"{{"symbol":"XBTUSD","id":{id},"side":"{side}","size":{q},"price":{p}}}"#)
        })
        .collect();
    let partial = format!(
        r#"{{"table":"orderBookL2","action":"partial","filter":{{"symbol":"XBTUSD"}},"data":[{}]}}"#,
        rows.join(",")
    );
    let mut out = Vec::new();
    session
        .on_frame(
            Frame::Text(r#"{"success":true,"subscribe":"orderBookL2:XBTUSD"}"#),
            RECEIPT,
            &mut out,
        )
        .unwrap();
    session
        .on_frame(Frame::Text(&partial), RECEIPT, &mut out)
        .unwrap();
    assert_eq!(session.unconfirmed(), 0);
    drive(&mut books, out, &mut counts);
    for f in &frames[next..] {
        let mut out = Vec::new();
        session.on_frame(Frame::Text(f), RECEIPT, &mut out).unwrap();
        drive(&mut books, out, &mut counts);
    }
    assert!(counts.2.is_empty());
    let expected = reconstruct(&frames);
    let (eb, ea) = sides(&expected["XBTUSD"]);
    let (gb, ga) = book_sides(&books["BTC-USD-PERP"]);
    assert_eq!(exact(&gb), exact(&eb), "bids right again");
    assert_eq!(exact(&ga), exact(&ea), "asks right again");
}

#[test]
fn a_corrupted_level_crosses_the_book_and_is_detected() {
    let frames = lines("bitmex_session.jsonl");
    let mut st = ParseState::new();
    let mut books = HashMap::new();
    let mut counts = (0, 0, Vec::new());
    for f in &frames[..200] {
        drive(&mut books, parse(&mut st, f).unwrap(), &mut counts);
    }
    // A bid inserted far above every ask (no checksum: the crossed check catches it).
    let ev = parse(
        &mut st,
        r#"{"table":"orderBookL2","action":"insert","data":[{"symbol":"XBTUSD","id":2,"side":"Buy","size":1,"price":1000000}]}"#,
    )
    .unwrap();
    let VenueEvent::Diff { symbol, diff } = ev.into_iter().next().unwrap() else {
        panic!()
    };
    match books.get_mut(&*symbol).unwrap().on_diff(diff).unwrap() {
        Step::Broken(Break::Crossed { bid, .. }) => assert_eq!(bid, "1000000"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_session_subscribes_pings_when_idle_and_shares_the_instrument_topic() {
    let mut spec = session_spec(&[Channel::Funding, Channel::OpenInterest, Channel::Candle]);
    spec.subscriptions.truncate(3);
    let mut s = BitmexSession::new(spec);
    assert_eq!(s.path(), "/realtime");
    assert_eq!(
        s.subscribe(),
        vec![r#"{"args":["instrument:XRPU21","tradeBin1m:XRPU21"],"op":"subscribe"}"#.to_string()]
    );
    assert_eq!(s.unconfirmed(), 2);
    // Idle from the start: ping.
    assert_eq!(s.heartbeat().as_deref(), Some("ping"));
    let mut out = Vec::new();
    s.on_frame(
        Frame::Text(r#"{"success":true,"subscribe":"instrument:XRPU21"}"#),
        0,
        &mut out,
    )
    .unwrap();
    // A frame just arrived: no ping.
    assert_eq!(s.heartbeat(), None);
    assert_eq!(s.unconfirmed(), 1);
    s.on_frame(Frame::Text("pong"), 0, &mut out).unwrap();
    assert!(out.iter().all(|e| matches!(e, VenueEvent::Control)));
    assert!(s.on_frame(Frame::Binary(b"x"), 0, &mut out).is_err());
}

#[test]
fn limits_and_the_rest_audit_hook_follow_bitmex_published_figures() {
    let v = Bitmex::new();
    let l = v.limits();
    // https://blog.bitmex.com/api_announcement/updates-to-rate-limits/ (checked 2026-12-07):
    // 60 WebSocket connections per hour; unauthenticated REST 30 requests per minute.
    assert_eq!(l.connections_per_hour, Some(60));
    assert_eq!(l.connections_per_second, None);
    assert_eq!(l.rest_weight_per_minute, 30);
    // Every book audited every 5 minutes by default; ten books = 2 requests a minute.
    assert_eq!(
        v.book_audit_every(),
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(
        v.book_audit_path("XBTUSD").as_deref(),
        Some("/api/v1/orderBook/L2?symbol=XBTUSD&depth=0")
    );
    // The REST explorer's row shape; 1e-8 is written as BitMEX sends it for tiny prices.
    let body = r#"[{"symbol":"XBTUSD","id":8799999950,"side":"Buy","size":2900,"price":0.5},
                   {"symbol":"XBTUSD","id":8796323950,"side":"Sell","size":38760,"price":36760.5},
                   {"symbol":"XBTUSD","id":1,"side":"Buy","size":3,"price":1e-8}]"#;
    let s = v.parse_book_audit(body).unwrap();
    assert_eq!(
        s.bids,
        vec![
            ("0.5".to_string(), "2900".to_string()),
            ("0.00000001".to_string(), "3".to_string())
        ]
    );
    assert_eq!(s.asks, vec![("36760.5".to_string(), "38760".to_string())]);
    // Not BitMEX's answer: a typed error, never a panic.
    assert!(v
        .parse_book_audit(r#"{"error":{"message":"Rate limit exceeded"}}"#)
        .is_err());
    assert!(v
        .parse_book_audit(r#"[{"side":"Up","size":1,"price":1}]"#)
        .is_err());
}
