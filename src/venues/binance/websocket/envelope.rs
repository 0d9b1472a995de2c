//! Binance's combined-stream envelope (`{"stream":"<name>","data":<payload>}`) and stream
//! names, read by both the scanner and the general parse.

/// The payload kind of stream `stream`: `btcusdt@depth@100ms` → `depth`; `kline_1m` is kept.
pub(super) fn stream_kind(stream: &str) -> &str {
    let kind = stream.split_once('@').map_or(stream, |(_, k)| k);
    kind.split('@').next().unwrap_or(kind)
}

/// Binance writes combined frames as `{"stream":"<name>","data":<payload>}`. When a frame has
/// exactly that shape, returns the stream name and the payload text without parsing the frame
/// twice; anything else (other key order, whitespace, control answers) takes the general path.
pub(super) fn combined_fast(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(r#"{"stream":""#)?;
    let (stream, rest) = rest.split_once('"')?;
    if stream.contains('\\') {
        return None;
    }
    let data = rest.strip_prefix(r#","data":"#)?.strip_suffix('}')?;
    data.starts_with('{').then_some((stream, data))
}
