//! Bounded backpressure, then explicit load shedding. While Kafka takes records, a feed waits
//! for room (reading pauses). When no answer has come for `shed_after`, or a record is
//! nacked, the feed sheds: it keeps reading (books stay exact locally), sends one probe record
//! at a time, and counts every record it drops, per data type. The first Ack ends it: one
//! `FeedEvent` states the interval whose data may be missing and what was lost, and every book
//! with a lost record resyncs (a fresh full `Level2Book` follows).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::producer::{Payload, ProduceEvent};
use crate::schema::v2beta1::feed_event::Kind;
use crate::schema::{DataType, Normalized};

/// How often a shedding feed lets one record through to learn whether Kafka is back.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// What a sent record leaves behind until it is answered.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// Its data type (metric label).
    pub data_type: &'static str,
    /// Its data type, for a typed record.
    pub kind: Option<DataType>,
    /// When its message was received, µs since the epoch (0 for a record not typed here).
    pub receipt_us: i64,
    /// The symbol, for book records (a lost one means the book must resync); shared with an
    /// encoded record's, not copied.
    pub book: Option<Arc<str>>,
    /// When it was sent, µs since the epoch.
    pub at_us: i64,
    /// For a `RECORD_LOST` announcement, the start of the interval it announces: if it is
    /// lost too, the next announcement must reach back to there.
    pub covers_since_us: Option<i64>,
}

impl Sent {
    /// What to remember of `r`, sent at `at_us`.
    pub fn of(r: &ProduceEvent, at_us: i64) -> Sent {
        let announced = match &r.payload {
            Payload::Typed(n) => match n.as_ref() {
                Normalized::FeedEvent(e) if e.kind == Kind::RecordLost as i32 => Some(e),
                _ => None,
            },
            _ => None,
        };
        let book_record = matches!(
            r.payload.data_type(),
            Some(DataType::Level2Delta | DataType::Level2Book)
        );
        // A lost per-book announcement counts for its book like a lost book record.
        let book =
            (book_record || announced.is_some_and(|e| !e.symbol.is_empty())).then(|| {
                match &r.payload {
                    Payload::Normalized(e) => Arc::clone(&e.symbol),
                    p => Arc::from(p.symbol()),
                }
            });
        let (kind, receipt_us) = r
            .payload
            .times()
            .map_or((None, 0), |(dt, _, receipt)| (Some(dt), receipt));
        Sent {
            data_type: r.payload.data_type_name(),
            kind,
            receipt_us,
            book,
            at_us,
            covers_since_us: announced.and_then(|e| e.since),
        }
    }
}

/// Why a record was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// Answered with a Nack.
    Nacked,
    /// Not sent: the feed was shedding.
    Shed,
}

impl Cause {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Nacked => "nacked",
            Cause::Shed => "shed",
        }
    }
}

/// One episode of loss, from its first lost record until an Ack.
#[derive(Debug, Default)]
pub struct Episode {
    /// Start of the interval whose data may be missing, µs.
    pub since_us: i64,
    /// Lost records per (data type, cause).
    pub lost: BTreeMap<(&'static str, Cause), u64>,
    /// Books that lost a record.
    pub books: BTreeSet<String>,
}

impl Episode {
    /// "1200 level2_delta shed, 3 trade nacked", for the announcement.
    pub fn summary(&self) -> String {
        let total: u64 = self.lost.values().sum();
        let parts: Vec<String> = self
            .lost
            .iter()
            .map(|((dt, cause), n)| format!("{n} {dt} {}", cause.as_str()))
            .collect();
        format!("{total} records not stored ({})", parts.join(", "))
    }
}

/// The feed's delivery state, kept across its connections.
#[derive(Debug)]
pub struct Outage {
    shed_after: Duration,
    /// The last answer (or when records started waiting): a stall is measured from here.
    last_answer: Instant,
    /// µs of the last Ack: where an interval found by a stall starts.
    last_ack_us: i64,
    shedding: Option<Episode>,
    next_probe: Instant,
}

impl Outage {
    /// Sheds after `shed_after` without an answer.
    pub fn new(shed_after: Duration, now_us: i64) -> Outage {
        Outage {
            shed_after,
            last_answer: Instant::now(),
            last_ack_us: now_us,
            shedding: None,
            next_probe: Instant::now(),
        }
    }

    /// Whether the feed is shedding.
    pub fn shedding(&self) -> bool {
        self.shedding.is_some()
    }

    /// Records start waiting (nothing was pending): the stall clock starts now.
    pub fn waiting(&mut self) {
        self.last_answer = Instant::now();
    }

    /// Nothing was answered for `shed_after` while records waited: start shedding. The
    /// interval starts at the last Ack (what was sent since may be lost).
    pub fn stalled(&mut self) {
        if self.shedding.is_none() && self.last_answer.elapsed() >= self.shed_after {
            tracing::warn!(
                after = ?self.shed_after,
                "no answer from Kafka; shedding load until it takes records again"
            );
            self.start(self.last_ack_us);
        }
    }

    /// Records could not even be queued for `shed_after` (measured by the caller): start
    /// shedding now.
    pub fn stalled_now(&mut self) {
        if self.shedding.is_none() {
            tracing::warn!(
                after = ?self.shed_after,
                "no room in the producer queue; shedding load until Kafka takes records again"
            );
            self.start(self.last_ack_us);
        }
    }

    fn start(&mut self, since_us: i64) -> &mut Episode {
        self.next_probe = Instant::now();
        self.shedding.get_or_insert_with(|| Episode {
            since_us,
            ..Episode::default()
        })
    }

    /// Whether the next record may go out as a probe (one at a time, `PROBE_EVERY` apart).
    pub fn probe_now(&mut self, pending: usize) -> bool {
        let now = Instant::now();
        if pending == 0 && now >= self.next_probe {
            self.next_probe = now + PROBE_EVERY;
            true
        } else {
            false
        }
    }

    /// Counts `sent` as lost for `cause`; a Nack starts shedding (from its send time).
    pub fn lost(&mut self, sent: &Sent, cause: Cause) {
        let ep = self.start(sent.at_us);
        // A lost announcement's interval is not announced yet: the next one covers it too.
        ep.since_us = ep
            .since_us
            .min(sent.at_us)
            .min(sent.covers_since_us.unwrap_or(i64::MAX));
        *ep.lost.entry((sent.data_type, cause)).or_default() += 1;
        if let Some(s) = &sent.book {
            if !ep.books.contains(&**s) {
                ep.books.insert(s.to_string());
            }
        }
    }

    /// Keeps an episode that ended as a connection closed: the next connection announces it
    /// at its first Ack (probing until then).
    pub fn carry(&mut self, ep: Episode) {
        self.shedding = Some(ep);
    }

    /// A record was answered (`acked`, at `now_us`). An Ack ends an episode, returned for
    /// the announcement.
    pub fn answered(&mut self, acked: bool, now_us: i64) -> Option<Episode> {
        self.last_answer = Instant::now();
        if !acked {
            return None;
        }
        self.last_ack_us = now_us;
        self.shedding.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(dt: &'static str, book: Option<&str>, at: i64) -> Sent {
        Sent {
            data_type: dt,
            book: book.map(Arc::from),
            at_us: at,
            ..Default::default()
        }
    }

    /// An episode whose announcement is itself nacked: the next episode announces from the
    /// first one's start, not from when the announcement was sent (a broker restarted empty
    /// can take the first records after it and lose them again).
    #[test]
    fn a_lost_announcement_is_announced_again_from_its_own_start() {
        let mut o = Outage::new(Duration::from_secs(5), 100);
        o.lost(
            &sent("level2_delta", Some("BTC-USDT"), 2_000),
            Cause::Nacked,
        );
        let ep = o.answered(true, 4_000).expect("ended");
        assert_eq!(ep.since_us, 2_000);
        // The announcement goes out at 4 100 and is nacked.
        let mut ev = crate::schema::FeedEvent {
            kind: Kind::RecordLost as i32,
            symbol: "BTC-USDT".into(),
            since: Some(ep.since_us),
            ..Default::default()
        };
        ev.exchange = "BINANCE".into();
        let r = ProduceEvent::typed(Normalized::FeedEvent(ev));
        let announcement = Sent::of(&r, 4_100);
        assert_eq!(announcement.covers_since_us, Some(2_000));
        o.lost(&announcement, Cause::Nacked);
        let again = o.answered(true, 6_000).expect("ended again");
        assert_eq!(
            again.since_us, 2_000,
            "reaches back to the unannounced start"
        );
        assert_eq!(again.books.iter().collect::<Vec<_>>(), ["BTC-USDT"]);
    }

    #[test]
    fn a_nack_starts_an_episode_that_the_next_ack_ends() {
        let mut o = Outage::new(Duration::from_secs(5), 100);
        assert!(o.answered(true, 1_000).is_none(), "no episode yet");
        o.lost(
            &sent("level2_delta", Some("BTC-USDT"), 2_000),
            Cause::Nacked,
        );
        assert!(o.shedding());
        o.lost(&sent("trade", None, 2_500), Cause::Shed);
        o.lost(&sent("trade", None, 2_600), Cause::Shed);
        assert!(o.answered(false, 3_000).is_none(), "a Nack does not end it");
        let ep = o.answered(true, 4_000).expect("the Ack ends it");
        assert_eq!(ep.since_us, 2_000, "starts at the first lost record");
        assert_eq!(ep.lost[&("level2_delta", Cause::Nacked)], 1);
        assert_eq!(ep.lost[&("trade", Cause::Shed)], 2);
        assert_eq!(ep.books.iter().collect::<Vec<_>>(), ["BTC-USDT"]);
        assert_eq!(
            ep.summary(),
            "3 records not stored (1 level2_delta nacked, 2 trade shed)"
        );
        assert!(!o.shedding());
    }

    #[test]
    fn a_stall_sheds_from_the_last_ack_and_only_after_the_bound() {
        let mut o = Outage::new(Duration::from_millis(30), 0);
        o.answered(true, 5_000);
        o.waiting();
        o.stalled();
        assert!(!o.shedding(), "not before the bound");
        std::thread::sleep(Duration::from_millis(40));
        o.stalled();
        assert!(o.shedding());
        assert!(o.probe_now(0), "the first probe goes at once");
        assert!(!o.probe_now(0), "the next waits");
        assert!(!o.probe_now(1), "never with a record pending");
        let ep = o.answered(true, 9_000).expect("ended");
        assert_eq!(ep.since_us, 5_000, "the interval starts at the last Ack");
        assert!(ep.lost.is_empty());
    }
}
