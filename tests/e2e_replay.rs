//! End to end on recorded Binance data: replay server → feeds over WebSocket → books →
//! producer actors → the real broker and registry; then the topics are consumed, decoded and
//! compared with the golden parse of the same recorded lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use tickflow::config::{Config, FeedConfig};
use tickflow::replay::{ReplayServer, ReplayServerConfig};
use tickflow::schema::{wire, DataType, Level2Book, Level2Delta, Normalized};
use tickflow::supervisor::service::Service;
use tickflow::venues::{binance::Binance, Channel, Instrument, SymbolMap, Venue};

const FIXTURES: &str = "tests/fixtures/binance";
const BOOK_SYMBOLS: [&str; 4] = ["NKN-USDT", "LRC-BTC", "BLZ-ETH", "RUNE-EUR"];
const TRADE_SYMBOLS: [&str; 3] = ["ETH-USDT", "BNB-BTC", "DOGE-BNB"];

fn feeds(url: &str) -> Vec<FeedConfig> {
    let base = |symbols: &[&str], channels: Vec<Channel>| FeedConfig {
        venue: "binance".into(),
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        channels,
        ws_url: Some(format!("ws://{url}")),
        rest_url: Some(format!("http://{url}")),
        snapshot_interval_ms: 10,
        book_snapshot_every: 50,
        reconnect_min_ms: 100,
        reconnect_max_ms: 500,
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
                Channel::Candle,
            ],
        ),
        base(
            &TRADE_SYMBOLS,
            vec![Channel::Trade, Channel::AggTrade, Channel::Ticker],
        ),
    ]
}

async fn run_replay(prefix: &str, drop_after_frames: u64, speed: f64) -> (Config, Service) {
    let replay = ReplayServer::start(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: FIXTURES.into(),
        speed,
        drop_after_frames,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config(prefix);
    cfg.feeds = feeds(&replay.addr.to_string());
    cfg.validate().unwrap();
    let service = Service::start(cfg.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), replay.finished())
        .await
        .expect("replay played");
    // Let the books that synced last flush, then stop gracefully (everything read is produced).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    service.shutdown().await;
    (cfg, service)
}

fn consume<T>(cfg: &Config, dt: DataType, decode: impl Fn(Normalized) -> T) -> Vec<T> {
    let topic = format!("{}.{}", cfg.producer.topic_prefix, dt.as_str());
    let got = common::consume(
        &common::kafka_addr(),
        &topic,
        cfg.producer.partitions,
        100_000,
        Duration::from_secs(4),
    );
    let mut got: Vec<_> = got
        .into_iter()
        .map(|r| {
            assert_eq!(r.headers["data_type"], dt.as_str());
            (
                (r.partition, r.offset),
                decode(Normalized::decode(dt, wire::parse(&r.value).unwrap().payload).unwrap()),
            )
        })
        .collect();
    got.sort_by_key(|(pos, _)| *pos);
    got.into_iter().map(|(_, t)| t).collect()
}

/// Every `Level2Book` and `Level2Delta` produced, each in offset order.
fn consume_books(cfg: &Config) -> (Vec<Level2Book>, Vec<Level2Delta>) {
    let books = consume(cfg, DataType::Level2Book, |r| match r {
        Normalized::Level2Book(b) => b,
        other => panic!("not a book: {other:?}"),
    });
    let deltas = consume(cfg, DataType::Level2Delta, |r| match r {
        Normalized::Level2Delta(d) => d,
        other => panic!("not a delta: {other:?}"),
    });
    (books, deltas)
}

/// The golden records: the recorded lines the configured feeds subscribe to, parsed.
fn golden() -> Vec<Normalized> {
    let v = Binance::spot();
    let all: Vec<&str> = BOOK_SYMBOLS.iter().chain(&TRADE_SYMBOLS).copied().collect();
    let map = SymbolMap::new(all.iter().map(|s| {
        (
            v.venue_symbol(&Instrument::parse(s).unwrap()),
            s.to_string(),
        )
    }));
    let subscribed = |file: &str, sym: &str| {
        let book = BOOK_SYMBOLS.contains(&sym);
        match file {
            "binance_trade.jsonl" | "binance_aggTrade.jsonl" => true,
            "binance_bookTicker.jsonl" | "binance_kline.jsonl" => book,
            "binance_ticker.jsonl" => !book,
            _ => false,
        }
    };
    let mut out = Vec::new();
    for file in [
        "binance_trade.jsonl",
        "binance_aggTrade.jsonl",
        "binance_bookTicker.jsonl",
        "binance_kline.jsonl",
        "binance_ticker.jsonl",
    ] {
        for line in std::fs::read_to_string(format!("{FIXTURES}/{file}"))
            .unwrap()
            .lines()
        {
            let mut parsed = Vec::new();
            if v.parse(line, 0, &map, &mut parsed).is_err() {
                continue; // a symbol the feeds do not subscribe
            }
            for p in parsed {
                if let Some(r) = p.record() {
                    if subscribed(file, r.symbol()) {
                        out.push(r);
                    }
                }
            }
        }
    }
    out
}

fn without_receipt(mut r: Normalized) -> Normalized {
    match &mut r {
        Normalized::Trade(x) => x.receipt_time = 0,
        Normalized::TopOfBook(x) => x.receipt_time = 0,
        Normalized::Candle(x) => x.receipt_time = 0,
        Normalized::Ticker(x) => x.receipt_time = 0,
        _ => {}
    }
    r
}

/// Per symbol: deltas continue each other (`U == previous u + 1`) or restart right after a
/// synced book; nothing is duplicated or goes backwards. Returns the books and deltas by symbol.
fn check_chains(
    books: &[Level2Book],
    deltas: &[Level2Delta],
) -> HashMap<String, (Vec<Level2Book>, Vec<Level2Delta>)> {
    let mut by: HashMap<String, (Vec<Level2Book>, Vec<Level2Delta>)> = HashMap::new();
    for b in books {
        by.entry(b.symbol.clone()).or_default().0.push(b.clone());
    }
    for d in deltas {
        by.entry(d.symbol.clone()).or_default().1.push(d.clone());
    }
    for (sym, (books, deltas)) in &by {
        let sync_points: Vec<i64> = books.iter().map(|b| b.last_update_id.unwrap()).collect();
        assert!(
            sync_points.windows(2).all(|w| w[0] <= w[1]),
            "{sym}: books go backwards"
        );
        for w in deltas.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            let (a_u, b_first, b_u) = (
                a.last_update_id.unwrap(),
                b.first_update_id.unwrap(),
                b.last_update_id.unwrap(),
            );
            assert!(
                b_u > a_u,
                "{sym}: delta {b_u} after {a_u} (duplicated or reordered)"
            );
            let contiguous = b_first == a_u + 1;
            let after_resync = sync_points
                .iter()
                .any(|&l| l >= a_u && b_first <= l + 1 && l < b_u);
            assert!(
                contiguous || after_resync,
                "{sym}: delta [{b_first},{b_u}] does not follow {a_u}"
            );
        }
    }
    by
}

#[actix_rt::test]
async fn recorded_binance_data_lands_in_kafka_as_the_golden_records() {
    common::init_logs();
    let (cfg, service) = run_replay("e2e", 0, 0.0).await;
    let stats: Vec<_> = service.feeds.iter().map(|f| f.stats.clone()).collect();
    assert!(stats
        .iter()
        .all(|s| s.nacked.load(std::sync::atomic::Ordering::Relaxed) == 0));
    assert!(stats
        .iter()
        .all(|s| s.gaps.load(std::sync::atomic::Ordering::Relaxed) == 0));

    // Trades, tops of book, candles and tickers: exactly the golden set, each once.
    let mut want: Vec<String> = golden()
        .into_iter()
        .map(|r| format!("{:?}", without_receipt(r)))
        .collect();
    let mut got = Vec::new();
    for dt in [
        DataType::Trade,
        DataType::TopOfBook,
        DataType::Candle,
        DataType::Ticker,
    ] {
        for r in consume(&cfg, dt, |r| r) {
            assert!(match &r {
                Normalized::Trade(t) => t.receipt_time > 0,
                Normalized::TopOfBook(t) => t.receipt_time > 0,
                _ => true,
            });
            got.push(format!("{:?}", without_receipt(r)));
        }
    }
    want.sort();
    got.sort();
    eprintln!("golden records: {}, consumed: {}", want.len(), got.len());
    assert!(
        want.len() >= 90,
        "the golden set is the recording, not empty"
    );
    assert_eq!(
        got.len(),
        want.len(),
        "record count differs from the recording"
    );
    assert_eq!(got, want);

    // Books: every symbol synced, chains valid, and the final book equals an independent
    // reconstruction of snapshot + all recorded diffs.
    let (books, deltas) = consume_books(&cfg);
    let by = check_chains(&books, &deltas);
    eprintln!("books: {}, deltas: {}", books.len(), deltas.len());
    assert_eq!(by.len(), BOOK_SYMBOLS.len(), "every book symbol synced");
    let expected = reconstruct_final();
    for (sym, (books, deltas)) in by {
        let last = books.iter().max_by_key(|b| b.last_update_id).unwrap();
        let mut state: HashMap<(bool, Decimal), String> = HashMap::new();
        for l in &last.bids {
            state.insert(
                (true, Decimal::from_str(&l.price).unwrap()),
                l.quantity.clone(),
            );
        }
        for l in &last.asks {
            state.insert(
                (false, Decimal::from_str(&l.price).unwrap()),
                l.quantity.clone(),
            );
        }
        for d in deltas
            .iter()
            .filter(|d| d.last_update_id > last.last_update_id)
        {
            for (bid, lv) in d
                .bids
                .iter()
                .map(|l| (true, l))
                .chain(d.asks.iter().map(|l| (false, l)))
            {
                let k = (bid, Decimal::from_str(&lv.price).unwrap());
                if Decimal::from_str(&lv.quantity).unwrap().is_zero() {
                    state.remove(&k);
                } else {
                    state.insert(k, lv.quantity.clone());
                }
            }
        }
        assert_eq!(
            state, expected[&sym],
            "{sym}: final book differs from the reconstruction"
        );
    }
}

/// Snapshot + every recorded diff with u > lastUpdateId, per normalized symbol.
fn reconstruct_final() -> HashMap<String, HashMap<(bool, Decimal), String>> {
    let manifest = std::fs::read_to_string(format!("{FIXTURES}/MANIFEST.tsv")).unwrap();
    let syms: Vec<String> = manifest
        .lines()
        .filter(|l| l.starts_with("binance_depth_snapshot_rest.jsonl\t"))
        .map(|l| {
            l.split("symbol=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let snaps =
        std::fs::read_to_string(format!("{FIXTURES}/binance_depth_snapshot_rest.jsonl")).unwrap();
    let diffs = std::fs::read_to_string(format!("{FIXTURES}/binance_depthUpdate.jsonl")).unwrap();
    let mut out = HashMap::new();
    for (sym, snap) in syms.iter().zip(snaps.lines()) {
        let snap: serde_json::Value = serde_json::from_str(snap).unwrap();
        let l0 = snap["lastUpdateId"].as_i64().unwrap();
        let mut state = HashMap::new();
        let mut set = |bid: bool, p: &serde_json::Value| {
            let k = (bid, Decimal::from_str(p[0].as_str().unwrap()).unwrap());
            let q = p[1].as_str().unwrap();
            if Decimal::from_str(q).unwrap().is_zero() {
                state.remove(&k);
            } else {
                state.insert(k, q.to_string());
            }
        };
        for p in snap["bids"].as_array().unwrap() {
            set(true, p);
        }
        for p in snap["asks"].as_array().unwrap() {
            set(false, p);
        }
        for d in diffs.lines() {
            let d: serde_json::Value = serde_json::from_str(d).unwrap();
            let d = &d["data"];
            if d["s"].as_str() != Some(sym) || d["u"].as_i64().unwrap() <= l0 {
                continue;
            }
            for p in d["b"].as_array().unwrap() {
                set(true, p);
            }
            for p in d["a"].as_array().unwrap() {
                set(false, p);
            }
        }
        let norm = BOOK_SYMBOLS
            .iter()
            .find(|n| n.replace('-', "") == *sym)
            .unwrap();
        out.insert(norm.to_string(), state);
    }
    out
}

#[actix_rt::test]
async fn a_dropped_websocket_reconnects_resyncs_and_duplicates_nothing() {
    common::init_logs();
    // Recorded pace x2000 so the drop lands mid-stream with books already in sync.
    let (cfg, service) = run_replay("e2edrop", 150, 2000.0).await;
    let reconnects: u64 = service
        .feeds
        .iter()
        .map(|f| {
            f.stats
                .reconnects
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert_eq!(
        reconnects, 1,
        "the dropped connection was re-established once"
    );
    let m = service.producer.metrics();
    assert!(m.sample("tickflow_feed_reconnects_total") >= 1.0);

    let trades = consume(&cfg, DataType::Trade, |r| match r {
        Normalized::Trade(t) => t,
        _ => unreachable!(),
    });
    let mut seen = std::collections::HashSet::new();
    for t in &trades {
        assert!(
            seen.insert((t.symbol.clone(), t.trade_id.clone(), t.trade_type.clone())),
            "duplicate trade {t:?}"
        );
    }
    let (books, deltas) = consume_books(&cfg);
    let by = check_chains(&books, &deltas);
    eprintln!(
        "after the drop: trades {}, books {}, deltas {}",
        trades.len(),
        books.len(),
        deltas.len()
    );
    assert!(!by.is_empty());
    assert!(deltas.len() > 20, "deltas flowed around the reconnect");
    // The reconnect forced a resync: at least one symbol has more than one synced book.
    assert!(
        m.sample("tickflow_book_syncs_total") > BOOK_SYMBOLS.len() as f64,
        "resynced after the reconnect"
    );
}

/// `config/replay.toml` on free ports, the dev stack and a fresh topic prefix, with `loops`.
fn replay_config_file(loops: u32) -> (tempfile::NamedTempFile, String) {
    let (spot, fut) = (common::free_port(), common::free_port());
    let (coinm, kraken) = (common::free_port(), common::free_port());
    let prefix = common::unique_topic("cli");
    let cfg = std::fs::read_to_string("config/replay.toml")
        .unwrap()
        .replace("127.0.0.1:18080", &format!("127.0.0.1:{spot}"))
        .replace("127.0.0.1:18081", &format!("127.0.0.1:{fut}"))
        .replace("127.0.0.1:18082", &format!("127.0.0.1:{coinm}"))
        .replace("127.0.0.1:18083", &format!("127.0.0.1:{kraken}"))
        .replace(
            "topic_prefix = \"tickflow\"",
            &format!("topic_prefix = \"{prefix}\""),
        )
        .replace("loops = 20", &format!("loops = {loops}"))
        .replace("127.0.0.1:9898", "127.0.0.1:0")
        .replace("127.0.0.1:9092", &common::kafka_addr())
        .replace("http://127.0.0.1:8081", &common::registry_url());
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), cfg).unwrap();
    (file, prefix)
}

const DATA_TYPES: [&str; 10] = [
    "trade",
    "level2_book",
    "level2_delta",
    "top_of_book",
    "candle",
    "ticker",
    "funding",
    "liquidation",
    "open_interest",
    "feed_event",
];

#[test]
fn tickflow_run_binary_replays_to_kafka_and_exits_cleanly() {
    let (file, prefix) = replay_config_file(2);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args(["run", "--config"])
        .arg(file.path())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{log}", out.status);
    assert!(log.contains("replay finished"), "{log}");
    assert!(log.contains("progress"), "{log}");
    for dt in DATA_TYPES {
        let got = common::consume(
            &common::kafka_addr(),
            &format!("{prefix}.{dt}"),
            4,
            1,
            Duration::from_secs(10),
        );
        assert_eq!(got.len(), 1, "nothing in {prefix}.{dt}");
        let frame = wire::parse(&got[0].value).unwrap();
        Normalized::decode(DataType::parse(dt).unwrap(), frame.payload).unwrap();
    }
}

#[test]
fn sigterm_stops_tickflow_run_gracefully_with_every_event_answered() {
    // Many loops: the replay is still playing when the signal comes.
    let (file, prefix) = replay_config_file(100_000);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(file.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("stop requested"), "{log}");
    assert!(
        !log.contains("replay finished"),
        "stopped by the signal, not the replay's end"
    );
    // The last "all topics" progress line is written after the graceful stop.
    let last = log
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "progress (all topics)")
        .unwrap_or_else(|| panic!("no progress line: {log}"));
    let acked = last["fields"]["produced"].as_f64().unwrap() as i64;
    let nacked = last["fields"]["nacks"].as_f64().unwrap();
    assert!(acked > 1_000, "the replay was flowing: {acked}");
    assert_eq!(
        nacked, 0.0,
        "a graceful stop answers everything with an Ack: {last}"
    );
    // Nothing acked is lost and nothing unacked was written: the topics hold exactly the acks.
    // (Counted by consuming: tansu's watermarks are not exact record counts.)
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", common::kafka_addr())
        .set("group.id", common::unique_topic("sigterm"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for dt in DATA_TYPES {
        for p in 0..4 {
            tpl.add_partition_offset(&format!("{prefix}.{dt}"), p, rdkafka::Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    let (mut stored, mut quiet_since) = (0i64, std::time::Instant::now());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Read all the acked records, then 2 s more, so extra records would be seen too.
    while (stored < acked || quiet_since.elapsed() < Duration::from_secs(2))
        && std::time::Instant::now() < deadline
    {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            wire::parse(m.payload().unwrap()).unwrap();
            stored += 1;
            quiet_since = std::time::Instant::now();
        }
    }
    assert_eq!(stored, acked, "records in Kafka = events acked");
}

#[actix_rt::test]
async fn symbols_come_from_exchange_info_and_unlisted_ones_are_counted() {
    let replay = ReplayServer::start(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: FIXTURES.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("xinfo");
    let mut feed = feeds(&replay.addr.to_string()).remove(0);
    feed.symbols = vec!["NKN-USDT".into(), "FOO-USDT".into()];
    feed.channels = vec![Channel::BookTicker];
    cfg.feeds = vec![feed];
    let service = Service::start(cfg.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), replay.finished())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    service.shutdown().await;
    let m = service.producer.metrics();
    assert_eq!(
        m.sample("tickflow_feed_errors_total{exchange=\"BINANCE\",kind=\"unknown_symbol\"}"),
        1.0
    );
    let tops = consume(&cfg, DataType::TopOfBook, |r| r);
    assert_eq!(tops.len(), 74, "every recorded NKNUSDT bookTicker");
    assert!(tops.iter().all(|r| r.symbol() == "NKN-USDT"));
}
