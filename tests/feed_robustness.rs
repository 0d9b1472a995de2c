//! Feed robustness found by review, each against a real WebSocket server, broker and registry:
//! the stale timer counts time since the last frame (open-interest polling does not reset
//! it), and the loss is announced as a `FeedEvent` record.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::{wire, DataType, Normalized};
use tickflow::service::Service;
use tickflow::venues::Channel;
use tokio_tungstenite::tungstenite::Message;

/// A venue that confirms every subscription and then sends nothing, on every connection.
async fn silent_venue() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m {
                        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                        let answer = serde_json::json!({ "result": null, "id": v["id"] });
                        if ws.send(Message::text(answer.to_string())).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, server)
}

#[actix_rt::test]
async fn a_silent_connection_goes_stale_even_while_open_interest_is_polled() {
    let (addr, server) = silent_venue().await;
    let mut cfg = common::test_config("stale");
    cfg.feeds = vec![FeedConfig {
        venue: "binance_usdm".into(),
        symbols: vec!["BTC-USDT-PERP".into()],
        channels: vec![Channel::Trade, Channel::OpenInterest],
        ws_url: Some(format!("ws://{addr}")),
        // Nothing listens here: every poll fails at once, many times per stale period. Before
        // the fix each poll restarted the frame timeout, so the feed never went stale.
        rest_url: Some("http://127.0.0.1:1".into()),
        open_interest_poll: Duration::from_millis(100),
        stale_after: Duration::from_millis(1_500),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(200),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let topic = format!("{}.feed_event", cfg.producer.topic_prefix);
    let service = Service::start(cfg).await.unwrap();
    let stats = service.feeds[0].stats.clone();
    let started = Instant::now();
    while stats.reconnects.load(Ordering::Relaxed) == 0
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = started.elapsed();
    assert!(
        stats.reconnects.load(Ordering::Relaxed) >= 1,
        "no stale reconnect in {waited:?}"
    );
    // Stale after 1.5 s of silence (plus connect time), not much later.
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // Wait for the next connection: it announces the reconnect.
    while !stats.connected.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.shutdown().await;
    server.abort();
    // The stale timeout is announced as a record, and so is the reconnect that followed.
    let got = common::consume(&common::kafka_addr(), &topic, 3, 2, Duration::from_secs(20));
    let events: Vec<_> = got
        .iter()
        .map(|r| {
            let Normalized::FeedEvent(e) =
                Normalized::decode(DataType::FeedEvent, wire::parse(&r.value).unwrap().payload)
                    .unwrap()
            else {
                panic!()
            };
            e
        })
        .collect();
    let stale = events
        .iter()
        .find(|e| e.kind == Kind::Stale as i32)
        .unwrap_or_else(|| panic!("no STALE event in {events:?}"));
    assert_eq!(stale.exchange, "BINANCE_FUTURES");
    assert_eq!((stale.symbol.as_str(), stale.data_type.as_str()), ("", ""));
    assert!(stale.reason.contains("stale"), "{}", stale.reason);
    let reconnect = events
        .iter()
        .find(|e| e.kind == Kind::Reconnect as i32)
        .unwrap_or_else(|| panic!("no RECONNECT event in {events:?}"));
    let since = reconnect.since.unwrap();
    assert!(since <= reconnect.timestamp && since >= stale.timestamp - 1_000_000);
}

#[actix_rt::test]
async fn a_nacked_delta_resyncs_its_book_and_is_announced() {
    use tickflow::config::OverflowPolicy;
    use tickflow::replay::ReplayServerConfig;
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: "tests/fixtures/binance".into(),
        loops: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let url = replay.addr.to_string();
    let mut cfg = common::test_config("lostdelta");
    // A four-slot queue that nacks when full: under the replay's bursts, deltas are nacked;
    // the announcement and the republished book after a loss (3 records) still fit.
    cfg.producer.overflow = OverflowPolicy::Nack;
    cfg.producer.queue_capacity = 4;
    cfg.feeds = vec![FeedConfig {
        venue: "binance".into(),
        symbols: vec!["NKN-USDT".into()],
        channels: vec![Channel::Depth],
        ws_url: Some(format!("ws://{url}")),
        rest_url: Some(format!("http://{url}")),
        snapshot_interval: Duration::from_millis(10),
        book_snapshot_every: 0,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let prefix = cfg.producer.topic_prefix.clone();
    let service = Service::start(cfg).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), replay.finished())
        .await
        .expect("replay played");
    common::settled(
        &service,
        Duration::from_millis(500),
        Duration::from_secs(30),
    )
    .await;
    let stats = service.feeds[0].stats.clone();
    let nacked = stats.nacked.load(Ordering::Relaxed);
    let m = service.producer.metrics();
    let lost = m.sample(
        "tickflow_feed_records_lost_total{exchange=\"BINANCE\",data_type=\"level2_delta\",cause=\"nacked\"}",
    );
    service.shutdown().await;
    assert!(nacked > 0, "the small queue nacked something");
    assert!(lost >= 1.0, "a lost delta was counted: {}", m.render());
    // The feed events say which symbol lost a delta, and that its book synced again after.
    let got = common::consume(
        &common::kafka_addr(),
        &format!("{prefix}.feed_event"),
        3,
        10_000,
        Duration::from_secs(8),
    );
    let mut events: Vec<_> = got
        .iter()
        .filter_map(|r| {
            match Normalized::decode(DataType::FeedEvent, wire::parse(&r.value).ok()?.payload) {
                Ok(Normalized::FeedEvent(e)) => Some(e),
                _ => None,
            }
        })
        .collect();
    events.sort_by_key(|e| e.timestamp);
    // The interval is announced for the connection, with counts, and for the book.
    let interval = events
        .iter()
        .find(|e| e.kind == Kind::RecordLost as i32 && e.symbol.is_empty())
        .unwrap_or_else(|| panic!("no connection-wide RECORD_LOST among {events:?}"));
    assert_eq!(interval.action, "republish");
    assert!(
        interval.reason.contains("level2_delta nacked"),
        "{}",
        interval.reason
    );
    let since = interval.since.expect("the interval has a start");
    assert!(since <= interval.timestamp);
    let first_lost = events
        .iter()
        .position(|e| e.kind == Kind::RecordLost as i32 && e.symbol == "NKN-USDT")
        .unwrap_or_else(|| panic!("no RECORD_LOST of NKN-USDT among {} events", events.len()));
    assert_eq!(events[first_lost].action, "republish");
    assert_eq!(events[first_lost].since, Some(since));
    // The book is published again in full after the announcement.
    let lost_at = events[first_lost].timestamp;
    let books = common::consume(
        &common::kafka_addr(),
        &format!("{prefix}.level2_book"),
        3,
        10_000,
        Duration::from_secs(4),
    );
    let republished = books.iter().any(|r| {
        match Normalized::decode(DataType::Level2Book, wire::parse(&r.value).unwrap().payload) {
            Ok(Normalized::Level2Book(b)) => b.symbol == "NKN-USDT" && b.receipt_time >= lost_at,
            _ => false,
        }
    });
    assert!(republished, "a full NKN-USDT book follows the announcement");
}

#[actix_rt::test]
async fn two_hundred_symbols_resyncing_at_once_stay_inside_the_rest_budget() {
    use tickflow::replay::ReplayServerConfig;
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance_usdm".into(),
        fixtures: "tests/fixtures/binance".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let url = replay.addr.to_string();
    let mut cfg = common::test_config("budget");
    // 24 000 weight a minute = 400 a second, bursts of a tenth (2 400); a USD-M depth
    // snapshot of 1000 levels weighs 20: 120 requests at once, then 20 a second.
    let (per_minute, weight) = (24_000.0, 20.0);
    let (burst, per_second) = (per_minute / 10.0, per_minute / 60.0);
    cfg.feeds = vec![FeedConfig {
        venue: "binance_usdm".into(),
        // Symbols the recording does not have: every snapshot is refused (HTTP 400) and asked
        // again later, as after Binance's 24 h disconnect with a venue under load.
        symbols: (0..200).map(|i| format!("X{i}-USDT-PERP")).collect(),
        // Two streams per symbol: 400 streams, two connections of USD-M's 200, sharing one
        // REST budget.
        channels: vec![Channel::Depth, Channel::Trade],
        ws_url: Some(format!("ws://{url}")),
        rest_url: Some(format!("http://{url}")),
        snapshot_interval: Duration::from_millis(0),
        rest_weight_per_minute: Some(per_minute as u32),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = Service::start(cfg).await.unwrap();
    assert_eq!(service.feeds.len(), 2, "one feed actor per connection");
    assert!(service.feeds[0].name.ends_with(",X99-USDT-PERP]"));
    assert!(service.feeds[1]
        .name
        .starts_with("binance_usdm/public[X100-USDT-PERP,"));
    // Until every symbol has asked for its snapshot (at the budget's pace: ~6 s).
    let asked = std::time::Instant::now();
    while replay.rest_requests().len() < 200 && asked.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    service.shutdown().await;
    let arrivals = replay.rest_requests();
    assert!(
        arrivals.len() >= 200,
        "every symbol asked for its snapshot: {}",
        arrivals.len()
    );
    // In any 1 s window, at most the burst plus a second of refill arrived; and by any time t
    // after the first request, at most the burst plus t of refill. Arrival times are measured
    // here, at the server, after each request's connection set-up: 250 ms of slack for that.
    let slack = 0.25;
    let first = arrivals[0];
    for (i, a) in arrivals.iter().enumerate() {
        let in_window = arrivals[i..]
            .iter()
            .take_while(|b| b.duration_since(*a) < Duration::from_secs(1))
            .count() as f64;
        assert!(
            in_window * weight <= burst + per_second * (1.0 + slack) + weight,
            "{in_window} requests in 1 s from request {i}"
        );
        let t = a.duration_since(first).as_secs_f64();
        assert!(
            (i + 1) as f64 * weight <= burst + per_second * (t + slack) + weight,
            "{} requests by {t:.2} s",
            i + 1
        );
    }
}
