//! The PostgreSQL recorder against the real broker, registry and PostgreSQL: recorded Binance
//! trades end to end; a recorder killed mid-stream; PostgreSQL stopped mid-stream; bad input.
//! Every test uses a database of its own (`tickflow_test_<unique>`), dropped at the end.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tickflow::config::{Config, FeedConfig};
use tickflow::embed::ProducerSystem;
use tickflow::metrics::Metrics;
use tickflow::producer::ProduceEvent;
use tickflow::recorder::Recorder;
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::{wire, DataType, Normalized};
use tickflow::service::Service;
use tickflow::venues::Channel;
use tokio_postgres::NoTls;

type Coord = (String, i32, i64);

/// How long the stored rows must stay unchanged before a test reads them (a late duplicate
/// would still show).
const IDLE: Duration = Duration::from_secs(2);

/// A database of its own on a PostgreSQL server, dropped (forcefully) when the test ends.
struct TestDb {
    name: String,
    host: String,
    port: u16,
}

impl TestDb {
    fn create(host: &str, port: u16) -> TestDb {
        let name = common::unique_topic("tickflow_test").replace('.', "_");
        psql(host, port, &format!("CREATE DATABASE {name}"));
        TestDb {
            name,
            host: host.into(),
            port,
        }
    }

    async fn client(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) = tokio_postgres::Config::new()
            .host(&self.host)
            .port(self.port)
            .user("postgres")
            .dbname(&self.name)
            .connect(NoTls)
            .await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// The Kafka coordinates of every stored trade (a duplicate would show twice).
    async fn trade_coords(&self) -> Result<Vec<Coord>, tokio_postgres::Error> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT kafka_topic, kafka_partition, kafka_offset FROM trades",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
    }

    async fn trade_count(&self) -> Option<i64> {
        let c = self.client().await.ok()?;
        c.query_one("SELECT count(*) FROM trades", &[])
            .await
            .ok()
            .map(|r| r.get(0))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                &self.host,
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-qc",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .status();
    }
}

fn psql(host: &str, port: u16, sql: &str) {
    let ok = Command::new("psql")
        .args([
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "psql {sql}");
}

fn recorder_config(prefix: &str, db: &TestDb) -> Config {
    let mut c = common::test_config(prefix);
    c.recorder.group_id = common::unique_topic("recorder-group");
    c.recorder.data_types = vec![DataType::Trade];
    c.recorder.batch_max_ms = 200;
    c.recorder.retry_max_ms = 500;
    c.recorder.postgres.host = db.host.clone();
    c.recorder.postgres.port = db.port;
    c.recorder.postgres.dbname = db.name.clone();
    c.recorder.postgres.acquire_timeout_ms = 1_000;
    c
}

/// Polls `cond` every 50 ms until it holds or `within` passes; whether it held.
async fn wait_until<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut cond: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the table holds `n` trades and then nothing changed for [`IDLE`].
async fn wait_for_rows(db: &TestDb, n: i64, within: Duration) {
    let deadline = Instant::now() + within;
    let mut stable_since: Option<Instant> = None;
    loop {
        let count = db.trade_count().await;
        if count == Some(n) {
            let since = *stable_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= IDLE {
                return;
            }
        } else {
            stable_since = None;
        }
        assert!(
            Instant::now() < deadline,
            "{count:?} trades stored, {n} expected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Produces `n` test trades; the Kafka coordinates of each (from its Ack).
async fn produce_trades(cfg: &Config, n: u64) -> BTreeSet<Coord> {
    let system = ProducerSystem::start(cfg.clone()).unwrap();
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let mut want = BTreeSet::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(2_000) {
        let events = chunk
            .iter()
            .map(|i| ProduceEvent::typed(Normalized::Trade(common::trade(*i))))
            .collect();
        for ack in system.produce_batch(events).await {
            let ack = ack.expect("every trade acknowledged");
            want.insert((
                topic.clone(),
                ack.partition,
                ack.offset.expect("the broker said where"),
            ));
        }
    }
    system.shutdown().await;
    assert_eq!(want.len() as u64, n);
    want
}

fn assert_exactly_once(what: &str, want: &BTreeSet<Coord>, got: &[Coord]) {
    let set: BTreeSet<Coord> = got.iter().cloned().collect();
    assert_eq!(set.len(), got.len(), "{what}: a Kafka record stored twice");
    let missing: Vec<_> = want.difference(&set).take(10).collect();
    let extra: Vec<_> = set.difference(want).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, unexpected {extra:?}"
    );
}

/// Hand-typed from binance_trade.jsonl and binance_aggTrade.jsonl: (symbol, trade type,
/// trade id, side, price, amount, timestamp µs, event time µs, maker). Binance `m` = buyer is
/// maker → the taker sold; times are the recorded ms × 1000. Ordered by symbol, trade type, id.
#[allow(clippy::type_complexity)]
const GOLDEN: [(&str, &str, &str, &str, &str, &str, i64, i64, bool); 6] = [
    (
        "BNB-BTC",
        "",
        "40756030",
        "buy",
        "0.00426990",
        "33.82000000",
        1_554_076_800_940_000,
        1_554_076_800_945_000,
        false,
    ),
    (
        "BNB-BTC",
        "",
        "60276726",
        "sell",
        "0.00219650",
        "6.48000000",
        1_567_296_001_034_000,
        1_567_296_001_038_000,
        true,
    ),
    (
        "ETH-USDT",
        "",
        "705291099",
        "sell",
        "4149.74000000",
        "0.43870000",
        1_639_351_062_243_000,
        1_639_351_062_244_000,
        true,
    ),
    (
        "ETH-USDT",
        "aggregate",
        "226532",
        "buy",
        "1632.46000000",
        "0.34305000",
        1_675_759_520_847_000,
        1_675_759_520_848_000,
        false,
    ),
    (
        "LRC-BTC",
        "aggregate",
        "9213679",
        "buy",
        "0.00000638",
        "177.00000000",
        1_633_998_534_486_000,
        1_633_998_534_486_000,
        false,
    ),
    (
        "NKN-USDT",
        "aggregate",
        "15683430",
        "buy",
        "0.35280000",
        "58.00000000",
        1_633_998_523_963_000,
        1_633_998_523_963_000,
        false,
    ),
];

#[actix_rt::test]
async fn recorded_trades_land_in_postgres_exactly_once_with_exact_values() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: "tests/fixtures/binance".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = recorder_config("rec-e2e", &db);
    let url = replay.addr.to_string();
    cfg.feeds = vec![FeedConfig {
        venue: "binance".into(),
        symbols: ["ETH-USDT", "BNB-BTC", "NKN-USDT", "LRC-BTC"]
            .map(String::from)
            .to_vec(),
        channels: vec![Channel::Trade, Channel::AggTrade],
        ws_url: Some(format!("ws://{url}")),
        rest_url: Some(format!("http://{url}")),
        symbol_source: tickflow::config::SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    // `tickflow run`'s service: the replay into Kafka.
    let service = Service::start(cfg.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), replay.finished())
        .await
        .expect("replay played");
    let acked = || {
        service
            .feeds
            .iter()
            .map(|f| f.stats.acked.load(std::sync::atomic::Ordering::Relaxed))
            .sum::<u64>()
    };
    assert!(
        wait_until(Duration::from_secs(30), || async { acked() == 6 }).await,
        "the six recorded trades were not acknowledged ({})",
        acked()
    );
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let in_kafka = common::consume(
        &common::kafka_addr(),
        &topic,
        cfg.producer.partitions,
        6,
        Duration::from_secs(30),
    );
    service.shutdown().await;
    assert_eq!(in_kafka.len(), 6, "the six recorded trades in Kafka");
    let want: BTreeSet<Coord> = in_kafka
        .iter()
        .map(|r| (topic.clone(), r.partition, r.offset))
        .collect();

    // `tickflow record`'s recorder.
    let recorder = Recorder::start(cfg.clone(), Metrics::new()).unwrap();
    wait_for_rows(&db, 6, Duration::from_secs(60)).await;
    let metrics = recorder.metrics.clone();
    recorder.stop().await.unwrap();
    assert_exactly_once("e2e", &want, &db.trade_coords().await.unwrap());

    let c = db.client().await.unwrap();
    let rows = c
        .query(
            "SELECT symbol, coalesce(trade_type, ''), trade_id, side, price::text, amount::text,
                    (extract(epoch FROM \"timestamp\") * 1000000)::bigint,
                    (extract(epoch FROM event_time) * 1000000)::bigint, maker, exchange,
                    receipt_time > '2020-01-01'::timestamptz
             FROM trades ORDER BY symbol, coalesce(trade_type, ''), trade_id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            assert_eq!(r.get::<_, String>(9), "BINANCE");
            assert!(r.get::<_, bool>(10), "receipt time is the local clock's");
            (
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                r.get::<_, String>(5),
                r.get::<_, i64>(6),
                r.get::<_, i64>(7),
                r.get::<_, bool>(8),
            )
        })
        .collect();
    let want_rows: Vec<_> = GOLDEN
        .iter()
        .map(|g| {
            (
                g.0.to_string(),
                g.1.to_string(),
                g.2.to_string(),
                g.3.to_string(),
                g.4.to_string(),
                g.5.to_string(),
                g.6,
                g.7,
                g.8,
            )
        })
        .collect();
    assert_eq!(got, want_rows);
    assert_eq!(
        metrics.sample("tickflow_recorder_rows_total{kind=\"trades\"}"),
        6.0
    );
}

/// The `tickflow` binary's config for the recorder of `cfg`.
fn write_config(cfg: &Config) -> tempfile::NamedTempFile {
    let r = &cfg.recorder;
    let text = format!(
        "[kafka]\nbootstrap_servers = \"{}\"\n[schema_registry]\nurl = \"{}\"\n[producer]\ntopic_prefix = \"{}\"\n[recorder]\ndata_types = [\"trade\"]\ngroup_id = \"{}\"\nbatch_max_rows = {}\nbatch_max_ms = {}\nretry_max_ms = 500\nsession_timeout_ms = 6000\n[recorder.postgres]\nhost = \"{}\"\nport = {}\ndbname = \"{}\"\n",
        cfg.kafka.bootstrap_servers,
        cfg.schema_registry.url,
        cfg.producer.topic_prefix,
        r.group_id,
        r.batch_max_rows,
        r.batch_max_ms,
        r.postgres.host,
        r.postgres.port,
        r.postgres.dbname,
    );
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

fn spawn_recorder(config: &std::path::Path) -> common::Child {
    common::Child(
        Command::new(env!("CARGO_BIN_EXE_tickflow"))
            .args(["record", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_killed_mid_stream_loses_and_duplicates_nothing() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let mut cfg = recorder_config("rec-kill", &db);
    cfg.recorder.batch_max_rows = 200;
    let want = produce_trades(&cfg, 20_000).await;
    let file = write_config(&cfg);

    let mut first = spawn_recorder(file.path());
    assert!(
        wait_until(Duration::from_secs(60), || async {
            db.trade_count().await.unwrap_or(0) >= 1_000
        })
        .await,
        "the first recorder stored nothing"
    );
    first.0.kill().unwrap(); // SIGKILL: no flush, no commit
    first.0.wait().unwrap();
    let at_kill = db.trade_count().await.unwrap();
    assert!(
        at_kill < 20_000,
        "killed after it had finished ({at_kill}): not mid-stream"
    );

    let second = spawn_recorder(file.path());
    wait_for_rows(&db, 20_000, Duration::from_secs(120)).await;
    drop(second);
    assert_exactly_once("after a kill", &want, &db.trade_coords().await.unwrap());

    // A crash after a batch's transaction and before its offset commit replays the batch. The
    // worst case: nothing committed at all. A recorder of a new group reads every record again
    // from the start; every row must be skipped, none stored twice.
    cfg.recorder.group_id = common::unique_topic("recorder-replay");
    let metrics = Metrics::new();
    let replay = Recorder::start(cfg, metrics.clone()).unwrap();
    let skipped = || metrics.sample("tickflow_recorder_rows_skipped_total{kind=\"trades\"}");
    assert!(
        wait_until(Duration::from_secs(120), || async { skipped() == 20_000.0 }).await,
        "replayed rows skipped: {}",
        skipped()
    );
    replay.stop().await.unwrap();
    assert_eq!(metrics.sample("tickflow_recorder_rows_total"), 0.0);
    assert_exactly_once(
        "after a full replay",
        &want,
        &db.trade_coords().await.unwrap(),
    );
}

/// A private PostgreSQL cluster (so stopping it disturbs no other test).
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(args: &[&str]) -> Command {
    // initdb and postgres refuse to run as root.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    }
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("tickflow-pg")
            .tempdir()
            .unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status();
        let data = dir.path().join("data");
        let ok = as_postgres(&[
            "initdb",
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
        assert!(ok.success(), "initdb");
        let c = Cluster {
            dir,
            port: common::free_port(),
        };
        c.pg_ctl("start");
        c
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let mut args = vec![
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-w",
            "-l",
            log.to_str().unwrap(),
        ];
        if action == "start" {
            args.extend(["-o", &opts, "start"]);
        } else {
            args.extend(["-m", "immediate", "stop"]);
        }
        let ok = as_postgres(&args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl {action}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_stream_loses_and_duplicates_nothing() {
    common::init_logs();
    let cluster = Cluster::start();
    let db = TestDb::create("127.0.0.1", cluster.port);
    let mut cfg = recorder_config("rec-pgdown", &db);
    cfg.recorder.batch_max_rows = 200;
    let want = produce_trades(&cfg, 20_000).await;
    let metrics = Metrics::new();
    let recorder = Recorder::start(cfg, metrics.clone()).unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || async {
            db.trade_count().await.unwrap_or(0) >= 1_000
        })
        .await,
        "nothing stored"
    );
    cluster.pg_ctl("stop"); // immediate: connections cut mid-batch
    let retries = |m: &Arc<Metrics>| m.sample("tickflow_recorder_retries_total");
    assert!(
        wait_until(Duration::from_secs(30), || async {
            retries(&metrics) > 0.0
        })
        .await,
        "no retry counted while PostgreSQL was down"
    );
    let stopped_at = db.trade_count().await;
    assert_eq!(stopped_at, None, "PostgreSQL still answering");
    cluster.pg_ctl("start");
    wait_for_rows(&db, 20_000, Duration::from_secs(120)).await;
    recorder.stop().await.unwrap();
    assert_exactly_once(
        "after a PostgreSQL stop",
        &want,
        &db.trade_coords().await.unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_counted_dead_lettered_and_do_not_stop_the_partition() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let mut cfg = recorder_config("rec-bad", &db);
    cfg.producer.partitions = 1;
    let dlq = format!("{}.dead", cfg.producer.topic_prefix);
    cfg.recorder.dead_letter_topic = Some(dlq.clone());
    common::create_topics(&common::kafka_addr(), &[&dlq], 1).await;
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    // A good trade first: registers the Trade schema, gives its id.
    let first = produce_trades(&cfg, 1).await;
    let framed = common::consume(&common::kafka_addr(), &topic, 1, 1, Duration::from_secs(10));
    let trade_id = wire::parse(&framed[0].value).unwrap().schema_id;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", common::kafka_addr())
        .create()
        .unwrap();
    let good = wire::frame(
        trade_id,
        &Normalized::Trade(common::trade(7)).encode_to_vec(),
    );
    let values: Vec<(&str, Vec<u8>)> = vec![
        (
            "undecodable",
            wire::frame(trade_id, &[0xff, 0xff, 0xff, 0xff]),
        ),
        ("bad_frame", b"{\"not\":\"framed\"}".to_vec()),
        ("good", good),
    ];
    let mut offsets = Vec::new();
    for (_, v) in &values {
        let d = producer
            .send(
                FutureRecord::<(), [u8]>::to(&topic).payload(v.as_slice()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(d.partition, 0);
        offsets.push(d.offset);
    }
    let metrics = Metrics::new();
    let recorder = Recorder::start(cfg, metrics.clone()).unwrap();
    wait_for_rows(&db, 2, Duration::from_secs(60)).await;
    let mut want = first.clone();
    want.insert((topic.clone(), 0, offsets[2]));
    assert_exactly_once("good trades", &want, &db.trade_coords().await.unwrap());
    for kind in ["undecodable", "bad_frame"] {
        assert_eq!(
            metrics.sample(&format!(
                "tickflow_recorder_bad_records_total{{kind=\"{kind}\"}}"
            )),
            1.0,
            "{kind}\n{}",
            metrics.render()
        );
    }
    let dead = common::consume(&common::kafka_addr(), &dlq, 1, 10, Duration::from_secs(10));
    let dead: Vec<(String, String, Vec<u8>)> = dead
        .into_iter()
        .map(|r| {
            assert_eq!(r.headers["source_topic"], topic);
            (
                r.headers["source_offset"].clone(),
                r.headers["error_kind"].clone(),
                r.value,
            )
        })
        .collect();
    let want_dead: Vec<(String, String, Vec<u8>)> = (0..2)
        .map(|i| {
            (
                offsets[i].to_string(),
                values[i].0.to_string(),
                values[i].1.clone(),
            )
        })
        .collect();
    assert_eq!(dead, want_dead);
    recorder.stop().await.unwrap();
}

/// Sends raw values to one partition of `topic`; their offsets.
async fn send_raw(topic: &str, partition: i32, values: &[Vec<u8>]) -> Vec<i64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", common::kafka_addr())
        .create()
        .unwrap();
    let mut offsets = Vec::new();
    for v in values {
        let d = producer
            .send(
                FutureRecord::<(), [u8]>::to(topic)
                    .partition(partition)
                    .payload(v.as_slice()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(d.partition, partition);
        offsets.push(d.offset);
    }
    offsets
}

/// The group's committed offset of one partition.
fn committed(group: &str, topic: &str, partition: i32) -> Option<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", common::kafka_addr())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    match got.find_partition(topic, partition).unwrap().offset() {
        rdkafka::Offset::Offset(o) => Some(o),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dead_letter_topic_a_bad_record_stops_its_partition_and_the_others_go_on() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let mut cfg = recorder_config("rec-stop", &db);
    cfg.producer.partitions = 2;
    assert_eq!(cfg.recorder.dead_letter_topic, None);
    assert_eq!(
        cfg.recorder.bad_records,
        tickflow::recorder::BadRecords::Stop
    );
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let first = produce_trades(&cfg, 1).await;
    let framed = common::consume(&common::kafka_addr(), &topic, 2, 1, Duration::from_secs(10));
    let schema = wire::parse(&framed[0].value).unwrap().schema_id;
    let good = |n: u64| wire::frame(schema, &Normalized::Trade(common::trade(n)).encode_to_vec());
    // Partition 0: a good trade, a record that is not framed, a good trade after it.
    let p0 = send_raw(
        &topic,
        0,
        &[good(100), b"{\"not\":\"framed\"}".to_vec(), good(101)],
    )
    .await;
    // Partition 1: two good trades.
    let p1 = send_raw(&topic, 1, &[good(200), good(201)]).await;

    let metrics = Metrics::new();
    let group = cfg.recorder.group_id.clone();
    let recorder = Recorder::start(cfg, metrics.clone()).unwrap();
    // Stored: the first trade, partition 0 up to the bad record, all of partition 1.
    let mut want = first.clone();
    want.insert((topic.clone(), 0, p0[0]));
    want.insert((topic.clone(), 1, p1[0]));
    want.insert((topic.clone(), 1, p1[1]));
    wait_for_rows(&db, want.len() as i64, Duration::from_secs(60)).await;
    assert_exactly_once("stored", &want, &db.trade_coords().await.unwrap());
    assert_eq!(
        metrics.sample("tickflow_recorder_stopped_partitions"),
        1.0,
        "{}",
        metrics.render()
    );
    assert_eq!(
        metrics.sample("tickflow_recorder_bad_records_total{kind=\"bad_frame\"}"),
        1.0
    );
    // Committed up to the bad record, not past it: a restarted recorder stops there again.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            committed(&group, &topic, 0) == Some(p0[1])
        })
        .await,
        "partition 0 committed at {:?}, the bad record is at {}",
        committed(&group, &topic, 0),
        p0[1]
    );
    assert!(
        wait_until(Duration::from_secs(10), || async {
            committed(&group, &topic, 1) == Some(p1[1] + 1)
        })
        .await
    );
    recorder.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_id_the_registry_does_not_know_waits_and_is_never_skipped() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let mut cfg = recorder_config("rec-404", &db);
    cfg.producer.partitions = 1;
    let dlq = format!("{}.dead", cfg.producer.topic_prefix);
    cfg.recorder.dead_letter_topic = Some(dlq.clone());
    common::create_topics(&common::kafka_addr(), &[&dlq], 1).await;
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let first = produce_trades(&cfg, 1).await;
    let framed = common::consume(&common::kafka_addr(), &topic, 1, 1, Duration::from_secs(10));
    let schema = wire::parse(&framed[0].value).unwrap().schema_id;
    let good = wire::frame(schema, &Normalized::Trade(common::trade(7)).encode_to_vec());
    // An id no registry gave out (the registry answers 404), then a good trade.
    send_raw(
        &topic,
        0,
        &[wire::frame(2_000_000_000, b"\x0a\x03BTC"), good],
    )
    .await;
    let metrics = Metrics::new();
    let recorder = Recorder::start(cfg, metrics.clone()).unwrap();
    wait_for_rows(&db, 1, Duration::from_secs(60)).await;
    let retries = || metrics.sample("tickflow_recorder_retries_total{kind=\"registry\"}");
    assert!(
        wait_until(Duration::from_secs(30), || async { retries() >= 3.0 }).await,
        "the unknown id was not retried: {}",
        metrics.render()
    );
    // Still waiting: nothing past it stored, nothing dead-lettered, nothing counted bad.
    assert_exactly_once("stored", &first, &db.trade_coords().await.unwrap());
    let bad = metrics.render();
    assert!(
        !bad.contains("tickflow_recorder_bad_records_total{"),
        "{bad}"
    );
    let dead = common::consume(&common::kafka_addr(), &dlq, 1, 10, Duration::from_secs(3));
    assert!(dead.is_empty(), "{} dead-lettered", dead.len());
    recorder.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_joining_and_another_leaving_mid_stream_store_every_record_once() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let mut cfg = recorder_config("rec-rebalance", &db);
    // Small batches: the stream lasts long enough for a join and a leave inside it.
    cfg.recorder.batch_max_rows = 20;
    // Records spread over every partition (three symbols' keys may share one), so whichever
    // partitions the second recorder gets hold records still to store.
    cfg.producer.partition_key = tickflow::config::PartitionKey::RoundRobin;
    cfg.recorder.session_timeout_ms = 6_000;
    // What a user may ask for through kafka.properties: an incremental protocol keeps
    // partitions across a rebalance, so a dropped batch would never be read again. The
    // recorder does not apply it (the eager protocol is forced).
    cfg.kafka.properties.insert(
        "partition.assignment.strategy".into(),
        "cooperative-sticky".into(),
    );
    let mut want = produce_trades(&cfg, 20_000).await;
    let first = Recorder::start(cfg.clone(), Metrics::new()).unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || async {
            db.trade_count().await.unwrap_or(0) >= 2_000
        })
        .await,
        "the first recorder stored nothing"
    );
    let second_metrics = Metrics::new();
    let second = Recorder::start(cfg.clone(), second_metrics.clone()).unwrap();
    // The second one joins and the group gives it partitions.
    assert!(
        wait_until(Duration::from_secs(60), || async {
            second_metrics.sample("tickflow_recorder_assigned_partitions") > 0.0
        })
        .await,
        "the second recorder was never assigned a partition"
    );
    // The first may have read a partition to its end before the rebalance: more records on
    // every partition (round robin) give the second one records of its own to store.
    want.extend(produce_trades_from(&cfg, 20_000..26_000).await);
    assert_eq!(want.len(), 26_000);
    assert!(
        wait_until(Duration::from_secs(60), || async {
            second_metrics.sample("tickflow_recorder_rows_total") > 0.0
        })
        .await,
        "the second recorder never stored a row"
    );
    let at_leave = db.trade_count().await.unwrap();
    assert!(
        at_leave < 26_000,
        "the stream ended before the first recorder left"
    );
    first.stop().await.unwrap();
    wait_for_rows(&db, 26_000, Duration::from_secs(120)).await;
    // The second recorder owns every partition now and has read each to its end: its lag
    // metric (from librdkafka's statistics, every 5 s) says 0 for each of the 3.
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let lags = || {
        (0..3)
            .map(|p| {
                let series =
                    format!("tickflow_recorder_lag{{topic=\"{topic}\",partition=\"{p}\"}} ");
                second_metrics
                    .render()
                    .lines()
                    .find(|l| l.starts_with(&series))
                    .map(|l| l[series.len()..].trim().to_string())
            })
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(Duration::from_secs(20), || async {
            lags().iter().all(|l| l.as_deref() == Some("0"))
        })
        .await,
        "lag per partition: {:?}",
        lags()
    );
    second.stop().await.unwrap();
    assert_exactly_once(
        "through a join and a leave",
        &want,
        &db.trade_coords().await.unwrap(),
    );
}

/// Starts a recorder on an empty topic only to migrate `db`, then refuses trade `refused`
/// there with a CHECK constraint (SQLSTATE 23514: PostgreSQL refuses that row as data).
async fn refuse_trade_in(cfg: &Config, db: &TestDb, refused: u64) {
    let warm = Recorder::start(cfg.clone(), Metrics::new()).unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || async {
            db.trade_count().await.is_some()
        })
        .await,
        "the recorder did not migrate"
    );
    warm.stop().await.unwrap();
    db.client()
        .await
        .unwrap()
        .batch_execute(&format!(
            "ALTER TABLE trades ADD CONSTRAINT refused CHECK (trade_id <> '{refused}')"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_postgres_refuses_is_dead_lettered_and_the_rest_of_its_batch_stored() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let mut cfg = recorder_config("rec-refused", &db);
    cfg.producer.partitions = 1;
    let dlq = format!("{}.dead", cfg.producer.topic_prefix);
    cfg.recorder.dead_letter_topic = Some(dlq.clone());
    common::create_topics(&common::kafka_addr(), &[&dlq], 1).await;
    refuse_trade_in(&cfg, &db, 13).await;
    let want = produce_trades(&cfg, 30).await;
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let metrics = Metrics::new();
    let recorder = Recorder::start(cfg.clone(), metrics.clone()).unwrap();
    wait_for_rows(&db, 29, Duration::from_secs(60)).await;
    recorder.stop().await.unwrap();
    // Trade 13 is the 14th record of the single partition (ids are produced in order).
    let refused = (topic.clone(), 0, 13);
    let mut stored = want.clone();
    assert!(stored.remove(&refused));
    assert_exactly_once(
        "all but the refused",
        &stored,
        &db.trade_coords().await.unwrap(),
    );
    let dead = common::consume(&common::kafka_addr(), &dlq, 1, 1, Duration::from_secs(10));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].headers["source_offset"], "13");
    assert_eq!(dead[0].headers["error_kind"], "refused_by_postgres");
    assert!(
        dead[0].headers["error"].contains("23514"),
        "{:?}",
        dead[0].headers
    );
    assert_eq!(
        metrics.sample("tickflow_recorder_bad_records_total{kind=\"refused_by_postgres\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_whose_dead_letter_fails_is_never_committed_past() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let mut cfg = recorder_config("rec-refused-nodlq", &db);
    cfg.producer.partitions = 1;
    // A dead-letter topic the broker refuses (not a legal topic name): every send fails.
    cfg.recorder.dead_letter_topic = Some("not a topic!".into());
    refuse_trade_in(&cfg, &db, 13).await;
    produce_trades(&cfg, 30).await;
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let group = cfg.recorder.group_id.clone();
    let metrics = Metrics::new();
    let recorder = Recorder::start(cfg.clone(), metrics.clone()).unwrap();
    let retries = || metrics.sample("tickflow_recorder_retries_total{kind=\"dead_letter\"}");
    assert!(
        wait_until(Duration::from_secs(60), || async { retries() >= 3.0 }).await,
        "the dead-letter send was not retried: {}",
        metrics.render()
    );
    // The refused row stays in the batch while its dead letter is not acknowledged: the
    // batch is retried, and nothing is committed past trade 13 (offset 13).
    let at = committed(&group, &topic, 0);
    assert!(
        at.is_none_or(|o| o <= 13),
        "committed past the refused row: {at:?}"
    );
    recorder.stop().await.unwrap();
    let at = committed(&group, &topic, 0);
    assert!(
        at.is_none_or(|o| o <= 13),
        "committed past the refused row: {at:?}"
    );
}

/// One row of `table`, every column as text (times as `YYYY-MM-DD HH:MM:SS.ffffff` UTC), in
/// the order of `columns` (a leading `@` marks a time column).
async fn row_as_text(db: &TestDb, table: &str, columns: &[&str]) -> Vec<Option<String>> {
    let select: Vec<String> = columns
        .iter()
        .map(|c| match c.strip_prefix('@') {
            Some(t) => format!("to_char(\"{t}\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"),
            None => format!("\"{c}\"::text"),
        })
        .collect();
    let sql = format!("SELECT {} FROM {table}", select.join(", "));
    let rows = db.client().await.unwrap().query(&sql, &[]).await.unwrap();
    assert_eq!(rows.len(), 1, "{table}: {} rows", rows.len());
    (0..columns.len()).map(|i| rows[0].get(i)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_holds_the_hand_typed_row_column_by_column() {
    use tickflow::schema::v2beta1::{level2_book, liquidation, trade};
    use tickflow::schema::{
        Candle, Funding, Level2Book, Liquidation, OpenInterest, Ticker, TopOfBook, Trade,
    };
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let mut cfg = recorder_config("rec-tables", &db);
    cfg.recorder.data_types = tickflow::recorder::config::RECORDABLE.to_vec();
    // 2024-11-29 14:30:00.123456 UTC and neighbours, µs since the epoch.
    const T: i64 = 1_732_890_600_123_456;
    const E: i64 = 1_732_890_600_123_000;
    const R: i64 = 1_732_890_601_000_000;
    let s = |x: &str| x.to_string();
    let records = vec![
        Normalized::Trade(Trade {
            exchange: s("BINANCE"),
            symbol: s("NKN-USDT"),
            side: trade::Side::Sell as i32,
            trade_id: s("15683430"),
            price: s("0.00001000"),
            amount: s("123456789.12345678"),
            timestamp: T,
            raw_id: s("15683430"),
            trade_type: Some(s("agg")),
            maker: Some(true),
            event_time: Some(E),
            receipt_time: R,
            ..Default::default()
        }),
        Normalized::TopOfBook(TopOfBook {
            exchange: s("BINANCE"),
            symbol: s("BTC-USDT"),
            bid_price: s("97000.10"),
            bid_size: s("0.50000000"),
            ask_price: s("97000.11"),
            ask_size: s("1.2"),
            timestamp: Some(T),
            event_time: Some(E),
            receipt_time: R,
            update_id: Some(400_900_217),
        }),
        Normalized::Ticker(Ticker {
            exchange: s("KRAKEN"),
            symbol: s("XBT-USD"),
            bid: s("97000.1"),
            ask: s("97000.2"),
            last: s("97000.15"),
            open: s("95000"),
            high: s("98000.5"),
            low: s("94000.25"),
            volume: s("1234.56789"),
            quote_volume: s("119753086.33"),
            timestamp: Some(T),
            event_time: None,
            receipt_time: R,
        }),
        Normalized::Funding(Funding {
            exchange: s("BINANCE_FUTURES"),
            symbol: s("BTC-USDT-PERP"),
            mark_price: s("97010.50000000"),
            rate: s("-0.00012345"),
            predicted_rate: Some(s("0.0001")),
            index_price: Some(s("97005.12")),
            next_funding_time: Some(1_732_896_000_000_000),
            timestamp: Some(T),
            event_time: Some(E),
            receipt_time: R,
        }),
        Normalized::OpenInterest(OpenInterest {
            exchange: s("BINANCE_FUTURES"),
            symbol: s("ETH-USDT-PERP"),
            open_interest: s("98765.432"),
            timestamp: Some(T),
            event_time: None,
            receipt_time: R,
        }),
        Normalized::Liquidation(Liquidation {
            exchange: s("BINANCE_FUTURES"),
            symbol: s("BTC-USDT-PERP"),
            side: liquidation::Side::Sell as i32,
            quantity: s("0.014"),
            price: s("96500.1"),
            id: s(""),
            status: s("FILLED"),
            timestamp: Some(T),
            event_time: Some(E),
            receipt_time: R,
        }),
        Normalized::Candle(Candle {
            exchange: s("BINANCE"),
            symbol: s("BTC-USDT"),
            start: 1_732_890_540_000_000,
            stop: 1_732_890_599_999_999,
            interval: s("1m"),
            trades: Some(42),
            open: s("97000.00"),
            close: s("97010.01"),
            high: s("97020.5"),
            low: s("96990"),
            volume: s("12.34500000"),
            quote_volume: Some(s("1197654.3")),
            closed: true,
            timestamp: Some(T),
            event_time: Some(E),
            receipt_time: R,
        }),
        Normalized::Level2Book(Level2Book {
            exchange: s("BINANCE"),
            symbol: s("BTC-USDT"),
            bids: vec![
                level2_book::PriceLevel {
                    price: s("58850.01"),
                    quantity: s("0.5"),
                },
                level2_book::PriceLevel {
                    price: s("58850.00"),
                    quantity: s("0"),
                },
            ],
            asks: vec![level2_book::PriceLevel {
                price: s("58850.02"),
                quantity: s("1.000"),
            }],
            timestamp: Some(T),
            sequence: Some(499_869_752),
            checksum: Some(s("1822697057")),
            event_time: None,
            last_update_id: Some(499_869_752),
            receipt_time: R,
        }),
    ];
    let system = ProducerSystem::start(cfg.clone()).unwrap();
    for r in records {
        system.produce(ProduceEvent::typed(r)).await.expect("acked");
    }
    system.shutdown().await;
    let recorder = Recorder::start(cfg.clone(), Metrics::new()).unwrap();
    let tables = [
        "trades",
        "top_of_book",
        "tickers",
        "funding",
        "open_interest",
        "liquidations",
        "candles",
        "books",
    ];
    let all_there = || async {
        let Ok(c) = db.client().await else {
            return false;
        };
        for t in tables {
            match c.query_one(&format!("SELECT count(*) FROM {t}"), &[]).await {
                Ok(r) if r.get::<_, i64>(0) == 1 => {}
                _ => return false,
            }
        }
        true
    };
    assert!(
        wait_until(Duration::from_secs(60), all_there).await,
        "not every table got its row"
    );
    recorder.stop().await.unwrap();

    let t = Some("2024-11-29 14:30:00.123456");
    let e = Some("2024-11-29 14:30:00.123000");
    let r = Some("2024-11-29 14:30:01.000000");
    let want = |v: &[Option<&str>]| -> Vec<Option<String>> {
        v.iter().map(|x| x.map(str::to_string)).collect()
    };
    assert_eq!(
        row_as_text(
            &db,
            "trades",
            &[
                "exchange",
                "symbol",
                "trade_id",
                "side",
                "price",
                "amount",
                "@timestamp",
                "@event_time",
                "@receipt_time",
                "maker",
                "trade_type",
                "raw_id"
            ]
        )
        .await,
        want(&[
            Some("BINANCE"),
            Some("NKN-USDT"),
            Some("15683430"),
            Some("sell"),
            Some("0.00001000"),
            Some("123456789.12345678"),
            t,
            e,
            r,
            Some("true"),
            Some("agg"),
            Some("15683430"),
        ])
    );
    assert_eq!(
        row_as_text(
            &db,
            "top_of_book",
            &[
                "exchange",
                "symbol",
                "bid_price",
                "bid_size",
                "ask_price",
                "ask_size",
                "@timestamp",
                "@event_time",
                "@receipt_time",
                "update_id"
            ]
        )
        .await,
        want(&[
            Some("BINANCE"),
            Some("BTC-USDT"),
            Some("97000.10"),
            Some("0.50000000"),
            Some("97000.11"),
            Some("1.2"),
            t,
            e,
            r,
            Some("400900217"),
        ])
    );
    assert_eq!(
        row_as_text(
            &db,
            "tickers",
            &[
                "exchange",
                "symbol",
                "bid",
                "ask",
                "last",
                "open",
                "high",
                "low",
                "volume",
                "quote_volume",
                "@timestamp",
                "@event_time",
                "@receipt_time"
            ]
        )
        .await,
        want(&[
            Some("KRAKEN"),
            Some("XBT-USD"),
            Some("97000.1"),
            Some("97000.2"),
            Some("97000.15"),
            Some("95000"),
            Some("98000.5"),
            Some("94000.25"),
            Some("1234.56789"),
            Some("119753086.33"),
            t,
            None,
            r,
        ])
    );
    assert_eq!(
        row_as_text(
            &db,
            "funding",
            &[
                "exchange",
                "symbol",
                "mark_price",
                "rate",
                "predicted_rate",
                "index_price",
                "@next_funding_time",
                "@timestamp",
                "@event_time",
                "@receipt_time"
            ]
        )
        .await,
        want(&[
            Some("BINANCE_FUTURES"),
            Some("BTC-USDT-PERP"),
            Some("97010.50000000"),
            Some("-0.00012345"),
            Some("0.0001"),
            Some("97005.12"),
            Some("2024-11-29 16:00:00.000000"),
            t,
            e,
            r,
        ])
    );
    assert_eq!(
        row_as_text(
            &db,
            "open_interest",
            &[
                "exchange",
                "symbol",
                "open_interest",
                "@timestamp",
                "@event_time",
                "@receipt_time"
            ]
        )
        .await,
        want(&[
            Some("BINANCE_FUTURES"),
            Some("ETH-USDT-PERP"),
            Some("98765.432"),
            t,
            None,
            r,
        ])
    );
    assert_eq!(
        row_as_text(
            &db,
            "liquidations",
            &[
                "exchange",
                "symbol",
                "side",
                "quantity",
                "price",
                "order_id",
                "status",
                "@timestamp",
                "@event_time",
                "@receipt_time"
            ]
        )
        .await,
        want(&[
            Some("BINANCE_FUTURES"),
            Some("BTC-USDT-PERP"),
            Some("sell"),
            Some("0.014"),
            Some("96500.1"),
            None,
            Some("FILLED"),
            t,
            e,
            r,
        ])
    );
    assert_eq!(
        row_as_text(
            &db,
            "candles",
            &[
                "exchange",
                "symbol",
                "@start",
                "@stop",
                "interval",
                "trades",
                "open",
                "close",
                "high",
                "low",
                "volume",
                "quote_volume",
                "closed",
                "@timestamp",
                "@event_time",
                "@receipt_time"
            ]
        )
        .await,
        want(&[
            Some("BINANCE"),
            Some("BTC-USDT"),
            Some("2024-11-29 14:29:00.000000"),
            Some("2024-11-29 14:29:59.999999"),
            Some("1m"),
            Some("42"),
            Some("97000.00"),
            Some("97010.01"),
            Some("97020.5"),
            Some("96990"),
            Some("12.34500000"),
            Some("1197654.3"),
            Some("true"),
            t,
            e,
            r,
        ])
    );
    assert_eq!(
        row_as_text(
            &db,
            "books",
            &[
                "exchange",
                "symbol",
                "bids",
                "asks",
                "@timestamp",
                "sequence",
                "checksum",
                "@event_time",
                "last_update_id",
                "@receipt_time"
            ]
        )
        .await,
        want(&[
            Some("BINANCE"),
            Some("BTC-USDT"),
            Some(r#"[["58850.01", "0.5"], ["58850.00", "0"]]"#),
            Some(r#"[["58850.02", "1.000"]]"#),
            t,
            Some("499869752"),
            Some("1822697057"),
            None,
            Some("499869752"),
            r,
        ])
    );
}

/// Offsets are not identities: a broker restarted empty creates the topic again from offset 0.
/// The second incarnation's trades (other trade ids, the same Kafka coordinates) are stored
/// beside the first's, told apart by the producer's `record_id` header; without it every one of
/// them would conflict with a stored row and be dropped in silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_again_from_offset_zero_is_stored_beside_the_old_one() {
    common::init_logs();
    let db = TestDb::create("127.0.0.1", 5432);
    let port = common::free_port();
    let mut broker = common::start_tansu(port);
    let mut cfg = recorder_config("rec-again", &db);
    cfg.kafka.bootstrap_servers = format!("127.0.0.1:{port}");
    cfg.producer.partitions = 1;

    // First incarnation: trades 0..20 at offsets 0..20.
    let first = produce_trades_from(&cfg, 0..20).await;
    let metrics = Metrics::new();
    let rec = Recorder::start(cfg.clone(), metrics.clone()).unwrap();
    wait_for_rows(&db, 20, Duration::from_secs(60)).await;
    rec.stop().await.unwrap();

    // The broker comes back empty (memory storage): the topic, its offsets and the group's
    // committed offsets are gone.
    common::kill_by_pid(&mut broker);
    let _broker = common::start_tansu(port);
    let second = produce_trades_from(&cfg, 1_000..1_020).await;
    assert_eq!(
        first.iter().map(|c| c.2).collect::<Vec<_>>(),
        second.iter().map(|c| c.2).collect::<Vec<_>>(),
        "the new incarnation reuses the old offsets"
    );
    let rec = Recorder::start(cfg.clone(), metrics.clone()).unwrap();
    wait_for_rows(&db, 40, Duration::from_secs(60)).await;
    rec.stop().await.unwrap();

    let c = db.client().await.unwrap();
    let rows = c
        .query(
            "SELECT trade_id, kafka_offset, kafka_record_id FROM trades ORDER BY trade_id::bigint",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let want: Vec<String> = (0..20).chain(1_000..1_020).map(|i| i.to_string()).collect();
    assert_eq!(ids, want);
    // Trade n of each incarnation sits at offset n (one partition), each under its own id.
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.get::<_, i64>(1), (i % 20) as i64, "{ids:?}");
    }
    let record_ids: BTreeSet<String> = rows.iter().map(|r| r.get(2)).collect();
    assert_eq!(record_ids.len(), 40, "one record id per record");
    assert!(record_ids
        .iter()
        .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
}

/// Produces `common::trade(i)` for each `i` of `ids`; their coordinates in produce order.
async fn produce_trades_from(cfg: &Config, ids: std::ops::Range<u64>) -> Vec<Coord> {
    let system = ProducerSystem::start(cfg.clone()).unwrap();
    let topic = format!("{}.trade", cfg.producer.topic_prefix);
    let events = ids
        .map(|i| ProduceEvent::typed(Normalized::Trade(common::trade(i))))
        .collect();
    let mut out = Vec::new();
    for ack in system.produce_batch(events).await {
        let ack = ack.expect("every trade acknowledged");
        out.push((
            topic.clone(),
            ack.partition,
            ack.offset.expect("the broker said where"),
        ));
    }
    system.shutdown().await;
    out
}
