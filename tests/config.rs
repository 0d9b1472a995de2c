//! Config tests: the shipped files load, bad keys and values are named, environment
//! overrides apply, secrets come from the environment only and never show.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Mutex;

use tickflow::config::{Config, ConfigError, OverflowPolicy, PartitionKey};

/// Tests that touch the process environment run one at a time.
static ENV: Mutex<()> = Mutex::new(());

fn write(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

fn load(text: &str) -> Result<Config, ConfigError> {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    Config::load(write(text).path())
}

#[test]
fn default_file_loads_with_the_documented_kafka_defaults() {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = Config::load(Path::new("config/default.toml")).unwrap();
    let p = cfg.kafka.librdkafka_properties();
    assert_eq!(p["acks"], "all");
    assert_eq!(p["enable.idempotence"], "true");
    assert_eq!(p["compression.type"], "lz4");
    assert_eq!(p["batch.size"], "65536");
    assert_eq!(p["linger.ms"], "5");
    assert_eq!(p["queue.buffering.max.messages"], "200000");
    assert_eq!(cfg.producer.overflow, OverflowPolicy::Backpressure);
}

#[test]
fn unknown_key_is_named() {
    let err = load("[kafka]\nbootstrap_server = \"x:1\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bootstrap_server"), "{err}");
    assert!(err.contains("kafka"), "{err}");
}

#[test]
fn bad_value_is_named() {
    let err = load("[producer]\noverflow = \"explode\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("producer.overflow"), "{err}");
    assert!(err.contains("explode"), "{err}");
    let err = load("[producer]\nqueue_capacity = -3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("producer.queue_capacity"), "{err}");
    let err = load("[producer]\nqueue_capacity = 0\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("producer.queue_capacity") && err.contains("at least 1"),
        "{err}"
    );
}

#[test]
fn acks_other_than_all_with_idempotence_is_rejected_with_the_reason() {
    let err = load("[kafka]\nacks = \"1\"\n").unwrap_err().to_string();
    assert!(err.contains("kafka.acks"), "{err}");
    assert!(
        err.contains("idempotent producer requires acks=all"),
        "{err}"
    );
    // Also when slipped in through the pass-through properties.
    let err = load("[kafka.properties]\nacks = \"0\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("kafka.acks"), "{err}");
    // With idempotence off, leader-only acks need an explicit opt-in; acks = 0 never passes.
    let err = load("[kafka]\nacks = \"1\"\nenable_idempotence = false\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("allow_leader_only_acks"), "{err}");
    let cfg =
        load("[kafka]\nacks = \"1\"\nenable_idempotence = false\nallow_leader_only_acks = true\n")
            .unwrap();
    assert_eq!(cfg.kafka.librdkafka_properties()["acks"], "1");
    for zero in [
        "[kafka]\nacks = \"0\"\nenable_idempotence = false\nallow_leader_only_acks = true\n",
        "[kafka]\nenable_idempotence = false\n[kafka.properties]\nacks = \"0\"\n",
    ] {
        let err = load(zero).unwrap_err().to_string();
        assert!(err.contains("kafka.acks") && err.contains("\"0\""), "{err}");
    }
}

#[test]
fn every_config_section_can_be_overridden_from_the_environment() {
    // Walk the config struct: its top-level sections are exactly the ones read from the env.
    let table = toml::Value::try_from(Config::default()).unwrap();
    let mut sections: Vec<&str> = table
        .as_table()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    sections.sort_unstable();
    let mut read: Vec<&str> = tickflow::config::SECTIONS.to_vec();
    read.sort_unstable();
    assert_eq!(sections, read);
    // And one that was missing before: `[http]`.
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let f = write("[http]\nlisten = \"127.0.0.1:1\"\n");
    std::env::set_var("TICKFLOW_HTTP__LISTEN", "127.0.0.1:9899");
    let cfg = Config::load(f.path());
    std::env::remove_var("TICKFLOW_HTTP__LISTEN");
    assert_eq!(cfg.unwrap().http.listen, "127.0.0.1:9899");
}

#[test]
fn numeric_and_boolean_secrets_are_taken_verbatim_and_never_echoed() {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let f = write("[kafka.sasl]\nusername = \"u\"\nmechanism = \"PLAIN\"\n");
    // ("true" is also a word the rendered config uses, so it is checked verbatim only.)
    for secret in ["12345678", "00731", "TRUE", "1e400", "true"] {
        std::env::set_var("TICKFLOW_KAFKA__SASL__PASSWORD", secret);
        std::env::set_var("TICKFLOW_SCHEMA_REGISTRY__PASSWORD", secret);
        let cfg = Config::load(f.path());
        // An invalid config elsewhere: its error must not show the secret either.
        std::env::set_var("TICKFLOW_PRODUCER__QUEUE_CAPACITY", "0");
        let err = Config::load(f.path()).unwrap_err().to_string();
        std::env::remove_var("TICKFLOW_PRODUCER__QUEUE_CAPACITY");
        std::env::remove_var("TICKFLOW_KAFKA__SASL__PASSWORD");
        std::env::remove_var("TICKFLOW_SCHEMA_REGISTRY__PASSWORD");
        let cfg = cfg.unwrap();
        assert_eq!(cfg.kafka.librdkafka_properties()["sasl.password"], secret);
        assert_eq!(
            cfg.schema_registry.password.as_ref().unwrap().expose(),
            secret
        );
        if secret == "true" {
            continue;
        }
        for shown in [format!("{cfg:?}"), cfg.to_redacted_toml(), err] {
            assert!(!shown.contains(secret), "secret {secret} shown: {shown}");
        }
    }
}

#[test]
fn environment_overrides_file_with_double_underscore_nesting() {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let f = write(
        "[kafka]\nbootstrap_servers = \"file:9092\"\n[producer]\npartition_key = \"symbol\"\n",
    );
    std::env::set_var("TICKFLOW_KAFKA__BOOTSTRAP_SERVERS", "env:9093");
    std::env::set_var("TICKFLOW_PRODUCER__QUEUE_CAPACITY", "77");
    std::env::set_var("TICKFLOW_SOME_TOOL_PATH", "/not/config");
    let cfg = Config::load(f.path());
    std::env::set_var("TICKFLOW_PRODUCER__QUEUE_CAPACTY", "1");
    let typo = Config::load(f.path());
    std::env::remove_var("TICKFLOW_PRODUCER__QUEUE_CAPACTY");
    std::env::remove_var("TICKFLOW_SOME_TOOL_PATH");
    std::env::remove_var("TICKFLOW_KAFKA__BOOTSTRAP_SERVERS");
    std::env::remove_var("TICKFLOW_PRODUCER__QUEUE_CAPACITY");
    let cfg = cfg.unwrap();
    assert_eq!(cfg.kafka.bootstrap_servers, "env:9093");
    assert_eq!(cfg.producer.queue_capacity, 77);
    assert_eq!(cfg.producer.partition_key, PartitionKey::Symbol);
    let err = typo.unwrap_err().to_string();
    assert!(
        err.contains("producer.queue_capacty"),
        "a typo in an env override is named: {err}"
    );
}

#[test]
fn secrets_come_from_the_environment_and_are_redacted() {
    let err = load("[kafka.sasl]\nusername = \"u\"\npassword = \"hunter2\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("kafka.sasl.password"), "{err}");
    assert!(err.contains("TICKFLOW_KAFKA__SASL__PASSWORD"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let err = load("[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sasl.password") && !err.contains("hunter2"),
        "{err}"
    );

    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let f = write("[kafka.sasl]\nusername = \"u\"\nmechanism = \"PLAIN\"\n[schema_registry]\nusername = \"r\"\n");
    std::env::set_var("TICKFLOW_KAFKA__SASL__PASSWORD", "s3cr3t-kafka");
    std::env::set_var("TICKFLOW_SCHEMA_REGISTRY__PASSWORD", "s3cr3t-registry");
    let cfg = Config::load(f.path());
    std::env::remove_var("TICKFLOW_KAFKA__SASL__PASSWORD");
    std::env::remove_var("TICKFLOW_SCHEMA_REGISTRY__PASSWORD");
    let cfg = cfg.unwrap();
    assert_eq!(
        cfg.kafka.librdkafka_properties()["sasl.password"],
        "s3cr3t-kafka"
    );
    assert_eq!(
        cfg.schema_registry.password.as_ref().unwrap().expose(),
        "s3cr3t-registry"
    );
    for shown in [format!("{cfg:?}"), cfg.to_redacted_toml()] {
        assert!(!shown.contains("s3cr3t"), "secret leaked: {shown}");
        assert!(shown.contains("***"));
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let err = Config::load(Path::new("config/nope.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config/nope.toml") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn urls_are_checked_per_use_and_credentials_are_never_echoed() {
    let bad = |text: &str, key: &str| {
        let err = load(text).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
        err
    };
    // Scheme per use.
    bad(
        "[schema_registry]\nurl = \"ftp://r:8081\"\n",
        "schema_registry.url",
    );
    bad(
        "[[feeds]]\nvenue = \"binance\"\nsymbols = [\"BTC-USDT\"]\nws_url = \"http://x:1\"\n",
        "feeds[0].ws_url",
    );
    bad(
        "[[feeds]]\nvenue = \"binance\"\nsymbols = [\"BTC-USDT\"]\nrest_url = \"wss://x:1\"\n",
        "feeds[0].rest_url",
    );
    bad(
        "[schema_registry]\nurl = \"http://\"\n",
        "schema_registry.url",
    );
    // Credentials in a URL: refused, and the error does not repeat them.
    let err = bad(
        "[schema_registry]\nurl = \"https://admin:hunter2@registry.example:8081\"\n",
        "schema_registry.url",
    );
    assert!(!err.contains("hunter2") && !err.contains("admin"), "{err}");
    let err = bad(
        "[[feeds]]\nvenue = \"binance\"\nsymbols = [\"BTC-USDT\"]\nws_url = \"wss://k:s3cret@stream.example\"\n",
        "feeds[0].ws_url",
    );
    assert!(!err.contains("s3cret"), "{err}");
    // Basic auth over plain http: only to loopback.
    bad(
        "[schema_registry]\nurl = \"http://registry.example:8081\"\nusername = \"u\"\n",
        "schema_registry.url",
    );
    load("[schema_registry]\nurl = \"http://127.0.0.1:8081\"\nusername = \"u\"\n").unwrap();
    load("[schema_registry]\nurl = \"https://registry.example:8081\"\nusername = \"u\"\n").unwrap();
    // Listen addresses are IP:port.
    bad("[http]\nlisten = \"everywhere\"\n", "http.listen");
    bad(
        "[[replay.servers]]\nvenue = \"binance\"\nlisten = \"localhost\"\n",
        "replay.servers[0].listen",
    );
}

#[test]
fn acks_and_compression_are_typed_and_a_bad_value_names_its_key() {
    let err = load("[kafka]\ncompression_type = \"brotli\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("compression_type") && err.contains("brotli"),
        "{err}"
    );
    let err = load("[kafka]\nacks = \"most\"\n").unwrap_err().to_string();
    assert!(err.contains("acks") && err.contains("most"), "{err}");
    // A number is read as librdkafka writes it.
    let cfg = load(
        "[kafka]\nacks = 1\nenable_idempotence = false\nallow_leader_only_acks = true\ncompression_type = \"zstd\"\n",
    )
    .unwrap();
    assert_eq!(cfg.kafka.acks, tickflow::config::Acks::Leader);
    assert_eq!(cfg.kafka.librdkafka_properties()["acks"], "1");
    assert_eq!(
        cfg.kafka.librdkafka_properties()["compression.type"],
        "zstd"
    );
}

#[test]
fn durations_are_typed_milliseconds_and_a_bad_one_names_its_key() {
    let cfg = load(
        "[producer]\nshutdown_deadline_ms = 2500\n[producer.recovery]\ngrace_ms = 700\n[kafka]\nlinger_ms = 7\n",
    )
    .unwrap();
    assert_eq!(
        cfg.producer.shutdown_deadline,
        std::time::Duration::from_millis(2500)
    );
    assert_eq!(
        cfg.producer.recovery.grace,
        std::time::Duration::from_millis(700)
    );
    assert_eq!(cfg.kafka.librdkafka_properties()["linger.ms"], "7");
    let err = load("[producer]\nshutdown_deadline_ms = -5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("shutdown_deadline_ms"), "{err}");
    let err = load("[producer]\nshutdown_deadline_ms = \"soon\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("shutdown_deadline_ms"), "{err}");
}

#[test]
fn a_feed_names_its_venue_and_every_duration_is_in_range() {
    let err = |text: &str| load(text).unwrap_err().to_string();
    // Without `venue` a feed used to become Binance spot silently.
    let e = err("[[feeds]]\nsymbols = [\"BTC-USDT\"]\n");
    assert!(
        e.contains("feeds[0].venue") && e.contains("is required"),
        "{e}"
    );
    assert!(
        e.contains("binance") && e.contains("kraken"),
        "names the venues: {e}"
    );
    // Near the largest value a timer cannot be set (it panicked); zero would spin.
    let feed = "[[feeds]]\nvenue = \"binance\"\nsymbols = [\"BTC-USDT\"]\n";
    let e = err(&format!("{feed}stale_after_ms = 9223372036854775807\n"));
    assert!(
        e.contains("feeds[0].stale_after_ms") && e.contains("at most 604800000 ms"),
        "{e}"
    );
    let e = err(&format!("{feed}shed_after_ms = 0\n"));
    assert!(e.contains("feeds[0].shed_after_ms"), "{e}");
    let e = err(&format!(
        "{feed}reconnect_min_ms = 5000\nreconnect_max_ms = 1000\n"
    ));
    assert!(e.contains("feeds[0].reconnect_min_ms"), "{e}");
    let e = err(&format!(
        "{feed}stream_stale_after_ms = {{ funding = 999999999999 }}\n"
    ));
    assert!(e.contains("feeds[0].stream_stale_after_ms.funding"), "{e}");
    // The REST book audit: 0 turns it off; a value out of range names its key.
    load(&format!("{feed}book_audit_every_ms = 0\n")).unwrap();
    let c = load(&format!("{feed}book_audit_every_ms = 60000\n")).unwrap();
    assert_eq!(
        c.feeds[0].book_audit_every,
        Some(std::time::Duration::from_secs(60))
    );
    let e = err(&format!("{feed}book_audit_every_ms = 999999999999\n"));
    assert!(e.contains("feeds[0].book_audit_every_ms"), "{e}");
    // In range, and 0 turns one stream's liveness check off.
    load(&format!(
        "{feed}stale_after_ms = 604800000\nsnapshot_timeout_ms = 1000\nconnect_timeout_ms = 2000\nstream_stale_after_ms = {{ depth = 0, ticker = 5000 }}\n"
    ))
    .unwrap();
}

#[test]
fn partial_depth_and_depth_on_one_symbol_are_refused_wherever_they_meet() {
    let err = |text: &str| load(text).unwrap_err().to_string();
    let feed = |ch: &str, sym: &str| {
        format!("[[feeds]]\nvenue = \"okx\"\nsymbols = [\"{sym}\"]\nchannels = [{ch}]\n")
    };
    // In one feed.
    let e = err(&feed("\"depth\", \"partial_depth\"", "BTC-USDT"));
    assert!(
        e.contains("feeds[0].channels") && e.contains("choose one"),
        "{e}"
    );
    // Across two feeds of the venue on one symbol, either order.
    let e = err(&format!(
        "{}{}",
        feed("\"depth\"", "BTC-USDT"),
        feed("\"partial_depth\"", "BTC-USDT")
    ));
    assert!(e.contains("feeds[1].channels"), "{e}");
    let e = err(&format!(
        "{}{}",
        feed("\"partial_depth\"", "BTC-USDT"),
        feed("\"trade\", \"depth\"", "BTC-USDT")
    ));
    assert!(e.contains("feeds[1].channels"), "{e}");
    // Different symbols are fine; a venue without the channel says so.
    load(&format!(
        "{}{}",
        feed("\"depth\"", "BTC-USDT"),
        feed("\"partial_depth\"", "ETH-USDT")
    ))
    .unwrap();
    let e = err(
        "[[feeds]]\nvenue = \"kraken\"\nsymbols = [\"BTC-USD\"]\nchannels = [\"partial_depth\"]\n",
    );
    assert!(e.contains("does not offer PartialDepth"), "{e}");
}
