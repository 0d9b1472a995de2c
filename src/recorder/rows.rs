//! Normalized records → typed table rows. Decimals stay exact (the venue's text, checked here
//! and cast to `numeric` by PostgreSQL); µs-since-epoch times become `timestamptz` (µs).

use bytes::BytesMut;
use thiserror::Error;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::schema::v2beta1::{liquidation, trade};
use crate::schema::Normalized;

/// How a column is staged (binary COPY) and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `text`.
    Text,
    /// Staged as `text`, stored as `numeric` (exact).
    Numeric,
    /// `bigint`.
    Int8,
    /// `integer`.
    Int4,
    /// `boolean`.
    Bool,
    /// `timestamptz` (µs).
    Ts,
    /// Staged as `text`, stored as `jsonb`.
    Jsonb,
}

impl Kind {
    /// The staging column type.
    pub fn staging_type(self) -> Type {
        match self {
            Kind::Text | Kind::Numeric | Kind::Jsonb => Type::TEXT,
            Kind::Int8 => Type::INT8,
            Kind::Int4 => Type::INT4,
            Kind::Bool => Type::BOOL,
            Kind::Ts => Type::TIMESTAMPTZ,
        }
    }

    fn staging_sql(self) -> &'static str {
        match self {
            Kind::Text | Kind::Numeric | Kind::Jsonb => "text",
            Kind::Int8 => "bigint",
            Kind::Int4 => "integer",
            Kind::Bool => "boolean",
            Kind::Ts => "timestamptz",
        }
    }
}

/// One table: its name and columns (the Kafka coordinates first).
#[derive(Debug)]
pub struct Table {
    /// Table name.
    pub name: &'static str,
    /// Columns in row order.
    pub columns: &'static [(&'static str, Kind)],
}

const fn table(name: &'static str, columns: &'static [(&'static str, Kind)]) -> Table {
    Table { name, columns }
}

use Kind::*;

/// `trades`.
pub static TRADES: Table = table(
    "trades",
    &[
        ("kafka_topic", Text),
        ("kafka_partition", Int4),
        ("kafka_offset", Int8),
        ("kafka_record_id", Text),
        ("exchange", Text),
        ("symbol", Text),
        ("trade_id", Text),
        ("side", Text),
        ("price", Numeric),
        ("amount", Numeric),
        ("timestamp", Ts),
        ("event_time", Ts),
        ("receipt_time", Ts),
        ("maker", Bool),
        ("trade_type", Text),
        ("raw_id", Text),
    ],
);

/// `top_of_book`.
pub static TOP_OF_BOOK: Table = table(
    "top_of_book",
    &[
        ("kafka_topic", Text),
        ("kafka_partition", Int4),
        ("kafka_offset", Int8),
        ("kafka_record_id", Text),
        ("exchange", Text),
        ("symbol", Text),
        ("bid_price", Numeric),
        ("bid_size", Numeric),
        ("ask_price", Numeric),
        ("ask_size", Numeric),
        ("timestamp", Ts),
        ("event_time", Ts),
        ("receipt_time", Ts),
        ("update_id", Int8),
    ],
);

/// `tickers`.
pub static TICKERS: Table = table(
    "tickers",
    &[
        ("kafka_topic", Text),
        ("kafka_partition", Int4),
        ("kafka_offset", Int8),
        ("kafka_record_id", Text),
        ("exchange", Text),
        ("symbol", Text),
        ("bid", Numeric),
        ("ask", Numeric),
        ("last", Numeric),
        ("open", Numeric),
        ("high", Numeric),
        ("low", Numeric),
        ("volume", Numeric),
        ("quote_volume", Numeric),
        ("timestamp", Ts),
        ("event_time", Ts),
        ("receipt_time", Ts),
    ],
);

/// `funding`.
pub static FUNDING: Table = table(
    "funding",
    &[
        ("kafka_topic", Text),
        ("kafka_partition", Int4),
        ("kafka_offset", Int8),
        ("kafka_record_id", Text),
        ("exchange", Text),
        ("symbol", Text),
        ("mark_price", Numeric),
        ("rate", Numeric),
        ("predicted_rate", Numeric),
        ("index_price", Numeric),
        ("next_funding_time", Ts),
        ("timestamp", Ts),
        ("event_time", Ts),
        ("receipt_time", Ts),
    ],
);

/// `open_interest`.
pub static OPEN_INTEREST: Table = table(
    "open_interest",
    &[
        ("kafka_topic", Text),
        ("kafka_partition", Int4),
        ("kafka_offset", Int8),
        ("kafka_record_id", Text),
        ("exchange", Text),
        ("symbol", Text),
        ("open_interest", Numeric),
        ("timestamp", Ts),
        ("event_time", Ts),
        ("receipt_time", Ts),
    ],
);

/// `liquidations`.
pub static LIQUIDATIONS: Table = table(
    "liquidations",
    &[
        ("kafka_topic", Text),
        ("kafka_partition", Int4),
        ("kafka_offset", Int8),
        ("kafka_record_id", Text),
        ("exchange", Text),
        ("symbol", Text),
        ("side", Text),
        ("quantity", Numeric),
        ("price", Numeric),
        ("order_id", Text),
        ("status", Text),
        ("timestamp", Ts),
        ("event_time", Ts),
        ("receipt_time", Ts),
    ],
);

/// `candles`.
pub static CANDLES: Table = table(
    "candles",
    &[
        ("kafka_topic", Text),
        ("kafka_partition", Int4),
        ("kafka_offset", Int8),
        ("kafka_record_id", Text),
        ("exchange", Text),
        ("symbol", Text),
        ("start", Ts),
        ("stop", Ts),
        ("interval", Text),
        ("trades", Int8),
        ("open", Numeric),
        ("close", Numeric),
        ("high", Numeric),
        ("low", Numeric),
        ("volume", Numeric),
        ("quote_volume", Numeric),
        ("closed", Bool),
        ("timestamp", Ts),
        ("event_time", Ts),
        ("receipt_time", Ts),
    ],
);

/// `books` (`Level2Book` snapshots as `jsonb`).
pub static BOOKS: Table = table(
    "books",
    &[
        ("kafka_topic", Text),
        ("kafka_partition", Int4),
        ("kafka_offset", Int8),
        ("kafka_record_id", Text),
        ("exchange", Text),
        ("symbol", Text),
        ("bids", Jsonb),
        ("asks", Jsonb),
        ("timestamp", Ts),
        ("sequence", Int8),
        ("checksum", Text),
        ("event_time", Ts),
        ("last_update_id", Int8),
        ("receipt_time", Ts),
    ],
);

/// Every table, in a fixed order (the order batches write them in).
pub static TABLES: [&Table; 8] = [
    &TRADES,
    &TOP_OF_BOOK,
    &TICKERS,
    &FUNDING,
    &OPEN_INTEREST,
    &LIQUIDATIONS,
    &CANDLES,
    &BOOKS,
];

fn quote(ident: &str) -> String {
    format!("\"{ident}\"")
}

impl Table {
    /// The per-session staging table's name.
    pub fn staging(&self) -> String {
        format!("stage_{}", self.name)
    }

    /// `CREATE TEMP TABLE IF NOT EXISTS` of the staging table (emptied at each commit).
    pub fn create_staging_sql(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(n, k)| format!("{} {}", quote(n), k.staging_sql()))
            .collect();
        format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS",
            self.staging(),
            cols.join(", ")
        )
    }

    /// `COPY stage FROM STDIN (FORMAT binary)`.
    pub fn copy_sql(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|(n, _)| quote(n)).collect();
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            self.staging(),
            cols.join(", ")
        )
    }

    /// `INSERT INTO t SELECT … FROM stage ON CONFLICT DO NOTHING`.
    pub fn insert_sql(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|(n, _)| quote(n)).collect();
        let exprs: Vec<String> = self
            .columns
            .iter()
            .map(|(n, k)| match k {
                Kind::Numeric => format!("{}::numeric", quote(n)),
                Kind::Jsonb => format!("{}::jsonb", quote(n)),
                _ => quote(n),
            })
            .collect();
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING",
            self.name,
            cols.join(", "),
            exprs.join(", "),
            self.staging()
        )
    }

    /// The staging column types, for the binary COPY writer.
    pub fn staging_types(&self) -> Vec<Type> {
        self.columns.iter().map(|(_, k)| k.staging_type()).collect()
    }
}

/// One value, written in the staging column's binary format.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// `text` (also numeric and jsonb text); `None` is NULL.
    Text(Option<String>),
    /// `bigint`.
    Int8(Option<i64>),
    /// `integer`.
    Int4(i32),
    /// `boolean`.
    Bool(Option<bool>),
    /// µs since the Unix epoch, as `timestamptz`.
    Ts(Option<i64>),
}

/// µs between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Text(Some(s)) => s.as_str().to_sql(ty, out),
            Cell::Int8(Some(v)) => v.to_sql(ty, out),
            Cell::Int4(v) => v.to_sql(ty, out),
            Cell::Bool(Some(v)) => v.to_sql(ty, out),
            // timestamptz's binary form is an int8 of µs since 2000-01-01 UTC.
            Cell::Ts(Some(us)) => (us - PG_EPOCH_US).to_sql(&Type::INT8, out),
            Cell::Text(None) | Cell::Int8(None) | Cell::Bool(None) | Cell::Ts(None) => {
                Ok(IsNull::Yes)
            }
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::TEXT,
            Type::INT8,
            Type::INT4,
            Type::BOOL,
            Type::TIMESTAMPTZ,
        ]
        .contains(ty)
    }

    to_sql_checked!();
}

/// A record that cannot become a row (it is dead-lettered, never retried).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RowError {
    /// A decimal field is not a plain decimal number.
    #[error("field `{0}` is not a decimal number")]
    BadDecimal(&'static str),
    /// A required decimal field is empty.
    #[error("field `{0}` is empty")]
    MissingDecimal(&'static str),
    /// A time is outside years 1..=9999.
    #[error("field `{0}` is out of range")]
    BadTime(&'static str),
    /// A text field holds a NUL character (PostgreSQL text cannot).
    #[error("field `{0}` holds a NUL character")]
    BadText(&'static str),
    /// The record's type is not stored by this recorder.
    #[error("{0} records are not recorded")]
    NotRecorded(&'static str),
}

impl RowError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RowError::BadDecimal(_) => "bad_decimal",
            RowError::MissingDecimal(_) => "missing_decimal",
            RowError::BadTime(_) => "bad_time",
            RowError::BadText(_) => "bad_text",
            RowError::NotRecorded(_) => "not_recorded",
        }
    }
}

/// Longest decimal text accepted (far above any venue's, far below PostgreSQL's limits).
const MAX_DECIMAL_LEN: usize = 256;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in µs since the Unix epoch.
const MIN_US: i64 = -62_135_596_800_000_000;
const MAX_US: i64 = 253_402_300_799_999_999;

/// Whether `s` is a plain decimal: optional sign, digits, optional fraction (no exponent,
/// no NaN or infinity).
pub fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_DECIMAL_LEN {
        return false;
    }
    let body = match b[0] {
        b'-' | b'+' => &b[1..],
        _ => b,
    };
    let mut digits = 0;
    let mut dots = 0;
    for &c in body {
        match c {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return false,
        }
    }
    digits > 0 && dots <= 1
}

fn text(field: &'static str, s: &str) -> Result<Cell, RowError> {
    if s.contains('\0') {
        return Err(RowError::BadText(field));
    }
    Ok(Cell::Text(Some(s.to_string())))
}

/// An optional text: empty is NULL.
fn text_opt(field: &'static str, s: Option<&str>) -> Result<Cell, RowError> {
    match s {
        None | Some("") => Ok(Cell::Text(None)),
        Some(s) => text(field, s),
    }
}

/// A decimal; empty is NULL.
fn dec(field: &'static str, s: &str) -> Result<Cell, RowError> {
    if s.is_empty() {
        return Ok(Cell::Text(None));
    }
    if !is_decimal(s) {
        return Err(RowError::BadDecimal(field));
    }
    Ok(Cell::Text(Some(s.to_string())))
}

/// A decimal that must be present.
fn dec_req(field: &'static str, s: &str) -> Result<Cell, RowError> {
    if s.is_empty() {
        return Err(RowError::MissingDecimal(field));
    }
    dec(field, s)
}

fn dec_opt(field: &'static str, s: Option<&str>) -> Result<Cell, RowError> {
    dec(field, s.unwrap_or(""))
}

fn ts(field: &'static str, us: i64) -> Result<Cell, RowError> {
    if !(MIN_US..=MAX_US).contains(&us) {
        return Err(RowError::BadTime(field));
    }
    Ok(Cell::Ts(Some(us)))
}

fn ts_opt(field: &'static str, us: Option<i64>) -> Result<Cell, RowError> {
    match us {
        None => Ok(Cell::Ts(None)),
        Some(us) => ts(field, us),
    }
}

fn trade_side(side: i32) -> Cell {
    Cell::Text(match trade::Side::try_from(side) {
        Ok(trade::Side::Buy) => Some("buy".into()),
        Ok(trade::Side::Sell) => Some("sell".into()),
        _ => None,
    })
}

fn liquidation_side(side: i32) -> Cell {
    Cell::Text(match liquidation::Side::try_from(side) {
        Ok(liquidation::Side::Buy) => Some("buy".into()),
        Ok(liquidation::Side::Sell) => Some("sell".into()),
        _ => None,
    })
}

/// Where a record came from in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Coords {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The producer's `record_id` header, when the record has a well-formed one (tickflow's
    /// producer sets it): with the coordinates, the record's identity (offsets restart when a
    /// topic is created again).
    pub record_id: Option<String>,
}

/// A record as a row of its table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The table.
    pub table: &'static Table,
    /// Values in the table's column order.
    pub cells: Vec<Cell>,
}

fn levels_json<'a>(levels: impl Iterator<Item = (&'a str, &'a str)>) -> Result<String, RowError> {
    let mut out = Vec::new();
    for (p, q) in levels {
        if !is_decimal(p) {
            return Err(RowError::BadDecimal("price"));
        }
        if !is_decimal(q) {
            return Err(RowError::BadDecimal("quantity"));
        }
        // Decimal text as JSON strings: jsonb keeps them exactly.
        out.push([p, q]);
    }
    Ok(serde_json::to_string(&out).unwrap_or_else(|_| "[]".into()))
}

/// The row of `record`, which came from `coords`.
pub fn to_row(coords: &Coords, record: &Normalized) -> Result<Row, RowError> {
    let mut cells = vec![
        text("kafka_topic", &coords.topic)?,
        Cell::Int4(coords.partition),
        Cell::Int8(Some(coords.offset)),
        Cell::Text(coords.record_id.clone()),
        text("exchange", record.exchange())?,
        text("symbol", record.symbol())?,
    ];
    let table: &'static Table = match record {
        Normalized::Trade(t) => {
            cells.extend([
                text_opt("trade_id", Some(&t.trade_id))?,
                trade_side(t.side),
                dec_req("price", &t.price)?,
                dec_req("amount", &t.amount)?,
                ts("timestamp", t.timestamp)?,
                ts_opt("event_time", t.event_time)?,
                ts("receipt_time", t.receipt_time)?,
                Cell::Bool(t.maker),
                text_opt("trade_type", t.trade_type.as_deref())?,
                text_opt("raw_id", Some(&t.raw_id))?,
            ]);
            &TRADES
        }
        Normalized::TopOfBook(b) => {
            cells.extend([
                dec("bid_price", &b.bid_price)?,
                dec("bid_size", &b.bid_size)?,
                dec("ask_price", &b.ask_price)?,
                dec("ask_size", &b.ask_size)?,
                ts_opt("timestamp", b.timestamp)?,
                ts_opt("event_time", b.event_time)?,
                ts("receipt_time", b.receipt_time)?,
                Cell::Int8(b.update_id),
            ]);
            &TOP_OF_BOOK
        }
        Normalized::Ticker(t) => {
            cells.extend([
                dec("bid", &t.bid)?,
                dec("ask", &t.ask)?,
                dec("last", &t.last)?,
                dec("open", &t.open)?,
                dec("high", &t.high)?,
                dec("low", &t.low)?,
                dec("volume", &t.volume)?,
                dec("quote_volume", &t.quote_volume)?,
                ts_opt("timestamp", t.timestamp)?,
                ts_opt("event_time", t.event_time)?,
                ts("receipt_time", t.receipt_time)?,
            ]);
            &TICKERS
        }
        Normalized::Funding(f) => {
            cells.extend([
                dec("mark_price", &f.mark_price)?,
                dec("rate", &f.rate)?,
                dec_opt("predicted_rate", f.predicted_rate.as_deref())?,
                dec_opt("index_price", f.index_price.as_deref())?,
                ts_opt("next_funding_time", f.next_funding_time)?,
                ts_opt("timestamp", f.timestamp)?,
                ts_opt("event_time", f.event_time)?,
                ts("receipt_time", f.receipt_time)?,
            ]);
            &FUNDING
        }
        Normalized::OpenInterest(o) => {
            cells.extend([
                dec("open_interest", &o.open_interest)?,
                ts_opt("timestamp", o.timestamp)?,
                ts_opt("event_time", o.event_time)?,
                ts("receipt_time", o.receipt_time)?,
            ]);
            &OPEN_INTEREST
        }
        Normalized::Liquidation(l) => {
            cells.extend([
                liquidation_side(l.side),
                dec("quantity", &l.quantity)?,
                dec("price", &l.price)?,
                text_opt("order_id", Some(&l.id))?,
                text_opt("status", Some(&l.status))?,
                ts_opt("timestamp", l.timestamp)?,
                ts_opt("event_time", l.event_time)?,
                ts("receipt_time", l.receipt_time)?,
            ]);
            &LIQUIDATIONS
        }
        Normalized::Candle(c) => {
            cells.extend([
                ts("start", c.start)?,
                ts("stop", c.stop)?,
                text("interval", &c.interval)?,
                Cell::Int8(c.trades),
                dec("open", &c.open)?,
                dec("close", &c.close)?,
                dec("high", &c.high)?,
                dec("low", &c.low)?,
                dec("volume", &c.volume)?,
                dec_opt("quote_volume", c.quote_volume.as_deref())?,
                Cell::Bool(Some(c.closed)),
                ts_opt("timestamp", c.timestamp)?,
                ts_opt("event_time", c.event_time)?,
                ts("receipt_time", c.receipt_time)?,
            ]);
            &CANDLES
        }
        Normalized::Level2Book(b) => {
            let bids = levels_json(
                b.bids
                    .iter()
                    .map(|l| (l.price.as_str(), l.quantity.as_str())),
            )?;
            let asks = levels_json(
                b.asks
                    .iter()
                    .map(|l| (l.price.as_str(), l.quantity.as_str())),
            )?;
            cells.extend([
                Cell::Text(Some(bids)),
                Cell::Text(Some(asks)),
                ts_opt("timestamp", b.timestamp)?,
                Cell::Int8(b.sequence),
                text_opt("checksum", b.checksum.as_deref())?,
                ts_opt("event_time", b.event_time)?,
                Cell::Int8(b.last_update_id),
                ts("receipt_time", b.receipt_time)?,
            ]);
            &BOOKS
        }
        Normalized::Level2Delta(_) => return Err(RowError::NotRecorded("level2_delta")),
        Normalized::FeedEvent(_) => return Err(RowError::NotRecorded("feed_event")),
    };
    Ok(Row { table, cells })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::Trade;

    fn coords() -> Coords {
        Coords {
            topic: "t.trade".into(),
            partition: 2,
            offset: 41,
            record_id: Some("0123456789abcdef0000000000000029".into()),
        }
    }

    #[test]
    fn every_table_has_as_many_cells_as_columns() {
        let records = [
            Normalized::Trade(Trade {
                price: "1".into(),
                amount: "2".into(),
                ..Default::default()
            }),
            Normalized::TopOfBook(Default::default()),
            Normalized::Ticker(Default::default()),
            Normalized::Funding(Default::default()),
            Normalized::OpenInterest(Default::default()),
            Normalized::Liquidation(Default::default()),
            Normalized::Candle(Default::default()),
            Normalized::Level2Book(Default::default()),
        ];
        for r in records {
            let row = to_row(&coords(), &r).unwrap();
            assert_eq!(
                row.cells.len(),
                row.table.columns.len(),
                "{}",
                row.table.name
            );
        }
    }

    #[test]
    fn a_trade_keeps_its_decimal_text_and_microseconds() {
        let t = Trade {
            exchange: "BINANCE".into(),
            symbol: "BTC-USDT".into(),
            side: trade::Side::Sell as i32,
            trade_id: "12".into(),
            price: "0.00012300".into(),
            amount: "-1.5".into(),
            timestamp: 1_619_712_000_123_456,
            receipt_time: 7,
            maker: Some(true),
            ..Default::default()
        };
        let row = to_row(&coords(), &Normalized::Trade(t)).unwrap();
        let col = |name: &str| {
            let i = TRADES.columns.iter().position(|(n, _)| *n == name).unwrap();
            row.cells[i].clone()
        };
        assert_eq!(col("price"), Cell::Text(Some("0.00012300".into())));
        assert_eq!(col("amount"), Cell::Text(Some("-1.5".into())));
        assert_eq!(col("side"), Cell::Text(Some("sell".into())));
        assert_eq!(col("timestamp"), Cell::Ts(Some(1_619_712_000_123_456)));
        assert_eq!(col("event_time"), Cell::Ts(None));
        assert_eq!(col("maker"), Cell::Bool(Some(true)));
        assert_eq!(col("trade_type"), Cell::Text(None));
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let base = Trade {
            price: "1".into(),
            amount: "1".into(),
            ..Default::default()
        };
        let bad = |t: Trade| to_row(&coords(), &Normalized::Trade(t)).unwrap_err();
        for p in ["1e5", "NaN", "Infinity", "1.2.3", "-", ".", "0x10", " 1"] {
            let t = Trade {
                price: p.into(),
                ..base.clone()
            };
            assert_eq!(bad(t), RowError::BadDecimal("price"), "{p:?}");
        }
        let t = Trade {
            amount: String::new(),
            ..base.clone()
        };
        assert_eq!(bad(t), RowError::MissingDecimal("amount"));
        let t = Trade {
            timestamp: i64::MAX,
            ..base.clone()
        };
        assert_eq!(bad(t), RowError::BadTime("timestamp"));
        let t = Trade {
            symbol: "BTC\0".into(),
            ..base.clone()
        };
        assert_eq!(bad(t), RowError::BadText("symbol"));
        assert!(is_decimal("-0.5") && is_decimal("12") && is_decimal("+3.") && is_decimal(".5"));
    }

    #[test]
    fn timestamptz_is_microseconds_since_2000() {
        let mut out = BytesMut::new();
        Cell::Ts(Some(946_684_800_000_001))
            .to_sql(&Type::TIMESTAMPTZ, &mut out)
            .unwrap();
        assert_eq!(&out[..], &1i64.to_be_bytes());
    }
}
