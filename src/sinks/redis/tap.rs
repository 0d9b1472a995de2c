//! The tap: sees each record as a producer stream hands it to Kafka and puts its bytes (the
//! same shared `Bytes`, not copied) under its key in the pending map. Its cost is building the
//! key and one map insert under a lock that the writer only ever holds for a swap; it never
//! waits on Redis.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use super::pending::{Inserted, Pending};
use crate::metrics::Metrics;
use crate::producer::tap::RecordTap;
use crate::producer::ProduceEvent;

/// What the tap and the writer share.
pub struct Shared {
    /// Values waiting for the writer.
    pending: Mutex<Pending>,
    /// Woken when the map goes from empty to not empty.
    pub(super) wake: Notify,
    key_prefix: String,
    pub(super) metrics: Arc<Metrics>,
}

impl Shared {
    /// An empty pending map of at most `max_keys` keys.
    pub fn new(key_prefix: &str, max_keys: usize, metrics: Arc<Metrics>) -> Shared {
        Shared {
            pending: Mutex::new(Pending::new(max_keys)),
            wake: Notify::new(),
            key_prefix: key_prefix.to_string(),
            metrics,
        }
    }

    /// `<prefix>:<data_type>:<EXCHANGE>:<SYMBOL>`, e.g. `tickflow:trade:BINANCE:BTC-USDT`.
    pub fn key(&self, data_type: &str, exchange: &str, symbol: &str) -> String {
        let mut k = String::with_capacity(
            self.key_prefix.len() + data_type.len() + exchange.len() + symbol.len() + 3,
        );
        for (i, part) in [self.key_prefix.as_str(), data_type, exchange, symbol]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                k.push(':');
            }
            k.push_str(part);
        }
        k
    }

    /// Puts one value under its key (replacing a waiting older one), counts, wakes the writer.
    pub fn offer(&self, key: String, value: Bytes) -> Inserted {
        let (inserted, len) = {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let inserted = p.insert(key, value);
            (inserted, p.len())
        };
        match inserted {
            Inserted::New => {
                if len == 1 {
                    self.wake.notify_one();
                }
            }
            Inserted::Coalesced => {
                self.metrics.redis_coalesced.inc();
            }
            Inserted::Dropped => {
                self.metrics.redis_dropped.inc();
            }
        }
        inserted
    }

    /// Takes everything waiting (one swap under the lock).
    pub fn take(&self) -> Pending {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The [`RecordTap`] of the Redis sink.
pub struct RedisTap {
    shared: Arc<Shared>,
}

impl RedisTap {
    /// A tap feeding `shared`.
    pub fn new(shared: Arc<Shared>) -> RedisTap {
        RedisTap { shared }
    }
}

impl RecordTap for RedisTap {
    fn framed(&self, _topic: &str, event: &ProduceEvent, framed: &Bytes) {
        let p = &event.payload;
        // Only normalized records have a data type and a schema readers know; pre-encoded
        // payloads of other schemas are not latest values of an instrument.
        let Some(dt) = p.data_type() else {
            return;
        };
        let key = self.shared.key(dt.as_str(), p.exchange(), p.symbol());
        self.shared.offer(key, framed.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::schema::{Normalized, Trade};

    #[test]
    fn the_tap_keys_by_data_type_exchange_symbol_and_coalesces() {
        let metrics = Metrics::new();
        let shared = Arc::new(Shared::new("tf", 10, metrics.clone()));
        let tap = RedisTap::new(shared.clone());
        let trade = |symbol: &str, id: &str| {
            ProduceEvent::typed(Normalized::Trade(Trade {
                exchange: "BINANCE".into(),
                symbol: symbol.into(),
                trade_id: id.into(),
                ..Trade::default()
            }))
        };
        let v1 = Bytes::from_static(b"\0one");
        let v2 = Bytes::from_static(b"\0two");
        let v3 = Bytes::from_static(b"\0three");
        tap.framed("t", &trade("BTC-USDT", "1"), &v1);
        tap.framed("t", &trade("BTC-USDT", "2"), &v2);
        tap.framed("t", &trade("ETH-USDT", "3"), &v3);
        let taken = shared.take();
        assert_eq!(taken.len(), 2);
        let got = taken.get("tf:trade:BINANCE:BTC-USDT").unwrap();
        assert_eq!(got, &v2);
        // The very bytes handed over, not a copy.
        assert_eq!(got.as_ptr(), v2.as_ptr());
        assert_eq!(taken.get("tf:trade:BINANCE:ETH-USDT"), Some(&v3));
        assert_eq!(metrics.redis_coalesced.get(), 1);
        assert!(shared.take().is_empty());
    }
}
