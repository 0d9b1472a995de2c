//! Any bytes as BitMEX WebSocket frames, through a stateful session and into synced books: a
//! typed error or events, never a panic. The input is one frame, then each of its lines a
//! frame in sequence, so that partials, inserts, updates and deletes of the same ids
//! interleave; broken books are resubscribed and fed on.
#![no_main]

use libfuzzer_sys::fuzz_target;

use tickflow::book::{BookSync, Step};
use tickflow::feed::books::BookKeeper;
use tickflow::venues::bitmex::{Bitmex, ParseState};
use tickflow::venues::{
    Channel, Frame, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent,
};

const CHANNELS: [Channel; 7] = [
    Channel::Depth,
    Channel::Trade,
    Channel::BookTicker,
    Channel::Funding,
    Channel::OpenInterest,
    Channel::Liquidation,
    Channel::Candle,
];

fn map() -> SymbolMap {
    SymbolMap::new([
        ("XBTUSD".to_string(), "BTC-USD-PERP".to_string()),
        ("XBTZ21".to_string(), "BTC-USD-20211231".to_string()),
    ])
}

fn spec() -> SessionSpec {
    let mut subscriptions = Vec::new();
    for (venue, symbol) in [("XBTUSD", "BTC-USD-PERP"), ("XBTZ21", "BTC-USD-20211231")] {
        for channel in CHANNELS {
            subscriptions.push(Subscription {
                channel,
                symbol: symbol.to_string(),
                venue_symbol: venue.to_string(),
            });
        }
    }
    SessionSpec {
        subscriptions,
        symbols: map(),
        book_depth: 0,
        ws_url: String::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let venue = Bitmex::new();
    let mut session = venue.session(spec());
    let _ = session.subscribe();
    let seq = venue.sequencer(0);
    let mut keeper = BookKeeper::new("BITMEX", seq.clone(), 1, None);
    let mut sync = BookSync::new(seq, 16);
    for frame in std::iter::once(text).chain(text.lines()) {
        let mut out = Vec::new();
        let _ = session.on_frame(Frame::Text(frame), 0, &mut out);
        for ev in out {
            let _ = ev.record();
            match ev {
                VenueEvent::Diff { symbol, diff } => {
                    let _ = keeper.on_diff(&symbol, diff.clone());
                    if let Ok(Step::Broken(_)) = sync.on_diff(diff) {
                        let _ = session.resubscribe_book(&symbol);
                    }
                }
                VenueEvent::Snapshot { symbol, snapshot } => {
                    let _ = keeper.on_snapshot(&symbol, &snapshot, 0);
                    let _ = sync.on_snapshot(&snapshot);
                }
                VenueEvent::Resync { symbol: Some(s), .. } => {
                    let _ = session.resubscribe_book(&s);
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    let _ = session.on_frame(Frame::Binary(data), 0, &mut out);
    let _ = session.unconfirmed();
    let _ = session.heartbeat();
    // The session-less parse.
    let mut st = ParseState::new();
    let _ = venue.parse(text, 0, &map(), &mut st, &mut out);
    let _ = tickflow::venues::bitmex::parse::plain(text);
});
