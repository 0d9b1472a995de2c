//! Hostile sequences into a synced book, for every venue's sequencer: any ids (up to
//! `i64::MAX`, backwards, huge jumps), any levels, snapshots at any point. Never a panic; the
//! buffer stays bounded; a book the driver calls synced is never crossed.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tickflow::book::{BookSync, Diff, Sequencer, Snapshot, Step};
use tickflow::venues::binance::Rules;
use tickflow::venues::by_name;

const PRICES: [&str; 8] = [
    "0.1",
    "0.10",
    "1",
    "1.5",
    "2",
    "99999999999",
    "0.000000000000000001",
    "3e5",
];
const QTYS: [&str; 5] = ["0", "0.000", "1", "12.5", "-1"];

fn id(bytes: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    for (i, x) in bytes.iter().take(8).enumerate() {
        b[i] = *x;
    }
    i64::from_le_bytes(b)
}

fn run(seq: Arc<dyn Sequencer>, data: &[u8]) {
    let mut sync = BookSync::new(seq.clone(), 64).with_buffer_bytes(4096);
    let mut last = 0i64;
    for op in data.chunks(12) {
        let Some(&kind) = op.first() else { continue };
        let step_ids = op.get(1..9).map(id).unwrap_or(0);
        let mut levels = || -> Vec<(&'static str, &'static str)> {
            op.iter()
                .skip(9)
                .map(|b| {
                    (
                        PRICES[(*b as usize) % PRICES.len()],
                        QTYS[(*b as usize >> 3) % QTYS.len()],
                    )
                })
                .collect()
        };
        if kind % 7 == 0 {
            let l = levels();
            let snap = Snapshot {
                last_update_id: step_ids,
                bids: l
                    .iter()
                    .take(1)
                    .map(|(p, q)| (p.to_string(), q.to_string()))
                    .collect(),
                asks: l
                    .iter()
                    .skip(1)
                    .map(|(p, q)| (p.to_string(), q.to_string()))
                    .collect(),
                checksum: (kind % 2 == 0).then_some(step_ids as u32),
            };
            let _ = sync.on_snapshot(&snap);
        } else {
            // Mostly contiguous, sometimes anything.
            let (first, end) = if kind % 3 == 0 {
                (step_ids, step_ids.wrapping_sub(i64::from(kind)))
            } else {
                let f = last.saturating_add(1);
                (f, f.saturating_add(i64::from(kind % 5)))
            };
            let mut d = Diff {
                first,
                last: end,
                prev: Some(last),
                checksum: (kind % 11 == 0).then_some(step_ids as u32),
                ..Diff::default()
            };
            for (i, (p, q)) in levels().into_iter().enumerate() {
                if (kind as usize + i) % 2 == 0 {
                    d.bids.push(p, q);
                } else {
                    d.asks.push(p, q);
                }
            }
            if let Ok(Step::Applied) = sync.on_diff(d) {
                last = end;
            }
        }
        let (n, bytes) = sync.buffered();
        assert!(
            n <= 64 && bytes <= 4096 + 4096,
            "buffer unbounded: {n} diffs, {bytes} bytes"
        );
        if sync.is_synced() {
            let (bids, asks) = sync.book().levels(Some(1));
            if let (Some(b), Some(a)) = (bids.first(), asks.first()) {
                let (b, a): (f64, f64) = (
                    b.price.parse().unwrap_or(0.0),
                    a.price.parse().unwrap_or(f64::MAX),
                );
                assert!(b < a, "a synced book is crossed: bid {b} ask {a}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    run(Arc::new(Rules::Spot), data);
    run(Arc::new(Rules::UsdM), data);
    // Every registered venue's own sequencer (Kraken's checksum window included).
    for name in ["kraken"] {
        if let Some(v) = by_name(name) {
            run(v.sequencer(10), data);
        }
    }
});
