//! OKX REST: the order-book snapshot `GET /api/v5/market/books` (REST book mode).

use super::messages::{Book, RestAnswer};
use crate::book::Snapshot;
use crate::venues::json::unsigned;
use crate::venues::ParseError;

/// Most levels per side `GET /api/v5/market/books` returns (`sz`).
pub const MAX_SNAPSHOT_LEVELS: u32 = 400;

/// Path and query of the snapshot of `inst_id`, `limit` levels per side (1 to 400).
pub fn snapshot_path(inst_id: &str, limit: u32) -> String {
    format!(
        "/api/v5/market/books?instId={inst_id}&sz={}",
        limit.clamp(1, MAX_SNAPSHOT_LEVELS)
    )
}

/// Parses a `GET /api/v5/market/books` answer: levels (`[px, sz, "0", orders]`) and the
/// snapshot's `seqId`, which the stream is bridged onto (a snapshot without one cannot be
/// bridged and is refused).
pub fn parse_snapshot(body: &str) -> Result<Snapshot, ParseError> {
    let a: RestAnswer<'_> = serde_json::from_str(body)?;
    if a.code != "0" {
        return Err(ParseError::Venue {
            code: a.code.parse().unwrap_or(0),
            msg: a.msg,
        });
    }
    let data = a
        .data
        .ok_or_else(|| ParseError::Unsupported("order book answer without data".into()))?;
    let books: Vec<Book<'_>> = serde_json::from_str(data.get())?;
    let b = books
        .first()
        .ok_or_else(|| ParseError::Unsupported("order book answer with no book".into()))?;
    let seq = b
        .seq_id
        .ok_or_else(|| ParseError::Unsupported("order book snapshot without seqId".into()))?;
    let side =
        |v: &[Vec<&serde_json::value::RawValue>]| -> Result<Vec<(String, String)>, ParseError> {
            v.iter()
                .map(|l| match &l[..] {
                    [p, q, ..] => Ok((unsigned(p)?.to_string(), unsigned(q)?.to_string())),
                    _ => Err(ParseError::Unsupported(
                        "book level without price and size".into(),
                    )),
                })
                .collect()
        };
    Ok(Snapshot {
        last_update_id: seq,
        bids: side(&b.bids)?,
        asks: side(&b.asks)?,
        checksum: None,
    })
}
