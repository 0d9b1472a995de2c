//! Stable-toolchain mutation test of the parsers: every recorded Binance line, truncated at
//! every position and with bytes flipped, gives records or a typed error — never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use tickflow::book::BookSync;
use tickflow::venues::binance::Rules;
use tickflow::venues::{binance::Binance, SymbolMap, Venue, VenueEvent};

#[test]
fn mutated_recorded_frames_never_panic() {
    let map = SymbolMap::new(
        [
            "NKNUSDT",
            "ETHUSDT",
            "BTCUSDT",
            "SUSHIUSDT",
            "LRCBTC",
            "BNBBTC",
        ]
        .map(|s| (s.to_string(), format!("{s}-X"))),
    );
    let mut frames = 0u64;
    let mut errors = 0u64;
    for entry in std::fs::read_dir("tests/fixtures/binance").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().take(5) {
            let bytes = line.as_bytes();
            // About 150 cut points and 40 flip points per line, whatever its length.
            let cut = (bytes.len() / 150).max(1);
            let mut variants: Vec<Vec<u8>> = (0..bytes.len())
                .step_by(cut)
                .map(|i| bytes[..i].to_vec())
                .collect();
            for i in (0..bytes.len()).step_by((bytes.len() / 40).max(1)) {
                for flip in [b'"', b'{', b'}', b'9', b'-', b'.', 0xFF, b'e'] {
                    let mut v = bytes.to_vec();
                    v[i] = flip;
                    variants.push(v);
                }
            }
            variants.push(line.repeat(3).into_bytes());
            for v in variants {
                let Ok(s) = std::str::from_utf8(&v) else {
                    continue;
                };
                for venue in [Binance::spot(), Binance::usdm()] {
                    let mut out = Vec::new();
                    frames += 1;
                    if venue.parse(s, 0, &map, &mut out).is_err() {
                        errors += 1;
                    }
                    let _ = venue.parse_snapshot(s);
                    let mut sync = BookSync::new(Arc::new(Rules::UsdM), 8);
                    for ev in out {
                        if let VenueEvent::Diff { diff, .. } = ev {
                            let _ = sync.on_diff(diff);
                        }
                    }
                }
            }
        }
    }
    assert!(frames > 5_000, "{frames}");
    assert!(
        errors > frames / 2,
        "most mutations are rejected with a typed error ({errors}/{frames})"
    );
}
