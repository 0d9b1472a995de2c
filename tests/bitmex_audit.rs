//! The periodic REST book audit and the connection-rate budget, end to end: the BitMEX replay
//! server plays the recorded session and serves `/api/v1/orderBook/L2` from the book as
//! played, a feed actor runs the real BitMEX venue against it (audits every second, spread
//! over its ten books) and the dev stack's broker takes what it produces.
//!
//! - an honest replay audited hundreds of times: every audit agrees or differs transiently,
//!   none diverges, no book resyncs;
//! - a book whose first `partial` lost one level the stream never touches: the second audit
//!   confirms the difference, the book resyncs (resubscribe), a `CHECKSUM_MISMATCH` FeedEvent
//!   reaches Kafka, and the book rebuilt from Kafka equals the recorded one at the end;
//! - two single altered REST answers (not in a row): no divergence, no resync;
//! - three feeds sharing a budget of 1 connection per second take ≥ 2 s to be all connected
//!   and two of them waited (counted).
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod books;
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use books::{set, Side};
use rust_decimal::Decimal;
use serde_json::Value;
use tickflow::book::{Sequencer, Snapshot};
use tickflow::config::{Config, FeedConfig, SymbolSource};
use tickflow::feed::{FeedActor, FeedStats, StopFeed};
use tickflow::metrics::{BookAuditLabels, FeedLabels};
use tickflow::replay::{ReplayServer, ReplayServerConfig};
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::v2beta1::FeedEvent;
use tickflow::schema::{DataType, Normalized};
use tickflow::supervisor::ProducerHandle;
use tickflow::transport::ConnectBudget;
use tickflow::venues::bitmex::Bitmex;
use tickflow::venues::{
    Channel, Delivery, Frame, Instrument, InstrumentKind, Limits, ParseError, SessionSpec, Venue,
    VenueEvent, VenueSession,
};

const FIX: &str = "tests/fixtures/bitmex";

/// Venue symbol → normalized, typed by hand (XBT is BTC; U21 = September 2021, last Friday
/// the 24th).
const SYMBOLS: [(&str, &str); 10] = [
    ("XRPU21", "XRP-BTC-20210924"),
    ("UNIUSDT", "UNI-USDT-PERP"),
    ("XBTUSD", "BTC-USD-PERP"),
    ("ADAUSDT", "ADA-USDT-PERP"),
    ("SOLUSDT", "SOL-USDT-PERP"),
    ("TRXU21", "TRX-BTC-20210924"),
    ("EOSUSDT", "EOS-USDT-PERP"),
    ("TRXUSDT", "TRX-USDT-PERP"),
    ("BCHUSD", "BCH-USD-PERP"),
    ("MATICUSDT", "MATIC-USDT-PERP"),
];

/// Rows by (id, side) → (price, size) literals, per symbol.
type Rows = HashMap<String, BTreeMap<(u64, String), (String, String)>>;

fn recording() -> Vec<Value> {
    std::fs::read_to_string(format!("{FIX}/bitmex_session.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn decimal(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|_| Decimal::from_scientific(text).unwrap())
}

/// The recorded books at the end, from the raw rows by BitMEX's documented semantics
/// (partial, insert, update sets the size, delete), without the venue's code.
fn recorded_books() -> HashMap<String, (Side, Side)> {
    let mut rows: Rows = HashMap::new();
    for v in recording() {
        if v["table"] != "orderBookL2" {
            continue;
        }
        let action = v["action"].as_str().unwrap();
        for r in v["data"].as_array().unwrap() {
            let sym = r["symbol"].as_str().unwrap().to_string();
            let k = (
                r["id"].as_u64().unwrap(),
                r["side"].as_str().unwrap().to_string(),
            );
            let book = rows.entry(sym).or_default();
            match action {
                "partial" | "insert" => {
                    book.insert(k, (r["price"].to_string(), r["size"].to_string()));
                }
                "update" => book.get_mut(&k).unwrap().1 = r["size"].to_string(),
                "delete" => {
                    book.remove(&k).unwrap();
                }
                a => panic!("{a}"),
            }
        }
    }
    rows.into_iter()
        .map(|(s, r)| {
            let (mut bids, mut asks) = (Side::new(), Side::new());
            for ((_, side), (p, q)) in r {
                let p = decimal(&p).normalize().to_string();
                if side == "Buy" {
                    set(&mut bids, &p, &q);
                } else {
                    set(&mut asks, &p, &q);
                }
            }
            (s, (bids, asks))
        })
        .collect()
}

/// A bid of XBTUSD's recorded `partial` that no later row touches (its id is never
/// inserted, updated or deleted and no insert has its price): the lowest such price.
fn untouched_xbtusd_bid() -> (Decimal, String) {
    let rows = recording();
    let mut partial = Vec::new();
    let mut touched = HashSet::new();
    let mut inserted = HashSet::new();
    for v in &rows {
        if v["table"] != "orderBookL2" {
            continue;
        }
        for r in v["data"].as_array().unwrap() {
            if r["symbol"] != "XBTUSD" {
                continue;
            }
            let id = r["id"].as_u64().unwrap();
            if v["action"] == "partial" {
                if r["side"] == "Buy" {
                    partial.push((id, r["price"].to_string(), r["size"].to_string()));
                }
            } else {
                touched.insert(id);
                if !r["price"].is_null() {
                    inserted.insert(decimal(&r["price"].to_string()));
                }
            }
        }
    }
    partial
        .into_iter()
        .filter(|(id, p, _)| !touched.contains(id) && !inserted.contains(&decimal(p)))
        .map(|(_, p, q)| (decimal(&p), q))
        .min()
        .unwrap()
}

/// What the test venue changes around the real BitMEX venue.
#[derive(Debug, Default)]
struct Tweaks {
    /// The first `partial` of this symbol (normalized) loses its bid at this price.
    drop_first_partial_bid: Option<(String, Decimal)>,
    /// These (1-based) REST audit answers of XBTUSD get one extra bid `1` × `7`.
    alter_xbtusd_audits: Vec<usize>,
}

/// The real BitMEX venue with test tweaks (nothing else differs).
#[derive(Debug)]
struct Tweaked {
    inner: Bitmex,
    tweaks: Tweaks,
    /// Partials dropped a level so far.
    corrupted: Arc<AtomicUsize>,
    /// XBTUSD audit answers parsed so far.
    xbtusd_audits: AtomicUsize,
    /// Audit answers altered so far.
    altered: AtomicUsize,
}

impl Tweaked {
    fn new(tweaks: Tweaks) -> Arc<Tweaked> {
        Arc::new(Tweaked {
            inner: Bitmex::new(),
            tweaks,
            corrupted: Arc::new(AtomicUsize::new(0)),
            xbtusd_audits: AtomicUsize::new(0),
            altered: AtomicUsize::new(0),
        })
    }
}

impl Venue for Tweaked {
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
    fn delivery(&self, channel: Channel) -> Delivery {
        self.inner.delivery(channel)
    }
    fn sequencer(&self, depth: u32) -> Arc<dyn Sequencer> {
        self.inner.sequencer(depth)
    }
    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        Box::new(TweakedSession {
            inner: self.inner.session(spec),
            drop_bid: self.tweaks.drop_first_partial_bid.clone(),
            corrupted: self.corrupted.clone(),
        })
    }
    fn book_audit_every(&self) -> Option<Duration> {
        self.inner.book_audit_every()
    }
    fn book_audit_path(&self, venue_symbol: &str) -> Option<String> {
        self.inner.book_audit_path(venue_symbol)
    }
    fn parse_book_audit(&self, body: &str) -> Result<Snapshot, ParseError> {
        let mut snap = self.inner.parse_book_audit(body)?;
        if body.contains("\"XBTUSD\"") {
            let n = self.xbtusd_audits.fetch_add(1, Ordering::SeqCst) + 1;
            if self.tweaks.alter_xbtusd_audits.contains(&n) {
                snap.bids.push(("1".into(), "7".into()));
                self.altered.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(snap)
    }
}

struct TweakedSession {
    inner: Box<dyn VenueSession>,
    drop_bid: Option<(String, Decimal)>,
    corrupted: Arc<AtomicUsize>,
}

impl VenueSession for TweakedSession {
    fn path(&self) -> String {
        self.inner.path()
    }
    fn subscribe(&mut self) -> Vec<String> {
        self.inner.subscribe()
    }
    fn unconfirmed(&self) -> usize {
        self.inner.unconfirmed()
    }
    fn subscribe_timeout(&self) -> Duration {
        self.inner.subscribe_timeout()
    }
    fn heartbeat_interval(&self) -> Option<Duration> {
        self.inner.heartbeat_interval()
    }
    fn heartbeat(&mut self) -> Option<String> {
        self.inner.heartbeat()
    }
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        receipt_us: i64,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError> {
        let from = out.len();
        self.inner.on_frame(frame, receipt_us, out)?;
        if let Some((victim, price)) = &self.drop_bid {
            for ev in &mut out[from..] {
                if let VenueEvent::Snapshot { symbol, snapshot } = ev {
                    if symbol == victim && self.corrupted.load(Ordering::SeqCst) == 0 {
                        let before = snapshot.bids.len();
                        snapshot.bids.retain(|(p, _)| decimal(p) != *price);
                        assert_eq!(snapshot.bids.len(), before - 1, "the level was there");
                        self.corrupted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
        Ok(())
    }
    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        self.inner.resubscribe_book(symbol)
    }
}

async fn replay(speed: f64) -> ReplayServer {
    tickflow::venues::replay_server(ReplayServerConfig {
        venue: "bitmex".into(),
        fixtures: FIX.into(),
        speed,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn feed_config(replay: &ReplayServer, symbols: &[&str]) -> FeedConfig {
    FeedConfig {
        venue: "bitmex".into(),
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        channels: vec![Channel::Depth],
        ws_url: Some(format!("ws://{}", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        book_snapshot_every: 0,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(300),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }
}

/// A feed actor of `venue` auditing every `audit` (a REST budget large enough for the test's
/// pace: the replay server is local).
fn start_feed(
    cfg: FeedConfig,
    venue: Arc<dyn Venue>,
    producer: &ProducerHandle,
    audit: Option<Duration>,
    budget: Option<Arc<ConnectBudget>>,
) -> (actix::Addr<FeedActor>, Arc<FeedStats>) {
    let stats = Arc::new(FeedStats::new());
    let http = tickflow::feed::session::rest_client(venue.as_ref(), Some(60_000));
    let (s, p) = (stats.clone(), producer.clone());
    let addr = actix::Supervisor::start(move |_| {
        let actor = FeedActor::new(cfg, venue, p, s, http).with_book_audit_every(audit);
        match budget {
            Some(b) => actor.with_connect_budget(b),
            None => actor,
        }
    });
    (addr, stats)
}

fn audits(producer: &ProducerHandle, result: &str) -> u64 {
    producer
        .metrics()
        .book_audits
        .get_or_create(&BookAuditLabels {
            exchange: "BITMEX".into(),
            result: result.into(),
        })
        .get()
}

fn feed_events(cfg: &Config) -> Vec<FeedEvent> {
    common::decoded(cfg, DataType::FeedEvent)
        .into_iter()
        .map(|r| match r {
            Normalized::FeedEvent(e) => e,
            _ => unreachable!(),
        })
        .collect()
}

/// Every symbol's book rebuilt from Kafka: the last `Level2Book` and the deltas after it;
/// also each symbol's full books in order.
type Rebuilt = (
    HashMap<String, (Side, Side)>,
    HashMap<String, Vec<(Side, Side)>>,
);

fn rebuilt(cfg: &Config) -> Rebuilt {
    let mut records = common::decoded(cfg, DataType::Level2Book);
    records.extend(common::decoded(cfg, DataType::Level2Delta));
    records.sort_by_key(|r| match r {
        Normalized::Level2Book(b) => (b.symbol.clone(), b.receipt_time, 0),
        Normalized::Level2Delta(d) => (d.symbol.clone(), d.receipt_time, 1),
        _ => unreachable!(),
    });
    let mut got: HashMap<String, (Side, Side)> = HashMap::new();
    let mut full: HashMap<String, Vec<(Side, Side)>> = HashMap::new();
    for r in &records {
        match r {
            Normalized::Level2Book(b) => {
                let (mut bids, mut asks) = (Side::new(), Side::new());
                for l in &b.bids {
                    set(&mut bids, &l.price, &l.quantity);
                }
                for l in &b.asks {
                    set(&mut asks, &l.price, &l.quantity);
                }
                full.entry(b.symbol.clone())
                    .or_default()
                    .push((bids.clone(), asks.clone()));
                got.insert(b.symbol.clone(), (bids, asks));
            }
            Normalized::Level2Delta(d) => {
                let (bids, asks) = got.get_mut(&d.symbol).expect("a delta before its book");
                for l in &d.bids {
                    set(bids, &l.price, &l.quantity);
                }
                for l in &d.asks {
                    set(asks, &l.price, &l.quantity);
                }
            }
            _ => unreachable!(),
        }
    }
    (got, full)
}

/// Exact price → exact quantity.
fn exact(side: &Side) -> BTreeMap<Decimal, Decimal> {
    side.iter()
        .map(|(k, (_, q))| (*k, q.parse().unwrap()))
        .collect()
}

/// Runs `venue` over the whole recording (twice the recorded pace) with audits every second,
/// then `linger` more of audits of the finished (still) books; the feed is stopped after.
async fn run(prefix: &str, venue: Arc<dyn Venue>, linger: Duration) -> (Config, ProducerHandle) {
    common::init_logs();
    let replay = replay(2.0).await;
    let cfg = common::test_config(prefix);
    let producer = ProducerHandle::start(cfg.clone()).unwrap();
    let symbols: Vec<&str> = SYMBOLS.iter().map(|(_, n)| *n).collect();
    let (addr, _stats) = start_feed(
        feed_config(&replay, &symbols),
        venue,
        &producer,
        Some(Duration::from_secs(1)),
        None,
    );
    tokio::time::timeout(Duration::from_secs(120), replay.finished())
        .await
        .expect("replay played");
    tokio::time::sleep(linger).await;
    addr.send(StopFeed).await.unwrap();
    (cfg, producer)
}

#[actix_rt::test]
async fn an_honest_replay_audited_hundreds_of_times_never_diverges() {
    let venue = Tweaked::new(Tweaks::default());
    let (cfg, producer) = run("auditok", venue, Duration::from_secs(3)).await;
    let (agreed, differed, diverged) = (
        audits(&producer, "agreed"),
        audits(&producer, "differed"),
        audits(&producer, "diverged"),
    );
    eprintln!(
        "audits: agreed {agreed}, differed {differed}, diverged {diverged}, fetch_failed {}, skipped {}",
        audits(&producer, "fetch_failed"),
        audits(&producer, "skipped")
    );
    // ~22 s of replay + 3 s, ten books, each once a second.
    assert!(agreed >= 150, "audits agreed: {agreed}");
    assert_eq!(diverged, 0);
    assert_eq!(audits(&producer, "fetch_failed"), 0);
    let events = feed_events(&cfg);
    assert!(
        events
            .iter()
            .all(|e| e.kind != Kind::ChecksumMismatch as i32 && e.kind != Kind::Gap as i32),
        "{events:?}"
    );
    // One full book per symbol: none resynced.
    let (got, full) = rebuilt(&cfg);
    for (_, n) in SYMBOLS {
        assert_eq!(full[n].len(), 1, "{n} synced once");
    }
    let want = recorded_books();
    for (v, n) in SYMBOLS {
        assert_eq!(exact(&got[n].0), exact(&want[v].0), "{n} bids");
        assert_eq!(exact(&got[n].1), exact(&want[v].1), "{n} asks");
    }
}

#[actix_rt::test]
async fn a_level_lost_from_the_kept_book_is_caught_by_the_second_audit_and_resynced() {
    let (price, size) = untouched_xbtusd_bid();
    let venue = Tweaked::new(Tweaks {
        drop_first_partial_bid: Some(("BTC-USD-PERP".into(), price)),
        ..Tweaks::default()
    });
    let corrupted = venue.corrupted.clone();
    let (cfg, producer) = run("auditbad", venue, Duration::from_secs(2)).await;
    assert_eq!(
        corrupted.load(Ordering::SeqCst),
        1,
        "the first partial lost it"
    );
    // The first audit after the sync only suspects the level; the second confirms it.
    assert!(audits(&producer, "differed") >= 1);
    assert_eq!(audits(&producer, "diverged"), 1);
    assert!(audits(&producer, "agreed") > 50);

    // Announced in Kafka, naming the REST comparison and the level.
    let events = feed_events(&cfg);
    let mismatches: Vec<&FeedEvent> = events
        .iter()
        .filter(|e| e.kind == Kind::ChecksumMismatch as i32)
        .collect();
    assert_eq!(mismatches.len(), 1, "{events:?}");
    let e = mismatches[0];
    assert_eq!(e.symbol, "BTC-USD-PERP");
    assert_eq!(e.action, "resubscribe");
    assert!(
        e.reason.starts_with("REST book audit: 1 level(s)"),
        "{}",
        e.reason
    );
    assert!(
        e.reason
            .contains(&format!("bid {} kept none REST {size}", price.normalize())),
        "{}",
        e.reason
    );

    // The first full book lacked the level, the one after the resync has it, and the book
    // rebuilt from Kafka ends equal to the recorded one.
    let (got, full) = rebuilt(&cfg);
    let books = &full["BTC-USD-PERP"];
    assert_eq!(books.len(), 2, "synced, then resynced once");
    assert!(!books[0].0.contains_key(&price));
    assert_eq!(books[1].0[&price].1, size);
    let want = recorded_books();
    for (v, n) in SYMBOLS {
        assert_eq!(exact(&got[n].0), exact(&want[v].0), "{n} bids");
        assert_eq!(exact(&got[n].1), exact(&want[v].1), "{n} asks");
        if n != "BTC-USD-PERP" {
            assert_eq!(full[n].len(), 1, "{n} synced once");
        }
    }
}

#[actix_rt::test]
async fn a_difference_in_single_audits_not_in_a_row_is_no_divergence() {
    // XBTUSD's 3rd and 5th REST answers carry a bid the venue never had (1 × 7); the 4th is
    // honest.
    let venue = Tweaked::new(Tweaks {
        alter_xbtusd_audits: vec![3, 5],
        ..Tweaks::default()
    });
    let probe = venue.clone();
    let (cfg, producer) = run("audittransient", venue, Duration::from_secs(1)).await;
    assert_eq!(probe.altered.load(Ordering::SeqCst), 2);
    assert!(probe.xbtusd_audits.load(Ordering::SeqCst) >= 6);
    assert!(audits(&producer, "differed") >= 2);
    assert_eq!(audits(&producer, "diverged"), 0);
    let events = feed_events(&cfg);
    assert!(
        events
            .iter()
            .all(|e| e.kind != Kind::ChecksumMismatch as i32),
        "{events:?}"
    );
    let (_, full) = rebuilt(&cfg);
    assert_eq!(full["BTC-USD-PERP"].len(), 1, "never resynced");
}

#[actix_rt::test]
async fn feeds_sharing_a_connection_budget_wait_for_it() {
    common::init_logs();
    let replay = replay(1.0).await;
    let cfg = common::test_config("connectbudget");
    let producer = ProducerHandle::start(cfg.clone()).unwrap();
    // 1 new connection per second for all three feeds: the 2nd waits ~1 s, the 3rd ~2 s.
    let budget = Arc::new(ConnectBudget::new(Some(1), None));
    let started = Instant::now();
    let feeds: Vec<_> = SYMBOLS[..3]
        .iter()
        .map(|(_, n)| {
            start_feed(
                feed_config(&replay, &[n]),
                Arc::new(Bitmex::new()),
                &producer,
                None,
                Some(budget.clone()),
            )
        })
        .collect();
    while !feeds.iter().all(|f| f.1.connected.load(Ordering::Relaxed)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not all connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // When the venue saw each connection arrive: the budget spaces the attempts 1 s apart;
    // a connection's own setup (TCP, upgrade) on a busy machine may shift an arrival by a
    // little, never by the budget's second.
    let at: Vec<Duration> = replay
        .ws_connections()
        .iter()
        .map(|t| t.saturating_duration_since(started))
        .collect();
    eprintln!("connections arrived after {at:?}");
    assert_eq!(at.len(), 3, "{at:?}");
    assert!(at[1] - at[0] >= Duration::from_millis(800), "{at:?}");
    assert!(at[2] - at[1] >= Duration::from_millis(800), "{at:?}");
    assert!(at[2] - at[0] >= Duration::from_millis(1_800), "{at:?}");
    let waits = producer
        .metrics()
        .feed_connect_waits
        .get_or_create(&FeedLabels {
            exchange: "BITMEX".into(),
        })
        .get();
    assert_eq!(waits, 2);
    for (addr, _) in feeds {
        addr.send(StopFeed).await.unwrap();
    }
}
