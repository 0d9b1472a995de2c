//! One Coinbase connection (Advanced Trade or Exchange feed): one subscribe message per
//! channel (Advanced Trade takes one channel per message; `heartbeats` first, always), every
//! channel's confirmation tracked from the `subscriptions` answers, Advanced Trade's
//! connection-wide `sequence_num` checked on every frame, trades deduplicated across
//! reconnects through the venue's [`RecentTrades`], a broken book recovered by unsubscribing
//! and resubscribing its `level2` product, which brings a fresh in-band snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{advanced, exchange, Api, RecentTrades};
use crate::schema::Normalized;
use crate::venues::{Channel, Frame, ParseError, SessionSpec, SymbolMap, VenueEvent, VenueSession};

/// Products in one subscribe message (Coinbase publishes no cap; this keeps messages small).
pub const PRODUCTS_PER_MESSAGE: usize = 100;

/// The state of one Coinbase connection.
#[derive(Debug)]
pub struct CoinbaseSession {
    api: Api,
    /// (channel, normalized symbol, product), in config order, once each.
    subs: Vec<(Channel, String, String)>,
    /// Product → normalized symbol.
    symbols: SymbolMap,
    /// Normalized symbol → product.
    products: HashMap<String, String>,
    /// (channel, normalized symbol) subscribed: filters ticker records (the `ticker` channel
    /// gives both the ticker and the book ticker).
    wants: HashSet<(Channel, String)>,
    /// (venue channel, product) sent and not yet confirmed (`heartbeats` has product `""`).
    pending: HashSet<(String, String)>,
    /// The `sequence_num` due next (Advanced Trade).
    expected: Option<u64>,
    /// Books waiting for the snapshot a connection-wide resync asked for: while any is, a
    /// further break is not announced again (every book is already being resynced).
    awaiting: HashSet<String>,
    /// Sequence breaks seen on this connection.
    breaks: u64,
    /// The last heartbeat counter (Advanced Trade, +1 a second).
    heartbeat: Option<u64>,
    recent: Arc<RecentTrades>,
}

/// The venue channel names of a channel, per API.
fn venue_channel(api: Api, channel: Channel) -> Option<&'static str> {
    match (api, channel) {
        (Api::Advanced, Channel::Depth) => Some("level2"),
        (Api::Advanced, Channel::Trade) => Some("market_trades"),
        (Api::Advanced, Channel::Ticker | Channel::BookTicker) => Some("ticker"),
        (Api::Advanced, Channel::Candle) => Some("candles"),
        (Api::Exchange, Channel::Depth) => Some("level2_batch"),
        (Api::Exchange, Channel::Trade) => Some("matches"),
        (Api::Exchange, Channel::Ticker) => Some("ticker"),
        _ => None,
    }
}

impl CoinbaseSession {
    /// A session speaking `api` for `spec`'s subscriptions; trades are deduplicated through
    /// `recent` (shared by the feed's connections).
    pub fn new(api: Api, spec: SessionSpec, recent: Arc<RecentTrades>) -> CoinbaseSession {
        let mut subs = Vec::new();
        let mut products = HashMap::new();
        let mut wants = HashSet::new();
        for s in &spec.subscriptions {
            products.insert(s.symbol.clone(), s.venue_symbol.clone());
            if wants.insert((s.channel, s.symbol.clone())) {
                subs.push((s.channel, s.symbol.clone(), s.venue_symbol.clone()));
            }
        }
        let symbols = SymbolMap::new(products.iter().map(|(n, p)| (p.clone(), n.clone())));
        CoinbaseSession {
            api,
            subs,
            symbols,
            products,
            wants,
            pending: HashSet::new(),
            expected: None,
            awaiting: HashSet::new(),
            breaks: 0,
            heartbeat: None,
            recent,
        }
    }

    /// The API spoken.
    pub fn api(&self) -> Api {
        self.api
    }

    /// Sequence breaks seen on this connection.
    pub fn breaks(&self) -> u64 {
        self.breaks
    }

    /// The last heartbeat counter seen.
    pub fn heartbeat_counter(&self) -> Option<u64> {
        self.heartbeat
    }

    /// Books waiting for the snapshot a connection-wide resync asked for.
    pub fn awaiting(&self) -> &HashSet<String> {
        &self.awaiting
    }

    /// (venue channel, products) to subscribe, in sending order.
    fn groups(&self) -> Vec<(&'static str, Vec<String>)> {
        let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();
        for (channel, _, product) in &self.subs {
            let Some(name) = venue_channel(self.api, *channel) else {
                tracing::warn!(?channel, api = ?self.api, "channel not served by this Coinbase API; not subscribed");
                continue;
            };
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, ps)) => {
                    if !ps.contains(product) {
                        ps.push(product.clone());
                    }
                }
                None => groups.push((name, vec![product.clone()])),
            }
        }
        groups
    }

    fn request(&self, kind: &str, channel: &str, products: &[&str]) -> String {
        match self.api {
            Api::Advanced => advanced::request(kind, channel, products),
            Api::Exchange => exchange::request(kind, &[channel], products),
        }
    }

    /// Confirms what a `subscriptions` answer lists.
    fn confirm<'a>(&mut self, listed: impl Iterator<Item = (&'a str, &'a [String])>) {
        for (channel, products) in listed {
            if channel == "heartbeats" || channel == "heartbeat" {
                self.pending.retain(|(c, _)| c != channel);
            }
            for p in products {
                self.pending.remove(&(channel.to_string(), p.clone()));
            }
        }
    }

    /// Keeps, of a ticker's records, those whose channel is subscribed.
    fn filter_tickers(&self, out: &mut Vec<VenueEvent>, from: usize) {
        let mut i = from;
        while i < out.len() {
            let keep = match &out[i] {
                VenueEvent::Record(Normalized::Ticker(t)) => {
                    self.wants.contains(&(Channel::Ticker, t.symbol.clone()))
                }
                VenueEvent::Record(Normalized::TopOfBook(t)) => self
                    .wants
                    .contains(&(Channel::BookTicker, t.symbol.clone())),
                _ => true,
            };
            if keep {
                i += 1;
            } else {
                out.remove(i);
            }
        }
    }

    /// Checks a frame's `sequence_num`; on a break, a connection-wide resync is put at
    /// `at` in `out` (before the frame's own events), unless one is already under way.
    fn check_sequence(&mut self, seq: u64, out: &mut Vec<VenueEvent>, at: usize) {
        if let Some(expected) = self.expected {
            if seq != expected {
                self.breaks += 1;
                let reason = format!("sequence_num {seq} after {}: frames lost", expected - 1);
                if self.awaiting.is_empty() {
                    self.awaiting = self
                        .subs
                        .iter()
                        .filter(|(c, _, _)| *c == Channel::Depth)
                        .map(|(_, s, _)| s.clone())
                        .collect();
                    out.insert(
                        at,
                        VenueEvent::Resync {
                            symbol: None,
                            reason,
                        },
                    );
                } else {
                    tracing::warn!(%reason, "sequence break while every book is resyncing");
                }
            }
        }
        self.expected = seq.checked_add(1);
    }
}

impl VenueSession for CoinbaseSession {
    /// The API is chosen by the base URL: nothing is appended.
    fn path(&self) -> String {
        String::new()
    }

    fn subscribe(&mut self) -> Vec<String> {
        self.pending.clear();
        self.expected = None;
        self.awaiting.clear();
        let mut out = Vec::new();
        let groups = self.groups();
        if self.api == Api::Advanced {
            // Quiet channels are closed after 60–90 s without heartbeats; subscribed first.
            self.pending.insert(("heartbeats".into(), String::new()));
            out.push(advanced::request("subscribe", "heartbeats", &[]));
        }
        for (name, products) in &groups {
            for chunk in products.chunks(PRODUCTS_PER_MESSAGE) {
                for p in chunk {
                    self.pending.insert((name.to_string(), p.clone()));
                }
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                out.push(self.request("subscribe", name, &refs));
            }
        }
        if self.api == Api::Exchange && !groups.is_empty() {
            // The Exchange feed's per-product heartbeat keeps quiet products' connection alive.
            let all: Vec<String> = self
                .products
                .values()
                .cloned()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let mut all = all;
            all.sort();
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            out.push(exchange::request("subscribe", &["heartbeat"], &refs));
        }
        out
    }

    fn unconfirmed(&self) -> usize {
        self.pending.len()
    }

    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        receipt_us: i64,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError> {
        let Frame::Text(text) = frame else {
            return Err(ParseError::Unsupported("binary frame".into()));
        };
        let before = out.len();
        let result = self.frame(text, receipt_us, out, before);
        if result.is_err() {
            // A refused frame gives no events.
            out.truncate(before);
        }
        result
    }

    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        if !self.wants.contains(&(Channel::Depth, symbol.to_string())) {
            return Vec::new();
        }
        let (Some(product), Some(name)) = (
            self.products.get(symbol).cloned(),
            venue_channel(self.api, Channel::Depth),
        ) else {
            return Vec::new();
        };
        self.pending.insert((name.to_string(), product.clone()));
        vec![
            self.request("unsubscribe", name, &[&product]),
            self.request("subscribe", name, &[&product]),
        ]
    }
}

impl CoinbaseSession {
    /// One text frame's events into `out` (from `before`).
    fn frame(
        &mut self,
        text: &str,
        receipt_us: i64,
        out: &mut Vec<VenueEvent>,
        before: usize,
    ) -> Result<(), ParseError> {
        let recent = self.recent.clone();
        let mut keep = |symbol: &str, id: &str| recent.insert(symbol, id);
        match self.api {
            Api::Advanced => {
                let parsed =
                    advanced::parse_frame(text, receipt_us, &self.symbols, &mut keep, out)?;
                for ev in &out[before..] {
                    if let VenueEvent::Snapshot { symbol, .. } = ev {
                        self.awaiting.remove(symbol);
                    }
                }
                if let Some(seq) = parsed.sequence {
                    self.check_sequence(seq, out, before);
                }
                match parsed.control {
                    advanced::Control::Data => self.filter_tickers(out, before),
                    advanced::Control::Subscriptions(subs) => {
                        self.confirm(subs.iter().map(|(c, p)| (c.as_str(), p.as_slice())));
                        out.push(VenueEvent::Control);
                    }
                    advanced::Control::Heartbeat(n) => {
                        self.heartbeat = Some(n);
                        out.push(VenueEvent::Control);
                    }
                }
            }
            Api::Exchange => {
                match exchange::parse_frame(text, receipt_us, &self.symbols, &mut keep, out)? {
                    exchange::Control::Data => {}
                    exchange::Control::Subscriptions(subs) => {
                        self.confirm(subs.iter().map(|(c, p)| (c.as_str(), p.as_slice())));
                        out.push(VenueEvent::Control);
                    }
                    exchange::Control::Quiet => out.push(VenueEvent::Control),
                }
            }
        }
        if out.len() == before {
            // Every trade already produced, or no ticker record subscribed: nothing to do.
            out.push(VenueEvent::Control);
        }
        Ok(())
    }
}
