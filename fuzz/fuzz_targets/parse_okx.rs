//! Any bytes as OKX v5 WebSocket frames, through a stateful session in both book modes and
//! into synced books, and as a REST order-book answer: a typed error or events, never a
//! panic. The input is one frame, then each of its lines a frame in sequence, so that
//! subscription answers, snapshots and updates interleave; broken books are resynced and fed on.
#![no_main]

use libfuzzer_sys::fuzz_target;

use tickflow::book::{BookSync, Snapshot, Step};
use tickflow::feed::books::BookKeeper;
use tickflow::venues::okx::{http, BookMode, Okx};
use tickflow::venues::{Channel, Frame, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent};

const CHANNELS: [Channel; 10] = [
    Channel::Depth,
    Channel::Trade,
    Channel::AggTrade,
    Channel::PartialDepth,
    Channel::Ticker,
    Channel::BookTicker,
    Channel::Candle,
    Channel::Funding,
    Channel::Liquidation,
    Channel::OpenInterest,
];

const SYMBOLS: [(&str, &str); 4] = [
    ("BTC-USDT", "BTC-USDT"),
    ("BTC-USDT-SWAP", "BTC-USDT-PERP"),
    ("BTC-USD-220527", "BTC-USD-20220527"),
    ("BTC-USD-220624-50000-C", "BTC-USD-20220624-50000-C"),
];

fn spec(url: &str) -> SessionSpec {
    let mut subscriptions = Vec::new();
    for (venue_symbol, symbol) in SYMBOLS {
        for channel in CHANNELS {
            subscriptions.push(Subscription {
                channel,
                symbol: symbol.to_string(),
                venue_symbol: venue_symbol.to_string(),
            });
        }
    }
    SessionSpec {
        subscriptions,
        symbols: SymbolMap::new(SYMBOLS.iter().map(|(v, n)| (v.to_string(), n.to_string()))),
        book_depth: 400,
        ws_url: url.to_string(),
    }
}

fn base() -> Snapshot {
    Snapshot {
        last_update_id: 1,
        bids: vec![("1.0".into(), "1".into())],
        asks: vec![("2.0".into(), "1".into())],
        ..Snapshot::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for url in ["wss://ws.okx.com:8443", "ws://127.0.0.1:1/inband"] {
        let okx = Okx::new();
        let mut session = okx.session(spec(url));
        let _ = session.subscribe();
        let seq = okx.sequencer(400);
        let mut keeper = BookKeeper::new("OKX", seq.clone(), 1, Some(400));
        let mut sync = BookSync::new(seq, 16);
        let _ = sync.on_snapshot(&base());
        for frame in std::iter::once(text).chain(text.lines()) {
            let mut out = Vec::new();
            let _ = session.on_frame(Frame::Text(frame), 0, &mut out);
            for ev in out {
                let _ = ev.record();
                match ev {
                    VenueEvent::Diff { symbol, diff } => {
                        let _ = keeper.on_diff(&symbol, diff.clone());
                        if !sync.is_synced() {
                            let _ = sync.on_snapshot(&base());
                        }
                        if let Ok(Step::Broken(_) | Step::Gap { .. }) = sync.on_diff(diff) {
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
        let _ = session.heartbeat();
    }
    if let Ok(s) = http::parse_snapshot(text) {
        let okx = Okx::new();
        let mut sync = BookSync::new(okx.sequencer(400), 16);
        let _ = sync.on_snapshot(&s);
    }
    let map = SymbolMap::new(SYMBOLS.iter().map(|(v, n)| (v.to_string(), n.to_string())));
    for mode in [BookMode::Rest, BookMode::InBand] {
        let mut out = Vec::new();
        let _ = Okx::with_mode(mode).parse(text, 0, &map, &mut out);
    }
});
