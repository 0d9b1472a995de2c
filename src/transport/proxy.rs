//! Egress through a proxy, per feed: an HTTP proxy (a `CONNECT` tunnel, which carries `wss://`
//! TLS end to end) or SOCKS5 (`socks5`: names resolved here; `socks5h`: by the proxy), for the
//! WebSocket and the REST client alike; hosts on the `no_proxy` list go direct.
//!
//! Credentials come from the environment only and are never printed: [`Proxy`]'s `Display` and
//! `Debug` and every [`ProxyError`] name the proxy by scheme, host and port alone.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::{Host, Url};

use crate::config::secret::Secret;

/// Largest answer to a `CONNECT` (status line and headers) read from an HTTP proxy.
pub const MAX_CONNECT_ANSWER: usize = 8 * 1024;

/// Most headers accepted in the answer to a `CONNECT`.
const MAX_CONNECT_HEADERS: usize = 64;

/// How a proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyScheme {
    /// `http://`: an HTTP proxy; connections go through a `CONNECT` tunnel (REST to plain
    /// `http://` venues is forwarded by the proxy as a plain request).
    Http,
    /// `socks5://`: SOCKS5, the venue's name resolved here.
    Socks5,
    /// `socks5h://`: SOCKS5, the venue's name resolved by the proxy.
    Socks5h,
}

impl ProxyScheme {
    /// The URL scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }
}

/// Why a connection through the proxy failed. No text carries credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The proxy itself could not be reached (refused, unresolvable, reset).
    #[error("proxy {proxy} unreachable: {reason}")]
    Unreachable {
        /// The proxy (`scheme://host:port`).
        proxy: String,
        /// Why (the operating system's words).
        reason: String,
    },
    /// The proxy wants credentials, or refused the ones given (HTTP 407, SOCKS5 auth failure).
    #[error("proxy {proxy} refused the credentials ({detail})")]
    AuthRefused {
        /// The proxy.
        proxy: String,
        /// What it answered, e.g. `HTTP 407`.
        detail: String,
    },
    /// The proxy would not open the tunnel to the venue.
    #[error("proxy {proxy} refused the tunnel to {target}: {detail}")]
    Refused {
        /// The proxy.
        proxy: String,
        /// The venue's `host:port`.
        target: String,
        /// What it answered, e.g. `HTTP 403` or `Connection not allowed by ruleset`.
        detail: String,
    },
    /// The proxy broke the protocol (malformed or oversized answer, closed mid-handshake).
    #[error("proxy {proxy}: {reason}")]
    Protocol {
        /// The proxy.
        proxy: String,
        /// What went wrong.
        reason: String,
    },
    /// The venue's name could not be resolved here (`socks5`; `socks5h` leaves it to the proxy).
    #[error("proxy {proxy}: cannot resolve {target} locally: {reason}")]
    Resolve {
        /// The proxy.
        proxy: String,
        /// The venue's `host:port`.
        target: String,
        /// Why.
        reason: String,
    },
    /// The credentials could not be read from the environment.
    #[error("proxy {proxy}: {reason}")]
    Credentials {
        /// The proxy.
        proxy: String,
        /// Which variable is missing or unreadable (never its value).
        reason: String,
    },
}

impl ProxyError {
    /// A short, fixed label for metrics (`proxy_unreachable`, `proxy_auth`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::Unreachable { .. } => "proxy_unreachable",
            ProxyError::AuthRefused { .. } => "proxy_auth",
            ProxyError::Refused { .. } => "proxy_refused",
            ProxyError::Protocol { .. } => "proxy_protocol",
            ProxyError::Resolve { .. } => "proxy_resolve",
            ProxyError::Credentials { .. } => "proxy_credentials",
        }
    }
}

/// One `no_proxy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    /// `*`: every host.
    All,
    /// An address or network (`127.0.0.1`, `::1`, `10.0.0.0/8`).
    Net(IpNet),
    /// A name and every name under it (`example.com` and `.example.com` alike).
    Domain(String),
}

impl Bypass {
    /// Parses one entry; the error says what is wrong with it.
    fn parse(entry: &str) -> Result<Bypass, String> {
        let e = entry.trim();
        if e == "*" {
            return Ok(Bypass::All);
        }
        if e.contains('/') {
            return e.parse::<IpNet>().map(Bypass::Net).map_err(|_| {
                format!("{e:?} is not a network (an address/prefix, e.g. 10.0.0.0/8)")
            });
        }
        let bare = e.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Bypass::Net(IpNet::from(ip)));
        }
        let name = e.trim_start_matches('.').trim_end_matches('.');
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || !name.split('.').all(label_ok) {
            return Err(format!(
                "{e:?} is neither a host name, an IP address, a network (10.0.0.0/8) nor *"
            ));
        }
        Ok(Bypass::Domain(name.to_ascii_lowercase()))
    }

    fn matches(&self, host: &Host<&str>) -> bool {
        match (self, host) {
            (Bypass::All, _) => true,
            (Bypass::Net(net), Host::Ipv4(ip)) => net.contains(&IpAddr::V4(*ip)),
            (Bypass::Net(net), Host::Ipv6(ip)) => net.contains(&IpAddr::V6(*ip)),
            (Bypass::Domain(d), Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == *d
                    || name
                        .strip_suffix(d.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            _ => false,
        }
    }
}

/// Proxy credentials, read from the environment; neither part is ever printed.
#[derive(Clone)]
struct Auth {
    username: Secret,
    password: Secret,
}

/// A feed's egress proxy: where it is, how it is spoken to, its credentials (from the
/// environment) and the hosts that bypass it.
#[derive(Clone)]
pub struct Proxy {
    scheme: ProxyScheme,
    host: Host<String>,
    port: u16,
    auth: Option<Auth>,
    no_proxy: Vec<Bypass>,
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.to_string())
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl Proxy {
    /// Parses a proxy URL: `http://host:port`, `socks5://host:port` or `socks5h://host:port`,
    /// without credentials, path or query. The error says what is wrong and never repeats
    /// the text (it may hold a password).
    pub fn parse(text: &str) -> Result<Proxy, String> {
        let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not carry credentials (user:password@): name the environment \
                 variables that hold them in proxy_username_env and proxy_password_env"
                    .into(),
            );
        }
        let scheme = match url.scheme() {
            "http" => ProxyScheme::Http,
            "socks5" => ProxyScheme::Socks5,
            "socks5h" => ProxyScheme::Socks5h,
            other => {
                return Err(format!(
                    "scheme {other}:// is not supported: use http://, socks5:// or socks5h://"
                ))
            }
        };
        let Some(host) = url.host().map(|h| h.to_owned()) else {
            return Err("must name a host".into());
        };
        let Some(port) = url.port_or_known_default() else {
            return Err("must name a port, e.g. socks5://127.0.0.1:1080".into());
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("must be scheme://host:port alone (no path, query or fragment)".into());
        }
        Ok(Proxy {
            scheme,
            host,
            port,
            auth: None,
            no_proxy: Vec::new(),
        })
    }

    /// Hosts that bypass the proxy: names (each also covers the names under it; a leading
    /// dot is optional), IP addresses, networks (`10.0.0.0/8`, `fd00::/8`) or `*`. The error
    /// names the first entry that is none of these.
    pub fn with_no_proxy(mut self, entries: &[String]) -> Result<Proxy, String> {
        self.no_proxy = entries
            .iter()
            .map(|e| Bypass::parse(e))
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// The proxy with credentials read from the environment variables named
    /// `username_var` and `password_var`. Errors name the variable, never a value.
    pub fn with_env_credentials(
        mut self,
        username_var: &str,
        password_var: &str,
    ) -> Result<Proxy, ProxyError> {
        let read = |var: &str| -> Result<Secret, ProxyError> {
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                Ok(_) => Err(self.credentials(format!("environment variable {var} is empty"))),
                Err(std::env::VarError::NotPresent) => {
                    Err(self.credentials(format!("environment variable {var} is not set")))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(self.credentials(format!("environment variable {var} is not valid UTF-8")))
                }
            }
        };
        let username = read(username_var)?;
        let password = read(password_var)?;
        self.auth = Some(Auth { username, password });
        Ok(self)
    }

    fn credentials(&self, reason: String) -> ProxyError {
        ProxyError::Credentials {
            proxy: self.to_string(),
            reason,
        }
    }

    /// How the proxy is spoken to.
    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }

    /// Whether connections to `url`'s host go through the proxy (its host is not on the
    /// `no_proxy` list).
    pub fn applies_to(&self, url: &Url) -> bool {
        match url.host() {
            Some(host) => !self.no_proxy.iter().any(|b| b.matches(&host)),
            None => true,
        }
    }

    /// The proxy URL with its credentials (every byte but letters and digits percent-encoded)
    /// for the REST client; never to be printed. Checked to parse as the HTTP stack's URI too:
    /// a proxy URL it could not read would send requests direct.
    pub(crate) fn url_with_credentials(&self) -> Result<Url, String> {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let mut url = Url::parse(&self.to_string()).map_err(|e| e.to_string())?;
        if let Some(a) = &self.auth {
            let user = utf8_percent_encode(a.username.expose(), NON_ALPHANUMERIC).to_string();
            let pass = utf8_percent_encode(a.password.expose(), NON_ALPHANUMERIC).to_string();
            url.set_username(&user)
                .and_then(|()| url.set_password(Some(&pass)))
                .map_err(|()| "the proxy URL cannot carry credentials".to_string())?;
        }
        match url.as_str().parse::<http::Uri>() {
            Ok(uri) if uri.authority().is_some() => Ok(url),
            _ => Err("the proxy URL with its credentials is not a valid URI".into()),
        }
    }

    /// The username and password, for scrubbing error texts; never to be printed.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        self.auth
            .as_ref()
            .map(|a| vec![a.username.expose(), a.password.expose()])
            .unwrap_or_default()
    }

    /// Opens a TCP stream to `host:port` through the proxy: a `CONNECT` tunnel or a SOCKS5
    /// connection, ready for the venue's protocol (TLS, WebSocket). Takes as long as the
    /// proxy takes: callers bound it.
    pub async fn connect(&self, host: &Host<&str>, port: u16) -> Result<TcpStream, ProxyError> {
        let target = match host {
            Host::Ipv6(ip) => format!("[{ip}]:{port}"),
            other => format!("{other}:{port}"),
        };
        // SOCKS5 without remote resolution: the venue's name is resolved here, first.
        let resolved = match (self.scheme, host) {
            (ProxyScheme::Socks5, Host::Domain(name)) => {
                let mut addrs = tokio::net::lookup_host((*name, port)).await.map_err(|e| {
                    ProxyError::Resolve {
                        proxy: self.to_string(),
                        target: target.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Some(addrs.next().ok_or_else(|| ProxyError::Resolve {
                    proxy: self.to_string(),
                    target: target.clone(),
                    reason: "no address".into(),
                })?)
            }
            _ => None,
        };
        let proxy_host = match &self.host {
            Host::Domain(d) => d.clone(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        let tcp = TcpStream::connect((proxy_host.as_str(), self.port))
            .await
            .map_err(|e| ProxyError::Unreachable {
                proxy: self.to_string(),
                reason: e.to_string(),
            })?;
        match self.scheme {
            ProxyScheme::Http => self.http_connect(tcp, &target).await,
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
                let addr = match (resolved, host) {
                    (Some(a), _) => tokio_socks::TargetAddr::Ip(a),
                    (None, Host::Ipv4(ip)) => tokio_socks::TargetAddr::Ip((*ip, port).into()),
                    (None, Host::Ipv6(ip)) => tokio_socks::TargetAddr::Ip((*ip, port).into()),
                    (None, Host::Domain(d)) => {
                        tokio_socks::TargetAddr::Domain(d.to_string().into(), port)
                    }
                };
                self.socks_connect(tcp, addr, &target).await
            }
        }
    }

    /// Asks the HTTP proxy for a tunnel to `target` and reads its answer (at most
    /// [`MAX_CONNECT_ANSWER`] bytes); a 2xx opens the tunnel.
    async fn http_connect(
        &self,
        mut tcp: TcpStream,
        target: &str,
    ) -> Result<TcpStream, ProxyError> {
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(a) = &self.auth {
            let pair = format!("{}:{}", a.username.expose(), a.password.expose());
            request.push_str("Proxy-Authorization: Basic ");
            request.push_str(&base64::engine::general_purpose::STANDARD.encode(pair));
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let protocol = |reason: String| ProxyError::Protocol {
            proxy: self.to_string(),
            reason,
        };
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| protocol(format!("sending CONNECT failed: {e}")))?;
        drop(request);
        let mut answer = Vec::with_capacity(512);
        let mut chunk = [0u8; 512];
        loop {
            let n = tcp
                .read(&mut chunk)
                .await
                .map_err(|e| protocol(format!("reading the answer to CONNECT failed: {e}")))?;
            if n == 0 {
                return Err(protocol(
                    "closed the connection before answering CONNECT".into(),
                ));
            }
            answer.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; MAX_CONNECT_HEADERS];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&answer) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = parsed.code.unwrap_or(0);
                    if status == 407 {
                        return Err(ProxyError::AuthRefused {
                            proxy: self.to_string(),
                            detail: "HTTP 407".into(),
                        });
                    }
                    if !(200..300).contains(&status) {
                        return Err(ProxyError::Refused {
                            proxy: self.to_string(),
                            target: target.to_string(),
                            detail: format!("HTTP {status}"),
                        });
                    }
                    if len < answer.len() {
                        // The venue speaks second (TLS, WebSocket): nothing may come first.
                        return Err(protocol(
                            "sent data after its answer to CONNECT, before the tunnel was used"
                                .into(),
                        ));
                    }
                    return Ok(tcp);
                }
                Ok(httparse::Status::Partial) if answer.len() >= MAX_CONNECT_ANSWER => {
                    return Err(protocol(format!(
                        "answer to CONNECT longer than {MAX_CONNECT_ANSWER} bytes"
                    )));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(protocol(format!("malformed answer to CONNECT ({e})"))),
            }
        }
    }

    /// The SOCKS5 handshake (with username and password when configured) for `addr`.
    async fn socks_connect(
        &self,
        tcp: TcpStream,
        addr: tokio_socks::TargetAddr<'static>,
        target: &str,
    ) -> Result<TcpStream, ProxyError> {
        use tokio_socks::tcp::Socks5Stream;
        use tokio_socks::Error as S;
        let done = match &self.auth {
            Some(a) => {
                Socks5Stream::connect_with_password_and_socket(
                    tcp,
                    addr,
                    a.username.expose(),
                    a.password.expose(),
                )
                .await
            }
            None => Socks5Stream::connect_with_socket(tcp, addr).await,
        };
        let proxy = self.to_string();
        match done {
            Ok(stream) => Ok(stream.into_inner()),
            Err(
                e @ (S::PasswordAuthFailure(_)
                | S::NoAcceptableAuthMethods
                | S::AuthorizationRequired
                | S::InvalidAuthValues(_)),
            ) => Err(ProxyError::AuthRefused {
                proxy,
                detail: format!("SOCKS5: {e}"),
            }),
            Err(
                e @ (S::GeneralSocksServerFailure
                | S::ConnectionNotAllowedByRuleset
                | S::NetworkUnreachable
                | S::HostUnreachable
                | S::ConnectionRefused
                | S::TtlExpired
                | S::CommandNotSupported
                | S::AddressTypeNotSupported),
            ) => Err(ProxyError::Refused {
                proxy,
                target: target.to_string(),
                detail: format!("SOCKS5: {e}"),
            }),
            Err(e) => Err(ProxyError::Protocol {
                proxy,
                reason: format!("SOCKS5 handshake failed: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bypassed(list: &[&str], url: &str) -> bool {
        let p = Proxy::parse("http://10.9.8.7:3128")
            .and_then(|p| p.with_no_proxy(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
            .unwrap_or_else(|e| panic!("{e}"));
        let url = Url::parse(url).unwrap_or_else(|e| panic!("{e}"));
        !p.applies_to(&url)
    }

    #[test]
    fn no_proxy_takes_names_with_their_subdomains_addresses_and_networks() {
        let list = [
            "localhost",
            ".corp.example",
            "127.0.0.0/8",
            "::1",
            "10.1.2.3",
        ];
        assert!(bypassed(&list, "ws://localhost:9000/ws"));
        assert!(bypassed(&list, "ws://LocalHost./ws"));
        assert!(bypassed(&list, "https://corp.example/x"));
        assert!(bypassed(&list, "https://api.corp.example/x"));
        assert!(!bypassed(&list, "https://notcorp.example/x"));
        assert!(bypassed(&list, "ws://127.0.0.1:1/"));
        assert!(bypassed(&list, "ws://127.200.3.4:1/"));
        assert!(bypassed(&list, "ws://[::1]:1/"));
        assert!(bypassed(&list, "http://10.1.2.3/"));
        assert!(!bypassed(&list, "http://10.1.2.4/"));
        assert!(!bypassed(&list, "wss://stream.binance.com:9443/ws"));
        // A name never matches an address (no resolution), nor the reverse.
        assert!(!bypassed(&["localhost"], "ws://127.0.0.1/"));
        assert!(bypassed(&["*"], "wss://stream.binance.com:9443/ws"));
        assert!(!bypassed(&[], "ws://127.0.0.1/"));
    }

    #[test]
    fn bad_no_proxy_entries_are_named() {
        let p = Proxy::parse("socks5h://proxy.internal:1080").unwrap_or_else(|e| panic!("{e}"));
        let err = p
            .clone()
            .with_no_proxy(&["10.0.0.0/33".into()])
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains("\"10.0.0.0/33\" is not a network"), "{err}");
        let err = p
            .with_no_proxy(&["ok.example".into(), "bad host".into()])
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains("\"bad host\" is neither"), "{err}");
    }

    #[test]
    fn proxy_urls_are_checked_without_being_echoed() {
        let err = Proxy::parse("http://alice:s3cr3t-pw@proxy:3128").unwrap_err();
        assert!(err.contains("must not carry credentials"), "{err}");
        assert!(
            !err.contains("s3cr3t-pw") && !err.contains("alice"),
            "{err}"
        );
        let err = Proxy::parse("https://proxy:3128").unwrap_err();
        assert!(err.contains("scheme https:// is not supported"), "{err}");
        let err = Proxy::parse("socks5://proxy").unwrap_err();
        assert!(err.contains("must name a port"), "{err}");
        let err = Proxy::parse("http://proxy:3128/path").unwrap_err();
        assert!(err.contains("no path"), "{err}");
        // http's known default port is taken when none is written.
        let p = Proxy::parse("http://proxy").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.to_string(), "http://proxy:80");
        let p = Proxy::parse("socks5h://[::1]:1080").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.to_string(), "socks5h://[::1]:1080");
        assert_eq!(p.scheme(), ProxyScheme::Socks5h);
    }

    #[test]
    fn credentials_come_from_the_environment_and_never_print() {
        let (u, pw) = ("TICKFLOW_UNIT_PROXY_USER_A", "TICKFLOW_UNIT_PROXY_PASS_A");
        std::env::set_var(u, "unit-user");
        std::env::set_var(pw, "p@ss:w/rd%?#");
        let p = Proxy::parse("http://127.0.0.1:3128")
            .unwrap_or_else(|e| panic!("{e}"))
            .with_env_credentials(u, pw)
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{p} {p:?}");
        assert!(
            !shown.contains("unit-user") && !shown.contains("p@ss"),
            "{shown}"
        );
        // The URL handed to the REST client carries them percent-encoded, and parses back.
        let url = p.url_with_credentials().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.username(), "unit%2Duser");
        assert_eq!(url.password(), Some("p%40ss%3Aw%2Frd%25%3F%23"));
        assert_eq!(url.host_str(), Some("127.0.0.1"));

        let err = Proxy::parse("http://127.0.0.1:3128")
            .unwrap_or_else(|e| panic!("{e}"))
            .with_env_credentials(u, "TICKFLOW_UNIT_PROXY_PASS_UNSET")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "proxy http://127.0.0.1:3128: environment variable TICKFLOW_UNIT_PROXY_PASS_UNSET is not set"
        );
        assert_eq!(err.kind(), "proxy_credentials");
    }
}
