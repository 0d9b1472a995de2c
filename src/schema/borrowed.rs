//! Borrowed views of normalized records that encode straight from a venue's frame.
//!
//! A feed's hot path parses a frame into borrowed `&str`s; building the owned prost record
//! would copy each of them into its own `String` only to encode and drop it. These views write
//! the same protobuf bytes directly (field order, proto3 default skipping and `optional`
//! presence exactly as prost does), which the tests check byte for byte against prost's own
//! encoding of [`TradeRef::to_owned`].

use std::sync::Arc;

use prost::encoding::{encode_key, encode_varint, WireType};

use super::v2beta1::level2_delta::PriceLevel;
use super::{DataType, Level2Delta, Normalized, Trade};

/// A normalized record already encoded as protobuf (no framing), with what routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecord {
    /// Its message type (and so its schema).
    pub data_type: DataType,
    /// Venue name, for headers and keys.
    pub exchange: &'static str,
    /// Normalized symbol, for headers and keys.
    pub symbol: Arc<str>,
    /// The protobuf bytes of the record.
    pub bytes: Vec<u8>,
    /// When the venue timed it (event time, else its timestamp), µs, when it did.
    pub venue_us: Option<i64>,
    /// When its message was received here, µs.
    pub receipt_us: i64,
}

impl EncodedRecord {
    /// Trade `t` of `symbol` (which fills `t`'s symbol), encoded.
    pub fn trade(exchange: &'static str, symbol: Arc<str>, t: TradeRef<'_>) -> EncodedRecord {
        let mut bytes = Vec::with_capacity(128);
        TradeRef {
            symbol: &symbol,
            ..t
        }
        .encode(&mut bytes);
        EncodedRecord {
            data_type: DataType::Trade,
            exchange,
            symbol,
            bytes,
            venue_us: t.event_time.or(Some(t.timestamp)).filter(|t| *t > 0),
            receipt_us: t.receipt_time,
        }
    }

    /// The owned record the bytes encode.
    pub fn decode(&self) -> Result<Normalized, prost::DecodeError> {
        Normalized::decode(self.data_type, &self.bytes)
    }
}

/// A level's price as the book's exact key and whether its quantity is zero (a delete), found
/// in the same pass that checked the level's decimals in the venue's parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelKey {
    /// The price in units of 10^-18 (`crate::book::levels::KEY_SCALE`).
    pub price: i128,
    /// Whether the quantity is zero.
    pub zero: bool,
}

/// One side's price levels (`[price, quantity]` pairs, as the venue wrote them) with all their
/// text in one buffer: one allocation per side instead of two per level.
#[derive(Debug, Clone, Default)]
pub struct Levels {
    text: String,
    /// Where each level's price and quantity end in `text` (each starts where the last ended).
    ends: Vec<(usize, usize)>,
    /// Each level's key, when its parser found them all ([`Levels::push_keyed`]).
    keys: Vec<LevelKey>,
}

/// Levels are equal when they hold the same text: whether the parser keyed them does not count.
impl PartialEq for Levels {
    fn eq(&self, other: &Levels) -> bool {
        self.text == other.text && self.ends == other.ends
    }
}

impl Eq for Levels {}

impl Levels {
    /// Room for `levels` levels of `bytes` text in all.
    pub fn with_capacity(levels: usize, bytes: usize) -> Levels {
        Levels {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(levels),
            keys: Vec::new(),
        }
    }

    /// Appends a level with its key (every level of a keyed side must have one; the book then
    /// reads no decimal again).
    pub fn push_keyed(&mut self, price: &str, quantity: &str, key: LevelKey) {
        let keyed = self.keys.len() == self.ends.len();
        self.push(price, quantity);
        if keyed {
            if self.keys.capacity() == 0 {
                self.keys.reserve_exact(self.ends.capacity());
            }
            self.keys.push(key);
        }
    }

    /// Every level's key, when the parser gave each one.
    pub fn keys(&self) -> Option<&[LevelKey]> {
        (self.keys.len() == self.ends.len()).then_some(self.keys.as_slice())
    }

    /// Bytes of the keys held (counted in a buffered diff's size).
    pub fn key_bytes(&self) -> usize {
        self.keys.len() * std::mem::size_of::<LevelKey>()
    }

    /// Appends a level.
    pub fn push(&mut self, price: &str, quantity: &str) {
        if self.text.capacity() == 0 {
            // Room for a few levels at once, not a grow per push (most diffs hold one or two).
            self.text
                .reserve((price.len() + quantity.len()).max(16) * 2);
        }
        self.text.push_str(price);
        let p = self.text.len();
        self.text.push_str(quantity);
        self.ends.push((p, self.text.len()));
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of level text held.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The levels as `(price, quantity)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(p, q)| {
            let level = (
                self.text.get(start..p).unwrap_or_default(),
                self.text.get(p..q).unwrap_or_default(),
            );
            start = q;
            level
        })
    }

    /// The levels as owned protobuf price levels.
    pub fn to_price_levels(&self) -> Vec<PriceLevel> {
        self.iter()
            .map(|(p, q)| PriceLevel {
                price: p.to_string(),
                quantity: q.to_string(),
            })
            .collect()
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Levels {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Levels {
        let mut levels = Levels::default();
        for (p, q) in iter {
            levels.push(p, q);
        }
        levels
    }
}

/// A trade id as the venue gave it: a number (printed in decimal) or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRef<'a> {
    /// A numeric id.
    Num(i64),
    /// A textual id.
    Text(&'a str),
    /// Two numbers joined by `-` (e.g. Binance aggTrade's first-last trade ids).
    Range(i64, i64),
}

impl IdRef<'_> {
    /// Writes the id's text into `buf` and returns it.
    fn text<'b>(&'b self, buf: &'b mut IdBuf) -> &'b str {
        match *self {
            IdRef::Text(s) => s,
            IdRef::Num(n) => buf.a.format(n),
            IdRef::Range(a, b) => {
                let (a, b) = (buf.a.format(a), buf.b.format(b));
                let n = a.len();
                buf.joined[..n].copy_from_slice(a.as_bytes());
                buf.joined[n] = b'-';
                buf.joined[n + 1..n + 1 + b.len()].copy_from_slice(b.as_bytes());
                // Both halves are ASCII digits and a '-'.
                std::str::from_utf8(&buf.joined[..n + 1 + b.len()]).unwrap_or_default()
            }
        }
    }

    /// The id as an owned string.
    pub fn to_string_owned(&self) -> String {
        self.text(&mut IdBuf::default()).to_string()
    }
}

/// Scratch space to print ids without allocating.
struct IdBuf {
    a: itoa::Buffer,
    b: itoa::Buffer,
    joined: [u8; 64],
}

impl Default for IdBuf {
    fn default() -> IdBuf {
        IdBuf {
            a: itoa::Buffer::new(),
            b: itoa::Buffer::new(),
            joined: [0; 64],
        }
    }
}

/// A varint; one-byte values (every tag and most lengths here) inline.
#[inline(always)]
fn varint(v: u64, buf: &mut Vec<u8>) {
    if v < 0x80 {
        buf.push(v as u8);
    } else {
        encode_varint(v, buf);
    }
}

/// A field key (tag and wire type).
#[inline(always)]
fn key(tag: u32, wire: WireType, buf: &mut Vec<u8>) {
    if tag < 16 {
        buf.push(((tag << 3) | wire as u32) as u8);
    } else {
        encode_key(tag, wire, buf);
    }
}

fn put_str(buf: &mut Vec<u8>, tag: u32, s: &str) {
    key(tag, WireType::LengthDelimited, buf);
    varint(s.len() as u64, buf);
    buf.extend_from_slice(s.as_bytes());
}

fn put_varint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    key(tag, WireType::Varint, buf);
    varint(v, buf);
}

/// A [`Trade`] borrowing its text from the frame it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeRef<'a> {
    /// Venue name.
    pub exchange: &'a str,
    /// Normalized symbol.
    pub symbol: &'a str,
    /// Taker side (`trade::Side` as i32).
    pub side: i32,
    /// Trade id; also the `raw_id`.
    pub trade_id: IdRef<'a>,
    /// Price digits as sent.
    pub price: &'a str,
    /// Amount digits as sent.
    pub amount: &'a str,
    /// Trade time, µs.
    pub timestamp: i64,
    /// Venue trade type.
    pub trade_type: Option<&'a str>,
    /// Buyer was the maker.
    pub maker: Option<bool>,
    /// Event time, µs.
    pub event_time: Option<i64>,
    /// Match id.
    pub match_id: Option<IdRef<'a>>,
    /// Liquidity flag.
    pub liquidity_flag: Option<&'a str>,
    /// Local receipt time, µs.
    pub receipt_time: i64,
}

impl TradeRef<'_> {
    /// Appends the protobuf encoding of the trade to `buf` (identical to prost's).
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let mut ids = IdBuf::default();
        buf.reserve(64 + self.exchange.len() + self.symbol.len() + 2 * 24);
        if !self.exchange.is_empty() {
            put_str(buf, 1, self.exchange);
        }
        if !self.symbol.is_empty() {
            put_str(buf, 2, self.symbol);
        }
        if self.side != 0 {
            // int32 enums are sign-extended varints.
            put_varint(buf, 3, i64::from(self.side) as u64);
        }
        let id = self.trade_id.text(&mut ids);
        if !id.is_empty() {
            put_str(buf, 4, id);
        }
        if !self.price.is_empty() {
            put_str(buf, 5, self.price);
        }
        if !self.amount.is_empty() {
            put_str(buf, 6, self.amount);
        }
        if self.timestamp != 0 {
            put_varint(buf, 7, self.timestamp as u64);
        }
        if !id.is_empty() {
            put_str(buf, 8, id);
        }
        if let Some(t) = self.trade_type {
            put_str(buf, 9, t);
        }
        if let Some(m) = self.maker {
            put_varint(buf, 10, u64::from(m));
        }
        if let Some(t) = self.event_time {
            put_varint(buf, 11, t as u64);
        }
        if let Some(m) = &self.match_id {
            put_str(buf, 12, m.text(&mut ids));
        }
        if let Some(f) = self.liquidity_flag {
            put_str(buf, 13, f);
        }
        if self.receipt_time != 0 {
            put_varint(buf, 14, self.receipt_time as u64);
        }
    }

    /// The owned prost record with the same content.
    pub fn to_owned(&self) -> Trade {
        let id = self.trade_id.to_string_owned();
        Trade {
            exchange: self.exchange.to_string(),
            symbol: self.symbol.to_string(),
            side: self.side,
            trade_id: id.clone(),
            price: self.price.to_string(),
            amount: self.amount.to_string(),
            timestamp: self.timestamp,
            raw_id: id,
            trade_type: self.trade_type.map(str::to_string),
            maker: self.maker,
            event_time: self.event_time,
            match_id: self.match_id.map(|m| m.to_string_owned()),
            liquidity_flag: self.liquidity_flag.map(str::to_string),
            receipt_time: self.receipt_time,
        }
    }
}

/// Bytes of a varint.
fn varint_len(v: u64) -> usize {
    prost::encoding::encoded_len_varint(v)
}

/// Bytes of a string field (key, length, text); proto3 skips an empty one.
fn str_field_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + varint_len(s.len() as u64) + s.len()
    }
}

fn put_levels(buf: &mut Vec<u8>, tag: u32, levels: &Levels) {
    for (price, quantity) in levels.iter() {
        key(tag, WireType::LengthDelimited, buf);
        varint((str_field_len(price) + str_field_len(quantity)) as u64, buf);
        if !price.is_empty() {
            put_str(buf, 1, price);
        }
        if !quantity.is_empty() {
            put_str(buf, 2, quantity);
        }
    }
}

/// A [`Level2Delta`] borrowing its levels (e.g. from the diff the book just applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level2DeltaRef<'a> {
    /// Venue name.
    pub exchange: &'a str,
    /// Normalized symbol.
    pub symbol: &'a str,
    /// Changed bid levels (quantity `0` deletes).
    pub bids: &'a Levels,
    /// Changed ask levels.
    pub asks: &'a Levels,
    /// Transaction time, µs.
    pub timestamp: Option<i64>,
    /// Sequence (last update id).
    pub sequence: Option<i64>,
    /// Venue checksum.
    pub checksum: Option<&'a str>,
    /// Event time, µs.
    pub event_time: Option<i64>,
    /// Last venue update id covered.
    pub last_update_id: Option<i64>,
    /// Local receipt time, µs.
    pub receipt_time: i64,
    /// First venue update id of the diff.
    pub first_update_id: Option<i64>,
    /// Previous diff's last update id.
    pub prev_update_id: Option<i64>,
}

impl Level2DeltaRef<'_> {
    /// Appends the protobuf encoding to `buf` (identical to prost's).
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let levels =
            self.bids.text.len() + self.asks.text.len() + 6 * (self.bids.len() + self.asks.len());
        buf.reserve(96 + self.exchange.len() + self.symbol.len() + levels);
        if !self.exchange.is_empty() {
            put_str(buf, 1, self.exchange);
        }
        if !self.symbol.is_empty() {
            put_str(buf, 2, self.symbol);
        }
        put_levels(buf, 3, self.bids);
        put_levels(buf, 4, self.asks);
        if let Some(t) = self.timestamp {
            put_varint(buf, 5, t as u64);
        }
        if let Some(s) = self.sequence {
            put_varint(buf, 6, s as u64);
        }
        if let Some(c) = self.checksum {
            put_str(buf, 7, c);
        }
        if let Some(t) = self.event_time {
            put_varint(buf, 8, t as u64);
        }
        if let Some(u) = self.last_update_id {
            put_varint(buf, 9, u as u64);
        }
        if self.receipt_time != 0 {
            put_varint(buf, 10, self.receipt_time as u64);
        }
        if let Some(u) = self.first_update_id {
            put_varint(buf, 11, u as u64);
        }
        if let Some(u) = self.prev_update_id {
            put_varint(buf, 12, u as u64);
        }
    }

    /// The owned prost record with the same content.
    pub fn to_owned(&self) -> Level2Delta {
        Level2Delta {
            exchange: self.exchange.to_string(),
            symbol: self.symbol.to_string(),
            bids: self.bids.to_price_levels(),
            asks: self.asks.to_price_levels(),
            timestamp: self.timestamp,
            sequence: self.sequence,
            checksum: self.checksum.map(str::to_string),
            event_time: self.event_time,
            last_update_id: self.last_update_id,
            receipt_time: self.receipt_time,
            first_update_id: self.first_update_id,
            prev_update_id: self.prev_update_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn base() -> TradeRef<'static> {
        TradeRef {
            exchange: "BINANCE",
            symbol: "BTC-USDT",
            side: 2,
            trade_id: IdRef::Num(1_034_283_941),
            price: "58850.01000000",
            amount: "0.00170000",
            timestamp: 1_619_712_000_123_000,
            trade_type: None,
            maker: Some(true),
            event_time: Some(1_619_712_000_124_000),
            match_id: None,
            liquidity_flag: None,
            receipt_time: 1_619_712_000_130_456,
        }
    }

    fn same_as_prost(t: TradeRef<'_>) {
        let mut direct = Vec::new();
        t.encode(&mut direct);
        assert_eq!(direct, t.to_owned().encode_to_vec(), "{t:?}");
    }

    #[test]
    fn direct_encoding_equals_prost_for_every_field_shape() {
        same_as_prost(base());
        // Defaults are skipped by proto3; optional fields are present even when default.
        same_as_prost(TradeRef {
            exchange: "",
            symbol: "",
            side: 0,
            trade_id: IdRef::Text(""),
            price: "",
            amount: "",
            timestamp: 0,
            trade_type: Some(""),
            maker: Some(false),
            event_time: Some(0),
            match_id: Some(IdRef::Text("")),
            liquidity_flag: Some(""),
            receipt_time: 0,
        });
        same_as_prost(TradeRef {
            side: -1,
            timestamp: -5,
            event_time: Some(i64::MIN),
            receipt_time: i64::MAX,
            trade_id: IdRef::Num(i64::MIN),
            match_id: Some(IdRef::Range(i64::MIN, i64::MAX)),
            trade_type: Some("aggregate"),
            liquidity_flag: Some("maker"),
            ..base()
        });
        // Long strings need multi-byte lengths.
        let long = "9".repeat(300);
        same_as_prost(TradeRef {
            price: &long,
            trade_id: IdRef::Text(&long),
            ..base()
        });
        assert_eq!(IdRef::Range(3, -4).to_string_owned(), "3--4");
    }

    #[test]
    fn direct_level2_delta_equals_prost() {
        let long = "1".repeat(200);
        let bids: Levels = [("0.3513", "6195.0"), ("", "0"), (long.as_str(), "")]
            .into_iter()
            .collect();
        let asks: Levels = [("0.3525", "0.00000000")].into_iter().collect();
        let none = Levels::default();
        assert_eq!(
            bids.iter().collect::<Vec<_>>(),
            [("0.3513", "6195.0"), ("", "0"), (long.as_str(), "")]
        );
        let full = Level2DeltaRef {
            exchange: "BINANCE_FUTURES",
            symbol: "SUSHI-USDT-PERP",
            bids: &bids,
            asks: &asks,
            timestamp: Some(1_700_000_000_000_000),
            sequence: Some(42),
            checksum: Some("abc"),
            event_time: Some(-1),
            last_update_id: Some(42),
            receipt_time: 7,
            first_update_id: Some(40),
            prev_update_id: Some(39),
        };
        for d in [
            full,
            Level2DeltaRef {
                exchange: "",
                symbol: "",
                bids: &none,
                asks: &none,
                timestamp: None,
                sequence: None,
                checksum: None,
                event_time: None,
                last_update_id: None,
                receipt_time: 0,
                first_update_id: None,
                prev_update_id: None,
            },
            Level2DeltaRef {
                checksum: Some(""),
                timestamp: Some(0),
                ..full
            },
        ] {
            let mut direct = Vec::new();
            d.encode(&mut direct);
            assert_eq!(direct, d.to_owned().encode_to_vec(), "{d:?}");
        }
    }
}
