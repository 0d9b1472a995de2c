//! A looped Binance replay is one unbroken, consistent stream per symbol: a client keeping a
//! book through several loops (REST snapshot once, then diffs) sees no gap, no crossed book,
//! and ends with the served snapshot's book.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tickflow::book::{BookSync, Snapshot, Step};
use tickflow::replay::{ReplayServer, ReplayServerConfig};
use tickflow::venues::binance::{Binance, Rules};
use tickflow::venues::{Channel, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent};
use tokio_tungstenite::tungstenite::Message;

/// The depth snapshot the replay server serves now (the book as played so far).
async fn served(server: &ReplayServer, binance: Binance, symbol: &str) -> Snapshot {
    let url = format!(
        "{}{}",
        server.rest_url(),
        binance.snapshot_path(symbol, 5000).unwrap()
    );
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    binance.parse_snapshot(&body).unwrap()
}

async fn check(venue: &str, binance: Binance, rules: Rules, symbol: &str, norm: &str) {
    let server = tickflow::venues::replay_server(ReplayServerConfig {
        venue: venue.into(),
        fixtures: "tests/fixtures/binance".into(),
        loops: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let stream = format!("{}@depth@100ms", symbol.to_ascii_lowercase());
    // The endpoint the venue's session uses for a depth stream (`/stream`; USD-M
    // `/public/stream`).
    let path = binance
        .session(SessionSpec {
            subscriptions: vec![Subscription {
                channel: Channel::Depth,
                symbol: norm.to_string(),
                venue_symbol: symbol.to_string(),
            }],
            symbols: SymbolMap::new([(symbol.to_string(), norm.to_string())]),
            book_depth: 1000,
            ws_url: String::new(),
        })
        .path();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}{path}", server.ws_url()))
        .await
        .unwrap();
    let map = SymbolMap::new([(symbol.to_string(), norm.to_string())]);
    let mut sync = BookSync::new(Arc::new(rules), 100_000);
    // The snapshot first: nothing plays before a subscription, so it is the recorded one and
    // every diff comes after it (fetched after subscribing, it raced the replay, which may
    // have played every loop already).
    let snap = served(&server, binance, symbol).await;
    assert_eq!(sync.on_snapshot(&snap).unwrap(), Step::Synced);
    let sub = serde_json::json!({ "method": "SUBSCRIBE", "params": [stream], "id": 1 });
    ws.send(Message::text(sub.to_string())).await.unwrap();
    let mut applied = 0;
    // Read until the replay has gone quiet (it idles once played).
    while let Ok(msg) = tokio::time::timeout(std::time::Duration::from_secs(1), ws.next()).await {
        let t = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            other => panic!("{symbol}: the replay ended the connection: {other:?}"),
        };
        let mut out = Vec::new();
        binance.parse(t.as_str(), 0, &map, &mut out).unwrap();
        for ev in out {
            let VenueEvent::Diff { diff, .. } = ev else {
                continue;
            };
            let step = sync.on_diff(diff.clone()).unwrap();
            match step {
                Step::Applied => applied += 1,
                Step::Dropped => {}
                other => panic!("{symbol}: {other:?} at diff {}..{}", diff.first, diff.last),
            }
        }
    }
    assert!(
        applied > 20,
        "{symbol}: {applied} diffs applied over the loops"
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), server.finished())
        .await
        .expect("the replay played every loop");
    // The book kept equals the book the server now serves.
    let served = served(&server, binance, symbol).await;
    assert_eq!(Some(served.last_update_id), sync.last_update_id());
    let (bids, asks) = sync.book().levels(None);
    let pairs = |v: Vec<tickflow::schema::v2beta1::level2_book::PriceLevel>| {
        v.into_iter()
            .map(|l| (l.price, l.quantity))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(bids), served.bids, "{symbol} bids");
    assert_eq!(pairs(asks), served.asks, "{symbol} asks");
}

#[tokio::test]
async fn looped_spot_books_stay_consistent() {
    for (s, n) in [("NKNUSDT", "NKN-USDT"), ("LRCBTC", "LRC-BTC")] {
        check("binance", Binance::spot(), Rules::Spot, s, n).await;
    }
}

#[tokio::test]
async fn looped_usdm_books_stay_consistent() {
    for (s, n) in [
        ("SUSHIUSDT", "SUSHI-USDT-PERP"),
        ("CTKUSDT", "CTK-USDT-PERP"),
    ] {
        check("binance_usdm", Binance::usdm(), Rules::UsdM, s, n).await;
    }
}
