//! Any bytes as Coinbase WebSocket frames (Advanced Trade and Exchange feed), through a
//! stateful session and into books: a typed error or events, never a panic. The input is one
//! frame, then each of its lines a frame in sequence, so that subscription answers,
//! sequence numbers, snapshots and updates interleave; a resync or a broken book is met with a
//! fresh snapshot and fed on.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

use tickflow::book::{BookSync, Snapshot, Step};
use tickflow::venues::coinbase::{Api, Coinbase};
use tickflow::venues::{
    Channel, Frame, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent, VenueSession,
};

const CHANNELS: [Channel; 5] = [
    Channel::Depth,
    Channel::Trade,
    Channel::Ticker,
    Channel::BookTicker,
    Channel::Candle,
];

fn spec() -> SessionSpec {
    let mut subscriptions = Vec::new();
    let mut pairs = Vec::new();
    for symbol in ["BTC-USD", "ETH-USD", "SKL-BTC"] {
        pairs.push((symbol.to_string(), symbol.to_string()));
        for channel in CHANNELS {
            subscriptions.push(Subscription {
                channel,
                symbol: symbol.to_string(),
                venue_symbol: symbol.to_string(),
            });
        }
    }
    SessionSpec {
        subscriptions,
        symbols: SymbolMap::new(pairs),
        book_depth: 0,
        ws_url: String::new(),
    }
}

fn base() -> Snapshot {
    Snapshot {
        bids: vec![("1.0".into(), "1".into())],
        asks: vec![("2.0".into(), "1".into())],
        ..Snapshot::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for api in [Api::Advanced, Api::Exchange] {
        let venue = Coinbase::with_api(api);
        let mut session = venue.session_for(api, spec());
        let _ = session.subscribe();
        let mut books: HashMap<String, BookSync> = HashMap::new();
        let frames = std::iter::once(text).chain(text.lines());
        for (i, frame) in frames.enumerate() {
            let mut out = Vec::new();
            if session
                .on_frame(Frame::Text(frame), i as i64, &mut out)
                .is_err()
            {
                continue;
            }
            for ev in out {
                let _ = ev.record();
                match ev {
                    VenueEvent::Snapshot { symbol, snapshot } => {
                        let b = books
                            .entry(symbol)
                            .or_insert_with(|| BookSync::new(venue.sequencer(0), 16));
                        let _ = b.on_snapshot(&snapshot);
                    }
                    VenueEvent::Diff { symbol, diff } => {
                        let b = books
                            .entry(symbol.to_string())
                            .or_insert_with(|| BookSync::new(venue.sequencer(0), 16));
                        match b.on_diff(diff) {
                            Ok(Step::Broken(_) | Step::Gap { .. }) => {
                                let _ = session.resubscribe_book(&symbol);
                                let _ = b.on_snapshot(&base());
                            }
                            _ => {}
                        }
                    }
                    VenueEvent::Resync { .. } => {
                        for (symbol, b) in books.iter_mut() {
                            b.reset();
                            let _ = session.resubscribe_book(symbol);
                            let _ = b.on_snapshot(&base());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
});
