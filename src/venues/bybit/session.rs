//! One Bybit v5 connection (one category): topics per channel (`orderbook.N`, `orderbook.1`,
//! `publicTrade`, `tickers` once for ticker/funding/open interest, `allLiquidation`,
//! `kline.1`), at most [`ARGS_PER_MESSAGE`] per subscribe request, each request with a
//! `req_id` whose answer is tracked; `{"op":"ping"}` every 20 s; a broken book recovered by
//! unsubscribing and resubscribing its topic, which brings a fresh in-band snapshot. A refused
//! subscription of one symbol (`success: false`) drops that symbol, announced; other refusals
//! are venue errors. Records of a `tickers` message are kept when their channel is subscribed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::parse::{self, Control, ParseState, PING};
use super::{venue_symbol, Category};
use crate::schema::Normalized;
use crate::venues::{
    Channel, Frame, Instrument, ParseError, SessionSpec, SymbolMap, VenueEvent, VenueSession,
};

/// Bybit's limit of args per subscribe request (spot; the other categories accept more).
pub const ARGS_PER_MESSAGE: usize = 10;

/// How often the client pings (Bybit recommends every 20 s).
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// The state of one Bybit connection.
#[derive(Debug)]
pub struct BybitSession {
    category: Category,
    depth: u32,
    /// (channel, normalized symbol, venue symbol) of this category, in config order.
    subs: Vec<(Channel, String, String)>,
    /// Subscriptions of another category than the connection's (not subscribed).
    foreign: Vec<(Channel, String)>,
    symbols: SymbolMap,
    /// Normalized symbol → venue symbol.
    venue: HashMap<String, String>,
    wants: HashSet<(Channel, String)>,
    /// req_id → topics sent and not yet answered.
    pending: HashMap<String, Vec<String>>,
    next_req: u64,
    state: ParseState,
}

impl BybitSession {
    /// A session for `spec`: the category is the first subscription's.
    pub fn new(spec: SessionSpec) -> BybitSession {
        let cat = |sym: &str| Instrument::parse(sym).ok().map(|i| Category::of(&i));
        let category = spec
            .subscriptions
            .iter()
            .find_map(|s| cat(&s.symbol))
            .unwrap_or(Category::Spot);
        let mut subs = Vec::new();
        let mut foreign = Vec::new();
        let mut venue = HashMap::new();
        let mut wants = HashSet::new();
        for s in &spec.subscriptions {
            let Ok(i) = Instrument::parse(&s.symbol) else {
                foreign.push((s.channel, s.symbol.clone()));
                continue;
            };
            if Category::of(&i) != category {
                foreign.push((s.channel, s.symbol.clone()));
                continue;
            }
            let v = if s.venue_symbol.is_empty() {
                venue_symbol(&i)
            } else {
                s.venue_symbol.clone()
            };
            venue.insert(s.symbol.clone(), v.clone());
            if wants.insert((s.channel, s.symbol.clone())) {
                subs.push((s.channel, s.symbol.clone(), v));
            }
        }
        let symbols = SymbolMap::new(venue.iter().map(|(n, v)| (v.clone(), n.clone())));
        BybitSession {
            category,
            depth: category.book_depth(spec.book_depth),
            subs,
            foreign,
            symbols,
            venue,
            wants,
            pending: HashMap::new(),
            next_req: 0,
            state: ParseState::new(),
        }
    }

    /// The category this connection speaks.
    pub fn category(&self) -> Category {
        self.category
    }

    /// The book depth subscribed.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Subscriptions left out: their symbols belong to another category than the
    /// connection's (configure one feed per category).
    pub fn foreign(&self) -> &[(Channel, String)] {
        &self.foreign
    }

    /// The parse state (tickers' last values).
    pub fn state(&self) -> &ParseState {
        &self.state
    }

    /// The topic of `channel` for `venue_symbol` (`None`: served by another channel's topic).
    fn topic(&self, channel: Channel, v: &str) -> Option<String> {
        Some(match channel {
            Channel::Depth => format!("orderbook.{}.{v}", self.depth),
            Channel::BookTicker => format!("orderbook.1.{v}"),
            Channel::Trade | Channel::AggTrade => format!("publicTrade.{v}"),
            Channel::Ticker | Channel::Funding | Channel::OpenInterest => format!("tickers.{v}"),
            Channel::Liquidation => format!("allLiquidation.{v}"),
            Channel::Candle => format!("kline.1.{v}"),
            Channel::PartialDepth => return None,
        })
    }

    fn send(&mut self, op: &str, topics: Vec<String>, track: bool) -> String {
        self.next_req += 1;
        let req_id = format!("{op}-{}", self.next_req);
        let msg = parse::request(op, &topics, &req_id);
        if track {
            self.pending.insert(req_id, topics);
        }
        msg
    }

    /// Keeps, of a ticker message's records, those whose channel is subscribed.
    fn filter(&self, out: &mut Vec<VenueEvent>, from: usize) {
        let mut i = from;
        while i < out.len() {
            let want = |c: Channel, s: &str| self.wants.contains(&(c, s.to_string()));
            let keep = match &out[i] {
                VenueEvent::Record(Normalized::Ticker(t)) => want(Channel::Ticker, &t.symbol),
                VenueEvent::Record(Normalized::Funding(f)) => want(Channel::Funding, &f.symbol),
                VenueEvent::Record(Normalized::OpenInterest(o)) => {
                    want(Channel::OpenInterest, &o.symbol)
                }
                _ => true,
            };
            if keep {
                i += 1;
            } else {
                out.remove(i);
            }
        }
    }

    /// The normalized symbol of a refused topic (`orderbook.200.BTCUSDT` → `BTC-USDT`).
    fn symbol_of_topic(&self, topic: &str) -> Option<String> {
        let v = topic.rsplit('.').next()?;
        self.symbols.normalized(v).map(str::to_string)
    }
}

impl VenueSession for BybitSession {
    fn path(&self) -> String {
        self.category.ws_path()
    }

    fn subscribe(&mut self) -> Vec<String> {
        self.pending.clear();
        self.state.clear();
        let mut topics: Vec<String> = Vec::new();
        let subs = self.subs.clone();
        for (c, _, v) in &subs {
            if let Some(t) = self.topic(*c, v) {
                if !topics.contains(&t) {
                    topics.push(t);
                }
            }
        }
        topics
            .chunks(ARGS_PER_MESSAGE)
            .map(|chunk| self.send("subscribe", chunk.to_vec(), true))
            .collect()
    }

    fn unconfirmed(&self) -> usize {
        self.pending.len()
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        Some(HEARTBEAT)
    }

    fn heartbeat(&mut self) -> Option<String> {
        Some(PING.to_string())
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
        match parse::parse_frame(text, receipt_us, &self.symbols, &mut self.state, out)? {
            Control::Data => self.filter(out, before),
            Control::Pong => out.push(VenueEvent::Control),
            Control::Answer {
                op,
                success,
                req_id,
                msg,
            } => {
                // Answers without a req_id (a venue that does not echo it) settle the oldest.
                let topics = match &req_id {
                    Some(r) => self.pending.remove(r),
                    None if op == "subscribe" => {
                        let oldest = self
                            .pending
                            .keys()
                            .min_by_key(|k| {
                                k.rsplit('-')
                                    .next()
                                    .and_then(|n| n.parse::<u64>().ok())
                                    .unwrap_or(u64::MAX)
                            })
                            .cloned();
                        oldest.and_then(|k| self.pending.remove(&k))
                    }
                    None => None,
                };
                if !success && op == "subscribe" {
                    let topics = topics.unwrap_or_default();
                    let refused: Vec<&String> = if topics.len() == 1 {
                        topics.iter().collect()
                    } else {
                        topics.iter().filter(|t| msg.contains(t.as_str())).collect()
                    };
                    let msg: String = msg.chars().take(200).collect();
                    if let [t] = refused[..] {
                        if let Some(symbol) = self.symbol_of_topic(t) {
                            return Err(ParseError::Refused { symbol, msg });
                        }
                    }
                    return Err(ParseError::Venue { code: 0, msg });
                }
                out.push(VenueEvent::Control);
            }
        }
        Ok(())
    }

    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        if !self.wants.contains(&(Channel::Depth, symbol.to_string())) {
            return Vec::new();
        }
        let Some(v) = self.venue.get(symbol).cloned() else {
            return Vec::new();
        };
        let Some(topic) = self.topic(Channel::Depth, &v) else {
            return Vec::new();
        };
        vec![
            self.send("unsubscribe", vec![topic.clone()], false),
            self.send("subscribe", vec![topic], true),
        ]
    }
}
