//! `tickflow audit` against the real broker and registry: a stream produced by hand (a
//! `SYNCED` event, three contiguous Binance-style diffs, trades) audits clean; the same
//! records copied by the test to another prefix without one diff, and with one trade twice,
//! audit as one unannounced break and one duplicate, and the command exits non-zero; a
//! Binance replay through the service audits clean, its periodic full books equal to the books
//! rebuilt from the ones before; a full book that the records before it do not rebuild is
//! reported with the level that differs.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tickflow::audit::books::BookMismatch;
use tickflow::audit::check::{Break, Interval};
use tickflow::audit::{self, AuditRange};
use tickflow::config::{Config, FeedConfig};
use tickflow::embed::ProducerSystem;
use tickflow::producer::ProduceEvent;
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::{FeedEvent, Level2Book, Level2Delta, Normalized, Trade};
use tickflow::service::Service;
use tickflow::venues::Channel;

/// A Binance spot diff `U..=u` of BTC-USDT received at `t` µs.
fn diff(first: i64, last: i64, t: i64) -> Normalized {
    Normalized::Level2Delta(Level2Delta {
        exchange: "BINANCE".into(),
        symbol: "BTC-USDT".into(),
        bids: vec![tickflow::schema::v2beta1::level2_delta::PriceLevel {
            price: "97000.10".into(),
            quantity: "0.5".into(),
        }],
        first_update_id: Some(first),
        last_update_id: Some(last),
        sequence: Some(last),
        receipt_time: t,
        ..Level2Delta::default()
    })
}

/// A full BTC-USDT book at update id `id`, bids and asks as (price, quantity).
fn book(id: i64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Normalized {
    let lv = |v: &[(&str, &str)]| {
        v.iter()
            .map(
                |(p, q)| tickflow::schema::v2beta1::level2_book::PriceLevel {
                    price: p.to_string(),
                    quantity: q.to_string(),
                },
            )
            .collect()
    };
    Normalized::Level2Book(Level2Book {
        exchange: "BINANCE".into(),
        symbol: "BTC-USDT".into(),
        bids: lv(bids),
        asks: lv(asks),
        last_update_id: Some(id),
        receipt_time: 1_733_000_000_000_000,
        ..Level2Book::default()
    })
}

fn trade(id: &str) -> Normalized {
    Normalized::Trade(Trade {
        exchange: "BINANCE".into(),
        symbol: "BTC-USDT".into(),
        trade_id: id.into(),
        price: "97000.10".into(),
        amount: "0.001".into(),
        timestamp: 1_733_000_000_000_000,
        ..Trade::default()
    })
}

/// The hand-made stream: synced at update id 100, then diffs 101..=104, 105..=110,
/// 111..=111; trades 1, 2, 3.
async fn produce_stream(cfg: &Config) {
    let synced = Normalized::FeedEvent(FeedEvent {
        exchange: "BINANCE".into(),
        symbol: "BTC-USDT".into(),
        kind: Kind::Synced as i32,
        reason: "book built from a REST snapshot".into(),
        got_id: Some(100),
        data_type: "level2_book".into(),
        timestamp: 1_733_000_000_000_000,
        receipt_time: 1_733_000_000_000_000,
        ..FeedEvent::default()
    });
    let records = vec![
        synced,
        diff(101, 104, 1_733_000_000_000_100),
        diff(105, 110, 1_733_000_000_000_200),
        diff(111, 111, 1_733_000_000_000_300),
        trade("1"),
        trade("2"),
        trade("3"),
    ];
    let system = ProducerSystem::start(cfg.clone()).unwrap();
    // One at a time: each diff is acknowledged before the next is sent (the order is kept).
    for r in records {
        system.produce(ProduceEvent::typed(r)).await.expect("acked");
    }
    system.shutdown().await;
}

/// Every diff above sets 97000.10 to 0.5: from the book at 100 (bids 97000.10 × 0.1,
/// 96999.00 × 2; asks 97001.00 × 1) the venue's book at 111 is bids 97000.10 × 0.5,
/// 96999.00 × 2, asks 97001.00 × 1. A book at 111 saying 96999.00 × 3 is not what the records
/// rebuild, and the audit names that level.
#[actix_rt::test]
async fn a_full_book_the_records_before_it_do_not_rebuild_is_reported() {
    common::init_logs();
    for (prefix, at_111, clean) in [
        ("auditbook-ok", ("96999.00", "2.00"), true),
        ("auditbook-bad", ("96999.00", "3"), false),
    ] {
        let mut cfg = common::test_config(prefix);
        cfg.producer.partitions = 1;
        let records = vec![
            book(
                100,
                &[("97000.10", "0.1"), ("96999.00", "2")],
                &[("97001.00", "1")],
            ),
            diff(101, 104, 1_733_000_000_000_100),
            diff(105, 110, 1_733_000_000_000_200),
            diff(111, 111, 1_733_000_000_000_300),
            book(111, &[("97000.10", "0.5"), at_111], &[("97001.00", "1")]),
        ];
        let system = ProducerSystem::start(cfg.clone()).unwrap();
        for r in records {
            system.produce(ProduceEvent::typed(r)).await.expect("acked");
        }
        system.shutdown().await;
        let a = audit::run(&cfg, &AuditRange::default()).unwrap();
        let b = &a.report.symbols["BINANCE:BTC-USDT"].books;
        assert_eq!((b.compared, b.not_comparable), (1, 0), "{prefix}: {b:?}");
        assert_eq!(a.clean, clean, "{prefix}: {a:?}");
        if clean {
            assert_eq!(b.agreed, 1);
        } else {
            assert_eq!(a.report.book_mismatches, 1);
            assert_eq!(
                b.mismatches,
                vec![BookMismatch {
                    last_update_id: 111,
                    at: (0, 1),
                    from: (0, 0),
                    first_difference: (
                        "bid".into(),
                        "96999.00".into(),
                        Some("3".into()),
                        Some("2".into())
                    ),
                }]
            );
        }
    }
}

#[actix_rt::test]
async fn a_hand_made_stream_audits_clean_and_a_removed_diff_is_reported() {
    common::init_logs();
    let mut cfg = common::test_config("audit");
    cfg.producer.partitions = 1;
    produce_stream(&cfg).await;

    let clean = audit::run(&cfg, &AuditRange::default()).unwrap();
    assert!(clean.clean, "{clean:?}");
    let s = &clean.report.symbols["BINANCE:BTC-USDT"];
    assert_eq!(
        s.intervals,
        vec![Interval {
            ids: (101, 111),
            receipt_us: (1_733_000_000_000_100, 1_733_000_000_000_300),
            deltas: 3,
            from_synced: true,
        }]
    );
    assert!(s.breaks.is_empty());
    assert_eq!(s.trades, 3);
    assert_eq!(s.feed_events["SYNCED"], 1);

    // The same records under another prefix, copied by the test: without the diff 105..=110
    // (offset 1 of the delta topic), and with trade "2" (offset 1) written twice.
    let (file, copy_prefix) = common::config_file("auditcopy");
    let kafka = common::kafka_addr();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka)
        .create()
        .unwrap();
    for (dt, n, skip, twice) in [
        ("level2_delta", 3, Some(1), None),
        ("feed_event", 1, None, None),
        ("trade", 3, None, Some(1)),
    ] {
        let from = format!("{}.{dt}", cfg.producer.topic_prefix);
        let to = format!("{copy_prefix}.{dt}");
        common::create_topics(&kafka, &[&to], 1).await;
        let records = common::consume(&kafka, &from, 1, n, Duration::from_secs(10));
        assert_eq!(records.len(), n, "{from}");
        for r in &records {
            if Some(r.offset) == skip {
                continue;
            }
            let copies = if Some(r.offset) == twice { 2 } else { 1 };
            for _ in 0..copies {
                let mut rec = FutureRecord::<[u8], [u8]>::to(&to).payload(r.value.as_slice());
                if let Some(k) = &r.key {
                    rec = rec.key(k.as_slice());
                }
                producer.send(rec, Duration::from_secs(10)).await.unwrap();
            }
        }
    }
    let mut copy_cfg = cfg.clone();
    copy_cfg.producer.topic_prefix = copy_prefix.clone();
    let broken = audit::run(&copy_cfg, &AuditRange::default()).unwrap();
    assert!(!broken.clean);
    assert_eq!(broken.report.unannounced_breaks, 1);
    assert_eq!(broken.report.duplicate_trades, 1);
    let s = &broken.report.symbols["BINANCE:BTC-USDT"];
    assert_eq!(
        s.breaks,
        vec![Break {
            after_id: Some(104),
            first_id: Some(111),
            // The copy of diff 111..=111 is the second record of the copied topic.
            at: (0, 1),
            between_us: (1_733_000_000_000_100, 1_733_000_000_000_300),
            announced_by: vec![],
        }]
    );
    assert_eq!(s.duplicate_trades.len(), 1);
    assert_eq!(
        s.duplicate_trades[0].trade,
        (String::new(), "2".to_string())
    );
    assert_eq!(s.duplicate_trades[0].at, vec![(0, 1), (0, 2)]);

    // The command says so: exit code 1, the report on stdout.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args(["audit", "--config"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["unannounced_breaks"], 1);
    assert_eq!(report["clean"], false);
}

const FIXTURES: &str = "tests/fixtures/binance";
const BOOK_SYMBOLS: [&str; 4] = ["NKN-USDT", "LRC-BTC", "BLZ-ETH", "RUNE-EUR"];
const VENUE_SYMBOLS: [&str; 4] = ["NKNUSDT", "LRCBTC", "BLZETH", "RUNEEUR"];

/// Frames of the recording the feed below subscribes to.
fn subscribed_frames() -> u64 {
    let mut n = 0;
    for file in [
        "binance_depthUpdate.jsonl",
        "binance_trade.jsonl",
        "binance_aggTrade.jsonl",
    ] {
        for line in std::fs::read_to_string(format!("{FIXTURES}/{file}"))
            .unwrap()
            .lines()
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if VENUE_SYMBOLS.contains(&v["data"]["s"].as_str().unwrap()) {
                n += 1;
            }
        }
    }
    n
}

#[actix_rt::test]
async fn a_binance_replay_through_the_service_audits_clean() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: FIXTURES.into(),
        speed: 0.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let url = replay.addr.to_string();
    let mut cfg = common::test_config("audit-replay");
    cfg.feeds = vec![FeedConfig {
        venue: "binance".into(),
        symbols: BOOK_SYMBOLS.iter().map(|s| s.to_string()).collect(),
        channels: vec![Channel::Depth, Channel::Trade, Channel::AggTrade],
        ws_url: Some(format!("ws://{url}")),
        rest_url: Some(format!("http://{url}")),
        snapshot_interval: Duration::from_millis(10),
        // A full book every 3 diffs: the audit rebuilds each from the one before.
        book_snapshot_every: 3,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = Service::start(cfg.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), replay.finished())
        .await
        .expect("replay played");
    let sum = |f: fn(&tickflow::feed::FeedStats) -> &std::sync::atomic::AtomicU64| -> u64 {
        service
            .feeds
            .iter()
            .map(|x| f(&x.stats).load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    };
    let frames = subscribed_frames();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Every frame read, every book synced.
    while sum(|s| &s.frames) < frames || sum(|s| &s.syncs) < BOOK_SYMBOLS.len() as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the books did not sync"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.shutdown().await;
    // Every book's SYNCED is readable in Kafka before the audit reads (the audit must then
    // see all of them).
    let events_topic = format!("{}.feed_event", cfg.producer.topic_prefix);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let synced: std::collections::BTreeSet<String> = common::consume(
            &common::kafka_addr(),
            &events_topic,
            cfg.producer.partitions,
            1_000,
            Duration::from_secs(3),
        )
        .iter()
        .filter_map(|r| {
            let f = tickflow::schema::wire::parse(&r.value).unwrap();
            match Normalized::decode(tickflow::schema::DataType::FeedEvent, f.payload).unwrap() {
                Normalized::FeedEvent(e) if e.kind == Kind::Synced as i32 => Some(e.symbol),
                _ => None,
            }
        })
        .collect();
        if BOOK_SYMBOLS.iter().all(|s| synced.contains(*s)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SYNCED in Kafka for {synced:?} only"
        );
    }

    let a = audit::run(&cfg, &AuditRange::default()).unwrap();
    assert!(a.clean, "{}", serde_json::to_string_pretty(&a).unwrap());
    assert_eq!(a.undecodable, 0);
    // The chains were checked, not skipped: the recording's diffs are in the intervals.
    let checked: u64 = a
        .report
        .symbols
        .values()
        .flat_map(|r| &r.intervals)
        .map(|i| i.deltas)
        .sum();
    assert!(checked > 0, "no delta checked");
    // The periodic full books were rebuilt from the ones before them and agreed.
    let compared: u64 = a.report.symbols.values().map(|r| r.books.compared).sum();
    let agreed: u64 = a.report.symbols.values().map(|r| r.books.agreed).sum();
    assert!(compared > 0, "no book compared");
    assert_eq!(agreed, compared);
    assert_eq!(
        a.report
            .symbols
            .values()
            .map(|r| r.unchecked_deltas)
            .sum::<u64>(),
        0,
        "Binance diffs carry update ids"
    );
    // Every book synced, and its deltas (if any) are one interval from that SYNCED.
    for s in BOOK_SYMBOLS {
        let r = a
            .report
            .symbols
            .get(&format!("BINANCE:{s}"))
            .unwrap_or_else(|| {
                let events = common::consume(
                    &common::kafka_addr(),
                    &format!("{}.feed_event", cfg.producer.topic_prefix),
                    3,
                    1_000,
                    Duration::from_secs(3),
                );
                panic!(
                    "{s}: {:?}, read {:?}; feed_event holds {} records",
                    a.report.symbols.keys(),
                    a.read,
                    events.len()
                )
            });
        assert!(
            r.feed_events.get("SYNCED").copied().unwrap_or(0) >= 1,
            "{s}: {r:?}"
        );
        assert!(r.breaks.is_empty(), "{s}: {:?}", r.breaks);
        assert!(r.intervals.iter().all(|i| i.from_synced), "{s}: {r:?}");
    }
}
