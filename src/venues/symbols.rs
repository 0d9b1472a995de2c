//! Venue symbol ↔ normalized `BASE-QUOTE` symbol mapping, pinned from the config.

use std::sync::Arc;

use rustc_hash::FxHashMap;

/// Maps venue symbols (`BTCUSDT`) to normalized ones (`BTC-USDT`, `BTC-USDT-PERP`).
#[derive(Debug, Clone, Default)]
pub struct SymbolMap {
    // Looked up once per message: a fast (non-DoS-resistant) hash; the keys come from the config.
    to_normalized: FxHashMap<String, Arc<str>>,
}

impl SymbolMap {
    /// A map from (venue symbol, normalized symbol) pairs.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> SymbolMap {
        SymbolMap {
            to_normalized: pairs
                .into_iter()
                .map(|(v, n)| (v.to_ascii_uppercase(), Arc::from(n)))
                .collect(),
        }
    }

    /// The normalized symbol of a venue symbol, if configured.
    pub fn normalized(&self, venue_symbol: &str) -> Option<&str> {
        self.to_normalized.get(venue_symbol).map(|s| &**s)
    }

    /// The normalized symbol of a venue symbol, shared (no copy).
    pub fn shared(&self, venue_symbol: &str) -> Option<Arc<str>> {
        self.to_normalized.get(venue_symbol).cloned()
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.to_normalized.len()
    }

    /// Whether no symbol is configured.
    pub fn is_empty(&self) -> bool {
        self.to_normalized.is_empty()
    }
}
