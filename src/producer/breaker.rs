//! A consecutive-failure circuit breaker: closed → open after N failures in a row → after a
//! cool-down one probe is let through (half-open) → closed on success, open again on failure.

use std::time::{Duration, Instant};

/// Breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// One probe is in progress; other calls are refused.
    HalfOpen,
    /// Calls are refused until the cool-down ends.
    Open,
}

impl State {
    /// Gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        }
    }
}

/// A circuit breaker for one dependency.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    state: State,
    opened_at: Option<Instant>,
}

impl Breaker {
    /// Opens after `threshold` consecutive failures; probes after `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            state: State::Closed,
            opened_at: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a call may go ahead now. An open breaker past its cool-down lets this one call
    /// through as the probe and becomes half-open.
    pub fn allow(&mut self) -> bool {
        match self.state {
            State::Closed => true,
            State::HalfOpen => false,
            State::Open => {
                if self.opened_at.is_some_and(|t| t.elapsed() >= self.cooldown) {
                    self.state = State::HalfOpen;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Records a success: closes the breaker.
    pub fn success(&mut self) {
        self.failures = 0;
        self.state = State::Closed;
        self.opened_at = None;
    }

    /// Records a failure: opens after the threshold, or at once when probing.
    pub fn failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
        if self.state == State::HalfOpen || self.failures >= self.threshold {
            self.state = State::Open;
            self.opened_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let mut b = Breaker::new(3, Duration::from_millis(30));
        for _ in 0..2 {
            assert!(b.allow());
            b.failure();
        }
        assert_eq!(b.state(), State::Closed);
        b.failure();
        assert_eq!(b.state(), State::Open);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "probe after cool-down");
        assert_eq!(b.state(), State::HalfOpen);
        assert!(!b.allow(), "only one probe at a time");
        b.failure();
        assert_eq!(b.state(), State::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.success();
        assert_eq!(b.state(), State::Closed);
        assert!(b.allow());
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut b = Breaker::new(2, Duration::from_secs(60));
        b.failure();
        b.success();
        b.failure();
        assert_eq!(b.state(), State::Closed);
    }
}
