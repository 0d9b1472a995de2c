//! A purpose-built scanner for Binance's fixed `trade`, `aggTrade` and `depthUpdate` shapes
//! (spot, USD-M, COIN-M; combined-stream envelope or bare), borrowing every string from the
//! frame.
//!
//! It accepts only a strict subset of JSON: no whitespace, no escapes, known keys each at most
//! once, integers as plain digits without leading zeros that fit an `i64`, booleans, strings
//! without escapes or control characters. On anything else it declines (`None`) and the frame
//! takes the `serde_json` path, which stays the authority: what the scanner yields is exactly
//! what `serde_json` yields for the same text (`fuzz/fuzz_targets/binance_scanner.rs` checks
//! this on arbitrary input). Trade decimals are checked after the scan by the same strict check
//! ([`crate::venues::decimal`]) the `serde_json` path applies after its parse; a depth level's
//! decimals are checked as they are copied into the diff's [`Levels`], and a level that fails
//! declines the frame, so the `serde_json` path reports it.

use crate::book::Levels;
use crate::schema::borrowed::LevelKey;
use crate::venues::scan::{once, set, Cursor};

use super::messages::{AggTrade, Trade};

/// A trade event the scanner read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned<'a> {
    /// `<symbol>@trade`.
    Trade(Trade<'a>),
    /// `<symbol>@aggTrade`.
    AggTrade(AggTrade<'a>),
    /// `<symbol>@depth` (`depthUpdate`).
    Depth(Depth<'a>),
}

/// A depth update: [`super::messages::DepthUpdate`] with its levels checked and copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth<'a> {
    /// Event time, ms.
    pub event_time: i64,
    /// Transaction time, ms (futures).
    pub transaction_time: Option<i64>,
    /// Symbol.
    pub symbol: &'a str,
    /// First update id.
    pub first_update_id: i64,
    /// Final update id.
    pub final_update_id: i64,
    /// Previous final update id (futures).
    pub prev_final_update_id: Option<i64>,
    /// Bids, each decimal strictly checked.
    pub bids: Levels,
    /// Asks, each decimal strictly checked.
    pub asks: Levels,
}

/// Scans a whole frame: `{"stream":"<name>","data":{..}}` whose stream kind is `trade` or
/// `aggTrade`, or a bare `{"e":"trade",..}` / `{"e":"aggTrade",..}`. `None` when the frame is
/// anything else or not exactly the expected shape.
pub fn scan_frame(text: &str) -> Option<Scanned<'_>> {
    if let Some((stream, data)) = super::envelope::combined_fast(text) {
        return match super::envelope::stream_kind(stream) {
            "trade" => scan_trade(data).map(Scanned::Trade),
            "aggTrade" => scan_agg_trade(data).map(Scanned::AggTrade),
            "depth" | "depthUpdate" => scan_depth(data).map(Scanned::Depth),
            _ => None,
        };
    }
    // A bare event names its type in `e`, which Binance writes first.
    if text.starts_with(r#"{"e":"trade","#) {
        scan_trade(text).map(Scanned::Trade)
    } else if text.starts_with(r#"{"e":"aggTrade","#) {
        scan_agg_trade(text).map(Scanned::AggTrade)
    } else if text.starts_with(r#"{"e":"depthUpdate","#) {
        scan_depth(text).map(Scanned::Depth)
    } else {
        None
    }
}

/// Scans a `trade` payload object (the whole of `json`): what `serde_json::from_str::<Trade>`
/// gives, or `None`.
pub fn scan_trade(json: &str) -> Option<Trade<'_>> {
    let mut c = Cursor::new(json);
    let (mut event_time, mut symbol, mut trade_id, mut price, mut quantity) =
        (None, None, None, None, None);
    let (mut trade_time, mut buyer_is_maker, mut order_type) = (None, None, None);
    // Keys Binance sends that the typed parse ignores (spot's order ids and `M`).
    let mut ignored = 0u8;
    c.object(|c, key| {
        match key {
            // Checked, and at most once: a bare frame's type is read from it.
            (b'e', 0) => once(&mut ignored, 8, c.string().filter(|e| *e == "trade")?),
            (b'E', 0) => set(&mut event_time, c.int()?),
            (b's', 0) => set(&mut symbol, c.string()?),
            (b't', 0) => set(&mut trade_id, c.int()?),
            (b'p', 0) => set(&mut price, c.string()?),
            (b'q', 0) => set(&mut quantity, c.string()?),
            (b'T', 0) => set(&mut trade_time, c.int()?),
            (b'm', 0) => set(&mut buyer_is_maker, c.boolean()?),
            (b'X', 0) => set(&mut order_type, c.string()?),
            (b'b', 0) => once(&mut ignored, 1, c.int()?),
            (b'a', 0) => once(&mut ignored, 2, c.int()?),
            (b'M', 0) => once(&mut ignored, 4, c.boolean()?),
            _ => None,
        }
    })?;
    Some(Trade {
        event_time: event_time?,
        symbol: symbol?,
        trade_id: trade_id?,
        price: price?,
        quantity: quantity?,
        trade_time: trade_time?,
        buyer_is_maker: buyer_is_maker?,
        order_type,
    })
}

/// Scans an `aggTrade` payload object (the whole of `json`): what
/// `serde_json::from_str::<AggTrade>` gives, or `None`.
pub fn scan_agg_trade(json: &str) -> Option<AggTrade<'_>> {
    let mut c = Cursor::new(json);
    let (mut event_time, mut symbol, mut agg_id, mut price, mut quantity) =
        (None, None, None, None, None);
    let (mut first, mut last, mut trade_time, mut buyer_is_maker) = (None, None, None, None);
    let mut ignored = 0u8;
    c.object(|c, key| {
        match key {
            (b'e', 0) => once(&mut ignored, 8, c.string().filter(|e| *e == "aggTrade")?),
            (b'E', 0) => set(&mut event_time, c.int()?),
            (b's', 0) => set(&mut symbol, c.string()?),
            (b'a', 0) => set(&mut agg_id, c.int()?),
            (b'p', 0) => set(&mut price, c.string()?),
            (b'q', 0) => set(&mut quantity, c.string()?),
            (b'f', 0) => set(&mut first, c.int()?),
            (b'l', 0) => set(&mut last, c.int()?),
            (b'T', 0) => set(&mut trade_time, c.int()?),
            (b'm', 0) => set(&mut buyer_is_maker, c.boolean()?),
            (b'M', 0) => once(&mut ignored, 1, c.boolean()?),
            // A key newer spot captures carry (`"st":1`), also ignored by the typed parse.
            (b's', b't') => once(&mut ignored, 2, c.int()?),
            _ => None,
        }
    })?;
    Some(AggTrade {
        event_time: event_time?,
        symbol: symbol?,
        agg_id,
        price: price?,
        quantity: quantity?,
        first_trade_id: first?,
        last_trade_id: last?,
        trade_time: trade_time?,
        buyer_is_maker: buyer_is_maker?,
    })
}

/// Scans a `depthUpdate` payload object (the whole of `json`): what
/// `serde_json::from_str::<DepthUpdate>` gives with its levels passed through
/// [`crate::venues::decimal::keyed_prefix`], or `None` (also when a level's decimal fails the check).
pub fn scan_depth(json: &str) -> Option<Depth<'_>> {
    let mut c = Cursor::new(json);
    let (mut event_time, mut transaction_time, mut symbol) = (None, None, None);
    let (mut first, mut last, mut prev, mut bids, mut asks) = (None, None, None, None, None);
    let mut ignored = 0u8;
    c.object(|c, key| match key {
        (b'e', 0) => once(&mut ignored, 1, c.string().filter(|e| *e == "depthUpdate")?),
        (b'E', 0) => set(&mut event_time, c.int()?),
        (b'T', 0) => set(&mut transaction_time, c.int()?),
        (b's', 0) => set(&mut symbol, c.string()?),
        // COIN-M's pair, which the typed parse ignores.
        (b'p', b's') => once(&mut ignored, 2, c.string()?),
        (b'U', 0) => set(&mut first, c.int()?),
        (b'u', 0) => set(&mut last, c.int()?),
        (b'p', b'u') => set(&mut prev, c.int()?),
        (b'b', 0) => set(&mut bids, levels(c)?),
        (b'a', 0) => set(&mut asks, levels(c)?),
        _ => None,
    })?;
    Some(Depth {
        event_time: event_time?,
        transaction_time,
        symbol: symbol?,
        first_update_id: first?,
        final_update_id: last?,
        prev_final_update_id: prev,
        bids: bids?,
        asks: asks?,
    })
}

/// `[["price","qty"],...]`, each decimal checked and keyed by
/// [`crate::venues::decimal::keyed_prefix`] as it is copied.
fn levels(c: &mut Cursor<'_>) -> Option<Levels> {
    c.eat(b'[')?;
    if c.eat(b']').is_some() {
        return Some(Levels::default());
    }
    // Sized from the array's text (`["p","q"]` is 7 bytes besides its decimals, and one
    // comma between levels), in one pass over its `]`s: each closes a level, and the one
    // followed by `]` closes the last (decimals have no `]`).
    let rest = c.rest();
    let (mut n, mut span) = (0, rest.len());
    for i in memchr::memchr_iter(b']', rest) {
        n += 1;
        if rest.get(i + 1) == Some(&b']') {
            span = i;
            break;
        }
    }
    let mut levels = Levels::with_capacity(n, span.saturating_sub(8 * n));
    loop {
        c.eat(b'[')?;
        // Each decimal read once: checked and keyed for the book as it is scanned.
        let (price, price_key, _) = c.decimal()?;
        c.eat(b',')?;
        let (quantity, _, zero) = c.decimal()?;
        c.eat(b']')?;
        levels.push_keyed(
            price,
            quantity,
            LevelKey {
                price: price_key,
                zero,
            },
        );
        match c.peek()? {
            b',' => c.bump(),
            b']' => {
                c.bump();
                return Some(levels);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded lines (tests/fixtures/binance*/), expected values typed from them.
    const USDM_TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1660228023980,"T":1660228023973,"s":"BTCUSDT","t":2691833663,"p":"24670.90","q":"0.022","X":"MARKET","m":true}}"#;
    const SPOT_TRADE: &str = r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1639351062244,"s":"ETHUSDT","t":705291099,"p":"4149.74000000","q":"0.43870000","b":7038593583,"a":7038593613,"T":1639351062243,"m":true,"M":true}}"#;
    const SPOT_AGG: &str = r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#;
    const COINM_AGG: &str = r#"{"stream":"btcusd_perp@aggTrade","data":{"e":"aggTrade","E":1616201883458,"a":41045788,"s":"BTCUSD_PERP","p":"58570.1","q":"58","f":91864326,"l":91864327,"T":1616201883304,"m":true}}"#;

    fn usdm_trade() -> Trade<'static> {
        Trade {
            event_time: 1660228023980,
            symbol: "BTCUSDT",
            trade_id: 2691833663,
            price: "24670.90",
            quantity: "0.022",
            trade_time: 1660228023973,
            buyer_is_maker: true,
            order_type: Some("MARKET"),
        }
    }

    #[test]
    fn recorded_trades_scan_to_their_fields() {
        assert_eq!(scan_frame(USDM_TRADE), Some(Scanned::Trade(usdm_trade())));
        assert_eq!(
            scan_frame(SPOT_TRADE),
            Some(Scanned::Trade(Trade {
                event_time: 1639351062244,
                symbol: "ETHUSDT",
                trade_id: 705291099,
                price: "4149.74000000",
                quantity: "0.43870000",
                trade_time: 1639351062243,
                buyer_is_maker: true,
                order_type: None,
            }))
        );
        assert_eq!(
            scan_frame(SPOT_AGG),
            Some(Scanned::AggTrade(AggTrade {
                event_time: 1633998523963,
                symbol: "NKNUSDT",
                agg_id: Some(15683430),
                price: "0.35280000",
                quantity: "58.00000000",
                first_trade_id: 19862790,
                last_trade_id: 19862790,
                trade_time: 1633998523963,
                buyer_is_maker: false,
            }))
        );
        assert_eq!(
            scan_frame(COINM_AGG),
            Some(Scanned::AggTrade(AggTrade {
                event_time: 1616201883458,
                symbol: "BTCUSD_PERP",
                agg_id: Some(41045788),
                price: "58570.1",
                quantity: "58",
                first_trade_id: 91864326,
                last_trade_id: 91864327,
                trade_time: 1616201883304,
                buyer_is_maker: true,
            }))
        );
        // Bare (non-combined), as a raw stream sends it.
        let bare = r#"{"e":"trade","E":1660228023980,"T":1660228023973,"s":"BTCUSDT","t":2691833663,"p":"24670.90","q":"0.022","X":"MARKET","m":true}"#;
        assert_eq!(scan_frame(bare), Some(Scanned::Trade(usdm_trade())));
        // Keys in another order are still the fixed shape.
        let reordered = r#"{"m":true,"X":"MARKET","q":"0.022","p":"24670.90","t":2691833663,"s":"BTCUSDT","T":1660228023973,"E":1660228023980,"e":"trade"}"#;
        assert_eq!(scan_trade(reordered), Some(usdm_trade()));
    }

    #[test]
    fn anything_unexpected_is_declined() {
        let data = &USDM_TRADE[r#"{"stream":"btcusdt@trade","data":"#.len()..USDM_TRADE.len() - 1];
        assert_eq!(scan_trade(data), Some(usdm_trade()));
        for (from, to) in [
            (r#""s":"BTCUSDT""#, r#""s":"BTC\u0055SDT""#), // escaped string
            (r#""s":"BTCUSDT""#, r#""s":"BTC	USDT""#),     // raw control character
            (r#""m":true"#, r#""m":true,"x":1"#),          // extra key
            (r#""m":true"#, r#""m":true,"E":1"#),          // duplicate key
            (r#""m":true"#, r#""m":true,"b":1,"b":2"#),    // duplicate ignored key
            (r#""m":true"#, r#""m":true,"e":"trade""#),    // duplicate type
            (r#","X":"MARKET""#, ""),                      // optional key absent: fine
            (r#","m":true"#, ""),                          // missing key
            (r#""t":2691833663"#, r#""t":99999999999999999999"#), // beyond i64
            (r#""t":2691833663"#, r#""t":9223372036854775808"#), // i64::MAX + 1
            (r#""t":2691833663"#, r#""t":-0"#),
            (r#""t":2691833663"#, r#""t":-1"#),
            (r#""t":2691833663"#, r#""t":01"#),
            (r#""t":2691833663"#, r#""t":1e3"#),
            (r#""t":2691833663"#, r#""t":1.0"#),
            (r#""t":2691833663"#, r#""t":"1""#),
            (r#""m":true"#, r#""m":1"#),
            (r#""m":true"#, r#""m":tru"#),
            (r#""X":"MARKET""#, r#""X":null"#),
            (r#""e":"trade""#, r#""e":"aggTrade""#),
            (r#","T":"#, r#", "T":"#), // whitespace
        ] {
            let changed = data.replacen(from, to, 1);
            assert_ne!(changed, data, "{from} is in the line");
            let scanned = scan_trade(&changed);
            if to.is_empty() && from.contains('X') {
                let mut t = usdm_trade();
                t.order_type = None;
                assert_eq!(scanned, Some(t));
            } else {
                assert_eq!(scanned, None, "{changed}");
            }
        }
        assert_eq!(scan_trade(&format!("{data} ")), None);
        assert_eq!(scan_trade(&data[..data.len() - 1]), None);
        assert_eq!(scan_trade("{}"), None);
        assert_eq!(scan_trade(""), None);
        // i64::MAX itself is an i64.
        let max = data.replacen("2691833663", "9223372036854775807", 1);
        assert_eq!(scan_trade(&max).map(|t| t.trade_id), Some(i64::MAX));
        let zero = data.replacen("2691833663", "0", 1);
        assert_eq!(scan_trade(&zero).map(|t| t.trade_id), Some(0));
        // Another kind of stream, or payload running into further envelope keys.
        assert_eq!(
            scan_frame(&USDM_TRADE.replacen("@trade", "@depth", 1)),
            None
        );
        let venue_error = USDM_TRADE.replacen("}}", r#"},"code":-1121}"#, 1);
        assert_eq!(scan_frame(&venue_error), None);
    }

    #[test]
    fn every_recorded_trade_and_depth_update_is_scanned_and_gives_the_general_paths_records() {
        use crate::venues::SymbolMap;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut scanned = 0;
        for file in [
            "binance/binance_trade.jsonl",
            "binance/binance_aggTrade.jsonl",
            "binance/binance_futures_trade.jsonl",
            "binance/binance_futures_aggTrade.jsonl",
            "binance_coinm/binance_coinm_aggTrade.jsonl",
            "binance/binance_depthUpdate.jsonl",
            "binance/binance_futures_depthUpdate.jsonl",
            "binance_coinm/binance_coinm_depthUpdate.jsonl",
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            for line in text.lines() {
                let Some(ev) = scan_frame(line) else {
                    panic!("declined a recorded line of {file}: {line}")
                };
                let symbol = match &ev {
                    Scanned::Trade(t) => t.symbol,
                    Scanned::AggTrade(t) => t.symbol,
                    Scanned::Depth(d) => d.symbol,
                };
                let map = SymbolMap::new([(symbol.to_string(), "X-Y".to_string())]);
                let (mut fast, mut general) = (Vec::new(), Vec::new());
                let a = super::super::parse::parse_frame("BINANCE", line, 5, &map, &mut fast);
                let b = super::super::parse::parse_frame_general(
                    "BINANCE",
                    line,
                    5,
                    &map,
                    &mut general,
                );
                assert!(a.is_ok() && b.is_ok(), "{line}");
                assert_eq!(fast.len(), 1);
                assert_eq!(fast, general, "{line}");
                scanned += 1;
            }
        }
        // Every line of the files above (7 + 8 trade lines, 177 + 769 + 12 depth lines at the
        // time of writing; at least the two largest files' worth).
        assert!(scanned >= 177 + 769, "{scanned}");
    }

    #[test]
    fn a_recorded_depth_update_scans_to_its_levels_and_bad_ones_are_declined() {
        let line = r#"{"stream":"btcusd_210625@depth@100ms","data":{"e":"depthUpdate","E":1622368000245,"T":1622368000234,"s":"BTCUSD_210625","ps":"BTCUSD","U":127531213607,"u":127531214406,"pu":127531213513,"b":[["35943.8","60"],["35965.2","896"]],"a":[["36038.3","9"]]}}"#;
        let Some(Scanned::Depth(d)) = scan_frame(line) else {
            panic!("not scanned")
        };
        assert_eq!(
            (d.event_time, d.transaction_time, d.symbol),
            (1622368000245, Some(1622368000234), "BTCUSD_210625")
        );
        assert_eq!(
            (d.first_update_id, d.final_update_id, d.prev_final_update_id),
            (127531213607, 127531214406, Some(127531213513))
        );
        let bids: Vec<_> = d.bids.iter().collect();
        assert_eq!(bids, [("35943.8", "60"), ("35965.2", "896")]);
        let asks: Vec<_> = d.asks.iter().collect();
        assert_eq!(asks, [("36038.3", "9")]);
        let empty = line.replacen(r#"[["36038.3","9"]]"#, "[]", 1);
        let Some(Scanned::Depth(d)) = scan_frame(&empty) else {
            panic!("not scanned")
        };
        assert!(d.asks.is_empty() && d.bids.len() == 2);
        for (from, to) in [
            (r#""60""#, r#""-60""#),                     // negative quantity
            (r#""60""#, r#""6e1""#),                     // exponent
            (r#""60""#, r#""60.""#),                     // no fraction digits
            (r#""60""#, r#"60"#),                        // a number, not a string
            (r#""60"]"#, r#""60","1"]"#),                // three elements
            (r#"["35943.8","60"],"#, r#"["35943.8"],"#), // one element
            (r#""ps":"BTCUSD""#, r#""ps":"BTCUSD","ps":"BTCUSD""#),
            (r#""pu":127531213513"#, r#""pu":null"#),
            (r#"[["36038.3","9"]]"#, r#"[["36038.3","9"],]"#),
        ] {
            let changed = line.replacen(from, to, 1);
            assert_ne!(changed, line, "{from} is in the line");
            assert_eq!(scan_frame(&changed), None, "{changed}");
        }
    }
}
