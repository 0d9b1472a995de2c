//! Helpers shared by the integration tests: the dev stack's addresses, unique topics,
//! explicit topic creation and a plain consumer that reads a topic back from the start.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
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

/// Reads `topic` (all `partitions`) from the beginning until `want` records arrived or
/// `timeout` passed; returns what it read. Uses assign(), so no consumer-group delay.
pub fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    want: usize,
    timeout: Duration,
) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("tickflow-test-{}", unique_topic("g")))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::with_capacity(want);
    let deadline = Instant::now() + timeout;
    while out.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(to_record(&m));
        }
    }
    out
}

use tickflow::config::Config;
use tickflow::schema::{v2beta1::trade::Side, Trade};

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

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    std::env::var(env).unwrap_or_else(|_| {
        let path = format!("{}/.dev/{cached}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{env} unset and {path} missing: run `make dev-up`"))
            .trim()
            .to_string()
    })
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

/// Starts a throw-away tansu broker (memory storage) on `port`, waiting until it answers.
pub fn start_tansu(port: u16) -> Child {
    let addr = format!("127.0.0.1:{port}");
    let url = format!("tcp://{addr}");
    let child = std::process::Command::new(bin("TICKFLOW_TANSU_BIN", "tansu.path"))
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = Child(child);
    wait_for("kafka", &addr);
    child
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
pub async fn settled(
    service: &tickflow::supervisor::service::Service,
    quiet: Duration,
    limit: Duration,
) {
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
