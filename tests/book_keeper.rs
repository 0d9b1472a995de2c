//! The feed's book keeper on recorded data: every break of continuity becomes a `FeedEvent`
//! record with its reason and what the feed does about it, and the book is right again after
//! the resync. No broker needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use tickflow::book::{Diff, Snapshot};
use tickflow::feed::books::{BookKeeper, BookOutput};
use tickflow::producer::{Payload, ProduceEvent};
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::{FeedEvent, Normalized};
use tickflow::venues::binance::Rules;
use tickflow::venues::kraken::{Kraken, WsVersion};
use tickflow::venues::{by_name, SymbolMap, VenueEvent};

fn events(records: &[ProduceEvent]) -> Vec<FeedEvent> {
    records
        .iter()
        .filter_map(|r| match &r.payload {
            Payload::Typed(n) => match n.as_ref() {
                Normalized::FeedEvent(e) => Some(e.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("tests/fixtures/kraken/{file}"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

type Side = BTreeMap<Decimal, (String, String)>;

/// The test's own book: a sorted map per side, a window of 1000 levels.
fn apply(side: &mut Side, p: &str, q: &str, bids: bool) {
    let k: Decimal = p.parse().unwrap();
    if q.parse::<Decimal>().unwrap().is_zero() {
        side.remove(&k);
    } else {
        side.insert(k, (p.to_string(), q.to_string()));
    }
    while side.len() > 1000 {
        if bids {
            side.pop_first();
        } else {
            side.pop_last();
        }
    }
}

#[test]
fn a_corrupted_kraken_level_is_announced_resubscribed_and_the_book_is_right_again() {
    let venue = Kraken::with_version(WsVersion::V1);
    let map = SymbolMap::new([("XMR/USD".to_string(), "XMR-USD".to_string())]);
    let mut keeper = BookKeeper::new(
        "KRAKEN",
        by_name("kraken").unwrap().sequencer(1000),
        0,
        None,
    );
    let parse = |text: &str| {
        let mut out = Vec::new();
        venue.parse(text, 7, &map, &mut out).unwrap();
        out
    };
    let snapshot = lines("kraken_book_snapshot.jsonl")
        .into_iter()
        .find(|l| l.ends_with("\"XMR/USD\"]"))
        .unwrap();
    let Some(VenueEvent::Snapshot { snapshot, .. }) = parse(&snapshot).pop() else {
        panic!("no snapshot")
    };
    let (mut bids, mut asks) = (Side::new(), Side::new());
    for (p, q) in &snapshot.bids {
        apply(&mut bids, p, q, true);
    }
    for (p, q) in &snapshot.asks {
        apply(&mut asks, p, q, false);
    }
    let out = keeper.on_snapshot("XMR-USD", &snapshot, 7).unwrap();
    assert!(out.synced);
    assert_eq!(events(&out.records)[0].kind, Kind::Synced as i32);

    let updates: Vec<String> = lines("kraken_book_update.jsonl")
        .into_iter()
        .filter(|l| l.ends_with("\"XMR/USD\"]"))
        .collect();
    let diffs: Vec<Diff> = updates
        .iter()
        .flat_map(|l| parse(l))
        .filter_map(|e| match e {
            VenueEvent::Diff { diff, .. } => Some(diff),
            _ => None,
        })
        .collect();
    assert_eq!(diffs.len(), 846);
    let step = |keeper: &mut BookKeeper, d: &Diff| -> BookOutput {
        keeper.on_diff("XMR-USD", d.clone()).unwrap()
    };
    let mirror = |bids: &mut Side, asks: &mut Side, d: &Diff| {
        for (p, q) in d.bids.iter() {
            apply(bids, p, q, true);
        }
        for (p, q) in d.asks.iter() {
            apply(asks, p, q, false);
        }
    };
    for d in &diffs[..100] {
        let out = step(&mut keeper, d);
        assert!(out.broken.is_none() && events(&out.records).is_empty());
        mirror(&mut bids, &mut asks, d);
    }

    // Diff 100 with one quantity changed: the book no longer matches Kraken's checksum.
    let mut bad = diffs[100].clone();
    let (p, q) = bad
        .bids
        .iter()
        .chain(bad.asks.iter())
        .next()
        .map(|(p, q)| (p.to_string(), q.to_string()))
        .unwrap();
    let mut levels = tickflow::book::Levels::default();
    levels.push(
        &p,
        if q == "1.00000000" {
            "2.00000000"
        } else {
            "1.00000000"
        },
    );
    if bad.bids.is_empty() {
        bad.asks = levels;
    } else {
        bad.bids = levels;
    }
    let out = step(&mut keeper, &bad);
    assert!(out.need_snapshot);
    let ev = events(&out.records);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].symbol.as_str(), ev[0].action.as_str()),
        (Kind::ChecksumMismatch as i32, "XMR-USD", "resubscribe")
    );
    assert!(
        ev[0].reason.contains(&bad.checksum.unwrap().to_string()),
        "{}",
        ev[0].reason
    );
    assert!(!keeper.is_synced("XMR-USD"));
    // Updates before the new snapshot are not applied (counted as dropped).
    mirror(&mut bids, &mut asks, &diffs[100]);
    for d in &diffs[101..110] {
        assert!(step(&mut keeper, d).dropped);
        mirror(&mut bids, &mut asks, d);
    }

    // The resubscription's snapshot (the venue's book now: the test's own reconstruction).
    let snap = Snapshot {
        bids: bids.values().rev().cloned().collect(),
        asks: asks.values().cloned().collect(),
        ..Snapshot::default()
    };
    let out = keeper.on_snapshot("XMR-USD", &snap, 8).unwrap();
    assert!(out.synced);
    for d in &diffs[110..] {
        let out = step(&mut keeper, d);
        assert!(
            out.broken.is_none(),
            "checksum verified again: {:?}",
            out.broken
        );
        mirror(&mut bids, &mut asks, d);
    }
    let full = keeper.republish("XMR-USD", 9).unwrap();
    let Payload::Typed(n) = full.payload else {
        panic!()
    };
    let Normalized::Level2Book(b) = *n else {
        panic!()
    };
    let mine: Vec<(String, String)> = bids.values().rev().cloned().collect();
    let kept: Vec<(String, String)> = b.bids.into_iter().map(|l| (l.price, l.quantity)).collect();
    assert_eq!(kept, mine);
    let mine: Vec<(String, String)> = asks.values().cloned().collect();
    let kept: Vec<(String, String)> = b.asks.into_iter().map(|l| (l.price, l.quantity)).collect();
    assert_eq!(kept, mine);
}

fn diff(first: i64, last: i64, bid: (&str, &str), ask: Option<(&str, &str)>) -> Diff {
    let mut d = Diff {
        first,
        last,
        bids: [bid].into_iter().collect(),
        ..Diff::default()
    };
    if let Some(a) = ask {
        d.asks.push(a.0, a.1);
    }
    d
}

#[test]
fn binance_breaks_and_old_diffs_are_reported_by_the_keeper() {
    let mut keeper = BookKeeper::new("BINANCE", Arc::new(Rules::Spot), 0, None);
    let snap = Snapshot {
        last_update_id: 10,
        bids: vec![("1.0".into(), "5".into())],
        asks: vec![("2.0".into(), "5".into())],
        ..Snapshot::default()
    };
    let out = keeper.on_snapshot("BTC-USDT", &snap, 1).unwrap();
    let ev = events(&out.records);
    assert_eq!((ev[0].kind, ev[0].got_id), (Kind::Synced as i32, Some(10)));
    // An old diff: dropped and said so (the feed counts it).
    let out = keeper
        .on_diff("BTC-USDT", diff(5, 8, ("0.9", "1"), None))
        .unwrap();
    assert!(out.dropped && out.records.is_empty());
    // A gap: expected 11, got 13.
    let out = keeper
        .on_diff("BTC-USDT", diff(13, 14, ("0.9", "1"), None))
        .unwrap();
    let ev = events(&out.records);
    assert_eq!(
        (
            ev[0].kind,
            ev[0].expected_id,
            ev[0].got_id,
            ev[0].action.as_str()
        ),
        (Kind::Gap as i32, Some(11), Some(13), "rest_refetch")
    );
    assert!(out.need_snapshot);
    // Synced again, then a bid through the ask: crossed.
    keeper
        .on_snapshot(
            "BTC-USDT",
            &Snapshot {
                last_update_id: 20,
                ..snap.clone()
            },
            2,
        )
        .unwrap();
    let out = keeper
        .on_diff("BTC-USDT", diff(21, 21, ("2.5", "1"), None))
        .unwrap();
    let ev = events(&out.records);
    assert_eq!(ev[0].kind, Kind::CrossedBook as i32);
    assert_eq!(ev[0].reason, "crossed book: bid 2.5 >= ask 2.0");
    assert!(out.need_snapshot && !keeper.is_synced("BTC-USDT"));
    // An impossible diff: rejected with its reason, the book kept.
    keeper
        .on_snapshot(
            "BTC-USDT",
            &Snapshot {
                last_update_id: 30,
                ..snap
            },
            3,
        )
        .unwrap();
    let out = keeper
        .on_diff("BTC-USDT", diff(32, 31, ("1.1", "1"), None))
        .unwrap();
    let ev = events(&out.records);
    assert_eq!(
        (ev[0].kind, ev[0].reason.as_str(), ev[0].action.as_str()),
        (
            Kind::RejectedUpdate as i32,
            "u_before_U; book discarded",
            "rest_refetch"
        )
    );
    // A synced book that cannot apply a diff no longer follows the venue: resync.
    assert!(out.need_snapshot && !keeper.is_synced("BTC-USDT"));
}

/// Issue 18 §1: after one absurd `u` the genuine diffs are all "older than the book"; the
/// 100th dropped in a row is announced as a gap and the book is resynced from the next snapshot.
#[test]
fn a_synced_book_that_stops_applying_is_announced_as_a_gap_and_resynced() {
    let mut keeper = BookKeeper::new("BINANCE", Arc::new(Rules::Spot), 0, None);
    let snap = Snapshot {
        last_update_id: 10,
        bids: vec![("1.0".into(), "5".into())],
        asks: vec![("2.0".into(), "5".into())],
        ..Snapshot::default()
    };
    assert!(keeper.on_snapshot("BTC-USDT", &snap, 1).unwrap().synced);
    // U = 11 continues the book; u is absurd (within the plausible span of one diff).
    let out = keeper
        .on_diff("BTC-USDT", diff(11, 9_000_000, ("1.1", "1"), None))
        .unwrap();
    assert_eq!(out.records.len(), 1, "applied: one Level2Delta");
    // The genuine stream goes on at 12, 13, ...: 99 dropped, each counted, nothing announced.
    for id in 12..12 + 99 {
        let out = keeper
            .on_diff("BTC-USDT", diff(id, id, ("1.2", "1"), None))
            .unwrap();
        assert!(out.dropped && !out.need_snapshot && out.records.is_empty());
    }
    // The 100th: the book is discarded, a gap event names the reason, a refetch is asked for.
    let out = keeper
        .on_diff("BTC-USDT", diff(111, 111, ("1.2", "1"), None))
        .unwrap();
    assert!(out.need_snapshot && !keeper.is_synced("BTC-USDT"));
    assert!(matches!(
        out.broken,
        Some(tickflow::book::Break::Stalled {
            dropped: 100,
            last: 9_000_000,
            got: 111
        })
    ));
    let ev = events(&out.records);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (
            ev[0].kind,
            ev[0].expected_id,
            ev[0].got_id,
            ev[0].action.as_str()
        ),
        (Kind::Gap as i32, Some(9_000_001), Some(111), "rest_refetch")
    );
    assert!(
        ev[0]
            .reason
            .starts_with("stalled book: 100 diffs in a row dropped"),
        "{}",
        ev[0].reason
    );
    // The venue's book at 110 (the genuine diffs applied to the snapshot) resyncs it, and the
    // buffered diff 111 bridges onto it.
    let venue_book = Snapshot {
        last_update_id: 110,
        bids: vec![("1.0".into(), "5".into()), ("1.2".into(), "1".into())],
        asks: vec![("2.0".into(), "5".into())],
        ..Snapshot::default()
    };
    let out = keeper.on_snapshot("BTC-USDT", &venue_book, 2).unwrap();
    assert!(out.synced && keeper.is_synced("BTC-USDT"));
    let out = keeper
        .on_diff("BTC-USDT", diff(112, 112, ("1.3", "1"), None))
        .unwrap();
    assert_eq!(out.records.len(), 1, "applied again");
}

fn full_book(keeper: &mut BookKeeper, symbol: &str) -> tickflow::schema::Level2Book {
    let Payload::Typed(n) = keeper.republish(symbol, 0).unwrap().payload else {
        panic!()
    };
    let Normalized::Level2Book(b) = *n else {
        panic!()
    };
    b
}

/// Issue 18 §1: diffs a snapshot's bridge skips (out of order, or impossible) are counted and
/// announced, not lost silently.
#[test]
fn diffs_the_bridge_skips_are_counted_and_announced() {
    let mut keeper = BookKeeper::new("BINANCE", Arc::new(Rules::Spot), 0, None);
    for d in [
        // Older than the snapshot (10): dropped, as Binance's procedure says; not a loss.
        diff(9, 10, ("0.9", "1"), None),
        diff(11, 11, ("1.1", "1"), None),
        // u < U: impossible.
        diff(15, 12, ("1.5", "1"), None),
        // An id far ahead of the chain, which the next diff proves out of order.
        diff(500, 600, ("1.6", "1"), None),
        diff(12, 12, ("1.2", "1"), None),
    ] {
        assert!(keeper.on_diff("BTC-USDT", d).unwrap().need_snapshot);
    }
    let snap = Snapshot {
        last_update_id: 10,
        bids: vec![("1.0".into(), "5".into())],
        asks: vec![("2.0".into(), "5".into())],
        ..Snapshot::default()
    };
    let out = keeper.on_snapshot("BTC-USDT", &snap, 1).unwrap();
    assert!(out.synced);
    assert_eq!((out.out_of_order, out.bridge_rejected), (1, 1));
    let ev = events(&out.records);
    let reasons: Vec<(i32, &str)> = ev.iter().map(|e| (e.kind, e.reason.as_str())).collect();
    assert_eq!(
        reasons,
        [
            (
                Kind::RejectedUpdate as i32,
                "1 buffered diffs skipped out of order (an id no growing stream has there) \
                 while bridging the snapshot"
            ),
            (
                Kind::RejectedUpdate as i32,
                "1 buffered diffs skipped as impossible while bridging the snapshot"
            ),
            (Kind::Synced as i32, "book built from a REST snapshot"),
        ]
    );
    assert!(ev.iter().all(|e| e.symbol == "BTC-USDT"));
    // The skipped diffs' levels never reached the book; the bridged ones did.
    let b = full_book(&mut keeper, "BTC-USDT");
    let bids: Vec<&str> = b.bids.iter().map(|l| l.price.as_str()).collect();
    assert_eq!(bids, ["1.2", "1.1", "1.0"]);
    assert_eq!(b.last_update_id, Some(12));
    // Counted once: the next snapshot reports nothing skipped.
    let out = keeper.on_snapshot("BTC-USDT", &snap, 2).unwrap();
    assert_eq!((out.out_of_order, out.bridge_rejected), (0, 0));
}

/// Issue 18 §2: one snapshot-wait budget for all books of a connection, counted with each
/// diff's own size and its levels' index. Past it, the oldest diffs of the largest buffer go,
/// counted and announced for their symbol; the rest still bridge a newer snapshot.
#[test]
fn the_connection_budget_bounds_every_book_buffer_together() {
    // Each diff: one bid of 3 + 1 bytes of text, one index entry of two usizes.
    let per = std::mem::size_of::<Diff>() + 4 + 2 * std::mem::size_of::<usize>();
    let mut keeper =
        BookKeeper::new("BINANCE", Arc::new(Rules::Spot), 0, None).with_buffer_budget(3 * per);
    for (i, p) in [(1, "1.1"), (2, "1.2"), (3, "1.3")] {
        let out = keeper
            .on_diff("AAA-USDT", diff(i, i, (p, "1"), None))
            .unwrap();
        assert!(out.need_snapshot && out.overflowed == 0 && out.records.is_empty());
    }
    assert_eq!(keeper.buffered_bytes(), 3 * per);
    // Another symbol's diff takes the total past the budget: AAA's oldest diff goes.
    let out = keeper
        .on_diff("BBB-USDT", diff(1, 1, ("7.1", "1"), None))
        .unwrap();
    assert_eq!(out.overflowed, 1);
    assert_eq!(
        out.overflowed_by_symbol
            .iter()
            .map(|(s, n)| (s.as_ref(), *n))
            .collect::<Vec<_>>(),
        [("AAA-USDT", 1)]
    );
    let ev = events(&out.records);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].symbol.as_str()),
        (Kind::BufferOverflow as i32, "AAA-USDT")
    );
    assert_eq!(keeper.buffered_bytes(), 3 * per);
    // AAA lost diff 1: a snapshot at 0 cannot be bridged (a gap, the buffer kept) ...
    let snap = |id| Snapshot {
        last_update_id: id,
        bids: vec![("1.0".into(), "5".into())],
        asks: vec![("2.0".into(), "5".into())],
        ..Snapshot::default()
    };
    let out = keeper.on_snapshot("AAA-USDT", &snap(0), 1).unwrap();
    assert_eq!(out.gap, Some((1, 2)));
    assert!(!keeper.is_synced("AAA-USDT"));
    // ... one at 1 is, with diffs 2 and 3; their bytes leave the budget.
    let out = keeper.on_snapshot("AAA-USDT", &snap(1), 2).unwrap();
    assert!(out.synced);
    let b = full_book(&mut keeper, "AAA-USDT");
    let bids: Vec<&str> = b.bids.iter().map(|l| l.price.as_str()).collect();
    assert_eq!(bids, ["1.3", "1.2", "1.0"]);
    assert_eq!(keeper.buffered_bytes(), per, "BBB's one diff");
    // A reset frees its book's share.
    keeper.reset("BBB-USDT");
    assert_eq!(keeper.buffered_bytes(), 0);
}
