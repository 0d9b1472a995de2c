//! One BitMEX connection: `{"op":"subscribe","args":[topics]}` batched within the
//! per-message limit, every topic's `{"success":true,"subscribe":topic}` awaited; the text
//! heartbeat `ping` sent when the connection has been idle for [`IDLE`] (BitMEX's documented
//! advice), answered `pong`; a broken book recovered by unsubscribing and resubscribing its
//! `orderBookL2:SYMBOL` topic, which brings a fresh `partial`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;

use super::parse::{parse_frame, Control, ParseState, PING};
use crate::venues::{Channel, Frame, ParseError, SessionSpec, SymbolMap, VenueEvent, VenueSession};

/// After this long without a frame, the client pings.
pub const IDLE: Duration = Duration::from_secs(5);

/// Topics in one subscribe message.
pub const TOPICS_PER_MESSAGE: usize = 20;

/// The BitMEX table of a channel.
pub fn table(channel: Channel) -> Option<&'static str> {
    Some(match channel {
        Channel::Depth => "orderBookL2",
        Channel::Trade => "trade",
        Channel::BookTicker => "quote",
        Channel::Funding | Channel::OpenInterest => "instrument",
        Channel::Liquidation => "liquidation",
        Channel::Candle => "tradeBin1m",
        Channel::AggTrade | Channel::Ticker | Channel::PartialDepth => return None,
    })
}

/// A `subscribe` / `unsubscribe` request.
pub fn request(op: &str, topics: &[String]) -> String {
    json!({ "op": op, "args": topics }).to_string()
}

/// The state of one BitMEX connection.
#[derive(Debug)]
pub struct BitmexSession {
    /// Topics in subscription order (deduplicated: funding and open interest share
    /// `instrument`).
    topics: Vec<String>,
    /// (normalized symbol, venue symbol) of books.
    books: Vec<(String, String)>,
    symbols: SymbolMap,
    pending: HashSet<String>,
    state: ParseState,
    last_frame: Option<Instant>,
}

impl BitmexSession {
    /// A session for `spec`'s subscriptions.
    pub fn new(spec: SessionSpec) -> BitmexSession {
        let mut topics = Vec::new();
        let mut books = Vec::new();
        let mut state = ParseState::new();
        let chans: HashSet<Channel> = spec.subscriptions.iter().map(|s| s.channel).collect();
        state.funding = chans.contains(&Channel::Funding);
        state.open_interest = chans.contains(&Channel::OpenInterest);
        for s in &spec.subscriptions {
            let Some(t) = table(s.channel) else { continue };
            let topic = format!("{t}:{}", s.venue_symbol);
            if !topics.contains(&topic) {
                topics.push(topic);
            }
            if s.channel == Channel::Depth {
                books.push((s.symbol.clone(), s.venue_symbol.clone()));
            }
        }
        BitmexSession {
            topics,
            books,
            symbols: spec.symbols,
            pending: HashSet::new(),
            state,
            last_frame: None,
        }
    }

    /// The topics subscribed, in order.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The parse state (book rows held).
    pub fn state(&self) -> &ParseState {
        &self.state
    }
}

impl VenueSession for BitmexSession {
    fn path(&self) -> String {
        "/realtime".into()
    }

    fn subscribe(&mut self) -> Vec<String> {
        self.pending.clear();
        self.state.clear();
        self.last_frame = None;
        let mut out = Vec::new();
        for chunk in self.topics.chunks(TOPICS_PER_MESSAGE) {
            self.pending.extend(chunk.iter().cloned());
            out.push(request("subscribe", chunk));
        }
        out
    }

    fn unconfirmed(&self) -> usize {
        self.pending.len()
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        Some(IDLE)
    }

    /// `ping` only when nothing arrived for [`IDLE`].
    fn heartbeat(&mut self) -> Option<String> {
        match self.last_frame {
            Some(t) if t.elapsed() < IDLE => None,
            _ => Some(PING.to_string()),
        }
    }

    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        receipt_us: i64,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError> {
        self.last_frame = Some(Instant::now());
        let Frame::Text(text) = frame else {
            return Err(ParseError::Unsupported("binary frame".into()));
        };
        match parse_frame(text, receipt_us, &self.symbols, &mut self.state, out)? {
            Control::Data => {}
            Control::Subscribed(topic) => {
                self.pending.remove(&topic);
                out.push(VenueEvent::Control);
            }
            Control::Unsubscribed(_) | Control::Welcome | Control::Pong => {
                out.push(VenueEvent::Control)
            }
        }
        Ok(())
    }

    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        let Some((_, venue)) = self.books.iter().find(|(n, _)| n == symbol) else {
            return Vec::new();
        };
        let topic = vec![format!("orderBookL2:{venue}")];
        self.state.forget_book(venue);
        self.pending.insert(topic[0].clone());
        vec![request("unsubscribe", &topic), request("subscribe", &topic)]
    }
}
