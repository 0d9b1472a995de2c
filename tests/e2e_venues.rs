//! End to end per venue built on the framework: the replay server plays recorded real messages,
//! the service ingests them over WebSocket, and what reached Kafka is consumed, decoded and
//! checked: Kraken books rebuilt here from each `Level2Book` and the deltas after it agree with
//! Kraken's checksum on every delta (CRC32 computed here, independently of the service), a
//! dropped connection is reconnected, resubscribed, announced and duplicates nothing; COIN-M
//! records equal the values typed from Binance's documentation.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod books;
mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use books::{kraken_crc, set, truncate, Side, KRAKEN_PAIRS};
use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::v2beta1::trade;
use tickflow::schema::{DataType, Normalized};
use tickflow::venues::Channel;

#[actix_rt::test]
async fn kraken_books_keep_the_venue_checksum_through_a_dropped_connection() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "kraken".into(),
        fixtures: "tests/fixtures/kraken".into(),
        // Mid-stream: books are in sync and updates flowing when the connection drops.
        drop_after_frames: 2_000,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("e2ekraken");
    cfg.feeds = vec![FeedConfig {
        venue: "kraken".into(),
        symbols: KRAKEN_PAIRS.iter().map(|s| s.to_string()).collect(),
        channels: vec![Channel::Depth, Channel::Trade, Channel::Ticker],
        // Not `/v2`: the recordings are WebSocket v1.
        ws_url: Some(format!("ws://{}", replay.addr)),
        snapshot_limit: 1000,
        book_snapshot_every: 0,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(300),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = common::run_replayed(cfg.clone(), &replay, Duration::from_secs(90)).await;
    common::assert_reconnected_once(&service);

    // Rebuild every book from its Level2Book and the deltas after it, in Kafka order (one
    // partition per symbol key), and check Kraken's checksum after every delta.
    let mut records: Vec<Normalized> = common::decoded(&cfg, DataType::Level2Book);
    records.extend(common::decoded(&cfg, DataType::Level2Delta));
    records.sort_by_key(|r| match r {
        Normalized::Level2Book(b) => (b.symbol.clone(), b.receipt_time, 0),
        Normalized::Level2Delta(d) => (d.symbol.clone(), d.receipt_time, 1),
        _ => unreachable!(),
    });
    let mut books: HashMap<String, (Side, Side)> = HashMap::new();
    let (mut checked, mut full_books) = (0, HashMap::<String, usize>::new());
    for r in &records {
        match r {
            Normalized::Level2Book(b) => {
                let (mut bids, mut asks) = (Side::new(), Side::new());
                for l in &b.bids {
                    set(&mut bids, &l.price, &l.quantity);
                }
                for l in &b.asks {
                    set(&mut asks, &l.price, &l.quantity);
                }
                assert_eq!(
                    b.checksum.as_deref(),
                    Some(kraken_crc(&bids, &asks).to_string().as_str()),
                    "{}",
                    b.symbol
                );
                assert_eq!(
                    (b.sequence, b.last_update_id),
                    (None, None),
                    "Kraken has no ids"
                );
                *full_books.entry(b.symbol.clone()).or_default() += 1;
                books.insert(b.symbol.clone(), (bids, asks));
            }
            Normalized::Level2Delta(d) => {
                let (bids, asks) = books
                    .get_mut(&d.symbol)
                    .unwrap_or_else(|| panic!("a delta of {} before its book", d.symbol));
                for l in &d.bids {
                    set(bids, &l.price, &l.quantity);
                }
                for l in &d.asks {
                    set(asks, &l.price, &l.quantity);
                }
                // The subscribed depth is a window: levels past 1000 are gone.
                truncate(bids, asks, 1000);
                let venue: u32 = d.checksum.as_deref().unwrap().parse().unwrap();
                assert_eq!(venue, kraken_crc(bids, asks), "{} delta {:?}", d.symbol, d);
                checked += 1;
            }
            _ => unreachable!(),
        }
    }
    assert!(checked > 1_000, "deltas flowed: {checked}");
    // Every pair synced; the reconnect resynced the ones streaming then (a second full book).
    assert_eq!(full_books.len(), KRAKEN_PAIRS.len(), "{full_books:?}");
    assert!(full_books.values().any(|n| *n >= 2), "{full_books:?}");

    // The drop is announced, and every book that synced again says so.
    let events: Vec<_> = common::decoded(&cfg, DataType::FeedEvent)
        .into_iter()
        .map(|r| match r {
            Normalized::FeedEvent(e) => e,
            _ => unreachable!(),
        })
        .collect();
    assert!(events
        .iter()
        .any(|e| e.kind == Kind::Reconnect as i32 && e.since.is_some()));
    assert!(
        events
            .iter()
            .all(|e| e.kind != Kind::ChecksumMismatch as i32),
        "{events:?}"
    );
    let synced = events
        .iter()
        .filter(|e| e.kind == Kind::Synced as i32)
        .count();
    assert_eq!(synced, full_books.values().sum::<usize>());

    kraken_audit(&cfg, checked, full_books.values().sum::<usize>() as u64).await;

    // Trades: each recorded trade at most once; the first one as Kraken documents it.
    let trades: Vec<_> = common::decoded(&cfg, DataType::Trade)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let mut seen = HashSet::new();
    for t in &trades {
        assert!(
            seen.insert((
                t.symbol.clone(),
                t.timestamp,
                t.price.clone(),
                t.amount.clone()
            )),
            "duplicate {t:?}"
        );
    }
    // Tickers: Kraken v1 sends today's and the last 24 hours' figures; the record carries the
    // 24 h ones. [996,{"a":["355.24000000",..],"b":["354.32000000",..],"c":["355.23000000",..],
    // "v":[..,"33470.74135600"],"l":[..,"333.87000000"],"h":[..,"368.00000000"],
    // "o":[..,"335.21000000"]},"ticker","XMR/USD"]
    let tickers: Vec<_> = common::decoded(&cfg, DataType::Ticker)
        .into_iter()
        .map(|r| match r {
            Normalized::Ticker(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let t = tickers
        .iter()
        .find(|t| t.symbol == "XMR-USD" && t.bid == "354.32000000")
        .unwrap_or_else(|| panic!("XMR ticker missing: {tickers:?}"));
    assert_eq!(
        (
            t.exchange.as_str(),
            t.ask.as_str(),
            t.last.as_str(),
            t.open.as_str(),
            t.high.as_str(),
            t.low.as_str(),
            t.volume.as_str()
        ),
        (
            "KRAKEN",
            "355.24000000",
            "355.23000000",
            "335.21000000",
            "368.00000000",
            "333.87000000",
            "33470.74135600"
        )
    );

    // [993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]:
    // a taker sell ("s") at a limit ("l") order's price; time in seconds with 6 decimals.
    let t = trades
        .iter()
        .find(|t| t.timestamp == 1_618_678_142_557_535)
        .unwrap_or_else(|| panic!("first XMR trade missing: {trades:?}"));
    assert_eq!(
        (
            t.exchange.as_str(),
            t.symbol.as_str(),
            t.side,
            t.price.as_str(),
            t.amount.as_str()
        ),
        (
            "KRAKEN",
            "XMR-USD",
            trade::Side::Sell as i32,
            "354.11000000",
            "0.89594024"
        )
    );
}

#[actix_rt::test]
async fn coin_m_records_reach_kafka_as_binance_documents_them() {
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance_coinm".into(),
        fixtures: "tests/fixtures/binance_coinm".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("e2ecoinm");
    cfg.feeds = vec![FeedConfig {
        venue: "binance_coinm".into(),
        // A quarterly and a perpetual; their venue symbols come from the replayed
        // exchangeInfo (BTCUSD_210625, BTCUSD_PERP).
        symbols: vec!["BTC-USD-20210625".into(), "BTC-USD-PERP".into()],
        channels: vec![Channel::AggTrade],
        ws_url: Some(format!("ws://{}", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = common::run_replayed(cfg.clone(), &replay, Duration::from_secs(90)).await;
    assert_eq!(service.feeds.len(), 1);
    let mut trades: Vec<_> = common::decoded(&cfg, DataType::Trade)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => t,
            _ => unreachable!(),
        })
        .collect();
    trades.sort_by_key(|t| t.timestamp);
    let got: Vec<_> = trades
        .iter()
        .map(|t| {
            (
                t.exchange.as_str(),
                t.symbol.as_str(),
                t.side,
                t.trade_id.as_str(),
                t.price.as_str(),
                t.amount.as_str(),
                t.timestamp,
                t.match_id.as_deref(),
            )
        })
        .collect();
    // aggTrade `m: true`: the buyer was the maker, the taker sold; `q` in contracts; ms → µs.
    let sell = trade::Side::Sell as i32;
    assert_eq!(
        got,
        vec![
            (
                "BINANCE_DELIVERY",
                "BTC-USD-20210625",
                sell,
                "5091038",
                "62838.0",
                "5",
                1_616_201_787_407_000,
                Some("7621250-7621250")
            ),
            (
                "BINANCE_DELIVERY",
                "BTC-USD-PERP",
                sell,
                "41045788",
                "58570.1",
                "58",
                1_616_201_883_304_000,
                Some("91864326-91864327")
            ),
        ]
    );
}

/// `tickflow audit` on the Kraken records above: it rebuilds every book from the records and
/// checks Kraken's checksum on every full book and delta (`checked_here` deltas and `books`
/// full books, counted by the test's own rebuild), and finds the stream clean; the same
/// records copied by the test to another prefix without one delta that changed the top of its
/// book audit as exactly one unannounced checksum mismatch, at that symbol's next delta.
async fn kraken_audit(cfg: &tickflow::config::Config, checked_here: u64, books: u64) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use tickflow::audit::{self, AuditRange};

    let a = audit::run(cfg, &AuditRange::default()).unwrap();
    assert!(a.clean, "{}", serde_json::to_string_pretty(&a).unwrap());
    let checksums: Vec<_> = a.report.symbols.values().map(|r| &r.checksums).collect();
    let checked: u64 = checksums.iter().map(|c| c.checked).sum();
    assert_eq!(checked, checked_here + books);
    assert_eq!(checksums.iter().map(|c| c.agreed).sum::<u64>(), checked);

    // The delta to remove: one that changed its symbol's checksum (the top of the book), whose
    // next delta of that symbol touches none of its prices.
    let kafka = common::kafka_addr();
    let topic = |prefix: &str, dt: DataType| format!("{prefix}.{}", dt.as_str());
    let deltas = common::consume_to_end(
        &kafka,
        &topic(&cfg.producer.topic_prefix, DataType::Level2Delta),
        Duration::from_secs(60),
    );
    let decoded: Vec<tickflow::schema::Level2Delta> = deltas
        .iter()
        .map(|r| {
            let f = tickflow::schema::wire::parse(&r.value).unwrap();
            match Normalized::decode(DataType::Level2Delta, f.payload).unwrap() {
                Normalized::Level2Delta(d) => d,
                _ => unreachable!(),
            }
        })
        .collect();
    let full: Vec<(String, i64)> = common::decoded(cfg, DataType::Level2Book)
        .into_iter()
        .map(|r| match r {
            Normalized::Level2Book(b) => (b.symbol, b.receipt_time),
            _ => unreachable!(),
        })
        .collect();
    let prices = |d: &tickflow::schema::Level2Delta| -> HashSet<String> {
        d.bids
            .iter()
            .chain(&d.asks)
            .map(|l| l.price.clone())
            .collect()
    };
    let of_symbol = |i: usize| -> Vec<usize> {
        (0..decoded.len())
            .filter(|j| {
                decoded[*j].symbol == decoded[i].symbol
                    && deltas[*j].partition == deltas[i].partition
            })
            .collect()
    };
    let (removed, next) = (decoded.len() / 2..decoded.len())
        .find_map(|i| {
            let same = of_symbol(i);
            let at = same.iter().position(|j| *j == i)?;
            let (prev, next) = (*same.get(at.checked_sub(1)?)?, *same.get(at + 1)?);
            let (d, n) = (&decoded[i], &decoded[next]);
            let book_between = full.iter().any(|(s, t)| {
                *s == d.symbol && (decoded[prev].receipt_time..=n.receipt_time).contains(t)
            });
            (decoded[prev].checksum != d.checksum
                && prices(d).is_disjoint(&prices(n))
                && !book_between)
                .then_some((i, next))
        })
        .expect("a delta that changed the top of its book");

    let copy_prefix = common::unique_topic("auditkraken");
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka)
        .create()
        .unwrap();
    let mut next_at = None;
    for dt in [
        DataType::Level2Book,
        DataType::Level2Delta,
        DataType::FeedEvent,
    ] {
        let to = topic(&copy_prefix, dt);
        common::create_topics(&kafka, &[&to], cfg.producer.partitions).await;
        let records = if dt == DataType::Level2Delta {
            deltas.clone()
        } else {
            common::consume_to_end(
                &kafka,
                &topic(&cfg.producer.topic_prefix, dt),
                Duration::from_secs(60),
            )
        };
        let mut written: HashMap<i32, i64> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if dt == DataType::Level2Delta && i == removed {
                continue;
            }
            if dt == DataType::Level2Delta && i == next {
                next_at = Some((r.partition, *written.get(&r.partition).unwrap_or(&0)));
            }
            let mut rec = FutureRecord::<[u8], [u8]>::to(&to)
                .payload(r.value.as_slice())
                .partition(r.partition);
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            producer.send(rec, Duration::from_secs(10)).await.unwrap();
            *written.entry(r.partition).or_default() += 1;
        }
    }
    let mut copy = cfg.clone();
    copy.producer.topic_prefix = copy_prefix;
    let broken = audit::run(&copy, &AuditRange::default()).unwrap();
    assert!(!broken.clean);
    assert_eq!(broken.report.checksum_mismatches, 1);
    let symbol = &decoded[removed].symbol;
    let c = &broken.report.symbols[&format!("KRAKEN:{symbol}")].checksums;
    let m: Vec<_> = c.unannounced().collect();
    assert_eq!(m.len(), 1, "{c:?}");
    assert_eq!(m[0].record, "level2_delta");
    assert_eq!(Some(m[0].at), next_at);
    assert_eq!(m[0].receipt_us, decoded[next].receipt_time);
    assert_eq!(
        m[0].venue.to_string(),
        decoded[next].checksum.clone().unwrap()
    );
}
