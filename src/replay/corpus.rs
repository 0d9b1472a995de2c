//! Recorded venue data for replay: WebSocket frames merged in event-time order, REST depth
//! snapshots by symbol (from the fixtures' MANIFEST.tsv provenance), open interest by symbol.

use std::collections::HashMap;
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
    /// `symbol@kind` key used for subscription matching (e.g. `btcusdt@depth`).
    pub key: String,
    /// Uppercase venue symbol.
    pub symbol: String,
    /// The full frame (`{"stream":…,"data":…}`).
    pub value: Value,
    /// Event time, ms (for pacing).
    pub time_ms: i64,
}

/// Everything a replay server of one market serves.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Frames in replay order.
    pub frames: Vec<Frame>,
    /// REST depth snapshot by venue symbol.
    pub snapshots: HashMap<String, Value>,
    /// Open interest by venue symbol.
    pub open_interest: HashMap<String, String>,
}

/// `btcusdt@markPrice@1s` → `btcusdt@markPrice`; `nknusdt@depth@100ms` → `nknusdt@depth`.
pub fn stream_key(stream: &str) -> String {
    let mut parts = stream.split('@');
    let sym = parts.next().unwrap_or_default().to_ascii_lowercase();
    let kind = parts.next().unwrap_or_default();
    format!("{sym}@{kind}")
}

fn read(path: &Path) -> Result<Vec<Value>, CorpusError> {
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

impl Corpus {
    /// Loads the files of one market from `dir`: `<prefix>*.jsonl` WebSocket captures,
    /// `<prefix>depth_snapshot_rest.jsonl` and `<prefix>openInterest.jsonl`.
    /// `prefix` is `binance_` for spot (excluding `binance_futures_`) or `binance_futures_`.
    pub fn load(dir: &Path, prefix: &str, exclude: Option<&str>) -> Result<Corpus, CorpusError> {
        let io = |source| CorpusError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".jsonl"))
            .filter(|n| exclude.is_none_or(|x| !n.starts_with(x)))
            .filter(|n| !n.contains("_cmp_"))
            .collect();
        names.sort();
        let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap_or_default();
        let mut corpus = Corpus::default();
        for name in names {
            let values = read(&dir.join(&name))?;
            if name.ends_with("depth_snapshot_rest.jsonl") {
                // The symbol of each snapshot line is in its provenance note.
                let syms = manifest
                    .lines()
                    .filter(|l| l.starts_with(&format!("{name}\t")))
                    .filter_map(|l| l.split("symbol=").nth(1)?.split(['&', '\t']).next());
                for (sym, v) in syms.zip(values) {
                    corpus.snapshots.insert(sym.to_string(), v);
                }
                continue;
            }
            let mut last_time = 0;
            for v in values {
                let data = v.get("data").cloned().unwrap_or(Value::Null);
                if name.ends_with("openInterest.jsonl") {
                    if let (Some(s), Some(oi)) =
                        (data["symbol"].as_str(), data["openInterest"].as_str())
                    {
                        corpus.open_interest.insert(s.to_string(), oi.to_string());
                    }
                    continue;
                }
                let Some(stream) = v["stream"].as_str() else {
                    continue;
                };
                let symbol = data["s"]
                    .as_str()
                    .or(data["o"]["s"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let time_ms = data["E"]
                    .as_i64()
                    .or(data["T"].as_i64())
                    .unwrap_or(last_time);
                last_time = time_ms;
                corpus.frames.push(Frame {
                    key: stream_key(stream),
                    symbol,
                    value: v,
                    time_ms,
                });
            }
        }
        // Merge the channels by event time; frames without one keep their file order.
        corpus.frames.sort_by_key(|f| f.time_ms);
        Ok(corpus)
    }

    /// Per-symbol id shift between loops: the first diff of the next loop must continue the
    /// last of this one (spot: `U' = last u + 1`; USD-M: `pu' = last u`).
    pub fn id_spans(&self) -> HashMap<String, i64> {
        // (first U, first pu, highest u) per symbol.
        let mut seen: HashMap<String, (i64, Option<i64>, i64)> = HashMap::new();
        for f in &self.frames {
            let d = &f.value["data"];
            if let (Some(u0), Some(u1)) = (d["U"].as_i64(), d["u"].as_i64()) {
                let e = seen
                    .entry(f.symbol.clone())
                    .or_insert((u0, d["pu"].as_i64(), u1));
                e.2 = e.2.max(u1);
            }
        }
        seen.into_iter()
            .map(|(s, (first, pu, hi))| (s, hi - pu.unwrap_or(first - 1)))
            .collect()
    }

    /// Time span of the frames, ms.
    pub fn time_span(&self) -> i64 {
        match (self.frames.first(), self.frames.last()) {
            (Some(a), Some(b)) => b.time_ms - a.time_ms + 1,
            _ => 1,
        }
    }
}

/// Shifts the ids and times of a frame for loop number `k` (0 = as recorded).
pub fn shifted(frame: &Frame, k: i64, id_span: i64, time_span: i64) -> Value {
    if k == 0 {
        return frame.value.clone();
    }
    let mut v = frame.value.clone();
    if let Some(d) = v.get_mut("data").and_then(Value::as_object_mut) {
        for key in ["U", "u", "pu"] {
            if let Some(x) = d.get(key).and_then(Value::as_i64) {
                d.insert(key.into(), (x + k * id_span).into());
            }
        }
        for key in ["t", "a", "f", "l"] {
            if let Some(x) = d.get(key).and_then(Value::as_i64) {
                d.insert(key.into(), (x + k * 1_000_000_000).into());
            }
        }
        for key in ["E", "T"] {
            if let Some(x) = d.get(key).and_then(Value::as_i64) {
                if x > 0 {
                    d.insert(key.into(), (x + k * time_span).into());
                }
            }
        }
    }
    v
}
