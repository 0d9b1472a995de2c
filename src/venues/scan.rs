//! A strict-JSON cursor for the venues' purpose-built scanners (Binance's trades and depth,
//! Kraken v1's book updates). It reads only a strict subset of JSON: no whitespace, no escapes,
//! keys of one or two characters, integers as plain digits without leading zeros that fit an
//! `i64`, booleans, strings without escapes or control characters, decimals as strings that the
//! strict decimal check accepts (keyed for the book as they are read). On anything else a read
//! gives `None` and the scanner declines: the frame takes the venue's `serde_json` path, which
//! stays the authority.

use crate::venues::decimal::keyed_prefix;
use crate::venues::json::secs_prefix;

/// Fills a field seen for the first time; a duplicate key declines (the typed parse refuses it).
pub(crate) fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// Marks an ignored key seen (`bit`); declines on its second occurrence.
pub(crate) fn once<T>(seen: &mut u8, bit: u8, _value: T) -> Option<()> {
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

/// A position in the text being scanned.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, at: 0 }
    }

    /// The text not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.text.as_bytes().get(self.at..).unwrap_or_default()
    }

    /// Steps over one byte already looked at.
    pub(crate) fn bump(&mut self) {
        self.at += 1;
    }

    /// Whether the whole text was read.
    pub(crate) fn at_end(&self) -> bool {
        self.at == self.text.len()
    }

    /// The next byte, not read.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Reads `byte`, or `None` when the next byte is another.
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// `{"k":v,...}` spanning the whole text; `value` reads each value after its key.
    pub(crate) fn object(
        &mut self,
        value: impl FnMut(&mut Self, (u8, u8)) -> Option<()>,
    ) -> Option<()> {
        self.members(value)?;
        // Nothing may follow the object.
        self.at_end().then_some(())
    }

    /// `{"k":v,...}` (at least one member), up to its closing brace; `value` reads each value
    /// after its key.
    pub(crate) fn members(
        &mut self,
        mut value: impl FnMut(&mut Self, (u8, u8)) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        loop {
            let key = self.key()?;
            value(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A key of one or two characters and its `:`: `(k, 0)` or `(k, l)`. Longer keys, and
    /// keys with escapes or control characters, are none the scanner knows: `None`.
    pub(crate) fn key(&mut self) -> Option<(u8, u8)> {
        match *self.text.as_bytes().get(self.at..)? {
            [b'"', k, b'"', b':', ..] => {
                self.at += 4;
                Some((k, 0))
            }
            [b'"', k, l, b'"', b':', ..] if l >= 0x20 && l != b'\\' => {
                self.at += 5;
                Some((k, l))
            }
            _ => None,
        }
    }

    /// `"<decimal>"`: its text, its book key and whether it is zero, read in one pass
    /// ([`keyed_prefix`]); `None` unless [`crate::venues::decimal::unsigned`] accepts it.
    pub(crate) fn decimal(&mut self) -> Option<(&'a str, i128, bool)> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = self.text.as_bytes().get(start..)?;
        let (n, key, zero) = keyed_prefix(rest)?;
        (*rest.get(n)? == b'"').then_some(())?;
        self.at = start + n + 1;
        // Digits and a point are ASCII: both ends are character boundaries.
        Some((self.text.get(start..start + n)?, key, zero))
    }

    /// `"<seconds>"` (Kraken v1's level times): µs since the epoch, read in one pass
    /// ([`secs_prefix`]); `None` unless [`crate::venues::json::secs_to_us`] accepts the string.
    pub(crate) fn secs(&mut self) -> Option<i64> {
        self.eat(b'"')?;
        let (n, us) = secs_prefix(self.rest())?;
        (*self.rest().get(n)? == b'"').then_some(())?;
        self.at += n + 1;
        Some(us)
    }

    /// A string without escapes or control characters (what a borrowed `&str` parses from),
    /// read in one pass.
    pub(crate) fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut end = start;
        loop {
            match *bytes.get(end)? {
                b'"' => break,
                c if c == b'\\' || c < 0x20 => return None,
                _ => end += 1,
            }
        }
        self.at = end + 1;
        // `"` is ASCII, so both ends are character boundaries.
        self.text.get(start..end)
    }

    /// A non-negative integer as plain digits: no sign, no leading zero, no fraction or
    /// exponent (the delimiter check after the value refuses those), within `i64`.
    pub(crate) fn int(&mut self) -> Option<i64> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut n: i64 = 0;
        while let Some(&c) = bytes.get(self.at) {
            if !c.is_ascii_digit() {
                break;
            }
            let d = i64::from(c - b'0');
            // 18 digits cannot overflow an i64; past them every step is checked.
            n = if self.at - start < 18 {
                n * 10 + d
            } else {
                n.checked_mul(10)?.checked_add(d)?
            };
            self.at += 1;
        }
        let digits = self.at - start;
        // `0` alone is fine; `01` is not JSON.
        (digits == 1 || (digits > 1 && bytes.get(start) != Some(&b'0'))).then_some(n)
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&mut self) -> Option<bool> {
        let rest = self.text.as_bytes().get(self.at..)?;
        if rest.starts_with(b"true") {
            self.at += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.at += 5;
            Some(false)
        } else {
            None
        }
    }
}
