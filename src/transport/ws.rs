//! WebSocket connections to venues: TLS by rustls (ring provider), frame and message sizes
//! bounded from the feed's `max_frame_bytes`.

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open venue WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest outgoing message, and all that may wait unsent: a feed sends subscribes, pongs and
/// heartbeats, a few KiB at most; a send beyond this fails (`WriteBufferFull`) instead of
/// growing memory while the venue does not read.
pub const MAX_OUTGOING_BYTES: usize = 1 << 20;

/// Opens `url` (`ws://` or `wss://`). Frames larger than `max_frame_bytes` × 4 are refused by
/// the socket itself (the feed refuses anything over `max_frame_bytes` after reading); what
/// is sent is bounded by [`MAX_OUTGOING_BYTES`].
pub async fn connect(
    url: &str,
    max_frame_bytes: usize,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    // TLS for wss:// is rustls with the ring provider (set once per process; later calls
    // find it installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(max_frame_bytes.saturating_mul(4)))
        .max_frame_size(Some(max_frame_bytes.saturating_mul(4)))
        .max_write_buffer_size(MAX_OUTGOING_BYTES);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(cfg), false).await?;
    Ok(ws)
}
