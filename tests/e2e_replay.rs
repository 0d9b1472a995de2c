//! End to end on recorded Binance data: replay server → feeds over WebSocket → books →
//! producer actors → the real broker and registry; then the topics are consumed, decoded and
//! compared with the golden parse of the same recorded lines.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rust_decimal::Decimal;
use tickflow::config::{Config, FeedConfig};
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::level2_delta::PriceLevel;
use tickflow::schema::v2beta1::trade::Side;
use tickflow::schema::{
    wire, Candle, DataType, Level2Book, Level2Delta, Normalized, Ticker, TopOfBook, Trade,
};
use tickflow::service::Service;
use tickflow::venues::Channel;

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
        snapshot_interval: Duration::from_millis(10),
        book_snapshot_every: 50,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
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

/// Polls `cond` every 50 ms until it holds or `within` passes; whether it held.
async fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sum(service: &Service, counter: impl Fn(&tickflow::feed::FeedStats) -> &AtomicU64) -> u64 {
    service
        .feeds
        .iter()
        .map(|f| counter(&f.stats).load(Ordering::Relaxed))
        .sum()
}

/// Plays the recording to the feeds of [`feeds`]; once it is played, waits until `settled`
/// holds (the feeds have read and handled what matters), then stops the service gracefully
/// (everything read is produced).
async fn run_replay(
    prefix: &str,
    drop_after_frames: u64,
    speed: f64,
    settled: impl Fn(&Service) -> bool,
) -> (Config, Service) {
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
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
    let settled = wait_until(Duration::from_secs(30), || settled(&service)).await;
    service.shutdown().await;
    assert!(settled, "the feeds did not settle after the replay");
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

/// The normalized symbol of a recorded venue symbol (typed here, not asked of the code).
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

/// The `data` payloads of a recorded file, in order.
fn recorded(file: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(format!("{FIXTURES}/{file}"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["data"].clone())
        .collect()
}

/// Data frames the feeds of [`feeds`] subscribe to, counted in the recording.
fn subscribed_frames() -> u64 {
    let mut n = 0;
    for (file, book, trade) in [
        ("binance_depthUpdate.jsonl", true, false),
        ("binance_bookTicker.jsonl", true, false),
        ("binance_kline.jsonl", true, false),
        ("binance_trade.jsonl", true, true),
        ("binance_aggTrade.jsonl", true, true),
        ("binance_ticker.jsonl", false, true),
    ] {
        for d in recorded(file) {
            let s = norm(d["s"].as_str().unwrap());
            if (book && BOOK_SYMBOLS.contains(&s)) || (trade && TRADE_SYMBOLS.contains(&s)) {
                n += 1;
            }
        }
    }
    n
}

fn level(p: &str, q: &str) -> PriceLevel {
    PriceLevel {
        price: p.into(),
        quantity: q.into(),
    }
}

/// Hand-typed: every recorded trade the feeds subscribe to (all of binance_trade.jsonl and
/// binance_aggTrade.jsonl). Binance `m` is "buyer is maker": the taker sold when it is true.
/// Times are ms × 1000 (µs); an aggTrade's id is its `a`, its match id `f-l`.
fn golden_trades() -> Vec<Trade> {
    let trade = |symbol: &str, side: Side, id: &str, price: &str, amount: &str| Trade {
        exchange: "BINANCE".into(),
        symbol: symbol.into(),
        side: side as i32,
        trade_id: id.into(),
        raw_id: id.into(),
        price: price.into(),
        amount: amount.into(),
        ..Trade::default()
    };
    vec![
        // binance_trade.jsonl line 1: ETHUSDT t 705291099, T 1639351062243, E …244, m true.
        Trade {
            timestamp: 1_639_351_062_243_000,
            event_time: Some(1_639_351_062_244_000),
            maker: Some(true),
            ..trade(
                "ETH-USDT",
                Side::Sell,
                "705291099",
                "4149.74000000",
                "0.43870000",
            )
        },
        // line 2: BNBBTC t 40756030, T 1554076800940, E …945, m false.
        Trade {
            timestamp: 1_554_076_800_940_000,
            event_time: Some(1_554_076_800_945_000),
            maker: Some(false),
            ..trade(
                "BNB-BTC",
                Side::Buy,
                "40756030",
                "0.00426990",
                "33.82000000",
            )
        },
        // line 3: BNBBTC t 60276726, T 1567296001034, E …038, m true.
        Trade {
            timestamp: 1_567_296_001_034_000,
            event_time: Some(1_567_296_001_038_000),
            maker: Some(true),
            ..trade(
                "BNB-BTC",
                Side::Sell,
                "60276726",
                "0.00219650",
                "6.48000000",
            )
        },
        // binance_aggTrade.jsonl line 1: NKNUSDT a 15683430, f = l = 19862790, T = E.
        Trade {
            timestamp: 1_633_998_523_963_000,
            event_time: Some(1_633_998_523_963_000),
            maker: Some(false),
            trade_type: Some("aggregate".into()),
            match_id: Some("19862790-19862790".into()),
            ..trade(
                "NKN-USDT",
                Side::Buy,
                "15683430",
                "0.35280000",
                "58.00000000",
            )
        },
        // line 2: LRCBTC a 9213679, f = l = 12368013, T = E.
        Trade {
            timestamp: 1_633_998_534_486_000,
            event_time: Some(1_633_998_534_486_000),
            maker: Some(false),
            trade_type: Some("aggregate".into()),
            match_id: Some("12368013-12368013".into()),
            ..trade(
                "LRC-BTC",
                Side::Buy,
                "9213679",
                "0.00000638",
                "177.00000000",
            )
        },
        // line 3: ETHUSDT a 226532, f = l = 228423, T 1675759520847, E …848.
        Trade {
            timestamp: 1_675_759_520_847_000,
            event_time: Some(1_675_759_520_848_000),
            maker: Some(false),
            trade_type: Some("aggregate".into()),
            match_id: Some("228423-228423".into()),
            ..trade(
                "ETH-USDT",
                Side::Buy,
                "226532",
                "1632.46000000",
                "0.34305000",
            )
        },
    ]
}

/// Hand-typed: both recorded 1-minute klines (binance_kline.jsonl lines 1-2). `t`/`T` are
/// the candle's open and close times; the record's timestamp is its close time.
fn golden_candles() -> Vec<Candle> {
    let candle = Candle {
        exchange: "BINANCE".into(),
        start: 1_633_998_480_000_000,
        stop: 1_633_998_539_999_000,
        timestamp: Some(1_633_998_539_999_000),
        interval: "1m".into(),
        closed: false,
        ..Candle::default()
    };
    vec![
        Candle {
            symbol: "NKN-USDT".into(),
            trades: Some(30),
            open: "0.35270000".into(),
            close: "0.35280000".into(),
            high: "0.35280000".into(),
            low: "0.35220000".into(),
            volume: "25877.00000000".into(),
            quote_volume: Some("9116.04600000".into()),
            event_time: Some(1_633_998_523_963_000),
            ..candle.clone()
        },
        Candle {
            symbol: "LRC-BTC".into(),
            trades: Some(1),
            open: "0.00000638".into(),
            close: "0.00000638".into(),
            high: "0.00000638".into(),
            low: "0.00000638".into(),
            volume: "177.00000000".into(),
            quote_volume: Some("0.00112926".into()),
            event_time: Some(1_633_998_534_486_000),
            ..candle
        },
    ]
}

/// Hand-typed: the recorded 24 h ticker (binance_ticker.jsonl line 1, DOGEBNB): `c` last,
/// `o`/`h`/`l` open/high/low, `v` base and `q` quote volume, `b`/`a` best bid/ask; its
/// timestamp is the statistics' close time `C`.
fn golden_ticker() -> Ticker {
    Ticker {
        exchange: "BINANCE".into(),
        symbol: "DOGE-BNB".into(),
        bid: "0.00014365".into(),
        ask: "0.00014498".into(),
        timestamp: Some(1_569_805_259_088_000),
        event_time: Some(1_569_805_259_092_000),
        receipt_time: 0,
        last: "0.00014360".into(),
        open: "0.00014069".into(),
        high: "0.00014550".into(),
        low: "0.00013851".into(),
        volume: "20014582.00000000".into(),
        quote_volume: "2839.62578157".into(),
    }
}

/// Hand-typed: four recorded spot bookTickers (binance_bookTicker.jsonl lines 1, 2, 8, 44).
/// Spot bookTickers carry no event or transaction time.
fn golden_tops() -> Vec<(usize, TopOfBook)> {
    let top = |symbol: &str, u: i64, b: &str, bq: &str, a: &str, aq: &str| TopOfBook {
        exchange: "BINANCE".into(),
        symbol: symbol.into(),
        bid_price: b.into(),
        bid_size: bq.into(),
        ask_price: a.into(),
        ask_size: aq.into(),
        timestamp: None,
        event_time: None,
        receipt_time: 0,
        update_id: Some(u),
    };
    vec![
        (
            1,
            top(
                "NKN-USDT",
                499869768,
                "0.35210000",
                "672.00000000",
                "0.35260000",
                "3199.00000000",
            ),
        ),
        (
            2,
            top(
                "NKN-USDT",
                499869769,
                "0.35210000",
                "672.00000000",
                "0.35250000",
                "1123.00000000",
            ),
        ),
        (
            8,
            top(
                "LRC-BTC",
                259345545,
                "0.00000637",
                "6500.00000000",
                "0.00000638",
                "27122.00000000",
            ),
        ),
        (
            44,
            top(
                "BLZ-ETH",
                281916636,
                "0.00006547",
                "100.00000000",
                "0.00006560",
                "1528.00000000",
            ),
        ),
    ]
}

/// Hand-typed: three recorded spot diffs (binance_depthUpdate.jsonl lines 2, 170, 177):
/// `U`/`u` first and last update id (the sequence is `u`), `E` ms → µs, no transaction time
/// or previous id on spot.
fn golden_deltas() -> Vec<(usize, Level2Delta)> {
    let delta = |symbol: &str, first: i64, last: i64, e_ms: i64| Level2Delta {
        exchange: "BINANCE".into(),
        symbol: symbol.into(),
        timestamp: None,
        sequence: Some(last),
        checksum: None,
        event_time: Some(e_ms * 1000),
        last_update_id: Some(last),
        receipt_time: 0,
        first_update_id: Some(first),
        prev_update_id: None,
        ..Level2Delta::default()
    };
    vec![
        (
            2,
            Level2Delta {
                bids: vec![level("0.35170000", "4265.00000000")],
                asks: vec![level("0.35290000", "10968.00000000")],
                ..delta("NKN-USDT", 499869753, 499869754, 1633998512568)
            },
        ),
        (
            170,
            Level2Delta {
                asks: vec![level("0.00000639", "45096.00000000")],
                ..delta("LRC-BTC", 259345563, 259345563, 1633998540981)
            },
        ),
        (
            177,
            Level2Delta {
                asks: vec![level("0.35360000", "16324.00000000")],
                ..delta("NKN-USDT", 499870179, 499870179, 1633998542082)
            },
        ),
    ]
}

/// The record every recorded bookTicker must give, read field by field from its JSON.
fn top_from_json(d: &serde_json::Value) -> TopOfBook {
    let s = |k: &str| d[k].as_str().unwrap().to_string();
    TopOfBook {
        exchange: "BINANCE".into(),
        symbol: norm(d["s"].as_str().unwrap()).into(),
        bid_price: s("b"),
        bid_size: s("B"),
        ask_price: s("a"),
        ask_size: s("A"),
        timestamp: None,
        event_time: None,
        receipt_time: 0,
        update_id: Some(d["u"].as_i64().unwrap()),
    }
}

/// The delta every recorded spot diff must give once applied, read from its JSON.
fn delta_from_json(d: &serde_json::Value) -> Level2Delta {
    let levels = |k: &str| -> Vec<PriceLevel> {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|l| level(l[0].as_str().unwrap(), l[1].as_str().unwrap()))
            .collect()
    };
    let last = d["u"].as_i64().unwrap();
    Level2Delta {
        exchange: "BINANCE".into(),
        symbol: norm(d["s"].as_str().unwrap()).into(),
        bids: levels("b"),
        asks: levels("a"),
        timestamp: None,
        sequence: Some(last),
        checksum: None,
        event_time: Some(d["E"].as_i64().unwrap() * 1000),
        last_update_id: Some(last),
        receipt_time: 0,
        first_update_id: Some(d["U"].as_i64().unwrap()),
        prev_update_id: None,
    }
}

#[test]
fn the_readers_of_the_recording_agree_with_the_hand_typed_goldens() {
    // The field-by-field readers used for the frames without a golden of their own.
    let tops = recorded("binance_bookTicker.jsonl");
    for (line, want) in golden_tops() {
        assert_eq!(
            top_from_json(&tops[line - 1]),
            want,
            "bookTicker line {line}"
        );
    }
    let diffs = recorded("binance_depthUpdate.jsonl");
    for (line, want) in golden_deltas() {
        assert_eq!(
            delta_from_json(&diffs[line - 1]),
            want,
            "depthUpdate line {line}"
        );
    }
    assert_eq!(subscribed_frames(), 177 + 84 + 2 + 3 + 3 + 1);
}

/// Fails on any feed error other than an unknown symbol.
fn assert_no_feed_errors(service: &Service) {
    let text = service.producer.metrics().render();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tickflow_feed_errors_total{"))
        .filter(|l| !l.ends_with(" 0") && !l.contains("kind=\"unknown_symbol\""))
        .collect();
    assert!(errors.is_empty(), "feed errors: {errors:?}");
}

#[actix_rt::test]
async fn recorded_binance_data_lands_in_kafka_as_the_hand_typed_records() {
    common::init_logs();
    let frames = subscribed_frames();
    // Settled: every data frame read, and every book synced (its snapshot answered).
    let (cfg, service) = run_replay("e2e", 0, 0.0, |s| {
        sum(s, |f| &f.frames) >= frames && sum(s, |f| &f.syncs) >= BOOK_SYMBOLS.len() as u64
    })
    .await;
    assert_eq!(sum(&service, |s| &s.nacked), 0);
    assert_eq!(sum(&service, |s| &s.gaps), 0);
    assert_no_feed_errors(&service);

    // Trades: exactly the six recorded, each field as typed by hand.
    let mut trades = consume(&cfg, DataType::Trade, |r| match r {
        Normalized::Trade(t) => t,
        other => panic!("{other:?}"),
    });
    for t in &mut trades {
        assert!(t.receipt_time > 0, "{t:?}");
        t.receipt_time = 0;
    }
    // The two BNBBTC trades in the recording's order (one key, one partition).
    let bnb: Vec<&str> = trades
        .iter()
        .filter(|t| t.symbol == "BNB-BTC")
        .map(|t| t.trade_id.as_str())
        .collect();
    assert_eq!(bnb, ["40756030", "60276726"]);
    let key = |t: &Trade| (t.symbol.clone(), t.trade_id.clone());
    let mut want = golden_trades();
    trades.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(trades, want);

    // Candles and the ticker: exactly the recorded ones.
    let mut candles = consume(&cfg, DataType::Candle, |r| match r {
        Normalized::Candle(c) => c,
        other => panic!("{other:?}"),
    });
    for c in &mut candles {
        assert!(c.receipt_time > 0);
        c.receipt_time = 0;
    }
    candles.sort_by(|a, b| b.symbol.cmp(&a.symbol));
    assert_eq!(candles, golden_candles());
    let mut tickers = consume(&cfg, DataType::Ticker, |r| match r {
        Normalized::Ticker(t) => t,
        other => panic!("{other:?}"),
    });
    assert_eq!(tickers.len(), 1);
    assert!(tickers[0].receipt_time > 0);
    tickers[0].receipt_time = 0;
    assert_eq!(tickers[0], golden_ticker());

    // Tops of book: per symbol, every recorded bookTicker in order, field by field.
    let mut tops: HashMap<String, Vec<TopOfBook>> = HashMap::new();
    for mut t in consume(&cfg, DataType::TopOfBook, |r| match r {
        Normalized::TopOfBook(t) => t,
        other => panic!("{other:?}"),
    }) {
        assert!(t.receipt_time > 0);
        t.receipt_time = 0;
        tops.entry(t.symbol.clone()).or_default().push(t);
    }
    let mut want: HashMap<String, Vec<TopOfBook>> = HashMap::new();
    for d in recorded("binance_bookTicker.jsonl") {
        let t = top_from_json(&d);
        want.entry(t.symbol.clone()).or_default().push(t);
    }
    assert_eq!(tops.values().map(Vec::len).sum::<usize>(), 84);
    for (_, golden) in golden_tops() {
        assert!(tops[&golden.symbol].contains(&golden), "{golden:?}");
    }
    assert_eq!(tops, want);

    // Books: every symbol synced, chains valid, the final book equals an independent
    // reconstruction of snapshot + all recorded diffs, and the deltas after the sync are
    // exactly the recorded diffs after it, field by field.
    let (books, deltas) = consume_books(&cfg);
    let by = check_chains(&books, &deltas);
    eprintln!("books: {}, deltas: {}", books.len(), deltas.len());
    assert_eq!(by.len(), BOOK_SYMBOLS.len(), "every book symbol synced");
    let expected = reconstruct_final();
    let recorded_diffs = recorded("binance_depthUpdate.jsonl");
    let goldens = golden_deltas();
    let mut golden_hits = 0;
    for (sym, (books, deltas)) in by {
        let synced_at = books.iter().filter_map(|b| b.last_update_id).min().unwrap();
        let want: Vec<Level2Delta> = recorded_diffs
            .iter()
            .filter(|d| norm(d["s"].as_str().unwrap()) == sym)
            .filter(|d| d["u"].as_i64().unwrap() > synced_at)
            .map(delta_from_json)
            .collect();
        let got: Vec<Level2Delta> = deltas
            .iter()
            .cloned()
            .map(|mut d| {
                assert!(d.receipt_time > 0);
                d.receipt_time = 0;
                d
            })
            .collect();
        assert_eq!(got, want, "{sym}: deltas after the sync at {synced_at}");
        golden_hits += goldens.iter().filter(|(_, g)| got.contains(g)).count();
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
    eprintln!(
        "hand-typed deltas seen in Kafka: {golden_hits} of {}",
        goldens.len()
    );
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
    // Settled: reconnected, and a book synced again after the reconnect.
    let (cfg, service) = run_replay("e2edrop", 150, 2000.0, |s| {
        sum(s, |f| &f.reconnects) >= 1 && sum(s, |f| &f.syncs) > BOOK_SYMBOLS.len() as u64
    })
    .await;
    let reconnects = sum(&service, |s| &s.reconnects);
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
    let prefix = common::unique_topic("cli");
    let mut cfg = std::fs::read_to_string("config/replay.toml").unwrap();
    // Every replay server's fixed port (18080, 18081, …; one per venue) becomes a free one, the
    // same wherever it appears (the server's `listen` and its feeds' URLs).
    for port in 18080..18100 {
        let fixed = format!("127.0.0.1:{port}");
        if cfg.contains(&fixed) {
            cfg = cfg.replace(&fixed, &format!("127.0.0.1:{}", common::free_port()));
        }
    }
    let cfg = cfg
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
    // USD-M connects per endpoint category; spot and COIN-M on the one `/stream`.
    for path in ["/public/stream", "/market/stream"] {
        assert!(
            log.lines().any(|l| l.contains("feed connected")
                && l.contains("BINANCE_FUTURES")
                && l.contains(path)),
            "no USD-M connection on {path}:\n{log}"
        );
    }
    // Open interest is polled only for symbols the recording answers (the COIN-M replay
    // answered `400 Invalid symbol` every second for the others).
    assert!(!log.contains("open interest poll failed"), "{log}");
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
    let mut child = common::Child(child);
    // The log is read as it is written: the signal goes once a progress line shows records
    // flowing (not after a guessed time).
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let flowing = loop {
        let Ok(line) =
            rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        else {
            break false;
        };
        log.push_str(&line);
        log.push('\n');
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "progress (all topics)"
            && v["fields"]["produced"].as_f64().unwrap_or(0.0) > 1_000.0
        {
            break true;
        }
    };
    assert!(flowing, "no progress line with records flowing:\n{log}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.0.wait().unwrap();
    reader.join().unwrap();
    for line in rx.try_iter() {
        log.push_str(&line);
        log.push('\n');
    }
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stop requested"), "{log}");
    assert!(
        !log.contains("replay finished"),
        "stopped by the signal, not the replay's end"
    );
    // The last "all topics" progress line is written after the graceful stop.
    let stopped = log.find("stop requested").unwrap();
    let last = log[stopped..]
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
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
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
    let m = service.producer.metrics();
    let unknown = "tickflow_feed_errors_total{exchange=\"BINANCE\",kind=\"unknown_symbol\"}";
    // Settled: the 74 NKNUSDT bookTickers read and the unlisted symbol counted.
    let settled = wait_until(Duration::from_secs(30), || {
        sum(&service, |f| &f.frames) >= 74 && m.sample(unknown) >= 1.0
    })
    .await;
    service.shutdown().await;
    assert!(settled);
    assert_no_feed_errors(&service);
    assert_eq!(m.sample(unknown), 1.0);
    let tops = consume(&cfg, DataType::TopOfBook, |r| r);
    assert_eq!(tops.len(), 74, "every recorded NKNUSDT bookTicker");
    assert!(tops.iter().all(|r| r.symbol() == "NKN-USDT"));
}
