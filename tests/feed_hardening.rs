//! The feed never stays silently broken (issue 18), each against the replay server and the dev
//! stack's broker and registry: a lost in-band snapshot is noticed by its deadline, announced
//! and asked again; a connection-wide break resyncs every book; a stream that ticks by design
//! and goes silent is announced; the loop keeps serving heartbeats and sheds within its bound
//! while the producer queue is full; `StopFeed` is honoured while connecting; a REST ban does
//! not hold back a reconnect; a failed send still produces and counts what was read.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod books;
mod common;
mod tweaked;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use books::KRAKEN_PAIRS;
use tickflow::config::{Config, FeedConfig, SymbolSource};
use tickflow::feed::{FeedActor, FeedStats, StopFeed};
use tickflow::replay::{ReplayServer, ReplayServerConfig};
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::v2beta1::FeedEvent;
use tickflow::schema::{wire, DataType, Normalized};
use tickflow::supervisor::ProducerHandle;
use tickflow::venues::{Channel, Venue};
use tweaked::{Tweaked, Tweaks};

async fn kraken_replay(speed: f64, loops: u32) -> ReplayServer {
    tickflow::venues::replay_server(ReplayServerConfig {
        venue: "kraken".into(),
        fixtures: "tests/fixtures/kraken".into(),
        speed,
        loops,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn kraken_feed(replay: &ReplayServer, channels: Vec<Channel>) -> FeedConfig {
    FeedConfig {
        venue: "kraken".into(),
        symbols: KRAKEN_PAIRS.iter().map(|s| s.to_string()).collect(),
        channels,
        // The recordings are WebSocket v1.
        ws_url: Some(format!("ws://{}", replay.addr)),
        snapshot_limit: 1000,
        book_snapshot_every: 0,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(300),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }
}

fn start_feed(
    cfg: FeedConfig,
    venue: Arc<dyn Venue>,
    producer: &ProducerHandle,
) -> (actix::Addr<FeedActor>, Arc<FeedStats>) {
    let stats = Arc::new(FeedStats::new());
    let http = tickflow::feed::session::rest_client(venue.as_ref(), None);
    let (s, p) = (stats.clone(), producer.clone());
    let addr = actix::Supervisor::start(move |_| FeedActor::new(cfg, venue, p, s, http));
    (addr, stats)
}

fn feed_events(cfg: &Config, want: usize) -> Vec<FeedEvent> {
    let topic = format!("{}.feed_event", cfg.producer.topic_prefix);
    decoded(&common::consume(
        &common::kafka_addr(),
        &topic,
        cfg.producer.partitions,
        want,
        Duration::from_secs(8),
    ))
}

fn decoded(records: &[common::Record]) -> Vec<FeedEvent> {
    records
        .iter()
        .map(|r| {
            match Normalized::decode(DataType::FeedEvent, wire::parse(&r.value).unwrap().payload)
                .unwrap()
            {
                Normalized::FeedEvent(e) => e,
                other => panic!("not a FeedEvent: {other:?}"),
            }
        })
        .collect()
}

async fn until(what: &str, limit: Duration, done: impl FnMut() -> bool) -> Duration {
    until_with(what, limit, done, String::new).await
}

/// [`until`], with `state` in the failure message (what is needed to understand a timeout).
async fn until_with(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    state: impl Fn() -> String,
) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?} {}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Each feed's counters, for a failure message.
fn feed_counters(stats: &[Arc<FeedStats>]) -> String {
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let b = |a: &std::sync::atomic::AtomicBool| a.load(Ordering::Relaxed);
    stats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "feed {i}: frames {} lost {} acked {} nacked {} shedding {} connected {} \
                 reconnects {} errors {} syncs {} gaps {}",
                n(&s.frames),
                n(&s.lost),
                n(&s.acked),
                n(&s.nacked),
                b(&s.shedding),
                b(&s.connected),
                n(&s.reconnects),
                n(&s.errors),
                n(&s.syncs),
                n(&s.gaps)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[actix_rt::test]
async fn a_lost_first_in_band_snapshot_is_noticed_announced_and_asked_again() {
    common::init_logs();
    // Recorded pace, looped: updates keep coming while the lost book waits for its deadline.
    let replay = kraken_replay(1.0, 50).await;
    let cfg = common::test_config("lostsnap");
    let producer = ProducerHandle::start(cfg.clone()).unwrap();
    let victim = KRAKEN_PAIRS[0];
    let venue = Tweaked::new(
        "kraken",
        Tweaks {
            lose_first_snapshot_of: Some(victim),
            ..Default::default()
        },
    );
    let mut feed = kraken_feed(&replay, vec![Channel::Depth]);
    feed.snapshot_timeout = Duration::from_millis(1_500);
    let (addr, stats) = start_feed(feed, venue.clone(), &producer);
    // Every pair syncs once, then the victim a second time, after its deadline.
    let took = until("all books synced", Duration::from_secs(30), || {
        stats.syncs.load(Ordering::Relaxed) >= KRAKEN_PAIRS.len() as u64
    })
    .await;
    assert_eq!(
        venue.lost.load(Ordering::SeqCst),
        1,
        "the first snapshot was lost"
    );
    assert!(
        took >= Duration::from_millis(1_400),
        "the victim waited for its deadline: {took:?}"
    );
    addr.send(StopFeed).await.unwrap();
    producer.shutdown().await;
    let events = feed_events(&cfg, KRAKEN_PAIRS.len() + 1);
    let stale: Vec<_> = events
        .iter()
        .filter(|e| e.kind == Kind::Stale as i32)
        .collect();
    assert_eq!(stale.len(), 1, "{events:?}");
    assert_eq!(stale[0].symbol, victim);
    assert_eq!(stale[0].data_type, "level2_delta");
    assert_eq!(stale[0].action, "resubscribe");
    assert!(
        stale[0]
            .reason
            .starts_with("no snapshot within 1500 ms; attempt 1 of 5"),
        "{}",
        stale[0].reason
    );
    let synced: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == Kind::Synced as i32)
        .map(|e| e.symbol.as_str())
        .collect();
    for pair in KRAKEN_PAIRS {
        assert_eq!(
            synced.iter().filter(|s| **s == pair).count(),
            1,
            "{pair} synced once: {synced:?}"
        );
    }
    let victim_synced = events
        .iter()
        .find(|e| e.kind == Kind::Synced as i32 && e.symbol == victim)
        .unwrap();
    assert!(victim_synced.timestamp > stale[0].timestamp);
}

#[actix_rt::test]
async fn a_connection_wide_break_resyncs_every_book_at_once() {
    common::init_logs();
    let replay = kraken_replay(1.0, 50).await;
    let cfg = common::test_config("connresync");
    let producer = ProducerHandle::start(cfg.clone()).unwrap();
    let venue = Tweaked::new(
        "kraken",
        Tweaks {
            resync_after_frames: Some(400),
            ..Default::default()
        },
    );
    let (addr, stats) = start_feed(kraken_feed(&replay, vec![Channel::Depth]), venue, &producer);
    until("every book synced twice", Duration::from_secs(30), || {
        stats.syncs.load(Ordering::Relaxed) >= 2 * KRAKEN_PAIRS.len() as u64
    })
    .await;
    // Until every pair has synced again after the break, read back from Kafka (the
    // resubscribes are paced at Kraken's message rate).
    let started = Instant::now();
    let events = loop {
        let events = decoded(&common::consume(
            &common::kafka_addr(),
            &format!("{}.feed_event", cfg.producer.topic_prefix),
            cfg.producer.partitions,
            100_000,
            Duration::from_secs(2),
        ));
        let brk = events
            .iter()
            .find(|e| e.kind == Kind::Gap as i32 && e.symbol.is_empty())
            .map(|e| e.timestamp);
        let resynced = |pair: &str| {
            brk.is_some_and(|b| {
                events
                    .iter()
                    .any(|e| e.kind == Kind::Synced as i32 && e.symbol == pair && e.timestamp > b)
            })
        };
        if KRAKEN_PAIRS.iter().all(|p| resynced(p)) || started.elapsed() > Duration::from_secs(40) {
            break events;
        }
    };
    assert_eq!(
        stats.reconnects.load(Ordering::Relaxed),
        0,
        "no reconnect was needed"
    );
    addr.send(StopFeed).await.unwrap();
    producer.shutdown().await;
    let gaps: Vec<_> = events
        .iter()
        .filter(|e| e.kind == Kind::Gap as i32)
        .collect();
    assert_eq!(gaps.len(), 1, "{events:?}");
    assert_eq!(gaps[0].symbol, "", "connection-wide");
    assert_eq!(gaps[0].action, "resubscribe");
    assert_eq!(
        gaps[0].reason,
        "connection sequence skipped 41 -> 43 (test)"
    );
    for pair in KRAKEN_PAIRS {
        let synced: Vec<i64> = events
            .iter()
            .filter(|e| e.kind == Kind::Synced as i32 && e.symbol == pair)
            .map(|e| e.timestamp)
            .collect();
        assert_eq!(
            synced.iter().filter(|t| **t < gaps[0].timestamp).count(),
            1,
            "{pair} synced once before the break: {synced:?} (break at {})",
            gaps[0].timestamp
        );
        assert!(
            synced.iter().any(|t| *t > gaps[0].timestamp),
            "{pair} resynced after the break: {synced:?} (break at {}); {events:?}",
            gaps[0].timestamp
        );
    }
}

#[actix_rt::test]
async fn a_stream_that_ticks_by_design_and_goes_silent_is_announced() {
    common::init_logs();
    // As fast as possible, once: every recorded ticker frame arrives at once, then nothing.
    let replay = kraken_replay(0.0, 1).await;
    let cfg = common::test_config("stalestream");
    let producer = ProducerHandle::start(cfg.clone()).unwrap();
    let venue = Tweaked::new(
        "kraken",
        Tweaks {
            ticks: Some((Channel::Ticker, Duration::from_millis(100))),
            ..Default::default()
        },
    );
    let mut feed = kraken_feed(&replay, vec![Channel::Ticker, Channel::Trade]);
    feed.symbols = vec!["BTC-CHF".into()];
    feed.stale_after = Duration::from_secs(120);
    let (addr, stats) = start_feed(feed, venue, &producer);
    // Bound: 3 × 100 ms + 2 s. Kraken cannot resubscribe one ticker: the connection recycles.
    let took = until(
        "a stale stream recycled the connection",
        Duration::from_secs(15),
        || stats.reconnects.load(Ordering::Relaxed) >= 1,
    )
    .await;
    assert!(took >= Duration::from_millis(2_300), "{took:?}");
    addr.send(StopFeed).await.unwrap();
    producer.shutdown().await;
    let events = feed_events(&cfg, 2);
    let stale = events
        .iter()
        .find(|e| e.kind == Kind::Stale as i32 && !e.symbol.is_empty())
        .unwrap_or_else(|| panic!("no per-stream STALE in {events:?}"));
    assert_eq!(stale.symbol, "BTC-CHF");
    assert_eq!(stale.data_type, "ticker");
    assert_eq!(stale.action, "reconnect");
    assert!(
        stale.reason.starts_with("ticker BTC-CHF: nothing for "),
        "{}",
        stale.reason
    );
}

#[actix_rt::test]
async fn with_the_broker_down_three_feeds_shed_within_the_bound_and_keep_their_heartbeat() {
    common::init_logs();
    let replay = kraken_replay(1.0, 50).await;
    let mut cfg = common::test_config("brokerdown");
    // Nothing listens here: nothing is ever acknowledged, the queues fill up.
    cfg.kafka.bootstrap_servers = "127.0.0.1:1".into();
    cfg.producer.queue_capacity = 4;
    let producer = ProducerHandle::start(cfg.clone()).unwrap();
    let shed_after = Duration::from_millis(1_500);
    let mut feeds = Vec::new();
    for pair in &KRAKEN_PAIRS[..3] {
        let venue = Tweaked::new(
            "kraken",
            Tweaks {
                heartbeat: Some(Duration::from_millis(200)),
                ..Default::default()
            },
        );
        let mut feed = kraken_feed(&replay, vec![Channel::Depth, Channel::Trade]);
        feed.symbols = vec![pair.to_string()];
        feed.shed_after = shed_after;
        feed.max_outstanding = 8;
        feeds.push(start_feed(feed, venue, &producer));
    }
    let lost: Vec<Arc<FeedStats>> = feeds.iter().map(|(_, s)| s.clone()).collect();
    // Records wait from each feed's first frames on (its snapshot's records).
    until("every feed reads", Duration::from_secs(15), || {
        lost.iter().all(|s| s.frames.load(Ordering::Relaxed) > 0)
    })
    .await;
    let took = until("every feed sheds", Duration::from_secs(15), || {
        lost.iter().all(|s| s.shedding.load(Ordering::Relaxed))
    })
    .await;
    // Shedding starts once nothing was answered for `shed_after` (plus the 100 ms stall check
    // and a margin for a loaded machine); before the fix the loop waited on the full queue and
    // never shed.
    assert!(took < shed_after + Duration::from_secs(2), "{took:?}");
    // And what is read is counted as lost, per feed (one pair each: some are quiet for a while).
    until_with(
        "every feed counts what it sheds",
        Duration::from_secs(30),
        || lost.iter().all(|s| s.lost.load(Ordering::Relaxed) > 0),
        || format!("({}; {} pings)", feed_counters(&lost), pings(&replay)),
    )
    .await;
    // The loops keep serving their heartbeat while the queue is full: 3 feeds × every 200 ms.
    let pings_before = pings(&replay);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pings = pings(&replay) - pings_before;
    assert!(
        pings >= 3 * 6,
        "only {pings} heartbeats in 2 s from 3 feeds"
    );
    // Reading goes on while shedding: frames keep arriving and are counted as shed.
    let frames_before: u64 = lost.iter().map(|s| s.frames.load(Ordering::Relaxed)).sum();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let frames: u64 = lost.iter().map(|s| s.frames.load(Ordering::Relaxed)).sum();
    assert!(frames > frames_before, "reading stopped");
    // Records handed to the producer stay unanswered until librdkafka's delivery timeout;
    // the feeds are not stopped here (a stop waits for those answers), the test ends.
    drop(feeds);
    drop(producer);
}

fn pings(replay: &ReplayServer) -> usize {
    replay
        .client_messages()
        .iter()
        .filter(|(_, m)| m.contains("\"ping\""))
        .count()
}

#[actix_rt::test]
async fn stop_is_honoured_while_connecting_and_a_hung_handshake_times_out() {
    common::init_logs();
    // Accepts TCP connections and never answers the WebSocket handshake.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let held = accepted.clone();
    std::thread::spawn(move || {
        let mut keep = Vec::new();
        for s in listener.incoming().flatten() {
            held.fetch_add(1, Ordering::SeqCst);
            keep.push(s);
        }
    });
    let cfg = common::test_config("hungconnect");
    let producer = ProducerHandle::start(cfg).unwrap();
    let venue: Arc<dyn Venue> = tickflow::venues::by_name("kraken").unwrap().into();
    let feed = FeedConfig {
        venue: "kraken".into(),
        symbols: vec!["BTC-USD".into()],
        channels: vec![Channel::Trade],
        ws_url: Some(format!("ws://{addr}")),
        connect_timeout: Duration::from_millis(500),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(100),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    };
    let (feed_addr, stats) = start_feed(feed, venue, &producer);
    // The handshake never completes: each attempt gives up after 500 ms and reconnects.
    until(
        "a timed-out connect was retried",
        Duration::from_secs(10),
        || accepted.load(Ordering::SeqCst) >= 3,
    )
    .await;
    assert!(stats.reconnects.load(Ordering::Relaxed) >= 2);
    assert!(!stats.connected.load(Ordering::Relaxed));
    // Asked to stop in the middle of a connect: answered at once, not after the timeout.
    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), feed_addr.send(StopFeed))
        .await
        .expect("StopFeed answered while connecting")
        .unwrap();
    assert!(
        stopping.elapsed() < Duration::from_millis(600),
        "{:?}",
        stopping.elapsed()
    );
    producer.shutdown().await;
}

#[actix_rt::test]
async fn a_rest_ban_does_not_hold_back_a_reconnect() {
    common::init_logs();
    // The venue's REST answers every request with a 10-minute ban.
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "600")],
            "{\"code\":-1003,\"msg\":\"Way too many requests; banned\"}",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest_addr = listener.local_addr().unwrap();
    let banned = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: "tests/fixtures/binance".into(),
        speed: 0.0,
        loops: 20,
        drop_after_frames: 30,
        ..Default::default()
    })
    .await
    .unwrap();
    let cfg = common::test_config("restban");
    let producer = ProducerHandle::start(cfg).unwrap();
    let venue: Arc<dyn Venue> = tickflow::venues::by_name("binance").unwrap().into();
    let feed = FeedConfig {
        venue: "binance".into(),
        // Books whose REST snapshots are banned too: they never sync, their diffs still come.
        symbols: vec!["NKN-USDT".into(), "LRC-BTC".into()],
        channels: vec![Channel::Depth, Channel::BookTicker],
        ws_url: Some(format!("ws://{}", replay.addr)),
        rest_url: Some(format!("http://{rest_addr}")),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(300),
        symbol_source: SymbolSource::ExchangeInfo,
        ..Default::default()
    };
    let (addr, stats) = start_feed(feed, venue, &producer);
    until(
        "connected on the pinned names",
        Duration::from_secs(15),
        || stats.connected.load(Ordering::Relaxed),
    )
    .await;
    // The replay drops the first connection after 30 frames; the reconnect must not wait for
    // the ban (10 min) before it resolves its symbols.
    let took = until("reconnected while banned", Duration::from_secs(10), || {
        stats.reconnects.load(Ordering::Relaxed) >= 1 && stats.connected.load(Ordering::Relaxed)
    })
    .await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    let frames = stats.frames.load(Ordering::Relaxed);
    until(
        "frames on the new connection",
        Duration::from_secs(10),
        || stats.frames.load(Ordering::Relaxed) > frames,
    )
    .await;
    addr.send(StopFeed).await.unwrap();
    producer.shutdown().await;
    banned.abort();
}

#[actix_rt::test]
async fn one_refused_symbol_is_announced_and_the_connection_carries_on() {
    common::init_logs();
    let replay = kraken_replay(1.0, 50).await;
    let cfg = common::test_config("refused");
    let producer = ProducerHandle::start(cfg.clone()).unwrap();
    let victim = KRAKEN_PAIRS[1];
    let venue = Tweaked::new(
        "kraken",
        Tweaks {
            refuse: Some(victim),
            ..Default::default()
        },
    );
    let mut feed = kraken_feed(&replay, vec![Channel::Depth]);
    feed.snapshot_timeout = Duration::from_millis(1_000);
    let (addr, stats) = start_feed(feed, venue.clone(), &producer);
    until("the other books synced", Duration::from_secs(30), || {
        stats.syncs.load(Ordering::Relaxed) >= KRAKEN_PAIRS.len() as u64 - 1
    })
    .await;
    // Past the snapshot deadline: a refused symbol is not asked for again, nothing reconnects.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(stats.reconnects.load(Ordering::Relaxed), 0);
    addr.send(StopFeed).await.unwrap();
    producer.shutdown().await;
    let events = feed_events(&cfg, KRAKEN_PAIRS.len() + 1);
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.kind == Kind::RejectedUpdate as i32)
        .collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert_eq!(refused[0].symbol, victim);
    assert_eq!(refused[0].action, "unsubscribed");
    assert_eq!(
        refused[0].reason,
        "subscription refused by the venue: Currency pair not supported (test)"
    );
    assert!(
        !events
            .iter()
            .any(|e| e.kind == Kind::Stale as i32 && e.symbol == victim),
        "a refused symbol's snapshot is not awaited: {events:?}"
    );
}

#[actix_rt::test]
async fn a_failed_resubscribe_send_still_produces_and_counts_what_was_read() {
    common::init_logs();
    let replay = kraken_replay(0.0, 1).await;
    let cfg = common::test_config("sendfail");
    let producer = ProducerHandle::start(cfg.clone()).unwrap();
    // A connection-wide break after 300 frames resubscribes every book; each resubscribe is
    // larger than a send may be, so the first one fails the session.
    let venue = Tweaked::new(
        "kraken",
        Tweaks {
            resync_after_frames: Some(300),
            resubscribe_bytes: Some(2 * tickflow::transport::ws::MAX_OUTGOING_BYTES),
            ..Default::default()
        },
    );
    let mut feed = kraken_feed(&replay, vec![Channel::Depth]);
    // No second session within the test.
    feed.reconnect_min = Duration::from_secs(60);
    feed.reconnect_max = Duration::from_secs(60);
    let (addr, stats) = start_feed(feed, venue, &producer);
    until("the session ended", Duration::from_secs(30), || {
        stats.reconnects.load(Ordering::Relaxed) >= 1
    })
    .await;
    // The session has returned: whatever it read was answered before.
    let (acked, lost, nacked) = (
        stats.acked.load(Ordering::Relaxed),
        stats.lost.load(Ordering::Relaxed),
        stats.nacked.load(Ordering::Relaxed),
    );
    addr.send(StopFeed).await.unwrap();
    producer.shutdown().await;
    let read = |dt: &str| {
        common::consume_all(
            &common::kafka_addr(),
            &format!("{}.{dt}", cfg.producer.topic_prefix),
            cfg.producer.partitions,
            common::IDLE,
            Duration::from_secs(20),
        )
    };
    let (books, deltas, events) = (
        read("level2_book"),
        read("level2_delta"),
        read("feed_event"),
    );
    assert_eq!((lost, nacked), (0, 0));
    assert!(
        deltas.len() > 100,
        "the deltas of ~300 frames: {}",
        deltas.len()
    );
    // Every record produced was counted as acknowledged, the last feed event included.
    assert_eq!(
        acked as usize,
        books.len() + deltas.len() + events.len(),
        "books {}, deltas {}, feed events {}",
        books.len(),
        deltas.len(),
        events.len()
    );
    let events = decoded(&events);
    let last = events.iter().max_by_key(|e| e.timestamp).unwrap();
    assert_eq!(last.kind, Kind::Reconnect as i32, "{events:?}");
    assert_eq!(last.action, "reconnect");
    assert_eq!(last.reason, "websocket: Write buffer is full");
}
