//! Book snapshots asked for, each with a deadline. A snapshot that arrives clears its request
//! whatever its outcome; one that fails (too old to bridge the buffered diffs, refused, broken)
//! or does not come in time is asked again after the symbol's next backoff delay (exponential,
//! with jitter), and after [`MAX_FAILURES`] in a row the connection is recycled. The feed
//! announces each of these with a `FeedEvent` naming the symbol. REST snapshots are fetched one
//! at a time by [`snapshot_fetcher`]; in-band ones by resubscribing (the venue's session
//! writes the messages).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::connect::get_text;
use crate::book::{Snapshot, SnapshotSource};
use crate::transport::{snapshot_backoff, RestClient};
use crate::venues::Venue;

/// Consecutive failed or missing snapshots of one book after which the connection is recycled.
pub const MAX_FAILURES: u32 = 5;

type Delays = Box<dyn Iterator<Item = Duration> + Send>;

/// What became of a request that was not answered in time or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Retry {
    /// The symbol.
    pub symbol: String,
    /// Consecutive failures so far (1 for the first).
    pub failures: u32,
    /// When it is asked again.
    pub after: Duration,
}

/// Symbols awaiting a fresh snapshot, and how to ask for one.
pub(super) struct Resync {
    source: SnapshotSource,
    /// Asked and not yet arrived: the deadline.
    asked: HashMap<String, Instant>,
    /// Failed or expired, asked again at the given time.
    scheduled: HashMap<String, Instant>,
    failures: HashMap<String, u32>,
    delays: HashMap<String, Delays>,
    retry_min: Duration,
    retry_max: Duration,
    timeout: Duration,
    /// REST snapshots are fetched one per `spacing`: a request queued behind others gets
    /// their time on top of its deadline.
    spacing: Duration,
    rest: mpsc::UnboundedSender<String>,
    /// In-band symbols to resubscribe now.
    inband: Vec<String>,
    /// Symbols no longer served on this connection (refused by the venue).
    forgotten: HashSet<String>,
}

impl Resync {
    /// Requests for one connection: snapshots from `source`, each due within `timeout`
    /// (plus its place in the REST queue), retried between `retry_min` and `retry_max`.
    pub fn new(
        source: SnapshotSource,
        timeout: Duration,
        spacing: Duration,
        (retry_min, retry_max): (Duration, Duration),
        rest: mpsc::UnboundedSender<String>,
    ) -> Resync {
        Resync {
            source,
            asked: HashMap::new(),
            scheduled: HashMap::new(),
            failures: HashMap::new(),
            delays: HashMap::new(),
            retry_min,
            retry_max,
            timeout,
            spacing,
            rest,
            inband: Vec::new(),
            forgotten: HashSet::new(),
        }
    }

    fn deadline(&self) -> Instant {
        let queued = match self.source {
            SnapshotSource::Rest => self.spacing * self.asked.len() as u32,
            SnapshotSource::InBand => Duration::ZERO,
        };
        Instant::now() + self.timeout + queued
    }

    /// Asks for a snapshot of `symbol`, unless one is already asked for (and not overdue) or
    /// a retry is scheduled: every diff of an unsynced book says it needs one.
    pub fn request(&mut self, symbol: &str) {
        if self.asked.contains_key(symbol)
            || self.scheduled.contains_key(symbol)
            || self.forgotten.contains(symbol)
        {
            return;
        }
        self.ask(symbol);
    }

    fn ask(&mut self, symbol: &str) {
        let deadline = self.deadline();
        self.asked.insert(symbol.to_string(), deadline);
        match self.source {
            SnapshotSource::Rest => {
                let _ = self.rest.send(symbol.to_string());
            }
            SnapshotSource::InBand => self.inband.push(symbol.to_string()),
        }
    }

    /// The venue sends `symbol`'s snapshot by itself (in band, after subscribing): it is due
    /// within the timeout like any asked one, so a first snapshot that never comes (lost to a
    /// parse error or the frame cap) is noticed.
    pub fn due_in_band(&mut self, symbol: &str) {
        let deadline = self.deadline();
        self.asked.insert(symbol.to_string(), deadline);
    }

    /// Asks for a snapshot of `symbol` now, whatever was asked before (the venue said the book
    /// broke: an earlier request no longer counts).
    pub fn again(&mut self, symbol: &str) {
        self.asked.remove(symbol);
        self.scheduled.remove(symbol);
        if !self.forgotten.contains(symbol) {
            self.ask(symbol);
        }
    }

    /// `symbol` is no longer served on this connection (its subscription was refused).
    pub fn forget(&mut self, symbol: &str) {
        self.asked.remove(symbol);
        self.scheduled.remove(symbol);
        self.inband.retain(|s| s != symbol);
        self.forgotten.insert(symbol.to_string());
    }

    /// A snapshot of `symbol` arrived and synced its book: its request is cleared and its
    /// retry delays and failure count start over.
    pub fn synced(&mut self, symbol: &str) {
        self.asked.remove(symbol);
        self.scheduled.remove(symbol);
        self.failures.remove(symbol);
        self.delays.remove(symbol);
    }

    /// A snapshot of `symbol` arrived (or its request failed) without syncing the book: the
    /// request is cleared and asked again after the next backoff delay.
    pub fn failed(&mut self, symbol: &str) -> Retry {
        self.asked.remove(symbol);
        self.schedule(symbol)
    }

    fn schedule(&mut self, symbol: &str) -> Retry {
        let (min, max) = (self.retry_min, self.retry_max);
        let after = self
            .delays
            .entry(symbol.to_string())
            .or_insert_with(|| Box::new(snapshot_backoff(min, max)))
            .next()
            .unwrap_or(max);
        let failures = self.failures.entry(symbol.to_string()).or_insert(0);
        *failures += 1;
        let failures = *failures;
        self.scheduled
            .insert(symbol.to_string(), Instant::now() + after);
        Retry {
            symbol: symbol.to_string(),
            failures,
            after,
        }
    }

    /// Requests past their deadline at `now`: each is scheduled again (and returned, to be
    /// announced).
    pub fn expired(&mut self, now: Instant) -> Vec<Retry> {
        let mut late: Vec<String> = self
            .asked
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(s, _)| s.clone())
            .collect();
        late.sort();
        late.into_iter()
            .map(|s| {
                self.asked.remove(&s);
                self.schedule(&s)
            })
            .collect()
    }

    /// Asks again for every symbol whose retry time came by `now`.
    pub fn due(&mut self, now: Instant) {
        let mut ready: Vec<String> = self
            .scheduled
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(s, _)| s.clone())
            .collect();
        ready.sort();
        for s in ready {
            self.scheduled.remove(&s);
            if !self.forgotten.contains(&s) {
                self.ask(&s);
            }
        }
    }

    /// In-band symbols asked for and not yet resubscribed.
    pub fn take_inband(&mut self) -> Vec<String> {
        std::mem::take(&mut self.inband)
    }

    /// Whether a snapshot of `symbol` is asked for or scheduled.
    #[cfg(test)]
    pub fn waiting(&self, symbol: &str) -> bool {
        self.asked.contains_key(symbol) || self.scheduled.contains_key(symbol)
    }
}

/// Fetches snapshots one at a time, at most one per `spacing` (so many symbols resyncing at
/// once do not hit the venue's rate limit), and sends them back to the session.
pub(super) struct SnapshotFetcher {
    pub http: RestClient,
    pub base: String,
    pub venue: Arc<dyn Venue>,
    pub venue_of: HashMap<String, String>,
    pub limit: u32,
    pub spacing: Duration,
}

pub(super) async fn snapshot_fetcher(
    f: SnapshotFetcher,
    mut requests: mpsc::UnboundedReceiver<String>,
    results: mpsc::UnboundedSender<(String, Result<Snapshot, String>)>,
) {
    let SnapshotFetcher {
        http,
        base,
        venue,
        venue_of,
        limit,
        spacing,
    } = f;
    let mut last: Option<Instant> = None;
    while let Some(symbol) = requests.recv().await {
        if let Some(t) = last {
            tokio::time::sleep(spacing.saturating_sub(t.elapsed())).await;
        }
        last = Some(Instant::now());
        let Some(path) = venue.snapshot_path(
            venue_of
                .get(&symbol)
                .map_or(symbol.as_str(), String::as_str),
            limit,
        ) else {
            return;
        };
        let url = format!("{base}{path}");
        let weight = venue.limits().snapshot_weight;
        let snap = match get_text(&http, &url, weight).await {
            Ok(body) => venue.parse_snapshot(&body).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if results.send((symbol, snap)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resync(
        source: SnapshotSource,
        timeout_ms: u64,
    ) -> (Resync, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let r = Resync::new(
            source,
            Duration::from_millis(timeout_ms),
            Duration::ZERO,
            (Duration::from_millis(10), Duration::from_millis(40)),
            tx,
        );
        (r, rx)
    }

    #[test]
    fn an_in_band_first_snapshot_that_never_comes_is_asked_for_again() {
        let (mut r, _rx) = resync(SnapshotSource::InBand, 20);
        r.due_in_band("BTC-USD");
        // Every diff of the unsynced book asks: nothing new is sent while it is awaited.
        r.request("BTC-USD");
        assert!(r.take_inband().is_empty());
        let later = Instant::now() + Duration::from_millis(25);
        let retries = r.expired(later);
        assert_eq!(retries.len(), 1);
        assert_eq!(retries[0].symbol, "BTC-USD");
        assert_eq!(retries[0].failures, 1);
        // Not asked before its backoff delay, even when diffs ask.
        r.request("BTC-USD");
        assert!(r.take_inband().is_empty());
        r.due(Instant::now() + Duration::from_millis(100));
        assert_eq!(r.take_inband(), ["BTC-USD"]);
        assert!(r.waiting("BTC-USD"));
    }

    #[test]
    fn an_arrived_snapshot_clears_the_request_whatever_its_outcome() {
        let (mut r, mut rx) = resync(SnapshotSource::Rest, 10_000);
        r.request("ETH-USDT");
        assert_eq!(rx.try_recv().ok().as_deref(), Some("ETH-USDT"));
        let retry = r.failed("ETH-USDT");
        assert_eq!(retry.failures, 1);
        assert!(retry.after >= Duration::from_millis(10));
        r.due(Instant::now() + Duration::from_secs(1));
        assert_eq!(
            rx.try_recv().ok().as_deref(),
            Some("ETH-USDT"),
            "asked again"
        );
        // Consecutive failures count up to the bound, then sync resets them.
        for n in 2..=MAX_FAILURES {
            assert_eq!(r.failed("ETH-USDT").failures, n);
        }
        r.synced("ETH-USDT");
        assert!(!r.waiting("ETH-USDT"));
        assert_eq!(r.failed("ETH-USDT").failures, 1);
    }

    #[test]
    fn a_forgotten_symbol_is_never_asked_for_again() {
        let (mut r, _rx) = resync(SnapshotSource::InBand, 10);
        r.due_in_band("DOGE-USD");
        r.forget("DOGE-USD");
        r.request("DOGE-USD");
        r.again("DOGE-USD");
        assert!(r
            .expired(Instant::now() + Duration::from_secs(1))
            .is_empty());
        assert!(r.take_inband().is_empty());
    }
}
