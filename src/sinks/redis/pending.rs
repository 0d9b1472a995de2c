//! The values waiting to be written, one per key: a newer value replaces the older one
//! (coalescing), and the map holds at most `cap` keys.
//!
//! When the map is full, a value for a key already in it still replaces the older value, but a
//! value for a new key is dropped and counted: the map never grows past its bound and nothing
//! ever waits for room (the Kafka path feeds it). That key's next value, once there is room,
//! brings it up to date again. The bound is the number of instruments × data types, so a
//! sensible `max_pending_keys` is never reached in normal operation.

use std::collections::HashMap;

use bytes::Bytes;

/// What happened to an inserted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The key was not waiting; the value now is.
    New,
    /// The key was waiting; its older value was replaced (one write saved).
    Coalesced,
    /// The map is full and the key was not in it: the value was dropped.
    Dropped,
}

/// Latest value per key, bounded by the number of keys and by bytes (keys and values).
#[derive(Debug)]
pub struct Pending {
    map: HashMap<String, Bytes>,
    cap: usize,
    cap_bytes: usize,
    bytes: usize,
}

impl Pending {
    /// An empty map holding at most `cap` keys (bytes unbounded).
    pub fn new(cap: usize) -> Pending {
        Pending::bounded(cap, usize::MAX)
    }

    /// An empty map holding at most `cap` keys and `cap_bytes` bytes of keys and values.
    pub fn bounded(cap: usize, cap_bytes: usize) -> Pending {
        Pending {
            map: HashMap::new(),
            cap: cap.max(1),
            cap_bytes,
            bytes: 0,
        }
    }

    /// Puts `value` under `key`, replacing any older value; a new key is refused when the map
    /// is full (keys or bytes). A replacement is always taken (one value per key: the bytes
    /// stay within keys × the largest value).
    pub fn insert(&mut self, key: String, value: Bytes) -> Inserted {
        if let Some(slot) = self.map.get_mut(&key) {
            self.bytes = self.bytes - slot.len() + value.len();
            *slot = value;
            return Inserted::Coalesced;
        }
        let size = key.len() + value.len();
        if self.map.len() >= self.cap || self.bytes.saturating_add(size) > self.cap_bytes {
            return Inserted::Dropped;
        }
        self.bytes += size;
        self.map.insert(key, value);
        Inserted::New
    }

    /// Bytes of the keys and values waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes every waiting value, leaving the map empty (with the same bounds).
    pub fn take(&mut self) -> Pending {
        Pending {
            map: std::mem::take(&mut self.map),
            cap: self.cap,
            cap_bytes: self.cap_bytes,
            bytes: std::mem::take(&mut self.bytes),
        }
    }

    /// Merges `newer` into this map (newer values win); counts (coalesced, dropped).
    pub fn absorb(&mut self, newer: Pending) -> (u64, u64) {
        let (mut coalesced, mut dropped) = (0, 0);
        if self.map.is_empty() {
            self.map = newer.map;
            self.bytes = newer.bytes;
            return (0, 0);
        }
        for (k, v) in newer.map {
            match self.insert(k, v) {
                Inserted::New => {}
                Inserted::Coalesced => coalesced += 1,
                Inserted::Dropped => dropped += 1,
            }
        }
        (coalesced, dropped)
    }

    /// Removes `key` if its value is still exactly `written` (same bytes): a value that a newer
    /// one replaced meanwhile stays to be written.
    pub fn remove_written(&mut self, key: &str, written: &Bytes) {
        if self.map.get(key).is_some_and(|v| v == written) {
            self.map.remove(key);
            self.bytes -= key.len() + written.len();
        }
    }

    /// Up to `n` waiting entries (key and value, cheap clones), in no particular order.
    pub fn batch(&self, n: usize) -> Vec<(String, Bytes)> {
        self.map
            .iter()
            .take(n)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The value waiting under `key`.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.map.get(key)
    }

    /// Keys waiting.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn a_burst_on_one_key_keeps_only_the_latest_value() {
        let mut p = Pending::new(10);
        assert_eq!(p.insert("k".into(), b("1")), Inserted::New);
        assert_eq!(p.insert("k".into(), b("2")), Inserted::Coalesced);
        assert_eq!(p.insert("k".into(), b("3")), Inserted::Coalesced);
        assert_eq!(p.insert("j".into(), b("x")), Inserted::New);
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("k"), Some(&b("3")));
        assert_eq!(p.get("j"), Some(&b("x")));
    }

    #[test]
    fn the_bytes_bound_drops_new_keys_and_counts_what_waits() {
        // Keys and values: "a"+"1234" = 5, "b"+"5678" = 5; room for 11 bytes, so "c"+"9"
        // (2 more) does not fit until "a" shrinks.
        let mut p = Pending::bounded(100, 11);
        assert_eq!(p.insert("a".into(), b("1234")), Inserted::New);
        assert_eq!(p.insert("b".into(), b("5678")), Inserted::New);
        assert_eq!(p.bytes(), 10);
        assert_eq!(p.insert("c".into(), b("9")), Inserted::Dropped);
        // A waiting key is still replaced (here by a shorter value: 1 + 2).
        assert_eq!(p.insert("a".into(), b("xy")), Inserted::Coalesced);
        assert_eq!(p.bytes(), 8);
        assert_eq!(p.insert("c".into(), b("9")), Inserted::New);
        assert_eq!(p.bytes(), 10);
        p.remove_written("b", &b("5678"));
        assert_eq!(p.bytes(), 5);
        let taken = p.take();
        assert_eq!((taken.bytes(), p.bytes()), (5, 0));
    }

    #[test]
    fn a_full_map_drops_new_keys_but_still_updates_waiting_ones() {
        let mut p = Pending::new(2);
        assert_eq!(p.insert("a".into(), b("a1")), Inserted::New);
        assert_eq!(p.insert("b".into(), b("b1")), Inserted::New);
        assert_eq!(p.insert("c".into(), b("c1")), Inserted::Dropped);
        assert_eq!(p.insert("a".into(), b("a2")), Inserted::Coalesced);
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("c"), None);
        assert_eq!(p.get("a"), Some(&b("a2")));
        // Once taken, there is room again.
        let taken = p.take();
        assert!(p.is_empty());
        assert_eq!(taken.len(), 2);
        assert_eq!(p.insert("c".into(), b("c2")), Inserted::New);
    }

    #[test]
    fn absorbing_newer_values_keeps_the_newer_and_the_bound() {
        // What a failed write kept, then what arrived meanwhile.
        let mut kept = Pending::new(3);
        kept.insert("a".into(), b("a-old"));
        kept.insert("b".into(), b("b-old"));
        let mut newer = Pending::new(3);
        newer.insert("a".into(), b("a-new"));
        newer.insert("c".into(), b("c-new"));
        newer.insert("d".into(), b("d-new"));
        let (coalesced, dropped) = kept.absorb(newer);
        assert_eq!((coalesced, dropped), (1, 1));
        assert_eq!(kept.get("a"), Some(&b("a-new")));
        assert_eq!(kept.get("b"), Some(&b("b-old")));
        assert_eq!(kept.len(), 3);
        // c or d, whichever came first in the map's order, fits; the other is dropped.
        assert_eq!(
            u8::from(kept.get("c").is_some()) + u8::from(kept.get("d").is_some()),
            1
        );
    }

    #[test]
    fn a_written_value_is_removed_only_if_no_newer_replaced_it() {
        let mut p = Pending::new(4);
        p.insert("a".into(), b("a1"));
        p.insert("b".into(), b("b1"));
        let batch = p.batch(10);
        p.insert("a".into(), b("a2"));
        for (k, v) in &batch {
            p.remove_written(k, v);
        }
        assert_eq!(p.get("a"), Some(&b("a2")));
        assert_eq!(p.get("b"), None);
    }
}
