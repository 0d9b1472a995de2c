//! Helpers shared by the integration tests: the dev stack's addresses, unique topics,
//! explicit topic creation and a plain consumer that reads a topic back from the start.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Broker address of the dev stack (override with `TICKFLOW_TEST_KAFKA`).
pub fn kafka_addr() -> String {
    std::env::var("TICKFLOW_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Registry URL of the dev stack (override with `TICKFLOW_TEST_REGISTRY`).
pub fn registry_url() -> String {
    std::env::var("TICKFLOW_TEST_REGISTRY").unwrap_or_else(|_| "http://127.0.0.1:8081".into())
}

/// A topic name no other test (or earlier run) uses.
pub fn unique_topic(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}.{}.{}.{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates topics explicitly (the broker would auto-create with its own partition count).
pub async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) {
    create_topics_inner(bootstrap, topics, partitions, false).await
}

/// Creates topics, accepting ones that already exist (after a broker restart a client's metadata
/// request may auto-create the topic first).
pub async fn ensure_topics(bootstrap: &str, topics: &[&str], partitions: i32) {
    create_topics_inner(bootstrap, topics, partitions, true).await
}

async fn create_topics_inner(bootstrap: &str, topics: &[&str], partitions: i32, exists_ok: bool) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let res = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    for r in res {
        match r {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) if exists_ok => {}
            Err(e) => panic!("creating topic failed: {e:?}"),
        }
    }
}

/// One consumed record, owned.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
}

fn to_record(m: &BorrowedMessage<'_>) -> Record {
    let mut headers = HashMap::new();
    if let Some(h) = m.headers() {
        for hd in h.iter() {
            headers.insert(
                hd.key.to_string(),
                String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
            );
        }
    }
    Record {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().unwrap_or_default().to_vec(),
        headers,
    }
}

/// A consumer of `topic` (all `partitions`) from the beginning. Uses assign(), so no
/// consumer-group delay.
fn assigned_consumer(bootstrap: &str, topic: &str, partitions: i32) -> BaseConsumer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", format!("tickflow-test-{}", unique_topic("g")))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50");
    if let Ok(d) = std::env::var("TICKFLOW_TEST_CONSUMER_DEBUG") {
        cfg.set("debug", d);
    }
    let consumer: BaseConsumer = cfg.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// One poll: a record, or None when nothing came within `wait`. Panics on a consumer error
/// (a read that silently skipped errors could hide lost records behind a retry).
fn poll_record(consumer: &BaseConsumer, topic: &str, wait: Duration) -> Option<Record> {
    match consumer.poll(wait) {
        None => None,
        Some(Ok(m)) => Some(to_record(&m)),
        Some(Err(e)) => panic!("consumer error while reading {topic}: {e} ({e:?})"),
    }
}

/// Reads `topic` (all `partitions`) from the beginning until `want` records arrived or
/// `timeout` passed; returns what it read. Panics on any consumer error. Stops at `want`, so it
/// cannot see duplicates: tests that check delivery use [`consume_until_idle`].
pub fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    want: usize,
    timeout: Duration,
) -> Vec<Record> {
    let consumer = assigned_consumer(bootstrap, topic, partitions);
    let mut out = Vec::with_capacity(want);
    let deadline = Instant::now() + timeout;
    while out.len() < want && Instant::now() < deadline {
        if let Some(r) = poll_record(&consumer, topic, Duration::from_millis(100)) {
            out.push(r);
        }
    }
    out
}

/// Reads `topic` (all `partitions`) from the beginning until no record arrived for `idle` (or
/// `deadline` passed): everything the topic holds, however slowly the broker serves it.
pub fn consume_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    idle: Duration,
    deadline: Duration,
) -> Vec<Record> {
    let consumer = assigned_consumer(bootstrap, topic, partitions);
    let (started, mut last) = (Instant::now(), Instant::now());
    let mut out = Vec::new();
    while last.elapsed() < idle && started.elapsed() < deadline {
        if let Some(r) = poll_record(&consumer, topic, Duration::from_millis(100)) {
            out.push(r);
            last = Instant::now();
        }
    }
    out
}

/// Reads `topic` (every partition the broker lists for it) from the beginning up to the high
/// watermark each partition had when the read started, however slowly the broker serves it,
/// and then until no record came for [`IDLE`]: tansu reports a partition's high watermark as
/// its last batch's base offset + 1 (a batch of 3 at offsets 0..=2 gives 1; checked
/// 2026-12-07 against the dev broker), so the records after that base are read by waiting.
/// Panics when `deadline` passes first.
pub fn consume_to_end(bootstrap: &str, topic: &str, deadline: Duration) -> Vec<Record> {
    let partitions = {
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .unwrap();
        let md = probe
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        md.topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32)
    };
    println!("{topic}: {partitions} partitions");
    let consumer = assigned_consumer(bootstrap, topic, partitions);
    let mut next: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        next.insert(p, (low, high));
    }
    let started = Instant::now();
    let mut last = Instant::now();
    let mut out = Vec::new();
    while next.values().any(|(at, high)| at < high) || last.elapsed() < IDLE {
        assert!(
            started.elapsed() < deadline,
            "{topic}: not read to its end within {deadline:?}: {next:?}"
        );
        if let Some(r) = poll_record(&consumer, topic, Duration::from_millis(200)) {
            if let Some(p) = next.get_mut(&r.partition) {
                p.0 = p.0.max(r.offset + 1);
            }
            last = Instant::now();
            out.push(r);
        }
    }
    out
}

/// How long a read goes on after it has every record it expected, with no new record arriving,
/// before it ends: a duplicate or a stray record written after the expected ones still shows.
pub const IDLE: Duration = Duration::from_secs(2);

/// Reads `topic` (all `partitions`) from the beginning, decoding each record's trade id, until
/// every id of `expect` has been read (as often as it occurs in `expect`) and then no new record
/// arrived for [`IDLE`]; or until `deadline` passed (then it returns what it has, and the
/// caller's comparison names what is missing). Panics on any consumer error and on a record
/// that is not a trade. Returns the records in the order read.
pub fn consume_until_idle(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expect: &[u64],
    deadline: Duration,
) -> Vec<Record> {
    let consumer = assigned_consumer(bootstrap, topic, partitions);
    let mut missing: HashMap<u64, usize> = HashMap::new();
    for id in expect {
        *missing.entry(*id).or_default() += 1;
    }
    let started = Instant::now();
    let mut last_record = started;
    let mut out = Vec::with_capacity(expect.len());
    loop {
        let now = Instant::now();
        if missing.is_empty() && now.duration_since(last_record) >= IDLE {
            return out;
        }
        if now.duration_since(started) >= deadline {
            eprintln!(
                "reading {topic}: deadline of {deadline:?} passed with {} expected id(s) unread",
                missing.values().sum::<usize>()
            );
            return out;
        }
        if let Some(r) = poll_record(&consumer, topic, Duration::from_millis(100)) {
            last_record = Instant::now();
            let id = trade_id(&r.value);
            if let Some(n) = missing.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    missing.remove(&id);
                }
            }
            out.push(r);
        }
    }
}

/// The trade id of a record written by tickflow (wire frame + `Normalized::Trade`).
pub fn trade_id(value: &[u8]) -> u64 {
    let frame = tickflow::schema::wire::parse(value).expect("a framed record");
    match Normalized::decode(DataType::Trade, frame.payload).expect("a decodable record") {
        Normalized::Trade(t) => t.trade_id.parse().expect("a numeric trade id"),
        other => panic!("not a trade: {other:?}"),
    }
}

/// The trade ids of `records`, in the order read.
pub fn ids(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| trade_id(&r.value)).collect()
}

/// How often each id occurs.
pub fn multiset(ids: impl IntoIterator<Item = u64>) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id).or_default() += 1;
    }
    m
}

/// Asserts that `got` holds exactly the ids of `expected`, each exactly as often; otherwise
/// panics naming the missing and the unexpected (extra or duplicated) ids.
pub fn assert_same_ids(
    what: &str,
    expected: impl IntoIterator<Item = u64>,
    got: impl IntoIterator<Item = u64>,
) {
    let expected = multiset(expected);
    let got = multiset(got);
    if expected == got {
        return;
    }
    let missing: Vec<(u64, usize)> = expected
        .iter()
        .filter_map(|(id, n)| {
            let have = got.get(id).copied().unwrap_or(0);
            (have < *n).then(|| (*id, n - have))
        })
        .collect();
    let extra: Vec<(u64, usize)> = got
        .iter()
        .filter_map(|(id, n)| {
            let want = expected.get(id).copied().unwrap_or(0);
            (*n > want).then(|| (*id, n - want))
        })
        .collect();
    panic!(
        "{what}: {} id(s) missing, {} unexpected or duplicated (as (id, count)); \
         missing: {:?}{}; unexpected: {:?}{}",
        missing.len(),
        extra.len(),
        &missing[..missing.len().min(20)],
        if missing.len() > 20 { " ..." } else { "" },
        &extra[..extra.len().min(20)],
        if extra.len() > 20 { " ..." } else { "" },
    );
}

use tickflow::config::Config;
use tickflow::schema::{v2beta1::trade::Side, DataType, Normalized, Trade};

/// A config against the dev stack with a unique topic prefix.
pub fn test_config(prefix: &str) -> Config {
    let mut c = Config::default();
    c.kafka.bootstrap_servers = kafka_addr();
    c.schema_registry.url = registry_url();
    c.producer.topic_prefix = unique_topic(prefix);
    c.producer.partitions = 3;
    c.http.listen = "127.0.0.1:0".into();
    c
}

/// A config file for the CLI against the dev stack, with a unique topic prefix.
pub fn config_file(prefix: &str) -> (tempfile::NamedTempFile, String) {
    let prefix = unique_topic(prefix);
    let text = format!(
        "[kafka]\nbootstrap_servers = \"{}\"\n[schema_registry]\nurl = \"{}\"\n[producer]\ntopic_prefix = \"{prefix}\"\npartitions = 1\n[http]\nlisten = \"127.0.0.1:0\"\n",
        kafka_addr(),
        registry_url()
    );
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    (f, prefix)
}

/// A realistic trade: `n` becomes the trade id; symbols rotate over three pairs.
pub fn trade(n: u64) -> Trade {
    const SYMS: [(&str, &str); 3] = [
        ("BTC-USDT", "58850.01"),
        ("ETH-USDT", "2715.46"),
        ("NKN-USDT", "0.45210000"),
    ];
    let (symbol, price) = SYMS[(n % 3) as usize];
    Trade {
        exchange: "BINANCE".into(),
        symbol: symbol.into(),
        side: if n % 2 == 0 { Side::Buy } else { Side::Sell } as i32,
        trade_id: n.to_string(),
        price: price.into(),
        amount: format!("0.{:08}", n % 100_000_000),
        timestamp: 1_619_712_000_000_000 + n as i64,
        raw_id: n.to_string(),
        maker: Some(n % 2 == 1),
        event_time: Some(1_619_712_000_000_100 + n as i64),
        receipt_time: 1_619_712_000_000_500 + n as i64,
        ..Default::default()
    }
}

/// A port nothing listens on right now, and never handed out before in this test binary: a
/// broker killed mid-test frees its port, and another test's broker must not take it before
/// the first one restarts there (its clients would then talk to the wrong broker).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// A child process killed when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin(env: &str, cached: &str) -> String {
    let bin = std::env::var(env)
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| {
            let path = format!("{}/.dev/{cached}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("{env} unset and {path} missing: run `make dev-up`"))
                .trim()
                .to_string()
        });
    assert!(
        std::path::Path::new(&bin).is_file(),
        "{env} (or .dev/{cached}) names {bin:?}, which is not a file: run `make dev-up`"
    );
    bin
}

fn wait_for(kind: &str, target: &str) {
    let script = format!("{}/scripts/ready.py", env!("CARGO_MANIFEST_DIR"));
    for _ in 0..150 {
        let ok = std::process::Command::new("python3")
            .args([&script, kind, target])
            .status()
            .unwrap();
        if ok.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{kind} at {target} not ready");
}

/// Where a tansu broker keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// In memory: a restart loses everything (the dev stack's broker; `TICKFLOW_TANSU_BIN`).
    Memory,
    /// An sqlite file that survives a restart (tansu built with `libsql`;
    /// `TICKFLOW_TANSU_DURABLE_BIN`). Its directory is the broker's working directory and its
    /// log goes to `tansu.log` there.
    Sqlite(PathBuf),
}

/// Starts a throw-away tansu broker on `port` keeping its data in `storage`, waiting until it
/// answers.
pub fn start_tansu_with(port: u16, storage: &Storage) -> Child {
    let addr = format!("127.0.0.1:{port}");
    let url = format!("tcp://{addr}");
    let mut cmd = match storage {
        Storage::Memory => {
            let mut cmd = std::process::Command::new(bin("TICKFLOW_TANSU_BIN", "tansu.path"));
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            cmd
        }
        Storage::Sqlite(db) => {
            let mut cmd =
                std::process::Command::new(bin("TICKFLOW_TANSU_DURABLE_BIN", "tansu-durable.path"));
            let dir = db.parent().expect("the sqlite file is in a directory");
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("tansu.log"))
                .unwrap();
            cmd.current_dir(dir)
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            cmd
        }
    };
    let engine = match storage {
        Storage::Memory => "memory://tansu/".to_string(),
        // tansu 0.6 opens `<working dir>/<host><path>` for `sqlite://host/path` (even a
        // `sqlite:///abs` path is taken as relative), so the file is named relative to its
        // directory, which becomes the working directory.
        Storage::Sqlite(db) => {
            let name = db.file_name().unwrap().to_str().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "the sqlite file name {name:?} must be usable as a URL host"
            );
            format!("sqlite://{name}")
        }
    };
    let child = cmd
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            &engine,
        ])
        .spawn()
        .unwrap();
    let child = Child(child);
    wait_for("kafka", &addr);
    child
}

/// Starts a throw-away tansu broker (memory storage) on `port`, waiting until it answers.
pub fn start_tansu(port: u16) -> Child {
    start_tansu_with(port, &Storage::Memory)
}

/// Starts a tansu broker on `port` whose storage is the sqlite file `db_path` (created when
/// missing), waiting until it answers.
pub fn start_tansu_durable(port: u16, db_path: &Path) -> Child {
    start_tansu_with(port, &Storage::Sqlite(db_path.to_path_buf()))
}

/// Kills `child` with SIGKILL, sent to its PID (no chance to flush or shut down cleanly), and
/// reaps it, so that its port and files are free when this returns. Returns the PID.
pub fn kill_by_pid(child: &mut Child) -> u32 {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.0.id();
    let sent = std::process::Command::new("kill")
        .args(["-s", "KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -s KILL {pid} failed");
    let status = child.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "broker {pid} ended by SIGKILL: {status:?}"
    );
    pid
}

/// A tansu broker on a fixed port and storage that can be killed and started again on both.
pub struct Broker {
    pub port: u16,
    pub storage: Storage,
    child: Option<Child>,
}

impl Broker {
    /// Starts it and waits until it answers.
    pub fn start(port: u16, storage: Storage) -> Broker {
        let child = start_tansu_with(port, &storage);
        let mut b = Broker {
            port,
            storage,
            child: Some(child),
        };
        b.assert_running();
        b
    }

    /// Panics (with its log) when its process has exited: whatever answers on its port is
    /// then not this broker.
    fn assert_running(&mut self) {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.0.try_wait()) {
            panic!(
                "the broker on port {} exited ({status}): what answers there is not it\n{}",
                self.port,
                self.log_tail()
            );
        }
    }

    /// Its bootstrap address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILLs it by PID and reaps it; returns the PID.
    pub fn kill(&mut self) -> u32 {
        let mut child = self.child.take().expect("the broker is running");
        kill_by_pid(&mut child)
    }

    /// Starts it again on the same port and storage, waiting until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill the broker before restarting it");
        self.child = Some(start_tansu_with(self.port, &self.storage));
        self.assert_running();
    }

    /// The end of its log (sqlite storage only), for failure messages.
    pub fn log_tail(&self) -> String {
        let Storage::Sqlite(db) = &self.storage else {
            return String::new();
        };
        let path = db.parent().unwrap().join("tansu.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "{} (last lines):\n{}",
            path.display(),
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }
}

impl Drop for Broker {
    /// A failing test shows the broker's last log lines (its directory goes with the test).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

/// Starts a throw-away rivven-schema registry on `port`, waiting until it answers.
pub fn start_registry(port: u16) -> Child {
    let child = std::process::Command::new(bin("TICKFLOW_RIVVEN_BIN", "rivven.path"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = Child(child);
    wait_for("registry", &format!("http://127.0.0.1:{port}"));
    child
}

/// Sends tickflow's logs to the test output (shown for failing tests); `RUST_LOG` filters.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tickflow=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Waits until the service's feeds have read, and had answered, everything there is (frames,
/// acks and nacks unchanged for `quiet`); call it once the replay has finished. Panics after
/// `limit`.
pub async fn settled(service: &tickflow::service::Service, quiet: Duration, limit: Duration) {
    use std::sync::atomic::Ordering::Relaxed;
    let snapshot = || -> Vec<(u64, u64, u64)> {
        service
            .feeds
            .iter()
            .map(|f| {
                (
                    f.stats.frames.load(Relaxed),
                    f.stats.acked.load(Relaxed),
                    f.stats.nacked.load(Relaxed),
                )
            })
            .collect()
    };
    let started = Instant::now();
    let (mut last, mut since) = (snapshot(), Instant::now());
    while since.elapsed() < quiet {
        assert!(
            started.elapsed() < limit,
            "the feeds did not settle within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = snapshot();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

/// Runs the service on `cfg` against `replay`: waits up to `played_within` for every loop to be
/// played, then until the feeds have settled, and shuts the service down (its stats stay).
pub async fn run_replayed(
    cfg: tickflow::config::Config,
    replay: &tickflow::replay::ReplayServer,
    played_within: Duration,
) -> tickflow::service::Service {
    let service = tickflow::service::Service::start(cfg).await.unwrap();
    tokio::time::timeout(played_within, replay.finished())
        .await
        .expect("replay played");
    settled(
        &service,
        Duration::from_millis(800),
        Duration::from_secs(30),
    )
    .await;
    service.shutdown().await;
    service
}

/// Asserts that the service's feeds reconnected exactly once in all (the replay server
/// dropped one connection mid-stream, and it was re-established once).
pub fn assert_reconnected_once(service: &tickflow::service::Service) {
    let reconnects: u64 = service
        .feeds
        .iter()
        .map(|f| {
            f.stats
                .reconnects
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert_eq!(
        reconnects, 1,
        "the dropped connection was re-established once"
    );
}

/// Every record of `dt`'s topic under `cfg`'s prefix, decoded (the records in the topic after
/// no new one came for 6 s).
pub fn decoded(
    cfg: &tickflow::config::Config,
    dt: tickflow::schema::DataType,
) -> Vec<tickflow::schema::Normalized> {
    let topic = format!("{}.{}", cfg.producer.topic_prefix, dt.as_str());
    consume(
        &kafka_addr(),
        &topic,
        cfg.producer.partitions,
        1_000_000,
        Duration::from_secs(6),
    )
    .iter()
    .map(|r| {
        tickflow::schema::Normalized::decode(
            dt,
            tickflow::schema::wire::parse(&r.value).unwrap().payload,
        )
        .unwrap()
    })
    .collect()
}

/// Asserts the feed latency histograms of `exchange`'s `channel` against the records stored
/// there, given as (venue time, receipt time) µs: one receipt → Ack observation per stored
/// record, each inside 26 s (the run's length bounds it), and venue time → receipt summed
/// over them equals Σ(receipt − venue time).
pub fn assert_latency_observed(
    metrics: &tickflow::metrics::Metrics,
    exchange: &str,
    channel: &str,
    stored: &[(i64, i64)],
) {
    let series = format!("exchange=\"{exchange}\",channel=\"{channel}\"");
    let sample = |name: &str| metrics.sample(&format!("tickflow_{name}{{{series}}}"));
    let n = stored.len() as f64;
    assert_eq!(
        sample("feed_receipt_to_ack_seconds_count"),
        n,
        "{channel}: Acks observed"
    );
    let within_26s = metrics
        .render()
        .lines()
        .find(|l| {
            l.starts_with("tickflow_feed_receipt_to_ack_seconds_bucket{")
                && l.contains(&series)
                && l.contains("le=\"26.2144\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(within_26s, Some(n), "{channel}: Acks within 26 s");
    assert_eq!(
        sample("feed_exchange_to_receipt_seconds_count"),
        n,
        "{channel}: receipts observed"
    );
    let want: f64 = stored
        .iter()
        .map(|(venue, receipt)| (receipt - venue) as f64 / 1e6)
        .sum();
    let got = sample("feed_exchange_to_receipt_seconds_sum");
    assert!(
        (got - want).abs() <= want.abs() * 1e-9 + 1e-6,
        "{channel}: venue time → receipt summed {got} s, the stored records say {want} s"
    );
}
