//! Any bytes as a Binance frame or REST answer: a typed error or records, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

use tickflow::book::{BookSync, Snapshot};
use tickflow::feed::books::BookKeeper;
use tickflow::venues::binance::{Binance, Rules};
use tickflow::venues::{SymbolMap, Venue, VenueEvent};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let map = SymbolMap::new([("BTCUSDT".to_string(), "BTC-USDT".to_string())]);
    for venue in [Binance::spot(), Binance::usdm()] {
        let mut out = Vec::new();
        let _ = venue.parse(text, 0, &map, &mut out);
        let _ = venue.parse_snapshot(text);
        let _ = venue.parse_open_interest(text, 0, &map);
        let mut sync = BookSync::new(Arc::new(Rules::Spot), 16);
        for ev in out {
            if let VenueEvent::Diff { diff, .. } = ev {
                // A book keeper synced just before this diff, so it applies and is encoded
                // as a Level2Delta record (and a full book, every delta here).
                let mut keeper = BookKeeper::new("BINANCE", Arc::new(Rules::Spot), 1, Some(5));
                let snap = Snapshot {
                    last_update_id: diff.first.saturating_sub(1),
                    ..Snapshot::default()
                };
                let _ = keeper.on_snapshot("BTC-USDT", &snap, 0);
                let _ = keeper.on_diff("BTC-USDT", diff.clone());
                let _ = sync.on_diff(diff);
            }
        }
    }
});
