//! Producer actor against the real broker and registry of the dev stack.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tickflow::config::{OverflowPolicy, PartitionKey, TopicMode};
use tickflow::producer::{Dependency, InjectFailure, NackReason, ProduceEvent};
use tickflow::schema::registry::{Registry, SubjectStrategy};
use tickflow::schema::{wire, DataType, Normalized};
use tickflow::supervisor::ProducerHandle;

fn event(n: u64) -> ProduceEvent {
    ProduceEvent::typed(Normalized::Trade(common::trade(n)))
}

#[actix_rt::test]
async fn ten_thousand_typed_events_round_trip_with_keys_headers_and_partitions() {
    let cfg = common::test_config("rt");
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let registry = Registry::new(&cfg.schema_registry).unwrap();
    let handle = ProducerHandle::start(cfg).unwrap();

    const N: u64 = 10_000;
    let acks = join_all((0..N).map(|n| handle.produce(event(n)))).await;
    let acks: Vec<_> = acks
        .into_iter()
        .map(|a| a.expect("every event acked"))
        .collect();
    assert!(acks.iter().all(|a| &*a.topic == topic.as_str()));
    let id = registry
        .register(
            &SubjectStrategy::TopicName.subject(&topic, DataType::Trade),
            DataType::Trade,
        )
        .await
        .unwrap();

    // Read until every event is in and nothing new came for a while (so a duplicate would show),
    // then compare the ids read with the ids acked: exactly once each.
    let got = common::consume_until_idle(
        &common::kafka_addr(),
        &topic,
        3,
        &(0..N).collect::<Vec<_>>(),
        Duration::from_secs(60),
    );
    common::assert_same_ids("topic against acks", 0..N, common::ids(&got));
    let mut seen = HashSet::new();
    let mut partition_of_key: HashMap<Vec<u8>, i32> = HashMap::new();
    for r in &got {
        let frame = wire::parse(&r.value).unwrap();
        assert_eq!(frame.schema_id, id);
        assert_eq!(frame.message_indexes, vec![0]);
        let Normalized::Trade(t) = Normalized::decode(DataType::Trade, frame.payload).unwrap()
        else {
            unreachable!()
        };
        let n: u64 = t.trade_id.parse().unwrap();
        assert_eq!(
            t,
            common::trade(n),
            "decoded record differs from what was sent"
        );
        assert!(seen.insert(n), "trade {n} consumed twice");
        let ack = &acks[n as usize];
        assert_eq!(
            (ack.partition, ack.offset),
            (r.partition, Some(r.offset)),
            "ack of {n} points elsewhere"
        );
        let key = r.key.clone().unwrap();
        assert_eq!(key, format!("BINANCE-{}", t.symbol).into_bytes());
        assert_eq!(
            *partition_of_key.entry(key).or_insert(r.partition),
            r.partition,
            "a key spans partitions"
        );
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["exchange"], "BINANCE");
        assert_eq!(r.headers["symbol"], t.symbol);
        assert_eq!(r.headers["data_type"], "trade");
        assert_eq!(r.headers["schema_version"], "v2beta1");
        assert_eq!(r.headers["producer_version"], env!("CARGO_PKG_VERSION"));
    }
    let m = handle.metrics();
    assert_eq!(m.sample("tickflow_produced_total"), N as f64);
    handle.shutdown().await;
}

#[actix_rt::test]
async fn per_symbol_topics_with_symbol_keys() {
    let mut cfg = common::test_config("ps");
    cfg.producer.topic_mode = TopicMode::PerSymbol;
    cfg.producer.partition_key = PartitionKey::Symbol;
    let prefix = cfg.producer.topic_prefix.clone();
    let handle = ProducerHandle::start(cfg).unwrap();
    for n in 0..6 {
        let ack = handle.produce(event(n)).await.unwrap();
        let sym = common::trade(n).symbol.to_lowercase();
        assert_eq!(&*ack.topic, format!("{prefix}.trade.binance.{sym}"));
    }
    // Events 1 and 4 are ETH-USDT (symbols rotate over three pairs): that topic holds exactly them.
    let eth: Vec<u64> = (0..6)
        .filter(|n| common::trade(*n).symbol == "ETH-USDT")
        .collect();
    assert_eq!(eth, vec![1, 4]);
    let got = common::consume_until_idle(
        &common::kafka_addr(),
        &format!("{prefix}.trade.binance.eth-usdt"),
        3,
        &eth,
        Duration::from_secs(30),
    );
    common::assert_same_ids("eth-usdt topic", eth, common::ids(&got));
    assert!(got
        .iter()
        .all(|r| r.key.as_deref() == Some(b"ETH-USDT".as_slice())));
    handle.shutdown().await;
}

/// Sends event 0, then events `1..=n` at once, to a producer with a queue of 8. Returns the ids
/// acked, the nack reasons by id, and the trade ids read back from the topic.
async fn burst(policy: OverflowPolicy, n: u64) -> (Vec<u64>, Vec<(u64, NackReason)>, Vec<u64>) {
    let mut cfg = common::test_config("of");
    cfg.producer.queue_capacity = 8;
    cfg.producer.max_in_flight = 8;
    cfg.producer.overflow = policy;
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let handle = ProducerHandle::start(cfg).unwrap();
    // Let the topic exist and the schema register first, so the burst meets a running stream.
    handle.produce(event(0)).await.unwrap();
    let h = &handle;
    let answers = join_all((1..=n).map(|i| async move { (i, h.produce(event(i)).await) })).await;
    let mut acked = vec![0];
    let mut nacked = vec![];
    for (i, a) in answers {
        match a {
            Ok(_) => acked.push(i),
            Err(nack) => nacked.push((i, nack.reason)),
        }
    }
    // One answer per event: the producer counted each event once, as an Ack (produced) or
    // as a Nack (an error), and no other way (an event answered twice would count twice).
    let m = handle.metrics();
    assert_eq!(m.sample("tickflow_produced_total{"), acked.len() as f64);
    assert_eq!(
        m.sample("tickflow_produce_errors_total{"),
        nacked.len() as f64
    );
    handle.shutdown().await;
    let got = common::consume_until_idle(
        &common::kafka_addr(),
        &topic,
        3,
        &acked,
        Duration::from_secs(60),
    );
    (acked, nacked, common::ids(&got))
}

#[actix_rt::test]
async fn overflow_backpressure_answers_every_event_without_nacks() {
    let (acked, nacked, in_topic) = burst(OverflowPolicy::Backpressure, 5_000).await;
    assert_eq!(nacked, vec![]);
    common::assert_same_ids("acked", 0..=5_000, acked.iter().copied());
    common::assert_same_ids("topic against acks", acked, in_topic);
}

#[actix_rt::test]
async fn overflow_nack_answers_queue_full_only() {
    let (acked, nacked, in_topic) = burst(OverflowPolicy::Nack, 5_000).await;
    assert!(
        !nacked.is_empty(),
        "a burst 600x the queue capacity should overflow"
    );
    assert!(
        nacked.iter().all(|(_, r)| *r == NackReason::QueueFull),
        "{:?}",
        &nacked[..3.min(nacked.len())]
    );
    assert!(acked.len() > 1, "some of the burst is acked");
    // A QueueFull event never reached the broker: the topic holds the acked ids, once each, and
    // no nacked one.
    common::assert_same_ids("topic against acks", acked, in_topic);
}

#[actix_rt::test]
async fn registry_down_nacks_retriably_then_acks_when_it_is_back() {
    let port = common::free_port();
    let mut cfg = common::test_config("reg");
    cfg.schema_registry.url = format!("http://127.0.0.1:{port}");
    cfg.schema_registry.timeout = Duration::from_millis(500);
    cfg.producer.circuit_breaker.failure_threshold = 2;
    cfg.producer.circuit_breaker.cooldown = Duration::from_millis(300);
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let handle = ProducerHandle::start(cfg).unwrap();

    // warm-up at start is the first failure; then one more opens the breaker.
    let first = handle.produce(event(1)).await.unwrap_err();
    assert!(
        matches!(first.reason, NackReason::SchemaRegistry(_)),
        "{first:?}"
    );
    assert!(first.retriable);
    let fast = handle.produce(event(2)).await.unwrap_err();
    assert_eq!(fast.reason, NackReason::CircuitOpen(Dependency::Registry));
    assert!(fast.retriable);
    // The registry breaker is open (2), the broker's closed (0).
    assert_eq!(handle.metrics().sample("tickflow_circuit_state{"), 2.0);

    let _registry = common::start_registry(port);
    // Until the breaker's cool-down has passed the event is refused fast; then it is acked.
    // Sending the same event again is what a retriable Nack allows: it never reached Kafka.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut retried = 0;
    let ack = loop {
        match handle.produce(event(3)).await {
            Ok(ack) => break ack,
            Err(nack) => {
                retried += 1;
                assert!(
                    nack.retriable
                        && matches!(
                            nack.reason,
                            NackReason::SchemaRegistry(_)
                                | NackReason::CircuitOpen(Dependency::Registry)
                        ),
                    "only registry nacks while it comes back: {nack:?}"
                );
                assert!(
                    Instant::now() < deadline,
                    "not acked 10 s after the registry came back: {nack:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(ack.offset.is_some_and(|o| o >= 0), "{ack:?}");
    handle.produce(event(4)).await.unwrap();
    let m = handle.metrics();
    // Events 1 and 2, and each refused attempt of event 3: every Nack counted once.
    assert_eq!(
        m.sample("tickflow_produce_errors_total{topic="),
        (2 + retried) as f64
    );
    handle.shutdown().await;
    // Events 1 and 2 were refused before they reached Kafka; 3 and 4 are there once each.
    let got = common::consume_until_idle(
        &common::kafka_addr(),
        &topic,
        3,
        &[3, 4],
        Duration::from_secs(30),
    );
    common::assert_same_ids("topic against acks", [3, 4], common::ids(&got));
}

#[actix_rt::test]
async fn injected_actor_failure_is_restarted_by_the_supervisor() {
    let cfg = common::test_config("sup");
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let handle = ProducerHandle::start(cfg).unwrap();
    handle.produce(event(1)).await.unwrap();
    let actor = handle.producer_for(&topic).await.unwrap();
    actor.send(InjectFailure).await.unwrap();
    for n in 2..50 {
        handle
            .produce(event(n))
            .await
            .expect("acked after the restart");
    }
    restarted_once_and_stored(handle, &topic, 1..50).await;
}

/// The topic's actor restarted once, and the topic holds exactly the acked events `ids`.
async fn restarted_once_and_stored(
    handle: ProducerHandle,
    topic: &str,
    ids: impl Iterator<Item = u64> + Clone,
) {
    assert_eq!(
        handle.metrics().sample("tickflow_producer_restarts_total"),
        1.0
    );
    handle.shutdown().await;
    let got = common::consume_until_idle(
        &common::kafka_addr(),
        topic,
        3,
        &ids.clone().collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    common::assert_same_ids("topic against acks", ids, common::ids(&got));
}

#[actix_rt::test]
async fn a_submitters_own_doors_follow_an_actor_restart() {
    // A feed connection submits through doors of its own (no topic formatted, no lock per
    // record); after the topic's actor restarted, the cached door is closed and the next
    // event finds the new one. Every event is acked and stored once.
    let cfg = common::test_config("doors");
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let handle = ProducerHandle::start(cfg).unwrap();
    let mut doors = tickflow::supervisor::Doors::default();
    let answer = |s: tickflow::supervisor::Submitted| async move {
        let rx = match s {
            Ok(rx) => rx,
            Err(wait) => wait.await,
        };
        rx.await.expect("answered")
    };
    // The first looks the actor up (no door cached yet), the next ones use the cached door.
    for n in 1..=3 {
        let ack = answer(handle.submit_via(&mut doors, event(n)))
            .await
            .expect("acked");
        assert_eq!(&*ack.topic, topic.as_str());
    }
    let actor = handle.producer_for(&topic).await.unwrap();
    actor.send(InjectFailure).await.unwrap();
    for n in 4..=20 {
        answer(handle.submit_via(&mut doors, event(n)))
            .await
            .expect("acked after the restart");
    }
    restarted_once_and_stored(handle, &topic, 1..=20).await;
}

#[actix_rt::test]
async fn an_actor_restarted_with_records_in_flight_answers_each_truly() {
    // A restart aborts the stream while records are in librdkafka: their delivery reports
    // find the stream gone and answer from the outcome. So the topic holds exactly the acked
    // events: a stored record nacked (Interrupted) would be a lie, and its retry a duplicate.
    const N: u64 = 20_000;
    let cfg = common::test_config("supflight");
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let handle = ProducerHandle::start(cfg).unwrap();
    handle.produce(event(0)).await.unwrap();
    let actor = handle.producer_for(&topic).await.unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let h = handle.clone();
    let count = answered.clone();
    let sends = actix_rt::spawn(async move {
        join_all((1..=N).map(|n| {
            let (h, count) = (h.clone(), count.clone());
            async move {
                let a = h.produce(event(n)).await;
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                (n, a)
            }
        }))
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 100 {
        assert!(Instant::now() < deadline, "the stream did not get going");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    actor.send(InjectFailure).await.unwrap();
    let at_restart = answered.load(std::sync::atomic::Ordering::SeqCst);
    let answers = sends.await.unwrap();
    assert!(
        at_restart < N,
        "the restart must land mid-stream, but all {N} were answered before it"
    );
    let mut acked = vec![0];
    for (n, a) in answers {
        match a {
            Ok(_) => acked.push(n),
            Err(nack) => {
                assert!(nack.retriable, "{n}: {nack:?}");
                assert!(
                    matches!(nack.reason, NackReason::Interrupted),
                    "{n}: {nack:?}"
                );
            }
        }
    }
    eprintln!(
        "{at_restart} answered at the restart, {} acked of {}",
        acked.len() - 1,
        N
    );
    // Records were in librdkafka through the restart: their reports found the stream gone
    // and answered the events from their outcomes.
    let orphans = handle
        .metrics()
        .sample("tickflow_producer_orphan_reports_total");
    assert!(orphans > 0.0, "no record was in flight through the restart");
    eprintln!("{orphans} answered by their report after the restart");
    assert_eq!(
        handle.metrics().sample("tickflow_producer_restarts_total"),
        1.0
    );
    handle.shutdown().await;
    let got = common::consume_until_idle(
        &common::kafka_addr(),
        &topic,
        3,
        &acked,
        Duration::from_secs(30),
    );
    common::assert_same_ids("topic against acks", acked, common::ids(&got));
}

#[actix_rt::test]
async fn graceful_shutdown_answers_everything_and_loses_nothing_acked() {
    let mut cfg = common::test_config("stop");
    cfg.producer.queue_capacity = 64;
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let handle = ProducerHandle::start(cfg).unwrap();
    handle.produce(event(0)).await.unwrap();
    let sends = join_all((1..3000).map(|n| handle.produce(event(n))));
    let stop = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        handle.shutdown().await;
    };
    let (answers, ()) = futures::join!(sends, stop);
    let mut acked = vec![0];
    let mut nacked = HashSet::new();
    for (n, a) in (1..3000).zip(&answers) {
        match a {
            Ok(_) => acked.push(n),
            Err(nack) => {
                assert_eq!(nack.reason, NackReason::ShuttingDown);
                nacked.insert(n);
            }
        }
    }
    let late = handle.produce(event(99_999)).await.unwrap_err();
    assert_eq!(late.reason, NackReason::ShuttingDown);
    let got = common::ids(&common::consume_until_idle(
        &common::kafka_addr(),
        &topic,
        3,
        &acked,
        Duration::from_secs(30),
    ));
    // Every acked event is there exactly once. A ShuttingDown Nack past the deadline may come
    // for a record librdkafka had already sent, so a nacked event may be there too (once: the
    // idempotent producer never writes a record twice, and nothing resends it).
    let in_topic = common::multiset(got.iter().copied());
    assert!(
        in_topic.keys().all(|n| *n < 3000 && (in_topic[n] == 1)),
        "only sent events, each at most once: {:?}",
        in_topic
            .iter()
            .filter(|(n, c)| **n >= 3000 || **c > 1)
            .take(10)
            .collect::<Vec<_>>()
    );
    let acked_in_topic = got.iter().copied().filter(|n| !nacked.contains(n));
    common::assert_same_ids("topic (acked part) against acks", acked, acked_in_topic);
}

#[actix_rt::test]
async fn shutdown_drains_and_ends_while_a_handle_still_holds_the_queue() {
    // The handle keeps each topic's queue sender (its door), so the queue cannot end by all
    // senders going away: Shutdown must close it. Were it not closed, the stream would wait
    // on it until the 60 s deadline.
    let mut cfg = common::test_config("stopheld");
    cfg.producer.shutdown_deadline = Duration::from_millis(60_000);
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let handle = ProducerHandle::start(cfg).unwrap();
    handle.produce(event(0)).await.unwrap();
    let pending: Vec<_> = (1..200).map(|n| handle.produce(event(n))).collect();
    tokio::time::timeout(Duration::from_secs(20), handle.shutdown())
        .await
        .expect("shutdown ends once the queue is drained, long before its deadline");
    for answer in join_all(pending).await {
        answer.expect("queued before the shutdown, so delivered");
    }
    let late = handle.produce(event(99_999)).await.unwrap_err();
    assert_eq!(late.reason, NackReason::ShuttingDown);
    let got = common::consume_until_idle(
        &common::kafka_addr(),
        &topic,
        3,
        &(0..200).collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    common::assert_same_ids("topic against acks", 0..200, common::ids(&got));
}
