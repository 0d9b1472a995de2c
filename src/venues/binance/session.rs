//! One Binance connection: `SUBSCRIBE` requests batched within the venue's per-message limit,
//! their `{"result":null,"id":N}` answers tracked, text frames parsed. Binance's server sends
//! WebSocket pings (answered by the transport); it wants no application heartbeat.
//!
//! On a routed market (USD-M) a connection carries one endpoint category (the supervisor opens
//! one connection per [`crate::venues::Venue::connection_group`]) and connects to
//! `/public/stream` or `/market/stream` accordingly.

use std::collections::HashSet;

use super::{category, Binance};
use crate::venues::{Frame, ParseError, SessionSpec, SymbolMap, VenueEvent, VenueSession};

/// The state of one Binance connection.
#[derive(Debug)]
pub struct BinanceSession {
    venue: Binance,
    streams: Vec<String>,
    /// The endpoint path (`/stream`, `/public/stream`, `/market/stream`).
    path: String,
    symbols: SymbolMap,
    /// Request ids sent and not yet answered.
    unanswered: HashSet<u64>,
    next_id: u64,
}

impl BinanceSession {
    /// A session for `spec`'s subscriptions.
    pub fn new(venue: Binance, spec: SessionSpec) -> BinanceSession {
        let mut streams: Vec<String> = spec
            .subscriptions
            .iter()
            .filter_map(|s| venue.stream_name(&s.venue_symbol, s.channel))
            .collect();
        let path = if venue.spec().routed {
            // One category per connection: the first stream's (a connection with no stream,
            // only polled open interest, is a `market` one). A stream of the other category
            // would never deliver on this endpoint: it is left out, loudly.
            let group = streams.first().map_or("market", |s| category(s));
            let (kept, misrouted): (Vec<String>, Vec<String>) =
                streams.into_iter().partition(|s| category(s) == group);
            if !misrouted.is_empty() {
                tracing::warn!(
                    exchange = venue.spec().exchange,
                    endpoint = group,
                    ?misrouted,
                    "streams of another endpoint category left out of this connection"
                );
            }
            streams = kept;
            format!("/{group}/stream")
        } else {
            "/stream".to_string()
        };
        BinanceSession {
            venue,
            streams,
            path,
            symbols: spec.symbols,
            unanswered: HashSet::new(),
            next_id: 1,
        }
    }
}

impl VenueSession for BinanceSession {
    fn path(&self) -> String {
        self.path.clone()
    }

    fn subscribe(&mut self) -> Vec<String> {
        let per_message = self.venue.spec().limits.max_streams_per_message.max(1);
        let mut out = Vec::new();
        for chunk in self.streams.chunks(per_message) {
            let id = self.next_id;
            self.next_id += 1;
            self.unanswered.insert(id);
            out.push(
                serde_json::json!({ "method": "SUBSCRIBE", "params": chunk, "id": id }).to_string(),
            );
        }
        out
    }

    fn unconfirmed(&self) -> usize {
        self.unanswered.len()
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
        self.venue.parse(text, receipt_us, &self.symbols, out)?;
        if out.len() == before + 1 && out[before] == VenueEvent::Control {
            // A subscription answer: `{"result":null,"id":N}`.
            #[derive(serde::Deserialize)]
            struct Answer {
                id: Option<u64>,
            }
            if let Ok(Answer { id: Some(id) }) = serde_json::from_str::<Answer>(text) {
                self.unanswered.remove(&id);
            }
        }
        Ok(())
    }
}
