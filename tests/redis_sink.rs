//! The Redis latest-value sink against a private `redis-server` (started and killed by the test,
//! never the machine's shared one), the real broker and the real registry: the latest record per
//! instrument in Redis is byte-equal to the last Kafka record of its key; a Redis outage leaves
//! the Kafka path's rate within the configured budget, is reported, and heals by itself.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Commands;
use tickflow::config::{Config, FeedConfig};
use tickflow::http::SinkReadiness;
use tickflow::metrics::Metrics;
use tickflow::producer::ProduceEvent;
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::{wire, DataType, Normalized};
use tickflow::service::Service;
use tickflow::sinks::redis::config::RedisSinkConfig;
use tickflow::sinks::redis::RedisSink;
use tickflow::supervisor::ProducerHandle;
use tickflow::venues::Channel;

const FIXTURES: &str = "tests/fixtures/binance";
const BOOK_SYMBOLS: [&str; 4] = ["NKN-USDT", "LRC-BTC", "BLZ-ETH", "RUNE-EUR"];
const TRADE_SYMBOLS: [&str; 3] = ["ETH-USDT", "BNB-BTC", "DOGE-BNB"];

/// A private redis-server on `port`, killed when dropped.
struct PrivateRedis {
    port: u16,
    child: Option<common::Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let mut r = PrivateRedis { port, child: None };
        r.restart();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(common::Child(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = self
                .client()
                .get_connection()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if up.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        self.child = None;
    }

    /// Every key under `prefix:` and its value.
    fn values(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        let mut c = self.client().get_connection().unwrap();
        let keys: Vec<String> = c.keys(format!("{prefix}:*")).unwrap();
        keys.into_iter()
            .map(|k| {
                let v: Vec<u8> = c.get(&k).unwrap();
                (k, v)
            })
            .collect()
    }
}

/// Polls `cond` every 20 ms until it holds or `within` passes; whether it held.
async fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last Kafka record of each (data type, exchange, symbol) of `dt`'s topic, under the
/// Redis key the sink should use, with the record's decoded form.
fn last_kafka_records(
    cfg: &Config,
    dt: DataType,
    key_prefix: &str,
) -> BTreeMap<String, (Vec<u8>, Normalized)> {
    let topic = format!("{}.{}", cfg.producer.topic_prefix, dt.as_str());
    let mut records = common::consume(
        &common::kafka_addr(),
        &topic,
        cfg.producer.partitions,
        1_000_000,
        Duration::from_secs(4),
    );
    // One Kafka key lives in one partition: its last record is its highest offset there.
    records.sort_by_key(|r| (r.partition, r.offset));
    let mut last = BTreeMap::new();
    for r in records {
        let n = Normalized::decode(dt, wire::parse(&r.value).unwrap().payload).unwrap();
        // The Kafka record key is the composite routing key `<exchange>-<symbol>`.
        assert_eq!(
            r.key.as_deref(),
            Some(format!("{}-{}", n.exchange(), n.symbol()).as_bytes())
        );
        let key = format!(
            "{key_prefix}:{topic}:{}:{}:{}",
            dt.as_str(),
            n.exchange(),
            n.symbol()
        );
        last.insert(key, (r.value, n));
    }
    last
}

fn norm(venue_symbol: &str) -> &'static str {
    match venue_symbol {
        "NKNUSDT" => "NKN-USDT",
        "LRCBTC" => "LRC-BTC",
        "BLZETH" => "BLZ-ETH",
        "RUNEEUR" => "RUNE-EUR",
        "ETHUSDT" => "ETH-USDT",
        "BNBBTC" => "BNB-BTC",
        "DOGEBNB" => "DOGE-BNB",
        other => panic!("no such recorded symbol {other}"),
    }
}

/// Data frames the feeds below subscribe to, counted in the recording.
fn subscribed_frames() -> u64 {
    let mut n = 0;
    for (file, book, trade) in [
        ("binance_depthUpdate.jsonl", true, false),
        ("binance_bookTicker.jsonl", true, false),
        ("binance_trade.jsonl", true, true),
        ("binance_aggTrade.jsonl", true, true),
    ] {
        for line in std::fs::read_to_string(format!("{FIXTURES}/{file}"))
            .unwrap()
            .lines()
        {
            let d = serde_json::from_str::<serde_json::Value>(line).unwrap()["data"].clone();
            let s = norm(d["s"].as_str().unwrap());
            if (book && BOOK_SYMBOLS.contains(&s)) || (trade && TRADE_SYMBOLS.contains(&s)) {
                n += 1;
            }
        }
    }
    n
}

fn feeds(url: &str) -> Vec<FeedConfig> {
    let base = |symbols: &[&str], channels: Vec<Channel>| FeedConfig {
        venue: "binance".into(),
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        channels,
        ws_url: Some(format!("ws://{url}")),
        rest_url: Some(format!("http://{url}")),
        snapshot_interval: Duration::from_millis(10),
        book_snapshot_every: 50,
        ..Default::default()
    };
    vec![
        base(
            &BOOK_SYMBOLS,
            vec![
                Channel::Depth,
                Channel::BookTicker,
                Channel::Trade,
                Channel::AggTrade,
            ],
        ),
        base(&TRADE_SYMBOLS, vec![Channel::Trade, Channel::AggTrade]),
    ]
}

fn sink_config(redis: &PrivateRedis, prefix: &str) -> RedisSinkConfig {
    RedisSinkConfig {
        enabled: true,
        url: redis.url(),
        key_prefix: prefix.into(),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(300),
        health_interval: Duration::from_millis(200),
        timeout: Duration::from_millis(500),
        ..RedisSinkConfig::default()
    }
}

#[actix_rt::test]
async fn a_replay_leaves_the_last_kafka_record_of_each_instrument_in_redis() {
    common::init_logs();
    let redis = PrivateRedis::start(common::free_port());
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: FIXTURES.into(),
        speed: 0.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("redis-e2e");
    let key_prefix = common::unique_topic("tf");
    cfg.redis = sink_config(&redis, &key_prefix);
    cfg.feeds = feeds(&replay.addr.to_string());
    cfg.validate().unwrap();
    let service = Service::start(cfg.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), replay.finished())
        .await
        .expect("replay played");
    let frames = subscribed_frames();
    let sum = |f: fn(&tickflow::feed::FeedStats) -> &std::sync::atomic::AtomicU64| -> u64 {
        service
            .feeds
            .iter()
            .map(|x| f(&x.stats).load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    };
    let settled = wait_until(Duration::from_secs(30), || {
        sum(|s| &s.frames) >= frames && sum(|s| &s.syncs) >= BOOK_SYMBOLS.len() as u64
    })
    .await;
    // Graceful: everything read is produced and answered, then the sink writes what waits.
    service.shutdown().await;
    assert!(settled, "the feeds did not settle after the replay");
    assert_eq!(sum(|s| &s.nacked), 0);
    assert!(service.redis.as_ref().unwrap().ready());

    let in_redis = redis.values(&key_prefix);
    let mut expected = BTreeMap::new();
    // The default data types: every type but level2_delta and feed_event (neither is a latest
    // value of anything alone), so Redis holds no key of either.
    for dt in [DataType::Trade, DataType::TopOfBook, DataType::Level2Book] {
        expected.extend(last_kafka_records(&cfg, dt, &key_prefix));
    }
    for skipped in ["level2_delta", "feed_event"] {
        let infix = format!(":{skipped}:");
        assert_eq!(
            in_redis.keys().filter(|k| k.contains(&infix)).count(),
            0,
            "{skipped} is not kept by default"
        );
    }
    let redis_keys: BTreeSet<&String> = in_redis.keys().collect();
    let kafka_keys: BTreeSet<&String> = expected.keys().collect();
    assert_eq!(redis_keys, kafka_keys);
    for (key, (value, _)) in &expected {
        assert!(
            &in_redis[key] == value,
            "{key}: Redis holds other bytes than the last Kafka record"
        );
    }
    // Trades, typed by hand from the recording: per symbol, the last trade of the recording.
    // BNBBTC: binance_trade.jsonl lines 2 then 3 (t 40756030, 60276726); NKNUSDT and LRCBTC one
    // aggTrade each (a 15683430, 9213679). ETHUSDT has a trade (t 705291099) and an aggTrade
    // (a 226532) on two streams: either may come last; the byte comparison above says which.
    let trade_topic = format!("{}.trade", cfg.producer.topic_prefix);
    let trade_id = |symbol: &str| {
        let key = format!("{key_prefix}:{trade_topic}:trade:BINANCE:{symbol}");
        let framed = in_redis.get(&key).unwrap_or_else(|| panic!("no {key}"));
        match Normalized::decode(DataType::Trade, wire::parse(framed).unwrap().payload).unwrap() {
            Normalized::Trade(t) => {
                assert_eq!(
                    (t.exchange.as_str(), t.symbol.as_str()),
                    ("BINANCE", symbol)
                );
                t.trade_id
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(trade_id("BNB-BTC"), "60276726");
    assert_eq!(trade_id("NKN-USDT"), "15683430");
    assert_eq!(trade_id("LRC-BTC"), "9213679");
    let eth = trade_id("ETH-USDT");
    assert!(eth == "705291099" || eth == "226532", "{eth}");
    let trade_keys = in_redis
        .keys()
        .filter(|k| k.starts_with(&format!("{key_prefix}:{trade_topic}:trade:")))
        .count();
    assert_eq!(
        trade_keys, 4,
        "DOGEBNB, BLZETH, RUNEEUR have no recorded trade"
    );
}

/// A sink's readiness, required (as with `redis.required = true`).
struct Required(Arc<RedisSink>);

impl SinkReadiness for Required {
    fn check(&self) -> tickflow::http::Check {
        self.0.check()
    }

    fn required(&self) -> bool {
        true
    }
}

/// Produces `n` trades with ids from `first`, all in flight at once; the acks per second.
async fn produce_rate(producer: &ProducerHandle, first: u64, n: u64) -> f64 {
    let started = Instant::now();
    let answers = futures::future::join_all(
        (first..first + n)
            .map(|i| producer.produce(ProduceEvent::typed(Normalized::Trade(common::trade(i))))),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    for a in answers {
        a.unwrap();
    }
    n as f64 / elapsed
}

#[actix_rt::test]
async fn redis_going_away_keeps_the_kafka_rate_and_the_sink_heals_itself() {
    common::init_logs();
    let mut redis = PrivateRedis::start(common::free_port());
    let mut cfg = common::test_config("redis-outage");
    let key_prefix = common::unique_topic("tf");
    cfg.redis = sink_config(&redis, &key_prefix);
    // The Kafka path's rate with Redis down may be at most this much lower (percent). Loose
    // on purpose: two phases of one run on a shared 2-core machine; `make bench` measures
    // the ratio precisely. (The tap never waits on Redis, so nothing needs throttling.)
    const BUDGET_PCT: f64 = 50.0;
    // Room for a whole phase: no backpressure wait, so records are queued in id order.
    cfg.producer.queue_capacity = 50_000;
    cfg.producer.max_in_flight = 50_000;
    cfg.validate().unwrap();
    let metrics = Metrics::new();
    let sink = Arc::new(RedisSink::start(cfg.redis.clone(), metrics.clone()).unwrap());
    let producer =
        ProducerHandle::start_with_tap(cfg.clone(), metrics.clone(), Some(sink.tap())).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.ready()).await);

    // Warm up (topic, schema), then the rate with Redis up.
    produce_rate(&producer, 0, 2_000).await;
    let up = produce_rate(&producer, 10_000, 20_000).await;

    redis.kill();
    assert!(
        wait_until(Duration::from_secs(5), || !sink.ready()).await,
        "the sink still says ready with Redis gone"
    );
    let observed = tickflow::http::Observed {
        metrics: metrics.clone(),
        config: cfg.clone(),
        feeds: vec![],
        sinks: vec![("redis".into(), sink.clone())],
        cluster: None,
    };
    let r = tickflow::http::readiness(&observed).await;
    assert_eq!(r.sinks.len(), 1);
    assert!(!r.sinks[0].1.ok, "{:?}", r.sinks);
    assert!(
        r.sinks[0].1.detail.ends_with("(not required)"),
        "{:?}",
        r.sinks
    );
    // Not required: the service stays ready (broker and registry are up).
    assert!(r.ready, "{r:?}");
    // The same sink, required: the service is not ready.
    let required = tickflow::http::Observed {
        sinks: vec![("redis".into(), Arc::new(Required(sink.clone())))],
        ..observed
    };
    let r = tickflow::http::readiness(&required).await;
    assert!(!r.ready && !r.sinks[0].1.ok, "{r:?}");
    assert!(!r.sinks[0].1.detail.contains("not required"), "{r:?}");

    let down = produce_rate(&producer, 100_000, 20_000).await;
    let floor = up * (1.0 - BUDGET_PCT / 100.0);
    eprintln!("Kafka path: {up:.0} acks/s with Redis up, {down:.0} acks/s with Redis down");
    assert!(
        down >= floor,
        "Kafka path: {down:.0}/s with Redis down, {up:.0}/s with it up (budget {BUDGET_PCT}%)"
    );
    assert!(metrics.redis_write_failures.get() > 0);
    assert!(metrics.redis_coalesced.get() > 0);
    assert_eq!(metrics.redis_dropped.get(), 0);

    // Redis back (empty: it keeps nothing on disk): the sink writes what it kept by itself.
    redis.restart();
    assert!(
        wait_until(Duration::from_secs(10), || sink.ready()).await,
        "the sink did not recover"
    );
    let last = last_kafka_records(&cfg, DataType::Trade, &key_prefix);
    assert_eq!(last.len(), 3, "three symbols");
    let healed = wait_until(Duration::from_secs(10), || {
        let now = redis.values(&key_prefix);
        now.len() == last.len() && last.iter().all(|(k, (v, _))| now.get(k) == Some(v))
    })
    .await;
    let now = redis.values(&key_prefix);
    assert!(
        healed,
        "Redis keys {:?}, expected {:?}",
        now.keys().collect::<Vec<_>>(),
        last.keys().collect::<Vec<_>>()
    );
    // The last trades sent: ids 119_997..119_999 (one per symbol, trade(n) rotates three).
    let mut ids: Vec<String> = last
        .values()
        .map(|(_, n)| match n {
            Normalized::Trade(t) => t.trade_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["119997", "119998", "119999"]);
    producer.shutdown().await;
    sink.shutdown().await;
}

#[tokio::test]
async fn a_sink_started_while_redis_is_down_writes_once_redis_comes_up() {
    let port = common::free_port();
    let key_prefix = common::unique_topic("tf");
    // Nothing listens on `port` yet.
    let cfg = RedisSinkConfig {
        enabled: true,
        url: format!("redis://127.0.0.1:{port}"),
        key_prefix: key_prefix.clone(),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(300),
        health_interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        ..RedisSinkConfig::default()
    };
    let metrics = Metrics::new();
    let sink = RedisSink::start(cfg, metrics.clone()).unwrap();
    let tap = sink.tap();
    let event = |symbol: &str, id: &str| {
        ProduceEvent::typed(Normalized::Trade(tickflow::schema::Trade {
            exchange: "KRAKEN".into(),
            symbol: symbol.into(),
            trade_id: id.into(),
            ..Default::default()
        }))
    };
    for (symbol, id, value) in [
        ("BTC-USD", "1", &b"btc-1"[..]),
        ("BTC-USD", "2", b"btc-2"),
        ("ETH-USD", "3", b"eth-3"),
    ] {
        let key = tap.key("t", &event(symbol, id)).unwrap();
        tap.stored(key, bytes::Bytes::copy_from_slice(value));
    }
    assert!(
        wait_until(Duration::from_secs(5), || metrics
            .redis_write_failures
            .get()
            > 0)
        .await,
        "no failed write while Redis is down"
    );
    assert!(!sink.ready());
    let redis = PrivateRedis::start(port);
    assert!(wait_until(Duration::from_secs(10), || sink.ready()).await);
    let want: BTreeMap<String, Vec<u8>> = [
        (
            format!("{key_prefix}:t:trade:KRAKEN:BTC-USD"),
            b"btc-2".to_vec(),
        ),
        (
            format!("{key_prefix}:t:trade:KRAKEN:ETH-USD"),
            b"eth-3".to_vec(),
        ),
    ]
    .into();
    assert!(
        wait_until(Duration::from_secs(10), || redis.values(&key_prefix)
            == want)
        .await,
        "{:?}",
        redis.values(&key_prefix)
    );
    assert_eq!(metrics.redis_written.get(), 2);
    // btc-1 was replaced by btc-2 before any write went through: one value coalesced.
    assert_eq!(metrics.redis_coalesced.get(), 1);
    sink.shutdown().await;
}
