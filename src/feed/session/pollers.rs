//! Beside the frame loop: open interest polled over REST (for venues that serve it that way),
//! and the liveness of streams that tick by design (Binance `markPrice` every 1–3 s): a
//! confirmed subscription silent for longer than its bound is stale, announced, and
//! resubscribed (or its connection recycled when the venue cannot resubscribe one stream).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::mpsc;

use super::connect::get_text;
use super::now_us;
use crate::metrics::{FeedErrorLabels, FeedLabels, Metrics};
use crate::producer::ProduceEvent;
use crate::schema::DataType;
use crate::transport::{RestClient, RestError};
use crate::venues::{Channel, ParseError, Subscription, SymbolMap, Venue};

/// Why one open-interest poll gave no record.
#[derive(Debug, Error)]
pub enum PollError {
    /// The venue's REST did not answer usefully (HTTP status, transport, budget).
    #[error("REST: {0}")]
    Rest(#[from] RestError),
    /// The answer was not an open-interest record (e.g. the venue's error body).
    #[error("{0}")]
    Parse(#[from] ParseError),
}

impl PollError {
    /// Label for the `feed_errors` metric: `oi_rest_<kind>` or `oi_<parse kind>`.
    pub fn kind(&self) -> String {
        match self {
            PollError::Rest(e) => format!("oi_rest_{}", e.kind()),
            PollError::Parse(e) => format!("oi_{}", e.kind()),
        }
    }
}

/// Polls open interest beside the frame loop.
pub(super) struct OiPoller {
    pub http: RestClient,
    pub base: String,
    pub venue: Arc<dyn Venue>,
    pub pairs: Vec<(String, String)>,
    pub symbols: SymbolMap,
    pub period: Duration,
    pub metrics: Arc<Metrics>,
    pub labels: FeedLabels,
}

impl OiPoller {
    async fn poll(&self, venue_symbol: &str) -> Result<ProduceEvent, PollError> {
        let path = self
            .venue
            .open_interest_path(venue_symbol)
            .ok_or_else(|| ParseError::Unsupported("open interest over REST".into()))?;
        let body = match get_text(&self.http, &format!("{}{path}", self.base), 1).await {
            Ok(body) => body,
            // A 4xx with the venue's error body (`{"code":-1121,"msg":"Invalid symbol."}`) is
            // the venue's answer: typed as such when the venue's parser reads it so.
            Err(RestError::Status {
                status,
                body_prefix,
            }) if (400..500).contains(&status) => {
                return Err(
                    match self
                        .venue
                        .parse_open_interest(&body_prefix, now_us(), &self.symbols)
                    {
                        Err(e @ ParseError::Venue { .. }) => PollError::Parse(e),
                        _ => PollError::Rest(RestError::Status {
                            status,
                            body_prefix,
                        }),
                    },
                );
            }
            Err(e) => return Err(e.into()),
        };
        let r = self
            .venue
            .parse_open_interest(&body, now_us(), &self.symbols)?;
        Ok(ProduceEvent::typed(r))
    }
}

/// Polls every pair each period. A failing symbol is logged once as a warning (and again
/// when it recovers); repeats are counted and logged at debug, so a venue that refuses one
/// symbol does not fill the log every second.
pub(super) async fn open_interest_poller(p: OiPoller, out: mpsc::Sender<ProduceEvent>) {
    let mut tick = tokio::time::interval(p.period);
    let mut failing: HashMap<String, String> = HashMap::new();
    loop {
        tick.tick().await;
        for (s, v) in &p.pairs {
            match p.poll(v).await {
                Ok(r) => {
                    if failing.remove(s).is_some() {
                        tracing::info!(exchange = %p.labels.exchange, symbol = %s, "open interest poll works again");
                    }
                    if out.send(r).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let kind = e.kind();
                    p.metrics
                        .feed_errors
                        .get_or_create(&FeedErrorLabels {
                            exchange: p.labels.exchange.clone(),
                            kind: kind.clone(),
                        })
                        .inc();
                    if failing.get(s) != Some(&kind) {
                        tracing::warn!(exchange = %p.labels.exchange, symbol = %s, error = %e, "open interest poll failed; retrying every period (repeats logged at debug)");
                        failing.insert(s.clone(), kind);
                    } else {
                        tracing::debug!(symbol = %s, error = %e, "open interest poll failed again");
                    }
                }
            }
        }
    }
}

/// The data type a channel's records carry (what the liveness check watches).
pub fn data_type_of(channel: Channel) -> DataType {
    match channel {
        Channel::Trade | Channel::AggTrade => DataType::Trade,
        Channel::Depth => DataType::Level2Delta,
        Channel::BookTicker => DataType::TopOfBook,
        Channel::Ticker => DataType::Ticker,
        Channel::Funding => DataType::Funding,
        Channel::Liquidation => DataType::Liquidation,
        Channel::OpenInterest => DataType::OpenInterest,
        Channel::Candle => DataType::Candle,
        Channel::PartialDepth => DataType::Level2Book,
    }
}

fn slot(dt: DataType) -> usize {
    DataType::ALL.iter().position(|d| *d == dt).unwrap_or(0)
}

/// The bound of a channel's silence: configured (`stream_stale_after_ms`, 0 = off), else three
/// periods of the venue's own tick plus 2 s, else none (channels that can be quiet).
pub fn stale_bound(
    venue: &dyn Venue,
    configured: &std::collections::BTreeMap<Channel, Duration>,
    channel: Channel,
) -> Option<Duration> {
    match configured.get(&channel) {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(*d),
        None => venue
            .ticks_every(channel)
            .map(|t| t * 3 + Duration::from_secs(2)),
    }
}

/// A watched stream that went silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Silent {
    /// Its subscription.
    pub sub: Subscription,
    /// How long it was silent.
    pub after: Duration,
}

/// When each watched stream last delivered something.
#[derive(Debug)]
pub(super) struct Liveness {
    watched: [bool; DataType::ALL.len()],
    streams: Vec<(Subscription, DataType, Duration)>,
    last: HashMap<(DataType, String), Instant>,
    armed: Option<Instant>,
}

impl Liveness {
    /// Watches each of `subs` whose channel has a bound.
    pub fn new(subs: &[Subscription], bound: impl Fn(Channel) -> Option<Duration>) -> Liveness {
        let mut watched = [false; DataType::ALL.len()];
        let streams: Vec<_> = subs
            .iter()
            .filter_map(|s| {
                let b = bound(s.channel)?;
                let dt = data_type_of(s.channel);
                watched[slot(dt)] = true;
                Some((s.clone(), dt, b))
            })
            .collect();
        Liveness {
            watched,
            streams,
            last: HashMap::new(),
            armed: None,
        }
    }

    /// Whether anything is watched.
    pub fn any(&self) -> bool {
        !self.streams.is_empty()
    }

    /// Whether records of `dt` are watched (a cheap check before [`Liveness::seen`]).
    pub fn watches(&self, dt: DataType) -> bool {
        self.watched[slot(dt)]
    }

    /// A record of `dt` for `symbol` arrived now.
    pub fn seen(&mut self, dt: DataType, symbol: &str, now: Instant) {
        match self.last.get_mut(&(dt, symbol.to_string())) {
            Some(t) => *t = now,
            None => {
                self.last.insert((dt, symbol.to_string()), now);
            }
        }
    }

    /// Subscriptions are confirmed: silence counts from `now`.
    pub fn arm(&mut self, now: Instant) {
        self.armed.get_or_insert(now);
    }

    /// Streams silent past their bound at `now`; each is reset to `now` (it is resubscribed).
    pub fn silent(&mut self, now: Instant) -> Vec<Silent> {
        let Some(armed) = self.armed else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (sub, dt, bound) in &self.streams {
            let key = (*dt, sub.symbol.clone());
            let since = self.last.get(&key).copied().unwrap_or(armed).max(armed);
            let after = now.saturating_duration_since(since);
            if after > *bound {
                out.push(Silent {
                    sub: sub.clone(),
                    after,
                });
                self.last.insert(key, now);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(channel: Channel, symbol: &str) -> Subscription {
        Subscription {
            channel,
            symbol: symbol.into(),
            venue_symbol: symbol.replace('-', ""),
        }
    }

    #[test]
    fn a_ticking_stream_that_goes_silent_is_reported_once_per_bound() {
        let subs = [
            sub(Channel::Funding, "BTC-USDT-PERP"),
            sub(Channel::Funding, "ETH-USDT-PERP"),
            sub(Channel::Depth, "BTC-USDT-PERP"),
        ];
        let bound = |c: Channel| (c == Channel::Funding).then_some(Duration::from_secs(5));
        let mut l = Liveness::new(&subs, bound);
        assert!(l.watches(DataType::Funding));
        assert!(!l.watches(DataType::Level2Delta), "books can be quiet: off");
        let t0 = Instant::now();
        assert!(
            l.silent(t0 + Duration::from_secs(60)).is_empty(),
            "not before confirmation"
        );
        l.arm(t0);
        l.seen(
            DataType::Funding,
            "BTC-USDT-PERP",
            t0 + Duration::from_secs(4),
        );
        let s = l.silent(t0 + Duration::from_secs(6));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].sub.symbol, "ETH-USDT-PERP");
        assert_eq!(s[0].after, Duration::from_secs(6));
        // BTC ticked at 4 s: silent only after 9 s; ETH was reset at 6 s.
        assert!(l.silent(t0 + Duration::from_secs(8)).is_empty());
        let s = l.silent(t0 + Duration::from_secs(10));
        assert_eq!(
            s.iter().map(|x| x.sub.symbol.as_str()).collect::<Vec<_>>(),
            ["BTC-USDT-PERP"]
        );
    }

    #[test]
    fn configured_bounds_override_the_venue_and_zero_turns_a_channel_off() {
        let v = crate::venues::by_name("kraken").unwrap();
        let mut cfg = std::collections::BTreeMap::new();
        assert_eq!(stale_bound(v.as_ref(), &cfg, Channel::Trade), None);
        cfg.insert(Channel::Trade, Duration::from_secs(30));
        cfg.insert(Channel::Depth, Duration::ZERO);
        assert_eq!(
            stale_bound(v.as_ref(), &cfg, Channel::Trade),
            Some(Duration::from_secs(30))
        );
        assert_eq!(stale_bound(v.as_ref(), &cfg, Channel::Depth), None);
    }
}
