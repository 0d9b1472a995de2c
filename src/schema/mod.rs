//! Normalized protobuf schemas (`tickflow.normalized.v2beta1`), their registry subjects,
//! the Confluent wire format and the breaking-change gate.

pub mod borrowed;
pub mod compat;
pub mod registry;
pub mod wire;

use std::fmt;

use serde::{Deserialize, Serialize};

/// Generated prost types for `tickflow.normalized.v2beta1`.
#[allow(missing_docs, clippy::all)]
pub mod v2beta1 {
    include!(concat!(env!("OUT_DIR"), "/tickflow.normalized.v2beta1.rs"));
}

pub use v2beta1::{
    Candle, FeedEvent, Funding, Level2Book, Level2Delta, Liquidation, OpenInterest, Ticker,
    TopOfBook, Trade,
};

/// Protobuf package of every normalized message.
pub const PACKAGE: &str = "tickflow.normalized.v2beta1";

/// Version string carried in the `schema_version` header.
pub const SCHEMA_VERSION: &str = "v2beta1";

/// The record header naming a record uniquely (`<instance><sequence>`, 32 hex digits: the
/// producer's random 64-bit instance and its record count). Kafka coordinates are not an
/// identity (a topic created again restarts at offset 0); the recorder keys rows by both.
pub const RECORD_ID_HEADER: &str = "record_id";

/// The compiled `FileDescriptorSet` of all normalized schemas (built by `build.rs`).
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/normalized_v2beta1.binpb"));

/// One kind of normalized record; each has its own `.proto` file, topic and subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// A trade print.
    Trade,
    /// A full order-book snapshot.
    Level2Book,
    /// One order-book diff.
    Level2Delta,
    /// Best bid and offer.
    TopOfBook,
    /// 24h rolling ticker.
    Ticker,
    /// Perpetual funding.
    Funding,
    /// Open interest.
    OpenInterest,
    /// Forced liquidation.
    Liquidation,
    /// OHLCV candle.
    Candle,
    /// Feed continuity: resyncs, gaps, checksum mismatches, reconnects, lost records.
    FeedEvent,
}

impl DataType {
    /// Every data type, in schema-file order.
    pub const ALL: [DataType; 10] = [
        DataType::Trade,
        DataType::Level2Book,
        DataType::Level2Delta,
        DataType::TopOfBook,
        DataType::Ticker,
        DataType::Funding,
        DataType::OpenInterest,
        DataType::Liquidation,
        DataType::Candle,
        DataType::FeedEvent,
    ];

    /// The snake_case name used in topics, headers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Trade => "trade",
            DataType::Level2Book => "level2_book",
            DataType::Level2Delta => "level2_delta",
            DataType::TopOfBook => "top_of_book",
            DataType::Ticker => "ticker",
            DataType::Funding => "funding",
            DataType::OpenInterest => "open_interest",
            DataType::Liquidation => "liquidation",
            DataType::Candle => "candle",
            DataType::FeedEvent => "feed_event",
        }
    }

    /// The protobuf message name (without package).
    pub fn message_name(self) -> &'static str {
        match self {
            DataType::Trade => "Trade",
            DataType::Level2Book => "Level2Book",
            DataType::Level2Delta => "Level2Delta",
            DataType::TopOfBook => "TopOfBook",
            DataType::Ticker => "Ticker",
            DataType::Funding => "Funding",
            DataType::OpenInterest => "OpenInterest",
            DataType::Liquidation => "Liquidation",
            DataType::Candle => "Candle",
            DataType::FeedEvent => "FeedEvent",
        }
    }

    /// Fully qualified protobuf name, used by the RecordNameStrategy.
    pub fn full_name(self) -> String {
        format!("{PACKAGE}.{}", self.message_name())
    }

    /// The self-contained `.proto` text registered as this type's schema.
    pub fn proto_source(self) -> &'static str {
        macro_rules! proto {
            ($f:literal) => {
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/proto/tickflow/normalized/v2beta1/",
                    $f
                ))
            };
        }
        match self {
            DataType::Trade => proto!("trade.proto"),
            DataType::Level2Book => proto!("level2_book.proto"),
            DataType::Level2Delta => proto!("level2_delta.proto"),
            DataType::TopOfBook => proto!("top_of_book.proto"),
            DataType::Ticker => proto!("ticker.proto"),
            DataType::Funding => proto!("funding.proto"),
            DataType::OpenInterest => proto!("open_interest.proto"),
            DataType::Liquidation => proto!("liquidation.proto"),
            DataType::Candle => proto!("candle.proto"),
            DataType::FeedEvent => proto!("feed_event.proto"),
        }
    }

    /// Looks a data type up by its snake_case name.
    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed normalized record, ready to be encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalized {
    /// See [`Trade`].
    Trade(Trade),
    /// See [`Level2Book`].
    Level2Book(Level2Book),
    /// See [`Level2Delta`].
    Level2Delta(Level2Delta),
    /// See [`TopOfBook`].
    TopOfBook(TopOfBook),
    /// See [`Ticker`].
    Ticker(Ticker),
    /// See [`Funding`].
    Funding(Funding),
    /// See [`OpenInterest`].
    OpenInterest(OpenInterest),
    /// See [`Liquidation`].
    Liquidation(Liquidation),
    /// See [`Candle`].
    Candle(Candle),
    /// See [`FeedEvent`].
    FeedEvent(FeedEvent),
}

/// Applies `$body` to the inner message of a [`Normalized`], whatever its type.
macro_rules! with_inner {
    ($value:expr, $m:ident => $body:expr) => {
        match $value {
            Normalized::Trade($m) => $body,
            Normalized::Level2Book($m) => $body,
            Normalized::Level2Delta($m) => $body,
            Normalized::TopOfBook($m) => $body,
            Normalized::Ticker($m) => $body,
            Normalized::Funding($m) => $body,
            Normalized::OpenInterest($m) => $body,
            Normalized::Liquidation($m) => $body,
            Normalized::Candle($m) => $body,
            Normalized::FeedEvent($m) => $body,
        }
    };
}

impl Normalized {
    /// The record's data type.
    pub fn data_type(&self) -> DataType {
        match self {
            Normalized::Trade(_) => DataType::Trade,
            Normalized::Level2Book(_) => DataType::Level2Book,
            Normalized::Level2Delta(_) => DataType::Level2Delta,
            Normalized::TopOfBook(_) => DataType::TopOfBook,
            Normalized::Ticker(_) => DataType::Ticker,
            Normalized::Funding(_) => DataType::Funding,
            Normalized::OpenInterest(_) => DataType::OpenInterest,
            Normalized::Liquidation(_) => DataType::Liquidation,
            Normalized::Candle(_) => DataType::Candle,
            Normalized::FeedEvent(_) => DataType::FeedEvent,
        }
    }

    /// The venue name carried by the record.
    pub fn exchange(&self) -> &str {
        with_inner!(self, m => &m.exchange)
    }

    /// The normalized symbol carried by the record.
    pub fn symbol(&self) -> &str {
        with_inner!(self, m => &m.symbol)
    }

    /// When the venue timed the record, µs since the epoch: its event (send) time, else its
    /// own timestamp (a candle's is its open, so only its event time counts). `None` for a
    /// `FeedEvent` (timed here) and for a record the venue did not time.
    pub fn exchange_time_us(&self) -> Option<i64> {
        let t = match self {
            Normalized::Trade(m) => m.event_time.or(Some(m.timestamp)),
            Normalized::Level2Book(m) => m.event_time.or(m.timestamp),
            Normalized::Level2Delta(m) => m.event_time.or(m.timestamp),
            Normalized::TopOfBook(m) => m.event_time.or(m.timestamp),
            Normalized::Ticker(m) => m.event_time.or(m.timestamp),
            Normalized::Funding(m) => m.event_time.or(m.timestamp),
            Normalized::OpenInterest(m) => m.event_time.or(m.timestamp),
            Normalized::Liquidation(m) => m.event_time.or(m.timestamp),
            Normalized::Candle(m) => m.event_time,
            Normalized::FeedEvent(_) => None,
        };
        t.filter(|t| *t > 0)
    }

    /// When the message the record came from was received here, µs since the epoch.
    pub fn receipt_time_us(&self) -> i64 {
        with_inner!(self, m => m.receipt_time)
    }

    /// Protobuf encoding of the inner message (no framing).
    pub fn encode_to_vec(&self) -> Vec<u8> {
        with_inner!(self, m => prost::Message::encode_to_vec(m))
    }

    /// Appends the protobuf encoding of the inner message to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        with_inner!(self, m => {
            // No `reserve(encoded_len)` first: `encode` measures the message itself, and a
            // `Vec` grows as needed (it cannot run out of space).
            let _ = prost::Message::encode(m, buf);
        })
    }

    /// Decodes the protobuf payload of `data_type`.
    pub fn decode(data_type: DataType, bytes: &[u8]) -> Result<Normalized, prost::DecodeError> {
        use prost::Message;
        Ok(match data_type {
            DataType::Trade => Normalized::Trade(Trade::decode(bytes)?),
            DataType::Level2Book => Normalized::Level2Book(Level2Book::decode(bytes)?),
            DataType::Level2Delta => Normalized::Level2Delta(Level2Delta::decode(bytes)?),
            DataType::TopOfBook => Normalized::TopOfBook(TopOfBook::decode(bytes)?),
            DataType::Ticker => Normalized::Ticker(Ticker::decode(bytes)?),
            DataType::Funding => Normalized::Funding(Funding::decode(bytes)?),
            DataType::OpenInterest => Normalized::OpenInterest(OpenInterest::decode(bytes)?),
            DataType::Liquidation => Normalized::Liquidation(Liquidation::decode(bytes)?),
            DataType::Candle => Normalized::Candle(Candle::decode(bytes)?),
            DataType::FeedEvent => Normalized::FeedEvent(FeedEvent::decode(bytes)?),
        })
    }
}
