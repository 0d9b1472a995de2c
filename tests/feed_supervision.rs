//! A feed task that dies (here: a venue whose first session panics) is noticed: the feed is
//! marked disconnected and the supervisor restarts its actor, which connects again.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod tweaked;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::feed::{FeedActor, FeedStats};
use tickflow::replay::ReplayServerConfig;
use tickflow::supervisor::ProducerHandle;
use tickflow::venues::Channel;
use tweaked::{Tweaked, Tweaks};

#[actix_rt::test]
async fn a_feed_task_that_panics_is_restarted_by_its_supervisor() {
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance_usdm".into(),
        fixtures: "tests/fixtures/binance".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let cfg = common::test_config("supervision");
    let producer = ProducerHandle::start(cfg).unwrap();
    let venue = Tweaked::new(
        "binance_usdm",
        Tweaks {
            panic_sessions_before: Some(1),
            ..Default::default()
        },
    );
    let sessions = venue.sessions.clone();
    let feed = FeedConfig {
        venue: "binance_usdm".into(),
        symbols: vec!["BTC-USDT-PERP".into()],
        channels: vec![Channel::Trade],
        ws_url: Some(format!("ws://{}", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    };
    let stats = Arc::new(FeedStats::new());
    let http = tickflow::feed::session::rest_client(venue.as_ref(), None);
    let (s, p) = (stats.clone(), producer.clone());
    let _addr = actix::Supervisor::start(move |_| FeedActor::new(feed, venue, p, s, http));
    let started = Instant::now();
    while !(sessions.load(Ordering::SeqCst) >= 2 && stats.connected.load(Ordering::Relaxed))
        && started.elapsed() < Duration::from_secs(15)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sessions.load(Ordering::SeqCst) >= 2,
        "the actor was restarted after its task panicked"
    );
    assert!(
        stats.connected.load(Ordering::Relaxed),
        "the restarted feed connected"
    );
    producer.shutdown().await;
}
