//! One Kraken connection (v1 or v2): subscribe requests per channel, batched within the
//! per-message limit; every (channel, pair) confirmation tracked; the client heartbeat
//! (`{"event":"ping"}` / `{"method":"ping"}`); v2 pair precisions learned from the
//! `instrument` channel (subscribed first when books are); a broken book recovered by
//! unsubscribing and resubscribing its pair, which brings a fresh in-band snapshot.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;

use super::book::venue_depth;
use super::websocket::{v1, v2, Control, Precisions};
use super::{pair_in, venue_pair, WsVersion};
use crate::schema::Normalized;
use crate::venues::{
    Channel, Frame, Instrument, ParseError, SessionSpec, SymbolMap, VenueEvent, VenueSession,
};

/// How often the client pings.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// One v2 subscribe group: channel, pairs, further parameters.
type Group<'a> = (&'a str, Vec<String>, Vec<(&'a str, serde_json::Value)>);

/// Per-message limit of pairs in one subscribe request.
pub const PAIRS_PER_MESSAGE: usize = 50;

/// The state of one Kraken connection.
#[derive(Debug)]
pub struct KrakenSession {
    version: WsVersion,
    depth: u32,
    /// (channel, normalized symbol, venue pair in this version's form), in config order.
    subs: Vec<(Channel, String, String)>,
    /// Venue pair → normalized symbol.
    symbols: SymbolMap,
    /// Normalized symbol → venue pair.
    pairs: HashMap<String, String>,
    /// (channel, normalized symbol) subscribed: filters v2 ticker messages, which carry both
    /// the ticker and the book ticker.
    wants: HashSet<(Channel, String)>,
    /// (channel name, venue pair) sent and not yet confirmed (`""` for `instrument`).
    pending: HashSet<(String, String)>,
    precisions: Precisions,
}

impl KrakenSession {
    /// A session speaking `version` for `spec`'s subscriptions. Venue symbols are rewritten
    /// into this version's form (`XBT/USD` ↔ `BTC/USD`), whatever form the spec carries.
    pub fn new(version: WsVersion, spec: SessionSpec) -> KrakenSession {
        let mut subs = Vec::new();
        let mut pairs = HashMap::new();
        let mut wants = HashSet::new();
        for s in &spec.subscriptions {
            let pair = match Instrument::parse(&s.symbol) {
                Ok(i) => venue_pair(&i, version),
                Err(_) => pair_in(&s.venue_symbol, version),
            };
            pairs.insert(s.symbol.clone(), pair.clone());
            if wants.insert((s.channel, s.symbol.clone())) {
                subs.push((s.channel, s.symbol.clone(), pair));
            }
        }
        let symbols = SymbolMap::new(pairs.iter().map(|(n, p)| (p.clone(), n.clone())));
        KrakenSession {
            version,
            depth: venue_depth(spec.book_depth),
            subs,
            symbols,
            pairs,
            wants,
            pending: HashSet::new(),
            precisions: Precisions::new(),
        }
    }

    /// The API version spoken.
    pub fn version(&self) -> WsVersion {
        self.version
    }

    /// The book depth subscribed.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The v2 precisions known now (pinned plus learned).
    pub fn precisions(&self) -> &Precisions {
        &self.precisions
    }

    fn pairs_of(&self, channel: Channel) -> Vec<&str> {
        self.subs
            .iter()
            .filter(|(c, _, _)| *c == channel)
            .map(|(_, _, p)| p.as_str())
            .collect()
    }

    /// Requests for one channel's pairs, batched; their confirmations become pending.
    fn requests(
        &mut self,
        name: &str,
        pairs: &[&str],
        make: impl Fn(&[&str]) -> String,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for chunk in pairs.chunks(PAIRS_PER_MESSAGE) {
            for p in chunk {
                self.pending.insert((name.to_string(), p.to_string()));
            }
            out.push(make(chunk));
        }
        out
    }

    fn subscribe_v1(&mut self) -> Vec<String> {
        let depth = self.depth;
        let mut out = Vec::new();
        for (channel, name, d, interval) in [
            (Channel::Depth, "book", Some(depth), None),
            (Channel::Trade, "trade", None, None),
            (Channel::Ticker, "ticker", None, None),
            (Channel::BookTicker, "spread", None, None),
            (Channel::Candle, "ohlc", None, Some(1)),
        ] {
            let pairs: Vec<String> = self
                .pairs_of(channel)
                .into_iter()
                .map(str::to_string)
                .collect();
            let pairs: Vec<&str> = pairs.iter().map(String::as_str).collect();
            out.extend(self.requests(name, &pairs, |chunk| {
                v1::request("subscribe", chunk, name, d, interval)
            }));
        }
        out
    }

    fn subscribe_v2(&mut self) -> Vec<String> {
        let own = |v: Vec<&str>| -> Vec<String> { v.into_iter().map(str::to_string).collect() };
        let books = own(self.pairs_of(Channel::Depth));
        let trades = own(self.pairs_of(Channel::Trade));
        let candles = own(self.pairs_of(Channel::Candle));
        // One ticker subscription per pair: `event_trigger: bbo` where a book ticker is wanted
        // (its messages also carry the ticker fields), trade-triggered otherwise.
        let bbo = own(self.pairs_of(Channel::BookTicker));
        let tickers: Vec<String> = own(self.pairs_of(Channel::Ticker))
            .into_iter()
            .filter(|p| !bbo.contains(p))
            .collect();
        let mut out = Vec::new();
        if !books.is_empty() {
            // Precisions first, so that the book snapshots are written with them.
            self.pending.insert(("instrument".into(), String::new()));
            out.push(v2::request("subscribe", "instrument", &[], &[]));
        }
        let groups: [Group<'_>; 5] = [
            ("book", books, vec![("depth", json!(self.depth))]),
            ("trade", trades, vec![("snapshot", json!(false))]),
            ("ticker", tickers, vec![]),
            ("ticker", bbo, vec![("event_trigger", json!("bbo"))]),
            ("ohlc", candles, vec![("interval", json!(1))]),
        ];
        for (name, pairs, params) in groups {
            let pairs: Vec<&str> = pairs.iter().map(String::as_str).collect();
            out.extend(self.requests(name, &pairs, |chunk| {
                v2::request("subscribe", name, chunk, &params)
            }));
        }
        out
    }

    /// Keeps, of a v2 ticker message's records, those whose channel is subscribed.
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
}

impl VenueSession for KrakenSession {
    /// The API version is in the base URL (`wss://ws.kraken.com/v2`): nothing is appended.
    fn path(&self) -> String {
        String::new()
    }

    fn subscribe(&mut self) -> Vec<String> {
        self.pending.clear();
        match self.version {
            WsVersion::V1 => self.subscribe_v1(),
            WsVersion::V2 => self.subscribe_v2(),
        }
    }

    fn unconfirmed(&self) -> usize {
        self.pending.len()
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        Some(HEARTBEAT)
    }

    fn heartbeat(&mut self) -> Option<String> {
        Some(
            match self.version {
                WsVersion::V1 => v1::PING,
                WsVersion::V2 => v2::PING,
            }
            .to_string(),
        )
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
        let control = match self.version {
            WsVersion::V1 => v1::parse_frame(text, receipt_us, &self.symbols, out)?,
            WsVersion::V2 => {
                v2::parse_frame(text, receipt_us, &self.symbols, &self.precisions, out)?
            }
        };
        match control {
            Control::Data => {
                if self.version == WsVersion::V2 {
                    self.filter_tickers(out, before);
                }
            }
            Control::Subscribed { channel, pair } => {
                self.pending.remove(&(channel, pair.unwrap_or_default()));
                out.push(VenueEvent::Control);
            }
            Control::Instruments(list) => {
                self.precisions.learn(list);
                out.push(VenueEvent::Control);
            }
            Control::Unsubscribed | Control::Quiet => out.push(VenueEvent::Control),
            Control::Pinged => {}
        }
        Ok(())
    }

    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        if !self.wants.contains(&(Channel::Depth, symbol.to_string())) {
            return Vec::new();
        }
        let Some(pair) = self.pairs.get(symbol).cloned() else {
            return Vec::new();
        };
        self.pending.insert(("book".into(), pair.clone()));
        let depth = self.depth;
        match self.version {
            WsVersion::V1 => vec![
                v1::request("unsubscribe", &[&pair], "book", Some(depth), None),
                v1::request("subscribe", &[&pair], "book", Some(depth), None),
            ],
            WsVersion::V2 => {
                let params = [("depth", json!(depth))];
                vec![
                    v2::request("unsubscribe", "book", &[&pair], &params),
                    v2::request("subscribe", "book", &[&pair], &params),
                ]
            }
        }
    }
}
