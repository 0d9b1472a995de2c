//! One OKX connection: `subscribe` operations of up to [`ARGS_PER_MESSAGE`] args, every
//! (channel, instId/instType) confirmation tracked, the text `ping` heartbeat, a refused
//! instrument dropped alone, and in in-band book mode a broken book recovered by
//! unsubscribing and subscribing its `books` channel (which brings a fresh snapshot).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::parse::{parse_frame, Control, Indexes, PING};
use super::{inst_id, BookMode};
use crate::venues::{
    Channel, Frame, Instrument, InstrumentKind, ParseError, SessionSpec, SymbolMap, VenueEvent,
    VenueSession,
};

/// Args in one `subscribe` operation.
pub const ARGS_PER_MESSAGE: usize = 20;

/// The client heartbeat period: OKX closes a connection silent for 30 s.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// One subscription arg: channel and `instId` (or `instType` for `liquidation-orders`).
type Arg = (&'static str, String);

/// Channels OKX serves on `/ws/v5/business` (the others are on `/ws/v5/public`).
pub const BUSINESS_CHANNELS: [&str; 2] = ["candle1m", "trades-all"];

/// The index a derivative's `index-tickers` are subscribed by: its `instId`'s base and quote
/// (`BTC-USDT-SWAP` → `BTC-USDT`, `BTC-USD-220527` → `BTC-USD`); `None` for spot.
pub fn index_of(inst: &str) -> Option<String> {
    let mut parts = inst.split('-');
    let (base, quote) = (parts.next()?, parts.next()?);
    parts.next()?;
    Some(format!("{base}-{quote}"))
}

/// The OKX args a tickflow channel needs for one instrument.
fn args_of(channel: Channel, inst: &str, kind: Option<InstrumentKind>) -> Vec<Arg> {
    let derivative = !matches!(kind, Some(InstrumentKind::Spot) | None);
    let one = |c: &'static str| vec![(c, inst.to_string())];
    match channel {
        // Every trade (`trades-all`, business endpoint); `trades` aggregates per taker order
        // and price since OKX's aggregation change.
        Channel::Trade => one("trades-all"),
        Channel::AggTrade => one("trades"),
        Channel::Depth => one("books"),
        Channel::BookTicker => one("bbo-tbt"),
        Channel::Ticker => one("tickers"),
        Channel::Candle => one("candle1m"),
        Channel::Funding => {
            let mut v = Vec::new();
            if kind == Some(InstrumentKind::Perpetual) {
                v.push(("funding-rate", inst.to_string()));
            }
            if derivative {
                v.push(("mark-price", inst.to_string()));
                if let Some(index) = index_of(inst) {
                    v.push(("index-tickers", index));
                }
            }
            v
        }
        Channel::OpenInterest if derivative => one("open-interest"),
        Channel::Liquidation => {
            let t = match kind {
                Some(InstrumentKind::Perpetual) => "SWAP",
                Some(InstrumentKind::Future) => "FUTURES",
                Some(InstrumentKind::Option) => "OPTION",
                _ => "MARGIN",
            };
            vec![("liquidation-orders", t.to_string())]
        }
        Channel::OpenInterest => Vec::new(),
        Channel::PartialDepth => one("books5"),
    }
}

fn arg_json((channel, key): &Arg) -> serde_json::Value {
    if *channel == "liquidation-orders" {
        json!({ "channel": channel, "instType": key })
    } else {
        json!({ "channel": channel, "instId": key })
    }
}

/// An `op` (`subscribe`/`unsubscribe`) message for `args`.
pub fn request(op: &str, args: &[Arg]) -> String {
    json!({ "op": op, "args": args.iter().map(arg_json).collect::<Vec<_>>() }).to_string()
}

/// The state of one OKX connection.
#[derive(Debug)]
pub struct OkxSession {
    mode: BookMode,
    /// Args in config order, each once.
    args: Vec<Arg>,
    symbols: SymbolMap,
    /// Normalized symbol → instId.
    inst_ids: HashMap<String, String>,
    books: HashSet<String>,
    /// Index (`index-tickers` instId) → the derivatives whose `funding` it serves.
    indexes: Indexes,
    pending: HashSet<(String, String)>,
}

impl OkxSession {
    /// A session keeping books in `mode` for `spec`'s subscriptions.
    pub fn new(mode: BookMode, spec: SessionSpec) -> OkxSession {
        let mut args = Vec::new();
        let mut seen = HashSet::new();
        let mut inst_ids = HashMap::new();
        let mut books = HashSet::new();
        let mut indexes = Indexes::new();
        for s in &spec.subscriptions {
            let parsed = Instrument::parse(&s.symbol).ok();
            let inst = parsed
                .as_ref()
                .map_or_else(|| s.venue_symbol.clone(), inst_id);
            inst_ids.insert(s.symbol.clone(), inst.clone());
            if s.channel == Channel::Depth {
                books.insert(s.symbol.clone());
            }
            let derivative = parsed
                .as_ref()
                .is_some_and(|i| i.kind != InstrumentKind::Spot);
            if let (Channel::Funding, true, Some(index)) = (s.channel, derivative, index_of(&inst))
            {
                let list = indexes.entry(index).or_default();
                if !list.iter().any(|x| **x == *s.symbol) {
                    list.push(Arc::from(s.symbol.as_str()));
                }
            }
            for a in args_of(s.channel, &inst, parsed.map(|i| i.kind)) {
                if seen.insert(a.clone()) {
                    args.push(a);
                }
            }
        }
        OkxSession {
            mode,
            args,
            symbols: spec.symbols,
            inst_ids,
            books,
            indexes,
            pending: HashSet::new(),
        }
    }

    /// The book mode.
    pub fn mode(&self) -> BookMode {
        self.mode
    }

    /// Index → the derivatives whose `funding` its `index-tickers` become.
    pub fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    /// The subscription args, in sending order.
    pub fn args(&self) -> &[(&'static str, String)] {
        &self.args
    }
}

impl VenueSession for OkxSession {
    /// `/ws/v5/business` for a connection of business channels only (candles, `trades-all`:
    /// where OKX serves them), else `/ws/v5/public`.
    fn path(&self) -> String {
        if !self.args.is_empty() && self.args.iter().all(|(c, _)| BUSINESS_CHANNELS.contains(c)) {
            "/ws/v5/business".into()
        } else {
            "/ws/v5/public".into()
        }
    }

    fn subscribe(&mut self) -> Vec<String> {
        self.pending = self
            .args
            .iter()
            .map(|(c, k)| (c.to_string(), k.clone()))
            .collect();
        self.args
            .chunks(ARGS_PER_MESSAGE)
            .map(|chunk| request("subscribe", chunk))
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
        match parse_frame(
            text,
            receipt_us,
            &self.symbols,
            &self.indexes,
            self.mode,
            out,
        ) {
            Ok(Control::Data) => {}
            Ok(Control::Subscribed { channel, key }) => {
                self.pending.remove(&(channel, key));
                out.push(VenueEvent::Control);
            }
            Ok(Control::Unsubscribed | Control::Quiet) => out.push(VenueEvent::Control),
            Err(ParseError::Refused { symbol, msg }) => {
                let inst = self
                    .inst_ids
                    .get(&symbol)
                    .cloned()
                    .unwrap_or(symbol.clone());
                self.pending.retain(|(_, k)| *k != inst);
                return Err(ParseError::Refused { symbol, msg });
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// In-band mode: `books` unsubscribed and subscribed again (a fresh snapshot follows).
    /// REST mode: nothing (the feed refetches the REST snapshot).
    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        if self.mode != BookMode::InBand || !self.books.contains(symbol) {
            return Vec::new();
        }
        let Some(inst) = self.inst_ids.get(symbol).cloned() else {
            return Vec::new();
        };
        self.pending.insert(("books".into(), inst.clone()));
        let arg = [("books", inst)];
        vec![request("unsubscribe", &arg), request("subscribe", &arg)]
    }
}
