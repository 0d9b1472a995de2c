//! The `[redis]` section: where the latest values go, how they are named, how long they live,
//! how writes are coalesced and batched, how the writer backs off, and whether `/readyz` needs
//! Redis.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_with::{serde_as, DurationMilliSeconds};
use url::Url;

use crate::config::error::ConfigError;
use crate::config::secret::Secret;

/// The Redis latest-value sink (`[redis]`), off by default.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSinkConfig {
    /// Run the sink in `tickflow run`.
    pub enabled: bool,
    /// `redis://host:port/db` or `rediss://…` (TLS); no credentials in it.
    pub url: String,
    /// ACL user (Redis 6+); the default user when unset.
    pub username: Option<String>,
    /// Password; environment only: `TICKFLOW_REDIS__PASSWORD`.
    pub password: Option<Secret>,
    /// First part of every key: `<key_prefix>:<topic>:<data_type>:<EXCHANGE>:<SYMBOL>` (the
    /// topic is in the key, so two streams of one instrument never overwrite each other).
    pub key_prefix: String,
    /// The data types kept as latest values (snake_case names). By default every type but
    /// `level2_delta` and `feed_event`: a delta or a feed event alone is not a latest value
    /// of anything; list them to keep them too.
    pub data_types: Vec<String>,
    /// Lifetime of a latest value (`SET … PX`); a value not refreshed within it disappears.
    #[serde(rename = "ttl_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub ttl: Duration,
    /// Also `PUBLISH` each written value on `<channel_prefix>:<data_type>:<EXCHANGE>:<SYMBOL>`.
    pub publish: bool,
    /// First part of every channel name (with `publish`).
    pub channel_prefix: String,
    /// Most keys waiting to be written; a value for a new key beyond it is dropped and counted
    /// (values of keys already waiting still replace the older value).
    pub max_pending_keys: usize,
    /// Most bytes (keys and values) waiting to be written; a value for a new key beyond it is
    /// dropped and counted like one beyond `max_pending_keys`.
    pub max_pending_bytes: usize,
    /// How long the writer lets values coalesce after the first one arrives before it writes.
    #[serde(rename = "flush_interval_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub flush_interval: Duration,
    /// Most values in one pipeline.
    pub max_batch: usize,
    /// Connect and response timeout of one request to Redis.
    #[serde(rename = "timeout_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub timeout: Duration,
    /// First retry delay after a failed write (exponential, with jitter).
    #[serde(rename = "backoff_min_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub backoff_min: Duration,
    /// Longest retry delay.
    #[serde(rename = "backoff_max_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub backoff_max: Duration,
    /// How often an idle writer pings Redis, so `/readyz` is current with no traffic.
    #[serde(rename = "health_interval_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub health_interval: Duration,
    /// Whether Redis being unreachable makes `/readyz` fail (it is always reported).
    pub required: bool,
}

impl Default for RedisSinkConfig {
    fn default() -> Self {
        RedisSinkConfig {
            enabled: false,
            url: "redis://127.0.0.1:6379".into(),
            username: None,
            password: None,
            key_prefix: "tickflow".into(),
            data_types: default_data_types(),
            ttl: Duration::from_secs(24 * 3600),
            publish: false,
            channel_prefix: "tickflow".into(),
            max_pending_keys: 100_000,
            max_pending_bytes: 64 * 1024 * 1024,
            flush_interval: Duration::from_millis(5),
            max_batch: 1_000,
            timeout: Duration::from_millis(2_000),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_millis(5_000),
            health_interval: Duration::from_millis(1_000),
            required: false,
        }
    }
}

/// Every data type but `level2_delta` and `feed_event`.
fn default_data_types() -> Vec<String> {
    crate::schema::DataType::ALL
        .into_iter()
        .filter(|d| {
            !matches!(
                d,
                crate::schema::DataType::Level2Delta | crate::schema::DataType::FeedEvent
            )
        })
        .map(|d| d.as_str().to_string())
        .collect()
}

/// Whether the URL's host is loopback. `redis://` is not a special scheme to the `url` crate,
/// so an IPv4 host comes back as a domain: it is parsed here.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("redis.{key}"),
        reason: reason.into(),
    }
}

impl RedisSinkConfig {
    /// Checks the section (also when disabled: a wrong value is wrong either way); the URL
    /// error never repeats the URL (it may carry credentials).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.checked_url()?;
        if self.password.is_some() && url.scheme() == "redis" && !is_loopback(&url) {
            return Err(invalid(
                "url",
                "a password over plain redis:// would travel in clear: use rediss:// (plain \
                 redis:// is accepted with a password only to a loopback Redis)",
            ));
        }
        for (key, prefix) in [
            ("key_prefix", &self.key_prefix),
            ("channel_prefix", &self.channel_prefix),
        ] {
            if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c == ':') {
                return Err(invalid(
                    key,
                    "must be a non-empty name without ':' or spaces",
                ));
            }
        }
        if self.ttl < Duration::from_millis(1) {
            return Err(invalid("ttl_ms", "must be at least 1"));
        }
        if let Some(bad) = self
            .data_types
            .iter()
            .find(|d| crate::schema::DataType::parse(d).is_none())
        {
            return Err(invalid(
                "data_types",
                format!("{bad:?} is not a data type (trade, level2_book, ...)"),
            ));
        }
        if self.max_pending_bytes == 0 {
            return Err(invalid("max_pending_bytes", "must be at least 1"));
        }
        if self.max_pending_keys == 0 {
            return Err(invalid("max_pending_keys", "must be at least 1"));
        }
        if self.max_batch == 0 {
            return Err(invalid("max_batch", "must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout_ms", "must be at least 1"));
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return Err(invalid(
                "backoff_max_ms",
                "backoff_min_ms must be at least 1 and backoff_max_ms at least backoff_min_ms",
            ));
        }
        if self.health_interval.is_zero() {
            return Err(invalid("health_interval_ms", "must be at least 1"));
        }
        Ok(())
    }

    /// The data types kept (unknown names are refused by `validate`).
    pub fn kept(&self) -> Vec<crate::schema::DataType> {
        self.data_types
            .iter()
            .filter_map(|d| crate::schema::DataType::parse(d))
            .collect()
    }

    /// The URL parsed and checked: `redis://` or `rediss://`, a host, no userinfo.
    pub fn checked_url(&self) -> Result<Url, ConfigError> {
        let url =
            Url::parse(&self.url).map_err(|e| invalid("url", format!("is not a URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "url",
                "must not carry credentials (user:password@); set redis.username in the config \
                 and the password in TICKFLOW_REDIS__PASSWORD",
            ));
        }
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(invalid(
                "url",
                format!(
                    "must start with redis:// or rediss://, not {}://",
                    url.scheme()
                ),
            ));
        }
        if url.host().is_none() {
            return Err(invalid("url", "must name a host"));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_url(url: &str) -> RedisSinkConfig {
        RedisSinkConfig {
            url: url.into(),
            ..RedisSinkConfig::default()
        }
    }

    #[test]
    fn urls_are_checked_without_echoing_credentials() {
        assert!(with_url("redis://127.0.0.1:6379").validate().is_ok());
        assert!(with_url("rediss://cache.example:6380/2").validate().is_ok());
        let e = with_url("redis://ann:hunter22@10.0.0.1:6379")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis.url") && e.contains("credentials"), "{e}");
        assert!(!e.contains("hunter22") && !e.contains("ann"), "{e}");
        let e = with_url("http://127.0.0.1:6379").validate().unwrap_err();
        assert!(e.to_string().contains("redis:// or rediss://"), "{e}");
        let e = with_url("redis:///tmp/sock").validate().unwrap_err();
        assert!(e.to_string().contains("host"), "{e}");
    }

    #[test]
    fn a_password_over_plain_redis_only_to_loopback() {
        let mut c = with_url("redis://cache.example:6379");
        c.password = Some(Secret::new("pw"));
        assert!(c.validate().unwrap_err().to_string().contains("rediss://"));
        c.url = "rediss://cache.example:6379".into();
        assert!(c.validate().is_ok());
        c.url = "redis://127.0.0.1:6379".into();
        assert!(c.validate().is_ok());
        c.url = "redis://[::1]:6379".into();
        assert!(c.validate().is_ok());
        c.url = "redis://127.0.0.1.example:6379".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn bad_numbers_name_their_key() {
        let mut c = RedisSinkConfig {
            max_pending_keys: 0,
            ..RedisSinkConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("redis.max_pending_keys"));
        c.max_pending_keys = 1;
        c.key_prefix = "a:b".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("redis.key_prefix"));
    }
}
