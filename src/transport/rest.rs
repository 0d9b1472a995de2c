//! A shared REST client for venue HTTP calls (depth snapshots, instrument lists, open interest)
//! that stays inside the venue's published request-weight budget.
//!
//! One [`RestClient`] (and all its clones) shares one connection pool, one rate limiter and one
//! "paused until" deadline: every request first waits until the venue's last 429/418 ban is over,
//! then waits for its weight in limiter cells, then goes out. A 429/418 answer pauses every clone
//! for the `Retry-After` time. Bodies are read in chunks and capped. Error texts never carry the
//! request URL (its query may hold an API key) nor the proxy's credentials. With a proxy
//! ([`RestClient::with_proxy`]) every request whose host is not on its `no_proxy` list goes
//! through it, and never direct when it fails.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use tokio::time::Instant;

use super::proxy::Proxy;

/// How many characters of an error response body [`RestError::Status`] keeps.
const BODY_PREFIX_CHARS: usize = 200;
/// How many bytes of an error response body are read to build that prefix.
const ERROR_BODY_READ_BYTES: usize = 4 * 1024;

/// A venue's published REST weight budget: `weight_per_minute` refilled evenly, at most `burst` at once.
///
/// Examples of published budgets: Binance spot `REQUEST_WEIGHT` 6000 per minute, Binance USD-M
/// futures 2400 per minute, Kraken public endpoints about 1 request per second (60 per minute,
/// weight 1 each). The venue counts weight per IP in fixed one-minute windows; this budget is
/// enforced as a smooth rate (one cell every `60 s / weight_per_minute`) with a bucket of
/// `burst` cells, so choose `burst` well below `weight_per_minute` to avoid spending a whole
/// minute's budget in one instant. Zero values are treated as 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestBudget {
    /// Request weight the venue allows per minute (the refill rate of the limiter).
    pub weight_per_minute: u32,
    /// Most weight that may be spent at once (the limiter's bucket size); heavier requests are clamped to it.
    pub burst: u32,
}

/// Everything a [`RestClient`] is built from; [`RestConfig::new`] fills the venue-neutral defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestConfig {
    /// The venue's weight budget.
    pub budget: RestBudget,
    /// Largest successful response body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Whole-request timeout (connect, send, and reading the body); also the connect timeout.
    pub timeout: Duration,
    /// Pause after a 429 that has no usable `Retry-After` header (default 1 s).
    pub default_retry_after_429: Duration,
    /// Pause after a 418 (IP ban) that has no usable `Retry-After` header (default 60 s).
    pub default_retry_after_418: Duration,
    /// Upper bound on any pause taken from `Retry-After` (default 10 min).
    pub max_retry_after: Duration,
}

impl RestConfig {
    /// A config with the given budget, body cap and timeout and the default 429/418 pauses.
    pub fn new(budget: RestBudget, max_body_bytes: usize, timeout: Duration) -> Self {
        Self {
            budget,
            max_body_bytes,
            timeout,
            default_retry_after_429: Duration::from_secs(1),
            default_retry_after_418: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(600),
        }
    }
}

/// Why a REST call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// Connecting, sending or reading failed, or timed out (the text never contains the URL).
    #[error("transport: {0}")]
    Transport(String),
    /// The venue answered 429 or 418; every clone of the client is paused for `retry_after`.
    #[error("rate limited by venue, retry after {retry_after:?}")]
    RateLimited {
        /// How long the client pauses (from `Retry-After`, or the default, capped).
        retry_after: Duration,
    },
    /// The venue answered another non-success status.
    #[error("http status {status}: {body_prefix}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The first 200 characters of the response body (lossy UTF-8).
        body_prefix: String,
    },
    /// The response body exceeded the configured cap.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The request could not be built (e.g. the URL does not parse).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A successful response body was not valid UTF-8.
    #[error("response body is not UTF-8: {0}")]
    Decode(String),
    /// The proxy failed: unreachable, refused the tunnel or the credentials (the text names
    /// the proxy by scheme, host and port, never its credentials).
    #[error("proxy: {0}")]
    Proxy(String),
}

impl RestError {
    /// Whether trying the same request again later can succeed (transport, 429/418, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            RestError::Transport(_) | RestError::RateLimited { .. } | RestError::Proxy(_) => true,
            RestError::Status { status, .. } => (500..=599).contains(status),
            RestError::BodyTooLarge { .. }
            | RestError::InvalidRequest(_)
            | RestError::Decode(_) => false,
        }
    }

    /// A short, fixed label for metrics (`transport`, `rate_limited`, `status_4xx`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            RestError::Transport(_) => "transport",
            RestError::RateLimited { .. } => "rate_limited",
            RestError::Status { status, .. } => match status {
                400..=499 => "status_4xx",
                500..=599 => "status_5xx",
                _ => "status_other",
            },
            RestError::BodyTooLarge { .. } => "body_too_large",
            RestError::InvalidRequest(_) => "invalid_request",
            RestError::Decode(_) => "decode",
            RestError::Proxy(_) => "proxy",
        }
    }

    /// The pause the venue asked for, if this is [`RestError::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RestError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A rate-limited, body-capped HTTP GET client shared by all of a venue's feeds; clones share all state.
#[derive(Clone)]
pub struct RestClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    limiter: DefaultDirectRateLimiter,
    burst: NonZeroU32,
    config: RestConfig,
    paused_until: Mutex<Option<Instant>>,
    sent: AtomicU64,
    /// The proxy requests go through (unless `no_proxy` names their host).
    proxy: Option<Proxy>,
    /// Why the client with the proxy could not be built: every proxied request fails with it.
    unproxied: Option<String>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("config", &self.inner.config)
            .field("proxy", &self.inner.proxy)
            .field("requests_sent", &self.requests_sent())
            .finish_non_exhaustive()
    }
}

impl RestClient {
    /// A client for `budget` with the default 429/418 pauses (see [`RestConfig::new`]).
    pub fn new(budget: RestBudget, max_body_bytes: usize, timeout: Duration) -> RestClient {
        Self::with_config(RestConfig::new(budget, max_body_bytes, timeout))
    }

    /// A client from a full [`RestConfig`].
    pub fn with_config(config: RestConfig) -> RestClient {
        Self::with_proxy(config, None)
    }

    /// A client from a full [`RestConfig`] whose requests go through `proxy` (HTTP or SOCKS5,
    /// with its credentials), except to hosts on its `no_proxy` list.
    pub fn with_proxy(config: RestConfig, proxy: Option<Proxy>) -> RestClient {
        let per_minute =
            NonZeroU32::new(config.budget.weight_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.budget.burst).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_minute(per_minute).allow_burst(burst));
        let builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        let mut unproxied = None;
        let http = match &proxy {
            // No `proxy` key: direct, as the WebSocket goes (environment proxy variables do
            // not route one half of a feed's traffic).
            None => builder.no_proxy().build(),
            Some(p) => match p.url_with_credentials() {
                Ok(target) => {
                    let route = p.clone();
                    builder
                        .proxy(reqwest::Proxy::custom(move |url| {
                            route.applies_to(url).then(|| target.clone())
                        }))
                        .build()
                }
                Err(e) => {
                    unproxied = Some(format!("{p} cannot be used: {e}"));
                    builder.build()
                }
            },
        };
        let http = match http {
            Ok(client) => client,
            Err(e) => {
                // Only fails when the TLS backend cannot initialise; the default client then
                // reports the same problem. `get` still enforces `config.timeout` on its own.
                // With a proxy, requests it would carry fail rather than go direct.
                tracing::error!(error = %scrub(e.without_url().to_string(), "", &proxy), "REST client builder failed; using defaults");
                if let Some(p) = &proxy {
                    unproxied.get_or_insert_with(|| format!("{p}: the client could not be built"));
                }
                reqwest::Client::default()
            }
        };
        RestClient {
            inner: Arc::new(Inner {
                http,
                limiter,
                burst,
                config,
                paused_until: Mutex::new(None),
                sent: AtomicU64::new(0),
                proxy,
                unproxied,
            }),
        }
    }

    /// The config this client was built from.
    pub fn config(&self) -> &RestConfig {
        &self.inner.config
    }

    /// How many requests this client and its clones have put on the wire.
    pub fn requests_sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Relaxed)
    }

    /// GET `url` after waiting for any venue pause and for `weight` limiter cells (0 counts as 1,
    /// above burst is clamped to burst); returns the body of a 2xx answer.
    pub async fn get(&self, url: &str, weight: u32) -> Result<String, RestError> {
        let cells = NonZeroU32::new(weight)
            .unwrap_or(NonZeroU32::MIN)
            .min(self.inner.burst);
        loop {
            self.wait_while_paused().await;
            if self.inner.limiter.until_n_ready(cells).await.is_err() {
                // Unreachable: `cells` is clamped to the bucket size. Wait for one cell instead.
                self.inner.limiter.until_ready().await;
            }
            // A 429/418 that arrived while we waited for cells pauses us too; the cells spent
            // here are given up, which only makes us slower than the budget.
            if self.paused_until().is_none() {
                break;
            }
        }

        // Whether this request goes through the proxy (its failures are the proxy's).
        let proxy = &self.inner.proxy;
        let proxied = match (proxy, Url::parse(url)) {
            (Some(p), Ok(u)) => p.applies_to(&u),
            (Some(_), Err(_)) => true,
            (None, _) => false,
        };
        if let (true, Some(why)) = (proxied, &self.inner.unproxied) {
            return Err(RestError::Proxy(why.clone()));
        }
        self.inner.sent.fetch_add(1, Ordering::Relaxed);
        let config = &self.inner.config;
        // One deadline for the whole exchange, also when reqwest's own timeout is not set.
        let deadline = Instant::now() + config.timeout;
        let request = self.inner.http.get(url).send();
        let mut resp = match tokio::time::timeout_at(deadline, request).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) if proxied && e.is_connect() => {
                let text = describe(e, url, proxy);
                let p = proxy.as_ref().map(ToString::to_string).unwrap_or_default();
                return Err(RestError::Proxy(format!("{p} failed: {text}")));
            }
            Ok(Err(e)) => return Err(reqwest_error(e, url, proxy)),
            Err(_) => return Err(RestError::Transport("request timed out".to_owned())),
        };

        let status = resp.status();
        if proxied && status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            let p = proxy.as_ref().map(ToString::to_string).unwrap_or_default();
            return Err(RestError::Proxy(format!(
                "{p} refused the credentials (HTTP 407)"
            )));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::IM_A_TEAPOT {
            let default = if status == StatusCode::IM_A_TEAPOT {
                config.default_retry_after_418
            } else {
                config.default_retry_after_429
            };
            let retry_after = retry_after_from(resp.headers())
                .unwrap_or(default)
                .min(config.max_retry_after);
            self.pause_for(retry_after);
            tracing::warn!(
                status = status.as_u16(),
                ?retry_after,
                "venue rate limit hit; pausing REST client"
            );
            return Err(RestError::RateLimited { retry_after });
        }
        if !status.is_success() {
            let cap = ERROR_BODY_READ_BYTES.min(config.max_body_bytes);
            let head = read_prefix(&mut resp, cap, deadline).await;
            let body_prefix = String::from_utf8_lossy(&head)
                .chars()
                .take(BODY_PREFIX_CHARS)
                .collect();
            return Err(RestError::Status {
                status: status.as_u16(),
                body_prefix,
            });
        }

        let body = read_capped(&mut resp, config.max_body_bytes, deadline, url, proxy).await?;
        String::from_utf8(body).map_err(|e| RestError::Decode(e.utf8_error().to_string()))
    }

    /// The instant the current venue pause (429/418) ends, if one is in force.
    pub fn paused_until(&self) -> Option<Instant> {
        let mut guard = lock(&self.inner.paused_until);
        match *guard {
            Some(until) if until > Instant::now() => Some(until),
            Some(_) => {
                *guard = None;
                None
            }
            None => None,
        }
    }

    async fn wait_while_paused(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until).await;
        }
    }

    /// Pauses every clone for `d` from now, never shortening a longer pause already in force.
    fn pause_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut guard = lock(&self.inner.paused_until);
        if guard.is_none_or(|current| current < until) {
            *guard = Some(until);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `Retry-After` as delta-seconds (integer or decimal); an HTTP-date or garbage yields `None`.
fn retry_after_from(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let secs = text.parse::<f64>().ok()?;
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

/// Reads the whole body, failing with [`RestError::BodyTooLarge`] as soon as it passes `limit`.
async fn read_capped(
    resp: &mut Response,
    limit: usize,
    deadline: Instant,
    url: &str,
    proxy: &Option<Proxy>,
) -> Result<Vec<u8>, RestError> {
    let too_large = RestError::BodyTooLarge { limit };
    if let Some(len) = resp.content_length() {
        if usize::try_from(len).map_or(true, |len| len > limit) {
            return Err(too_large);
        }
    }
    let initial = resp
        .content_length()
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0)
        .min(limit);
    let mut body = Vec::with_capacity(initial);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => return Ok(body),
            Ok(Err(e)) => return Err(reqwest_error(e, url, proxy)),
            Err(_) => {
                return Err(RestError::Transport(
                    "timed out reading response body".to_owned(),
                ))
            }
        };
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
}

/// Reads at most about `cap` bytes of an error body; read errors just end the prefix.
async fn read_prefix(resp: &mut Response, cap: usize, deadline: Instant) -> Vec<u8> {
    let mut head = Vec::new();
    while head.len() < cap {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let take = chunk.len().min(cap - head.len());
                head.extend_from_slice(&chunk[..take]);
            }
            _ => break,
        }
    }
    head
}

/// Turns a reqwest error into a [`RestError`] whose text has no URL, query or userinfo in it.
fn reqwest_error(e: reqwest::Error, url: &str, proxy: &Option<Proxy>) -> RestError {
    let builder = e.is_builder();
    let text = describe(e, url, proxy);
    if builder {
        RestError::InvalidRequest(text)
    } else {
        RestError::Transport(text)
    }
}

/// A reqwest error and its sources as one text, scrubbed (see [`scrub`]).
fn describe(e: reqwest::Error, url: &str, proxy: &Option<Proxy>) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut text = String::new();
    if timeout {
        text.push_str("timed out: ");
    }
    text.push_str(&e.to_string());
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    scrub(text, url, proxy)
}

/// Removes the URL, its query, fragment and userinfo, and the proxy's credentials (as given
/// and percent-encoded) from `text`, in case a source error echoes them.
fn scrub(mut text: String, url: &str, proxy: &Option<Proxy>) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const REDACTED: &str = "<redacted>";
    if !url.is_empty() {
        text = text.replace(url, REDACTED);
    }
    let mut secrets: Vec<String> = Vec::new();
    if let Ok(parsed) = Url::parse(url) {
        secrets.extend(
            [
                parsed.query().unwrap_or(""),
                parsed.fragment().unwrap_or(""),
                parsed.password().unwrap_or(""),
                parsed.username(),
            ]
            .map(str::to_owned),
        );
    }
    if let Some(p) = proxy {
        for secret in p.secrets() {
            secrets.push(secret.to_owned());
            secrets.push(utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string());
        }
    }
    // Longest first, so a secret containing another is removed whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if !secret.is_empty() {
            text = text.replace(&secret, REDACTED);
        }
    }
    text
}

/// Exponential backoff with jitter for per-symbol snapshot retries; never ends, each delay in `[min, max]`.
///
/// The base delay starts at `min` and doubles up to `max / 2` (but not below `min`); each delay
/// adds a random jitter of up to 100 % of the base and is then clamped to `[min, max]`, so callers
/// retrying many symbols at once spread out instead of retrying in lock-step.
pub fn snapshot_backoff(min: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    let max = max.max(min);
    let base_max = (max / 2).max(min);
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(base_max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .map(move |d| d.clamp(min, max))
}
