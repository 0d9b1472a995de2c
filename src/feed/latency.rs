//! Latency a user can see, per venue and channel: the venue's time of a record to its receipt
//! here (observed when the record is handed to the producers) and its receipt to the broker's
//! Ack. The histogram handles are resolved once per feed and channel, not per record.

use std::sync::{Arc, OnceLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::{ChannelLabels, Metrics};
use crate::schema::DataType;

/// One channel's handles.
#[derive(Debug)]
struct Handles {
    to_receipt: Histogram,
    ahead: Counter,
    to_ack: Histogram,
}

/// The latency histograms of one feed.
#[derive(Debug)]
pub struct Latency {
    exchange: String,
    metrics: Arc<Metrics>,
    channels: [OnceLock<Handles>; DataType::ALL.len()],
}

impl Latency {
    /// The histograms of venue `exchange`.
    pub fn new(metrics: Arc<Metrics>, exchange: &str) -> Latency {
        Latency {
            exchange: exchange.to_string(),
            metrics,
            channels: Default::default(),
        }
    }

    fn handles(&self, dt: DataType) -> &Handles {
        // `DataType` is field-less, declared in the order of `DataType::ALL`.
        self.channels[dt as usize].get_or_init(|| {
            let labels = ChannelLabels {
                exchange: self.exchange.clone(),
                channel: dt.as_str().to_string(),
            };
            Handles {
                to_receipt: self
                    .metrics
                    .feed_exchange_to_receipt
                    .get_or_create(&labels)
                    .clone(),
                ahead: self
                    .metrics
                    .feed_exchange_time_ahead
                    .get_or_create(&labels)
                    .clone(),
                to_ack: self
                    .metrics
                    .feed_receipt_to_ack
                    .get_or_create(&labels)
                    .clone(),
            }
        })
    }

    /// Observes the venue time → receipt of a record of `dt` the venue timed at `venue_us`
    /// (nothing when it did not), received at `receipt_us`.
    pub fn received(&self, dt: DataType, venue_us: Option<i64>, receipt_us: i64) {
        let Some(venue_us) = venue_us else {
            return;
        };
        let h = self.handles(dt);
        let us = receipt_us - venue_us;
        if us < 0 {
            h.ahead.inc();
        }
        h.to_receipt.observe(us.max(0) as f64 / 1e6);
    }

    /// Observes the receipt → Ack of a record of `dt` received at `receipt_us`, acked at
    /// `now_us`.
    pub fn acked(&self, dt: DataType, receipt_us: i64, now_us: i64) {
        let us = (now_us - receipt_us).max(0);
        self.handles(dt).to_ack.observe(us as f64 / 1e6);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::v2beta1::Trade;
    use crate::schema::Normalized;

    /// What the feed observes of a trade record: its times as the record states them.
    fn receive(l: &Latency, n: Normalized) {
        l.received(n.data_type(), n.exchange_time_us(), n.receipt_time_us());
    }

    fn trade(timestamp: i64, event_time: Option<i64>, receipt_time: i64) -> Normalized {
        Normalized::Trade(Trade {
            exchange: "BINANCE".into(),
            symbol: "BTC-USDT".into(),
            timestamp,
            event_time,
            receipt_time,
            ..Default::default()
        })
    }

    #[test]
    fn venue_time_to_receipt_and_receipt_to_ack_land_in_their_channel() {
        let metrics = Metrics::new();
        let l = Latency::new(metrics.clone(), "BINANCE");
        // Event time 1.000 s, match time 0.990 s, received 1.003 s: 3 ms (the event time).
        receive(&l, trade(990_000, Some(1_000_000), 1_003_000));
        // No event time: the match time; received 2 ms after it.
        receive(&l, trade(2_000_000, None, 2_002_000));
        // The venue's clock 1 ms ahead: counted, observed as 0.
        receive(&l, trade(3_001_000, None, 3_000_000));
        l.acked(DataType::Trade, 1_003_000, 1_010_000);
        let series = "{exchange=\"BINANCE\",channel=\"trade\"}";
        let sum = |name: &str| metrics.sample(&format!("tickflow_{name}_sum{series}"));
        let count = |name: &str| metrics.sample(&format!("tickflow_{name}_count{series}"));
        assert_eq!(count("feed_exchange_to_receipt_seconds"), 3.0);
        assert!((sum("feed_exchange_to_receipt_seconds") - 0.005).abs() < 1e-9);
        assert_eq!(
            metrics.sample(&format!("tickflow_feed_exchange_time_ahead_total{series}")),
            1.0
        );
        assert_eq!(count("feed_receipt_to_ack_seconds"), 1.0);
        assert!((sum("feed_receipt_to_ack_seconds") - 0.007).abs() < 1e-9);
        // A FeedEvent is timed here, not by the venue: nothing observed for it.
        receive(&l, Normalized::FeedEvent(Default::default()));
        assert!(!metrics.render().contains("channel=\"feed_event\""));
    }
}
