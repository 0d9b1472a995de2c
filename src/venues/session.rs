//! The per-connection side of a venue: a stateful session built for one WebSocket connection
//! (the barter-data `Connector` / NautilusTrader handler model).

use std::time::Duration;

use super::{Channel, ParseError, SymbolMap, VenueEvent};

/// One WebSocket frame as received.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame (compressed or binary-encoded venues).
    Binary(&'a [u8]),
}

/// One channel of one instrument.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// The channel.
    pub channel: Channel,
    /// Normalized symbol.
    pub symbol: String,
    /// The venue's symbol.
    pub venue_symbol: String,
}

/// What a session is built for.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The subscriptions this connection carries.
    pub subscriptions: Vec<Subscription>,
    /// Venue symbol → normalized symbol of every subscribed instrument.
    pub symbols: SymbolMap,
    /// Levels per side of subscribed books (venues whose book channel takes a depth).
    pub book_depth: u32,
    /// The WebSocket base URL this connection uses (a venue may pick its API version from
    /// it); empty when not known.
    pub ws_url: String,
}

/// The state of one connection. Built by [`super::Venue::session`]; the feed loop owns it
/// and calls it from one task.
pub trait VenueSession: Send {
    /// Path and query appended to the WebSocket base URL (`/stream`, `/v2`, …).
    fn path(&self) -> String;

    /// Subscribe messages for every subscription, in sending order, batched within the
    /// venue's per-message limit. The feed loop paces them at the venue's message rate.
    fn subscribe(&mut self) -> Vec<String>;

    /// Subscriptions (or subscribe messages) sent and not yet confirmed by the venue.
    fn unconfirmed(&self) -> usize;

    /// How long the venue may take to confirm every subscription.
    fn subscribe_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    /// The period of the venue's application heartbeat, when it wants one from the client.
    fn heartbeat_interval(&self) -> Option<Duration> {
        None
    }

    /// The heartbeat message to send now (Kraken `{"method":"ping"}`, OKX `ping`, …).
    fn heartbeat(&mut self) -> Option<String> {
        None
    }

    /// Takes one frame: records, diffs, in-band snapshots, messages to send back
    /// ([`VenueEvent::Send`]) go to `out`.
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        receipt_us: i64,
        out: &mut Vec<VenueEvent>,
    ) -> Result<(), ParseError>;

    /// Messages that make the venue send a fresh in-band snapshot of `symbol`'s book
    /// (unsubscribe + subscribe); empty for venues whose snapshots come over REST.
    fn resubscribe_book(&mut self, symbol: &str) -> Vec<String> {
        let _ = symbol;
        Vec::new()
    }

    /// Messages that unsubscribe and subscribe one stream again (a stream that ticks by design
    /// went silent). Default: the book's resubscribe for depth, nothing for other channels —
    /// the feed then recycles the connection.
    fn resubscribe(&mut self, sub: &Subscription) -> Vec<String> {
        if sub.channel == Channel::Depth {
            self.resubscribe_book(&sub.symbol)
        } else {
            Vec::new()
        }
    }
}
