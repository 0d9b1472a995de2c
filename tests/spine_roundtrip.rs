//! Spine end to end: register the Trade schema in the real registry, produce one framed Trade
//! to the real broker, consume it back, check the framing and decode it equal.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use prost::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tickflow::config::SchemaRegistryConfig;
use tickflow::schema::registry::{Registry, SubjectStrategy};
use tickflow::schema::{v2beta1::trade::Side, wire, DataType, Trade};

#[tokio::test]
async fn one_framed_trade_round_trips_through_broker_and_registry() {
    let topic = common::unique_topic("spine.trade");
    common::create_topics(&common::kafka_addr(), &[&topic], 1).await;

    let registry = Registry::new(&SchemaRegistryConfig {
        url: common::registry_url(),
        ..Default::default()
    })
    .unwrap();
    let subject = SubjectStrategy::TopicName.subject(&topic, DataType::Trade);
    let id = registry.register(&subject, DataType::Trade).await.unwrap();
    // Registering the identical schema again answers the same id.
    assert_eq!(
        registry.register(&subject, DataType::Trade).await.unwrap(),
        id
    );

    let trade = Trade {
        exchange: "BINANCE".into(),
        symbol: "BTC-USDT".into(),
        side: Side::Sell as i32,
        trade_id: "1034283941".into(),
        price: "58850.01000000".into(),
        amount: "0.00170000".into(),
        timestamp: 1_619_712_000_123_000,
        raw_id: "1034283941".into(),
        trade_type: None,
        maker: Some(true),
        event_time: Some(1_619_712_000_124_000),
        match_id: None,
        liquidity_flag: None,
        receipt_time: 1_619_712_000_130_456,
    };
    let framed = wire::frame(id, &trade.encode_to_vec());

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", common::kafka_addr())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let delivered = producer
        .send(
            FutureRecord::to(&topic)
                .key("BINANCE-BTC-USDT")
                .payload(&framed),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!(delivered.partition, 0);

    let got = common::consume(&common::kafka_addr(), &topic, 1, 1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "the produced record was not consumed back");
    assert_eq!(got[0].value, framed);
    let frame = wire::parse(&got[0].value).unwrap();
    assert_eq!(frame.schema_id, id);
    assert_eq!(frame.message_indexes, vec![0]);
    assert_eq!(Trade::decode(frame.payload).unwrap(), trade);
}
