//! Feeds through a proxy, end to end: an HTTP proxy (`CONNECT` and plain forwarding) and a
//! SOCKS5 proxy, both small servers of this test on 127.0.0.1 that check the credentials,
//! count the connections they accept and log the requests they relay. The Binance replay
//! server plays the recording; the service runs a feed configured with the proxy; the broker
//! of the dev stack takes what it produces.
//!
//! - through either proxy, with credentials from the environment, the recorded trades reach
//!   Kafka (ids compared with the recording), the WebSocket and the REST depth snapshot went
//!   through the proxy, and the credentials are in no log line;
//! - a host on `no_proxy` goes direct: the proxy accepts no connection;
//! - a dead proxy: a typed error (WebSocket and REST), counted, retried with backoff; once the
//!   proxy is up the feed connects, and a `RECONNECT` FeedEvent names the proxy failure;
//! - refusals (wrong credentials, a 403 to `CONNECT`, an oversized answer) are typed errors
//!   that never carry the credentials.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use tickflow::config::FeedConfig;
use tickflow::metrics::FeedErrorLabels;
use tickflow::replay::{ReplayServer, ReplayServerConfig};
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::{DataType, Normalized};
use tickflow::service::Service;
use tickflow::transport::ws::ConnectError;
use tickflow::transport::{Proxy, ProxyError, RestBudget, RestClient, RestConfig, RestError};
use tickflow::venues::Channel;

// ---------------------------------------------------------------------------------------------
// The test proxy.

/// How the test proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speaks {
    /// HTTP: `CONNECT host:port` tunnels, and plain requests in absolute form forwarded.
    Http,
    /// SOCKS5 (RFC 1928), username/password auth (RFC 1929) when it has credentials.
    Socks5,
}

/// One connection the proxy accepted.
#[derive(Debug, Clone, Default)]
struct Conn {
    /// Whether the client gave the right credentials (always true without any required).
    authorized: bool,
    /// `host:port` it asked for (as given: a name under `socks5h`).
    target: String,
    /// Whether it was a `CONNECT` tunnel (false: a plain request forwarded).
    tunnel: bool,
    /// Every HTTP request line the client sent through it.
    requests: Vec<String>,
    /// Whether one of them asked for a WebSocket upgrade.
    websocket: bool,
}

struct TestProxy {
    addr: SocketAddr,
    /// Every TCP connection accepted, before any handshake.
    accepted: Arc<AtomicUsize>,
    conns: Arc<Mutex<Vec<Arc<Mutex<Conn>>>>>,
    /// The accept loop and every connection's task, aborted by [`TestProxy::kill`].
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TestProxy {
    /// Starts on 127.0.0.1:`port` (0: any free port); `creds` are required when given.
    fn start(speaks: Speaks, creds: Option<(&str, &str)>, port: u16) -> TestProxy {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let conns: Arc<Mutex<Vec<Arc<Mutex<Conn>>>>> = Arc::default();
        let creds = creds.map(|(u, p)| (u.to_string(), p.to_string()));
        let (a, c) = (accepted.clone(), conns.clone());
        let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let t = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let conn = Arc::new(Mutex::new(Conn::default()));
                c.lock().unwrap().push(conn.clone());
                let creds = creds.clone();
                let task = tokio::spawn(async move {
                    let _ = match speaks {
                        Speaks::Http => serve_http(client, creds, conn).await,
                        Speaks::Socks5 => serve_socks(client, creds, conn).await,
                    };
                });
                t.lock().unwrap().push(task.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        TestProxy {
            addr,
            accepted,
            conns,
            tasks,
        }
    }

    /// Dies: stops listening and drops every connection it relays.
    fn kill(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    fn conns(&self) -> Vec<Conn> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }
}

/// Reads until the end of an HTTP header block (at most 16 KiB); the block and what followed.
async fn read_head(s: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 16 * 1024 {
            return Err(std::io::Error::other("header too long"));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve_http(
    mut client: TcpStream,
    creds: Option<(String, String)>,
    conn: Arc<Mutex<Conn>>,
) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client).await?;
    let text = String::from_utf8_lossy(&head).to_string();
    let line = text.lines().next().unwrap_or_default().to_string();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let given = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_string())
    });
    let authorized = match &creds {
        None => true,
        Some((u, p)) => {
            let want = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            given == Some(format!("Basic {want}"))
        }
    };
    let tunnel = method == "CONNECT";
    let host_port = if tunnel {
        target.to_string()
    } else {
        let u = url::Url::parse(target).unwrap();
        format!(
            "{}:{}",
            u.host_str().unwrap(),
            u.port_or_known_default().unwrap()
        )
    };
    {
        let mut c = conn.lock().unwrap();
        c.authorized = authorized;
        c.target = host_port.clone();
        c.tunnel = tunnel;
    }
    if !authorized {
        client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(&host_port).await?;
    if tunnel {
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
    } else {
        // Forwarded as it came (the server takes the absolute form too).
        note_requests(&conn, &head);
        upstream.write_all(&head).await?;
    }
    note_requests(&conn, &rest);
    upstream.write_all(&rest).await?;
    relay(client, upstream, conn).await
}

async fn serve_socks(
    mut client: TcpStream,
    creds: Option<(String, String)>,
    conn: Arc<Mutex<Conn>>,
) -> std::io::Result<()> {
    let mut hello = [0u8; 2];
    client.read_exact(&mut hello).await?;
    assert_eq!(hello[0], 5, "SOCKS version");
    let mut methods = vec![0u8; hello[1] as usize];
    client.read_exact(&mut methods).await?;
    let authorized = match &creds {
        None => {
            assert!(methods.contains(&0), "{methods:?}");
            client.write_all(&[5, 0]).await?;
            true
        }
        Some((u, p)) => {
            if !methods.contains(&2) {
                client.write_all(&[5, 0xff]).await?;
                return Ok(());
            }
            client.write_all(&[5, 2]).await?;
            let mut v = [0u8; 2];
            client.read_exact(&mut v).await?;
            let mut user = vec![0u8; v[1] as usize];
            client.read_exact(&mut user).await?;
            let mut plen = [0u8; 1];
            client.read_exact(&mut plen).await?;
            let mut pass = vec![0u8; plen[0] as usize];
            client.read_exact(&mut pass).await?;
            let ok = user == u.as_bytes() && pass == p.as_bytes();
            client.write_all(&[1, if ok { 0 } else { 1 }]).await?;
            ok
        }
    };
    conn.lock().unwrap().authorized = authorized;
    if !authorized {
        return Ok(());
    }
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    assert_eq!(&req[..3], &[5, 1, 0], "CONNECT");
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            client.read_exact(&mut name).await?;
            String::from_utf8(name).unwrap()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        other => panic!("address type {other}"),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    {
        let mut c = conn.lock().unwrap();
        c.target = target.clone();
        c.tunnel = true;
    }
    let upstream = match TcpStream::connect(&target).await {
        Ok(s) => s,
        Err(_) => {
            client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            return Ok(());
        }
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    relay(client, upstream, conn).await
}

/// Notes the request lines (and WebSocket upgrades) of what a client sends.
fn note_requests(conn: &Arc<Mutex<Conn>>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let mut c = conn.lock().unwrap();
    for line in text.split("\r\n") {
        if line.starts_with("GET ") && line.ends_with(" HTTP/1.1") {
            c.requests.push(line.to_string());
        }
        if line.eq_ignore_ascii_case("upgrade: websocket") {
            c.websocket = true;
        }
    }
}

/// Relays both ways until either side closes, noting the client's requests.
async fn relay(
    client: TcpStream,
    upstream: TcpStream,
    conn: Arc<Mutex<Conn>>,
) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return uw.shutdown().await;
            }
            note_requests(&conn, &buf[..n]);
            uw.write_all(&buf[..n]).await?;
        }
    };
    let down = async move { tokio::io::copy(&mut ur, &mut cw).await.map(|_| ()) };
    let _ = tokio::join!(up, down);
    Ok(())
}

/// A server that answers anything with `answer` and closes: a proxy that refuses.
async fn answering(answer: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let _ = read_head(&mut s).await;
                let _ = s.write_all(&answer).await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// Logs: every line the process writes is kept, to look for credentials in it.

#[derive(Clone)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = LogBuf(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                "tickflow=debug,reqwest=trace,hyper_util=trace,tokio_tungstenite=debug,tungstenite=debug",
            )
            .with_ansi(false)
            .with_writer(move || w.clone())
            .try_init();
        buf
    })
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).to_string()
}

/// Asserts that neither credential shows in the logs, in any of the forms it travels in.
fn assert_secret_absent(what: &str, text: &str, user: &str, pass: &str) {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let encoded = utf8_percent_encode(pass, NON_ALPHANUMERIC).to_string();
    for secret in [user, pass, b64.as_str(), encoded.as_str()] {
        assert!(
            !text.contains(secret),
            "{what} shows a credential ({secret:?})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The feed.

const FIXTURES: &str = "tests/fixtures/binance";

/// binance_trade.jsonl, typed by hand: ETHUSDT `t` 705291099; BNBBTC `t` 40756030 and 60276726.
const TRADE_IDS: [u64; 3] = [705_291_099, 40_756_030, 60_276_726];

async fn replay() -> ReplayServer {
    tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: FIXTURES.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The settings of the feeds [`run`] starts, at `host` (the replay server's port).
fn feed(host: &str, replay: &ReplayServer) -> FeedConfig {
    let port = replay.addr.port();
    FeedConfig {
        venue: "binance".into(),
        ws_url: Some(format!("ws://{host}:{port}")),
        rest_url: Some(format!("http://{host}:{port}")),
        snapshot_interval: Duration::from_millis(10),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Runs two feeds with the settings of `feed`: the recorded trades (ETH-USDT, BNB-BTC) and
/// NKN-USDT's book (synced from a REST snapshot); after `wait`, calls `meanwhile`; then waits until the replay has been played
/// and the recorded trades are in Kafka (or 60 s passed); returns the config, the service
/// (stopped) and the trade ids read.
async fn run(
    prefix: &str,
    feed: FeedConfig,
    replay: &ReplayServer,
    wait: Duration,
    meanwhile: impl FnOnce(&Service),
) -> (tickflow::config::Config, Service, Vec<u64>) {
    let mut cfg = common::test_config(prefix);
    let trades = FeedConfig {
        symbols: vec!["ETH-USDT".into(), "BNB-BTC".into()],
        channels: vec![Channel::Trade],
        ..feed.clone()
    };
    let book = FeedConfig {
        symbols: vec!["NKN-USDT".into()],
        channels: vec![Channel::Depth],
        ..feed
    };
    cfg.feeds = vec![trades, book];
    cfg.validate().unwrap();
    let service = Service::start(cfg.clone()).await.unwrap();
    tokio::time::sleep(wait).await;
    meanwhile(&service);
    tokio::time::timeout(Duration::from_secs(60), replay.finished())
        .await
        .expect("replay played");
    let topic = format!("{}.{}", cfg.producer.topic_prefix, DataType::Trade.as_str());
    let records = tokio::task::spawn_blocking(move || {
        common::consume_until_idle(
            &common::kafka_addr(),
            &topic,
            3,
            &TRADE_IDS,
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    service.shutdown().await;
    (cfg, service, common::ids(&records))
}

fn syncs(service: &Service) -> u64 {
    service
        .feeds
        .iter()
        .map(|f| f.stats.syncs.load(Ordering::Relaxed))
        .sum()
}

/// What went through the proxy to `target`: (WebSocket connections, REST depth requests).
fn carried(proxy: &TestProxy, target: &str) -> (usize, usize) {
    let conns = proxy.conns();
    for c in &conns {
        assert!(c.authorized, "a connection without the credentials: {c:?}");
        assert_eq!(c.target, target, "{c:?}");
    }
    let ws = conns.iter().filter(|c| c.websocket && c.tunnel).count();
    let depth = conns
        .iter()
        .flat_map(|c| &c.requests)
        .filter(|r| {
            r.starts_with("GET ") && r.contains("/api/v3/depth?") && r.contains("symbol=NKNUSDT")
        })
        .count();
    (ws, depth)
}

#[actix_rt::test]
async fn an_http_proxy_carries_the_websocket_and_rest_with_credentials_from_the_environment() {
    logs();
    let (user, pass) = ("feed-http-user", "pw-H:t@p/%?#&=x7f3a");
    std::env::set_var("TICKFLOW_TEST_PROXY_HTTP_USER", user);
    std::env::set_var("TICKFLOW_TEST_PROXY_HTTP_PASS", pass);
    let proxy = TestProxy::start(Speaks::Http, Some((user, pass)), 0);
    let replay = replay().await;
    let mut f = feed("127.0.0.1", &replay);
    f.proxy = Some(proxy.url("http"));
    f.proxy_username_env = Some("TICKFLOW_TEST_PROXY_HTTP_USER".into());
    f.proxy_password_env = Some("TICKFLOW_TEST_PROXY_HTTP_PASS".into());
    let (_, service, ids) = run("proxy.http", f, &replay, Duration::ZERO, |_| {}).await;

    common::assert_same_ids("trades through the HTTP proxy", TRADE_IDS, ids);
    let (ws, depth) = carried(&proxy, &replay.addr.to_string());
    assert_eq!(
        ws,
        2,
        "one WebSocket per feed, tunnelled: {:?}",
        proxy.conns()
    );
    assert!(
        depth >= 1,
        "the depth snapshot went through the proxy: {:?}",
        proxy.conns()
    );
    assert!(
        syncs(&service) >= 1,
        "NKN-USDT's book synced from that snapshot"
    );
    // The REST requests were forwarded, not tunnelled (plain http://), on their own connections.
    assert!(proxy
        .conns()
        .iter()
        .any(|c| !c.tunnel && !c.requests.is_empty()));
    let logs = log_text();
    assert!(logs.contains("feed connected"), "the logs were captured");
    assert_secret_absent("the logs", &logs, user, pass);
}

#[actix_rt::test]
async fn a_socks5h_proxy_carries_the_websocket_and_rest_and_resolves_the_venue_itself() {
    logs();
    let (user, pass) = ("feed-socks-user", "pw-S:o@c/%ks#9d1e");
    std::env::set_var("TICKFLOW_TEST_PROXY_SOCKS_USER", user);
    std::env::set_var("TICKFLOW_TEST_PROXY_SOCKS_PASS", pass);
    let proxy = TestProxy::start(Speaks::Socks5, Some((user, pass)), 0);
    let replay = replay().await;
    // A name, which socks5h hands to the proxy unresolved.
    let mut f = feed("localhost", &replay);
    f.proxy = Some(proxy.url("socks5h"));
    f.proxy_username_env = Some("TICKFLOW_TEST_PROXY_SOCKS_USER".into());
    f.proxy_password_env = Some("TICKFLOW_TEST_PROXY_SOCKS_PASS".into());
    let (_, service, ids) = run("proxy.socks", f, &replay, Duration::ZERO, |_| {}).await;

    common::assert_same_ids("trades through the SOCKS5 proxy", TRADE_IDS, ids);
    let target = format!("localhost:{}", replay.addr.port());
    let (ws, depth) = carried(&proxy, &target);
    assert_eq!(ws, 2, "one WebSocket per feed: {:?}", proxy.conns());
    assert!(
        depth >= 1,
        "the depth snapshot went through the proxy: {:?}",
        proxy.conns()
    );
    assert!(syncs(&service) >= 1);
    assert_secret_absent("the logs", &log_text(), user, pass);
}

#[actix_rt::test]
async fn a_no_proxy_host_goes_direct() {
    logs();
    let proxy = TestProxy::start(Speaks::Http, None, 0);
    let replay = replay().await;
    let mut f = feed("127.0.0.1", &replay);
    f.proxy = Some(proxy.url("http"));
    f.no_proxy = vec!["localhost".into(), "127.0.0.0/8".into(), "::1".into()];
    let (_, service, ids) = run("proxy.bypass", f, &replay, Duration::ZERO, |_| {}).await;

    common::assert_same_ids("trades, direct", TRADE_IDS, ids);
    assert!(syncs(&service) >= 1);
    assert_eq!(
        proxy.accepted.load(Ordering::SeqCst),
        0,
        "the proxy was not used"
    );
}

#[actix_rt::test]
async fn a_dead_proxy_is_a_typed_error_retried_with_backoff_until_it_comes_up() {
    logs();
    let (user, pass) = ("feed-dead-user", "pw-D:e@a/d%#41c2");
    std::env::set_var("TICKFLOW_TEST_PROXY_DEAD_USER", user);
    std::env::set_var("TICKFLOW_TEST_PROXY_DEAD_PASS", pass);
    let port = common::free_port();
    let proxy_url = format!("http://127.0.0.1:{port}");
    let replay = replay().await;

    // The typed errors, WebSocket and REST, while nothing listens on the proxy's port.
    let proxy = Proxy::parse(&proxy_url)
        .unwrap()
        .with_env_credentials(
            "TICKFLOW_TEST_PROXY_DEAD_USER",
            "TICKFLOW_TEST_PROXY_DEAD_PASS",
        )
        .unwrap();
    let ws_url = format!("ws://{}/stream", replay.addr);
    match tickflow::transport::ws::connect(&ws_url, 1 << 20, Some(&proxy)).await {
        Err(ConnectError::Proxy(e @ ProxyError::Unreachable { .. })) => {
            assert_eq!(e.kind(), "proxy_unreachable");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("proxy {proxy_url} unreachable: ")),
                "{text}"
            );
            assert_secret_absent("the error", &text, user, pass);
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected through a dead proxy"),
    }
    let rest = RestClient::with_proxy(
        RestConfig::new(
            RestBudget {
                weight_per_minute: 6000,
                burst: 100,
            },
            1 << 20,
            Duration::from_secs(5),
        ),
        Some(proxy),
    );
    let err = rest
        .get(
            &format!("http://{}/api/v3/depth?symbol=NKNUSDT", replay.addr),
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "proxy");
    assert!(err.is_retryable());
    let RestError::Proxy(text) = &err else {
        panic!("{err:?}")
    };
    assert!(text.starts_with(&format!("{proxy_url} failed: ")), "{text}");
    assert_secret_absent("the REST error", &err.to_string(), user, pass);
    // Nothing reached the venue direct.
    assert!(replay.rest_requests().is_empty());

    // The feed starts while the proxy is dead; the proxy comes up 2.5 s later.
    let mut f = feed("127.0.0.1", &replay);
    f.proxy = Some(proxy_url.clone());
    f.proxy_username_env = Some("TICKFLOW_TEST_PROXY_DEAD_USER".into());
    f.proxy_password_env = Some("TICKFLOW_TEST_PROXY_DEAD_PASS".into());
    let mut counted = (0, 0);
    let mut late = None;
    let wait = Duration::from_millis(2_500);
    let (cfg, _service, ids) = run("proxy.dead", f, &replay, wait, |service: &Service| {
        let reconnects: u64 = service
            .feeds
            .iter()
            .map(|f| f.stats.reconnects.load(Ordering::Relaxed))
            .sum();
        let errors = service
            .producer
            .metrics()
            .feed_errors
            .get_or_create(&FeedErrorLabels {
                exchange: "BINANCE".into(),
                kind: "proxy_unreachable".into(),
            })
            .get();
        counted = (reconnects, errors);
        late = Some(TestProxy::start(Speaks::Http, Some((user, pass)), port));
    })
    .await;
    // 2.5 s of a dead proxy with a backoff of 100 ms doubling to at most 400 ms (with
    // jitter): at least 2.5 / 0.4 ≈ 6 attempts per feed, each failed, counted and retried.
    let (reconnects, errors) = counted;
    assert!(reconnects >= 10, "{reconnects} reconnect attempts in 2.5 s");
    assert!(
        errors >= 10,
        "{errors} proxy_unreachable errors counted in 2.5 s"
    );
    let proxy = late.unwrap();

    // Recovered: every recorded trade arrived, through the proxy.
    common::assert_same_ids("trades after the proxy came up", TRADE_IDS, ids);
    let (ws, depth) = carried(&proxy, &replay.addr.to_string());
    assert_eq!(ws, 2, "{:?}", proxy.conns());
    assert!(depth >= 1, "{:?}", proxy.conns());

    // The reconnect was announced, naming the proxy failure (and no credential).
    let events: Vec<_> = common::decoded(&cfg, DataType::FeedEvent)
        .into_iter()
        .map(|n| match n {
            Normalized::FeedEvent(e) => e,
            other => panic!("{other:?}"),
        })
        .collect();
    let reconnect: Vec<_> = events
        .iter()
        .filter(|e| e.kind == Kind::Reconnect as i32 && e.reason.contains("proxy"))
        .collect();
    assert_eq!(reconnect.len(), 2, "one per feed: {events:?}");
    for e in reconnect {
        let why = &e.reason;
        assert!(
            why.starts_with(&format!("connection lost: connect ws://{}", replay.addr))
                && why.contains(&format!(": proxy {proxy_url} unreachable: "))
                && why.ends_with("; every book of it resyncs"),
            "{why}"
        );
        assert!(e.since.is_some());
    }
    for e in &events {
        assert_secret_absent("a FeedEvent", &e.reason, user, pass);
    }
    // The failures were logged, naming the proxy, without the credentials.
    let logs = log_text();
    assert!(
        logs.contains(&format!("proxy {proxy_url} unreachable")),
        "the logs were captured"
    );
    assert_secret_absent("the logs", &logs, user, pass);
}

#[actix_rt::test]
async fn refusals_are_typed_errors_without_the_credentials() {
    logs();
    std::env::set_var("TICKFLOW_TEST_PROXY_BAD_USER", "someone");
    std::env::set_var("TICKFLOW_TEST_PROXY_BAD_PASS", "wrong-pw-5e6f");
    let wrong = |url: &str| {
        Proxy::parse(url)
            .unwrap()
            .with_env_credentials(
                "TICKFLOW_TEST_PROXY_BAD_USER",
                "TICKFLOW_TEST_PROXY_BAD_PASS",
            )
            .unwrap()
    };
    let target = "ws://127.0.0.1:9/stream";
    let expect = |r: Result<tickflow::transport::ws::Ws, ConnectError>| match r {
        Err(ConnectError::Proxy(e)) => {
            assert_secret_absent("the error", &e.to_string(), "someone", "wrong-pw-5e6f");
            e
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected"),
    };

    // Wrong credentials: HTTP 407, SOCKS5 auth failure.
    let http = TestProxy::start(Speaks::Http, Some(("right", "right-pw")), 0);
    let p = wrong(&http.url("http"));
    let e = expect(tickflow::transport::ws::connect(target, 1 << 20, Some(&p)).await);
    assert_eq!(
        e,
        ProxyError::AuthRefused {
            proxy: http.url("http"),
            detail: "HTTP 407".into()
        }
    );
    let socks = TestProxy::start(Speaks::Socks5, Some(("right", "right-pw")), 0);
    let p = wrong(&socks.url("socks5"));
    let e = expect(tickflow::transport::ws::connect(target, 1 << 20, Some(&p)).await);
    assert_eq!(e.kind(), "proxy_auth", "{e}");
    // REST through the HTTP proxy with the wrong credentials.
    let rest = RestClient::with_proxy(
        RestConfig::new(
            RestBudget {
                weight_per_minute: 6000,
                burst: 100,
            },
            1 << 20,
            Duration::from_secs(5),
        ),
        Some(wrong(&http.url("http"))),
    );
    let err = rest
        .get("http://127.0.0.1:9/api/v3/depth", 1)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RestError::Proxy(format!(
            "{} refused the credentials (HTTP 407)",
            http.url("http")
        ))
    );

    // A proxy that forbids the tunnel, and one whose answer never ends its headers.
    let forbids = answering(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
    let p = Proxy::parse(&format!("http://{forbids}")).unwrap();
    let e = expect(tickflow::transport::ws::connect(target, 1 << 20, Some(&p)).await);
    assert_eq!(
        e,
        ProxyError::Refused {
            proxy: format!("http://{forbids}"),
            target: "127.0.0.1:9".into(),
            detail: "HTTP 403".into()
        }
    );
    let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
    endless.extend(
        std::iter::repeat_n(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 300).flatten(),
    );
    let endless = answering(endless).await;
    let p = Proxy::parse(&format!("http://{endless}")).unwrap();
    let e = expect(tickflow::transport::ws::connect(target, 1 << 20, Some(&p)).await);
    assert_eq!(e.kind(), "proxy_protocol", "{e}");

    // The HTTP proxy let nothing through: the WebSocket and the REST request were refused.
    let conns = http.conns();
    assert_eq!(conns.len(), 2, "{conns:?}");
    assert!(conns.iter().all(|c| !c.authorized), "{conns:?}");
    let targets: BTreeSet<String> = conns.into_iter().map(|c| c.target).collect();
    assert_eq!(targets, BTreeSet::from(["127.0.0.1:9".to_string()]));
}

#[test]
fn proxy_settings_are_checked_at_load_without_echoing_a_secret() {
    let config = |feed: &str| {
        tickflow::config::Config::from_toml_str(&format!(
            "[[feeds]]\nvenue = \"binance\"\nsymbols = [\"BTC-USDT\"]\n{feed}"
        ))
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let err = config("proxy = \"http://bob:hunter2-pw@10.0.0.5:3128\"");
    assert_eq!(
        err,
        "config key `feeds[0].proxy`: must not carry credentials (user:password@): name the \
         environment variables that hold them in proxy_username_env and proxy_password_env"
    );
    let err = config("proxy = \"ftp://10.0.0.5:21\"");
    assert_eq!(
        err,
        "config key `feeds[0].proxy`: scheme ftp:// is not supported: use http://, socks5:// or socks5h://"
    );
    let err = config("no_proxy = [\"localhost\"]");
    assert_eq!(
        err,
        "config key `feeds[0].no_proxy`: is set but `proxy` is not: set proxy, or remove it"
    );
    let err = config("proxy = \"socks5h://10.0.0.5:1080\"\nno_proxy = [\"10.0.0.0/40\"]");
    assert_eq!(
        err,
        "config key `feeds[0].no_proxy`: \"10.0.0.0/40\" is not a network (an address/prefix, e.g. 10.0.0.0/8)"
    );
    let err = config("proxy = \"socks5h://10.0.0.5:1080\"\nproxy_username_env = \"X\"");
    assert!(
        err.contains("proxy_username_env and proxy_password_env go together"),
        "{err}"
    );
    std::env::set_var("TICKFLOW_TEST_PROXY_CFG_USER", "cfg-user");
    std::env::remove_var("TICKFLOW_TEST_PROXY_CFG_PASS_UNSET");
    let err = config(
        "proxy = \"socks5h://10.0.0.5:1080\"\nproxy_username_env = \"TICKFLOW_TEST_PROXY_CFG_USER\"\n\
         proxy_password_env = \"TICKFLOW_TEST_PROXY_CFG_PASS_UNSET\"",
    );
    assert_eq!(
        err,
        "config key `feeds[0].proxy_password_env`: proxy socks5h://10.0.0.5:1080: environment \
         variable TICKFLOW_TEST_PROXY_CFG_PASS_UNSET is not set"
    );
    // A password key does not exist: it cannot be written in a file at all.
    let err = config("proxy = \"socks5h://10.0.0.5:1080\"\nproxy_password = \"hunter2-pw\"");
    assert!(
        err.contains("unknown field: found `proxy_password`"),
        "{err}"
    );
    assert!(!err.contains("hunter2-pw"), "{err}");
}

#[actix_rt::test]
async fn a_proxy_dying_under_a_connection_is_named_when_the_feed_is_back() {
    logs();
    let (user, pass) = ("feed-mid-user", "pw-M:i@d/%#8b0d");
    std::env::set_var("TICKFLOW_TEST_PROXY_MID_USER", user);
    std::env::set_var("TICKFLOW_TEST_PROXY_MID_PASS", pass);
    let proxy = TestProxy::start(Speaks::Http, Some((user, pass)), 0);
    let port = proxy.addr.port();
    let proxy_url = proxy.url("http");
    let replay = replay().await;
    let mut f = feed("127.0.0.1", &replay);
    f.symbols = vec!["ETH-USDT".into(), "BNB-BTC".into()];
    f.channels = vec![Channel::Trade];
    f.proxy = Some(proxy_url.clone());
    f.proxy_username_env = Some("TICKFLOW_TEST_PROXY_MID_USER".into());
    f.proxy_password_env = Some("TICKFLOW_TEST_PROXY_MID_PASS".into());
    let mut cfg = common::test_config("proxy.mid");
    cfg.feeds = vec![f];
    cfg.validate().unwrap();
    let service = Service::start(cfg.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), replay.finished())
        .await
        .expect("replay played");
    let topic = format!("{}.{}", cfg.producer.topic_prefix, DataType::Trade.as_str());
    let records = tokio::task::spawn_blocking(move || {
        common::consume_until_idle(
            &common::kafka_addr(),
            &topic,
            3,
            &TRADE_IDS,
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    common::assert_same_ids(
        "trades before the proxy died",
        TRADE_IDS,
        common::ids(&records),
    );
    let connected = |s: &Service| s.feeds[0].stats.connected.load(Ordering::Relaxed);
    assert!(connected(&service));

    // The proxy dies under the connection and stays dead for 1.5 s.
    proxy.kill();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        !connected(&service),
        "the connection through the dead proxy is gone"
    );
    let back = TestProxy::start(Speaks::Http, Some((user, pass)), port);
    let mut waited = Duration::ZERO;
    while !connected(&service) && waited < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert!(connected(&service), "connected again through the proxy");
    tokio::time::sleep(Duration::from_millis(500)).await;
    service.shutdown().await;
    assert_eq!(
        back.conns()
            .iter()
            .filter(|c| c.websocket && c.authorized)
            .count(),
        1
    );

    // Announced once connected again: the loss, then the proxy that failed the reconnects.
    let events: Vec<_> = common::decoded(&cfg, DataType::FeedEvent)
        .into_iter()
        .map(|n| match n {
            Normalized::FeedEvent(e) => e,
            other => panic!("{other:?}"),
        })
        .collect();
    let announced: Vec<_> = events
        .iter()
        .filter(|e| e.kind == Kind::Reconnect as i32 && e.reason.starts_with("connection lost: "))
        .collect();
    assert_eq!(announced.len(), 1, "{events:?}");
    let why = &announced[0].reason;
    assert!(
        why.contains(&format!(
            "; reconnecting failed: proxy {proxy_url} unreachable: "
        )) && why.ends_with("; every book of it resyncs"),
        "{why}"
    );
    for e in &events {
        assert_secret_absent("a FeedEvent", &e.reason, user, pass);
    }
    assert_secret_absent("the logs", &log_text(), user, pass);
}

#[actix_rt::test]
async fn wss_goes_through_the_connect_tunnel_as_tls_end_to_end() {
    // A "venue" that records the first bytes it gets, then hangs up.
    let venue = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let venue_port = venue.local_addr().unwrap().port();
    let first = Arc::new(Mutex::new(Vec::new()));
    let f = first.clone();
    tokio::spawn(async move {
        let (mut s, _) = venue.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        f.lock().unwrap().extend_from_slice(&buf[..n]);
    });
    let proxy = TestProxy::start(Speaks::Http, None, 0);
    let p = Proxy::parse(&proxy.url("http")).unwrap();
    let url = format!("wss://localhost:{venue_port}/ws");
    let r = tickflow::transport::ws::connect(&url, 1 << 20, Some(&p)).await;
    assert!(
        matches!(r, Err(ConnectError::Ws(_))),
        "the TLS handshake cannot finish"
    );
    // The proxy opened a tunnel to the venue's name and port; what went through it was a TLS
    // ClientHello (record type 22, handshake) naming the venue (SNI), no HTTP in clear.
    let conns = proxy.conns();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].target, format!("localhost:{venue_port}"));
    assert!(conns[0].tunnel && conns[0].requests.is_empty(), "{conns:?}");
    let first = first.lock().unwrap().clone();
    assert_eq!(first.first(), Some(&22u8), "{first:?}");
    assert!(first.windows(9).any(|w| w == b"localhost"), "SNI");
    assert!(!first.windows(4).any(|w| w == b"GET "), "no HTTP in clear");
}

#[actix_rt::test]
async fn socks5_resolves_the_venue_name_here_and_hands_the_proxy_an_address() {
    let venue = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let venue_port = venue.local_addr().unwrap().port();
    tokio::spawn(async move { while venue.accept().await.is_ok() {} });
    let proxy = TestProxy::start(Speaks::Socks5, None, 0);
    let p = Proxy::parse(&proxy.url("socks5")).unwrap();
    // However it ends (localhost may resolve to ::1, where nothing listens), the proxy was
    // asked for an address, not the name.
    let _ = tickflow::transport::ws::connect(
        &format!("ws://localhost:{venue_port}/ws"),
        1 << 20,
        Some(&p),
    )
    .await;
    let conns = proxy.conns();
    assert_eq!(conns.len(), 1, "{conns:?}");
    let target: SocketAddr = conns[0].target.parse().expect("an address");
    assert!(target.ip().is_loopback(), "{target}");
    assert_eq!(target.port(), venue_port);
}
