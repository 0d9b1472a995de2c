//! The broker restarted mid-replay, as an operator would do it: `Service` runs a Kraken replay
//! (recorded real messages at their recorded pace, ~140 book updates a second) into a
//! throw-away tansu broker, which is killed by PID once records flow and started again ~10 s
//! later — once on memory storage (it comes back empty: topics and producer ids gone) and once
//! on sqlite storage (it comes back with its data). Checked on what reached Kafka:
//! - Acks resume within 5 s of the broker being started again;
//! - Nacks happen only between the kill and 5 s after the return;
//! - the missing interval is announced (a connection-wide `RECORD_LOST` with `since`, and one
//!   per book), and every book is published again in full after it;
//! - every book is correct: rebuilt here from each `Level2Book` and the deltas after it, it
//!   agrees with Kraken's checksum on every delta, except deltas inside an announced interval
//!   (after a hole), and every book agrees again after the interval;
//! - `tickflow audit` on what the broker holds finds the same: clean, every checksum
//!   disagreement inside an announced interval.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod books;
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use books::{kraken_crc, set, truncate, Side, KRAKEN_PAIRS};
use common::{Broker, Storage};
use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::{wire, DataType, FeedEvent, Normalized};
use tickflow::service::Service;
use tickflow::venues::Channel;

/// How long a feed waits with no answer before it sheds (the test's setting).
const SHED_AFTER: Duration = Duration::from_secs(2);
/// The bound the issue sets on recovery.
const RESUME_WITHIN: Duration = Duration::from_secs(5);

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// (when, acked, nacked) of all feeds, sampled every 20 ms.
type Samples = Arc<Mutex<Vec<(Instant, u64, u64)>>>;

fn counts(service: &Service) -> (u64, u64) {
    service.feeds.iter().fold((0, 0), |(a, n), f| {
        (
            a + f.stats.acked.load(Ordering::Relaxed),
            n + f.stats.nacked.load(Ordering::Relaxed),
        )
    })
}

/// Waits (the service keeps running on this thread) until `done` holds, or panics at `limit`.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn decode_all(bootstrap: &str, prefix: &str, dt: DataType) -> Vec<Normalized> {
    // Everything the topic holds, up to each partition's high watermark: tansu's sqlite
    // storage may take over ten seconds to answer a first fetch of a large partition, so a
    // read that stops after a quiet spell can end before the first answer.
    common::consume_to_end(
        bootstrap,
        &format!("{prefix}.{}", dt.as_str()),
        Duration::from_secs(120),
    )
    .iter()
    .map(|r| Normalized::decode(dt, wire::parse(&r.value).unwrap().payload).unwrap())
    .collect()
}

/// One outage at a time: two brokers restarting side by side on a 2-core machine measure the
/// machine, not the recovery.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn restart_mid_replay(storage: Storage) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let durable = matches!(storage, Storage::Sqlite(_));
    common::init_logs();
    let port = common::free_port();
    let mut broker = Broker::start(port, storage);
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "kraken".into(),
        fixtures: "tests/fixtures/kraken".into(),
        // The recorded pace: ~30 s of book updates, twice (a loaded machine may take a while to
        // reach the kill; deltas must still flow well after the broker's return).
        speed: 1.0,
        loops: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("outage");
    cfg.kafka.bootstrap_servers = broker.addr();
    cfg.feeds = vec![FeedConfig {
        venue: "kraken".into(),
        symbols: KRAKEN_PAIRS.iter().map(|s| s.to_string()).collect(),
        channels: vec![Channel::Depth, Channel::Trade, Channel::Ticker],
        ws_url: Some(format!("ws://{}", replay.addr)),
        snapshot_limit: 1000,
        book_snapshot_every: 0,
        shed_after: SHED_AFTER,
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let audit_cfg = cfg.clone();
    let prefix = cfg.producer.topic_prefix.clone();
    let message_timeout = cfg.kafka.message_timeout;
    let service = Arc::new(Service::start(cfg).await.unwrap());

    let samples: Samples = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (service, samples, sampling) = (service.clone(), samples.clone(), sampling.clone());
        actix_rt::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                let (a, n) = counts(&service);
                samples.lock().unwrap().push((Instant::now(), a, n));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Records flow (books synced, deltas acked), then the broker is killed by PID.
    wait_until("records acked", Duration::from_secs(30), || {
        counts(&service).0 >= 300
    })
    .await;
    let (killed, killed_us) = (Instant::now(), now_us());
    let pid = broker.kill();
    tracing::info!(pid, "broker killed");
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Started again on the same port (and file); blocking, so off this thread. The clock of
    // the recovery starts when the broker process starts (it may take records before the
    // readiness check sees it).
    let (back, back_us) = (Instant::now(), now_us());
    let broker = actix_rt::task::spawn_blocking(move || {
        broker.restart();
        broker
    })
    .await
    .unwrap();
    tracing::info!(after = ?back.elapsed(), "broker answers again");

    tokio::time::timeout(Duration::from_secs(90), replay.finished())
        .await
        .expect("replay played");
    // Every record read is answered before the check.
    let mut last = counts(&service);
    let mut stable_since = Instant::now();
    wait_until("every record answered", Duration::from_secs(60), || {
        let now = counts(&service);
        if now != last {
            (last, stable_since) = (now, Instant::now());
        }
        stable_since.elapsed() >= Duration::from_secs(2)
    })
    .await;
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    let service = Arc::try_unwrap(service).unwrap_or_else(|_| panic!("service still shared"));
    service.shutdown().await;
    let samples = samples.lock().unwrap().clone();

    // Acks resume within 5 s of the broker's return.
    let acked_at_back = samples
        .iter()
        .rev()
        .find(|s| s.0 <= back)
        .map_or(0, |s| s.1);
    let resumed = samples
        .iter()
        .find(|s| s.0 > back && s.1 > acked_at_back)
        .unwrap_or_else(|| panic!("no Ack after the broker came back: {samples:?}"));
    let took = resumed.0.duration_since(back);
    println!("Acks resumed {took:?} after the broker was started again");
    assert!(took <= RESUME_WITHIN, "Acks resumed only after {took:?}");
    // Nacks only in the outage window. Records a replaced producer had sent when the broker
    // died are answered by the broker or by `message.timeout.ms` (30 s from their send),
    // never earlier by a purge that could nack a record the broker stored
    // (`src/producer/recovery.rs`): the window closes at the later of the two.
    let window_end = (back + RESUME_WITHIN).max(killed + message_timeout + Duration::from_secs(2));
    for w in samples.windows(2) {
        if w[1].2 > w[0].2 {
            assert!(
                w[1].0 >= killed && w[0].0 <= window_end,
                "{} Nack(s) at {:?} after the kill, outside the outage window (back at {:?})",
                w[1].2 - w[0].2,
                w[1].0.duration_since(killed),
                back.duration_since(killed)
            );
        }
    }
    let (acked, nacked) = (samples.last().unwrap().1, samples.last().unwrap().2);
    println!("acked {acked}, nacked {nacked}");

    // The missing interval is announced: connection-wide, and for every book.
    let bootstrap = broker.addr();
    let events: Vec<FeedEvent> = decode_all(&bootstrap, &prefix, DataType::FeedEvent)
        .into_iter()
        .map(|r| match r {
            Normalized::FeedEvent(e) => e,
            other => panic!("not a feed event: {other:?}"),
        })
        .collect();
    let lost: Vec<&FeedEvent> = events
        .iter()
        .filter(|e| e.kind == Kind::RecordLost as i32)
        .collect();
    let wide = lost
        .iter()
        .find(|e| e.symbol.is_empty())
        .unwrap_or_else(|| panic!("no connection-wide RECORD_LOST among {events:?}"));
    let since = wide.since.expect("the interval's start");
    println!("announced: {} ({since}..{})", wide.reason, wide.timestamp);
    assert!(
        since <= killed_us + (SHED_AFTER + Duration::from_secs(1)).as_micros() as i64,
        "the interval starts by the time the feed shed: {since} vs kill at {killed_us}"
    );
    assert!(
        wide.timestamp >= back_us
            && wide.timestamp <= back_us + RESUME_WITHIN.as_micros() as i64 + 1_000_000,
        "the interval ends when Kafka took records again: {} vs back at {back_us}",
        wide.timestamp
    );
    for pair in KRAKEN_PAIRS {
        assert!(
            lost.iter()
                .any(|e| e.symbol == pair && e.since == Some(since) && e.action == "republish"),
            "{pair}: no RECORD_LOST of its book"
        );
    }
    let intervals: Vec<(String, i64, i64)> = lost
        .iter()
        .map(|e| (e.symbol.clone(), e.since.unwrap(), e.timestamp))
        .collect();
    let announced = |symbol: &str, t: i64| {
        intervals
            .iter()
            .any(|(s, from, to)| (s.is_empty() || s == symbol) && *from <= t && t <= *to)
    };

    // Every book is correct: rebuilt here, checked against Kraken's checksum on every delta.
    let mut records = decode_all(&bootstrap, &prefix, DataType::Level2Book);
    records.extend(decode_all(&bootstrap, &prefix, DataType::Level2Delta));
    records.sort_by_key(|r| match r {
        Normalized::Level2Book(b) => (b.symbol.clone(), b.receipt_time, 0),
        Normalized::Level2Delta(d) => (d.symbol.clone(), d.receipt_time, 1),
        _ => unreachable!(),
    });
    let mut books: HashMap<String, Option<(Side, Side)>> = HashMap::new();
    let mut first_book: HashMap<String, i64> = HashMap::new();
    let (mut checked_after, mut unchecked, mut full_after) = (0, 0, HashMap::<String, u32>::new());
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
                    "{}: a full book disagrees with its own checksum",
                    b.symbol
                );
                first_book.entry(b.symbol.clone()).or_insert(b.receipt_time);
                if b.receipt_time >= back_us {
                    *full_after.entry(b.symbol.clone()).or_default() += 1;
                }
                books.insert(b.symbol.clone(), Some((bids, asks)));
            }
            Normalized::Level2Delta(d) => {
                let venue: u32 = d.checksum.as_deref().unwrap().parse().unwrap();
                let Some(Some((bids, asks))) = books.get_mut(&d.symbol) else {
                    // No book to apply it to: before the first full book the broker holds (a
                    // broker restarted empty lost the earlier ones), or after a hole.
                    unchecked += 1;
                    continue;
                };
                for l in &d.bids {
                    set(bids, &l.price, &l.quantity);
                }
                for l in &d.asks {
                    set(asks, &l.price, &l.quantity);
                }
                truncate(bids, asks, 1000);
                if venue == kraken_crc(bids, asks) {
                    if d.receipt_time > back_us + RESUME_WITHIN.as_micros() as i64 {
                        checked_after += 1;
                    }
                } else {
                    // A hole: allowed only inside an announced interval; the book is unusable
                    // until its next full book.
                    assert!(
                        announced(&d.symbol, d.receipt_time),
                        "{}: a delta at {} disagrees with the venue's checksum outside every \
                         announced interval {intervals:?}",
                        d.symbol,
                        d.receipt_time
                    );
                    books.insert(d.symbol.clone(), None);
                }
            }
            _ => unreachable!(),
        }
    }
    println!(
        "deltas checked after the outage: {checked_after}; deltas with no book to apply to: \
         {unchecked}; full books after the return: {full_after:?}"
    );
    for pair in KRAKEN_PAIRS {
        assert!(
            full_after.get(pair).is_some_and(|n| *n >= 1),
            "{pair}: no full book after the outage"
        );
    }
    if durable {
        // What was stored before the kill is still there: every book's first full book
        // predates the kill, and every delta follows a full book (nothing was wiped).
        for pair in KRAKEN_PAIRS {
            assert!(
                first_book.get(pair).is_some_and(|t| *t < killed_us),
                "{pair}: the full book stored before the kill is gone"
            );
        }
        assert_eq!(unchecked, 0, "deltas stored before the kill are gone");
    }
    assert!(
        checked_after > 100,
        "deltas flowed and agreed with the venue after the outage: {checked_after}"
    );
    // `tickflow audit` finds the same: every checksum disagreement inside an announced
    // interval, none outside.
    let audit = tickflow::audit::run(&audit_cfg, &Default::default()).unwrap();
    println!(
        "audit: {} checksums agreed, {} announced mismatches",
        audit
            .report
            .symbols
            .values()
            .map(|r| r.checksums.agreed)
            .sum::<u64>(),
        audit
            .report
            .symbols
            .values()
            .map(|r| r.checksums.mismatches.len())
            .sum::<usize>()
    );
    assert!(
        audit.clean,
        "{}",
        serde_json::to_string_pretty(&audit).unwrap()
    );
    drop(broker);
}

#[actix_rt::test]
async fn broker_restarted_empty_mid_replay_acks_resume_within_5s_and_every_loss_is_announced() {
    restart_mid_replay(Storage::Memory).await;
}

#[actix_rt::test]
#[ignore = "tansu 0.6 on sqlite serves a fresh consumer's first fetch of the ~7 000-record level2_delta topic slowly and unpredictably on a loaded 2-core machine: 12 s to over 120 s (2026-12-06, librdkafka debug: FetchRequest rtt 12 372 ms); on 2026-12-07 one run of two read nothing of it within 120 s, the other passed (Acks back 1.1 s after the restart, the audit clean). Recovery on durable storage is proven in make test by tests/producer_faults.rs real_durable_broker_killed_and_restarted_mid_stream_loses_no_acked_event; run this one with --ignored"]
async fn broker_restarted_with_its_data_mid_replay_acks_resume_within_5s_and_books_stay_right() {
    let dir = tempfile::tempdir().unwrap();
    restart_mid_replay(Storage::Sqlite(dir.path().join("outage.db"))).await;
}
