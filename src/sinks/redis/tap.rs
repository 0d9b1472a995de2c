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
use crate::schema::DataType;

/// What the tap and the writer share.
pub struct Shared {
    /// Values waiting for the writer.
    pending: Mutex<Pending>,
    /// Woken when the map goes from empty to not empty.
    pub(super) wake: Notify,
    key_prefix: String,
    /// The data types kept.
    kept: Vec<DataType>,
    /// Whether a dropped key was logged already (logged once; the count is a metric and in
    /// `/readyz`).
    drop_logged: std::sync::atomic::AtomicBool,
    pub(super) metrics: Arc<Metrics>,
}

impl Shared {
    /// An empty pending map of at most `max_keys` keys, keeping the data types `kept`.
    pub fn new(
        key_prefix: &str,
        kept: Vec<DataType>,
        max_keys: usize,
        metrics: Arc<Metrics>,
    ) -> Shared {
        Shared::bounded(key_prefix, kept, max_keys, usize::MAX, metrics)
    }

    /// An empty pending map of at most `max_keys` keys and `max_bytes` bytes.
    pub fn bounded(
        key_prefix: &str,
        kept: Vec<DataType>,
        max_keys: usize,
        max_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Shared {
        Shared {
            pending: Mutex::new(Pending::bounded(max_keys, max_bytes)),
            wake: Notify::new(),
            key_prefix: key_prefix.to_string(),
            kept,
            drop_logged: std::sync::atomic::AtomicBool::new(false),
            metrics,
        }
    }

    /// Whether values of `data_type` are kept.
    pub fn wants(&self, data_type: DataType) -> bool {
        self.kept.contains(&data_type)
    }

    /// `<prefix>:<topic>:<data_type>:<EXCHANGE>:<SYMBOL>`, e.g.
    /// `tickflow:market.trade:trade:BINANCE:BTC-USDT`.
    pub fn key(&self, topic: &str, data_type: &str, exchange: &str, symbol: &str) -> String {
        let mut k = String::with_capacity(
            self.key_prefix.len()
                + topic.len()
                + data_type.len()
                + exchange.len()
                + symbol.len()
                + 4,
        );
        for (i, part) in [self.key_prefix.as_str(), topic, data_type, exchange, symbol]
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
        let key_for_log = if self.drop_logged.load(std::sync::atomic::Ordering::Relaxed) {
            String::new()
        } else {
            key.clone()
        };
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
            Inserted::Dropped => self.dropped(&key_for_log, 1),
        }
        inserted
    }

    /// Counts `n` values dropped because the pending map was full; the first drop is logged
    /// (with its key), later ones only counted.
    pub(super) fn dropped(&self, key: &str, n: u64) {
        if n == 0 {
            return;
        }
        self.metrics.redis_dropped.inc_by(n);
        if !self
            .drop_logged
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                key,
                "redis sink: pending map full (redis.max_pending_keys); a latest value was \
                 dropped and Redis keeps an older one until the key's next value (logged once; \
                 counted in tickflow_redis_sink_dropped_total and shown in /readyz)"
            );
        }
    }

    /// Values dropped so far because the pending map was full.
    pub fn dropped_count(&self) -> u64 {
        self.metrics.redis_dropped.get()
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
    fn key(&self, topic: &str, event: &ProduceEvent) -> Option<String> {
        let p = &event.payload;
        // Only normalized records have a data type and a schema readers know; pre-encoded
        // payloads of other schemas are not latest values of an instrument.
        let dt = p.data_type()?;
        self.shared.wants(dt).then(|| {
            self.shared
                .key(topic, dt.as_str(), p.exchange(), p.symbol())
        })
    }

    fn stored(&self, key: String, framed: Bytes) {
        self.shared.offer(key, framed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::schema::{FeedEvent, Normalized, Trade};

    fn trade(symbol: &str, id: &str) -> ProduceEvent {
        ProduceEvent::typed(Normalized::Trade(Trade {
            exchange: "BINANCE".into(),
            symbol: symbol.into(),
            trade_id: id.into(),
            ..Trade::default()
        }))
    }

    #[test]
    fn the_tap_keys_by_topic_data_type_exchange_symbol_and_coalesces_what_was_stored() {
        let metrics = Metrics::new();
        let shared = Arc::new(Shared::new(
            "tf",
            vec![DataType::Trade],
            10,
            metrics.clone(),
        ));
        let tap = RedisTap::new(shared.clone());
        let v1 = Bytes::from_static(b"\0one");
        let v2 = Bytes::from_static(b"\0two");
        let v3 = Bytes::from_static(b"\0three");
        let v4 = Bytes::from_static(b"\0four");
        let k1 = tap.key("t", &trade("BTC-USDT", "1")).unwrap();
        assert_eq!(k1, "tf:t:trade:BINANCE:BTC-USDT");
        let k2 = tap.key("t", &trade("BTC-USDT", "2")).unwrap();
        let k3 = tap.key("t", &trade("ETH-USDT", "3")).unwrap();
        // The same instrument on another topic is another key.
        let k4 = tap.key("u", &trade("BTC-USDT", "4")).unwrap();
        assert_eq!(k4, "tf:u:trade:BINANCE:BTC-USDT");
        // Nothing is offered before the broker stored it.
        assert!(shared.take().is_empty());
        tap.stored(k1, v1);
        tap.stored(k2, v2.clone());
        tap.stored(k3, v3.clone());
        tap.stored(k4, v4.clone());
        let taken = shared.take();
        assert_eq!(taken.len(), 3);
        let got = taken.get("tf:t:trade:BINANCE:BTC-USDT").unwrap();
        assert_eq!(got, &v2);
        // The very bytes handed over, not a copy.
        assert_eq!(got.as_ptr(), v2.as_ptr());
        assert_eq!(taken.get("tf:t:trade:BINANCE:ETH-USDT"), Some(&v3));
        assert_eq!(taken.get("tf:u:trade:BINANCE:BTC-USDT"), Some(&v4));
        assert_eq!(metrics.redis_coalesced.get(), 1);
        assert!(shared.take().is_empty());
    }

    #[test]
    fn a_value_dropped_by_a_full_map_is_counted() {
        let metrics = Metrics::new();
        let shared = Shared::new("tf", vec![DataType::Trade], 1, metrics.clone());
        assert_eq!(
            shared.offer("a".into(), Bytes::from_static(b"1")),
            Inserted::New
        );
        assert_eq!(
            shared.offer("b".into(), Bytes::from_static(b"2")),
            Inserted::Dropped
        );
        assert_eq!(
            shared.offer("c".into(), Bytes::from_static(b"3")),
            Inserted::Dropped
        );
        assert_eq!(shared.dropped_count(), 2);
        assert_eq!(metrics.redis_dropped.get(), 2);
    }

    #[test]
    fn data_types_not_kept_get_no_key() {
        let shared = Arc::new(Shared::new("tf", vec![DataType::Trade], 10, Metrics::new()));
        let tap = RedisTap::new(shared);
        let ev = ProduceEvent::typed(Normalized::FeedEvent(FeedEvent {
            exchange: "BINANCE".into(),
            symbol: "BTC-USDT".into(),
            ..FeedEvent::default()
        }));
        assert_eq!(tap.key("t", &ev), None);
    }
}
