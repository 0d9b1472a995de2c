//! Any bytes as Bybit v5 WebSocket frames, through a stateful session of each category and
//! into kept books: a typed error or events, never a panic. The input is one frame, then each
//! of its lines a frame in sequence, so that answers, ticker snapshots and deltas, book
//! snapshots and deltas interleave; broken books are resubscribed and fed on. The instrument
//! list parser gets the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

use tickflow::feed::books::BookKeeper;
use tickflow::venues::bybit::{Bybit, ParseState};
use tickflow::venues::{Channel, Frame, SessionSpec, Subscription, SymbolMap, Venue, VenueEvent};

const CHANNELS: [Channel; 8] = [
    Channel::Depth,
    Channel::BookTicker,
    Channel::Trade,
    Channel::Ticker,
    Channel::Funding,
    Channel::OpenInterest,
    Channel::Liquidation,
    Channel::Candle,
];

fn spec(symbols: &[&str]) -> SessionSpec {
    let mut subscriptions = Vec::new();
    for symbol in symbols {
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
        book_depth: 200,
        ws_url: String::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let bybit = Bybit::new();
    for symbols in [
        &["BTC-USDT", "ETH-USDT"][..],
        &["BTC-USDT-PERP"][..],
        &["BTC-USD-PERP", "BTC-USD-20230929"][..],
        &["BTC-USD-20230106-17500-C"][..],
    ] {
        let mut session = bybit.session(spec(symbols));
        let _ = session.subscribe();
        let mut keeper = BookKeeper::new("BYBIT", bybit.sequencer(200), 1, None);
        for frame in std::iter::once(text).chain(text.lines()) {
            let mut out = Vec::new();
            let _ = session.on_frame(Frame::Text(frame), 0, &mut out);
            for ev in out {
                let _ = ev.record();
                match ev {
                    VenueEvent::Diff { symbol, diff } => {
                        if let Ok(o) = keeper.on_diff(&symbol, diff) {
                            if o.need_snapshot {
                                let _ = session.resubscribe_book(&symbol);
                            }
                        }
                    }
                    VenueEvent::Snapshot { symbol, snapshot } => {
                        let _ = keeper.on_snapshot(&symbol, &snapshot, 0);
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
    // The session-less parse, and the instrument list.
    let map = SymbolMap::new([("BTCUSDT".to_string(), "BTC-USDT".to_string())]);
    let mut out = Vec::new();
    let _ = bybit.parse(text, 0, &map, &mut ParseState::new(), &mut out);
    let _ = bybit.parse_instruments_page("/v5/market/instruments-info?category=linear", text);
});
