//! A venue's connection-rate budget: new WebSocket connections per second and per hour per IP
//! (OKX 3 per second, BitMEX 60 per hour), one [`ConnectBudget`] per venue shared by every
//! feed of it in the process (like the REST budget). A connection attempt that would exceed a
//! quota waits for it; it never fails.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Token buckets of new connections: each quota allows its whole figure at once (the burst)
/// and refills evenly over its period.
#[derive(Debug)]
pub struct ConnectBudget {
    /// (period name for the log, limiter), strictest period first.
    limiters: Vec<(&'static str, DefaultDirectRateLimiter)>,
}

impl ConnectBudget {
    /// A budget of at most `per_second` and `per_hour` new connections (`None`: no cap of
    /// that period; zero is treated as 1).
    pub fn new(per_second: Option<u32>, per_hour: Option<u32>) -> ConnectBudget {
        let n = |v: u32| NonZeroU32::new(v.max(1)).unwrap_or(NonZeroU32::MIN);
        let mut limiters = Vec::new();
        if let Some(s) = per_second {
            limiters.push(("second", RateLimiter::direct(Quota::per_second(n(s)))));
        }
        if let Some(h) = per_hour {
            limiters.push(("hour", RateLimiter::direct(Quota::per_hour(n(h)))));
        }
        ConnectBudget { limiters }
    }

    /// Whether any quota applies.
    pub fn is_limited(&self) -> bool {
        !self.limiters.is_empty()
    }

    /// Waits until one more connection fits every quota, and takes it. Before waiting,
    /// `announce` is called once with the quota's period and the expected wait. Returns how
    /// long it waited.
    pub async fn acquire(&self, announce: impl FnOnce(&'static str, Duration)) -> Duration {
        let started = Instant::now();
        let mut announce = Some(announce);
        for (period, limiter) in &self.limiters {
            if let Err(not_until) = limiter.check() {
                if let Some(a) = announce.take() {
                    a(
                        period,
                        not_until.wait_time_from(DefaultClock::default().now()),
                    );
                }
                limiter.until_ready().await;
            }
        }
        started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn n_connects_at_k_per_second_take_at_least_n_minus_k_over_k_seconds() {
        // 3 per second (OKX): 9 attempts at once → the first 3 at once, then one every
        // 1/3 s: the 9th after 6/3 = 2 s.
        let budget = ConnectBudget::new(Some(3), None);
        let started = Instant::now();
        let mut announced = 0;
        for _ in 0..9 {
            budget.acquire(|_, _| announced += 1).await;
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1_950), "{took:?}");
        assert!(took < Duration::from_millis(2_600), "{took:?}");
        assert_eq!(announced, 6, "each waiting attempt announced once");
    }

    #[tokio::test]
    async fn an_hourly_quota_lets_its_burst_through_then_makes_the_next_wait() {
        let budget = ConnectBudget::new(None, Some(2));
        let started = Instant::now();
        budget.acquire(|_, _| panic!("no wait")).await;
        budget.acquire(|_, _| panic!("no wait")).await;
        assert!(started.elapsed() < Duration::from_millis(100));
        let mut expected = None;
        let third = tokio::time::timeout(
            Duration::from_millis(300),
            budget.acquire(|period, wait| expected = Some((period, wait))),
        )
        .await;
        assert!(third.is_err(), "the third connect of the hour waits");
        // 2 per hour refill one every 30 min.
        let (period, wait) = expected.unwrap_or(("none", Duration::ZERO));
        assert_eq!(period, "hour");
        assert!(wait > Duration::from_secs(29 * 60), "{wait:?}");
    }

    #[tokio::test]
    async fn no_quota_never_waits() {
        let budget = ConnectBudget::new(None, None);
        assert!(!budget.is_limited());
        for _ in 0..100 {
            budget.acquire(|_, _| panic!("no wait")).await;
        }
    }
}
