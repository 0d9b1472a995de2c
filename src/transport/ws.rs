//! WebSocket connections to venues: TLS by rustls (ring provider), frame and message sizes
//! bounded from the feed's `max_frame_bytes`; direct, or through the feed's proxy.

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::proxy::{Proxy, ProxyError};

/// An open venue WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest outgoing message, and all that may wait unsent: a feed sends subscribes, pongs and
/// heartbeats, a few KiB at most; a send beyond this fails (`WriteBufferFull`) instead of
/// growing memory while the venue does not read.
pub const MAX_OUTGOING_BYTES: usize = 1 << 20;

/// Bytes asked of the socket per read. The WebSocket library zero-fills this much of its
/// buffer before every read, however little arrives: its 128 KiB default cost a 128 KiB fill
/// per frame on a quiet connection; larger messages are read over several reads.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Why a WebSocket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The proxy failed (unreachable, refused the tunnel or the credentials).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The URL, TLS or the WebSocket handshake failed.
    #[error(transparent)]
    Ws(#[from] Box<tokio_tungstenite::tungstenite::Error>),
}

/// Opens `url` (`ws://` or `wss://`), through `proxy` unless its `no_proxy` list names the
/// host. Frames larger than `max_frame_bytes` × 4 are refused by the socket itself (the feed
/// refuses anything over `max_frame_bytes` after reading); what is sent is bounded by
/// [`MAX_OUTGOING_BYTES`].
pub async fn connect(
    url: &str,
    max_frame_bytes: usize,
    proxy: Option<&Proxy>,
) -> Result<Ws, ConnectError> {
    // TLS for wss:// is rustls with the ring provider (set once per process; later calls
    // find it installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK_BYTES)
        .max_message_size(Some(max_frame_bytes.saturating_mul(4)))
        .max_frame_size(Some(max_frame_bytes.saturating_mul(4)))
        .max_write_buffer_size(MAX_OUTGOING_BYTES);
    let no_host = || {
        ConnectError::from(Box::new(tokio_tungstenite::tungstenite::Error::Url(
            tokio_tungstenite::tungstenite::error::UrlError::NoHostName,
        )))
    };
    // With a proxy, a URL this cannot read is refused rather than opened direct.
    let (proxy, parsed) = match (proxy, url::Url::parse(url)) {
        (None, _) => (None, None),
        (Some(p), Ok(u)) if p.applies_to(&u) => (Some(p), Some(u)),
        (Some(_), Ok(_)) => (None, None),
        (Some(_), Err(_)) => return Err(no_host()),
    };
    let (Some(proxy), Some(u)) = (proxy, parsed) else {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(cfg), false)
            .await
            .map_err(Box::new)?;
        return Ok(ws);
    };
    let (Some(host), Some(port)) = (u.host(), u.port_or_known_default()) else {
        return Err(no_host());
    };
    let stream = proxy.connect(&host, port).await?;
    let (ws, _) = tokio_tungstenite::client_async_tls_with_config(url, stream, Some(cfg), None)
        .await
        .map_err(Box::new)?;
    Ok(ws)
}
