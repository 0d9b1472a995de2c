//! What a venue's replay mock tells the generic engine. Each venue implements [`ReplayMock`]
//! in `src/venues/<venue>/replay.rs`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::corpus::Frame;

/// The mock's answer to one client message.
#[derive(Debug, Default)]
pub struct ClientAnswer {
    /// Messages sent back at once (subscription answers, pongs, errors).
    pub replies: Vec<String>,
    /// Subscription keys the message added.
    pub subscribe: Vec<String>,
    /// Subscription keys the message removed.
    pub unsubscribe: Vec<String>,
}

/// A venue's replay behaviour: which recorded frames to play, how clients subscribe, what is
/// sent on subscribing (in-band snapshots), how frames are shifted between loops, and its REST
/// endpoints. Holds whatever state it needs (e.g. the book as played) behind its own locks.
pub trait ReplayMock: Send + Sync + 'static {
    /// The recorded frames in play order; each has the subscription key that selects it.
    fn frames(&self) -> &[Frame];

    /// WebSocket paths the venue serves (`/stream`, `/v2`, …).
    fn ws_paths(&self) -> &'static [&'static str];

    /// Whether a stream subscribed on the WebSocket path `path` plays there (default: every
    /// path plays every stream). A venue that serves stream categories on separate endpoints
    /// (Binance USD-M `/public`, `/market`) says no for the others: the subscription is
    /// acknowledged and nothing is sent, as the venue does.
    fn serves(&self, path: &str, key: &str) -> bool {
        let _ = (path, key);
        true
    }

    /// Subscription keys named in the connect URL's query (Binance `?streams=`).
    fn url_subscriptions(&self, query: &HashMap<String, String>) -> Vec<String> {
        let _ = query;
        Vec::new()
    }

    /// Answers one client text message.
    fn on_client(&self, text: &str) -> ClientAnswer;

    /// Frames sent right after `key` is subscribed (an in-band snapshot of the book as played).
    fn on_subscribed(&self, key: &str) -> Vec<String> {
        let _ = key;
        Vec::new()
    }

    /// Frames sent when loop `k` (> 0) starts, to clients subscribed to `subs`.
    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        let _ = (k, subs);
        Vec::new()
    }

    /// The frame as sent in loop `k` (0 = as recorded; later loops shift ids and times);
    /// `None` when it is not played in that loop.
    fn render(&self, frame: &Frame, k: i64) -> Option<Value>;

    /// Keeps the mock's venue state current with a frame of loop `k` just played (as
    /// rendered). Connections replay at their own pace: a mock places the frame by `k`, not
    /// by the loop the fastest connection has reached.
    fn played(&self, frame: &Frame, value: &Value, k: i64) {
        let _ = (frame, value, k);
    }

    /// The timeline moved past `frame` (of loop `k`) of a stream this client had subscribed and
    /// left (a resubscribe under way): the venue's state moves on regardless, so that the
    /// snapshot sent when it subscribes again includes it.
    fn passed(&self, frame: &Frame, k: i64) {
        let _ = (frame, k);
    }

    /// A message about to be sent as the `n`-th (from 0) of its connection, numbered where the
    /// venue numbers a connection's messages (Coinbase Advanced Trade's `sequence_num`);
    /// unchanged by default.
    fn sequence(&self, text: String, n: u64) -> String {
        let _ = n;
        text
    }

    /// Answers a REST request: status and JSON body, `None` for an unknown path.
    fn rest(&self, path: &str, query: &HashMap<String, String>) -> Option<(u16, String)>;
}
