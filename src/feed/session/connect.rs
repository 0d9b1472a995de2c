//! Before a connection carries data: the venue's instrument list (paged, remembered across
//! connections, never waited on while the venue's REST is paused by a ban), the WebSocket
//! connect with a timeout, and both given up at once when the feed is asked to stop.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;

use super::{Feed, SessionError};
use crate::config::SymbolSource;
use crate::transport::ws::ConnectError;
use crate::transport::ws::Ws;
use crate::transport::{ConnectBudget, Proxy, RestBudget, RestClient, RestConfig, RestError};
use crate::venues::{Instrument, SymbolMap, Venue};

/// Largest REST answer accepted (a 5000-level depth snapshot is ~250 KB; instrument lists
/// of the largest venues a few MB).
const REST_BODY_LIMIT: usize = 16 << 20;

/// REST weight of an instrument list (Binance `exchangeInfo`: 10 on spot and USD-M).
const INSTRUMENTS_WEIGHT: u32 = 10;

/// Most pages followed in one instrument list (Bybit pages options 1 000 at a time).
const MAX_INSTRUMENT_PAGES: usize = 100;

/// How long the instrument list may take before the feed goes on with what it knows.
const INSTRUMENTS_TIMEOUT: Duration = Duration::from_secs(20);

/// The REST client of a venue: its published weight budget (or `rest_weight_per_minute`, the
/// smallest configured for it), bursts of a tenth of it. One per venue, shared by all its feeds.
pub fn rest_client(venue: &dyn Venue, configured: Option<u32>) -> RestClient {
    rest_client_via(venue, configured, None)
}

/// [`rest_client`] whose requests go through `proxy` (except to its `no_proxy` hosts): one
/// per venue and proxy, shared by the feeds that use both.
pub fn rest_client_via(
    venue: &dyn Venue,
    configured: Option<u32>,
    proxy: Option<Proxy>,
) -> RestClient {
    let limits = venue.limits();
    let per_minute = configured.unwrap_or(limits.rest_weight_per_minute);
    let budget = RestBudget {
        weight_per_minute: per_minute,
        burst: (per_minute / 10).max(limits.snapshot_weight),
    };
    RestClient::with_proxy(
        RestConfig::new(budget, REST_BODY_LIMIT, Duration::from_secs(10)),
        proxy,
    )
}

/// The connection-rate budget of a venue: its published new connections per second and per
/// hour per IP ([`crate::venues::Limits`]). One per venue, shared by all its feeds.
pub fn connect_budget(venue: &dyn Venue) -> ConnectBudget {
    let limits = venue.limits();
    ConnectBudget::new(limits.connections_per_second, limits.connections_per_hour)
}

pub(super) async fn get_text(
    http: &RestClient,
    url: &str,
    weight: u32,
) -> Result<String, RestError> {
    http.get(url, weight).await
}

impl Feed {
    /// The pinned (normalized, venue symbol) pairs: the configured names mapped by the venue's
    /// own rule, without asking it.
    fn pinned(&self) -> Vec<(String, String)> {
        self.cfg
            .symbols
            .iter()
            .filter_map(|s| {
                Some((
                    s.clone(),
                    self.venue.venue_symbol(&Instrument::parse(s).ok()?),
                ))
            })
            .collect()
    }

    /// The (normalized, venue symbol) pairs to subscribe: from the venue's instrument list
    /// (symbols it does not list are counted and skipped); when the list cannot be had now (the
    /// venue's REST paused by a 429/418 ban, an error, no answer within
    /// [`INSTRUMENTS_TIMEOUT`]), the last list that answered, else the pinned names — and the
    /// log says which. `None` when asked to stop meanwhile.
    pub(super) async fn resolve_symbols(
        &self,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<(SymbolMap, Vec<(String, String)>)> {
        let requests = self.venue.instrument_requests();
        let pairs = if self.cfg.symbol_source == SymbolSource::ExchangeInfo && !requests.is_empty()
        {
            let listed = if self.http.paused_until().is_some() {
                Err("the venue's REST is paused (rate-limit ban)".to_string())
            } else {
                tokio::select! {
                    r = tokio::time::timeout(INSTRUMENTS_TIMEOUT, self.list_instruments(requests)) => {
                        r.unwrap_or_else(|_| Err(format!("no answer within {INSTRUMENTS_TIMEOUT:?}")))
                    }
                    _ = stop.wait_for(|s| *s) => return None,
                }
            };
            match listed {
                Ok(list) => {
                    let by_norm: HashMap<String, String> =
                        list.into_iter().map(|(v, n)| (n, v)).collect();
                    let mut pairs = Vec::new();
                    for s in &self.cfg.symbols {
                        match by_norm.get(s) {
                            Some(v) => pairs.push((s.clone(), v.clone())),
                            None => {
                                self.error("unknown_symbol");
                                tracing::error!(exchange = %self.labels.exchange, symbol = %s, "symbol not listed by the venue; skipped");
                            }
                        }
                    }
                    if let Ok(mut known) = self.known.lock() {
                        *known = Some(pairs.clone());
                    }
                    pairs
                }
                Err(e) => {
                    let known = self.known.lock().ok().and_then(|k| k.clone());
                    match known {
                        Some(pairs) => {
                            tracing::warn!(exchange = %self.labels.exchange, error = %e, "instrument list unavailable; using the last list the venue gave");
                            pairs
                        }
                        None => {
                            tracing::warn!(exchange = %self.labels.exchange, error = %e, "instrument list unavailable; using the pinned symbol names");
                            self.pinned()
                        }
                    }
                }
            }
        } else {
            self.pinned()
        };
        let map = SymbolMap::new(pairs.iter().map(|(n, v)| (v.clone(), n.clone())));
        Some((map, pairs))
    }

    /// Every (venue symbol, normalized symbol) pair the venue lists: each request of
    /// [`Venue::instrument_requests`], following its pages (at most [`MAX_INSTRUMENT_PAGES`]).
    async fn list_instruments(
        &self,
        requests: Vec<String>,
    ) -> Result<Vec<(String, String)>, String> {
        let base = self.rest_base();
        let mut all = Vec::new();
        for first in requests {
            let mut path = Some(first);
            let mut pages = 0;
            while let Some(p) = path.take() {
                pages += 1;
                if pages > MAX_INSTRUMENT_PAGES {
                    return Err(format!(
                        "instrument list longer than {MAX_INSTRUMENT_PAGES} pages"
                    ));
                }
                let body = get_text(&self.http, &format!("{base}{p}"), INSTRUMENTS_WEIGHT)
                    .await
                    .map_err(|e| e.to_string())?;
                let page = self
                    .venue
                    .parse_instruments_page(&p, &body)
                    .map_err(|e| e.to_string())?;
                all.extend(page.pairs);
                path = page.next;
            }
        }
        Ok(all)
    }

    /// Opens the WebSocket at `url` within `connect_timeout_ms` (through the feed's proxy when
    /// it has one), once the venue's connection-rate budget allows (a wait is logged once and
    /// counted, never an error); `Ok(None)` when asked to stop meanwhile. A proxy failure is
    /// counted under its kind.
    pub(super) async fn connect(
        &self,
        url: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<Ws>, SessionError> {
        if self.connects.is_limited() {
            let announce = |period: &str, wait: Duration| {
                self.metrics
                    .feed_connect_waits
                    .get_or_create(&self.labels)
                    .inc();
                tracing::warn!(exchange = %self.labels.exchange, per = period, ?wait, "connection attempt waits for the venue's connection-rate limit");
            };
            tokio::select! {
                _ = self.connects.acquire(announce) => {}
                _ = stop.wait_for(|s| *s) => return Ok(None),
            }
        }
        let proxy = match &self.proxy {
            Ok(p) => p.as_ref(),
            Err(e) => {
                self.error(e.kind());
                return Err(SessionError::Proxy {
                    url: url.to_string(),
                    source: e.clone(),
                });
            }
        };
        let connecting = crate::transport::ws::connect(url, self.frame_cap(), proxy);
        let after = self.cfg.connect_timeout;
        tokio::select! {
            r = tokio::time::timeout(after, connecting) => match r {
                Ok(Ok(ws)) => Ok(Some(ws)),
                Ok(Err(ConnectError::Ws(e))) => Err(SessionError::Connect { url: url.to_string(), source: e }),
                Ok(Err(ConnectError::Proxy(e))) => {
                    // Counted by kind (`proxy_unreachable`, `proxy_auth`, ...).
                    self.error(e.kind());
                    Err(SessionError::Proxy { url: url.to_string(), source: e })
                }
                Err(_) => Err(SessionError::ConnectTimeout { url: url.to_string(), after }),
            },
            _ = stop.wait_for(|s| *s) => Ok(None),
        }
    }
}
