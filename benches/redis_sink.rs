//! The Redis latest-value sink (`make bench`), against the machine's Redis on 127.0.0.1:6379
//! and the dev stack's broker and registry.
//!
//! (1) Redis updates/s for a burst over few keys: every update written (one pipelined
//!     `SET … PX` each) versus the sink (coalesced: only the latest value per key is written);
//!     the time runs until Redis holds the last value of every key.
//! (2) The Kafka path's acks/s with the sink off and on (same run, alternating rounds), and
//!     the ratio on/off.
//! `TICKFLOW_REDIS_BENCH_N` sets the updates of (1) (default 200 000), `TICKFLOW_LOAD_N` the
//! events per round of (2) (default 50 000), `TICKFLOW_LOAD_ROUNDS` the rounds (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Commands;
use tickflow::config::Config;
use tickflow::metrics::Metrics;
use tickflow::producer::tap::RecordTap;
use tickflow::producer::ProduceEvent;
use tickflow::schema::v2beta1::trade::Side;
use tickflow::schema::{Normalized, Trade};
use tickflow::sinks::redis::config::RedisSinkConfig;
use tickflow::sinks::redis::RedisSink;
use tickflow::supervisor::ProducerHandle;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REDIS: &str = "redis://127.0.0.1:6379";
const SYMS: [&str; 8] = [
    "BTC-USDT", "ETH-USDT", "SOL-USDT", "NKN-USDT", "LRC-BTC", "BNB-BTC", "BLZ-ETH", "DOGE-BNB",
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn trade(n: u64) -> Trade {
    Trade {
        exchange: "BINANCE".into(),
        symbol: SYMS[(n % 4) as usize].into(),
        side: if n % 2 == 0 { Side::Buy } else { Side::Sell } as i32,
        trade_id: (1_034_283_941 + n).to_string(),
        price: "58850.01000000".into(),
        amount: "0.00170000".into(),
        timestamp: 1_619_712_000_123_000 + n as i64,
        raw_id: (1_034_283_941 + n).to_string(),
        maker: Some(n % 3 == 0),
        event_time: Some(1_619_712_000_124_000 + n as i64),
        receipt_time: 1_619_712_000_130_456 + n as i64,
        ..Default::default()
    }
}

fn prefix(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("bench{what}{nanos}")
}

/// A value of ~120 bytes, distinct per update.
fn value(i: u64) -> Bytes {
    let mut v = vec![0u8; 120];
    v[..8].copy_from_slice(&i.to_be_bytes());
    Bytes::from(v)
}

fn sink_config(key_prefix: &str) -> RedisSinkConfig {
    RedisSinkConfig {
        enabled: true,
        url: REDIS.into(),
        key_prefix: key_prefix.into(),
        ttl: Duration::from_secs(120),
        ..RedisSinkConfig::default()
    }
}

/// Waits until Redis holds `want` under every key.
fn wait_for_values(con: &mut redis::Connection, want: &[(String, Bytes)]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all = want
            .iter()
            .all(|(k, v)| con.get::<_, Option<Vec<u8>>>(k).unwrap().as_deref() == Some(v.as_ref()));
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Redis never held the last values"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// (1a) Every update written: pipelines of 1 000 `SET … PX`.
fn every_update(n: u64) -> f64 {
    let client = redis::Client::open(REDIS).unwrap();
    let mut con = client.get_connection().unwrap();
    let p = prefix("all");
    let keys: Vec<String> = SYMS
        .iter()
        .map(|s| format!("{p}:trade:BINANCE:{s}"))
        .collect();
    let started = Instant::now();
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SET")
            .arg(&keys[(i % 8) as usize])
            .arg(value(i).as_ref())
            .arg("PX")
            .arg(120_000)
            .ignore();
        if (i + 1) % 1_000 == 0 || i + 1 == n {
            pipe.query::<()>(&mut con).unwrap();
            pipe = redis::pipe();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    n as f64 / elapsed
}

/// (1b) The same burst through the sink's tap: only the latest value per key is written.
async fn coalesced(n: u64) -> (f64, u64, u64) {
    let p = prefix("sink");
    let metrics = Metrics::new();
    let sink = RedisSink::start(sink_config(&p), metrics.clone()).unwrap();
    let tap = sink.tap();
    let events: Vec<ProduceEvent> = (0..8u64)
        .map(|i| {
            let mut t = trade(i);
            t.symbol = SYMS[i as usize].into();
            ProduceEvent::typed(Normalized::Trade(t))
        })
        .collect();
    let values: Vec<Bytes> = (0..n).map(value).collect();
    let last: Vec<(String, Bytes)> = (n.saturating_sub(8)..n)
        .map(|i| {
            (
                format!("{p}:t:trade:BINANCE:{}", SYMS[(i % 8) as usize]),
                values[i as usize].clone(),
            )
        })
        .collect();
    let mut con = redis::Client::open(REDIS)
        .unwrap()
        .get_connection()
        .unwrap();
    let started = Instant::now();
    for (i, v) in values.iter().enumerate() {
        if let Some(key) = tap.key("t", &events[i % 8]) {
            tap.stored(key, v.clone());
        }
        if i % 4096 == 0 {
            // Let the writer (same runtime) run, as the producer streams would.
            tokio::task::yield_now().await;
        }
    }
    let waited = tokio::task::spawn_blocking(move || {
        wait_for_values(&mut con, &last);
    });
    waited.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    sink.shutdown().await;
    (
        n as f64 / elapsed,
        metrics.redis_written.get(),
        metrics.redis_coalesced.get(),
    )
}

/// (2) acks/s of one round: `n` trades, at most 10 000 in flight.
async fn kafka_round(producer: &ProducerHandle, first: u64, n: u64) -> f64 {
    let started = Instant::now();
    let mut i = first;
    while i < first + n {
        let end = (i + 10_000).min(first + n);
        let answers = futures::future::join_all(
            (i..end).map(|j| producer.produce(ProduceEvent::typed(Normalized::Trade(trade(j))))),
        )
        .await;
        for a in answers {
            a.unwrap();
        }
        i = end;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn base_config(topic_prefix: &str) -> Config {
    let mut c = Config::default();
    c.kafka.bootstrap_servers =
        std::env::var("TICKFLOW_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
    c.schema_registry.url =
        std::env::var("TICKFLOW_TEST_REGISTRY").unwrap_or_else(|_| "http://127.0.0.1:8081".into());
    c.producer.topic_prefix = topic_prefix.into();
    c.producer.partitions = 4;
    c
}

async fn kafka_on_off(n: u64, rounds: usize) -> (f64, f64, u64) {
    let off_cfg = base_config(&prefix("off"));
    let on_cfg = base_config(&prefix("on"));
    let off = ProducerHandle::start_with_tap(off_cfg, Metrics::new(), None).unwrap();
    let metrics = Metrics::new();
    let sink = RedisSink::start(sink_config(&prefix("kafka")), metrics.clone()).unwrap();
    let tap: Arc<dyn RecordTap> = sink.tap();
    let on = ProducerHandle::start_with_tap(on_cfg, metrics.clone(), Some(tap)).unwrap();
    // Warm up both: topics, schemas, connections.
    kafka_round(&off, 0, 5_000).await;
    kafka_round(&on, 0, 5_000).await;
    let (mut r_off, mut r_on) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let first = 1_000_000 * (r as u64 + 1);
        // Alternate which goes first, so drift in the broker favours neither.
        if r % 2 == 0 {
            r_off.push(kafka_round(&off, first, n).await);
            r_on.push(kafka_round(&on, first, n).await);
        } else {
            r_on.push(kafka_round(&on, first, n).await);
            r_off.push(kafka_round(&off, first, n).await);
        }
        println!(
            "round {r}: sink off {:.0} acks/s, on {:.0} acks/s",
            r_off[r], r_on[r]
        );
    }
    off.shutdown().await;
    on.shutdown().await;
    sink.shutdown().await;
    (median(r_off), median(r_on), metrics.redis_written.get())
}

fn main() {
    let n = env("TICKFLOW_REDIS_BENCH_N", 200_000) as u64;
    let load_n = env("TICKFLOW_LOAD_N", 50_000) as u64;
    let rounds = env("TICKFLOW_LOAD_ROUNDS", 5).max(1);
    let all = every_update(n);
    println!("redis: {n} updates over 8 keys, every update written: {all:.0} updates/s");
    let system = actix_rt::System::new();
    let (sink_rate, written, coalesced) = system.block_on(coalesced(n));
    println!(
        "redis: the same burst through the sink (coalesced): {sink_rate:.0} updates/s \
         ({written} written, {coalesced} coalesced); ratio coalesced/every = {:.1}",
        sink_rate / all
    );
    let (off, on, written) = system.block_on(kafka_on_off(load_n, rounds));
    println!(
        "kafka path, median of {rounds} rounds of {load_n}: sink off {off:.0} acks/s, \
         sink on {on:.0} acks/s ({written} Redis writes); ratio on/off = {:.3}",
        on / off
    );
}
