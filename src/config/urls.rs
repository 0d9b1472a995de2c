//! URL and address validation for the config: scheme per use, a host, no credentials (which
//! are refused without being echoed), basic auth over plain HTTP only to loopback.

use std::net::SocketAddr;

use url::{Host, Url};

use super::ConfigError;

/// What a URL is used for.
#[derive(Debug, Clone, Copy)]
pub enum Use {
    /// `http` or `https`.
    Http,
    /// `ws` or `wss`.
    WebSocket,
}

/// Whether `url`'s host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Parses and checks one URL; the error names `key` and never repeats the URL's userinfo.
pub fn check(key: &str, text: &str, used: Use) -> Result<Url, ConfigError> {
    // Never echo the text: it may carry credentials. Say what is wrong instead.
    let url =
        Url::parse(text).map_err(|e| ConfigError::invalid(key, format!("is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            "must not carry credentials (user:password@); set the username in the config and \
             the password in the environment",
        ));
    }
    let ok = match used {
        Use::Http => matches!(url.scheme(), "http" | "https"),
        Use::WebSocket => matches!(url.scheme(), "ws" | "wss"),
    };
    if !ok {
        let want = match used {
            Use::Http => "http:// or https://",
            Use::WebSocket => "ws:// or wss://",
        };
        return Err(ConfigError::invalid(
            key,
            format!("must start with {want}, not {}://", url.scheme()),
        ));
    }
    if url.host().is_none() {
        return Err(ConfigError::invalid(key, "must name a host"));
    }
    Ok(url)
}

/// A listen address `host:port` with an IP host.
pub fn check_listen(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse::<SocketAddr>().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("{text:?} is not an IP address and port, e.g. 127.0.0.1:9898"),
        )
    })
}
