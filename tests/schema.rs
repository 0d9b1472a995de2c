//! Schema tests: every normalized type round-trips, and the compatibility gate passes the
//! committed baseline, passes additive changes and catches breaking ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use prost_types::FileDescriptorSet;
use tickflow::schema::compat::{breaking_changes, decode_set};
use tickflow::schema::v2beta1::{feed_event, level2_book::PriceLevel, liquidation, trade};
use tickflow::schema::*;

const BASELINE: &str = "proto/baseline/tickflow.normalized.v2beta1.binpb";
const DIR: &str = "proto/tickflow/normalized/v2beta1";

fn samples() -> Vec<Normalized> {
    let lvl = |p: &str, q: &str| PriceLevel {
        price: p.into(),
        quantity: q.into(),
    };
    vec![
        Normalized::Trade(Trade {
            exchange: "BINANCE".into(),
            symbol: "NKN-USDT".into(),
            side: trade::Side::Buy as i32,
            trade_id: "12".into(),
            price: "0.00001000".into(),
            amount: "123456789.12345678".into(),
            timestamp: 1,
            raw_id: "12".into(),
            maker: Some(false),
            receipt_time: 3,
            ..Default::default()
        }),
        Normalized::Level2Book(Level2Book {
            exchange: "BINANCE".into(),
            symbol: "BTC-USDT".into(),
            bids: vec![lvl("58850.01", "0.5"), lvl("58850.00", "0")],
            asks: vec![lvl("58850.02", "1.000")],
            last_update_id: Some(499_869_752),
            receipt_time: 9,
            ..Default::default()
        }),
        Normalized::Level2Delta(Level2Delta {
            exchange: "BINANCE_FUTURES".into(),
            symbol: "BTC-USDT-PERP".into(),
            first_update_id: Some(10),
            last_update_id: Some(12),
            prev_update_id: Some(9),
            ..Default::default()
        }),
        Normalized::TopOfBook(TopOfBook {
            bid_price: "1.10".into(),
            ask_size: "0".into(),
            ..Default::default()
        }),
        Normalized::Ticker(Ticker {
            last: "3.14159".into(),
            ..Default::default()
        }),
        Normalized::Funding(Funding {
            rate: "-0.00010000".into(),
            next_funding_time: Some(7),
            ..Default::default()
        }),
        Normalized::OpenInterest(OpenInterest {
            open_interest: "0.000".into(),
            ..Default::default()
        }),
        Normalized::Liquidation(Liquidation {
            side: liquidation::Side::Sell as i32,
            ..Default::default()
        }),
        Normalized::Candle(Candle {
            interval: "1m".into(),
            closed: true,
            trades: Some(0),
            ..Default::default()
        }),
        Normalized::FeedEvent(FeedEvent {
            exchange: "KRAKEN".into(),
            symbol: "XMR-USD".into(),
            kind: feed_event::Kind::ChecksumMismatch as i32,
            reason: "checksum mismatch: venue 2583817756, local 1822697057".into(),
            expected_id: Some(-1),
            since: Some(0),
            ..Default::default()
        }),
    ]
}

#[test]
fn every_type_round_trips_with_exact_decimal_digits() {
    let all = samples();
    assert_eq!(all.len(), DataType::ALL.len());
    for (m, dt) in all.iter().zip(DataType::ALL) {
        assert_eq!(m.data_type(), dt);
        let bytes = m.encode_to_vec();
        let mut into = Vec::new();
        m.encode_into(&mut into);
        assert_eq!(bytes, into);
        assert_eq!(&Normalized::decode(dt, &bytes).unwrap(), m, "{dt}");
    }
}

/// The decimal texts as another decoder reads them: the descriptor set, not the generated
/// types, says which field is which.
#[test]
fn decimals_are_encoded_as_the_venue_text_with_every_digit() {
    use prost_reflect::{DescriptorPool, DynamicMessage, Value};
    let pool = DescriptorPool::decode(DESCRIPTOR_SET).unwrap();
    let all = samples();
    let text = |m: &DynamicMessage, field: &str| match &*m.get_field_by_name(field).unwrap() {
        Value::String(s) => s.clone(),
        other => panic!("{field}: {other:?}"),
    };
    let trade = pool
        .get_message_by_name("tickflow.normalized.v2beta1.Trade")
        .unwrap();
    let t = DynamicMessage::decode(trade, all[0].encode_to_vec().as_slice()).unwrap();
    assert_eq!(text(&t, "price"), "0.00001000");
    assert_eq!(text(&t, "amount"), "123456789.12345678");
    let book = pool
        .get_message_by_name("tickflow.normalized.v2beta1.Level2Book")
        .unwrap();
    let b = DynamicMessage::decode(book, all[1].encode_to_vec().as_slice()).unwrap();
    let levels = |side: &str| -> Vec<(String, String)> {
        match &*b.get_field_by_name(side).unwrap() {
            Value::List(l) => l
                .iter()
                .map(|v| {
                    let m = v.as_message().unwrap();
                    (text(m, "price"), text(m, "quantity"))
                })
                .collect(),
            other => panic!("{side}: {other:?}"),
        }
    };
    assert_eq!(
        levels("bids"),
        [
            ("58850.01".to_string(), "0.5".to_string()),
            ("58850.00".to_string(), "0".to_string())
        ]
    );
    assert_eq!(
        levels("asks"),
        [("58850.02".to_string(), "1.000".to_string())]
    );
}

#[test]
fn proto_sources_are_self_contained_and_named_after_their_type() {
    for dt in DataType::ALL {
        let src = dt.proto_source();
        assert!(!src.contains("import "), "{dt} imports another file");
        assert!(src.contains(&format!("message {} {{", dt.message_name())));
        assert!(src.contains("package tickflow.normalized.v2beta1;"));
    }
}

#[test]
fn cryptofeed_trade_field_numbers_are_kept() {
    let set = decode_set(DESCRIPTOR_SET).unwrap();
    let trade = set
        .file
        .iter()
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == "Trade")
        .unwrap();
    let num = |n: &str| trade.field.iter().find(|f| f.name() == n).unwrap().number();
    let expected = [
        ("exchange", 1),
        ("symbol", 2),
        ("side", 3),
        ("trade_id", 4),
        ("price", 5),
        ("amount", 6),
        ("timestamp", 7),
        ("raw_id", 8),
        ("trade_type", 9),
        ("maker", 10),
        ("event_time", 11),
        ("match_id", 12),
        ("liquidity_flag", 13),
        ("receipt_time", 14),
    ];
    for (name, n) in expected {
        assert_eq!(num(name), n, "Trade.{name}");
    }
}

fn baseline() -> FileDescriptorSet {
    decode_set(
        &std::fs::read(BASELINE)
            .expect("committed baseline; regenerate with `make schema-baseline`"),
    )
    .unwrap()
}

/// Compiles the current protos with `edit(file_name, text) -> text` applied.
fn compile_edited(edit: impl Fn(&str, String) -> String) -> FileDescriptorSet {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(DIR);
    std::fs::create_dir_all(&out).unwrap();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = edit(&name, std::fs::read_to_string(&path).unwrap());
        std::fs::write(out.join(&name), text).unwrap();
        files.push(format!("{DIR}/{name}"));
    }
    protox::compile(&files, [tmp.path()]).unwrap()
}

#[test]
fn current_schemas_are_compatible_with_the_committed_baseline() {
    let current = decode_set(DESCRIPTOR_SET).unwrap();
    let breaks = breaking_changes(&baseline(), &current);
    assert!(
        breaks.is_empty(),
        "breaking changes against the baseline: {breaks:#?}"
    );
    assert!(Path::new("docs/schemas/CHANGELOG.md").exists());
}

#[test]
fn additive_changes_pass_the_gate() {
    let edited = compile_edited(|name, text| match name {
        "trade.proto" => text.replace(
            "int64 receipt_time = 14;",
            "int64 receipt_time = 14;\n  optional string venue_flags = 15;",
        ),
        "liquidation.proto" => text.replace("SIDE_SELL = 2;", "SIDE_SELL = 2;\n    SIDE_BOTH = 3;"),
        _ => text,
    });
    assert!(breaking_changes(&baseline(), &edited).is_empty());
}

fn assert_caught(file: &str, from: &str, to: &str, expect: &str) {
    let edited = compile_edited(|name, text| {
        if name == file {
            assert!(text.contains(from), "{file} has no `{from}`");
            text.replace(from, to)
        } else {
            text
        }
    });
    let breaks = breaking_changes(&baseline(), &edited);
    assert!(
        breaks.iter().any(|b| b.to_string().contains(expect)),
        "`{from}` -> `{to}` not caught as `{expect}`: {breaks:#?}"
    );
}

#[test]
fn breaking_changes_are_caught() {
    assert_caught(
        "trade.proto",
        "string price = 5;",
        "double price = 5;",
        "Trade.price: type changed",
    );
    assert_caught(
        "trade.proto",
        "string raw_id = 8;",
        "string raw_id = 18;",
        "Trade.raw_id: renumbered 8 -> 18",
    );
    assert_caught(
        "trade.proto",
        "  optional string match_id = 12;\n",
        "",
        "Trade.match_id: field 12 removed",
    );
    assert_caught(
        "level2_book.proto",
        "repeated PriceLevel bids = 3;",
        "PriceLevel bids = 3;",
        "Level2Book.bids: label changed",
    );
    assert_caught(
        "trade.proto",
        "    SIDE_SELL = 2;\n",
        "",
        "Trade.Side.SIDE_SELL: enum value removed",
    );
    assert_caught(
        "candle.proto",
        "string interval = 5;",
        "string period = 5;",
        "Candle.interval: renamed to period",
    );
    assert_caught(
        "ticker.proto",
        "optional int64 timestamp = 5;",
        "int64 timestamp = 5;",
        "Ticker.timestamp: presence",
    );
}

#[test]
fn removing_a_field_with_its_number_reserved_is_allowed() {
    let edited = compile_edited(|name, text| match name {
        "trade.proto" => text.replace("optional string match_id = 12;", "reserved 12;"),
        _ => text,
    });
    assert!(breaking_changes(&baseline(), &edited).is_empty());
}
