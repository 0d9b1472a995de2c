//! Pipeline load against the dev stack's real broker and registry (`make bench`).
//!
//! Same config, same payloads (normalized Trades), same run:
//!  (a) raw rdkafka `FutureProducer`, awaiting every delivery (bounded in flight),
//!  (b) `ProduceEvent` → Ack through the producer actors,
//!  (c) one event in flight at a time (the per-message pattern),
//!  (d) the actors and raw rdkafka at a steady 10 000 events/s each, in alternating rounds:
//!      receipt (the event handed in, not yet encoded) → Ack.
//! Prints msgs/s, p50/p99 latency, peak RSS and the ratios b/a, b/c and d's p50/p99 (actors
//! over raw).
//! `TICKFLOW_LOAD_N` sets the events per phase (default 100 000), `TICKFLOW_LOAD_ROUNDS` the
//! (a)/(b) rounds (default 30); `TICKFLOW_LOAD_ONLY=actors` (or `raw`) runs only phase (b)
//! (or (a)), five times (for profiling).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures::stream::{self, FuturesUnordered, StreamExt};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tickflow::config::Config;
use tickflow::producer::topics::create_topics;
use tickflow::producer::{Payload, ProduceEvent};
use tickflow::schema::registry::{Registry, SubjectStrategy};
use tickflow::schema::v2beta1::trade::Side;

// The allocator the `tickflow` binary uses, for both phases alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tickflow::schema::{wire, DataType, Normalized, Trade};
use tickflow::supervisor::ProducerHandle;

fn trade(n: u64) -> Trade {
    const SYMS: [&str; 4] = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "NKN-USDT"];
    Trade {
        exchange: "BINANCE".into(),
        symbol: SYMS[(n % 4) as usize].into(),
        side: if n % 2 == 0 { Side::Buy } else { Side::Sell } as i32,
        trade_id: (1_034_283_941 + n).to_string(),
        price: "58850.01000000".into(),
        amount: "0.00170000".into(),
        timestamp: 1_619_712_000_123_000 + n as i64,
        raw_id: (1_034_283_941 + n).to_string(),
        maker: Some(n % 3 == 0),
        event_time: Some(1_619_712_000_124_000 + n as i64),
        receipt_time: 1_619_712_000_130_456 + n as i64,
        ..Default::default()
    }
}

struct Phase {
    name: &'static str,
    n: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    nacks: usize,
    cpu: Cpu,
}

/// CPU seconds used so far: this process's main thread (callers and actors), its librdkafka
/// threads, and the broker process (tansu), read from `/proc`.
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    main: f64,
    rdkafka: f64,
    broker: f64,
}

impl Cpu {
    fn ticks(stat: &str) -> Option<(String, f64)> {
        // comm is in parentheses and may hold spaces; utime and stime are fields 14 and 15.
        let (head, tail) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_string();
        let f: Vec<&str> = tail.split_whitespace().collect();
        let t = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((comm, t / 100.0))
    }

    fn now() -> Cpu {
        let mut cpu = Cpu::default();
        let me = std::process::id().to_string();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for t in tasks.flatten() {
                let Some((comm, s)) = std::fs::read_to_string(t.path().join("stat"))
                    .ok()
                    .as_deref()
                    .and_then(Cpu::ticks)
                else {
                    continue;
                };
                if t.file_name().to_string_lossy() == me {
                    cpu.main += s;
                } else if comm.starts_with("rdk:") || comm.contains("poll") {
                    cpu.rdkafka += s;
                }
            }
        }
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                if let Some((comm, s)) = std::fs::read_to_string(p.path().join("stat"))
                    .ok()
                    .as_deref()
                    .and_then(Cpu::ticks)
                {
                    if comm == "tansu" {
                        cpu.broker += s;
                    }
                }
            }
        }
        cpu
    }

    fn total(self) -> f64 {
        self.main + self.rdkafka + self.broker
    }

    fn since(self, start: Cpu) -> Cpu {
        Cpu {
            main: self.main - start.main,
            rdkafka: self.rdkafka - start.rdkafka,
            broker: self.broker - start.broker,
        }
    }
}

impl Phase {
    fn rate(&self) -> f64 {
        self.n as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * p) as usize)
            .min(self.latencies.len().saturating_sub(1));
        self.latencies
            .get(i)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }
    fn print(&mut self) {
        let (p50, p99) = (self.pct(0.50), self.pct(0.99));
        let per = |s: f64| s * 1e6 / self.n as f64;
        println!(
            "{:<34} {:>9} {:>12.0} {:>9.2} {:>9.2} {:>7} {:>10}   {:>5.2} {:>5.2} {:>5.2}",
            self.name,
            self.n,
            self.rate(),
            p50,
            p99,
            self.nacks,
            peak_rss(),
            per(self.cpu.main),
            per(self.cpu.rdkafka),
            per(self.cpu.broker),
        );
    }
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .map_or("?".into(), |kb| {
            format!("{} MiB", kb.parse::<u64>().unwrap_or(0) / 1024)
        })
}

async fn topic(cfg: &Config, name: &str) -> String {
    let t = format!("{}.{name}", cfg.producer.topic_prefix);
    create_topics(&cfg.kafka.client_config(), std::slice::from_ref(&t), 3, 1)
        .await
        .unwrap();
    t
}

/// The raw phase's producer: one `FutureProducer`, created and warmed once and used by every
/// raw round, as the actor phase's shared producer is.
struct Raw {
    producer: FutureProducer,
    topic: String,
    id: u32,
    routing: tickflow::producer::routing::Routing,
    max_in_flight: usize,
}

impl Raw {
    async fn new(cfg: &Config, events: &[Normalized]) -> Raw {
        let t = topic(cfg, "raw").await;
        let registry = Registry::new(&cfg.schema_registry).unwrap();
        let id = registry
            .register(
                &SubjectStrategy::TopicName.subject(&t, DataType::Trade),
                DataType::Trade,
            )
            .await
            .unwrap();
        let producer: FutureProducer = cfg.kafka.client_config().create().unwrap();
        // Warm the fresh producer (connections, metadata, idempotent producer id) outside the
        // clock, as the actor phase's producer is warm.
        producer
            .send(
                FutureRecord::<str, [u8]>::to(&t)
                    .payload(&wire::frame(id, &events[0].encode_to_vec())),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        Raw {
            producer,
            topic: t,
            id,
            routing: tickflow::producer::routing::Routing::new(&cfg.producer),
            max_in_flight: cfg.producer.max_in_flight,
        }
    }
}

async fn raw(r: &Raw, events: &[Normalized]) -> Phase {
    let (producer, t, id, routing) = (&r.producer, &r.topic, r.id, &r.routing);
    let max = r.max_in_flight;
    let mut inflight = FuturesUnordered::new();
    let mut latencies = Vec::with_capacity(events.len());
    let mut nacks = 0;
    // Owned events, consumed (and dropped) one by one inside the clock, as phase (b) does.
    let owned: Vec<ProduceEvent> = events.iter().cloned().map(ProduceEvent::typed).collect();
    let cpu = Cpu::now();
    let start = Instant::now();
    for w in owned {
        let Payload::Typed(e) = &w.payload else {
            unreachable!()
        };
        // Same work and the same record as the actor path: encode + frame, key, headers.
        let payload = wire::frame(id, &e.encode_to_vec());
        let key = format!("{}-{}", e.exchange(), e.symbol());
        let headers = routing.headers(&w);
        while inflight.len() >= max {
            let (ok, lat): (bool, Duration) = inflight.next().await.unwrap();
            nacks += usize::from(!ok);
            latencies.push(lat);
        }
        let t0 = Instant::now();
        let mut rec = FutureRecord::to(t)
            .key(&key)
            .payload(&payload)
            .headers(headers);
        let d = loop {
            match producer.send_result(rec) {
                Ok(d) => break d,
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    rec = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => panic!("raw send failed: {e}"),
            }
        };
        inflight.push(async move { (matches!(d.await, Ok(Ok(_))), t0.elapsed()) });
    }
    while let Some((ok, lat)) = inflight.next().await {
        nacks += usize::from(!ok);
        latencies.push(lat);
    }
    Phase {
        name: "(a) raw rdkafka FutureProducer",
        n: events.len(),
        elapsed: start.elapsed(),
        latencies,
        nacks,
        cpu: Cpu::now().since(cpu),
    }
}

async fn actors(
    handle: &ProducerHandle,
    t: &str,
    events: Vec<Normalized>,
    concurrency: usize,
    name: &'static str,
) -> Phase {
    let n = events.len();
    // The same input as the raw phase: owned events, built outside the clock.
    let events: Vec<ProduceEvent> = events
        .into_iter()
        .map(|e| ProduceEvent::typed(e).to_topic(t))
        .collect();
    let cpu = Cpu::now();
    let start = Instant::now();
    // Answers go into a vector sized up front, as the raw phase's do.
    let mut results: Vec<(bool, Duration)> = Vec::with_capacity(n);
    stream::iter(events)
        .map(|e| {
            // `produce` hands the event to its actor at once; what is awaited is the answer.
            let t0 = Instant::now();
            let answer = handle.produce(e);
            async move { (answer.await.is_ok(), t0.elapsed()) }
        })
        .buffer_unordered(concurrency)
        .for_each(|r| {
            results.push(r);
            std::future::ready(())
        })
        .await;
    let elapsed = start.elapsed();
    Phase {
        name,
        n,
        elapsed,
        cpu: Cpu::now().since(cpu),
        nacks: results.iter().filter(|r| !r.0).count(),
        latencies: results.into_iter().map(|r| r.1).collect(),
    }
}

/// Hands `per_sec` events a second for `secs` seconds to `send` (each on a task of its own,
/// timed from the moment it is handed in to its answer).
async fn paced<F, Fut>(name: &'static str, per_sec: u64, secs: u64, send: F) -> Phase
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = bool> + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let total = per_sec * secs;
    let cpu = Cpu::now();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * per_sec as f64) as u64;
        while sent < due.min(total) {
            let t0 = Instant::now();
            let answer = send(sent);
            let tx = tx.clone();
            actix_rt::spawn(async move {
                let ok = answer.await;
                let _ = tx.send((ok, t0.elapsed()));
            });
            sent += 1;
        }
    }
    drop(tx);
    let mut latencies = Vec::with_capacity(total as usize);
    let mut nacks = 0;
    while let Some((ok, lat)) = rx.recv().await {
        nacks += usize::from(!ok);
        latencies.push(lat);
    }
    Phase {
        name,
        n: total as usize,
        elapsed: start.elapsed(),
        latencies,
        nacks,
        cpu: Cpu::now().since(cpu),
    }
}

/// The actors at a steady rate: the typed event handed in, encoded and produced by them.
async fn steady(handle: &ProducerHandle, t: &str, per_sec: u64, secs: u64) -> Phase {
    paced("(d) actors, steady 10 000 ev/s", per_sec, secs, |i| {
        let answer = handle.produce(ProduceEvent::typed(Normalized::Trade(trade(i))).to_topic(t));
        async move { answer.await.is_ok() }
    })
    .await
}

/// Raw rdkafka at the same rate: the same typed event encoded, framed, keyed and sent.
async fn steady_raw(r: &Raw, per_sec: u64, secs: u64) -> Phase {
    paced("(d) raw rdkafka, steady 10 000 ev/s", per_sec, secs, |i| {
        let w = ProduceEvent::typed(Normalized::Trade(trade(i)));
        let Payload::Typed(e) = &w.payload else {
            unreachable!()
        };
        let payload = wire::frame(r.id, &e.encode_to_vec());
        let key = format!("{}-{}", e.exchange(), e.symbol());
        let rec = FutureRecord::to(&r.topic)
            .key(&key)
            .payload(&payload)
            .headers(r.routing.headers(&w));
        // Far below the queue's bound at this rate: a full queue is a failure here.
        let d = r.producer.send_result(rec).map_err(|(e, _)| e);
        async move {
            match d {
                Ok(d) => matches!(d.await, Ok(Ok(_))),
                Err(_) => false,
            }
        }
    })
    .await
}

/// Interleaved (a)/(b) rounds, in alternating order (`TICKFLOW_LOAD_ROUNDS`, default 30);
/// the machine's speed varies by tens of percent from one second to the next on a shared
/// 2-core VM, so one pair of phases says little and many are summed.
const ROUNDS: usize = 30;

fn main() {
    actix_rt::System::new().block_on(async {
        let n: usize = std::env::var("TICKFLOW_LOAD_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
        let rounds: usize = std::env::var("TICKFLOW_LOAD_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(ROUNDS).max(1);
        let mut cfg = Config::load(std::path::Path::new("config/default.toml")).unwrap();
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        cfg.producer.topic_prefix = format!("bench.{stamp}");
        cfg.producer.partitions = 3;
        let events: Vec<Normalized> = (0..n as u64).map(|i| Normalized::Trade(trade(i))).collect();
        let avg = events.iter().map(|e| e.encode_to_vec().len() + 6).sum::<usize>() / n;
        println!("tickflow pipeline load: {n} Trades/phase, ~{avg} B framed, broker {}, linger.ms={}, max_in_flight={}",
            cfg.kafka.bootstrap_servers, cfg.kafka.linger.as_millis(), cfg.producer.max_in_flight);
        println!("{:<34} {:>9} {:>12} {:>9} {:>9} {:>7} {:>10}   CPU µs/event: main rdkafka broker", "phase", "events", "msgs/s", "p50 ms", "p99 ms", "nacks", "peak RSS");

        // Warm-up (connections, topic leaders, allocator), not reported.
        let raw_producer = Raw::new(&cfg, &events).await;
        raw(&raw_producer, &events[..n.min(20_000)]).await;
        let handle = ProducerHandle::start(cfg.clone()).unwrap();
        let t = topic(&cfg, "actors").await;
        handle.produce(ProduceEvent::typed(events[0].clone()).to_topic(&t)).await.unwrap();
        // (a) and (b) `rounds` times, interleaved. The rate of the same load varies a lot
        // between rounds, so the overall rates (all events over all time of each phase), the
        // median of the per-round ratios and every round's ratio are printed.
        if let Ok(only) = std::env::var("TICKFLOW_LOAD_ONLY") {
            // For profiling one path alone (e.g. under `perf record`).
            for _ in 0..5 {
                let mut p = match only.as_str() {
                    "raw" => raw(&raw_producer, &events).await,
                    _ => actors(&handle, &t, events.clone(), cfg.producer.max_in_flight, "(b) ProduceEvent -> Ack via actors").await,
                };
                p.print();
            }
            handle.shutdown().await;
            return;
        }
        let mut best: [Option<Phase>; 2] = [None, None];
        let mut ratios = Vec::new();
        // Time spent by all rounds of each phase: all events over all time is the overall rate.
        let mut total = [Duration::ZERO; 2];
        // CPU seconds (this process's threads and the broker's) of all rounds of each phase.
        let mut cpu = [0.0f64; 2];
        for round in 0..rounds {
            // Every other round runs (b) first, so neither phase always follows the other;
            // a short pause lets the previous phase's tail (broker, librdkafka) settle.
            let settle = || tokio::time::sleep(Duration::from_millis(300));
            let (mut a, mut b);
            if round % 2 == 0 {
                settle().await;
                a = raw(&raw_producer, &events).await;
                settle().await;
                b = actors(&handle, &t, events.clone(), cfg.producer.max_in_flight, "(b) ProduceEvent -> Ack via actors").await;
            } else {
                settle().await;
                b = actors(&handle, &t, events.clone(), cfg.producer.max_in_flight, "(b) ProduceEvent -> Ack via actors").await;
                settle().await;
                a = raw(&raw_producer, &events).await;
            }
            a.print();
            b.print();
            ratios.push(b.rate() / a.rate());
            total[0] += a.elapsed;
            total[1] += b.elapsed;
            cpu[0] += a.cpu.total();
            cpu[1] += b.cpu.total();
            for (slot, p) in best.iter_mut().zip([a, b]) {
                if slot.as_ref().is_none_or(|s| p.rate() > s.rate()) {
                    *slot = Some(p);
                }
            }
        }
        ratios.sort_by(f64::total_cmp);
        let [Some(a), Some(b)] = best else { unreachable!() };
        let m = (n / 100).max(200);
        let mut c = actors(&handle, &t, events[..m].to_vec(), 1, "(c) one event in flight at a time").await;
        c.print();
        // (d): 10 000 events/s for 5 s, actors and raw in turn, three rounds each.
        let mut steady_actors: Option<Phase> = None;
        let mut steady_rdkafka: Option<Phase> = None;
        for round in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (mut d, mut r) = if round % 2 == 0 {
                let d = steady(&handle, &t, 10_000, 5).await;
                (d, steady_raw(&raw_producer, 10_000, 5).await)
            } else {
                let r = steady_raw(&raw_producer, 10_000, 5).await;
                (steady(&handle, &t, 10_000, 5).await, r)
            };
            d.print();
            r.print();
            for (all, p) in [(&mut steady_actors, d), (&mut steady_rdkafka, r)] {
                match all {
                    Some(a) => {
                        a.n += p.n;
                        a.nacks += p.nacks;
                        a.latencies.extend(p.latencies);
                    }
                    None => *all = Some(p),
                }
            }
        }
        let (Some(mut d), Some(mut r)) = (steady_actors, steady_rdkafka) else { unreachable!() };
        let (d50, d99, r50, r99) = (d.pct(0.50), d.pct(0.99), r.pct(0.50), r.pct(0.99));
        println!(
            "steady 10 000 ev/s, receipt -> Ack over 3 rounds of 5 s: actors p50 {d50:.2} ms p99 {d99:.2} ms ({} nacks), raw rdkafka p50 {r50:.2} ms p99 {r99:.2} ms ({} nacks); actors/raw p50 {:.2}, p99 {:.2} (goal <= 1.2)",
            d.nacks, r.nacks, d50 / r50, d99 / r99,
        );
        let overall = |t: Duration| (n * rounds) as f64 / t.as_secs_f64();
        println!(
            "all {rounds} rounds: a = {:.0} msgs/s, b = {:.0} msgs/s, ratio b/a = {:.2} (target >= 0.9);  median per-round b/a = {:.2};  per-round b/a (sorted): {}",
            overall(total[0]), overall(total[1]), total[0].as_secs_f64() / total[1].as_secs_f64(),
            ratios[ratios.len() / 2],
            ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" "),
        );
        let per_event = |s: f64| s * 1e6 / (n * rounds) as f64;
        println!(
            "all {rounds} rounds, CPU per event (process + broker): a = {:.2} µs, b = {:.2} µs, a/b = {:.2} (the b/a rate ratio of a machine whose cores both phases keep busy)",
            per_event(cpu[0]), per_event(cpu[1]), cpu[0] / cpu[1],
        );
        println!(
            "best round: a = {:.0} msgs/s, b = {:.0} msgs/s;  ratio b/c = {:.1}",
            a.rate(), b.rate(), b.rate() / c.rate()
        );
        handle.shutdown().await;
    });
}
