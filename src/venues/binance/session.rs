//! One Binance connection: `SUBSCRIBE` requests batched within the venue's per-message limit,
//! their `{"result":null,"id":N}` answers tracked, text frames parsed. Binance's server sends
//! WebSocket pings (answered by the transport); it wants no application heartbeat.

use std::collections::HashSet;

use super::Binance;
use crate::venues::{Frame, ParseError, SessionSpec, SymbolMap, VenueEvent, VenueSession};

/// The state of one Binance connection.
#[derive(Debug)]
pub struct BinanceSession {
    venue: Binance,
    streams: Vec<String>,
    symbols: SymbolMap,
    /// Request ids sent and not yet answered.
    unanswered: HashSet<u64>,
    next_id: u64,
}

impl BinanceSession {
    /// A session for `spec`'s subscriptions.
    pub fn new(venue: Binance, spec: SessionSpec) -> BinanceSession {
        let streams = spec
            .subscriptions
            .iter()
            .filter_map(|s| venue.stream_name(&s.venue_symbol, s.channel))
            .collect();
        BinanceSession {
            venue,
            streams,
            symbols: spec.symbols,
            unanswered: HashSet::new(),
            next_id: 1,
        }
    }
}

impl VenueSession for BinanceSession {
    fn path(&self) -> String {
        "/stream".into()
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
