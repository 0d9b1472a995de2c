//! A hostile venue: a WebSocket server that answers the subscription, then sends a malformed
//! frame, an oversized frame, an unknown symbol, an unsupported stream, a binary frame and one
//! good trade. The feed counts each bad frame by kind, does not panic or disconnect, and
//! produces the good trade.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::schema::{wire, DataType, Normalized};
use tickflow::service::Service;
use tickflow::venues::Channel;
use tokio_tungstenite::tungstenite::Message;

#[actix_rt::test]
async fn bad_frames_are_counted_by_kind_and_the_good_one_is_produced() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let Some(Ok(Message::Text(sub))) = ws.next().await else {
            panic!("no subscription")
        };
        assert!(
            sub.contains("SUBSCRIBE") && sub.contains("ethusdt@trade"),
            "{sub}"
        );
        ws.send(Message::text(r#"{"result":null,"id":1}"#))
            .await
            .unwrap();
        let good = std::fs::read_to_string("tests/fixtures/binance/binance_trade.jsonl")
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        for frame in [
            Message::text("{\"stream\":\"ethusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":"),
            Message::text(format!("{{\"pad\":\"{}\"}}", "x".repeat(5_000))),
            Message::text(good.replace("ETHUSDT", "XYZUSDT")),
            Message::text(r#"{"stream":"ethusdt@foo","data":{"e":"foo"}}"#),
            Message::binary(vec![0u8, 159, 146, 150]),
            Message::text(good),
        ] {
            ws.send(frame).await.unwrap();
        }
        // Stay open like a quiet venue.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });

    let mut cfg = common::test_config("bad");
    cfg.feeds = vec![FeedConfig {
        venue: "binance".into(),
        symbols: vec!["ETH-USDT".into()],
        channels: vec![Channel::Trade],
        ws_url: Some(format!("ws://{addr}")),
        rest_url: Some(format!("http://{addr}")),
        max_frame_bytes: Some(4_096),
        // Offline mapping: this venue has no REST side.
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let service = Service::start(cfg).await.unwrap();
    let stats = service.feeds[0].stats.clone();
    for _ in 0..100 {
        if stats.acked.load(Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stats.acked.load(Ordering::Relaxed),
        1,
        "the good trade is produced"
    );
    assert_eq!(
        stats.frames.load(Ordering::Relaxed),
        6,
        "the binary frame is not a data frame"
    );
    assert_eq!(
        stats.reconnects.load(Ordering::Relaxed),
        0,
        "bad frames do not cost the connection"
    );
    let m = service.producer.metrics();
    for kind in ["malformed", "oversized", "unknown_symbol", "unsupported"] {
        let n = m.sample(&format!(
            "tickflow_feed_errors_total{{exchange=\"BINANCE\",kind=\"{kind}\"}}"
        ));
        let want = if kind == "unsupported" { 2.0 } else { 1.0 };
        assert_eq!(n, want, "{kind}: {}", m.render());
    }
    service.shutdown().await;
    server.abort();
    let got = common::consume(&common::kafka_addr(), &topic, 3, 1, Duration::from_secs(20));
    assert_eq!(got.len(), 1);
    let Normalized::Trade(t) =
        Normalized::decode(DataType::Trade, wire::parse(&got[0].value).unwrap().payload).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (t.symbol.as_str(), t.trade_id.as_str()),
        ("ETH-USDT", "705291099")
    );
}
