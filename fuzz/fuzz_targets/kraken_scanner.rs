//! Any text through Kraken v1's book update scanner: a frame parsed with the scanner gives the
//! same events (or the same error) as the `serde_json`-only path, and a frame the scanner
//! accepted is one that path accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

use tickflow::venues::kraken::websocket::scan::scan_book_update;
use tickflow::venues::kraken::websocket::v1::{parse_frame, parse_frame_general};
use tickflow::venues::SymbolMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let scanned = scan_book_update(text).is_some();
    let map = SymbolMap::new([
        ("XBT/USD".to_string(), "BTC-USD".to_string()),
        ("XMR/USD".to_string(), "XMR-USD".to_string()),
    ]);
    let (mut fast, mut general) = (Vec::new(), Vec::new());
    let a = parse_frame(text, 7, &map, &mut fast);
    let b = parse_frame_general(text, 7, &map, &mut general);
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{text}");
    assert_eq!(fast, general, "{text}");
    if scanned {
        assert!(
            a.is_ok() || matches!(b, Err(tickflow::venues::ParseError::UnknownSymbol(_))),
            "{text}"
        );
    }
});
