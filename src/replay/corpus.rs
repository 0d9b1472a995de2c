//! Recorded venue data for replay: the frame type every mock plays, and the JSONL reader.

use std::path::Path;

use serde_json::Value;
use thiserror::Error;

/// A corpus that could not be loaded.
#[derive(Debug, Error)]
pub enum CorpusError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not JSON.
    #[error("{path}:{line}: not JSON: {source}")]
    Json {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// Why.
        source: serde_json::Error,
    },
}

/// One recorded WebSocket frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The subscription key that selects it (venue-defined, e.g. `btcusdt@depth`).
    pub key: String,
    /// Venue symbol.
    pub symbol: String,
    /// The full frame as recorded.
    pub value: Value,
    /// Event time, ms (for pacing).
    pub time_ms: i64,
}

/// Index of `frame` in `frames`, when it is one of its elements (by address: mocks are handed
/// their own frames back).
pub fn index_in(frames: &[Frame], frame: &Frame) -> Option<usize> {
    let size = std::mem::size_of::<Frame>().max(1);
    let base = frames.as_ptr() as usize;
    let at = (frame as *const Frame as usize).checked_sub(base)?;
    (at % size == 0 && at / size < frames.len()).then_some(at / size)
}

/// Reads a JSONL file: one JSON value per non-empty line.
pub fn read(path: &Path) -> Result<Vec<Value>, CorpusError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Io {
        path: p.clone(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| CorpusError::Json {
                path: p.clone(),
                line: i + 1,
                source,
            })
        })
        .collect()
}
