//! Typed configuration, layered: defaults, then a TOML file, then `TICKFLOW_*` environment
//! variables (`__` separates nesting levels, e.g. `TICKFLOW_KAFKA__BOOTSTRAP_SERVERS`).

pub mod error;
pub mod secret;
pub mod urls;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use serde_with::{serde_as, DurationMilliSeconds};

pub use error::ConfigError;
pub use secret::Secret;

use crate::replay::ReplayServerConfig;
use crate::transport::proxy::Proxy;
use crate::venues::Channel;

/// Default of a feed's `book_buffer_bytes`: the diffs buffered while the books of one
/// connection await their snapshots, all books together (64 MiB).
pub const DEFAULT_BOOK_BUFFER_BYTES: usize = 64 << 20;

/// Environment prefix of every override.
pub const ENV_PREFIX: &str = "TICKFLOW_";

/// Top-level config sections, the only ones read from the environment: every section of
/// [`Config`] (a test walks the struct and fails when one is missing here).
pub const SECTIONS: &[&str] = &[
    "kafka",
    "schema_registry",
    "producer",
    "feeds",
    "replay",
    "run",
    "http",
    "recorder",
    "redis",
    "cluster",
];

/// Keys that hold secrets: they may come from the environment only.
const SECRET_KEYS: &[&str] = &[
    "kafka.sasl.password",
    "schema_registry.password",
    "recorder.postgres.password",
    "redis.password",
];

/// The whole service configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka producer settings.
    pub kafka: KafkaConfig,
    /// Confluent-compatible schema registry.
    pub schema_registry: SchemaRegistryConfig,
    /// Producer actors: queues, topics, keys, overflow, shutdown.
    pub producer: ProducerConfig,
    /// Exchange connections (`[[feeds]]`).
    pub feeds: Vec<FeedConfig>,
    /// Replay servers of recorded data (`[[replay.servers]]`), started by `tickflow run`.
    pub replay: ReplayConfig,
    /// The service loop.
    pub run: RunConfig,
    /// The metrics and health endpoint.
    pub http: HttpConfig,
    /// The PostgreSQL recorder (`tickflow record`).
    pub recorder: crate::recorder::config::RecorderConfig,
    /// The Redis latest-value sink of `tickflow run` (`[redis]`, off by default).
    pub redis: crate::sinks::redis::config::RedisSinkConfig,
    /// Sharding the feeds over many instances (`[cluster]`; one instance by default).
    pub cluster: crate::cluster::config::ClusterConfig,
}

/// The metrics and health endpoint of `tickflow run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve `/metrics`, `/healthz`, `/readyz`.
    pub enabled: bool,
    /// Listen address.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: "127.0.0.1:9898".into(),
        }
    }
}

/// One exchange connection.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// A registered venue: `binance`, `binance_usdm`, `binance_coinm`, `kraken`, ….
    pub venue: String,
    /// Normalized symbols: spot `BTC-USDT`, perpetual `BTC-USDT-PERP`, future
    /// `BTC-USD-20211231`, option `BTC-USD-20211231-50000-C`.
    pub symbols: Vec<String>,
    /// Channels to subscribe.
    pub channels: Vec<Channel>,
    /// WebSocket base URL (default: the venue's).
    pub ws_url: Option<String>,
    /// REST base URL (default: the venue's).
    pub rest_url: Option<String>,
    /// Levels requested in depth snapshots (REST limit, or the subscribed book depth of
    /// in-band venues, e.g. Kraken 10/25/100/500/1000).
    pub snapshot_limit: u32,
    /// Emit a full `Level2Book` every N applied diffs (0 = only on (re)sync).
    pub book_snapshot_every: u32,
    /// Levels per side in emitted `Level2Book` records (all when unset).
    pub depth_limit: Option<usize>,
    /// Reconnect when no frame arrived for this long.
    #[serde(rename = "stale_after_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub stale_after: Duration,
    /// First reconnect delay.
    #[serde(rename = "reconnect_min_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    #[serde(rename = "reconnect_max_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub reconnect_max: Duration,
    /// Frames larger than this are refused, counted and dropped (default: the venue's
    /// largest documented frame, `Limits::max_frame_bytes`, e.g. 1 MiB for Binance).
    pub max_frame_bytes: Option<usize>,
    /// How often each book is compared with the venue's REST book, for venues that offer it
    /// (`Venue::book_audit_every`; BitMEX every 5 min): unset = the venue's default, 0 = off.
    #[serde(rename = "book_audit_every_ms")]
    #[serde_as(as = "Option<DurationMilliSeconds<u64>>")]
    pub book_audit_every: Option<Duration>,
    /// Open-interest REST poll period.
    #[serde(rename = "open_interest_poll_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub open_interest_poll: Duration,
    /// Minimum spacing of REST snapshot requests (staggering, on top of the weight budget).
    #[serde(rename = "snapshot_interval_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub snapshot_interval: Duration,
    /// REST weight budget per minute (default: the venue's published limit, e.g. Binance
    /// spot 6000, USD-M and COIN-M 2400); every REST call waits for its weight. All feeds of
    /// one venue share one budget (the limit is the venue's, per IP): the smallest configured.
    pub rest_weight_per_minute: Option<u32>,
    /// Most produced events awaiting their Ack; reading pauses beyond (backpressure).
    pub max_outstanding: usize,
    /// How long the feed may wait with no Ack before it sheds load: past it (or at the first
    /// Nack) it keeps reading, sends one probe record at a time, counts what it drops, and
    /// once an Ack comes back announces the interval in a `FeedEvent` and resyncs every book
    /// concerned.
    #[serde(rename = "shed_after_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub shed_after: Duration,
    /// Reconnect before the venue's forced disconnect (default: 23h50m for Binance).
    #[serde(rename = "rotate_after_ms")]
    #[serde_as(as = "Option<DurationMilliSeconds<u64>>")]
    pub rotate_after: Option<Duration>,
    /// Where venue symbols come from: the venue's `exchangeInfo` (falls back to pinned when it
    /// cannot be fetched) or `pinned` (derived from the configured names, fully offline).
    pub symbol_source: SymbolSource,
    /// Bytes the diffs buffered while books await their snapshots may take, for all books of
    /// one connection together (counted with their per-level index); past it the oldest diffs
    /// of the largest buffer are pushed out and announced as `BUFFER_OVERFLOW`.
    pub book_buffer_bytes: usize,
    /// How long opening the WebSocket (TCP, TLS, handshake) may take before it is retried.
    #[serde(rename = "connect_timeout_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub connect_timeout: Duration,
    /// How long a requested book snapshot (REST, or in band after subscribing) may take before
    /// it is asked again (with backoff; after 5 misses in a row the connection is recycled).
    #[serde(rename = "snapshot_timeout_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub snapshot_timeout: Duration,
    /// Per channel, how long a confirmed subscription may deliver nothing before it is
    /// announced `STALE` and resubscribed (`0` = never), e.g. `{ funding = 10000 }`. Default:
    /// three periods plus 2 s for channels that tick by design (the venue says which, e.g.
    /// Binance `markPrice`), off for channels that can be quiet (books, trades).
    #[serde(rename = "stream_stale_after_ms")]
    #[serde_as(as = "BTreeMap<_, DurationMilliSeconds<u64>>")]
    pub stream_stale_after: BTreeMap<Channel, Duration>,
    /// Egress proxy of the feed's WebSocket and REST connections: `http://host:port` (a
    /// `CONNECT` tunnel), `socks5://host:port` (names resolved here) or `socks5h://host:port`
    /// (resolved by the proxy); never with credentials in it (see `proxy_username_env`).
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy: names (each with the names under it), IP addresses,
    /// networks (`10.0.0.0/8`) or `*`, e.g. `["localhost", "127.0.0.0/8", "::1"]`.
    pub no_proxy: Vec<String>,
    /// The environment variable holding the proxy's username (with `proxy_password_env`).
    pub proxy_username_env: Option<String>,
    /// The environment variable holding the proxy's password (never written in a file).
    pub proxy_password_env: Option<String>,
}

/// The longest duration a feed setting may have (a week): longer ones are typos, and near
/// `u64::MAX` milliseconds a timer cannot even be set.
pub const MAX_FEED_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

impl FeedConfig {
    /// Each duration within (0, [`MAX_FEED_DURATION`]] (rotation up to 30 days; the snapshot
    /// spacing may be 0), reconnect delays ordered; `key` names the offending key.
    fn check_durations(&self, key: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        let within = |name: &str, d: Duration, max: Duration| -> Result<(), ConfigError> {
            if d.is_zero() || d > max {
                return Err(ConfigError::invalid(
                    &key(name),
                    format!(
                        "{} ms is out of range: must be more than 0 and at most {} ms",
                        d.as_millis(),
                        max.as_millis()
                    ),
                ));
            }
            Ok(())
        };
        let week = MAX_FEED_DURATION;
        within("stale_after_ms", self.stale_after, week)?;
        within("reconnect_min_ms", self.reconnect_min, week)?;
        within("reconnect_max_ms", self.reconnect_max, week)?;
        within("open_interest_poll_ms", self.open_interest_poll, week)?;
        if let Some(d) = self.book_audit_every.filter(|d| !d.is_zero()) {
            within("book_audit_every_ms", d, week)?;
        }
        // 0 = no spacing of REST snapshots beyond the weight budget.
        if self.snapshot_interval > week {
            within("snapshot_interval_ms", self.snapshot_interval, week)?;
        }
        within("shed_after_ms", self.shed_after, week)?;
        within("snapshot_timeout_ms", self.snapshot_timeout, week)?;
        within("connect_timeout_ms", self.connect_timeout, week)?;
        if let Some(r) = self.rotate_after {
            within(
                "rotate_after_ms",
                r,
                30 * 24 * 3600 * Duration::from_secs(1),
            )?;
        }
        for (c, d) in &self.stream_stale_after {
            // 0 turns the check off for that channel.
            if *d > week {
                return Err(ConfigError::invalid(
                    &key(&format!("stream_stale_after_ms.{}", c.as_str())),
                    format!("must be at most {} ms (0 = off)", week.as_millis()),
                ));
            }
        }
        if self.reconnect_min > self.reconnect_max {
            return Err(ConfigError::invalid(
                &key("reconnect_min_ms"),
                "must not exceed reconnect_max_ms",
            ));
        }
        Ok(())
    }

    /// The feed's egress proxy, its credentials read from the environment now; `None`: direct.
    pub fn proxy(&self) -> Result<Option<Proxy>, ConfigError> {
        self.proxy_at(&|k| format!("feeds.{k}"))
    }

    /// [`FeedConfig::proxy`], errors naming the key by `key`. Error texts never repeat the
    /// proxy URL nor a credential.
    fn proxy_at(&self, key: &dyn Fn(&str) -> String) -> Result<Option<Proxy>, ConfigError> {
        let creds = (&self.proxy_username_env, &self.proxy_password_env);
        let Some(text) = &self.proxy else {
            let stray = [
                ("no_proxy", !self.no_proxy.is_empty()),
                ("proxy_username_env", creds.0.is_some()),
                ("proxy_password_env", creds.1.is_some()),
            ];
            return match stray.iter().find(|(_, set)| *set) {
                Some((k, _)) => Err(ConfigError::invalid(
                    &key(k),
                    "is set but `proxy` is not: set proxy, or remove it",
                )),
                None => Ok(None),
            };
        };
        let proxy = Proxy::parse(text)
            .map_err(|e| ConfigError::invalid(&key("proxy"), e))?
            .with_no_proxy(&self.no_proxy)
            .map_err(|e| ConfigError::invalid(&key("no_proxy"), e))?;
        match creds {
            (None, None) => Ok(Some(proxy)),
            (Some(user), Some(pass)) if !user.is_empty() && !pass.is_empty() => proxy
                .with_env_credentials(user, pass)
                .map(Some)
                .map_err(|e| {
                    let which = if std::env::var(user).map_or(true, |v| v.is_empty()) {
                        "proxy_username_env"
                    } else {
                        "proxy_password_env"
                    };
                    ConfigError::invalid(&key(which), e.to_string())
                }),
            _ => Err(ConfigError::invalid(
                &key("proxy_password_env"),
                "proxy_username_env and proxy_password_env go together, each naming an \
                 environment variable",
            )),
        }
    }
}

/// Where a feed's venue symbols come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolSource {
    /// The venue's symbol list (`exchangeInfo`).
    #[default]
    ExchangeInfo,
    /// Derived from the configured names (`BTC-USDT` → `BTCUSDT`).
    Pinned,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            // Required: a feed without it is refused (it used to become Binance spot silently).
            venue: String::new(),
            symbols: Vec::new(),
            channels: vec![Channel::Trade, Channel::Depth, Channel::BookTicker],
            ws_url: None,
            rest_url: None,
            snapshot_limit: 1000,
            book_snapshot_every: 1000,
            depth_limit: None,
            stale_after: Duration::from_millis(30_000),
            reconnect_min: Duration::from_millis(250),
            reconnect_max: Duration::from_millis(30_000),
            max_frame_bytes: None,
            open_interest_poll: Duration::from_millis(60_000),
            book_audit_every: None,
            snapshot_interval: Duration::from_millis(250),
            rest_weight_per_minute: None,
            max_outstanding: 10_000,
            shed_after: Duration::from_millis(5_000),
            rotate_after: None,
            symbol_source: SymbolSource::ExchangeInfo,
            snapshot_timeout: Duration::from_millis(30_000),
            stream_stale_after: BTreeMap::new(),
            connect_timeout: Duration::from_millis(15_000),
            book_buffer_bytes: DEFAULT_BOOK_BUFFER_BYTES,
            proxy: None,
            no_proxy: Vec::new(),
            proxy_username_env: None,
            proxy_password_env: None,
        }
    }
}

/// Replay servers started by `tickflow run`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// One per market.
    pub servers: Vec<ReplayServerConfig>,
}

/// The service loop.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Progress line period.
    #[serde(rename = "progress_interval_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub progress_interval: Duration,
    /// Stop by itself once every replay server has played its recording.
    pub exit_after_replay: bool,
    /// After the replay ended, how long feeds may still drain before the graceful stop.
    #[serde(rename = "drain_after_replay_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub drain_after_replay: Duration,
    /// Threads the feed actors run on (each feed connection on one of them, in turn); the
    /// producer actors keep the main thread. `0`: feeds share the main thread with the
    /// producers. Default: the machine's cores.
    pub feed_threads: Option<usize>,
}

impl RunConfig {
    /// [`RunConfig::feed_threads`], the default resolved.
    pub fn feed_threads(&self) -> usize {
        self.feed_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            progress_interval: Duration::from_millis(5_000),
            exit_after_replay: false,
            drain_after_replay: Duration::from_millis(2_000),
            feed_threads: None,
        }
    }
}

/// SASL credentials for the broker.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SaslConfig {
    /// `sasl.mechanism`, e.g. `PLAIN` or `SCRAM-SHA-512`.
    pub mechanism: Option<String>,
    /// `sasl.username`.
    pub username: Option<String>,
    /// `sasl.password`; environment only: `TICKFLOW_KAFKA__SASL__PASSWORD`.
    pub password: Option<Secret>,
}

/// Who must have a record before the broker acknowledges it (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AcksText", into = "String")]
pub enum Acks {
    /// `all` (or `-1`): every in-sync replica. The only value idempotence allows.
    All,
    /// `1`: the partition leader alone (needs `allow_leader_only_acks`).
    Leader,
    /// `0`: nobody; never accepted (an Ack would mean nothing), kept to say so clearly.
    None,
}

impl Acks {
    /// librdkafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

/// `acks` as written: text (`"all"`, `"1"`) or a number (`1`, or from the environment).
#[derive(Deserialize)]
#[serde(untagged)]
enum AcksText {
    Text(String),
    Number(i64),
}

impl TryFrom<AcksText> for Acks {
    type Error = String;

    fn try_from(v: AcksText) -> Result<Acks, String> {
        let text = match v {
            AcksText::Text(t) => t,
            AcksText::Number(n) => n.to_string(),
        };
        match text.as_str() {
            "all" | "-1" => Ok(Acks::All),
            "1" => Ok(Acks::Leader),
            "0" => Ok(Acks::None),
            other => Err(format!(
                "acks {other:?} is not one of \"all\", \"-1\", \"1\""
            )),
        }
    }
}

impl From<Acks> for String {
    fn from(a: Acks) -> String {
        a.as_str().into()
    }
}

/// `compression.type` of produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4 (the default: cheap on CPU, good on repetitive market data).
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// librdkafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Kafka producer settings; `properties` passes any other librdkafka property through.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `acks`; must be `all` when idempotence is on.
    pub acks: Acks,
    /// Accept `acks = "1"` (the partition leader alone acknowledges): an Ack then means the
    /// leader stored the record, which a leader failure before replication can still lose.
    /// Off by default; `acks = "0"` is never accepted.
    pub allow_leader_only_acks: bool,
    /// `enable.idempotence`.
    pub enable_idempotence: bool,
    /// `linger.ms`.
    #[serde(rename = "linger_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub linger: Duration,
    /// `batch.size` in bytes.
    pub batch_size: u32,
    /// `compression.type`.
    pub compression_type: Compression,
    /// `message.timeout.ms`: how long librdkafka retries a message before failing it.
    #[serde(rename = "message_timeout_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub message_timeout: Duration,
    /// `security.protocol`, e.g. `plaintext`, `sasl_ssl`.
    pub security_protocol: Option<String>,
    /// SASL credentials.
    pub sasl: SaslConfig,
    /// Any other librdkafka property, passed through verbatim (overrides the typed keys).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            acks: Acks::All,
            allow_leader_only_acks: false,
            enable_idempotence: true,
            linger: Duration::from_millis(5),
            batch_size: 65536,
            compression_type: Compression::Lz4,
            message_timeout: Duration::from_millis(30_000),
            security_protocol: None,
            sasl: SaslConfig::default(),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The effective librdkafka properties (typed keys, then `properties`), secrets included.
    pub fn librdkafka_properties(&self) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        p.insert("bootstrap.servers".into(), self.bootstrap_servers.clone());
        p.insert("acks".into(), self.acks.as_str().into());
        p.insert(
            "enable.idempotence".into(),
            self.enable_idempotence.to_string(),
        );
        p.insert("linger.ms".into(), self.linger.as_millis().to_string());
        p.insert("batch.size".into(), self.batch_size.to_string());
        p.insert(
            "compression.type".into(),
            self.compression_type.as_str().into(),
        );
        p.insert(
            "message.timeout.ms".into(),
            self.message_timeout.as_millis().to_string(),
        );
        // Reconnect to a restarted broker within a second (librdkafka's default backs off to
        // 10 s); `properties` may override.
        p.insert("reconnect.backoff.ms".into(), "100".into());
        p.insert("reconnect.backoff.max.ms".into(), "1000".into());
        if let Some(v) = &self.security_protocol {
            p.insert("security.protocol".into(), v.clone());
        }
        if let Some(v) = &self.sasl.mechanism {
            p.insert("sasl.mechanism".into(), v.clone());
        }
        if let Some(v) = &self.sasl.username {
            p.insert("sasl.username".into(), v.clone());
        }
        if let Some(v) = &self.sasl.password {
            p.insert("sasl.password".into(), v.expose().to_string());
        }
        for (k, v) in &self.properties {
            p.insert(k.clone(), v.clone());
        }
        p
    }

    /// An rdkafka `ClientConfig` with the effective properties.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        for (k, v) in self.librdkafka_properties() {
            c.set(k, v);
        }
        c
    }
}

/// Schema registry location and credentials.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaRegistryConfig {
    /// Base URL, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password; environment only: `TICKFLOW_SCHEMA_REGISTRY__PASSWORD`.
    pub password: Option<Secret>,
    /// Request timeout.
    #[serde(rename = "timeout_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub timeout: Duration,
    /// Subject naming for value schemas.
    pub subject_strategy: SubjectStrategy,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        SchemaRegistryConfig {
            url: "http://127.0.0.1:8081".into(),
            username: None,
            password: None,
            timeout: Duration::from_millis(5_000),
            subject_strategy: SubjectStrategy::TopicName,
        }
    }
}

/// How a value schema's subject is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategy {
    /// `<topic>-value` (Confluent's TopicNameStrategy).
    #[default]
    TopicName,
    /// The fully qualified message name (Confluent's RecordNameStrategy).
    RecordName,
}

/// What a producer actor does when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// The sender waits for room (`send().await` is slowed).
    #[default]
    Backpressure,
    /// The event is answered at once with `Nack(QueueFull)`.
    Nack,
}

/// How topic names are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicMode {
    /// `<prefix>.<data_type>`.
    #[default]
    Consolidated,
    /// `<prefix>.<data_type>.<exchange>.<symbol>`.
    PerSymbol,
}

/// How the record key is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKey {
    /// `<exchange>-<symbol>`.
    #[default]
    Composite,
    /// `<symbol>`.
    Symbol,
    /// `<exchange>`.
    Exchange,
    /// No key: the partitioner spreads records.
    RoundRobin,
}

/// Circuit-breaker thresholds, one breaker per dependency (registry, broker).
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before one probe is let through.
    #[serde(rename = "cooldown_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_millis(2_000),
        }
    }
}

/// How the producer recovers after the broker stops taking records (see `producer::recovery`).
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoveryConfig {
    /// How often the broker is probed while deliveries are stalled.
    #[serde(rename = "probe_interval_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub probe_interval: Duration,
    /// Records in flight with no delivery for this long count as a stall.
    #[serde(rename = "stall_after_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub stall_after: Duration,
    /// Once the broker answers again, how long the producer may still deliver nothing
    /// before it is rebuilt.
    #[serde(rename = "grace_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub grace: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            probe_interval: Duration::from_millis(250),
            stall_after: Duration::from_millis(2_000),
            grace: Duration::from_millis(1_500),
        }
    }
}

/// Producer-actor settings.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    /// Capacity of each topic's bounded queue.
    pub queue_capacity: usize,
    /// Maximum deliveries awaited at once per topic.
    pub max_in_flight: usize,
    /// What happens when the queue is full.
    pub overflow: OverflowPolicy,
    /// How long a graceful stop waits before answering `Nack(ShuttingDown)`.
    #[serde(rename = "shutdown_deadline_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub shutdown_deadline: Duration,
    /// Topic prefix.
    pub topic_prefix: String,
    /// Consolidated or per-symbol topics.
    pub topic_mode: TopicMode,
    /// Record key.
    pub partition_key: PartitionKey,
    /// Create topics through the admin API at start.
    pub create_topics: bool,
    /// Partitions of created topics.
    pub partitions: i32,
    /// Replication factor of created topics.
    pub replication_factor: i32,
    /// Dead-letter topic for undeliverable or unencodable events (off when unset).
    pub dead_letter_topic: Option<String>,
    /// Circuit breakers.
    pub circuit_breaker: BreakerConfig,
    /// Broker-restart recovery.
    pub recovery: RecoveryConfig,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            queue_capacity: 10_000,
            max_in_flight: 10_000,
            overflow: OverflowPolicy::Backpressure,
            shutdown_deadline: Duration::from_millis(10_000),
            topic_prefix: "tickflow".into(),
            topic_mode: TopicMode::Consolidated,
            partition_key: PartitionKey::Composite,
            create_topics: true,
            partitions: 4,
            replication_factor: 1,
            dead_letter_topic: None,
            circuit_breaker: BreakerConfig::default(),
            recovery: RecoveryConfig::default(),
        }
    }
}

impl Config {
    /// Loads defaults, then `path`, then `TICKFLOW_*` environment variables, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Load(format!(
                "file {} does not exist",
                path.display()
            )));
        }
        let file = Figment::from(Toml::file(path));
        for key in SECRET_KEYS {
            if file.find_value(key).is_ok() {
                let env = Self::secret_var(key);
                return Err(ConfigError::invalid(
                    key,
                    format!("secrets may not be written in a file; set the environment variable {env} instead"),
                ));
            }
        }
        let mut cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(file)
            .merge(Self::env())
            .extract()?;
        cfg.env_secrets()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// `TICKFLOW_<SECTION>__…` variables of the known sections. Other `TICKFLOW_*` variables
    /// (tooling, scripts) are not config and are ignored; typos inside a section are errors.
    /// Secrets are not read here: they are taken verbatim by [`Config::env_secrets`], so a
    /// numeric or boolean password is neither reinterpreted (`007` → 7) nor echoed in an error.
    fn env() -> Env {
        Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
            let k = key.as_str();
            let section = k.split('.').next().unwrap_or_default();
            let section = section.split("__").next().unwrap_or_default();
            SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(section))
                && !SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k))
        })
    }

    /// The environment variable of a secret key (`kafka.sasl.password` →
    /// `TICKFLOW_KAFKA__SASL__PASSWORD`).
    fn secret_var(key: &str) -> String {
        format!(
            "{ENV_PREFIX}{}",
            key.replace('.', "__").to_ascii_uppercase()
        )
    }

    /// Sets the secrets from their environment variables, verbatim (any text).
    fn env_secrets(&mut self) -> Result<(), ConfigError> {
        for key in SECRET_KEYS {
            let Some(value) = std::env::var_os(Self::secret_var(key)) else {
                continue;
            };
            let Some(value) = value.to_str() else {
                return Err(ConfigError::invalid(key, "is not valid UTF-8"));
            };
            let secret = Some(Secret::new(value));
            match *key {
                "kafka.sasl.password" => self.kafka.sasl.password = secret,
                "recorder.postgres.password" => self.recorder.postgres.password = secret,
                "redis.password" => self.redis.password = secret,
                _ => self.schema_registry.password = secret,
            }
        }
        Ok(())
    }

    /// Builds a config from TOML text (no environment), for tests and embedding.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::from_figment(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    }

    fn from_figment(f: Figment) -> Result<Config, ConfigError> {
        let cfg: Config = f.extract()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks cross-field rules that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.recorder.validate()?;
        self.cluster.validate()?;
        let props = self.kafka.librdkafka_properties();
        let get = |k: &str| props.get(k).map(String::as_str).unwrap_or_default();
        if get("bootstrap.servers").trim().is_empty() {
            return Err(ConfigError::invalid(
                "kafka.bootstrap_servers",
                "must list at least one host:port",
            ));
        }
        let idempotent = get("enable.idempotence") == "true";
        let acks = effective_acks(&props)?;
        if idempotent && acks != Some(-1) {
            return Err(ConfigError::invalid(
                "kafka.acks",
                format!(
                    "is \"{}\" but must be \"all\" while kafka.enable_idempotence is true: \
                     librdkafka's idempotent producer requires acks=all (set acks = \"all\" or \
                     enable_idempotence = false)",
                    get("acks")
                ),
            ));
        }
        match acks {
            Some(0) => {
                return Err(ConfigError::invalid(
                    "kafka.acks",
                    "\"0\" is not accepted: the broker would acknowledge nothing and every \
                     record would be answered Ack unstored; use \"all\"",
                ))
            }
            Some(1) if !self.kafka.allow_leader_only_acks => {
                return Err(ConfigError::invalid(
                    "kafka.acks",
                    "\"1\" acknowledges once the partition leader alone has the record (lost if \
                     it fails before replicating); use \"all\", or set \
                     kafka.allow_leader_only_acks = true to accept that",
                ))
            }
            Some(-1 | 1) | None => {}
            Some(other) => {
                return Err(ConfigError::invalid(
                    "kafka.acks",
                    format!(
                    "{other} is not one of \"all\", \"-1\" (or \"1\" with allow_leader_only_acks)"
                ),
                ))
            }
        }
        if !matches!(
            get("compression.type"),
            "none" | "gzip" | "snappy" | "lz4" | "zstd"
        ) {
            return Err(ConfigError::invalid(
                "kafka.compression_type",
                "must be one of none, gzip, snappy, lz4, zstd",
            ));
        }
        let registry = urls::check(
            "schema_registry.url",
            &self.schema_registry.url,
            urls::Use::Http,
        )?;
        if self.schema_registry.username.is_some()
            && registry.scheme() == "http"
            && !urls::is_loopback(&registry)
        {
            return Err(ConfigError::invalid(
                "schema_registry.url",
                "basic auth over plain http would send the password in clear: use https \
                 (plain http is accepted only to a loopback registry)",
            ));
        }
        urls::check_listen("http.listen", &self.http.listen)?;
        self.redis.validate()?;
        if let Some(k) = self.kafka.properties.keys().find(|k| {
            let k = k.to_ascii_lowercase();
            k.contains("password") || k.contains("secret") || k.contains("key.pem")
        }) {
            return Err(ConfigError::invalid(
                &format!("kafka.properties.{k}"),
                "secrets may not be passed as plain properties; use kafka.sasl.password \
                 from the environment (TICKFLOW_KAFKA__SASL__PASSWORD)",
            ));
        }
        let p = &self.producer;
        if p.queue_capacity == 0 {
            return Err(ConfigError::invalid(
                "producer.queue_capacity",
                "must be at least 1",
            ));
        }
        if p.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "producer.max_in_flight",
                "must be at least 1",
            ));
        }
        if p.topic_prefix.is_empty() {
            return Err(ConfigError::invalid(
                "producer.topic_prefix",
                "must not be empty",
            ));
        }
        if p.partitions < 1 {
            return Err(ConfigError::invalid(
                "producer.partitions",
                "must be at least 1",
            ));
        }
        if p.replication_factor < 1 {
            return Err(ConfigError::invalid(
                "producer.replication_factor",
                "must be at least 1",
            ));
        }
        if p.circuit_breaker.failure_threshold == 0 {
            return Err(ConfigError::invalid(
                "producer.circuit_breaker.failure_threshold",
                "must be at least 1",
            ));
        }
        for (i, f) in self.feeds.iter().enumerate() {
            let key = |k: &str| format!("feeds[{i}].{k}");
            if f.venue.is_empty() {
                return Err(ConfigError::invalid(
                    &key("venue"),
                    format!("is required: one of {}", crate::venues::names().join(", ")),
                ));
            }
            let Some(venue) = crate::venues::by_name(&f.venue) else {
                return Err(ConfigError::invalid(
                    &key("venue"),
                    format!(
                        "unknown venue {:?}; known: {}",
                        f.venue,
                        crate::venues::names().join(", ")
                    ),
                ));
            };
            if f.symbols.is_empty() {
                return Err(ConfigError::invalid(
                    &key("symbols"),
                    "list at least one symbol, e.g. \"BTC-USDT\"",
                ));
            }
            let kinds = venue.instrument_kinds();
            for s in &f.symbols {
                let instrument = crate::venues::Instrument::parse(s)
                    .map_err(|e| ConfigError::invalid(&key("symbols"), e))?;
                if !kinds.contains(&instrument.kind) {
                    let want: Vec<&str> = kinds.iter().map(|k| k.form()).collect();
                    return Err(ConfigError::invalid(
                        &key("symbols"),
                        format!("{s:?} is not {}", want.join(" or ")),
                    ));
                }
            }
            if let Some(c) = f.channels.iter().find(|c| !venue.channels().contains(c)) {
                return Err(ConfigError::invalid(
                    &key("channels"),
                    format!("{} does not offer {c:?}", f.venue),
                ));
            }
            // `depth` and `partial_depth` both write `Level2Book`: one symbol takes one of them,
            // or a consumer rebuilding a book from snapshots and deltas would mix two books.
            let has = |g: &FeedConfig, c: Channel| g.channels.contains(&c);
            let clash = |g: &FeedConfig| {
                (has(f, Channel::PartialDepth) && has(g, Channel::Depth))
                    || (has(f, Channel::Depth) && has(g, Channel::PartialDepth))
            };
            let overlaps = |g: &FeedConfig| g.symbols.iter().any(|s| f.symbols.contains(s));
            if clash(f)
                || self.feeds[..i]
                    .iter()
                    .any(|g| g.venue == f.venue && overlaps(g) && clash(g))
            {
                return Err(ConfigError::invalid(
                    &key("channels"),
                    "partial_depth and depth on one symbol: both write Level2Book; choose one",
                ));
            }
            if let Some(u) = &f.ws_url {
                urls::check(&key("ws_url"), u, urls::Use::WebSocket)?;
            }
            if let Some(u) = &f.rest_url {
                urls::check(&key("rest_url"), u, urls::Use::Http)?;
            }
            f.proxy_at(&key)?;
            if f.channels.is_empty() {
                return Err(ConfigError::invalid(
                    &key("channels"),
                    "list at least one channel",
                ));
            }
            if f.rest_weight_per_minute == Some(0) {
                return Err(ConfigError::invalid(
                    &key("rest_weight_per_minute"),
                    "must be at least 1",
                ));
            }
            if f.max_outstanding == 0 {
                return Err(ConfigError::invalid(
                    &key("max_outstanding"),
                    "must be at least 1",
                ));
            }
            if f.book_buffer_bytes == 0 {
                return Err(ConfigError::invalid(
                    &key("book_buffer_bytes"),
                    "must be at least 1",
                ));
            }
            f.check_durations(&key)?;
        }
        for (i, r) in self.replay.servers.iter().enumerate() {
            urls::check_listen(&format!("replay.servers[{i}].listen"), &r.listen)?;
            if crate::venues::by_name(&r.venue).is_none() {
                return Err(ConfigError::invalid(
                    &format!("replay.servers[{i}].venue"),
                    format!("unknown venue {:?}", r.venue),
                ));
            }
        }
        Ok(())
    }

    /// The config as TOML with every secret shown as `***`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}"))
    }
}

/// The `acks` librdkafka would use, from every spelling it accepts (`acks`,
/// `request.required.acks`, `topic.acks`, `topic.request.required.acks`; `all` in any case,
/// or an integer with spaces or a sign): `-1` for all. Spellings that disagree are refused
/// (which one librdkafka applies last is not defined), as is a value it would not parse.
pub fn effective_acks(props: &BTreeMap<String, String>) -> Result<Option<i64>, ConfigError> {
    let mut seen: Option<(i64, &str)> = None;
    for key in [
        "acks",
        "request.required.acks",
        "topic.acks",
        "topic.request.required.acks",
    ] {
        let Some(raw) = props.get(key) else { continue };
        let text = raw.trim();
        let value = if text.eq_ignore_ascii_case("all") {
            -1
        } else {
            text.parse::<i64>().map_err(|_| {
                ConfigError::invalid(
                    "kafka.acks",
                    format!("{key} = {raw:?} is not one of \"all\", \"-1\", \"1\""),
                )
            })?
        };
        match seen {
            Some((v, k)) if v != value => {
                return Err(ConfigError::invalid(
                    "kafka.acks",
                    format!("{k} and {key} disagree; set acks once"),
                ))
            }
            _ => seen = Some((value, key)),
        }
    }
    Ok(seen.map(|(v, _)| v))
}
