//! Any bytes as Deribit JSON-RPC frames, through a stateful session and into synced books: a
//! typed error or events, never a panic. The input is one frame, then each of its lines a
//! frame in sequence, so that answers, heartbeats, snapshots and changes interleave; broken
//! chains are resubscribed and fed on.
#![no_main]

use libfuzzer_sys::fuzz_target;

use tickflow::book::{BookSync, Step};
use tickflow::feed::books::BookKeeper;
use tickflow::venues::deribit::Deribit;
use tickflow::venues::{Channel, Frame, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent};

const CHANNELS: [Channel; 6] = [
    Channel::Depth,
    Channel::Trade,
    Channel::Ticker,
    Channel::Funding,
    Channel::OpenInterest,
    Channel::BookTicker,
];

const SYMBOLS: [(&str, &str); 3] = [
    ("BTC-USD-PERP", "BTC-PERPETUAL"),
    ("BTC-USD-20210924-8000-P", "BTC-24SEP21-8000-P"),
    ("ETH-USDC-PERP", "ETH_USDC-PERPETUAL"),
];

fn spec() -> SessionSpec {
    let mut subscriptions = Vec::new();
    for (symbol, venue) in SYMBOLS {
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
        symbols: SymbolMap::new(SYMBOLS.iter().map(|(n, v)| (v.to_string(), n.to_string()))),
        book_depth: 0,
        ws_url: String::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let venue = Deribit::new();
    let mut session = venue.session(spec());
    let _ = session.subscribe();
    let seq = venue.sequencer(0);
    let mut keeper = BookKeeper::new("DERIBIT", seq.clone(), 1, None);
    let mut sync = BookSync::new(seq, 16);
    for frame in std::iter::once(text).chain(text.lines()) {
        let mut out = Vec::new();
        let _ = session.on_frame(Frame::Text(frame), 0, &mut out);
        for ev in out {
            let _ = ev.record();
            match ev {
                VenueEvent::Diff { symbol, diff } => {
                    let _ = keeper.on_diff(&symbol, diff.clone());
                    if let Ok(Step::Gap { .. } | Step::Broken(_)) = sync.on_diff(diff) {
                        let _ = session.resubscribe_book(&symbol);
                    }
                }
                VenueEvent::Snapshot { symbol, snapshot } => {
                    let _ = keeper.on_snapshot(&symbol, &snapshot, 0);
                    let _ = sync.on_snapshot(&snapshot);
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    let _ = session.on_frame(Frame::Binary(data), 0, &mut out);
    let _ = session.unconfirmed();
    let map = SymbolMap::new([("BTC-PERPETUAL".to_string(), "BTC-USD-PERP".to_string())]);
    let mut out = Vec::new();
    let _ = venue.parse(text, 0, &map, &mut out);
    for (_, v) in SYMBOLS {
        let _ = tickflow::venues::deribit::symbols::normalized(v);
    }
    let _ = tickflow::venues::deribit::symbols::normalized(text);
});
