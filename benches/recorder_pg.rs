//! Rows/s into PostgreSQL for the same trades, same run: row-by-row `INSERT` (autocommit),
//! batched multi-row `INSERT`s in one transaction, and the recorder's path (binary `COPY` into
//! staging + `INSERT … SELECT … ON CONFLICT DO NOTHING`, one transaction per 5 000-row batch).
//! Needs PostgreSQL on 127.0.0.1:5432 (trust auth; `make dev-up`). `TICKFLOW_BENCH_ROWS` sets
//! the row count (default 200 000; row-by-row INSERT of 1 M takes minutes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Instant;

use tickflow::recorder::config::PostgresConfig;
use tickflow::recorder::rows::{to_row, Cell, Coords, Row};
use tickflow::recorder::store::Store;
use tickflow::schema::v2beta1::trade::Side;
use tickflow::schema::{Normalized, Trade};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

fn trade(n: u64) -> Trade {
    Trade {
        exchange: "BINANCE".into(),
        symbol: ["BTC-USDT", "ETH-USDT", "NKN-USDT"][(n % 3) as usize].into(),
        side: if n % 2 == 0 { Side::Buy } else { Side::Sell } as i32,
        trade_id: n.to_string(),
        price: "58850.01".into(),
        amount: format!("0.{:08}", n % 100_000_000),
        timestamp: 1_619_712_000_000_000 + n as i64,
        raw_id: n.to_string(),
        maker: Some(n % 2 == 1),
        event_time: Some(1_619_712_000_000_100 + n as i64),
        receipt_time: 1_619_712_000_000_500 + n as i64,
        ..Default::default()
    }
}

fn psql(db: &str, sql: &str) {
    let ok = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "{sql}");
}

const INSERT: &str = "INSERT INTO trades (kafka_topic, kafka_partition, kafka_offset, kafka_record_id, exchange, symbol, \
     trade_id, side, price, amount, \"timestamp\", event_time, receipt_time, maker, trade_type, raw_id) \
     VALUES ";

fn placeholders(row: usize) -> String {
    let b = row * 16;
    let p: Vec<String> = (1..=16)
        .map(|i| match i {
            9 | 10 => format!("${}::text::numeric", b + i),
            _ => format!("${}", b + i),
        })
        .collect();
    format!("({})", p.join(", "))
}

fn params(rows: &[Row]) -> Vec<&(dyn ToSql + Sync)> {
    rows.iter()
        .flat_map(|r| r.cells.iter().map(|c: &Cell| c as &(dyn ToSql + Sync)))
        .collect()
}

fn main() {
    let n: u64 = std::env::var("TICKFLOW_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let db = format!("tickflow_bench_{}", std::process::id());
    psql("postgres", &format!("CREATE DATABASE {db}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows: Vec<Row> = (0..n)
        .map(|i| {
            let coords = Coords {
                topic: "bench.trade".into(),
                partition: (i % 3) as i32,
                offset: i as i64,
                record_id: Some(format!("{i:032x}")),
            };
            to_row(&coords, &Normalized::Trade(trade(i))).unwrap()
        })
        .collect();
    let results = rt.block_on(async {
        let cfg = PostgresConfig {
            dbname: db.clone(),
            ..Default::default()
        };
        let store = Store::new(&cfg);
        store.migrate().await.unwrap();
        let (client, conn) = cfg.pg_config().connect(NoTls).await.unwrap();
        tokio::spawn(conn);
        let mut client = client;
        let mut results = Vec::new();

        // 1. Row by row, autocommit.
        let one = client
            .prepare(&format!("{INSERT}{}", placeholders(0)))
            .await
            .unwrap();
        let t = Instant::now();
        for r in &rows {
            client
                .execute(&one, &params(std::slice::from_ref(r)))
                .await
                .unwrap();
        }
        results.push(("row-by-row INSERT", t.elapsed()));
        client.batch_execute("TRUNCATE trades").await.unwrap();

        // 2. Multi-row INSERTs of 500 rows, all in one transaction.
        let per = 500;
        let many: String = (0..per).map(placeholders).collect::<Vec<_>>().join(", ");
        let many = client.prepare(&format!("{INSERT}{many}")).await.unwrap();
        let t = Instant::now();
        let tx = client.transaction().await.unwrap();
        for chunk in rows.chunks(per) {
            if chunk.len() == per {
                tx.execute(&many, &params(chunk)).await.unwrap();
            } else {
                let sql: String = (0..chunk.len())
                    .map(placeholders)
                    .collect::<Vec<_>>()
                    .join(", ");
                tx.execute(&format!("{INSERT}{sql}"), &params(chunk))
                    .await
                    .unwrap();
            }
        }
        tx.commit().await.unwrap();
        results.push(("batched INSERTs, one transaction", t.elapsed()));
        client.batch_execute("TRUNCATE trades").await.unwrap();

        // 3. The recorder's path: binary COPY + INSERT … SELECT, 5 000 rows per transaction.
        let t = Instant::now();
        for chunk in rows.chunks(5_000) {
            store.write(chunk).await.unwrap();
        }
        results.push(("binary COPY (recorder)", t.elapsed()));
        let stored: i64 = client
            .query_one("SELECT count(*) FROM trades", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored as u64, n);
        results
    });
    psql("postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
    let base = n as f64 / results[0].1.as_secs_f64();
    println!("recorder_pg: {n} trades into PostgreSQL");
    for (name, d) in &results {
        let rate = n as f64 / d.as_secs_f64();
        println!(
            "  {name:<34} {:>10.0} rows/s  ({:.2} s, {:.1}x row-by-row)",
            rate,
            d.as_secs_f64(),
            rate / base
        );
    }
}
