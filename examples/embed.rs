//! Embedding tickflow's producer actors in a plain tokio program (no actix of its own):
//! produce a few normalized trades and report each Ack.
//!
//! `cargo run --example embed -- [CONFIG]` (default `config/default.toml`); the topic prefix can
//! be overridden with `TICKFLOW_PRODUCER__TOPIC_PREFIX`.

use tickflow::embed::ProducerSystem;
use tickflow::producer::ProduceEvent;
use tickflow::schema::v2beta1::trade::Side;
use tickflow::schema::{Normalized, Trade};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "config/default.toml".into());
    let system = ProducerSystem::from_file(&config)?;
    let trades: Vec<ProduceEvent> = (0..5)
        .map(|i| {
            ProduceEvent::typed(Normalized::Trade(Trade {
                exchange: "BINANCE".into(),
                symbol: "BTC-USDT".into(),
                side: Side::Buy as i32,
                trade_id: format!("{}", 1_000 + i),
                price: "58850.01".into(),
                amount: "0.001".into(),
                timestamp: 1_700_000_000_000_000 + i,
                receipt_time: 1_700_000_000_000_500 + i,
                ..Default::default()
            }))
        })
        .collect();
    let mut acked = 0;
    for answer in system.produce_batch(trades).await {
        match answer {
            Ok(ack) => {
                acked += 1;
                println!(
                    "acked {}[{}]@{:?} in {:?}",
                    ack.topic, ack.partition, ack.offset, ack.latency
                );
            }
            Err(nack) => println!("nacked: {nack}"),
        }
    }
    system.shutdown().await;
    println!("{acked}/5 acked");
    if acked == 5 {
        Ok(())
    } else {
        Err("not every trade was acked".into())
    }
}
