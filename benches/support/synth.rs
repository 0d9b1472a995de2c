//! Synthetic Binance spot recordings for the scale and soak runs: any number of symbols, in
//! the recorded shapes of `tests/fixtures/binance/` (`depthUpdate` diffs with contiguous ids
//! after a REST snapshot, `trade` events with contiguous trade ids), written as the replay
//! server's fixture files (`binance_depthUpdate.jsonl`, `binance_trade.jsonl`,
//! `binance_depth_snapshot_rest.jsonl` and its `MANIFEST.tsv` lines).

use std::fmt::Write as _;
use std::path::Path;

/// The normalized names of `n` synthetic symbols (`S0000-USDT`, …).
pub fn symbols(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("S{i:04}-USDT")).collect()
}

fn venue(symbol: &str) -> String {
    symbol.replace('-', "")
}

/// Last update id of every symbol's snapshot; the first diff starts after it.
pub const SNAPSHOT_ID: i64 = 1_000;

/// What was written.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    /// Depth diffs (every symbol).
    pub diffs: u64,
    /// Trades (every symbol).
    pub trades: u64,
}

/// Writes a recording of `symbols` into `dir`: per symbol a 20-level snapshot, then
/// `per_symbol` frames alternating a diff (1–3 levels, ids contiguous) and a trade, the symbols
/// interleaved round-robin, one frame every `spacing_us` µs of exchange time.
pub fn binance_spot(
    dir: &Path,
    symbols: &[String],
    per_symbol: usize,
    spacing_us: i64,
) -> std::io::Result<Written> {
    let start_ms: i64 = 1_700_000_000_000;
    let (mut depth, mut trades, mut snaps, mut manifest) =
        (String::new(), String::new(), String::new(), String::new());
    for (i, s) in symbols.iter().enumerate() {
        let v = venue(s);
        let bids: Vec<String> = (0..20)
            .map(|k| {
                format!(
                    "[\"{}.{:08}\",\"{}.00000000\"]",
                    100 + i,
                    99_000_000 - k * 10_000,
                    10 + k
                )
            })
            .collect();
        let asks: Vec<String> = (0..20)
            .map(|k| {
                format!(
                    "[\"{}.{:08}\",\"{}.00000000\"]",
                    101 + i,
                    k * 10_000,
                    10 + k
                )
            })
            .collect();
        let _ = writeln!(
            snaps,
            "{{\"lastUpdateId\":{SNAPSHOT_ID},\"bids\":[{}],\"asks\":[{}]}}",
            bids.join(","),
            asks.join(",")
        );
        let _ = writeln!(
            manifest,
            "binance_depth_snapshot_rest.jsonl\t{}\tsynthetic\tbenches/support/synth.rs\t-\tREST https://api.binance.com/api/v3/depth?symbol={v}&limit=1000",
            i + 1
        );
    }
    let mut next_id = vec![SNAPSHOT_ID + 1; symbols.len()];
    let mut next_trade = vec![1_000_000i64; symbols.len()];
    let (mut diffs, mut trade_n) = (0u64, 0u64);
    let mut frame = 0i64;
    for round in 0..per_symbol {
        for (i, s) in symbols.iter().enumerate() {
            let v = venue(s);
            let lower = v.to_lowercase();
            let at_us = start_ms * 1_000 + frame * spacing_us;
            let (e_ms, t_ms) = (at_us / 1_000, at_us / 1_000 - 1);
            frame += 1;
            if round % 2 == 0 {
                let levels = 1 + (round / 2) % 3;
                let first = next_id[i];
                let last = first + levels as i64 - 1;
                next_id[i] = last + 1;
                let level = |k: usize| {
                    let tick = (round + k) % 20;
                    format!(
                        "[\"{}.{:08}\",\"{}.{:08}\"]",
                        100 + i,
                        99_000_000 - tick * 10_000,
                        (round + k) % 7,
                        (round * 37 + k) % 100_000_000
                    )
                };
                let b: Vec<String> = (0..levels).map(level).collect();
                let _ = writeln!(
                    depth,
                    "{{\"stream\":\"{lower}@depth@100ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{e_ms},\"s\":\"{v}\",\"U\":{first},\"u\":{last},\"b\":[{}],\"a\":[]}}}}",
                    b.join(",")
                );
                diffs += 1;
            } else {
                let t = next_trade[i];
                next_trade[i] += 1;
                let _ = writeln!(
                    trades,
                    "{{\"stream\":\"{lower}@trade\",\"data\":{{\"e\":\"trade\",\"E\":{e_ms},\"s\":\"{v}\",\"t\":{t},\"p\":\"{}.50000000\",\"q\":\"0.{:08}\",\"b\":{},\"a\":{},\"T\":{t_ms},\"m\":{},\"M\":true}}}}",
                    100 + i,
                    1 + round % 99_999_999,
                    t * 2,
                    t * 2 + 1,
                    round % 4 == 1
                );
                trade_n += 1;
            }
        }
    }
    std::fs::write(dir.join("binance_depthUpdate.jsonl"), depth)?;
    std::fs::write(dir.join("binance_trade.jsonl"), trades)?;
    std::fs::write(dir.join("binance_depth_snapshot_rest.jsonl"), snaps)?;
    std::fs::write(dir.join("MANIFEST.tsv"), manifest)?;
    Ok(Written {
        diffs,
        trades: trade_n,
    })
}
