//! The periodic REST book audit, for venues whose stream carries no sequence and no checksum
//! (BitMEX `orderBookL2`): every synced book of the connection is compared with the venue's
//! REST book ([`crate::venues::Venue::book_audit_path`]) once per `book_audit_every`, the
//! books taken in turn (one request every `every / books`), fetched one at a time by
//! [`audit_fetcher`] through the venue's shared REST budget, beside the frame loop.
//!
//! **The rule.** The REST book and the stream are not taken at the same instant, so one
//! difference proves nothing. A level (side and exact price) is *divergent* when
//!
//! 1. it differs (quantity, or present on one side only) in two consecutive audits of the
//!    book, with the same local and the same REST quantity both times (the venue did not
//!    change it in between), and
//! 2. the stream did not touch that price from the moment the first audit's request was sent
//!    until the second's answer arrived (the local book did not change it either; an update
//!    the stream delivered late — after the first answer — touches it and clears it).
//!
//! Prices the stream touched while a request was in flight are never counted as differences
//! of that audit. A divergence resyncs the book (and the audit starts over); a failed fetch
//! is counted and retried at the book's next turn, never a resync by itself; a book that
//! resynced while its audit was in flight is skipped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::connect::get_text;
use crate::book::levels::BadDecimal;
use crate::book::{decimal_key, Diff, OrderBook, Side, Snapshot};
use crate::transport::RestClient;
use crate::venues::Venue;

/// Shortest spacing of audit requests, however many books and however short the period.
pub const MIN_SPACING: Duration = Duration::from_millis(50);

/// One level that differs between the kept book and the REST book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The side.
    pub side: Side,
    /// The price as written (the kept book's, else the REST book's).
    pub price: String,
    /// The kept quantity (`None`: no level).
    pub local: Option<String>,
    /// The REST quantity (`None`: no level).
    pub rest: Option<String>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = match self.side {
            Side::Bid => "bid",
            Side::Ask => "ask",
        };
        let q = |q: &Option<String>| q.clone().unwrap_or_else(|| "none".into());
        write!(
            f,
            "{side} {} kept {} REST {}",
            self.price,
            q(&self.local),
            q(&self.rest)
        )
    }
}

/// What one audit concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No difference outside the prices the stream touched meanwhile.
    Agreed,
    /// Differences, none confirmed yet (they are compared again at the next audit).
    Differed(usize),
    /// Levels that differ in two audits in a row with no change between: the book is wrong.
    Diverged(Vec<Difference>),
    /// The book resynced (or broke) while the audit was in flight: nothing concluded.
    Skipped,
}

/// A difference's identity: side, price key, kept and REST quantity keys.
type Key = (Side, i128);
type Values = (Option<i128>, Option<i128>);

#[derive(Debug, Default)]
struct BookAudit {
    /// A request is out and not answered.
    outstanding: bool,
    /// The outstanding request still counts (the book did not resync since it was sent).
    valid: bool,
    /// Prices the stream touched since the outstanding request was sent.
    touched: HashSet<Key>,
    /// Differences of the last audit, each dropped when the stream touches its price.
    suspects: HashMap<Key, Values>,
}

impl BookAudit {
    fn watching(&self) -> bool {
        (self.outstanding && self.valid) || !self.suspects.is_empty()
    }
}

/// The audit state of one connection's books and whose turn it is.
pub(super) struct Auditor {
    every: Option<Duration>,
    order: Vec<String>,
    next: usize,
    books: HashMap<String, BookAudit>,
    requests: Option<mpsc::UnboundedSender<String>>,
}

impl Auditor {
    /// No audits.
    pub fn off() -> Auditor {
        Auditor {
            every: None,
            order: Vec::new(),
            next: 0,
            books: HashMap::new(),
            requests: None,
        }
    }

    /// Audits of `symbols`' books, each once per `every`; requests go to `requests`.
    pub fn new(
        every: Duration,
        symbols: Vec<String>,
        requests: mpsc::UnboundedSender<String>,
    ) -> Auditor {
        Auditor {
            every: Some(every),
            books: symbols
                .iter()
                .map(|s| (s.clone(), BookAudit::default()))
                .collect(),
            order: symbols,
            next: 0,
            requests: Some(requests),
        }
    }

    /// Whether audits run on this connection.
    pub fn is_on(&self) -> bool {
        self.every.is_some() && !self.order.is_empty()
    }

    /// Time between two requests: the period spread over the books (at least
    /// [`MIN_SPACING`]).
    pub fn spacing(&self) -> Duration {
        let n = u32::try_from(self.order.len()).unwrap_or(u32::MAX).max(1);
        self.every
            .map_or(Duration::from_secs(3600), |e| e / n)
            .max(MIN_SPACING)
    }

    /// The next book in turn that is synced (per `synced`) and has no request out: its
    /// request is sent, and its name returned.
    pub fn request_next(&mut self, synced: impl Fn(&str) -> bool) -> Option<String> {
        let n = self.order.len();
        for i in 0..n {
            let idx = (self.next + i) % n;
            let symbol = &self.order[idx];
            let Some(b) = self.books.get_mut(symbol) else {
                continue;
            };
            if b.outstanding || !synced(symbol) {
                continue;
            }
            self.next = (idx + 1) % n;
            b.outstanding = true;
            b.valid = true;
            b.touched.clear();
            let symbol = symbol.clone();
            if let Some(tx) = &self.requests {
                let _ = tx.send(symbol.clone());
            }
            return Some(symbol);
        }
        None
    }

    /// The stream changed `symbol`'s book by `diff`: its prices are noted while a request is
    /// out, and stop being suspects.
    pub fn touched(&mut self, symbol: &str, diff: &Diff) {
        let Some(b) = self.books.get_mut(symbol) else {
            return;
        };
        if !b.watching() {
            return;
        }
        for (side, levels) in [(Side::Bid, &diff.bids), (Side::Ask, &diff.asks)] {
            for (price, _) in levels.iter() {
                // A price the book cannot key never reaches it (the diff is refused).
                let Ok(k) = decimal_key(price) else {
                    continue;
                };
                if b.outstanding && b.valid {
                    b.touched.insert((side, k));
                }
                b.suspects.remove(&(side, k));
            }
        }
    }

    /// `symbol`'s book was replaced or discarded: what its audits saw no longer counts.
    pub fn reset(&mut self, symbol: &str) {
        if let Some(b) = self.books.get_mut(symbol) {
            b.valid = false;
            b.touched.clear();
            b.suspects.clear();
        }
    }

    /// `symbol`'s request failed: asked again at its next turn; suspects stay (the stream
    /// still clears them).
    pub fn failed(&mut self, symbol: &str) {
        if let Some(b) = self.books.get_mut(symbol) {
            b.outstanding = false;
            b.valid = false;
            b.touched.clear();
        }
    }

    /// `symbol`'s REST book arrived; `local` is the kept book now (`None`: not synced).
    pub fn arrived(
        &mut self,
        symbol: &str,
        local: Option<&OrderBook>,
        rest: &Snapshot,
    ) -> Result<Verdict, BadDecimal> {
        let Some(b) = self.books.get_mut(symbol) else {
            return Ok(Verdict::Skipped);
        };
        let counts = b.outstanding && b.valid;
        b.outstanding = false;
        b.valid = false;
        let touched = std::mem::take(&mut b.touched);
        let Some(local) = local.filter(|_| counts) else {
            b.suspects.clear();
            return Ok(Verdict::Skipped);
        };
        let found = differences(local, rest, &touched)?;
        let confirmed: Vec<Difference> = found
            .iter()
            .filter(|(k, v, _)| b.suspects.get(k) == Some(v))
            .map(|(_, _, d)| d.clone())
            .collect();
        b.suspects = found.iter().map(|(k, v, _)| (*k, *v)).collect();
        Ok(if !confirmed.is_empty() {
            b.suspects.clear();
            Verdict::Diverged(confirmed)
        } else if found.is_empty() {
            Verdict::Agreed
        } else {
            Verdict::Differed(found.len())
        })
    }
}

/// Levels of `local` and `rest` that differ (a zero REST quantity is no level), leaving out
/// prices in `skip`; sorted by side and price.
fn differences(
    local: &OrderBook,
    rest: &Snapshot,
    skip: &HashSet<Key>,
) -> Result<Vec<(Key, Values, Difference)>, BadDecimal> {
    let mut out = Vec::new();
    for (side, levels) in [(Side::Bid, &rest.bids), (Side::Ask, &rest.asks)] {
        let mut theirs: HashMap<i128, (i128, &str, &str)> = HashMap::with_capacity(levels.len());
        for (p, q) in levels {
            let qk = decimal_key(q)?;
            if qk != 0 {
                theirs.insert(decimal_key(p)?, (qk, p.as_str(), q.as_str()));
            }
        }
        for (k, price, q) in local.keyed(side) {
            let qk = decimal_key(q)?;
            let other = theirs.remove(&k);
            if other.is_some_and(|(rq, _, _)| rq == qk) || skip.contains(&(side, k)) {
                continue;
            }
            out.push((
                (side, k),
                (Some(qk), other.map(|o| o.0)),
                Difference {
                    side,
                    price: price.to_string(),
                    local: Some(q.to_string()),
                    rest: other.map(|o| o.2.to_string()),
                },
            ));
        }
        for (k, (qk, price, q)) in theirs {
            if skip.contains(&(side, k)) {
                continue;
            }
            out.push((
                (side, k),
                (None, Some(qk)),
                Difference {
                    side,
                    price: price.to_string(),
                    local: None,
                    rest: Some(q.to_string()),
                },
            ));
        }
    }
    out.sort_by_key(|((side, k), _, _)| (*side == Side::Ask, *k));
    Ok(out)
}

/// Fetches audit books one at a time through the venue's REST budget.
pub(super) struct AuditFetcher {
    pub http: RestClient,
    pub base: String,
    pub venue: Arc<dyn crate::venues::Venue>,
    pub venue_of: HashMap<String, String>,
}

/// Fetches each requested book's REST answer and sends it back (the error's text when it
/// failed).
pub(super) async fn audit_fetcher(
    f: AuditFetcher,
    mut requests: mpsc::UnboundedReceiver<String>,
    results: mpsc::UnboundedSender<(String, Result<Snapshot, String>)>,
) {
    let weight = f.venue.limits().snapshot_weight;
    while let Some(symbol) = requests.recv().await {
        let venue_symbol = f
            .venue_of
            .get(&symbol)
            .map_or(symbol.as_str(), String::as_str);
        let book = match Venue::book_audit_path(f.venue.as_ref(), venue_symbol) {
            None => Err("the venue has no REST book to audit with".to_string()),
            Some(path) => match get_text(&f.http, &format!("{}{path}", f.base), weight).await {
                Ok(body) => f.venue.parse_book_audit(&body).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        if results.send((symbol, book)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> OrderBook {
        let mut b = OrderBook::new();
        for (p, q) in bids {
            b.apply(Side::Bid, p, q).unwrap();
        }
        for (p, q) in asks {
            b.apply(Side::Ask, p, q).unwrap();
        }
        b
    }

    fn snap(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Snapshot {
        let own = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(p, q)| (p.to_string(), q.to_string()))
                .collect()
        };
        Snapshot {
            bids: own(bids),
            asks: own(asks),
            ..Snapshot::default()
        }
    }

    fn diff(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Diff {
        Diff {
            bids: bids.iter().copied().collect(),
            asks: asks.iter().copied().collect(),
            ..Diff::default()
        }
    }

    fn auditor() -> (Auditor, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let a = Auditor::new(
            Duration::from_secs(60),
            vec!["XBTUSD".into(), "ETHUSD".into()],
            tx,
        );
        (a, rx)
    }

    /// One audit of XBTUSD: requested, then answered with `rest` against `local`.
    fn audit(a: &mut Auditor, local: &OrderBook, rest: &Snapshot) -> Verdict {
        assert_eq!(a.request_next(|s| s == "XBTUSD").as_deref(), Some("XBTUSD"));
        a.arrived("XBTUSD", Some(local), rest).unwrap()
    }

    #[test]
    fn equal_books_agree_whatever_the_digits() {
        let (mut a, mut rx) = auditor();
        let local = book(&[("36145", "136")], &[("36760.5", "38760")]);
        let rest = snap(
            &[("36145.0", "136")],
            &[("36760.50", "38760"), ("36800", "0")],
        );
        assert_eq!(audit(&mut a, &local, &rest), Verdict::Agreed);
        assert_eq!(rx.try_recv().ok().as_deref(), Some("XBTUSD"));
    }

    #[test]
    fn a_level_wrong_in_two_audits_with_no_update_between_diverges() {
        let (mut a, _rx) = auditor();
        // The kept book lost the bid at 36140 (200 contracts) the venue holds.
        let local = book(&[("36145", "136")], &[("36760.5", "38760")]);
        let rest = snap(
            &[("36145", "136"), ("36140", "200")],
            &[("36760.5", "38760")],
        );
        assert_eq!(audit(&mut a, &local, &rest), Verdict::Differed(1));
        // Updates at other prices do not clear it.
        a.touched("XBTUSD", &diff(&[("36145", "150")], &[("36761", "5")]));
        assert_eq!(
            audit(&mut a, &local, &rest),
            Verdict::Diverged(vec![Difference {
                side: Side::Bid,
                price: "36140".into(),
                local: None,
                rest: Some("200".into()),
            }])
        );
        // After a divergence the rule starts over: one more difference is only a suspicion.
        assert_eq!(audit(&mut a, &local, &rest), Verdict::Differed(1));
    }

    #[test]
    fn a_single_transient_difference_is_no_divergence() {
        let (mut a, _rx) = auditor();
        let local = book(&[("36145", "136")], &[("36760.5", "38760")]);
        // The REST book is ahead: the ask was already 100.
        let ahead = snap(&[("36145", "136")], &[("36760.5", "100")]);
        assert_eq!(audit(&mut a, &local, &ahead), Verdict::Differed(1));
        // The stream delivers the change after the first answer: the suspect is cleared.
        a.touched("XBTUSD", &diff(&[], &[("36760.5", "100")]));
        let local = book(&[("36145", "136")], &[("36760.5", "100")]);
        assert_eq!(audit(&mut a, &local, &ahead), Verdict::Agreed);
    }

    #[test]
    fn a_price_touched_between_the_audits_is_not_confirmed_even_if_it_differs_again() {
        let (mut a, _rx) = auditor();
        let local = book(&[("36145", "136")], &[]);
        let rest = snap(&[("36145", "99")], &[]);
        assert_eq!(audit(&mut a, &local, &rest), Verdict::Differed(1));
        // The stream set the level again (to the same value): a change the REST book may
        // not show yet; the difference starts over as a suspicion.
        a.touched("XBTUSD", &diff(&[("36145", "136")], &[]));
        assert_eq!(audit(&mut a, &local, &rest), Verdict::Differed(1));
        assert!(matches!(audit(&mut a, &local, &rest), Verdict::Diverged(_)));
    }

    #[test]
    fn a_venue_change_between_the_audits_is_not_confirmed() {
        let (mut a, _rx) = auditor();
        let local = book(&[("36145", "136")], &[]);
        assert_eq!(
            audit(&mut a, &local, &snap(&[("36145", "99")], &[])),
            Verdict::Differed(1)
        );
        // The REST quantity changed: not the same difference twice.
        assert_eq!(
            audit(&mut a, &local, &snap(&[("36145", "98")], &[])),
            Verdict::Differed(1)
        );
    }

    #[test]
    fn prices_touched_while_the_request_is_in_flight_are_left_out() {
        let (mut a, _rx) = auditor();
        let local = book(&[("36145", "136")], &[]);
        let rest = snap(&[("36145", "1")], &[]);
        for _ in 0..3 {
            assert_eq!(a.request_next(|_| true).as_deref(), Some("XBTUSD"));
            a.touched("XBTUSD", &diff(&[("36145", "136")], &[]));
            assert_eq!(
                a.arrived("XBTUSD", Some(&local), &rest).unwrap(),
                Verdict::Agreed
            );
            // ETHUSD's turn in between.
            assert_eq!(a.request_next(|_| true).as_deref(), Some("ETHUSD"));
            a.failed("ETHUSD");
        }
    }

    #[test]
    fn a_resync_in_flight_skips_the_audit_and_forgets_suspects() {
        let (mut a, _rx) = auditor();
        let local = book(&[("36145", "136")], &[]);
        let rest = snap(&[("36145", "99")], &[]);
        assert_eq!(audit(&mut a, &local, &rest), Verdict::Differed(1));
        assert_eq!(a.request_next(|s| s == "XBTUSD").as_deref(), Some("XBTUSD"));
        a.reset("XBTUSD");
        assert_eq!(
            a.arrived("XBTUSD", Some(&local), &rest).unwrap(),
            Verdict::Skipped
        );
        assert_eq!(audit(&mut a, &local, &rest), Verdict::Differed(1));
    }

    #[test]
    fn a_failed_fetch_is_retried_and_never_a_verdict() {
        let (mut a, mut rx) = auditor();
        let local = book(&[("36145", "136")], &[]);
        let rest = snap(&[("36145", "99")], &[]);
        assert_eq!(audit(&mut a, &local, &rest), Verdict::Differed(1));
        assert_eq!(a.request_next(|s| s == "XBTUSD").as_deref(), Some("XBTUSD"));
        // While it is out, it is not asked again.
        assert_eq!(a.request_next(|s| s == "XBTUSD"), None);
        a.failed("XBTUSD");
        // The suspect survives the failure: the next good audit confirms it.
        assert!(matches!(audit(&mut a, &local, &rest), Verdict::Diverged(_)));
        let sent: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(sent, ["XBTUSD", "XBTUSD", "XBTUSD"]);
    }

    #[test]
    fn books_take_turns_and_unsynced_ones_wait() {
        let (mut a, _rx) = auditor();
        assert_eq!(a.spacing(), Duration::from_secs(30));
        assert_eq!(a.request_next(|_| false), None);
        assert_eq!(a.request_next(|_| true).as_deref(), Some("XBTUSD"));
        assert_eq!(a.request_next(|_| true).as_deref(), Some("ETHUSD"));
        assert_eq!(a.request_next(|_| true), None, "both out");
    }
}
