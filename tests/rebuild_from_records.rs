//! Issue 18 §2: a consumer can rebuild every book from Kafka alone. Every recorded snapshot and
//! update of every venue goes through the feed's `BookKeeper`; every record it emits is decoded
//! and applied to the test's own book (a `Level2Book` replaces it, a `Level2Delta` sets or, at
//! quantity zero, deletes each level in order), and after every step that book must be exactly
//! the keeper's, at full depth. Levels a venue's depth window drops without a delete (Kraken)
//! must reach the records as deletions. No broker needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod books;

use std::collections::HashMap;

use books::Side;
use serde_json::Value;
use tickflow::book::{Diff, Snapshot};
use tickflow::feed::books::BookKeeper;
use tickflow::producer::{Payload, ProduceEvent};
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::Normalized;
use tickflow::venues::binance::Binance;
use tickflow::venues::binance_coinm::coinm;
use tickflow::venues::kraken::{normalized_pair, Kraken, WsVersion};
use tickflow::venues::{Channel, Frame, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent};

const RECEIPT: i64 = 1_700_000_000_000_001;

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(format!("tests/fixtures/{path}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// One step of a recording: a snapshot or a diff of one (normalized) symbol.
enum Step {
    Snap(String, Snapshot),
    Diff(String, Diff),
}

/// What a consumer of the topics holds: one book per symbol, from records alone.
#[derive(Default)]
struct Consumer {
    books: HashMap<String, (Side, Side)>,
    deltas: usize,
    full_books: usize,
    /// Deletions in deltas of levels the venue's diff did not delete (the depth window's).
    implicit_deletions: usize,
}

impl Consumer {
    fn take(&mut self, records: Vec<ProduceEvent>, diff: Option<&Diff>) {
        for r in records {
            let n = match r.payload {
                Payload::Typed(n) => *n,
                Payload::Normalized(e) => e.decode().unwrap(),
                other => panic!("{other:?}"),
            };
            match n {
                Normalized::Level2Book(b) => {
                    let (mut bids, mut asks) = (Side::new(), Side::new());
                    for l in &b.bids {
                        books::set(&mut bids, &l.price, &l.quantity);
                    }
                    for l in &b.asks {
                        books::set(&mut asks, &l.price, &l.quantity);
                    }
                    self.books.insert(b.symbol, (bids, asks));
                    self.full_books += 1;
                }
                Normalized::Level2Delta(d) => {
                    let (bids, asks) = self
                        .books
                        .get_mut(&d.symbol)
                        .expect("a delta before its book");
                    let diff = diff.expect("a delta from a diff");
                    let sent = |levels: &tickflow::book::Levels, p: &str| {
                        levels
                            .iter()
                            .any(|(lp, lq)| lp == p && lq.parse::<f64>() == Ok(0.0))
                    };
                    for l in &d.bids {
                        books::set(bids, &l.price, &l.quantity);
                        if l.quantity == "0" && !sent(&diff.bids, &l.price) {
                            self.implicit_deletions += 1;
                        }
                    }
                    for l in &d.asks {
                        books::set(asks, &l.price, &l.quantity);
                        if l.quantity == "0" && !sent(&diff.asks, &l.price) {
                            self.implicit_deletions += 1;
                        }
                    }
                    self.deltas += 1;
                }
                Normalized::FeedEvent(e) => {
                    assert_eq!(
                        e.kind,
                        Kind::Synced as i32,
                        "no break in the recordings: {e:?}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

/// Drives the keeper over `steps`; after each, the consumer's book of that symbol must be the
/// keeper's, level for level (price and quantity texts), at full depth.
fn rebuild(mut keeper: BookKeeper, steps: Vec<Step>) -> Consumer {
    let mut c = Consumer::default();
    for step in steps {
        let sym = match step {
            Step::Snap(sym, snap) => {
                let out = keeper.on_snapshot(&sym, &snap, RECEIPT).unwrap();
                assert!(out.synced, "{sym}: {out:?}");
                c.take(out.records, None);
                sym
            }
            Step::Diff(sym, diff) => {
                let out = keeper.on_diff(&sym, diff.clone()).unwrap();
                assert!(out.broken.is_none() && out.gap.is_none(), "{sym}: {out:?}");
                c.take(out.records, Some(&diff));
                sym
            }
        };
        if keeper.is_synced(&sym) {
            let (bids, asks) = keeper.book(&sym).unwrap().levels(None);
            let (mb, ma) = &c.books[&sym];
            let mine_b: Vec<(String, String)> = mb.values().rev().cloned().collect();
            let mine_a: Vec<(String, String)> = ma.values().cloned().collect();
            let kept = |v: Vec<tickflow::schema::v2beta1::level2_book::PriceLevel>| {
                v.into_iter()
                    .map(|l| (l.price, l.quantity))
                    .collect::<Vec<_>>()
            };
            assert_eq!(mine_b, kept(bids), "{sym} bids");
            assert_eq!(mine_a, kept(asks), "{sym} asks");
        }
    }
    c
}

/// Binance: per symbol, the recorded REST snapshot (symbol from MANIFEST.tsv) with half of its
/// recorded diffs arriving before it (buffered, bridged) and the rest after.
fn binance_steps(venue: &Binance, dir: &str, diffs: &str, snaps: &str, perp: bool) -> Vec<Step> {
    let mut pairs = Vec::new();
    for l in lines(&format!("{dir}/{diffs}")) {
        let v: Value = serde_json::from_str(&l).unwrap();
        let data = v.get("data").unwrap_or(&v);
        if let Some(s) = data["s"].as_str() {
            pairs.push((
                s.to_string(),
                format!("{s}-X{}", if perp { "-PERP" } else { "" }),
            ));
        }
    }
    let map = SymbolMap::new(pairs);
    let mut per_symbol: HashMap<String, Vec<Diff>> = HashMap::new();
    for l in lines(&format!("{dir}/{diffs}")) {
        let mut out = Vec::new();
        venue.parse(&l, RECEIPT, &map, &mut out).unwrap();
        for e in out {
            if let VenueEvent::Diff { symbol, diff } = e {
                per_symbol.entry(symbol.to_string()).or_default().push(diff);
            }
        }
    }
    let manifest = std::fs::read_to_string(format!("tests/fixtures/{dir}/MANIFEST.tsv")).unwrap();
    let syms: Vec<String> = manifest
        .lines()
        .filter(|l| l.starts_with(&format!("{snaps}\t")))
        .map(|l| {
            l.split("symbol=")
                .nth(1)
                .unwrap()
                .split(['&', '\t', ' '])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut steps = Vec::new();
    for (l, sym) in lines(&format!("{dir}/{snaps}")).iter().zip(syms) {
        let snap = venue.parse_snapshot(l).unwrap();
        let norm = map.normalized(&sym).unwrap().to_string();
        let diffs = per_symbol.remove(&norm).unwrap_or_default();
        let split = diffs.len() / 2;
        let mut diffs = diffs.into_iter();
        for d in diffs.by_ref().take(split) {
            steps.push(Step::Diff(norm.clone(), d));
        }
        steps.push(Step::Snap(norm.clone(), snap));
        for d in diffs {
            steps.push(Step::Diff(norm.clone(), d));
        }
    }
    steps
}

#[test]
fn binance_spot_books_rebuild_from_records() {
    let v = Binance::spot();
    let steps = binance_steps(
        &v,
        "binance",
        "binance_depthUpdate.jsonl",
        "binance_depth_snapshot_rest.jsonl",
        false,
    );
    assert_eq!(
        steps.iter().filter(|s| matches!(s, Step::Snap(..))).count(),
        4
    );
    let c = rebuild(
        BookKeeper::new(v.exchange(), v.sequencer(1000), 0, None),
        steps,
    );
    assert_eq!(c.full_books, 4);
    assert!(c.deltas > 0);
}

#[test]
fn binance_usdm_books_rebuild_from_records() {
    let v = Binance::usdm();
    let steps = binance_steps(
        &v,
        "binance",
        "binance_futures_depthUpdate.jsonl",
        "binance_futures_depth_snapshot_rest.jsonl",
        true,
    );
    assert_eq!(
        steps.iter().filter(|s| matches!(s, Step::Snap(..))).count(),
        4
    );
    let c = rebuild(
        BookKeeper::new(v.exchange(), v.sequencer(1000), 0, None),
        steps,
    );
    assert_eq!(c.full_books, 4);
    assert!(c.deltas > 0);
}

/// COIN-M: the one recorded pair (BTCUSD_PERP, line 2 of each file) does not bridge (the diff
/// predates the snapshot; see tests/binance_coinm.rs): the book is the snapshot, and the stale
/// diff, sent after it, is dropped without a record.
#[test]
fn binance_coinm_books_rebuild_from_records() {
    let v = coinm();
    let map = SymbolMap::new([("BTCUSD_PERP".to_string(), "BTC-USD-PERP".to_string())]);
    let mut out = Vec::new();
    v.parse(
        &lines("binance_coinm/binance_coinm_depthUpdate.jsonl")[1],
        RECEIPT,
        &map,
        &mut out,
    )
    .unwrap();
    let Some(VenueEvent::Diff { symbol, diff }) = out.pop() else {
        panic!()
    };
    let snap = v
        .parse_snapshot(&lines("binance_coinm/binance_coinm_depth_snapshot_rest.jsonl")[1])
        .unwrap();
    let steps = vec![
        Step::Snap(symbol.to_string(), snap),
        Step::Diff(symbol.to_string(), diff),
    ];
    let c = rebuild(
        BookKeeper::new(v.exchange(), v.sequencer(1000), 0, None),
        steps,
    );
    assert_eq!((c.full_books, c.deltas), (1, 0));
}

fn kraken_v1_steps(files: &[&str]) -> Vec<Step> {
    let mut pairs = Vec::new();
    for f in files {
        for l in lines(&format!("kraken/{f}")) {
            let v: Value = serde_json::from_str(&l).unwrap();
            if let Some(p) = v.as_array().and_then(|a| a.last()).and_then(Value::as_str) {
                if let Some(n) = normalized_pair(p) {
                    pairs.push((p.to_string(), n));
                }
            }
        }
    }
    let map = SymbolMap::new(pairs);
    let venue = Kraken::with_version(WsVersion::V1);
    let mut steps = Vec::new();
    for f in files {
        for l in lines(&format!("kraken/{f}")) {
            let mut out = Vec::new();
            venue.parse(&l, RECEIPT, &map, &mut out).unwrap();
            for e in out {
                match e {
                    VenueEvent::Snapshot { symbol, snapshot } => {
                        steps.push(Step::Snap(symbol, snapshot))
                    }
                    VenueEvent::Diff { symbol, diff } => {
                        steps.push(Step::Diff(symbol.to_string(), diff))
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }
    steps
}

/// Kraken v1, the recorded `book-1000` session: ten pairs' snapshots, then 4 269 updates.
/// (These recorded books never outgrow their 1 000-level window: the window's own deletions
/// are tested below on a hand-typed book.)
#[test]
fn kraken_v1_books_rebuild_from_records_at_full_depth() {
    let steps = kraken_v1_steps(&["kraken_book_snapshot.jsonl", "kraken_book_update.jsonl"]);
    assert_eq!(steps.len(), 10 + 4269);
    let v = Kraken::with_version(WsVersion::V1);
    let c = rebuild(
        BookKeeper::new(v.exchange(), v.sequencer(1000), 0, None),
        steps,
    );
    assert_eq!((c.full_books, c.deltas), (10, 4269));
}

/// Kraken truncates a book beyond the subscribed depth without sending a delete: a level
/// inserted inside a full window pushes the worst level out. The delta must carry that
/// deletion (quantity "0", after the diff's own levels), or a consumer's book grows past the
/// window. Hand-typed: depth 10, bids 100..91 and asks 101..110; a bid at 100.5 pushes 91
/// out, an ask at 100.7 pushes 110 out, and a bid at 90 (below the window) is itself dropped.
#[test]
fn levels_a_depth_window_drops_reach_the_deltas_as_deletions() {
    let v = Kraken::with_version(WsVersion::V1);
    let snap = Snapshot {
        bids: (91..=100)
            .rev()
            .map(|p| (format!("{p}.0"), "1.5".to_string()))
            .collect(),
        asks: (101..=110)
            .map(|p| (format!("{p}.0"), "2.5".to_string()))
            .collect(),
        ..Snapshot::default()
    };
    let mut d1 = Diff {
        receipt_time: RECEIPT,
        ..Diff::default()
    };
    d1.bids.push("100.5", "3");
    let mut d2 = Diff {
        receipt_time: RECEIPT,
        ..Diff::default()
    };
    d2.asks.push("100.7", "4");
    d2.bids.push("90.0", "5");
    let steps = vec![
        Step::Snap("XMR-USD".into(), snap),
        Step::Diff("XMR-USD".into(), d1.clone()),
        Step::Diff("XMR-USD".into(), d2.clone()),
    ];
    let c = rebuild(
        BookKeeper::new(v.exchange(), v.sequencer(10), 0, None),
        steps,
    );
    assert_eq!((c.full_books, c.deltas, c.implicit_deletions), (1, 2, 3));
    let (bids, asks) = &c.books["XMR-USD"];
    assert_eq!(bids.len(), 10);
    assert_eq!(asks.len(), 10);
    // The deltas themselves, level by level.
    let mut keeper = BookKeeper::new(v.exchange(), v.sequencer(10), 0, None);
    let snap = Snapshot {
        bids: (91..=100)
            .rev()
            .map(|p| (format!("{p}.0"), "1.5".to_string()))
            .collect(),
        asks: (101..=110)
            .map(|p| (format!("{p}.0"), "2.5".to_string()))
            .collect(),
        ..Snapshot::default()
    };
    keeper.on_snapshot("XMR-USD", &snap, RECEIPT).unwrap();
    let delta = |out: tickflow::feed::books::BookOutput| {
        let [r] = <[ProduceEvent; 1]>::try_from(out.records).unwrap();
        let Payload::Normalized(e) = r.payload else {
            panic!()
        };
        let Normalized::Level2Delta(d) = e.decode().unwrap() else {
            panic!()
        };
        let pairs = |v: Vec<tickflow::schema::v2beta1::level2_delta::PriceLevel>| {
            v.into_iter()
                .map(|l| (l.price, l.quantity))
                .collect::<Vec<_>>()
        };
        (pairs(d.bids), pairs(d.asks))
    };
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        delta(keeper.on_diff("XMR-USD", d1).unwrap()),
        (vec![s("100.5", "3"), s("91.0", "0")], vec![])
    );
    assert_eq!(
        delta(keeper.on_diff("XMR-USD", d2).unwrap()),
        (
            vec![s("90.0", "5"), s("90.0", "0")],
            vec![s("100.7", "4"), s("110.0", "0")]
        )
    );
}

/// Kraken v2, the documented examples (MATIC/USD snapshot and update at depth 10, BTC/USD
/// snapshot), through the v2 session (the instrument message gives the pair's precision).
#[test]
fn kraken_v2_books_rebuild_from_records() {
    let l = lines("kraken/v2_docs_examples.jsonl");
    let v2 = Kraken::new();
    let mut subs = Vec::new();
    let mut pairs = Vec::new();
    for sym in ["MATIC-USD", "BTC-USD"] {
        let venue_symbol = v2.venue_symbol(&tickflow::venues::Instrument::parse(sym).unwrap());
        pairs.push((venue_symbol.clone(), sym.to_string()));
        subs.push(Subscription {
            channel: Channel::Depth,
            symbol: sym.to_string(),
            venue_symbol,
        });
    }
    let mut session = v2.session(SessionSpec {
        subscriptions: subs,
        symbols: SymbolMap::new(pairs),
        book_depth: 10,
        ws_url: String::new(),
    });
    let _ = session.subscribe();
    let mut steps = Vec::new();
    for text in &l[2..6] {
        let mut out = Vec::new();
        session
            .on_frame(Frame::Text(text), RECEIPT, &mut out)
            .unwrap();
        for e in out {
            match e {
                VenueEvent::Snapshot { symbol, snapshot } => {
                    steps.push(Step::Snap(symbol, snapshot))
                }
                VenueEvent::Diff { symbol, diff } => {
                    steps.push(Step::Diff(symbol.to_string(), diff))
                }
                _ => {}
            }
        }
    }
    assert_eq!(steps.len(), 3);
    let c = rebuild(
        BookKeeper::new(v2.exchange(), v2.sequencer(10), 0, None),
        steps,
    );
    assert_eq!((c.full_books, c.deltas), (2, 1));
}
