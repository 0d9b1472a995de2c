//! Hostile input against the Binance parser and a book that is in sync: recorded NKNUSDT data
//! (the REST snapshot and the `depthUpdate` stream that continues it) with one field at a time
//! replaced by something an exchange, a proxy or an attacker could send. For each, what must
//! happen is asserted: the parser's typed error (`ParseError::kind`, as the feed counts it), a
//! `Rejected` step or a resync request from the book, the book untouched when the diff was not
//! applied, bounded memory, and no panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tickflow::book::sync::DEFAULT_BUFFER_BYTES;
use tickflow::book::{BookSync, Diff, Levels, Snapshot, Step};
use tickflow::feed::books::{BookKeeper, BookOutput};
use tickflow::producer::{Payload, ProduceEvent};
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::{FeedEvent, Level2Book, Normalized};
use tickflow::venues::binance::{Binance, Rules};
use tickflow::venues::kraken::book::KrakenBook;
use tickflow::venues::kraken::Kraken;
use tickflow::venues::{Frame, ParseError, SessionSpec, SymbolMap, Venue, VenueEvent};

const FIXTURES: &str = "tests/fixtures/binance";
const SYMBOL: &str = "NKN-USDT";

fn map() -> SymbolMap {
    SymbolMap::new([("NKNUSDT".to_string(), SYMBOL.to_string())])
}

/// The recorded NKNUSDT REST snapshot (line 1 of the snapshot file, `symbol=NKNUSDT` in
/// MANIFEST.tsv): `lastUpdateId` 499869752.
fn snapshot() -> Snapshot {
    let text =
        std::fs::read_to_string(format!("{FIXTURES}/binance_depth_snapshot_rest.jsonl")).unwrap();
    let snap = Binance::spot()
        .parse_snapshot(text.lines().next().unwrap())
        .unwrap();
    assert_eq!(snap.last_update_id, 499_869_752);
    snap
}

/// The recorded NKNUSDT diffs, as JSON values (mutated by the tests, then sent as text).
fn recorded_diffs() -> Vec<Value> {
    std::fs::read_to_string(format!("{FIXTURES}/binance_depthUpdate.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["data"]["s"] == "NKNUSDT")
        .collect()
}

fn parse(text: &str) -> Result<Vec<VenueEvent>, ParseError> {
    let mut out = Vec::new();
    Binance::spot()
        .parse(text, 1, &map(), &mut out)
        .map(|()| out)
}

fn only_diff(events: Vec<VenueEvent>) -> Diff {
    let mut diffs: Vec<Diff> = events
        .into_iter()
        .map(|e| match e {
            VenueEvent::Diff { symbol, diff } => {
                assert_eq!(&*symbol, SYMBOL);
                diff
            }
            other => panic!("not a diff: {other:?}"),
        })
        .collect();
    assert_eq!(diffs.len(), 1);
    diffs.pop().unwrap()
}

fn feed_events(records: &[ProduceEvent]) -> Vec<FeedEvent> {
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

/// A keeper whose NKN-USDT book is in sync: the recorded snapshot, then recorded diffs.
struct Synced {
    keeper: BookKeeper,
    diffs: Vec<Value>,
    /// Index of the next recorded diff not yet taken.
    next: usize,
    /// Parser errors by kind, as the feed counts them.
    errors: BTreeMap<&'static str, u32>,
}

impl Synced {
    fn new() -> Synced {
        let mut keeper = BookKeeper::new("BINANCE", Arc::new(Rules::Spot), 0, None);
        let out = keeper.on_snapshot(SYMBOL, &snapshot(), 1).unwrap();
        assert!(out.synced && keeper.is_synced(SYMBOL));
        let mut s = Synced {
            keeper,
            diffs: recorded_diffs(),
            next: 0,
            errors: BTreeMap::new(),
        };
        // Diff 0 ([499869750, 499869752]) is older than the snapshot; the next ten continue it.
        assert!(s.genuine().dropped);
        for _ in 0..10 {
            let out = s.genuine();
            assert_eq!(out.records.len(), 1, "one Level2Delta, no feed event");
            assert!(out.gap.is_none() && out.rejected.is_none() && !out.need_snapshot);
        }
        s
    }

    /// The next recorded diff, untouched.
    fn genuine(&mut self) -> BookOutput {
        let text = self.diffs[self.next].to_string();
        self.next += 1;
        self.send(&text).unwrap()
    }

    /// The next recorded diff (not consumed) with `edit` applied, as frame text.
    fn hostile(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut v = self.diffs[self.next].clone();
        edit(&mut v["data"]);
        v.to_string()
    }

    /// One frame through the parser and, when it parses, the keeper; parser errors counted.
    fn send(&mut self, text: &str) -> Result<BookOutput, ParseError> {
        match parse(text) {
            Ok(events) => Ok(self.keeper.on_diff(SYMBOL, only_diff(events)).unwrap()),
            Err(e) => {
                *self.errors.entry(e.kind()).or_default() += 1;
                Err(e)
            }
        }
    }

    /// The book as a full record (levels, last update id); `None` when not in sync.
    fn book(&mut self) -> Option<Level2Book> {
        let e = self.keeper.republish(SYMBOL, 0)?;
        match *match e.payload {
            Payload::Typed(n) => n,
            other => panic!("{other:?}"),
        } {
            Normalized::Level2Book(b) => Some(b),
            other => panic!("{other:?}"),
        }
    }

    /// Syncs the book again from `book` (the venue's book at that point, as a REST snapshot).
    fn resync(&mut self, book: &Level2Book) {
        let snap = Snapshot {
            last_update_id: book.last_update_id.unwrap(),
            bids: book
                .bids
                .iter()
                .map(|l| (l.price.clone(), l.quantity.clone()))
                .collect(),
            asks: book
                .asks
                .iter()
                .map(|l| (l.price.clone(), l.quantity.clone()))
                .collect(),
            checksum: None,
        };
        let out = self.keeper.on_snapshot(SYMBOL, &snap, 2).unwrap();
        assert!(out.synced, "{out:?}");
    }

    /// The last applied update id (the next diff must start right after it).
    fn last_id(&mut self) -> i64 {
        self.book().unwrap().last_update_id.unwrap()
    }
}

#[test]
fn bad_decimals_are_typed_errors_and_never_reach_the_book() {
    let mut s = Synced::new();
    let before = s.book().unwrap();
    let forty = "1234567890123456789012345678901234567890";
    let cases: [(&str, &str, &str); 8] = [
        (forty, "1.00000000", forty),
        ("0.35000000", "1e400", "1e400"),
        ("1e400", "1.00000000", "1e400"),
        ("0.35000000", "-5.00000000", "-5.00000000"),
        ("NaN", "1.00000000", "NaN"),
        ("0.35000000", "NaN", "NaN"),
        ("0.35000000", "", ""),
        ("", "1.00000000", ""),
    ];
    for (price, qty, refused) in cases {
        for side in ["b", "a"] {
            let text = s.hostile(|d| d[side] = json!([["0.35100000", "1.00000000"], [price, qty]]));
            match s.send(&text) {
                Err(ParseError::BadDecimal(v)) => assert_eq!(v, refused, "{text}"),
                other => panic!("{price:?}/{qty:?}: {other:?}"),
            }
            // Nothing of the frame reached the book (not even its valid first level).
            assert_eq!(s.book().unwrap(), before, "{text}");
        }
    }
    // 16 frames, each counted once as bad_decimal and nothing else.
    assert_eq!(s.errors, BTreeMap::from([("bad_decimal", 16)]));
    // The book kept its place: the recorded diff that was due still continues it.
    let out = s.genuine();
    assert!(out.rejected.is_none() && out.gap.is_none() && !out.need_snapshot);
    assert_eq!(out.records.len(), 1);
}

#[test]
fn a_bad_level_that_bypasses_the_parser_discards_the_book_and_asks_for_a_snapshot() {
    // The book's own check (the second line of defence, for a venue parser that let one by).
    let mut s = Synced::new();
    let next = s.last_id() + 1;
    let mut bids = Levels::default();
    bids.push("0.35100000", "NaN");
    let out = s
        .keeper
        .on_diff(
            SYMBOL,
            Diff {
                first: next,
                last: next,
                bids,
                ..Diff::default()
            },
        )
        .unwrap();
    assert!(out.bad_decimal.is_some(), "{out:?}");
    assert!(out.need_snapshot);
    assert!(!s.keeper.is_synced(SYMBOL));
    let ev = feed_events(&out.records);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, Kind::RejectedUpdate as i32);
    assert_eq!(ev[0].action, "rest_refetch");
}

#[test]
fn impossible_update_ids_are_rejected_or_resynced_and_counted() {
    let mut s = Synced::new();
    let before = s.book().unwrap();
    let last = s.last_id();

    // u < U: impossible; not applied, and a synced book that cannot apply a diff no longer
    // follows the venue: it is discarded, announced, and a REST refetch requested.
    let text = s.hostile(|d| {
        d["U"] = json!(last + 5);
        d["u"] = json!(last + 1);
    });
    let out = s.send(&text).unwrap();
    assert_eq!(out.rejected, Some("u_before_U"));
    assert!(out.need_snapshot && out.gap.is_none());
    assert!(!s.keeper.is_synced(SYMBOL));
    let ev = feed_events(&out.records);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].reason.as_str(), ev[0].action.as_str()),
        (
            Kind::RejectedUpdate as i32,
            "u_before_U; book discarded",
            "rest_refetch"
        )
    );
    // Nothing of it reached the book: the venue's book at `before` resyncs it.
    s.resync(&before);
    assert_eq!(s.book().unwrap(), before);

    // u = i64::MAX from the right U: a span no 100 ms diff has.
    let text = s.hostile(|d| {
        d["U"] = json!(last + 1);
        d["u"] = json!(i64::MAX);
    });
    let out = s.send(&text).unwrap();
    assert_eq!(out.rejected, Some("implausible_span"));
    assert!(out.need_snapshot && !s.keeper.is_synced(SYMBOL));
    s.resync(&before);
    // U = i64::MIN: the span overflows i64.
    let text = s.hostile(|d| d["U"] = json!(i64::MIN));
    let out = s.send(&text).unwrap();
    assert_eq!(out.rejected, Some("implausible_span"));
    assert!(out.need_snapshot && !s.keeper.is_synced(SYMBOL));
    s.resync(&before);
    assert_eq!(s.book().unwrap(), before);

    // Ids past i64 are not ids: a typed parse error.
    for big in ["9223372036854775808", "1e30", "-9223372036854775809"] {
        let text = s
            .hostile(|d| d["u"] = json!(0))
            .replace(r#""u":0"#, &format!(r#""u":{big}"#));
        assert!(text.contains(big));
        assert_eq!(s.send(&text).unwrap_err().kind(), "malformed", "{text}");
    }
    assert_eq!(s.book().unwrap(), before);

    // Still in place: the due diff continues the book.
    let out = s.genuine();
    assert_eq!(out.records.len(), 1);
    assert!(out.rejected.is_none() && out.gap.is_none());

    // U = u = i64::MAX: continuity broken. The book is discarded, a gap event says which id
    // was due and which came, and a REST refetch is requested.
    let last = s.last_id();
    let text = s.hostile(|d| {
        d["U"] = json!(i64::MAX);
        d["u"] = json!(i64::MAX);
    });
    let out = s.send(&text).unwrap();
    assert_eq!(out.gap, Some((last + 1, i64::MAX)));
    assert!(out.need_snapshot);
    assert!(!s.keeper.is_synced(SYMBOL));
    let ev = feed_events(&out.records);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, Kind::Gap as i32);
    assert_eq!(
        (ev[0].expected_id, ev[0].got_id, ev[0].action.as_str()),
        (Some(last + 1), Some(i64::MAX), "rest_refetch")
    );
    assert_eq!(s.errors, BTreeMap::from([("malformed", 3)]));
}

/// After the gap above, the feed fetches a new snapshot and the diffs that follow it bridge
/// onto it: the book must be in sync again. The diff with the impossible id is still in the
/// snapshot-wait buffer, ahead of the genuine ones.
#[test]
fn after_an_impossible_id_the_next_snapshot_resyncs_the_book() {
    let mut s = Synced::new();
    let synced_at = s.book().unwrap();
    let text = s.hostile(|d| {
        d["U"] = json!(i64::MAX);
        d["u"] = json!(i64::MAX);
    });
    assert!(s.send(&text).unwrap().need_snapshot);
    // The genuine diffs keep coming (buffered) while the snapshot is fetched.
    for _ in 0..5 {
        assert!(s.genuine().need_snapshot);
    }
    // The venue's book at the point it was synced (a snapshot the buffer bridges).
    let snap = Snapshot {
        last_update_id: synced_at.last_update_id.unwrap(),
        bids: synced_at
            .bids
            .iter()
            .map(|l| (l.price.clone(), l.quantity.clone()))
            .collect(),
        asks: synced_at
            .asks
            .iter()
            .map(|l| (l.price.clone(), l.quantity.clone()))
            .collect(),
        checksum: None,
    };
    let out = s.keeper.on_snapshot(SYMBOL, &snap, 2).unwrap();
    assert!(out.synced, "{:?}", out.gap);
    assert!(s.keeper.is_synced(SYMBOL));
}

#[test]
fn deep_nesting_is_a_typed_error_not_a_stack_overflow() {
    let mut s = Synced::new();
    let deep_arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_objects = format!("{}1{}", r#"{"x":"#.repeat(10_000), "}".repeat(10_000));
    // (frame, the error kind and a piece of its message; `None`: the frame parses).
    let frames: [(String, Option<(&str, &str)>); 6] = [
        // The whole frame: refused at its first byte (not an object).
        (
            deep_arrays.clone(),
            Some(("malformed", "invalid type: sequence")),
        ),
        // Nested objects under an unknown key: skipped without recursion, no event type.
        (
            deep_objects.clone(),
            Some(("unsupported", "event without type")),
        ),
        // As the levels of a diff: refused where a level's price is due.
        (
            s.hostile(|d| d["b"] = json!(0))
                .replace(r#""b":0"#, &format!(r#""b":{deep_arrays}"#)),
            Some(("malformed", "invalid type: sequence")),
        ),
        // As the envelope's payload (the general path: not an object).
        (
            format!(r#"{{"data":{deep_arrays},"stream":"nknusdt@depth@100ms"}}"#),
            Some(("malformed", "")),
        ),
        // As a subscription answer's id (a JSON value): serde_json's recursion limit.
        (
            format!(r#"{{"result":null,"id":{deep_arrays}}}"#),
            Some(("malformed", "recursion limit exceeded")),
        ),
        // In a key the parser ignores: skipped, and the diff around it is the due one.
        (
            s.hostile(|d| d["zz"] = json!(0))
                .replace(r#""zz":0"#, &format!(r#""zz":{deep_objects}"#)),
            None,
        ),
    ];
    for (text, expected) in &frames {
        match (s.send(text), expected) {
            (Err(err), Some((kind, says))) => {
                assert_eq!(err.kind(), *kind, "{err}");
                assert!(err.to_string().contains(says), "{err}");
            }
            (Ok(out), None) => {
                // Applied as the recorded diff it carries: one delta, nothing else.
                assert_eq!(out.records.len(), 1);
                assert!(out.rejected.is_none() && out.gap.is_none() && !out.need_snapshot);
            }
            (got, _) => panic!("{got:?}, expected {expected:?}"),
        }
    }
    assert_eq!(
        s.errors,
        BTreeMap::from([("malformed", 4), ("unsupported", 1)])
    );
    s.next += 1;
    let out = s.genuine();
    assert_eq!(out.records.len(), 1, "the book continues");
}
/// `n` distinct bid levels `0.1xxxxxxx` (below NKN's asks, so the book is not crossed).
fn many_levels(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!([format!("0.1{i:07}"), "1.00000000"]))
            .collect(),
    )
}

#[test]
fn a_million_level_diff_keeps_the_snapshot_wait_buffer_within_its_byte_cap() {
    let s = Synced::new();
    let text = s.hostile(|d| d["b"] = many_levels(1_000_000));
    assert!(text.len() > DEFAULT_BUFFER_BYTES, "{}", text.len());
    let diff = only_diff(parse(&text).unwrap());
    assert_eq!(diff.bids.len(), 1_000_000);
    let mut sync = BookSync::new(Arc::new(Rules::Spot), 50_000);
    assert_eq!(sync.on_diff(diff).unwrap(), Step::Buffered);
    let (n, bytes) = sync.buffered();
    assert!(
        bytes <= DEFAULT_BUFFER_BYTES,
        "{n} diffs of {bytes} bytes buffered (cap {DEFAULT_BUFFER_BYTES})"
    );
    // Not kept at all (it alone exceeds the cap), and counted as an overflow.
    assert_eq!((n, bytes), (0, 0));
    assert_eq!(sync.take_overflowed(), 1);
}

#[test]
fn a_million_level_diff_leaves_a_depth_capped_book_at_its_depth() {
    // Kraken's book is a window of the subscribed depth (10 here): whatever one update adds,
    // the book keeps 10 levels per side.
    let mut sync = BookSync::new(Arc::new(KrakenBook::new(10)), 1);
    let side = |base: u32| -> Vec<(String, String)> {
        (0..10)
            .map(|i| (format!("{}.0", base + i), "1.0".to_string()))
            .collect()
    };
    let snap = Snapshot {
        bids: side(100),
        asks: side(200),
        ..Snapshot::default()
    };
    assert_eq!(sync.on_snapshot(&snap).unwrap(), Step::Synced);
    let mut bids = Levels::default();
    for i in 0..1_000_000 {
        bids.push(&format!("150.{i:07}"), "2.5");
    }
    let step = sync
        .on_diff(Diff {
            bids,
            ..Diff::default()
        })
        .unwrap();
    assert_eq!(step, Step::Applied);
    assert_eq!(sync.book().len(), (10, 10));
    let (best_bids, best_asks) = sync.book().levels(Some(1));
    assert_eq!(best_bids[0].price, "150.0999999");
    assert_eq!(best_asks[0].price, "200.0");
}

fn spec() -> SessionSpec {
    SessionSpec {
        subscriptions: Vec::new(),
        symbols: map(),
        book_depth: 1000,
        ws_url: String::new(),
    }
}

#[test]
fn invalid_utf8_in_a_binary_frame_is_a_typed_error() {
    let recorded = recorded_diffs()[1].to_string().into_bytes();
    let mut bad = recorded.clone();
    bad[10] = 0xFF;
    bad[11] = 0xFE;
    assert!(std::str::from_utf8(&bad).is_err());
    let venues: [Box<dyn Venue>; 2] = [Box::new(Binance::spot()), Box::new(Kraken::new())];
    for venue in venues {
        let mut session = venue.session(spec());
        for frame in [&bad[..], &[0xC3, 0x28][..], &[0xFF; 64][..], &recorded[..]] {
            let mut out = Vec::new();
            let err = session
                .on_frame(Frame::Binary(frame), 1, &mut out)
                .unwrap_err();
            assert!(
                matches!(&err, ParseError::Unsupported(what) if what == "binary frame"),
                "{}: {err}",
                venue.name()
            );
            assert!(!err.is_terminal());
            assert!(out.is_empty());
        }
    }
}

/// Every recorded Binance line, cut at ~150 points and with bytes overwritten at ~40 points:
/// each cut is a `malformed` error; each overwrite gives records or a typed error; overwrites
/// that leave invalid UTF-8 arrive as binary frames and are refused as such; a depth diff that
/// parses goes into a synced book and gives a step, never a panic.
#[test]
fn mutated_recorded_frames_give_typed_errors_or_records() {
    let wide = SymbolMap::new(
        [
            "NKNUSDT",
            "ETHUSDT",
            "BTCUSDT",
            "SUSHIUSDT",
            "LRCBTC",
            "BNBBTC",
        ]
        .map(|s| (s.to_string(), format!("{s}-X"))),
    );
    let snap = snapshot();
    let (mut cuts, mut flips, mut binary, mut book_steps) = (0u64, 0u64, 0u64, 0u64);
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().take(5) {
            assert!(line.is_ascii());
            let bytes = line.as_bytes();
            for venue in [Binance::spot(), Binance::usdm()] {
                // A proper prefix of a JSON object is never JSON.
                for i in (0..bytes.len()).step_by((bytes.len() / 150).max(1)) {
                    let mut out = Vec::new();
                    let err = venue.parse(&line[..i], 0, &wide, &mut out).unwrap_err();
                    assert_eq!(err.kind(), "malformed", "{line} cut at {i}: {err}");
                    assert!(out.is_empty());
                    cuts += 1;
                }
                let mut session = venue.session(SessionSpec {
                    symbols: wide.clone(),
                    ..spec()
                });
                for i in (0..bytes.len()).step_by((bytes.len() / 40).max(1)) {
                    for flip in [b'"', b'{', b'}', b'9', b'-', b'.', 0xFF, b'e'] {
                        let mut v = bytes.to_vec();
                        v[i] = flip;
                        let mut out = Vec::new();
                        let result = match std::str::from_utf8(&v) {
                            Ok(s) => {
                                flips += 1;
                                session.on_frame(Frame::Text(s), 0, &mut out)
                            }
                            Err(_) => {
                                binary += 1;
                                let r = session.on_frame(Frame::Binary(&v), 0, &mut out);
                                assert!(
                                    matches!(&r, Err(ParseError::Unsupported(w)) if w == "binary frame"),
                                    "{r:?}"
                                );
                                r
                            }
                        };
                        match result {
                            Ok(()) => assert!(!out.is_empty(), "Ok without an event"),
                            Err(e) => {
                                assert!(out.is_empty(), "an error after events: {out:?}");
                                *kinds.entry(e.kind()).or_default() += 1;
                            }
                        }
                        for ev in out {
                            if let VenueEvent::Diff { symbol, diff } = ev {
                                if &*symbol != "NKNUSDT-X" {
                                    continue;
                                }
                                let mut sync = BookSync::new(Arc::new(Rules::Spot), 8);
                                assert_eq!(sync.on_snapshot(&snap).unwrap(), Step::Synced);
                                // The parser checked every decimal: the book takes the diff.
                                let step = sync.on_diff(diff).unwrap();
                                assert!(
                                    matches!(
                                        step,
                                        Step::Applied
                                            | Step::Dropped
                                            | Step::Gap { .. }
                                            | Step::Rejected(_)
                                            | Step::Broken(_)
                                    ),
                                    "{step:?}"
                                );
                                book_steps += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "cuts {cuts}, flips {flips}, binary {binary}, book steps {book_steps}, errors {kinds:?}"
    );
    assert!(cuts > 5_000, "{cuts}");
    assert!(binary > 1_000, "{binary}");
    assert!(book_steps > 50, "{book_steps}");
    // Flips that break the JSON, a decimal or the symbol are each seen, typed.
    for kind in ["malformed", "bad_decimal", "unknown_symbol"] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 10,
            "{kind}: {kinds:?}"
        );
    }
}
