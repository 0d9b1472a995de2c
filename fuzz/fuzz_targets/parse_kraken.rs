//! Any bytes as Kraken WebSocket frames (v1 and v2), through a stateful session and into
//! synced books: a typed error or events, never a panic. The input is one frame, then each of
//! its lines a frame in sequence, so that subscription answers, instrument precisions,
//! snapshots and updates interleave; broken books are resynced from a snapshot and fed on.
#![no_main]

use libfuzzer_sys::fuzz_target;

use tickflow::book::{BookSync, Snapshot, Step};
use tickflow::feed::books::BookKeeper;
use tickflow::venues::kraken::{Kraken, WsVersion};
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
    for symbol in ["BTC-USD", "MATIC-USD", "XMR-USD"] {
        for channel in CHANNELS {
            subscriptions.push(Subscription {
                channel,
                symbol: symbol.to_string(),
                venue_symbol: String::new(),
            });
        }
    }
    SessionSpec {
        subscriptions,
        symbols: SymbolMap::default(),
        book_depth: 10,
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
    let kraken = Kraken::new();
    for version in [WsVersion::V1, WsVersion::V2] {
        let mut session = kraken.session_for(version, spec());
        let _ = session.subscribe();
        let seq = kraken.sequencer(10);
        let mut keeper = BookKeeper::new("KRAKEN", seq.clone(), 1, Some(10));
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
                        if let Ok(Step::Broken(_)) = sync.on_diff(diff) {
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
    // The session-less parse (pinned precisions only).
    let map = SymbolMap::new([
        ("XBT/USD".to_string(), "BTC-USD".to_string()),
        ("BTC/USD".to_string(), "BTC-USD".to_string()),
    ]);
    for version in [WsVersion::V1, WsVersion::V2] {
        let mut out = Vec::new();
        let _ = Kraken::with_version(version).parse(text, 0, &map, &mut out);
    }
});
