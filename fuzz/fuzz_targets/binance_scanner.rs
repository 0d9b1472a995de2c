//! Any text through Binance's trade and depth scanner: it either declines or yields exactly what the
//! `serde_json` typed parse yields, and a frame parsed with the scanner gives the same records
//! (or the same error) as the `serde_json`-only path.
#![no_main]

use libfuzzer_sys::fuzz_target;

use tickflow::venues::binance::websocket::messages::{AggTrade, DepthUpdate, Trade};
use tickflow::venues::binance::websocket::parse::{parse_frame, parse_frame_general};
use tickflow::venues::binance::websocket::scan::{
    scan_agg_trade, scan_depth, scan_frame, scan_trade,
};
use tickflow::venues::SymbolMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(t) = scan_trade(text) {
        let typed: Trade<'_> = serde_json::from_str(text).expect("the scanner accepted it");
        assert_eq!(t, typed, "{text}");
    }
    if let Some(t) = scan_agg_trade(text) {
        let typed: AggTrade<'_> = serde_json::from_str(text).expect("the scanner accepted it");
        assert_eq!(t, typed, "{text}");
    }
    if let Some(d) = scan_depth(text) {
        let typed: DepthUpdate<'_> = serde_json::from_str(text).expect("the scanner accepted it");
        assert_eq!(
            (d.event_time, d.transaction_time, d.symbol),
            (typed.event_time, typed.transaction_time, typed.symbol)
        );
        assert_eq!(
            (d.first_update_id, d.final_update_id, d.prev_final_update_id),
            (typed.first_update_id, typed.final_update_id, typed.prev_final_update_id)
        );
        let pairs = |l: &[[&str; 2]]| l.iter().map(|[p, q]| (p.to_string(), q.to_string())).collect::<Vec<_>>();
        let owned = |l: &tickflow::book::Levels| l.iter().map(|(p, q)| (p.to_string(), q.to_string())).collect::<Vec<_>>();
        assert_eq!(owned(&d.bids), pairs(&typed.bids));
        assert_eq!(owned(&d.asks), pairs(&typed.asks));
    }
    let scanned = scan_frame(text).is_some();
    let map = SymbolMap::new([
        ("BTCUSDT".to_string(), "BTC-USDT".to_string()),
        ("BTCUSD_PERP".to_string(), "BTC-USD-PERP".to_string()),
        ("SUSHIUSDT".to_string(), "SUSHI-USDT-PERP".to_string()),
    ]);
    let (mut fast, mut general) = (Vec::new(), Vec::new());
    let a = parse_frame("BINANCE", text, 7, &map, &mut fast);
    let b = parse_frame_general("BINANCE", text, 7, &map, &mut general);
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{text}");
    assert_eq!(fast, general, "{text}");
    if scanned {
        // Only well-formed trades are scanned: the general path must have accepted the text.
        assert!(
            a.is_ok() || !matches!(b, Err(tickflow::venues::ParseError::Malformed(_))),
            "{text}"
        );
    }
});
