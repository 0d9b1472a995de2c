//! Messages to the venue (subscribes, resubscribes), paced at the venue's message rate and,
//! where it has one, its hourly quota per connection (OKX: 480 subscribe messages an hour):
//! the frame loop sends the next one when [`Outbox::due`] comes, so pacing never holds up
//! reading, heartbeats or stop.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::venues::Limits;

const HOUR: Duration = Duration::from_secs(3600);

/// Messages waiting to go out on one connection.
#[derive(Debug)]
pub(super) struct Outbox {
    queue: VecDeque<String>,
    spacing: Duration,
    next_at: Instant,
    per_hour: Option<u32>,
    /// Send times within the last hour (kept only when there is an hourly quota).
    sent: VecDeque<Instant>,
}

impl Outbox {
    /// An empty outbox for a venue with `limits`.
    pub fn new(limits: &Limits) -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            spacing: Duration::from_secs(1) / limits.max_messages_per_second.max(1),
            next_at: Instant::now(),
            per_hour: limits.subscribe_messages_per_hour,
            sent: VecDeque::new(),
        }
    }

    /// Queues messages, in order.
    pub fn extend(&mut self, msgs: impl IntoIterator<Item = String>) {
        self.queue.extend(msgs);
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Messages waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// When the next message may go: after the rate's spacing, and when the hourly quota is
    /// spent, an hour after the oldest send of the window.
    pub fn due(&self) -> Instant {
        let quota = match self.per_hour {
            Some(n) if self.sent.len() >= n as usize => {
                self.sent.front().map_or(self.next_at, |t| *t + HOUR)
            }
            _ => self.next_at,
        };
        quota.max(self.next_at)
    }

    /// The next message, if it is due at `now` (its send is counted).
    pub fn pop(&mut self, now: Instant) -> Option<String> {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            self.sent.pop_front();
        }
        if self.queue.is_empty() || now < self.due() {
            return None;
        }
        let msg = self.queue.pop_front()?;
        self.next_at = now + self.spacing;
        if self.per_hour.is_some() {
            self.sent.push_back(now);
        }
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: u32, per_hour: Option<u32>) -> Limits {
        Limits {
            max_messages_per_second: per_second,
            subscribe_messages_per_hour: per_hour,
            ..Limits::BASE
        }
    }

    #[test]
    fn messages_go_at_the_venue_rate() {
        let mut o = Outbox::new(&limits(4, None));
        o.extend(["a".to_string(), "b".to_string()]);
        let t0 = Instant::now();
        assert_eq!(o.pop(t0).as_deref(), Some("a"));
        assert_eq!(o.pop(t0 + Duration::from_millis(100)), None, "250 ms apart");
        assert_eq!(o.due(), t0 + Duration::from_millis(250));
        assert_eq!(o.pop(t0 + Duration::from_millis(250)).as_deref(), Some("b"));
        assert!(o.is_empty());
    }

    #[test]
    fn the_hourly_quota_holds_messages_for_the_rest_of_the_hour() {
        let mut o = Outbox::new(&limits(100, Some(3)));
        o.extend((0..5).map(|i| i.to_string()));
        let t0 = Instant::now();
        for i in 0..3 {
            let at = t0 + Duration::from_millis(10 * i);
            assert_eq!(o.pop(at), Some(i.to_string()));
        }
        let soon = t0 + Duration::from_secs(60);
        assert_eq!(o.pop(soon), None, "the quota of 3 is spent");
        assert_eq!(o.due(), t0 + HOUR);
        assert_eq!(o.pop(t0 + HOUR).as_deref(), Some("3"));
        assert_eq!(o.len(), 1);
    }
}
