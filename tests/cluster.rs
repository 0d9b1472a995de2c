//! Many instances of `tickflow run` sharing one config through a Kafka consumer group
//! (`[cluster] group`): real processes against the dev stack's broker, a Kraken replay of ten
//! symbols (one replay server each). At steady state every shard has exactly one owner and every book is synced by the
//! instance that owns it; a SIGKILLed instance's shards move to the survivors within the
//! session timeout (plus a margin) and its books are synced again there; a gracefully stopped
//! instance hands its shards over with every acked record in Kafka once and the stream audit
//! clean.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::{DataType, Normalized};

/// The ten Kraken symbols of the recording (tests/fixtures/kraken).
const SYMBOLS: [&str; 10] = [
    "XMR-USD",
    "SC-EUR",
    "WAVES-EUR",
    "OMG-USD",
    "ADA-BTC",
    "KSM-BTC",
    "ETH-CHF",
    "BTC-CHF",
    "OCEAN-BTC",
    "GRT-ETH",
];
const SHARDS: u32 = 6;
/// The tests run one at a time: each runs three instances and ten replay servers.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const SESSION: Duration = Duration::from_secs(6);

struct Instance {
    id: String,
    port: u16,
    child: common::Child,
    log: PathBuf,
    _config: tempfile::NamedTempFile,
}

impl Instance {
    fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

struct Cluster {
    prefix: String,
    group: String,
    /// One replay server per symbol, in SYMBOLS order (the Kraken mock keeps one book per pair
    /// and one timeline position per subscription set: connections of different sets on one
    /// server would see each other's books move).
    replay_urls: Vec<String>,
    /// Where the instances' logs are kept (under the target's test directory).
    dir: PathBuf,
}

impl Cluster {
    /// A cluster named `name` whose feeds read `replays`.
    fn on(name: &str, replays: &[tickflow::replay::ReplayServer]) -> Cluster {
        Cluster::new(name, replays.iter().map(|r| r.rest_url()).collect())
    }

    /// Spawns one instance per id.
    fn spawn_all(&self, ids: &[&str]) -> Vec<Instance> {
        ids.iter().map(|id| self.spawn(id)).collect()
    }

    fn new(name: &str, replay_urls: Vec<String>) -> Cluster {
        Cluster {
            prefix: common::unique_topic(name),
            group: common::unique_topic(&format!("{name}-group")),
            replay_urls,
            dir: {
                let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(common::unique_topic(name));
                std::fs::create_dir_all(&d).unwrap();
                d
            },
        }
    }

    /// The dynamic `[cluster]` section of instance `id`.
    fn dynamic(&self, id: &str) -> String {
        format!(
            "group = \"{}\"\nshards = {SHARDS}\nsession_timeout_ms = {}\ninstance_id = \"{id}\"\n",
            self.group,
            SESSION.as_millis()
        )
    }

    fn config(&self, cluster: &str, port: u16) -> String {
        let mut text = format!(
            r#"[kafka]
bootstrap_servers = "{kafka}"
[schema_registry]
url = "{registry}"
[producer]
topic_prefix = "{prefix}"
partitions = 3
[http]
listen = "127.0.0.1:{port}"
[run]
progress_interval_ms = 1000
[cluster]
{cluster}"#,
            kafka = common::kafka_addr(),
            registry = common::registry_url(),
            prefix = self.prefix,
        );
        // No trades: Kraken v1 trades carry no venue id, so a trade stored twice could not be
        // told from two trades alike.
        for (symbol, url) in SYMBOLS.iter().zip(&self.replay_urls) {
            text.push_str(&format!(
                r#"[[feeds]]
venue = "kraken"
stale_after_ms = 600000
symbols = ["{symbol}"]
channels = ["depth", "ticker"]
ws_url = "{ws}"
rest_url = "{url}"
snapshot_limit = 1000
book_snapshot_every = 100
"#,
                ws = url.replace("http://", "ws://"),
            ));
        }
        text
    }

    fn spawn(&self, id: &str) -> Instance {
        self.spawn_with(id, &self.dynamic(id))
    }

    /// An instance named `id` with `cluster` as its `[cluster]` section.
    fn spawn_with(&self, id: &str, cluster: &str) -> Instance {
        let port = common::free_port();
        let config = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(config.path(), self.config(cluster, port)).unwrap();
        let log = self.dir.join(format!("{id}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tickflow"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(config.path())
            .env("RUST_LOG", "info,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Instance {
            id: id.to_string(),
            port,
            child: common::Child(child),
            log,
            _config: config,
        }
    }

    /// The config of the instances as a `Config` (for the audit and topic names).
    fn cfg(&self) -> tickflow::config::Config {
        let mut c = common::test_config("unused");
        c.producer.topic_prefix = self.prefix.clone();
        c.producer.partitions = 3;
        c
    }
}

/// `/status` of an instance, or `None` when it does not answer.
async fn status(port: u16) -> Option<serde_json::Value> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/status"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// The symbols of a feed name such as `kraken[XMR-USD,SC-EUR]`.
fn symbols_of(feed: &str) -> Vec<String> {
    let inner = feed
        .split_once('[')
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .unwrap_or_default();
    inner
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Who owns what, as the instances' `/status` say.
#[derive(Debug, Clone, Default)]
struct Ownership {
    /// shard → owners.
    shards: BTreeMap<u32, Vec<String>>,
    /// symbol → owners (from the feeds listed).
    symbols: BTreeMap<String, Vec<String>>,
    /// The rebalance protocols the instances report.
    protocols: BTreeSet<String>,
}

async fn ownership(instances: &[&Instance]) -> Ownership {
    let mut o = Ownership::default();
    for i in instances {
        let Some(s) = status(i.port).await else {
            continue;
        };
        assert_eq!(s["instance"], i.id.as_str(), "{s}");
        assert_eq!(s["mode"], "dynamic", "{s}");
        if let Some(p) = s["rebalance_protocol"].as_str() {
            o.protocols.insert(p.to_string());
        }
        for shard in s["shards"].as_array().unwrap() {
            o.shards
                .entry(shard.as_u64().unwrap() as u32)
                .or_default()
                .push(i.id.clone());
        }
        for f in s["feeds"].as_array().unwrap() {
            for sym in symbols_of(f["name"].as_str().unwrap()) {
                o.symbols.entry(sym).or_default().push(i.id.clone());
            }
        }
    }
    o
}

/// Every shard and every symbol owned by exactly one of `instances`.
fn exactly_once(o: &Ownership) -> bool {
    let all_shards: BTreeSet<u32> = (0..SHARDS).collect();
    o.shards.keys().copied().collect::<BTreeSet<_>>() == all_shards
        && o.shards.values().all(|v| v.len() == 1)
        && o.symbols.keys().cloned().collect::<BTreeSet<_>>()
            == SYMBOLS.iter().map(|s| s.to_string()).collect()
        && o.symbols.values().all(|v| v.len() == 1)
}

/// Waits until every shard and symbol has exactly one owner among `instances`, stable for
/// 3 s; returns the ownership and how long it took. Panics after `limit`.
async fn steady(instances: &[&Instance], limit: Duration) -> (Ownership, Duration) {
    let started = Instant::now();
    let mut since: Option<(Instant, String)> = None;
    loop {
        let o = ownership(instances).await;
        if exactly_once(&o) {
            let key = format!("{:?}", o.shards);
            match &since {
                Some((t, k)) if *k == key && t.elapsed() >= Duration::from_secs(3) => {
                    return (o, started.elapsed());
                }
                Some((_, k)) if *k == key => {}
                _ => since = Some((Instant::now(), key)),
            }
        } else {
            since = None;
        }
        assert!(
            started.elapsed() < limit,
            "no steady ownership within {limit:?}: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The values of every record of `topic` up to the high watermark each partition has now (the
/// topics grow while the instances run: a read until idle would never end), read off the
/// runtime's threads (the replay servers run on them). A record past tansu's watermark (it may
/// lag by a batch) shows in a later read; callers poll.
async fn read_topic(topic: String) -> Vec<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::Message;
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", common::kafka_addr())
            .set("group.id", common::unique_topic("cluster-read"))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let md = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let partitions = md
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        let mut tpl = rdkafka::TopicPartitionList::new();
        let mut next: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(10))
                .unwrap();
            next.insert(p, (low, high));
            tpl.add_partition_offset(&topic, p, rdkafka::Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        while next.values().any(|(at, high)| at < high) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{topic}: not read to its watermarks within 30 s: {next:?}"
            );
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    if let Some(p) = next.get_mut(&m.partition()) {
                        p.0 = p.0.max(m.offset() + 1);
                    }
                    out.push(m.payload().unwrap_or_default().to_vec());
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        out
    })
    .await
    .unwrap()
}

/// The `FeedEvent`s in the topic now.
async fn feed_events(cfg: &tickflow::config::Config) -> Vec<tickflow::schema::FeedEvent> {
    let topic = format!(
        "{}.{}",
        cfg.producer.topic_prefix,
        DataType::FeedEvent.as_str()
    );
    read_topic(topic)
        .await
        .iter()
        .filter_map(|r| {
            match Normalized::decode(
                DataType::FeedEvent,
                tickflow::schema::wire::parse(r).unwrap().payload,
            )
            .unwrap()
            {
                Normalized::FeedEvent(e) => Some(e),
                _ => None,
            }
        })
        .collect()
}

/// Waits until every symbol of `want` (symbol → instance) has a `SYNCED` event emitted by
/// that instance at or after `after_us`. Panics after `limit` naming what is missing.
async fn synced_by(
    cfg: &tickflow::config::Config,
    want: &BTreeMap<String, String>,
    after_us: i64,
    limit: Duration,
) {
    let started = Instant::now();
    loop {
        let events = feed_events(cfg).await;
        let missing: Vec<(&String, &String)> = want
            .iter()
            .filter(|(sym, owner)| {
                !events.iter().any(|e| {
                    e.kind == Kind::Synced as i32
                        && e.symbol == **sym
                        && e.instance == **owner
                        && e.timestamp >= after_us
                })
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "no SYNCED within {limit:?} for (symbol, instance) {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until every symbol of `symbols` has a `Level2Delta` received after `after_us`.
/// Panics after `limit` naming the symbols without one (and the counts of the others).
async fn deltas_after(
    cfg: &tickflow::config::Config,
    symbols: &[String],
    after_us: i64,
    limit: Duration,
) {
    let topic = format!(
        "{}.{}",
        cfg.producer.topic_prefix,
        DataType::Level2Delta.as_str()
    );
    let started = Instant::now();
    loop {
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for r in read_topic(topic.clone()).await {
            if let Normalized::Level2Delta(d) = Normalized::decode(
                DataType::Level2Delta,
                tickflow::schema::wire::parse(&r).unwrap().payload,
            )
            .unwrap()
            {
                if d.receipt_time > after_us {
                    *count.entry(d.symbol).or_default() += 1;
                }
            }
        }
        let missing: Vec<&String> = symbols.iter().filter(|s| !count.contains_key(*s)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "no delta after {after_us} within {limit:?} for {missing:?}; the others: {count:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The owner of every symbol, from an ownership with exactly one owner each.
fn owners(o: &Ownership) -> BTreeMap<String, String> {
    o.symbols
        .iter()
        .map(|(s, v)| (s.clone(), v[0].clone()))
        .collect()
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// One Kraken replay server per symbol.
async fn kraken_replays() -> Vec<tickflow::replay::ReplayServer> {
    let mut out = Vec::new();
    for _ in SYMBOLS {
        out.push(
            tickflow::venues::replay_server(tickflow::replay::ReplayServerConfig {
                venue: "kraken".into(),
                listen: "127.0.0.1:0".into(),
                fixtures: "tests/fixtures/kraken".into(),
                // The recording spans 30 s: at its pace, it plays for the whole test.
                speed: 1.0,
                loops: 1_000,
                drop_after_frames: 0,
            })
            .await
            .unwrap(),
        );
    }
    out
}

fn sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits for the instance to exit by itself; its exit status.
async fn exited(i: &mut Instance, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = i.child.0.try_wait().unwrap() {
            return s;
        }
        assert!(
            started.elapsed() < limit,
            "{} did not exit within {limit:?}",
            i.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The data topics under `prefix` (not the control topic).
fn data_topics(prefix: &str) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let probe: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", common::kafka_addr())
        .create()
        .unwrap();
    let md = probe.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    let mut topics: Vec<String> = md
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .filter(|t| t.starts_with(&format!("{prefix}.")) && !t.contains(".cluster."))
        .collect();
    topics.sort();
    assert!(!topics.is_empty(), "no topic under {prefix}");
    topics
}

/// The records an instance says were acked: its last `progress (all topics)` log line.
fn produced(i: &Instance) -> u64 {
    let f = std::fs::File::open(&i.log).unwrap();
    let mut last = None;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["fields"]["message"] == "progress (all topics)" {
            last = v["fields"]["produced"].as_f64();
        }
    }
    last.unwrap_or_else(|| panic!("{} logged no progress line", i.id)) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_s_shards_move_to_the_survivors_and_its_books_resync() {
    let _serial = SERIAL.lock().await;
    let replays = kraken_replays().await;
    let cluster = Cluster::on("cluster-kill", &replays);
    let cfg = cluster.cfg();
    let mut instances = cluster.spawn_all(&["i0", "i1", "i2"]);
    let all: Vec<&Instance> = instances.iter().collect();
    let (before, took) = steady(&all, Duration::from_secs(60)).await;
    println!("steady after {took:?}: {before:?}");
    // tansu runs the cooperative-sticky assignor's incremental protocol.
    assert_eq!(
        before.protocols,
        BTreeSet::from(["cooperative".to_string()])
    );
    // Every book synced by the instance whose /status lists it, and every symbol's deltas in.
    synced_by(&cfg, &owners(&before), 0, Duration::from_secs(30)).await;
    let symbols: Vec<String> = SYMBOLS.iter().map(|s| s.to_string()).collect();
    deltas_after(&cfg, &symbols, 0, Duration::from_secs(40)).await;

    // SIGKILL the instance owning the most shards (every instance owns some at steady state
    // with a cooperative assignor; the most makes the test move the most).
    let victim = (0..3)
        .max_by_key(|k| {
            before
                .shards
                .values()
                .filter(|o| o[0] == instances[*k].id)
                .count()
        })
        .unwrap();
    let victim_id = instances[victim].id.clone();
    let moved: Vec<String> = before
        .symbols
        .iter()
        .filter(|(_, o)| o[0] == victim_id)
        .map(|(s, _)| s.clone())
        .collect();
    assert!(!moved.is_empty(), "{victim_id} owned symbols: {before:?}");
    let killed_at = Instant::now();
    let killed_us = now_us();
    instances[victim].child.0.kill().unwrap();
    let _ = instances[victim].child.0.wait();

    let survivors: Vec<&Instance> = instances
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != victim)
        .map(|(_, i)| i)
        .collect();
    let (after, _) = steady(&survivors, Duration::from_secs(60)).await;
    // Ownership is steady 3 s before `steady` returns: it was reached that much earlier.
    let owned_again = killed_at.elapsed() - Duration::from_secs(3);
    println!("owned again after {owned_again:?}: {after:?}");
    assert!(
        owned_again <= SESSION + Duration::from_secs(10),
        "the killed instance's shards were owned again after {owned_again:?} (session {SESSION:?})"
    );
    for s in &moved {
        assert_ne!(after.symbols[s][0], victim_id);
    }
    // The gauge agrees with /status on each survivor.
    for i in &survivors {
        let owned = after.shards.values().filter(|o| o[0] == i.id).count();
        let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", i.port))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l == format!("tickflow_shards_owned {owned}")),
            "{}: tickflow_shards_owned is not {owned}",
            i.id
        );
    }
    // Every moved book is announced SYNCED by its new owner, after the kill.
    let new_owners: BTreeMap<String, String> = owners(&after)
        .into_iter()
        .filter(|(s, _)| moved.contains(s))
        .collect();
    synced_by(&cfg, &new_owners, killed_us, Duration::from_secs(30)).await;
    // And its deltas resume: each moved symbol has level2 deltas received after the kill.
    deltas_after(&cfg, &moved, killed_us, Duration::from_secs(40)).await;
    // Every book stayed exact through the move (the venue's checksum agreed with every delta).
    let mismatches: Vec<_> = feed_events(&cfg)
        .await
        .into_iter()
        .filter(|e| e.kind == Kind::ChecksumMismatch as i32)
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:?}");
    for i in instances.iter_mut().filter(|i| i.id != victim_id) {
        sigterm(i.pid());
    }
    for i in instances.iter_mut().filter(|i| i.id != victim_id) {
        assert!(exited(i, Duration::from_secs(40)).await.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gracefully_stopped_instance_hands_over_with_every_acked_record_once() {
    let _serial = SERIAL.lock().await;
    let replays = kraken_replays().await;
    let cluster = Cluster::on("cluster-stop", &replays);
    let cfg = cluster.cfg();
    let mut instances = cluster.spawn_all(&["g0", "g1", "g2"]);
    let all: Vec<&Instance> = instances.iter().collect();
    let (before, _) = steady(&all, Duration::from_secs(60)).await;
    synced_by(&cfg, &owners(&before), 0, Duration::from_secs(30)).await;
    let leaving = instances[0].id.clone();
    let moved: Vec<String> = before
        .symbols
        .iter()
        .filter(|(_, o)| o[0] == leaving)
        .map(|(s, _)| s.clone())
        .collect();
    let stopped_us = now_us();
    sigterm(instances[0].pid());
    assert!(exited(&mut instances[0], Duration::from_secs(40))
        .await
        .success());
    let survivors: Vec<&Instance> = instances[1..].iter().collect();
    let (after, _) = steady(&survivors, Duration::from_secs(60)).await;
    let new_owners: BTreeMap<String, String> = owners(&after)
        .into_iter()
        .filter(|(s, _)| moved.contains(s))
        .collect();
    synced_by(&cfg, &new_owners, stopped_us, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in &instances[1..] {
        sigterm(i.pid());
    }
    for i in instances[1..].iter_mut() {
        assert!(exited(i, Duration::from_secs(40)).await.success());
    }
    // Every record acked to any instance is in Kafka, once: the records in the topics are
    // exactly as many as the instances were acked (a duplicate or a hole would differ).
    let acked: u64 = instances.iter().map(produced).sum();
    let mut stored = 0u64;
    for topic in data_topics(&cfg.producer.topic_prefix) {
        // Read until nothing came for 3 s (every instance has stopped: nothing more comes).
        let t = topic.clone();
        let n = tokio::task::spawn_blocking(move || {
            common::consume_all(
                &common::kafka_addr(),
                &t,
                3,
                Duration::from_secs(3),
                Duration::from_secs(60),
            )
            .len()
        })
        .await
        .unwrap();
        println!("{topic}: {n}");
        stored += n as u64;
    }
    assert_eq!(
        stored, acked,
        "records in Kafka vs records acked to the instances"
    );
    // No delta twice: a Kraken delta is identified by its symbol, its levels, the venue's time
    // of its latest level (shifted in each loop of the replay) and the venue's checksum.
    let topic = format!(
        "{}.{}",
        cfg.producer.topic_prefix,
        DataType::Level2Delta.as_str()
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in read_topic(topic).await {
        if let Normalized::Level2Delta(d) = Normalized::decode(
            DataType::Level2Delta,
            tickflow::schema::wire::parse(&r).unwrap().payload,
        )
        .unwrap()
        {
            let id = format!(
                "{} {:?} {:?} {:?} {:?}",
                d.symbol, d.bids, d.asks, d.timestamp, d.checksum
            );
            *seen.entry(id).or_default() += 1;
        }
    }
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "deltas stored more than once: {twice:?}");
    // Every book stayed exact through the handover: the venue's checksum agreed with every
    // delta (a book that missed or repeated one would be announced CHECKSUM_MISMATCH).
    let mismatches: Vec<_> = feed_events(&cfg)
        .await
        .into_iter()
        .filter(|e| e.kind == Kind::ChecksumMismatch as i32)
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:?}");
    // The audit of the stream: no unannounced break, no duplicate, every full book rebuilt by
    // the records before it.
    let c = cfg.clone();
    let audit = tokio::task::spawn_blocking(move || {
        tickflow::audit::run(&c, &tickflow::audit::AuditRange::default()).unwrap()
    })
    .await
    .unwrap();
    assert!(
        audit.clean,
        "{}",
        serde_json::to_string_pretty(&audit).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_instance_carries_exactly_its_share() {
    let _serial = SERIAL.lock().await;
    let replays = kraken_replays().await;
    let cluster = Cluster::on("cluster-static", &replays);
    let cfg = cluster.cfg();
    // Instance 0 of 3, its ordinal from a StatefulSet-like name in the environment.
    let section = "instances = 3\ninstance_from_env = \"TICKFLOW_TEST_POD\"\n";
    let port = common::free_port();
    let config = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(config.path(), cluster.config(section, port)).unwrap();
    let log = cluster.dir.join("static.log");
    let mut child = common::Child(
        Command::new(env!("CARGO_BIN_EXE_tickflow"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(config.path())
            .env("TICKFLOW_TEST_POD", "tickflow-0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // Its share by the hash (checked against the ADR's description in tests/cluster_plan.rs).
    let mine: BTreeSet<String> = SYMBOLS
        .iter()
        .filter(|s| tickflow::cluster::plan::owner(&format!("kraken\n\n{s}"), 3) == 0)
        .map(|s| s.to_string())
        .collect();
    assert!(!mine.is_empty() && mine.len() < SYMBOLS.len(), "{mine:?}");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = status(port).await {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no /status");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["mode"], "static", "{status}");
    assert_eq!(status["ordinal"], 0, "{status}");
    assert_eq!(status["instances"], 3, "{status}");
    assert_eq!(status["instance"], "instance-0", "{status}");
    let listed: BTreeSet<String> = status["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| symbols_of(f["name"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, mine);
    // Its books synced (by it) and its deltas in; nothing of the others'.
    let want: BTreeMap<String, String> = mine
        .iter()
        .map(|s| (s.clone(), "instance-0".to_string()))
        .collect();
    synced_by(&cfg, &want, 0, Duration::from_secs(30)).await;
    let mine_v: Vec<String> = mine.iter().cloned().collect();
    deltas_after(&cfg, &mine_v, 0, Duration::from_secs(40)).await;
    let topic = format!(
        "{}.{}",
        cfg.producer.topic_prefix,
        DataType::Level2Delta.as_str()
    );
    let others: BTreeSet<String> = read_topic(topic)
        .await
        .iter()
        .filter_map(|r| {
            match Normalized::decode(
                DataType::Level2Delta,
                tickflow::schema::wire::parse(r).unwrap().payload,
            )
            .unwrap()
            {
                Normalized::Level2Delta(d) if !mine.contains(&d.symbol) => Some(d.symbol),
                _ => None,
            }
        })
        .collect();
    assert!(
        others.is_empty(),
        "deltas of other instances' symbols: {others:?}"
    );
    sigterm(child.0.id());
    let started = Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(40), "no exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
