//! Fault injection. librdkafka's in-process MockCluster gives exact broker outages and error
//! codes; the real tansu broker is also killed by PID and restarted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tickflow::producer::{NackReason, ProduceEvent};
use tickflow::schema::{wire, DataType, Normalized};
use tickflow::supervisor::ProducerHandle;

fn event(n: u64) -> ProduceEvent {
    ProduceEvent::typed(Normalized::Trade(common::trade(n)))
}

fn trade_id(value: &[u8]) -> u64 {
    let frame = wire::parse(value).unwrap();
    match Normalized::decode(DataType::Trade, frame.payload).unwrap() {
        Normalized::Trade(t) => t.trade_id.parse().unwrap(),
        other => panic!("not a trade: {other:?}"),
    }
}

/// A one-broker MockCluster holding `<prefix>.trade` with `partitions`, and a test config
/// pointed at it (topics are the mock's, not created by the producer).
fn mock_cluster(
    name: &str,
    partitions: i32,
) -> (
    MockCluster<'static, DefaultProducerContext>,
    tickflow::config::Config,
    String,
) {
    let mock = MockCluster::new(1).unwrap();
    let mut cfg = common::test_config(name);
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    mock.create_topic(&topic, partitions, 1).unwrap();
    cfg.kafka.bootstrap_servers = mock.bootstrap_servers();
    cfg.producer.create_topics = false;
    (mock, cfg, topic)
}

#[actix_rt::test]
async fn mock_cluster_outage_mid_stream_loses_and_duplicates_nothing() {
    common::init_logs();
    let (mock, cfg, topic) = mock_cluster("mockdown", 3);
    let handle = ProducerHandle::start(cfg).unwrap();

    const N: u64 = 3_000;
    let h = handle.clone();
    let sender = actix_rt::spawn(async move {
        stream::iter(0..N)
            .map(|n| {
                let h = h.clone();
                async move {
                    // Pace the stream so the outage lands in the middle of it.
                    tokio::time::sleep(Duration::from_micros(n * 1_500)).await;
                    h.produce(event(n)).await
                }
            })
            .buffered(500)
            .collect::<Vec<_>>()
            .await
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    mock.broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    mock.broker_up(1).unwrap();
    let answers = sender.await.unwrap();

    assert_eq!(answers.len() as u64, N, "every event answered once");
    let acks: Vec<_> = answers
        .into_iter()
        .map(|a| a.expect("acked despite the outage"))
        .collect();
    let got = common::consume(
        &mock.bootstrap_servers(),
        &topic,
        3,
        N as usize + 10,
        Duration::from_secs(10),
    );
    assert_eq!(got.len() as u64, N, "lost or duplicated records");
    let mut at: HashMap<u64, (i32, i64)> = HashMap::new();
    for r in &got {
        assert!(
            at.insert(trade_id(&r.value), (r.partition, r.offset))
                .is_none(),
            "duplicate"
        );
    }
    for (n, ack) in acks.iter().enumerate() {
        assert_eq!(at[&(n as u64)], (ack.partition, ack.offset));
    }
    // Per key (symbol), records sit in the order they were sent.
    let mut last: HashMap<(i32, u64), i64> = HashMap::new();
    for n in 0..N {
        let (p, off) = at[&n];
        if let Some(prev) = last.insert((p, n % 3), off) {
            assert!(off > prev, "trade {n} reordered in partition {p}");
        }
    }
    handle.shutdown().await;
}

#[actix_rt::test]
async fn retriable_error_codes_are_retried_and_acked() {
    common::init_logs();
    let (mock, cfg, topic) = mock_cluster("mockretry", 1);
    let handle = ProducerHandle::start(cfg).unwrap();
    handle.produce(event(0)).await.unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ],
    );
    for n in 1..20 {
        handle
            .produce(event(n))
            .await
            .expect("retriable errors end in an Ack");
    }
    let got = common::consume(
        &mock.bootstrap_servers(),
        &topic,
        1,
        30,
        Duration::from_secs(5),
    );
    assert_eq!(got.len(), 20);
    handle.shutdown().await;
}

#[actix_rt::test]
async fn shutdown_past_its_deadline_answers_records_still_in_flight_with_shutting_down() {
    // With every broker down, delivered records stay in librdkafka (their reports would come
    // only at message.timeout.ms, 30 s). Shutdown must still end at its deadline and answer
    // each of them then: Nack(ShuttingDown), never an Ack, none left unanswered.
    common::init_logs();
    let (mock, mut cfg, _) = mock_cluster("mockdeadline", 3);
    cfg.producer.shutdown_deadline_ms = 1_000;
    let handle = ProducerHandle::start(cfg).unwrap();
    handle.produce(event(0)).await.expect("broker up: acked");
    mock.broker_down(1).unwrap();
    let pending: Vec<_> = (1..200).map(|n| handle.produce(event(n))).collect();
    // Let the stream hand them all to librdkafka before stopping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .expect("shutdown ends at its deadline");
    let answers = tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(pending))
        .await
        .expect("every event answered right after the deadline, not at message.timeout.ms");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(answers.len(), 199);
    for a in answers {
        let nack = a.expect_err("undeliverable: never acked");
        assert_eq!(nack.reason, NackReason::ShuttingDown, "{nack}");
    }
}

#[actix_rt::test]
async fn non_retriable_error_code_is_nacked_and_dead_lettered() {
    common::init_logs();
    let (mock, mut cfg, topic) = mock_cluster("mockdlq", 1);
    let dlq = format!("{}.dlq", cfg.producer.topic_prefix);
    mock.create_topic(&dlq, 1, 1).unwrap();
    cfg.producer.dead_letter_topic = Some(dlq.clone());
    let handle = ProducerHandle::start(cfg).unwrap();
    handle.produce(event(0)).await.unwrap();

    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let nack = handle.produce(event(1)).await.unwrap_err();
    assert!(
        matches!(&nack.reason, NackReason::Delivery { code, .. } if code == "MessageSizeTooLarge"),
        "{nack:?}"
    );
    assert!(!nack.retriable);
    handle
        .produce(event(2))
        .await
        .expect("the next event is acked");
    let dead_ids = vec![1];

    let dead = common::consume(
        &mock.bootstrap_servers(),
        &dlq,
        1,
        dead_ids.len(),
        Duration::from_secs(10),
    );
    let mut got: Vec<u64> = dead.iter().map(|r| trade_id(&r.value)).collect();
    got.sort_unstable();
    assert_eq!(
        got, dead_ids,
        "every non-retriable Nack is dead-lettered once"
    );
    for r in &dead {
        assert_eq!(r.headers["error_kind"], "delivery");
        assert!(r.headers["error"].contains("MessageSizeTooLarge"));
        assert_eq!(r.headers["original_topic"], topic);
        assert_eq!(r.headers["data_type"], "trade");
    }
    let expected = dead_ids.len() as f64;
    let m = handle.metrics();
    for _ in 0..50 {
        if m.sample("tickflow_dead_lettered_total") == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.sample("tickflow_dead_lettered_total"), expected);
    handle.shutdown().await;
}
#[actix_rt::test]
async fn real_broker_killed_and_restarted_mid_stream_every_event_answered() {
    common::init_logs();
    let port = common::free_port();
    let mut broker = common::start_tansu(port);
    let bootstrap = format!("127.0.0.1:{port}");
    let mut cfg = common::test_config("kill");
    cfg.kafka.bootstrap_servers = bootstrap.clone();
    cfg.kafka.message_timeout_ms = 5_000;
    cfg.producer.circuit_breaker.failure_threshold = 3;
    cfg.producer.circuit_breaker.cooldown_ms = 200;
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    common::create_topics(&bootstrap, &[&topic], 1).await;
    let handle = ProducerHandle::start(cfg).unwrap();
    for n in 0..100 {
        handle.produce(event(n)).await.unwrap();
    }

    // A stream in flight while the broker dies.
    let h = handle.clone();
    let in_flight = actix_rt::spawn(async move {
        stream::iter(100..2_100u64)
            .map(|n| h.produce(event(n)))
            .buffered(200)
            .collect::<Vec<_>>()
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    broker.0.kill().unwrap();
    broker.0.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(broker);
    let _broker = common::start_tansu(port);
    common::ensure_topics(&bootstrap, &[&topic], 1).await;
    let answers = in_flight.await.unwrap();
    assert_eq!(answers.len(), 2_000, "every in-flight event answered");

    // After recovery (producer rebuilt if it went fatal), new events are acked and consumable.
    let mut first_ok = None;
    for attempt in 0..30 {
        match handle.produce(event(10_000 + attempt)).await {
            Ok(_) => {
                first_ok = Some(attempt);
                break;
            }
            Err(n) => {
                assert!(n.retriable, "outage nacks are retriable: {n:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let first_ok = first_ok.expect("producing recovers after the broker restart");
    for n in 20_000..20_100 {
        handle
            .produce(event(n))
            .await
            .expect("acked after recovery");
    }
    // Read until every expected record is seen (a consumer of a freshly restarted tansu can
    // take a few seconds to get going under load), for at most three reads of 5 s.
    let expected: Vec<u64> = std::iter::once(10_000 + first_ok)
        .chain(20_000..20_100)
        .collect();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..3 {
        let got = common::consume(&bootstrap, &topic, 1, 10_000, Duration::from_secs(5));
        ids.extend(got.iter().map(|r| trade_id(&r.value)));
        if expected.iter().all(|n| ids.contains(n)) {
            break;
        }
    }
    assert!(ids.contains(&(10_000 + first_ok)));
    assert!(
        (20_000..20_100).all(|n| ids.contains(&n)),
        "events acked after recovery are consumable"
    );
    let nacked = answers.iter().filter(|a| a.is_err()).count();
    eprintln!(
        "in flight during the kill: {} acked, {nacked} nacked; restarts: {}",
        answers.len() - nacked,
        handle.metrics().sample("tickflow_producer_restarts_total")
    );
    handle.shutdown().await;
}
