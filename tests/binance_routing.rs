//! Binance USD-M's routed endpoints (since 2026-04-23): `depth`, `bookTicker` and `trade` on
//! `/public`, the other market streams on `/market`, nothing on the retired `/stream` and `/ws`.
//! The sessions connect each category to its endpoint, and the replay mock serves the streams
//! only there, so a stream sent to the wrong endpoint gets no data in a test as it gets none
//! from Binance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tickflow::replay::{ReplayServer, ReplayServerConfig};
use tickflow::venues::binance::Binance;
use tickflow::venues::binance_coinm::coinm;
use tickflow::venues::{Channel, SessionSpec, Subscription, SymbolMap, Venue};
use tokio_tungstenite::tungstenite::Message;

fn spec(channels: &[Channel]) -> SessionSpec {
    SessionSpec {
        subscriptions: channels
            .iter()
            .map(|c| Subscription {
                channel: *c,
                symbol: "BTC-USDT-PERP".into(),
                venue_symbol: "BTCUSDT".into(),
            })
            .collect(),
        symbols: SymbolMap::new([("BTCUSDT".to_string(), "BTC-USDT-PERP".to_string())]),
        book_depth: 1000,
        ws_url: String::new(),
    }
}

/// The streams one session subscribes, from its SUBSCRIBE messages.
fn subscribed(venue: &dyn Venue, channels: &[Channel]) -> (String, Vec<String>) {
    let mut s = venue.session(spec(channels));
    let streams = s
        .subscribe()
        .iter()
        .flat_map(|m| {
            let v: serde_json::Value = serde_json::from_str(m).unwrap();
            assert_eq!(v["method"], "SUBSCRIBE");
            v["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    (s.path(), streams)
}

#[test]
fn usdm_channels_go_to_their_endpoint_category() {
    let usdm = Binance::usdm();
    // Binance's notice: depth and bookTicker are "public" (high frequency); aggTrade,
    // markPrice, kline, forceOrder, ticker are "market"; trade is public (see API.md).
    for (c, group) in [
        (Channel::Depth, "public"),
        (Channel::BookTicker, "public"),
        (Channel::Trade, "public"),
        (Channel::AggTrade, "market"),
        (Channel::Ticker, "market"),
        (Channel::Candle, "market"),
        (Channel::Funding, "market"),
        (Channel::Liquidation, "market"),
        (Channel::OpenInterest, "market"),
    ] {
        assert_eq!(usdm.connection_group(c), group, "{c:?}");
    }
    // Stream names as Binance writes them (the replay mock routes by these).
    for (stream, group) in [
        ("btcusdt@depth@100ms", "public"),
        ("btcusdt@depth20@100ms", "public"),
        ("btcusdt@bookTicker", "public"),
        ("!bookTicker", "public"),
        ("btcusdt@trade", "public"),
        ("btcusdt@aggTrade", "market"),
        ("btcusdt@markPrice@1s", "market"),
        ("!markPrice@arr", "market"),
        ("btcusdt@kline_1m", "market"),
        ("btcusdt@forceOrder", "market"),
        ("!forceOrder@arr", "market"),
        ("btcusdt@ticker", "market"),
    ] {
        assert_eq!(
            tickflow::venues::binance::category(stream),
            group,
            "{stream}"
        );
    }
    assert_eq!(usdm.default_ws_url(), "wss://fstream.binance.com");
    assert_eq!(
        subscribed(
            &usdm,
            &[Channel::Depth, Channel::BookTicker, Channel::Trade]
        ),
        (
            "/public/stream".to_string(),
            vec![
                "btcusdt@depth@100ms".to_string(),
                "btcusdt@bookTicker".to_string(),
                "btcusdt@trade".to_string(),
            ]
        )
    );
    assert_eq!(
        subscribed(
            &usdm,
            &[
                Channel::AggTrade,
                Channel::Ticker,
                Channel::Candle,
                Channel::Funding,
                Channel::Liquidation,
            ]
        ),
        (
            "/market/stream".to_string(),
            vec![
                "btcusdt@aggTrade".to_string(),
                "btcusdt@ticker".to_string(),
                "btcusdt@kline_1m".to_string(),
                "btcusdt@markPrice".to_string(),
                "btcusdt@forceOrder".to_string(),
            ]
        )
    );
    // Only polled open interest: a market connection with nothing to subscribe.
    assert_eq!(
        subscribed(&usdm, &[Channel::OpenInterest]),
        ("/market/stream".to_string(), vec![])
    );
    // A session given both categories (not what the supervisor builds) keeps the first
    // stream's and leaves the other out rather than subscribing it where it never plays.
    assert_eq!(
        subscribed(&usdm, &[Channel::AggTrade, Channel::Depth]),
        (
            "/market/stream".to_string(),
            vec!["btcusdt@aggTrade".to_string()]
        )
    );
}

#[test]
fn spot_and_coinm_keep_one_stream_endpoint() {
    for venue in [Binance::spot(), coinm()] {
        for c in venue.channels() {
            assert_eq!(venue.connection_group(*c), "", "{} {c:?}", venue.name());
        }
        let (path, _) = subscribed(&venue, &[Channel::Depth, Channel::AggTrade]);
        assert_eq!(path, "/stream", "{}", venue.name());
    }
    assert_eq!(
        Binance::spot().default_ws_url(),
        "wss://stream.binance.com:9443"
    );
    assert_eq!(coinm().default_ws_url(), "wss://dstream.binance.com");
}

#[test]
fn mark_price_ticks_every_three_seconds_on_futures_only() {
    for venue in [Binance::usdm(), coinm()] {
        assert_eq!(
            venue.ticks_every(Channel::Funding),
            Some(Duration::from_secs(3))
        );
        for c in [Channel::Depth, Channel::Trade, Channel::Liquidation] {
            assert_eq!(venue.ticks_every(c), None, "{c:?}");
        }
    }
    assert_eq!(Binance::spot().ticks_every(Channel::Ticker), None);
}

async fn usdm_replay() -> ReplayServer {
    tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance_usdm".into(),
        fixtures: "tests/fixtures/binance".into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(server: &ReplayServer, path: &str, streams: &[&str]) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}{path}", server.ws_url()))
        .await
        .unwrap();
    let sub = serde_json::json!({ "method": "SUBSCRIBE", "params": streams, "id": 1 });
    ws.send(Message::text(sub.to_string())).await.unwrap();
    ws
}

/// Every text frame the server sent on `ws` until it answers the request `id` (sent now): the
/// server answers in order, so this is everything it sent before.
async fn everything_before_answer(ws: &mut Ws, id: u64) -> Vec<serde_json::Value> {
    let ping = serde_json::json!({ "method": "UNSUBSCRIBE", "params": ["none@none"], "id": id });
    ws.send(Message::text(ping.to_string())).await.unwrap();
    let mut got = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server answers")
            .unwrap()
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        if v["id"] == id && v["result"].is_null() && v.get("result").is_some() {
            return got;
        }
        got.push(v);
    }
}

/// The stream names of data frames.
fn streams_of(frames: &[serde_json::Value]) -> Vec<String> {
    let mut s: Vec<String> = frames
        .iter()
        .filter_map(|v| v["stream"].as_str().map(str::to_string))
        .collect();
    s.sort();
    s.dedup();
    s
}

/// The `u` of every recorded diff of `symbol` (lowercase stream prefix), in file order.
fn recorded_diff_ids(symbol: &str) -> Vec<i64> {
    std::fs::read_to_string("tests/fixtures/binance/binance_futures_depthUpdate.jsonl")
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["stream"].as_str().unwrap().starts_with(symbol))
        .map(|v| v["data"]["u"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_usdm_replay_plays_a_stream_only_on_its_category_endpoint() {
    let server = usdm_replay().await;
    let market_streams = [
        "btcusdt@markPrice",
        "sushiusdt@aggTrade",
        "btcusdt@forceOrder",
    ];
    // (Not the same set as the right connection's below: the replay resumes a set already
    // played, as for a reconnect.)
    let mut wrong = subscribe(
        &server,
        "/public/stream",
        &["btcusdt@markPrice", "sushiusdt@aggTrade"],
    )
    .await;
    let mut legacy = subscribe(
        &server,
        "/stream",
        &["btcusdt@markPrice", "sushiusdt@depth@100ms"],
    )
    .await;
    let mut legacy_ws = subscribe(&server, "/ws", &["sushiusdt@aggTrade"]).await;
    let mut depth_on_market = subscribe(
        &server,
        "/market/stream",
        &["sushiusdt@depth@100ms", "sushiusdt@bookTicker"],
    )
    .await;
    let mut right = subscribe(&server, "/market/stream", &market_streams).await;
    let mut public = subscribe(&server, "/public/stream", &["sushiusdt@depth@100ms"]).await;
    // The routed ones play the whole recording (one loop).
    tokio::time::timeout(Duration::from_secs(30), server.finished())
        .await
        .expect("the replay played its loop");

    let market = everything_before_answer(&mut right, 2).await;
    assert_eq!(
        streams_of(&market),
        [
            "btcusdt@forceOrder",
            "btcusdt@markPrice",
            "btcusdt@markPrice@1s",
            "sushiusdt@aggTrade"
        ]
    );
    // The two recorded BTCUSDT mark prices (binance_futures_markPrice.jsonl lines 1 and 3).
    let marks: Vec<&str> = market
        .iter()
        .filter(|v| v["data"]["e"] == "markPriceUpdate")
        .map(|v| v["data"]["p"].as_str().unwrap())
        .collect();
    assert_eq!(marks, ["8291.34697815", "11857.56000000"]);
    // SUSHIUSDT's recorded aggregate trades: ids 87353230 to 87353269, each once.
    let mut agg: Vec<i64> = market
        .iter()
        .filter(|v| v["data"]["e"] == "aggTrade")
        .map(|v| v["data"]["a"].as_i64().unwrap())
        .collect();
    agg.sort_unstable();
    assert_eq!(agg, (87_353_230..=87_353_269).collect::<Vec<i64>>());

    let depth = everything_before_answer(&mut public, 2).await;
    assert_eq!(streams_of(&depth), ["sushiusdt@depth@100ms"]);
    let ids: Vec<i64> = depth
        .iter()
        .filter_map(|v| v["data"]["u"].as_i64())
        .collect();
    assert_eq!(ids, recorded_diff_ids("sushiusdt@"));

    // Acknowledged like any subscription, and then nothing at all.
    for (name, ws) in [
        ("market streams on /public", &mut wrong),
        ("legacy /stream", &mut legacy),
        ("legacy /ws", &mut legacy_ws),
        ("depth and bookTicker on /market", &mut depth_on_market),
    ] {
        let got = everything_before_answer(ws, 2).await;
        assert_eq!(
            got,
            vec![serde_json::json!({ "result": null, "id": 1 })],
            "{name}"
        );
    }
}
