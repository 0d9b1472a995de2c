//! One Deribit connection: `public/set_heartbeat` first, then one `public/subscribe` per
//! instrument carrying all its channels (so that a refusal names exactly one instrument);
//! every request has an id and its answer is matched to it. Deribit's `test_request`s are
//! answered with `public/test`. A broken book is recovered by `public/unsubscribe` +
//! `public/subscribe` of its `book` channel, which brings a fresh snapshot.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::parse::{self, Control};
use crate::schema::Normalized;
use crate::venues::{Channel, Frame, ParseError, SessionSpec, SymbolMap, VenueEvent, VenueSession};

/// The heartbeat interval asked of Deribit (it then sends a `test_request` about every
/// interval, and closes the connection when one is not answered).
pub const HEARTBEAT_SECS: u64 = 30;

/// The channel names a subscription of `channel` on `instrument` needs (`None` for channels
/// Deribit does not serve here). Ticker, funding and open interest share `ticker`.
pub fn channel_name(channel: Channel, instrument: &str) -> Option<String> {
    Some(match channel {
        Channel::Depth => format!("book.{instrument}.100ms"),
        Channel::Trade => format!("trades.{instrument}.100ms"),
        Channel::BookTicker => format!("quote.{instrument}"),
        Channel::Ticker | Channel::Funding | Channel::OpenInterest => {
            format!("ticker.{instrument}.100ms")
        }
        _ => return None,
    })
}

/// A request sent and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Heartbeat,
    /// `public/subscribe` of one instrument's channels.
    Subscribe {
        instrument: String,
        channels: Vec<String>,
    },
    Unsubscribe,
    Test,
}

/// The state of one Deribit connection.
#[derive(Debug)]
pub struct DeribitSession {
    /// (normalized symbol, instrument name, channel names), in config order.
    instruments: Vec<(String, String, Vec<String>)>,
    /// Instrument name → normalized symbol.
    symbols: SymbolMap,
    /// Normalized symbol → instrument name.
    names: HashMap<String, String>,
    /// (channel, normalized symbol) subscribed: filters what a ticker notification gives.
    wants: HashSet<(Channel, String)>,
    next_id: u64,
    pending: HashMap<u64, Pending>,
}

impl DeribitSession {
    /// A session for `spec`'s subscriptions.
    pub fn new(spec: SessionSpec) -> DeribitSession {
        let mut instruments: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut names = HashMap::new();
        let mut wants = HashSet::new();
        for s in &spec.subscriptions {
            let Some(name) = channel_name(s.channel, &s.venue_symbol) else {
                continue;
            };
            wants.insert((s.channel, s.symbol.clone()));
            names.insert(s.symbol.clone(), s.venue_symbol.clone());
            match instruments.iter_mut().find(|(n, _, _)| *n == s.symbol) {
                Some((_, _, chans)) => {
                    if !chans.contains(&name) {
                        chans.push(name);
                    }
                }
                None => instruments.push((s.symbol.clone(), s.venue_symbol.clone(), vec![name])),
            }
        }
        let symbols = SymbolMap::new(names.iter().map(|(n, v)| (v.clone(), n.clone())));
        DeribitSession {
            instruments,
            symbols,
            names,
            wants,
            next_id: 1,
            pending: HashMap::new(),
        }
    }

    fn id(&mut self, p: Pending) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, p);
        id
    }

    /// Keeps, of a ticker notification's records, those whose channel is subscribed.
    fn filter(&self, out: &mut Vec<VenueEvent>, from: usize) {
        let mut i = from;
        while i < out.len() {
            let wanted = |c: Channel, s: &str| self.wants.contains(&(c, s.to_string()));
            let keep = match &out[i] {
                VenueEvent::Record(Normalized::Ticker(t)) => wanted(Channel::Ticker, &t.symbol),
                VenueEvent::Record(Normalized::Funding(f)) => wanted(Channel::Funding, &f.symbol),
                VenueEvent::Record(Normalized::OpenInterest(o)) => {
                    wanted(Channel::OpenInterest, &o.symbol)
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

    /// Forgets a refused instrument; its normalized symbol.
    fn refuse(&mut self, instrument: &str) -> String {
        let symbol = self
            .symbols
            .normalized(instrument)
            .unwrap_or(instrument)
            .to_string();
        self.instruments.retain(|(_, v, _)| v != instrument);
        self.wants.retain(|(_, s)| *s != symbol);
        self.pending.retain(
            |_, p| !matches!(p, Pending::Subscribe { instrument: i, .. } if i == instrument),
        );
        symbol
    }
}

impl VenueSession for DeribitSession {
    /// The API path is part of the base URL (`wss://www.deribit.com/ws/api/v2`).
    fn path(&self) -> String {
        String::new()
    }

    fn subscribe(&mut self) -> Vec<String> {
        self.pending.clear();
        let mut out = vec![parse::set_heartbeat(
            self.id(Pending::Heartbeat),
            HEARTBEAT_SECS,
        )];
        for (_, instrument, channels) in self.instruments.clone() {
            let id = self.id(Pending::Subscribe {
                instrument,
                channels: channels.clone(),
            });
            out.push(parse::subscribe_request(id, "public/subscribe", &channels));
        }
        out
    }

    /// Subscribe and heartbeat requests not answered yet.
    fn unconfirmed(&self) -> usize {
        self.pending
            .values()
            .filter(|p| matches!(p, Pending::Heartbeat | Pending::Subscribe { .. }))
            .count()
    }

    /// One subscribe message per instrument, paced at the venue's rate: the venue has ten
    /// seconds after the last one.
    fn subscribe_timeout(&self) -> Duration {
        Duration::from_secs(10 + self.instruments.len() as u64 / 5)
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
        match parse::parse_frame(text, receipt_us, &self.symbols, out)? {
            Control::Data => self.filter(out, before),
            Control::Quiet => out.push(VenueEvent::Control),
            Control::TestRequest => {
                let id = self.id(Pending::Test);
                out.push(VenueEvent::Send(parse::test_request_answer(id)));
            }
            Control::Answer { id, channels } => {
                if let Some(Pending::Subscribe {
                    instrument,
                    channels: asked,
                }) = self.pending.remove(&id)
                {
                    // Deribit answers with the channels it subscribed: one it left out (an
                    // unknown or expired instrument) was refused.
                    let missing: Vec<&String> =
                        asked.iter().filter(|c| !channels.contains(c)).collect();
                    if !missing.is_empty() {
                        let msg = format!("not subscribed: {missing:?}");
                        let symbol = self.refuse(&instrument);
                        return Err(ParseError::Refused { symbol, msg });
                    }
                }
                out.push(VenueEvent::Control);
            }
            Control::Failed { id, code, msg } => {
                let pending = id.and_then(|id| self.pending.remove(&id));
                let instrument = match pending {
                    Some(Pending::Subscribe { instrument, .. }) => Some(instrument),
                    _ => {
                        // An error naming exactly one of this connection's instruments.
                        let named: Vec<String> = self
                            .instruments
                            .iter()
                            .filter(|(_, v, _)| msg.contains(v.as_str()))
                            .map(|(_, v, _)| v.clone())
                            .collect();
                        match named.as_slice() {
                            [one] => Some(one.clone()),
                            _ => None,
                        }
                    }
                };
                return Err(match instrument {
                    Some(i) => ParseError::Refused {
                        symbol: self.refuse(&i),
                        msg: format!("{code}: {msg}"),
                    },
                    None => ParseError::Venue { code, msg },
                });
            }
        }
        Ok(())
    }

    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        if !self.wants.contains(&(Channel::Depth, symbol.to_string())) {
            return Vec::new();
        }
        let Some(instrument) = self.names.get(symbol).cloned() else {
            return Vec::new();
        };
        let Some(book) = channel_name(Channel::Depth, &instrument) else {
            return Vec::new();
        };
        let channels = vec![book];
        let unsub = self.id(Pending::Unsubscribe);
        let sub = self.id(Pending::Subscribe {
            instrument,
            channels: channels.clone(),
        });
        vec![
            parse::subscribe_request(unsub, "public/unsubscribe", &channels),
            parse::subscribe_request(sub, "public/subscribe", &channels),
        ]
    }
}
