//! Deribit: golden tests per channel on recorded messages (values typed by hand from Deribit's
//! documented semantics: `direction` is the taker's side, amounts are USD for inverse futures
//! and perpetuals and coins for options, digits kept exactly, times ms → µs), symbol mapping,
//! book sequences (every recorded snapshot and change chain, rebuilt independently here), an
//! injected break (detected, resubscribed, resynced), the JSON-RPC session (heartbeat,
//! `test_request`, ids matched to answers, refusals) and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use tickflow::book::{BookSync, Side, Snapshot, Step};
use tickflow::schema::v2beta1::trade;
use tickflow::schema::Normalized;
use tickflow::venues::deribit::{symbols, Control, Deribit, DeribitBook};
use tickflow::venues::{
    Channel, Frame, Instrument, ParseError, SessionSpec, Subscription, SymbolMap, Venue,
    VenueEvent, VenueSession,
};

const DIR: &str = "tests/fixtures/deribit";

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{DIR}/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn line(file: &str, n: usize) -> String {
    lines(file)[n - 1].clone()
}

/// A map of the given Deribit instruments to their normalized symbols (typed here).
fn map(pairs: &[(&str, &str)]) -> SymbolMap {
    SymbolMap::new(pairs.iter().map(|(v, n)| (v.to_string(), n.to_string())))
}

fn parse(text: &str, m: &SymbolMap) -> (Control, Vec<VenueEvent>) {
    let mut out = Vec::new();
    let c = Deribit::new().parse(text, 7, m, &mut out).unwrap();
    (c, out)
}

fn records(out: &[VenueEvent]) -> Vec<Normalized> {
    out.iter().filter_map(VenueEvent::record).collect()
}

#[test]
fn instrument_names_map_both_ways() {
    for (venue, norm) in [
        ("BTC-PERPETUAL", "BTC-USD-PERP"),
        ("BTC-31DEC21", "BTC-USD-20211231"),
        ("BTC-31DEC21-50000-C", "BTC-USD-20211231-50000-C"),
        ("BTC-8JUN20-8750-P", "BTC-USD-20200608-8750-P"),
        ("ETH-30JUL21-2800-C", "ETH-USD-20210730-2800-C"),
        ("BTC_USDC-PERPETUAL", "BTC-USDC-PERP"),
        ("PAXG_USDC-30MAY25", "PAXG-USDC-20250530"),
        ("MATIC_USDC-9MAR24-1d02-C", "MATIC-USDC-20240309-1.02-C"),
    ] {
        assert_eq!(symbols::normalized(venue).as_deref(), Some(norm), "{venue}");
        let i = Instrument::parse(norm).unwrap();
        assert_eq!(Deribit::new().venue_symbol(&i), venue, "{norm}");
    }
    // Combos and malformed names have no normalized form.
    for combo in [
        "BTC-FS-30SEP22_PERP",
        "BTC-CS-19MAY26-70000_75000",
        "BTC-STRD-30SEP22-20000",
        "BTC-CSR12-16SEP22-21000_23000",
        "BTC-31DEX21",
        "btc-PERPETUAL",
        "BTC-31DEC21-50000-X",
        "BTC-31DEC21-d5-C",
        "",
    ] {
        assert_eq!(symbols::normalized(combo), None, "{combo}");
    }
}

#[test]
fn trades_are_taker_sided_in_venue_units() {
    let m = map(&[
        ("BTC-PERPETUAL", "BTC-USD-PERP"),
        ("BTC-26MAR21-62000-C", "BTC-USD-20210326-62000-C"),
    ]);
    // Line 1 (BTC-PERPETUAL, 2025-12-12): two taker sells; amounts are USD (10 USD contracts:
    // `contracts` 1.0 and 75.0), kept as written ("10.0", "750.0").
    let (c, out) = parse(&line("deribit_trades.jsonl", 1), &m);
    assert_eq!(c, Control::Data);
    let got: Vec<_> = records(&out)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => t,
            other => panic!("{other:?}"),
        })
        .collect();
    let want = [
        ("403691824", "92294.5", "10.0"),
        ("403691825", "92288.5", "750.0"),
    ];
    assert_eq!(got.len(), want.len());
    for (t, (id, price, amount)) in got.iter().zip(want) {
        assert_eq!(
            (
                t.exchange.as_str(),
                t.symbol.as_str(),
                t.trade_id.as_str(),
                t.raw_id.as_str(),
                t.price.as_str(),
                t.amount.as_str(),
                t.side,
                t.maker,
                t.timestamp,
                t.receipt_time,
                t.trade_type.as_deref(),
            ),
            (
                "DERIBIT",
                "BTC-USD-PERP",
                id,
                id,
                price,
                amount,
                trade::Side::Sell as i32,
                Some(true), // a taker sell: the buyer was the maker
                1_765_531_356_452_000,
                7,
                None,
            )
        );
    }
    // Liquidations (tardis-node vectors): the integer literal "1120" is kept as written.
    let (_, out) = parse(&line("deribit_trades.jsonl", 4), &m);
    let Normalized::Trade(t) = &records(&out)[0] else {
        panic!()
    };
    assert_eq!(
        (
            t.trade_id.as_str(),
            t.price.as_str(),
            t.amount.as_str(),
            t.side,
            t.timestamp,
            t.trade_type.as_deref()
        ),
        (
            "66460463",
            "4469.5",
            "1120",
            trade::Side::Sell as i32,
            1_584_058_044_032_000,
            Some("liquidation")
        )
    );
    let (_, out) = parse(&line("deribit_trades.jsonl", 5), &m);
    let Normalized::Trade(t) = &records(&out)[0] else {
        panic!()
    };
    assert_eq!(
        (t.amount.as_str(), t.side, t.maker),
        ("2500", trade::Side::Buy as i32, Some(false))
    );
    // An option: price in BTC per option, amount in coins (0.1 BTC of options).
    let (_, out) = parse(&line("deribit_cmp_trade.jsonl", 3), &m);
    let Normalized::Trade(t) = &records(&out)[0] else {
        panic!()
    };
    assert_eq!(
        (
            t.symbol.as_str(),
            t.trade_id.as_str(),
            t.price.as_str(),
            t.amount.as_str(),
            t.side,
            t.timestamp
        ),
        (
            "BTC-USD-20210326-62000-C",
            "137488100",
            "0.007",
            "0.1",
            trade::Side::Buy as i32,
            1_616_321_732_986_000
        )
    );
    // The combo trade of line 2 names an instrument no normalized symbol has.
    let mut out = Vec::new();
    let e = Deribit::new()
        .parse(&line("deribit_trades.jsonl", 2), 7, &m, &mut out)
        .unwrap_err();
    assert!(
        matches!(e, ParseError::UnknownSymbol(ref s) if s == "BTC-CS-19MAY26-70000_75000"),
        "{e:?}"
    );
}

#[test]
fn ticker_gives_ticker_funding_and_open_interest() {
    let m = map(&[
        ("BTC-PERPETUAL", "BTC-USD-PERP"),
        ("BTC-30SEP22-60000-C", "BTC-USD-20220930-60000-C"),
        ("ETH-5JUN20-310-P", "ETH-USD-20200605-310-P"),
    ]);
    let (_, out) = parse(&line("deribit_cmp_ticker.jsonl", 2), &m);
    let r = records(&out);
    assert_eq!(r.len(), 3, "{r:?}");
    let Normalized::Ticker(t) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(
        (
            t.exchange.as_str(),
            t.symbol.as_str(),
            t.bid.as_str(),
            t.ask.as_str(),
            t.last.as_str(),
            t.open.as_str(),
            t.high.as_str(),
            t.low.as_str(),
            t.volume.as_str(),
            t.quote_volume.as_str(),
            t.timestamp
        ),
        (
            "DERIBIT",
            "BTC-USD-PERP",
            "29930.5",
            "29931.0",
            "29931.0",
            // No open: Deribit sends the 24 h change as a percentage (-5.4014).
            "",
            "31903.5",
            "29265.5",
            // Volume in BTC; quote volume in USD (`volume_usd`).
            "17945.19644566",
            "545442610.0",
            Some(1_654_161_785_818_000)
        )
    );
    let Normalized::Funding(f) = &r[1] else {
        panic!("{r:?}")
    };
    assert_eq!(
        (
            f.symbol.as_str(),
            f.mark_price.as_str(),
            f.rate.as_str(),
            f.predicted_rate.as_deref(),
            f.index_price.as_deref(),
            f.timestamp,
            f.next_funding_time
        ),
        (
            "BTC-USD-PERP",
            "29932.79",
            "0.00000255",
            Some("0.0"),
            Some("29930.44"),
            Some(1_654_161_785_818_000),
            None
        )
    );
    let Normalized::OpenInterest(o) = &r[2] else {
        panic!("{r:?}")
    };
    // Inverse perpetual: open interest in USD, an integer literal.
    assert_eq!(
        (o.symbol.as_str(), o.open_interest.as_str(), o.timestamp),
        ("BTC-USD-PERP", "559791310", Some(1_654_161_785_818_000))
    );
    // A negative 8 h funding rate keeps its sign and digits (tardis-node vector).
    let (_, out) = parse(&line("deribit_ticker.jsonl", 91), &m);
    let Normalized::Funding(f) = &records(&out)[1] else {
        panic!()
    };
    assert_eq!(
        (f.rate.as_str(), f.mark_price.as_str()),
        ("-0.00008477", "8304.39")
    );

    // An option: no funding; open interest in coins (1767.5 options on 1 BTC each).
    let (_, out) = parse(&line("deribit_cmp_ticker.jsonl", 3), &m);
    let r = records(&out);
    assert_eq!(r.len(), 2, "{r:?}");
    let Normalized::Ticker(t) = &r[0] else {
        panic!()
    };
    assert_eq!(
        (
            t.bid.as_str(),
            t.ask.as_str(),
            t.last.as_str(),
            t.volume.as_str(),
            t.quote_volume.as_str()
        ),
        ("0.008", "0.009", "0.009", "16.7", "")
    );
    let Normalized::OpenInterest(o) = &r[1] else {
        panic!()
    };
    assert_eq!(o.open_interest, "1767.5");
    // Nulls (no trade yet, no statistics) are empty, not zero.
    let (_, out) = parse(&line("deribit_ticker.jsonl", 94), &m);
    let Normalized::Ticker(t) = &records(&out)[0] else {
        panic!()
    };
    assert_eq!(
        (
            t.last.as_str(),
            t.high.as_str(),
            t.low.as_str(),
            t.volume.as_str(),
            t.bid.as_str()
        ),
        ("", "", "", "", "0.0")
    );
}

#[test]
fn quote_is_top_of_book() {
    let m = map(&[
        ("BTC-PERPETUAL", "BTC-USD-PERP"),
        ("BTC-30SEP22", "BTC-USD-20220930"),
    ]);
    let (_, out) = parse(&line("deribit_quote.jsonl", 1), &m);
    let Normalized::TopOfBook(q) = &records(&out)[0] else {
        panic!()
    };
    assert_eq!(
        (
            q.exchange.as_str(),
            q.symbol.as_str(),
            q.bid_price.as_str(),
            q.bid_size.as_str(),
            q.ask_price.as_str(),
            q.ask_size.as_str(),
            q.timestamp
        ),
        (
            "DERIBIT",
            "BTC-USD-PERP",
            "9600.5",
            "162800.0",
            "9601.0",
            "49710.0",
            Some(1_567_296_000_183_000)
        )
    );
    let (_, out) = parse(&line("deribit_cmp_bbo.jsonl", 1), &m);
    let Normalized::TopOfBook(q) = &records(&out)[0] else {
        panic!()
    };
    assert_eq!(
        (
            q.symbol.as_str(),
            q.bid_price.as_str(),
            q.bid_size.as_str(),
            q.ask_price.as_str(),
            q.ask_size.as_str()
        ),
        ("BTC-USD-20220930", "32499.0", "2370.0", "32503.5", "2400.0")
    );
}

#[test]
fn book_snapshot_and_change_keep_ids_and_digits() {
    let m = map(&[("BTC-25JUN21", "BTC-USD-20210625")]);
    let (_, out) = parse(&line("deribit_cmp_l2_event.jsonl", 1), &m);
    let VenueEvent::Snapshot { symbol, snapshot } = &out[0] else {
        panic!("{out:?}")
    };
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(p, q)| (p.to_string(), q.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(symbol, "BTC-USD-20210625");
    assert_eq!(
        snapshot,
        &Snapshot {
            last_update_id: 31_479_219_781,
            bids: pairs(&[
                ("37317.0", "2960.0"),
                ("37311.5", "530.0"),
                ("37311.0", "45170.0")
            ]),
            asks: pairs(&[
                ("37327.0", "10.0"),
                ("37327.5", "20000.0"),
                ("37328.0", "3000.0")
            ]),
            checksum: None,
        }
    );
    let (_, out) = parse(&line("deribit_cmp_l2_event.jsonl", 2), &m);
    let VenueEvent::Diff { diff, .. } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (diff.first, diff.last, diff.prev),
        (31_479_339_507, 31_479_339_507, Some(31_479_339_296))
    );
    assert_eq!(diff.timestamp, Some(1_622_626_784_890_000));
    assert_eq!(
        diff.bids.iter().collect::<Vec<_>>(),
        vec![("37392.5", "3000.0"), ("37399.0", "6530.0")]
    );
    // `delete` is written as quantity 0.
    assert_eq!(
        diff.asks.iter().collect::<Vec<_>>(),
        vec![("37850.0", "8850.0"), ("37848.5", "0")]
    );
}

// ---- book sequences -------------------------------------------------------------------

/// The book as rebuilt here from the JSON (independently of the crate): exact price →
/// exact amount. Numbers are read from `serde_json::Value` (shortest round-trip text), which
/// is exact for these literals.
type Book = (BTreeMap<Decimal, Decimal>, BTreeMap<Decimal, Decimal>);

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(&v.to_string()).unwrap()
}

fn rebuild(book: &mut Book, data: &Value) {
    if data["type"] == "snapshot" {
        *book = Book::default();
    }
    for (side, k) in [(&mut book.0, "bids"), (&mut book.1, "asks")] {
        for l in data[k].as_array().unwrap() {
            match l[0].as_str().unwrap() {
                "delete" => {
                    side.remove(&dec(&l[1]));
                }
                _ => {
                    side.insert(dec(&l[1]), dec(&l[2]));
                }
            }
        }
    }
}

fn as_book(sync: &BookSync) -> Book {
    let (bids, asks) = sync.book().levels(None);
    let side = |l: &[tickflow::schema::v2beta1::level2_book::PriceLevel]| {
        l.iter()
            .map(|l| (l.price.parse().unwrap(), l.quantity.parse().unwrap()))
            .collect()
    };
    (side(&bids), side(&asks))
}

/// Every instrument of the book recording, mapped by the crate's own mapping (checked above).
fn book_map() -> SymbolMap {
    let mut pairs = Vec::new();
    for l in lines("deribit_book_snapshot.jsonl") {
        let v: Value = serde_json::from_str(&l).unwrap();
        let name = v["params"]["data"]["instrument_name"]
            .as_str()
            .unwrap()
            .to_string();
        pairs.push((name.clone(), symbols::normalized(&name).unwrap()));
    }
    SymbolMap::new(pairs)
}

#[test]
fn every_recorded_book_sequence_continues_without_a_gap() {
    let m = book_map();
    let mut frames = lines("deribit_book_snapshot.jsonl");
    frames.extend(lines("deribit_book_change.jsonl"));
    let mut syncs: BTreeMap<String, BookSync> = BTreeMap::new();
    let mut mine: BTreeMap<String, Book> = BTreeMap::new();
    let (mut applied, mut expected) = (Vec::new(), Vec::new());
    for f in &frames {
        let v: Value = serde_json::from_str(f).unwrap();
        let data = &v["params"]["data"];
        let name = data["instrument_name"].as_str().unwrap();
        rebuild(mine.entry(name.to_string()).or_default(), data);
        if data["type"] == "change" {
            expected.push((name.to_string(), data["change_id"].as_i64().unwrap()));
        }
        let (_, out) = parse(f, &m);
        for e in out {
            match e {
                VenueEvent::Snapshot { symbol, snapshot } => {
                    let s = syncs
                        .entry(symbol)
                        .or_insert_with(|| BookSync::new(std::sync::Arc::new(DeribitBook), 16));
                    assert_eq!(s.on_snapshot(&snapshot).unwrap(), Step::Synced);
                }
                VenueEvent::Diff { symbol, diff } => {
                    let id = diff.last;
                    let step = syncs.get_mut(&*symbol).unwrap().on_diff(diff).unwrap();
                    assert_eq!(step, Step::Applied, "{symbol} {id}");
                    applied.push((name.to_string(), id));
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(applied, expected);
    assert_eq!(syncs.len(), 11);
    for (name, book) in &mine {
        let sym = m.normalized(name).unwrap();
        assert_eq!(&as_book(&syncs[sym]), book, "{name}");
    }
    // Digits kept: ETH-30JUL21-2800-C's best bid changed to 4737.0 (change line 3).
    let eth = &syncs["ETH-USD-20210730-2800-C"];
    assert_eq!(eth.book().top(Side::Bid, 1), vec![("0.0015", "4737.0")]);
    // BTC-24SEP21-8000-P's last change (line 36) left one ask of 2.7 at 0.001.
    let btc = &syncs["BTC-USD-20210924-8000-P"];
    assert_eq!(btc.last_update_id(), Some(33_195_898_166));
}

#[test]
fn a_broken_chain_is_detected_resubscribed_and_resynced() {
    let m = book_map();
    let spec = SessionSpec {
        subscriptions: vec![Subscription {
            channel: Channel::Depth,
            symbol: "BTC-USD-20210924-8000-P".into(),
            venue_symbol: "BTC-24SEP21-8000-P".into(),
        }],
        symbols: m.clone(),
        book_depth: 0,
        ws_url: String::new(),
    };
    let mut session = Deribit::new().session_for(spec);
    let subscribe = session.subscribe();
    assert_eq!(subscribe.len(), 2);
    let snapshot = line("deribit_book_snapshot.jsonl", 8);
    let changes = lines("deribit_book_change.jsonl");
    let mut sync = BookSync::new(std::sync::Arc::new(DeribitBook), 16);
    let mut mine = Book::default();
    let feed = |session: &mut dyn VenueSession, sync: &mut BookSync, text: &str| -> Vec<Step> {
        let mut out = Vec::new();
        session.on_frame(Frame::Text(text), 1, &mut out).unwrap();
        out.into_iter()
            .filter_map(|e| match e {
                VenueEvent::Snapshot { snapshot, .. } => Some(sync.on_snapshot(&snapshot).unwrap()),
                VenueEvent::Diff { diff, .. } => Some(sync.on_diff(diff).unwrap()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(feed(&mut session, &mut sync, &snapshot), vec![Step::Synced]);
    rebuild(
        &mut mine,
        &serde_json::from_str::<Value>(&snapshot).unwrap()["params"]["data"],
    );
    let mut resubscribed = false;
    for (i, c) in changes.iter().enumerate() {
        let v: Value = serde_json::from_str(c).unwrap();
        if v["params"]["data"]["instrument_name"] != "BTC-24SEP21-8000-P" {
            continue;
        }
        // The venue's book moves on with every change, delivered or not.
        rebuild(&mut mine, &v["params"]["data"]);
        if i + 1 == 10 {
            continue; // line 10 (change 33195894927) is lost
        }
        let steps = feed(&mut session, &mut sync, c);
        if i + 1 == 11 {
            // Line 11 says its previous change was 33195894927; the book stands at 33195894926.
            assert_eq!(
                steps,
                vec![Step::Gap {
                    expected: 33_195_894_926,
                    got: 33_195_894_927
                }]
            );
            assert!(!sync.is_synced());
            let msgs: Vec<Value> = session
                .resubscribe_book("BTC-USD-20210924-8000-P")
                .iter()
                .map(|m| serde_json::from_str(m).unwrap())
                .collect();
            assert_eq!(
                msgs,
                vec![
                    serde_json::json!({"jsonrpc":"2.0","id":3,"method":"public/unsubscribe","params":{"channels":["book.BTC-24SEP21-8000-P.100ms"]}}),
                    serde_json::json!({"jsonrpc":"2.0","id":4,"method":"public/subscribe","params":{"channels":["book.BTC-24SEP21-8000-P.100ms"]}}),
                ]
            );
            assert_eq!(
                session.unconfirmed(),
                3,
                "heartbeat, first subscribe, resubscribe"
            );
            // Deribit answers both and sends a fresh snapshot at change 33195895729.
            for a in [
                r#"{"jsonrpc":"2.0","id":3,"result":["book.BTC-24SEP21-8000-P.100ms"]}"#,
                r#"{"jsonrpc":"2.0","id":4,"result":["book.BTC-24SEP21-8000-P.100ms"]}"#,
            ] {
                assert!(feed(&mut session, &mut sync, a).is_empty());
            }
            assert_eq!(session.unconfirmed(), 2);
            let levels = |s: &BTreeMap<Decimal, Decimal>| {
                s.iter()
                    .map(|(p, q)| format!("[\"new\",{p},{q}]"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let fresh = format!(
                r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.BTC-24SEP21-8000-P.100ms","data":{{"type":"snapshot","timestamp":1626993732406,"instrument_name":"BTC-24SEP21-8000-P","change_id":33195895729,"bids":[{}],"asks":[{}]}}}}}}"#,
                levels(&mine.0),
                levels(&mine.1)
            );
            assert_eq!(feed(&mut session, &mut sync, &fresh), vec![Step::Synced]);
            resubscribed = true;
            continue;
        }
        assert_eq!(steps, vec![Step::Applied], "line {}", i + 1);
    }
    assert!(resubscribed);
    assert_eq!(as_book(&sync), mine);
    assert_eq!(sync.last_update_id(), Some(33_195_898_166));
}

// ---- the JSON-RPC session -------------------------------------------------------------

fn spec(subs: &[(Channel, &str, &str)]) -> SessionSpec {
    SessionSpec {
        subscriptions: subs
            .iter()
            .map(|(c, n, v)| Subscription {
                channel: *c,
                symbol: n.to_string(),
                venue_symbol: v.to_string(),
            })
            .collect(),
        symbols: SymbolMap::new(subs.iter().map(|(_, n, v)| (v.to_string(), n.to_string()))),
        book_depth: 0,
        ws_url: String::new(),
    }
}

fn on(session: &mut dyn VenueSession, text: &str) -> Result<Vec<VenueEvent>, ParseError> {
    let mut out = Vec::new();
    session
        .on_frame(Frame::Text(text), 1, &mut out)
        .map(|_| out)
}

#[test]
fn session_subscribes_with_heartbeat_and_matches_answers_by_id() {
    let p = ("BTC-USD-PERP", "BTC-PERPETUAL");
    let o = ("BTC-USD-20211231-50000-C", "BTC-31DEC21-50000-C");
    let mut s = Deribit::new().session(spec(&[
        (Channel::Depth, p.0, p.1),
        (Channel::Trade, p.0, p.1),
        (Channel::Ticker, p.0, p.1),
        (Channel::Funding, p.0, p.1),
        (Channel::OpenInterest, p.0, p.1),
        (Channel::BookTicker, p.0, p.1),
        (Channel::Trade, o.0, o.1),
    ]));
    let msgs: Vec<Value> = s
        .subscribe()
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    assert_eq!(
        msgs,
        vec![
            serde_json::json!({"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":30}}),
            serde_json::json!({"jsonrpc":"2.0","id":2,"method":"public/subscribe","params":{"channels":[
                "book.BTC-PERPETUAL.100ms","trades.BTC-PERPETUAL.100ms","ticker.BTC-PERPETUAL.100ms","quote.BTC-PERPETUAL"]}}),
            serde_json::json!({"jsonrpc":"2.0","id":3,"method":"public/subscribe","params":{"channels":["trades.BTC-31DEC21-50000-C.100ms"]}}),
        ]
    );
    assert_eq!(s.unconfirmed(), 3);
    assert!(matches!(
        on(&mut *s, r#"{"jsonrpc":"2.0","id":1,"result":"ok"}"#).unwrap()[..],
        [VenueEvent::Control]
    ));
    assert_eq!(s.unconfirmed(), 2);
    // An answer to an id never sent changes nothing.
    on(&mut *s, r#"{"jsonrpc":"2.0","id":77,"result":[]}"#).unwrap();
    assert_eq!(s.unconfirmed(), 2);
    on(&mut *s, r#"{"jsonrpc":"2.0","id":2,"result":["book.BTC-PERPETUAL.100ms","trades.BTC-PERPETUAL.100ms","ticker.BTC-PERPETUAL.100ms","quote.BTC-PERPETUAL"]}"#).unwrap();
    assert_eq!(s.unconfirmed(), 1);
    // Deribit leaves out a channel it does not know (an expired option): refused, by symbol.
    match on(
        &mut *s,
        r#"{"jsonrpc":"2.0","id":3,"result":[],"usIn":1,"usOut":2,"usDiff":1,"testnet":false}"#,
    ) {
        Err(ParseError::Refused { symbol, .. }) => assert_eq!(symbol, o.0),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.unconfirmed(), 0);
    // test_request (Deribit's documented heartbeat) → public/test with the next id.
    let out = on(&mut *s, &line("docs_examples.jsonl", 1)).unwrap();
    let [VenueEvent::Send(t)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        serde_json::from_str::<Value>(t).unwrap(),
        serde_json::json!({"jsonrpc":"2.0","id":4,"method":"public/test","params":{}})
    );
    assert_eq!(s.unconfirmed(), 0, "a test is not a subscription");
    assert!(matches!(
        on(&mut *s, &line("docs_examples.jsonl", 2)).unwrap()[..],
        [VenueEvent::Control]
    ));
    assert!(matches!(
        on(
            &mut *s,
            r#"{"jsonrpc":"2.0","id":4,"result":{"version":"1.2.26"}}"#
        )
        .unwrap()[..],
        [VenueEvent::Control]
    ));
    // No book wanted for the option: nothing to resubscribe.
    assert!(s.resubscribe_book(o.0).is_empty());
}

#[test]
fn error_answers_refuse_one_instrument_or_fail_the_connection() {
    let a = ("BTC-USD-PERP", "BTC-PERPETUAL");
    let b = ("ETH-USD-PERP", "ETH-PERPETUAL");
    let mut s = Deribit::new().session(spec(&[
        (Channel::Trade, a.0, a.1),
        (Channel::Trade, b.0, b.1),
    ]));
    s.subscribe();
    // An error answering ETH's subscribe (id 3) refuses ETH; BTC carries on.
    match on(
        &mut *s,
        r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Invalid params","data":{"reason":"wrong format","param":"channels"}}}"#,
    ) {
        Err(ParseError::Refused { symbol, msg }) => {
            assert_eq!(symbol, b.0);
            assert!(
                msg.contains("-32602") && msg.contains("wrong format"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.unconfirmed(), 2);
    // An error with no id naming no instrument (documented shape): a venue error, terminal.
    match on(&mut *s, &line("docs_examples.jsonl", 7)) {
        Err(e @ ParseError::Venue { code: -32602, .. }) => assert!(e.is_terminal()),
        other => panic!("{other:?}"),
    }
    // ETH data after the refusal still parses (its symbol is known), BTC data flows.
    let out = on(&mut *s, &line("deribit_cmp_trade.jsonl", 2)).unwrap();
    assert_eq!(records(&out).len(), 2);
}

#[test]
fn ticker_records_follow_the_subscribed_channels() {
    let p = ("BTC-USD-PERP", "BTC-PERPETUAL");
    let mut s = Deribit::new().session(spec(&[(Channel::Funding, p.0, p.1)]));
    let msgs = s.subscribe();
    assert!(msgs[1].contains("ticker.BTC-PERPETUAL.100ms"));
    let out = on(&mut *s, &line("deribit_cmp_ticker.jsonl", 2)).unwrap();
    let r = records(&out);
    assert!(
        matches!(&r[..], [Normalized::Funding(f)] if f.rate == "0.00000255"),
        "{r:?}"
    );
    let mut s = Deribit::new().session(spec(&[
        (Channel::OpenInterest, p.0, p.1),
        (Channel::Ticker, p.0, p.1),
    ]));
    assert_eq!(s.subscribe().len(), 2, "one ticker channel for both");
    let r = records(&on(&mut *s, &line("deribit_cmp_ticker.jsonl", 2)).unwrap());
    assert!(
        matches!(&r[..], [Normalized::Ticker(_), Normalized::OpenInterest(_)]),
        "{r:?}"
    );
}

#[test]
fn hostile_input_is_a_typed_error() {
    let m = map(&[("BTC-PERPETUAL", "BTC-USD-PERP")]);
    let book = |levels: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.BTC-PERPETUAL.100ms","data":{{"type":"change","timestamp":1,"prev_change_id":1,"instrument_name":"BTC-PERPETUAL","change_id":2,"bids":[{levels}],"asks":[]}}}}}}"#
        )
    };
    let err = |t: &str| {
        let mut out = Vec::new();
        Deribit::new().parse(t, 1, &m, &mut out).unwrap_err()
    };
    assert!(matches!(err("{"), ParseError::Malformed(_)));
    assert!(matches!(err("[]"), ParseError::Malformed(_)));
    assert!(matches!(err(r#"{"id":"x"}"#), ParseError::Malformed(_)));
    assert!(matches!(
        err(r#"{"jsonrpc":"2.0"}"#),
        ParseError::Unsupported(_)
    ));
    assert!(matches!(
        err(&book(r#"["new",1e5,1]"#)),
        ParseError::BadDecimal(_)
    ));
    assert!(matches!(
        err(&book(r#"["new",100,-1]"#)),
        ParseError::BadDecimal(_)
    ));
    assert!(matches!(
        err(&book(r#"["new","NaN",1]"#)),
        ParseError::BadDecimal(_)
    ));
    assert!(matches!(
        err(&book(r#"["new",12345678901234567890123456789012345,1]"#)),
        ParseError::BadDecimal(_)
    ));
    assert!(matches!(
        err(&book(r#"["bogus",1,1]"#)),
        ParseError::Unsupported(_)
    ));
    assert!(matches!(
        err(&book(r#"["new",1]"#)),
        ParseError::Malformed(_)
    ));
    assert!(matches!(
        err(&book(r#"["new",1,1]"#)
            .replace("BTC-PERPETUAL\",\"change_id", "XRP-PERPETUAL\",\"change_id")),
        ParseError::UnknownSymbol(_)
    ));
    assert!(matches!(
        err(&book(r#"["new",1,1]"#)
            .replace("\"timestamp\":1,", "\"timestamp\":9223372036854775807,")),
        ParseError::BadDecimal(_)
    ));
    assert!(matches!(
        err(
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"chart.trades.BTC-PERPETUAL.1","data":{}}}"#
        ),
        ParseError::Unsupported(_)
    ));
    let mut s = Deribit::new().session(spec(&[(Channel::Trade, "BTC-USD-PERP", "BTC-PERPETUAL")]));
    let mut out = Vec::new();
    assert!(matches!(
        s.on_frame(Frame::Binary(&[1, 2]), 1, &mut out),
        Err(ParseError::Unsupported(_))
    ));
}
