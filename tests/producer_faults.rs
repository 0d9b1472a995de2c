//! Fault injection. librdkafka's in-process MockCluster gives exact broker outages and error
//! codes; the real tansu broker is also killed by PID and restarted.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tickflow::producer::{Ack, Nack, NackReason, ProduceEvent};
use tickflow::schema::Normalized;
use tickflow::supervisor::ProducerHandle;

fn event(n: u64) -> ProduceEvent {
    ProduceEvent::typed(Normalized::Trade(common::trade(n)))
}

use common::trade_id;

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
                    let sent = Instant::now();
                    let answer = h.produce(event(n)).await;
                    (sent, Instant::now(), answer)
                }
            })
            .buffered(500)
            .collect::<Vec<_>>()
            .await
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    mock.broker_down(1).unwrap();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    mock.broker_up(1).unwrap();
    let up = Instant::now();
    let answers = sender.await.unwrap();

    assert_eq!(answers.len() as u64, N, "every event answered once");
    // The outage overlapped the stream: events were sent while the broker was down, and
    // events sent before it came back were answered only after.
    let sent_during = answers
        .iter()
        .filter(|(sent, _, _)| *sent >= down && *sent < up)
        .count();
    let waited_through = answers
        .iter()
        .filter(|(sent, answered, _)| *sent < up && *answered > up)
        .count();
    assert!(sent_during > 0, "no event sent during the outage");
    assert!(waited_through > 0, "no event waited through the outage");
    let acks: Vec<_> = answers
        .into_iter()
        .map(|(_, _, a)| a.expect("acked despite the outage"))
        .collect();
    let got = common::consume_until_idle(
        &mock.bootstrap_servers(),
        &topic,
        3,
        &(0..N).collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    common::assert_same_ids("topic against acks", 0..N, common::ids(&got));
    let at: HashMap<u64, (i32, i64)> = got
        .iter()
        .map(|r| (trade_id(&r.value), (r.partition, r.offset)))
        .collect();
    for (n, ack) in acks.iter().enumerate() {
        let (p, off) = at[&(n as u64)];
        assert_eq!(
            (p, Some(off)),
            (ack.partition, ack.offset),
            "ack of {n} points elsewhere"
        );
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
    handle.shutdown().await;
    let got = common::consume_until_idle(
        &mock.bootstrap_servers(),
        &topic,
        1,
        &(0..20).collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    common::assert_same_ids("topic against acks", 0..20, common::ids(&got));
}

#[actix_rt::test]
async fn shutdown_past_its_deadline_answers_records_still_in_flight_with_shutting_down() {
    // With every broker down, delivered records stay in librdkafka (their reports would come
    // only at message.timeout.ms, 30 s). Shutdown must still end at its deadline and answer
    // each of them then: Nack(ShuttingDown), never an Ack, none left unanswered.
    common::init_logs();
    let (mock, mut cfg, _) = mock_cluster("mockdeadline", 3);
    cfg.producer.shutdown_deadline = Duration::from_millis(1_000);
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

    let dead = common::consume_until_idle(
        &mock.bootstrap_servers(),
        &dlq,
        1,
        &dead_ids,
        Duration::from_secs(30),
    );
    common::assert_same_ids(
        "every non-retriable Nack is dead-lettered once",
        dead_ids.iter().copied(),
        common::ids(&dead),
    );
    // The refused event is not in the topic; the acked ones are, once each.
    let main = common::consume_until_idle(
        &mock.bootstrap_servers(),
        &topic,
        1,
        &[0, 2],
        Duration::from_secs(30),
    );
    common::assert_same_ids("topic against acks", [0, 2], common::ids(&main));
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
/// What happened to each event of a run against a real broker killed mid-stream.
struct KillRun {
    /// Every event sent, with its answer and whether the answer came after the restarted broker
    /// was up (in the order sent; ids are unique).
    answers: Vec<(u64, Result<Ack, Nack>, bool)>,
    topic: String,
    partitions: i32,
}

impl KillRun {
    fn acks(&self) -> impl Iterator<Item = (u64, &Ack, bool)> {
        self.answers
            .iter()
            .filter_map(|(n, a, late)| a.as_ref().ok().map(|ack| (*n, ack, *late)))
    }

    fn nacks(&self) -> impl Iterator<Item = (u64, &Nack)> {
        self.answers
            .iter()
            .filter_map(|(n, a, _)| a.as_ref().err().map(|nack| (*n, nack)))
    }

    fn summary(&self) -> String {
        let mut reasons: HashMap<String, usize> = HashMap::new();
        for (_, nack) in self.nacks() {
            *reasons.entry(nack.reason.to_string()).or_default() += 1;
        }
        format!(
            "{} events: {} acked ({} of them after the restart), nacks by reason: {reasons:?}",
            self.answers.len(),
            self.acks().count(),
            self.acks().filter(|(_, _, late)| *late).count(),
        )
    }
}

/// Events `0..100` acked one by one; then `100..2_100` in flight (200 at a time) while the broker
/// is SIGKILLed (once 300 of them are answered, so mid-stream) and, half a second later, started
/// again on the same port and storage; then, once producing recovers (fresh ids `10_000 + k` per
/// attempt, so no event is sent twice), `20_000..20_100` acked one by one.
async fn kill_mid_stream(broker: &mut common::Broker, name: &str, partitions: i32) -> KillRun {
    common::init_logs();
    let bootstrap = broker.addr();
    let mut cfg = common::test_config(name);
    cfg.kafka.bootstrap_servers = bootstrap.clone();
    cfg.kafka.message_timeout = Duration::from_millis(5_000);
    cfg.producer.circuit_breaker.failure_threshold = 3;
    cfg.producer.circuit_breaker.cooldown = Duration::from_millis(200);
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    common::create_topics(&bootstrap, &[&topic], partitions).await;
    let handle = ProducerHandle::start(cfg).unwrap();
    let mut answers = Vec::new();
    for n in 0..100 {
        let ack = handle.produce(event(n)).await.expect("broker up: acked");
        answers.push((n, Ok(ack), false));
    }

    // A stream in flight while the broker dies.
    const STREAM: std::ops::Range<u64> = 100..2_100;
    let answered = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let (h, count, up) = (handle.clone(), answered.clone(), restarted.clone());
    let in_flight = actix_rt::spawn(async move {
        stream::iter(STREAM)
            .map(|n| {
                let (h, count, up) = (h.clone(), count.clone(), up.clone());
                async move {
                    let answer = h.produce(event(n)).await;
                    count.fetch_add(1, Ordering::SeqCst);
                    (n, answer, up.load(Ordering::SeqCst))
                }
            })
            .buffered(200)
            .collect::<Vec<_>>()
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::SeqCst) < 300 {
        assert!(Instant::now() < deadline, "the stream did not get going");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let pid = broker.kill();
    let at_kill = answered.load(Ordering::SeqCst);
    assert!(
        at_kill < (STREAM.end - STREAM.start) as usize,
        "the kill must land mid-stream, but all {at_kill} events were answered before it"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.restart();
    restarted.store(true, Ordering::SeqCst);
    eprintln!("broker {pid} killed with {at_kill} of the stream answered; restarted");
    common::ensure_topics(&bootstrap, &[&topic], partitions).await;
    let streamed = in_flight.await.unwrap();
    // One answer per event sent, each event answered (ids, not a count).
    common::assert_same_ids(
        "stream events answered",
        STREAM,
        streamed.iter().map(|(n, _, _)| *n),
    );
    answers.extend(streamed);

    // After recovery (producer rebuilt if it went fatal), new events are acked.
    let mut recovered = false;
    for attempt in 0..50 {
        let n = 10_000 + attempt;
        let answer = handle.produce(event(n)).await;
        let ok = answer.is_ok();
        answers.push((n, answer, true));
        if ok {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "producing recovers after the broker restart");
    for n in 20_000..20_100 {
        let ack = handle
            .produce(event(n))
            .await
            .expect("acked after recovery");
        answers.push((n, Ok(ack), true));
    }
    eprintln!(
        "producer restarts: {}",
        handle.metrics().sample("tickflow_producer_restarts_total")
    );
    handle.shutdown().await;
    KillRun {
        answers,
        topic,
        partitions,
    }
}

/// Checks what holds whatever the storage: every event answered once, nacks retriable, no two
/// acks for one position, and each of `must_survive`'s acks readable at its position as its
/// event. Returns the trade ids read from the whole topic (read until idle).
fn check_kill_run(run: &KillRun, bootstrap: &str, must_survive: &[(u64, Ack)]) -> Vec<u64> {
    eprintln!("{}", run.summary());
    // Every event got exactly one answer.
    let sent = (0..100).chain(100..2_100).chain(
        run.answers
            .iter()
            .map(|(n, _, _)| *n)
            .filter(|n| *n >= 10_000),
    );
    common::assert_same_ids(
        "events answered",
        sent,
        run.answers.iter().map(|(n, _, _)| *n),
    );
    // An outage only ever gives retriable Nacks.
    let permanent: Vec<_> = run.nacks().filter(|(_, nack)| !nack.retriable).collect();
    assert!(permanent.is_empty(), "non-retriable nacks: {permanent:?}");
    // No position acked for two events. (That no event is stored twice is checked by the
    // callers against the topic's contents: each event has one answer by construction.)
    let mut at: HashMap<(i32, i64), u64> = HashMap::new();
    for (n, ack) in must_survive {
        let Some(offset) = ack.offset else { continue };
        if let Some(other) = at.insert((ack.partition, offset), *n) {
            panic!(
                "events {other} and {n} were both acked at partition {} offset {}",
                ack.partition, offset
            );
        }
    }

    let expect: Vec<u64> = must_survive.iter().map(|(n, _)| *n).collect();
    let got = common::consume_until_idle(
        bootstrap,
        &run.topic,
        run.partitions,
        &expect,
        Duration::from_secs(60),
    );
    let read: HashMap<(i32, i64), u64> = got
        .iter()
        .map(|r| ((r.partition, r.offset), trade_id(&r.value)))
        .collect();
    let mut wrong = Vec::new();
    for (n, ack) in must_survive {
        // An Ack without an offset says stored, position unknown: it must be in the topic.
        let found = match ack.offset {
            Some(offset) => read.get(&(ack.partition, offset)),
            None => read.values().find(|v| *v == n),
        };
        if found != Some(n) {
            wrong.push((*n, ack.partition, ack.offset, found.copied()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} acked event(s) not at their acked position after the restart, as (id, partition, \
         offset, id found there): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
    common::ids(&got)
}

#[actix_rt::test]
async fn real_broker_killed_and_restarted_mid_stream_every_event_answered() {
    // Memory storage: the restart loses what was written before it, so only what is acked
    // after the restarted broker is up has to be there.
    let mut broker = common::Broker::start(common::free_port(), common::Storage::Memory);
    let run = kill_mid_stream(&mut broker, "kill", 1).await;
    let late: Vec<(u64, Ack)> = run
        .acks()
        .filter(|(_, _, late)| *late)
        .map(|(n, ack, _)| (n, ack.clone()))
        .collect();
    let in_topic = check_kill_run(&run, &broker.addr(), &late);
    // The topic holds each late-acked event exactly once. Besides them only nacked events may be
    // there (a Nack after a send, e.g. a timeout, does not mean the broker did not store it);
    // nothing acked before the kill survives the memory storage, and nothing never sent.
    let nacked: std::collections::HashSet<u64> = run.nacks().map(|(n, _)| n).collect();
    common::assert_same_ids(
        "topic (without nacked events) against acks after the restart",
        late.iter().map(|(n, _)| *n),
        in_topic.into_iter().filter(|n| !nacked.contains(n)),
    );
}

#[actix_rt::test]
async fn real_durable_broker_killed_and_restarted_mid_stream_loses_no_acked_event() {
    // sqlite storage: the broker keeps what it acked across a SIGKILL and restart.
    let dir = tempfile::tempdir().unwrap();
    let mut broker = common::Broker::start(
        common::free_port(),
        common::Storage::Sqlite(dir.path().join("tansu.db")),
    );
    let run = kill_mid_stream(&mut broker, "killdurable", 3).await;
    let acked: Vec<(u64, Ack)> = run.acks().map(|(n, ack, _)| (n, ack.clone())).collect();
    let in_topic = check_kill_run(&run, &broker.addr(), &acked);
    // Every acked event is in the topic exactly once, wherever it was acked. The idempotent
    // producer cannot write an acked record twice: a retry of a batch the broker had stored
    // before it died carries the same producer id and sequence, which the broker keeps in the
    // same sqlite transaction as the records, so it is refused as a duplicate; and tickflow
    // never resends an event itself. A nacked event may be there, even more than once (a Nack
    // after a send does not mean the broker did not store it, and a fresh producer after a
    // rebuild has a new producer id) -- so nacked ids are left out of the comparison. Nothing
    // never sent may be there.
    let nacked: std::collections::HashSet<u64> = run.nacks().map(|(n, _)| n).collect();
    common::assert_same_ids(
        "topic (without nacked events) against acks",
        acked.iter().map(|(n, _)| *n),
        in_topic.into_iter().filter(|n| !nacked.contains(n)),
    );
}
