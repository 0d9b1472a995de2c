//! A price-level order book with exact decimal keys. Levels keep the venue's own digits, so
//! what is emitted is exactly what the venue sent; no float is involved.

use std::collections::hash_map::Entry;
use std::collections::{btree_map, BTreeMap};

use rustc_hash::FxHashMap;

use thiserror::Error;

use crate::schema::borrowed::LevelKey;
use crate::schema::v2beta1::level2_book::PriceLevel;

/// A level the book could not take.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid decimal {0:?} in a book level")]
pub struct BadDecimal(pub String);

/// Book side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy orders, best = highest.
    Bid,
    /// Sell orders, best = lowest.
    Ask,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Level {
    price: String,
    quantity: String,
}

/// A level of an ordered side (the books read in order after every update: top-levels
/// checksums), with its checksum text: [`push_digits`] of its price, then of its quantity,
/// made when a checksum first reads the level and emptied when its text changes, so a side's
/// top text is rebuilt from these and not from the decimals again. Hashed sides keep none.
#[derive(Debug, Clone)]
struct Kept {
    level: Level,
    digits: Vec<u8>,
}

impl Kept {
    /// The checksum text, made when missing (a stored level's quantity is not zero, so its
    /// text is never empty once made).
    fn digits(&mut self) -> &[u8] {
        if self.digits.is_empty() {
            push_digits(&mut self.digits, &self.level.price);
            push_digits(&mut self.digits, &self.level.quantity);
        }
        &self.digits
    }
}

/// One pass over a quantity: `Some(true)` for zero, `Some(false)` for another plain decimal,
/// `None` for anything else.
fn quantity_is_zero(q: &str) -> Option<bool> {
    let (mut dots, mut zero) = (0u8, true);
    for &b in q.as_bytes() {
        match b {
            b'0' => {}
            b'1'..=b'9' => zero = false,
            b'.' => dots += 1,
            _ => return None,
        }
    }
    (!q.is_empty() && dots <= 1 && q != ".").then_some(zero)
}

/// Decimal places of a book key: prices are keyed as exact integers of 10^-18.
pub const KEY_SCALE: u32 = 18;

/// Integer digits a book key holds (leading zeros aside): with [`KEY_SCALE`] places, any price
/// below 10^20 is an exact `i128` (below 10^38 < `i128::MAX` ≈ 1.7·10^38), and its negation
/// too. The one source of truth for what a venue's decimal may be
/// ([`crate::venues::decimal`] refuses more), so a price the frame check accepts is one the book
/// can key.
pub const KEY_INTEGER_DIGITS: u32 = 20;

/// A price as an exact fixed-point integer (units of 10^-[`KEY_SCALE`]): equal prices written
/// with different digits (`"7.609"`, `"7.6090"`) get the same key, and comparing two keys is
/// one integer comparison. Parsed in one pass over plain digits with an optional fraction; a
/// price with more than [`KEY_SCALE`] decimal places, more than [`KEY_INTEGER_DIGITS`] integer
/// digits (leading zeros aside), or not plain digits is refused (typed error, counted), never
/// rounded.
fn key(price: &str) -> Result<i128, BadDecimal> {
    let bad = || BadDecimal(price.to_string());
    // Up to 19 digits fit a u64 (the common case: cheap arithmetic); longer ones go on in i128.
    let (mut small, mut wide): (u64, Option<i128>) = (0, None);
    let (mut scale, mut dot, mut digits) = (0u32, false, 0usize);
    // Integer digits from the first non-zero one.
    let mut integer = 0u32;
    for &c in price.as_bytes() {
        match c {
            b'0'..=b'9' => {
                let d = c - b'0';
                if !dot && (integer > 0 || d > 0) {
                    integer += 1;
                }
                match wide {
                    None if digits < 19 => small = small * 10 + u64::from(d),
                    None => {
                        wide = i128::from(small)
                            .checked_mul(10)
                            .and_then(|m| m.checked_add(i128::from(d)));
                        if wide.is_none() {
                            return Err(bad());
                        }
                    }
                    Some(w) => {
                        wide = Some(
                            w.checked_mul(10)
                                .and_then(|m| m.checked_add(i128::from(d)))
                                .ok_or_else(bad)?,
                        );
                    }
                }
                digits += 1;
                if dot {
                    scale += 1;
                }
            }
            b'.' if !dot && digits > 0 => dot = true,
            _ => return Err(bad()),
        }
    }
    if digits == 0 || (dot && scale == 0) || scale > KEY_SCALE || integer > KEY_INTEGER_DIGITS {
        return Err(bad());
    }
    wide.unwrap_or(i128::from(small))
        .checked_mul(10i128.pow(KEY_SCALE - scale))
        .ok_or_else(bad)
}

/// A decimal (a price or a quantity) as the book's exact key (units of 10^-[`KEY_SCALE`]):
/// `"7.609"` and `"7.6090"` are equal; anything the book would refuse is a [`BadDecimal`].
pub fn decimal_key(text: &str) -> Result<i128, BadDecimal> {
    key(text)
}

/// A side's levels by key, each level held once: hashed (a diff's level is one lookup however
/// deep the book is; order is only needed when a full book is emitted, on sync and every N
/// deltas, so it is sorted then), or ordered, for books read in order after every update
/// (venue checksums over the top levels, depth windows): O(log n) per change instead of a sort
/// per read, and the top levels read straight off the tree.
#[derive(Debug, Clone)]
enum Store {
    Hashed(FxHashMap<i128, Level>),
    Ordered(BTreeMap<i128, Kept>),
}

impl Default for Store {
    fn default() -> Self {
        Store::Hashed(FxHashMap::default())
    }
}

impl PartialEq for Store {
    /// The same levels, however they are stored.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, l)| other.get(k) == Some(l))
    }
}

/// Overwrites a level's text, reusing its buffers: a quantity change (the common diff)
/// allocates nothing.
fn refill(level: &mut Level, price: &str, quantity: &str) {
    // Compared inline: a price is a few bytes, shorter than a library call is worth.
    let same = level.price.len() == price.len()
        && level.price.bytes().zip(price.bytes()).all(|(a, b)| a == b);
    if !same {
        level.price.clear();
        level.price.push_str(price);
    }
    level.quantity.clear();
    level.quantity.push_str(quantity);
}

impl Store {
    fn len(&self) -> usize {
        match self {
            Store::Hashed(m) => m.len(),
            Store::Ordered(m) => m.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, k: &i128) -> Option<&Level> {
        match self {
            Store::Hashed(m) => m.get(k),
            Store::Ordered(m) => m.get(k).map(|o| &o.level),
        }
    }

    fn remove(&mut self, k: &i128) -> Option<Level> {
        match self {
            Store::Hashed(m) => m.remove(k),
            Store::Ordered(m) => m.remove(k).map(|o| o.level),
        }
    }

    fn clear(&mut self) {
        match self {
            Store::Hashed(m) => m.clear(),
            Store::Ordered(m) => m.clear(),
        }
    }

    /// Sets level `k` to this text, inserting it when new.
    fn upsert(&mut self, k: i128, price: &str, quantity: &str) {
        let new = || Level {
            price: price.to_string(),
            quantity: quantity.to_string(),
        };
        match self {
            Store::Hashed(m) => match m.entry(k) {
                Entry::Occupied(o) => refill(o.into_mut(), price, quantity),
                Entry::Vacant(v) => {
                    v.insert(new());
                }
            },
            Store::Ordered(m) => match m.entry(k) {
                btree_map::Entry::Occupied(o) => {
                    let o = o.into_mut();
                    refill(&mut o.level, price, quantity);
                    o.digits.clear();
                }
                btree_map::Entry::Vacant(v) => {
                    v.insert(Kept {
                        level: new(),
                        digits: Vec::new(),
                    });
                }
            },
        }
    }

    /// Every level, in no particular order.
    fn iter(&self) -> Box<dyn Iterator<Item = (&i128, &Level)> + '_> {
        match self {
            Store::Hashed(m) => Box::new(m.iter()),
            Store::Ordered(m) => Box::new(m.iter().map(|(k, o)| (k, &o.level))),
        }
    }

    /// The highest key (a scan of a hashed side).
    fn max_key(&self) -> Option<i128> {
        match self {
            Store::Hashed(m) => m.keys().copied().max(),
            Store::Ordered(m) => m.last_key_value().map(|(k, _)| *k),
        }
    }
}

/// Appends a decimal's digits without its point and leading zeros (`"0.0500"` → `500`): the
/// text of a level in a top-levels checksum.
fn push_digits(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let start = b
        .iter()
        .position(|&c| c != b'0' && c != b'.')
        .unwrap_or(b.len());
    let digits = b.get(start..).unwrap_or_default();
    // A decimal has at most one `.`: at most two runs.
    match digits.iter().position(|&c| c == b'.') {
        Some(i) => {
            out.extend_from_slice(digits.get(..i).unwrap_or_default());
            out.extend_from_slice(digits.get(i + 1..).unwrap_or_default());
        }
        None => out.extend_from_slice(digits),
    }
}

/// The digit text of a side's best `n` levels ([`OrderBook::top_digits`]), kept until a change
/// reaches those levels: most updates change one side's top levels, or none, so most checksums
/// reuse a side's text instead of walking its levels again.
#[derive(Debug, Clone, Default)]
struct TopDigits {
    /// Whether `text` is the side's current text for `n` levels.
    valid: bool,
    /// Levels the text covers.
    n: usize,
    /// Key of the `n`-th best level: a change below it leaves the text as it is. `None` when
    /// the side had fewer than `n` levels (every change reaches them).
    floor: Option<i128>,
    text: Vec<u8>,
    /// The CRC32 of `text`, once asked for: a checksum that reads this side first continues
    /// from it.
    crc: Option<u32>,
}

/// One side of the book. A bid's key is its price, an ask's the negated price: on both sides,
/// the best level has the highest key. Each side keeps an upper bound of its best key (exact
/// until the best level is deleted), so the crossed-book check is O(1) per diff: bounds that
/// do not cross prove the book is not crossed, and a side is rescanned only when its bound
/// says "maybe".
#[derive(Debug, Clone, Default)]
struct BookSide {
    levels: Store,
    /// An upper bound of the highest key (`None` with `best_exact`: the side is empty; `None`
    /// otherwise: unknown).
    best: Option<i128>,
    /// Whether `best` is the highest key itself.
    best_exact: bool,
    /// The top levels' checksum text, when a checksum read it.
    digits: TopDigits,
}

impl PartialEq for BookSide {
    /// The same levels and bound; the kept checksum text is a cache, not part of the book.
    fn eq(&self, other: &Self) -> bool {
        self.levels == other.levels
            && self.best == other.best
            && self.best_exact == other.best_exact
    }
}

impl Eq for BookSide {}

impl BookSide {
    /// Sets, replaces or deletes one level.
    fn set(&mut self, k: i128, price: &str, quantity: &str, zero: bool) {
        if self.digits.valid && self.digits.floor.is_none_or(|f| k >= f) {
            self.digits.valid = false;
        }
        if zero {
            if self.levels.remove(&k).is_some() && self.best == Some(k) {
                // Still an upper bound of the new best.
                self.best_exact = false;
            }
            return;
        }
        match self.best {
            // Above the bound: above the best, so the new best.
            Some(b) if k > b => {
                self.best = Some(k);
                self.best_exact = true;
            }
            None if self.best_exact => self.best = Some(k),
            _ => {}
        }
        self.levels.upsert(k, price, quantity);
    }

    fn clear(&mut self) {
        self.levels.clear();
        self.best = None;
        self.best_exact = true;
        self.digits.valid = false;
    }

    /// The digit text of the best `n` levels, best first (each price's digits, then its
    /// quantity's: [`push_digits`]); rebuilt only when a change reached those levels since it
    /// was last read.
    fn top_digits(&mut self, n: usize) -> &[u8] {
        let d = &mut self.digits;
        if !(d.valid && d.n == n) {
            d.text.clear();
            let (mut count, mut floor) = (0, None);
            match &mut self.levels {
                Store::Ordered(m) => {
                    for (k, o) in m.iter_mut().rev().take(n) {
                        d.text.extend_from_slice(o.digits());
                        count += 1;
                        floor = Some(*k);
                    }
                }
                Store::Hashed(m) => {
                    for k in Self::sorted_keys(m, n) {
                        if let Some(l) = m.get(&k) {
                            push_digits(&mut d.text, &l.price);
                            push_digits(&mut d.text, &l.quantity);
                            count += 1;
                            floor = Some(k);
                        }
                    }
                }
            }
            d.floor = if count == n { floor } else { None };
            d.n = n;
            d.valid = true;
            d.crc = None;
        }
        &d.text
    }

    /// The CRC32 of [`BookSide::top_digits`], kept with the text.
    fn top_digits_crc32(&mut self, n: usize) -> u32 {
        self.top_digits(n);
        let d = &mut self.digits;
        *d.crc.get_or_insert_with(|| crc32fast::hash(&d.text))
    }

    /// The highest key (a scan when only a bound is known).
    fn best_key(&mut self) -> Option<i128> {
        if !self.best_exact {
            self.best = self.levels.max_key();
            self.best_exact = true;
        }
        self.best
    }

    /// An upper bound of the highest key, without a scan (`None`: empty or unknown).
    fn best_bound(&self) -> Option<i128> {
        self.best
    }

    /// Keys of a hashed side sorted best first, at most `n`.
    fn sorted_keys(levels: &FxHashMap<i128, Level>, n: usize) -> Vec<i128> {
        let mut keys: Vec<i128> = levels.keys().copied().collect();
        if n < keys.len() {
            keys.select_nth_unstable_by_key(n, |&k| std::cmp::Reverse(k));
            keys.truncate(n);
        }
        keys.sort_unstable_by_key(|&k| std::cmp::Reverse(k));
        keys
    }

    /// The best `n` levels, best first.
    fn best(&self, n: usize) -> Vec<PriceLevel> {
        let mut out = Vec::with_capacity(n.min(self.levels.len()));
        self.each_top(n, |price, quantity| {
            out.push(PriceLevel {
                price: price.to_string(),
                quantity: quantity.to_string(),
            })
        });
        out
    }

    /// The best `n` levels as the venue wrote them, best first (no copy).
    fn top(&self, n: usize) -> Vec<(&str, &str)> {
        let mut top = Vec::with_capacity(n.min(self.levels.len()));
        self.each_top(n, |p, q| top.push((p, q)));
        top
    }

    /// Calls `f` with each of the best `n` levels as the venue wrote them, best first; an
    /// ordered side is read straight off its tree, without collecting anything.
    fn each_top<'s>(&'s self, n: usize, mut f: impl FnMut(&'s str, &'s str)) {
        match &self.levels {
            Store::Ordered(m) => m
                .values()
                .rev()
                .take(n)
                .for_each(|o| f(&o.level.price, &o.level.quantity)),
            Store::Hashed(m) => {
                for k in Self::sorted_keys(m, n) {
                    if let Some(l) = m.get(&k) {
                        f(&l.price, &l.quantity);
                    }
                }
            }
        }
    }

    /// Deletes the worst levels beyond `depth`, their prices (as the venue wrote them) pushed
    /// to `removed`; how many were deleted.
    fn truncate(&mut self, depth: usize, mut removed: Option<&mut Vec<String>>) -> usize {
        let extra = self.levels.len().saturating_sub(depth);
        if extra == 0 {
            return 0;
        }
        let mut gone = |l: Level| {
            if let Some(out) = removed.as_deref_mut() {
                out.push(l.price);
            }
        };
        match &mut self.levels {
            Store::Ordered(m) => {
                for _ in 0..extra {
                    if let Some((_, o)) = m.pop_first() {
                        gone(o.level);
                    }
                }
            }
            Store::Hashed(m) => {
                let mut keys: Vec<i128> = m.keys().copied().collect();
                keys.select_nth_unstable(extra - 1);
                for k in &keys[..extra] {
                    if let Some(l) = m.remove(k) {
                        gone(l);
                    }
                }
            }
        }
        // Only the worst levels went; with depth 0 the best did too.
        if self.levels.is_empty() {
            self.best = None;
            self.best_exact = true;
        }
        // Levels beyond the kept text's went, unless fewer than its levels are left.
        if self.levels.len() < self.digits.n {
            self.digits.valid = false;
        }
        extra
    }
}

/// Bids and asks keyed by exact price.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderBook {
    bids: BookSide,
    asks: BookSide,
}

impl OrderBook {
    /// An empty book.
    pub fn new() -> OrderBook {
        let mut b = OrderBook::default();
        b.clear();
        b
    }

    /// An empty book that also keeps its price order, for books read in order after every
    /// update (top-N checksums, depth windows).
    pub fn ordered() -> OrderBook {
        let mut b = OrderBook::new();
        b.bids.levels = Store::Ordered(BTreeMap::new());
        b.asks.levels = Store::Ordered(BTreeMap::new());
        b
    }

    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Sets a level to an absolute quantity; a zero quantity deletes it (deleting an unknown
    /// level is normal).
    pub fn apply(&mut self, side: Side, price: &str, quantity: &str) -> Result<(), BadDecimal> {
        let k = key(price)?;
        let zero = quantity_is_zero(quantity).ok_or_else(|| BadDecimal(quantity.to_string()))?;
        match side {
            Side::Bid => self.bids.set(k, price, quantity, zero),
            Side::Ask => {
                let k = k
                    .checked_neg()
                    .ok_or_else(|| BadDecimal(price.to_string()))?;
                self.asks.set(k, price, quantity, zero)
            }
        }
        Ok(())
    }

    /// Like [`OrderBook::apply`], with the price's key and the quantity's zeroness already
    /// found (by the venue's parser, in the pass that checked them).
    pub fn apply_keyed(
        &mut self,
        side: Side,
        key: LevelKey,
        price: &str,
        quantity: &str,
    ) -> Result<(), BadDecimal> {
        match side {
            Side::Bid => self.bids.set(key.price, price, quantity, key.zero),
            Side::Ask => {
                let k = key
                    .price
                    .checked_neg()
                    .ok_or_else(|| BadDecimal(price.to_string()))?;
                self.asks.set(k, price, quantity, key.zero)
            }
        }
        Ok(())
    }

    /// Number of levels per side.
    pub fn len(&self) -> (usize, usize) {
        (self.bids.levels.len(), self.asks.levels.len())
    }

    /// Whether both sides are empty.
    pub fn is_empty(&self) -> bool {
        self.bids.levels.is_empty() && self.asks.levels.is_empty()
    }

    /// Best bid and best ask price, when both sides have levels and the bid is at or above
    /// the ask (a crossed or locked book, which no venue's consistent book shows).
    pub fn crossed(&mut self) -> Option<(String, String)> {
        // Bounds that do not cross prove the best levels do not (ask keys are negated prices:
        // bid >= ask  <=>  bid + ask_key >= 0).
        if let (Some(b), Some(a)) = (self.bids.best_bound(), self.asks.best_bound()) {
            if b.checked_add(a).is_some_and(|s| s < 0) {
                return None;
            }
        }
        let bid = self.bids.best_key()?;
        let ask = self.asks.best_key()?;
        // Ask keys are negated prices: bid >= ask  <=>  bid + ask_key >= 0.
        if bid.checked_add(ask).is_some_and(|s| s >= 0) {
            let price = |side: &BookSide, k| side.levels.get(&k).map(|l| l.price.clone());
            return Some((
                price(&self.bids, bid).unwrap_or_default(),
                price(&self.asks, ask).unwrap_or_default(),
            ));
        }
        None
    }

    /// Deletes the levels beyond the best `depth` on each side (venues whose book is a window
    /// of the subscribed depth, e.g. Kraken); how many levels were deleted.
    pub fn truncate(&mut self, depth: usize) -> usize {
        self.bids.truncate(depth, None) + self.asks.truncate(depth, None)
    }

    /// [`OrderBook::truncate`], the deleted levels' prices (as the venue wrote them) appended
    /// to `bids` and `asks`: what a consumer of the deltas must delete too.
    pub fn truncate_into(
        &mut self,
        depth: usize,
        bids: &mut Vec<String>,
        asks: &mut Vec<String>,
    ) -> usize {
        self.bids.truncate(depth, Some(bids)) + self.asks.truncate(depth, Some(asks))
    }

    /// The best `n` levels of one side as the venue wrote them, best first (asks ascending,
    /// bids descending), for venue checksums.
    pub fn top(&self, side: Side, n: usize) -> Vec<(&str, &str)> {
        match side {
            Side::Bid => self.bids.top(n),
            Side::Ask => self.asks.top(n),
        }
    }

    /// [`OrderBook::top`] without the `Vec`: `f` gets each of the best `n` levels of one side,
    /// best first (what a venue checksum reads after every update).
    pub fn each_top<'s>(&'s self, side: Side, n: usize, f: impl FnMut(&'s str, &'s str)) {
        match side {
            Side::Bid => self.bids.each_top(n, f),
            Side::Ask => self.asks.each_top(n, f),
        }
    }

    /// The digit text of one side's best `n` levels, best first, as top-levels checksums read
    /// it (Kraken's family: each price's then quantity's digits, point and leading zeros
    /// dropped). Kept per side until a change reaches those levels, so a side an update did
    /// not touch near its top costs nothing to read again.
    pub fn top_digits(&mut self, side: Side, n: usize) -> &[u8] {
        match side {
            Side::Bid => self.bids.top_digits(n),
            Side::Ask => self.asks.top_digits(n),
        }
    }

    /// The CRC32 of [`OrderBook::top_digits`], kept with the text: a checksum over this side's
    /// text and then more continues from it (`crc32fast::Hasher::new_with_initial`) without
    /// hashing this side again while it is unchanged.
    pub fn top_digits_crc32(&mut self, side: Side, n: usize) -> u32 {
        match side {
            Side::Bid => self.bids.top_digits_crc32(n),
            Side::Ask => self.asks.top_digits_crc32(n),
        }
    }

    /// Every level of one side as (price key of [`decimal_key`], price, quantity), in no
    /// particular order (a comparison with another book needs no sorting).
    pub fn keyed(&self, side: Side) -> impl Iterator<Item = (i128, &str, &str)> + '_ {
        let (levels, negated) = match side {
            Side::Bid => (&self.bids.levels, false),
            Side::Ask => (&self.asks.levels, true),
        };
        levels.iter().map(move |(k, l)| {
            let k = if negated { k.saturating_neg() } else { *k };
            (k, l.price.as_str(), l.quantity.as_str())
        })
    }

    /// The best `depth` levels per side (all when `None`), best first.
    pub fn levels(&self, depth: Option<usize>) -> (Vec<PriceLevel>, Vec<PriceLevel>) {
        let n = depth.unwrap_or(usize::MAX);
        (self.bids.best(n), self.asks.best(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keys_zero_deletes_and_order() {
        let mut b = OrderBook::new();
        b.apply(Side::Bid, "0.35130000", "6195.00000000").unwrap();
        b.apply(Side::Bid, "0.3514", "1").unwrap();
        b.apply(Side::Ask, "0.3526", "2").unwrap();
        b.apply(Side::Ask, "0.35250000", "3").unwrap();
        // Same price, other digits: replaces the level.
        b.apply(Side::Bid, "0.351300", "7").unwrap();
        let (bids, asks) = b.levels(None);
        assert_eq!(
            bids.iter().map(|l| l.price.as_str()).collect::<Vec<_>>(),
            ["0.3514", "0.351300"]
        );
        assert_eq!(asks[0].price, "0.35250000");
        b.apply(Side::Bid, "0.3514", "0.00000000").unwrap();
        b.apply(Side::Ask, "9.99", "0").unwrap();
        assert_eq!(b.len(), (1, 2));
        assert!(b.apply(Side::Ask, "abc", "1").is_err());
        // Keys are exact at 18 places; more places are refused, not rounded.
        b.apply(Side::Ask, "0.000000000000000001", "1").unwrap();
        b.apply(Side::Ask, "0.000000000000000002", "1").unwrap();
        assert_eq!(b.len(), (1, 4));
        assert!(b.apply(Side::Ask, "0.0000000000000000001", "1").is_err());
        assert!(b
            .apply(Side::Ask, "99999999999999999999999999999", "1")
            .is_err());
        assert!(b.apply(Side::Ask, "1", "1e").is_err());
    }

    #[test]
    fn the_ordered_book_reads_like_the_hashed_one() {
        let (mut a, mut b) = (OrderBook::new(), OrderBook::ordered());
        let ops = [
            (Side::Bid, "10.5", "1"),
            (Side::Bid, "10.40", "2"),
            (Side::Bid, "10.6", "3"),
            (Side::Ask, "11", "1"),
            (Side::Ask, "10.9", "1"),
            (Side::Ask, "11.5", "4"),
            (Side::Bid, "10.6", "0"),
            (Side::Bid, "9", "5"),
            (Side::Ask, "10.9", "0.000"),
            (Side::Ask, "12", "1"),
        ];
        for (side, p, q) in ops {
            a.apply(side, p, q).unwrap();
            b.apply(side, p, q).unwrap();
            assert_eq!(a.top(Side::Bid, 2), b.top(Side::Bid, 2));
            assert_eq!(a.top(Side::Ask, 2), b.top(Side::Ask, 2));
        }
        // Best first: bids descending, asks ascending.
        assert_eq!(
            b.top(Side::Bid, 9),
            [("10.5", "1"), ("10.40", "2"), ("9", "5")]
        );
        assert_eq!(b.top(Side::Ask, 1), [("11", "1")]);
        // A window of two levels keeps the best two on each side.
        assert_eq!(a.truncate(2), 2);
        assert_eq!(b.truncate(2), 2);
        assert_eq!(a.levels(None), b.levels(None));
        assert_eq!(b.top(Side::Ask, 9), [("11", "1"), ("11.5", "4")]);
        assert_eq!(b.top(Side::Bid, 9), [("10.5", "1"), ("10.40", "2")]);
    }

    #[test]
    fn keys_are_the_exact_fixed_point_value() {
        use rust_decimal::Decimal;
        use std::str::FromStr;
        for p in [
            "0",
            "1",
            "7.609",
            "7.6090",
            "0.000000000000000001",
            "123456789.12345678",
            "00.50",
            "99999999999999999999.99999999",
            "000099999999999999999999",
        ] {
            let d = Decimal::from_str(p).unwrap();
            let want = d.mantissa() * 10i128.pow(KEY_SCALE - d.scale());
            assert_eq!(key(p).unwrap(), want, "{p}");
        }
        assert_eq!(key("7.609").unwrap(), key("7.6090").unwrap());
        // 20 integer digits and 18 places: more than `rust_decimal` holds, the key still does.
        assert_eq!(
            key("99999999999999999999.999999999999999999").unwrap(),
            99_999_999_999_999_999_999_999_999_999_999_999_999i128
        );
        for p in [
            "",
            ".",
            "1.",
            ".5",
            "-1",
            "+1",
            "1e5",
            "1.2.3",
            " 1",
            "NaN",
            "0.0000000000000000001",
            "100000000000000000000",
            "170141183460469231731",
        ] {
            assert!(key(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn crossed_is_exact_after_the_best_level_goes() {
        let mut b = OrderBook::new();
        for (side, p) in [
            (Side::Bid, "10"),
            (Side::Bid, "9"),
            (Side::Ask, "11"),
            (Side::Ask, "12"),
        ] {
            b.apply(side, p, "1").unwrap();
        }
        assert_eq!(b.crossed(), None);
        // The best ask goes: its price stays only as a bound; a bid between 11 and 12 is fine.
        b.apply(Side::Ask, "11", "0").unwrap();
        b.apply(Side::Bid, "11.5", "1").unwrap();
        assert_eq!(b.crossed(), None);
        b.apply(Side::Bid, "12", "1").unwrap();
        assert_eq!(b.crossed(), Some(("12".into(), "12".into())));
        // Emptied and refilled sides.
        let mut e = OrderBook::new();
        e.apply(Side::Bid, "5", "1").unwrap();
        e.apply(Side::Bid, "5", "0").unwrap();
        e.apply(Side::Ask, "4", "1").unwrap();
        assert_eq!(e.crossed(), None, "no bids: not crossed");
        e.apply(Side::Bid, "4", "1").unwrap();
        assert_eq!(e.crossed(), Some(("4".into(), "4".into())));
    }

    /// The kept checksum text is what a fresh walk of the best levels gives, after every kind
    /// of change: above, at and below the kept levels, deletions, truncation, clearing, another
    /// level count, on both stores.
    #[test]
    fn kept_checksum_text_follows_every_change() {
        fn fresh(b: &OrderBook, side: Side, n: usize) -> Vec<u8> {
            let mut out = Vec::new();
            for (p, q) in b.top(side, n) {
                push_digits(&mut out, p);
                push_digits(&mut out, q);
            }
            out
        }
        for mut book in [OrderBook::new(), OrderBook::ordered()] {
            let mut x: u32 = 7;
            let mut next = |m: u32| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) % m
            };
            let mut reads = 0;
            for step in 0..4000 {
                let side = if next(2) == 0 { Side::Bid } else { Side::Ask };
                match next(20) {
                    0 => drop(book.truncate(next(8) as usize)),
                    1 if step % 500 == 0 => book.clear(),
                    _ => {
                        let price = format!("{}.{}0", 100 + next(30), next(10));
                        let quantity = match next(4) {
                            0 => "0.000".to_string(),
                            _ => format!("0.{:03}", next(1000)),
                        };
                        book.apply(side, &price, &quantity).unwrap();
                    }
                }
                for side in [Side::Bid, Side::Ask] {
                    let n = if step % 700 < 350 { 3 } else { 5 };
                    let want = fresh(&book, side, n);
                    // Read in either order: the kept CRC follows the kept text.
                    if step % 3 == 0 {
                        assert_eq!(book.top_digits_crc32(side, n), crc32fast::hash(&want));
                    }
                    assert_eq!(book.top_digits(side, n), want.as_slice(), "step {step}");
                    assert_eq!(book.top_digits_crc32(side, n), crc32fast::hash(&want));
                    reads += 1;
                }
            }
            assert_eq!(reads, 8000);
        }
        assert_eq!(
            {
                let mut out = Vec::new();
                push_digits(&mut out, "0.0500");
                push_digits(&mut out, "100.0");
                push_digits(&mut out, "000");
                out
            },
            b"5001000"
        );
    }
}
