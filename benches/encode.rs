//! Criterion: encoding and Confluent-framing one normalized Trade (the per-record CPU cost of
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! the producer's encode step), beside a plain prost encode as the limit.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tickflow::schema::v2beta1::trade::Side;
use tickflow::schema::{wire, Normalized, Trade};

fn trade() -> Trade {
    Trade {
        exchange: "BINANCE".into(),
        symbol: "BTC-USDT".into(),
        side: Side::Buy as i32,
        trade_id: "1034283941".into(),
        price: "58850.01000000".into(),
        amount: "0.00170000".into(),
        timestamp: 1_619_712_000_123_000,
        raw_id: "1034283941".into(),
        maker: Some(true),
        event_time: Some(1_619_712_000_124_000),
        receipt_time: 1_619_712_000_130_456,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let record = Normalized::Trade(trade());
    let mut g = c.benchmark_group("trade");
    g.throughput(Throughput::Elements(1));
    g.bench_function("prost_encode_only", |b| {
        let t = trade();
        b.iter(|| black_box(prost::Message::encode_to_vec(black_box(&t))))
    });
    g.bench_function("encode_and_frame", |b| {
        let mut buf = Vec::with_capacity(256);
        b.iter(|| {
            buf.clear();
            wire::write_header(&mut buf, black_box(7), &[0]);
            black_box(&record).encode_into(&mut buf);
            black_box(buf.len())
        })
    });
    let framed = wire::frame(7, &record.encode_to_vec());
    g.bench_function("parse_frame_and_decode", |b| {
        b.iter(|| {
            let f = wire::parse(black_box(&framed)).unwrap_or_else(|e| panic!("{e}"));
            black_box(<Trade as prost::Message>::decode(f.payload).is_ok())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
