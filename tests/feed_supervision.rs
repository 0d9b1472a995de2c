//! A feed task that dies (here: a venue whose first session panics) is noticed: the feed is
//! marked disconnected and the supervisor restarts its actor, which connects again.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickflow::book::Sequencer;
use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::feed::{FeedActor, FeedStats};
use tickflow::replay::ReplayServerConfig;
use tickflow::supervisor::ProducerHandle;
use tickflow::venues::binance::Binance;
use tickflow::venues::{
    Channel, Instrument, InstrumentKind, Limits, SessionSpec, Venue, VenueSession,
};

/// Binance USD-M, except that its first session panics.
#[derive(Debug)]
struct FirstSessionPanics {
    inner: Binance,
    sessions: Arc<AtomicUsize>,
}

impl Venue for FirstSessionPanics {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn exchange(&self) -> &'static str {
        self.inner.exchange()
    }
    fn default_ws_url(&self) -> &'static str {
        self.inner.default_ws_url()
    }
    fn default_rest_url(&self) -> Option<&'static str> {
        self.inner.default_rest_url()
    }
    fn channels(&self) -> &'static [Channel] {
        self.inner.channels()
    }
    fn instrument_kinds(&self) -> &'static [InstrumentKind] {
        self.inner.instrument_kinds()
    }
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    fn venue_symbol(&self, instrument: &Instrument) -> String {
        self.inner.venue_symbol(instrument)
    }
    fn sequencer(&self, depth: u32) -> Arc<dyn Sequencer> {
        self.inner.sequencer(depth)
    }
    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        if self.sessions.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("injected: the first session of this venue panics");
        }
        self.inner.session(spec)
    }
}

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
    let sessions = Arc::new(AtomicUsize::new(0));
    let venue = Arc::new(FirstSessionPanics {
        inner: Binance::usdm(),
        sessions: sessions.clone(),
    });
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
