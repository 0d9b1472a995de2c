//! A registered venue with test-only faults ([`Tweaks`]): every `Venue` and `VenueSession`
//! method delegates to the real one, except what a tweak changes. Shared by the feed tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tickflow::book::{Sequencer, Snapshot};
use tickflow::venues::{
    Channel, Frame, Instrument, InstrumentKind, Limits, ParseError, SessionSpec, Subscription,
    Venue, VenueEvent, VenueSession,
};

/// What a [`Tweaked`] venue changes in the real one it wraps (test-only faults).
#[derive(Debug, Default, Clone)]
pub struct Tweaks {
    /// The first in-band snapshot of this symbol is lost (as if a parse error ate it).
    pub lose_first_snapshot_of: Option<&'static str>,
    /// After this many frames the session reports a connection-wide break, once.
    pub resync_after_frames: Option<u64>,
    /// The client heartbeat period.
    pub heartbeat: Option<Duration>,
    /// Every session after the first `n` panics when built (a feed task that dies).
    pub panic_sessions_before: Option<usize>,
    /// The channel said to tick by design, and its period.
    pub ticks: Option<(Channel, Duration)>,
    /// The venue refuses this symbol's subscription (as a delisted instrument's), once.
    pub refuse: Option<&'static str>,
    /// A book resubscribe is one message of this many bytes (a send that fails).
    pub resubscribe_bytes: Option<usize>,
}

/// A registered venue with [`Tweaks`].
#[derive(Debug)]
pub struct Tweaked {
    inner: Box<dyn Venue>,
    tweaks: Tweaks,
    /// Snapshots lost so far, shared by every session.
    pub lost: Arc<AtomicUsize>,
    /// Sessions built so far.
    pub sessions: Arc<AtomicUsize>,
}

impl Tweaked {
    /// The registered venue `name` with `tweaks`.
    pub fn new(name: &str, tweaks: Tweaks) -> Arc<Tweaked> {
        Arc::new(Tweaked {
            inner: tickflow::venues::by_name(name).unwrap(),
            tweaks,
            lost: Arc::new(AtomicUsize::new(0)),
            sessions: Arc::new(AtomicUsize::new(0)),
        })
    }
}

impl Venue for Tweaked {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn exchange(&self) -> &'static str {
        self.inner.exchange()
    }
    fn default_ws_url(&self) -> &'static str {
        self.inner.default_ws_url()
    }
    fn default_rest_url(&self) -> Option<&'static str> {
        self.inner.default_rest_url()
    }
    fn channels(&self) -> &'static [Channel] {
        self.inner.channels()
    }
    fn instrument_kinds(&self) -> &'static [InstrumentKind] {
        self.inner.instrument_kinds()
    }
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    fn venue_symbol(&self, instrument: &Instrument) -> String {
        self.inner.venue_symbol(instrument)
    }
    fn instruments_path(&self) -> Option<&'static str> {
        self.inner.instruments_path()
    }
    fn parse_instruments(&self, body: &str) -> Result<Vec<(String, String)>, ParseError> {
        self.inner.parse_instruments(body)
    }
    fn sequencer(&self, depth: u32) -> Arc<dyn Sequencer> {
        self.inner.sequencer(depth)
    }
    fn snapshot_path(&self, venue_symbol: &str, limit: u32) -> Option<String> {
        self.inner.snapshot_path(venue_symbol, limit)
    }
    fn parse_snapshot(&self, body: &str) -> Result<Snapshot, ParseError> {
        self.inner.parse_snapshot(body)
    }
    fn ticks_every(&self, channel: Channel) -> Option<Duration> {
        match self.tweaks.ticks {
            Some((c, d)) if c == channel => Some(d),
            _ => self.inner.ticks_every(channel),
        }
    }
    fn session(&self, spec: SessionSpec) -> Box<dyn VenueSession> {
        let built = self.sessions.fetch_add(1, Ordering::SeqCst);
        if self.tweaks.panic_sessions_before.is_some_and(|n| built < n) {
            panic!("injected: session {built} of this venue panics");
        }
        Box::new(TweakedSession {
            inner: self.inner.session(spec),
            tweaks: self.tweaks.clone(),
            lost: self.lost.clone(),
            frames: 0,
        })
    }
}

pub struct TweakedSession {
    inner: Box<dyn VenueSession>,
    tweaks: Tweaks,
    lost: Arc<AtomicUsize>,
    frames: u64,
}

impl VenueSession for TweakedSession {
    fn path(&self) -> String {
        self.inner.path()
    }
    fn subscribe(&mut self) -> Vec<String> {
        self.inner.subscribe()
    }
    fn unconfirmed(&self) -> usize {
        self.inner.unconfirmed()
    }
    fn subscribe_timeout(&self) -> Duration {
        self.inner.subscribe_timeout()
    }
    fn heartbeat_interval(&self) -> Option<Duration> {
        self.tweaks.heartbeat.or(self.inner.heartbeat_interval())
    }
    fn heartbeat(&mut self) -> Option<String> {
        self.inner.heartbeat()
    }
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        receipt_us: i64,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError> {
        self.frames += 1;
        if let Some(symbol) = self.tweaks.refuse {
            if self.frames == 5 && self.lost.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(ParseError::Refused {
                    symbol: symbol.into(),
                    msg: "Currency pair not supported (test)".into(),
                });
            }
        }
        let start = out.len();
        self.inner.on_frame(frame, receipt_us, out)?;
        if let Some(victim) = self.tweaks.lose_first_snapshot_of {
            if self.lost.load(Ordering::SeqCst) == 0 {
                let before = out.len();
                out.retain(
                    |e| !matches!(e, VenueEvent::Snapshot { symbol, .. } if symbol == victim),
                );
                if out.len() < before {
                    self.lost.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        if self.tweaks.resync_after_frames == Some(self.frames) {
            out.insert(
                start,
                VenueEvent::Resync {
                    symbol: None,
                    reason: "connection sequence skipped 41 -> 43 (test)".into(),
                },
            );
        }
        Ok(())
    }
    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        if let Some(n) = self.tweaks.resubscribe_bytes {
            return vec![" ".repeat(n)];
        }
        self.inner.resubscribe_book(symbol)
    }
    fn resubscribe(&mut self, sub: &Subscription) -> Vec<String> {
        self.inner.resubscribe(sub)
    }
}
