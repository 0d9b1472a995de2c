//! The three ways in: the `tickflow` binary (smoke, check-config, schemas), the HTTP endpoint,
//! and the embedding example — against the dev stack's real broker and registry.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

use prost_reflect::{DescriptorPool, DynamicMessage};
use tickflow::schema::{wire, DataType, Normalized};

fn tickflow(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("tickflow")
        .unwrap()
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn summary(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn smoke_with_a_built_in_type_produces_decodable_records() {
    let (cfg, prefix) = common::config_file("smoke");
    let topic = format!("{prefix}.probe");
    let out = tickflow(&[
        "smoke",
        "--config",
        cfg.path().to_str().unwrap(),
        "--topic",
        &topic,
        "--count",
        "300",
        "--rate",
        "3000",
        "--concurrency",
        "20",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(
        (
            s["sent"].as_u64(),
            s["acked"].as_u64(),
            s["nacked"].as_u64()
        ),
        (Some(300), Some(300), Some(0))
    );
    for k in ["p50_ms", "p95_ms", "p99_ms", "max_ms", "events_per_s"] {
        assert!(s[k].as_f64().unwrap() > 0.0, "{k}: {s}");
    }
    // Milliseconds to the microsecond: at most three decimals as printed.
    let stdout = String::from_utf8_lossy(&out.stdout);
    for k in ["p50_ms", "p95_ms", "p99_ms", "max_ms"] {
        let text = stdout
            .split(&format!("\"{k}\":"))
            .nth(1)
            .and_then(|r| r.split([',', '}']).next())
            .unwrap();
        let decimals = text.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "{k} = {text}");
    }
    // Logs to a pipe carry no terminal colour codes.
    assert!(
        !out.stderr.contains(&0x1b),
        "ANSI escape in piped logs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        s["events_per_s"].as_f64().unwrap() < 4000.0,
        "--rate is honoured: {s}"
    );
    let got = common::consume(
        &common::kafka_addr(),
        &topic,
        1,
        300,
        Duration::from_secs(20),
    );
    assert_eq!(got.len(), 300);
    for r in &got {
        let Normalized::Trade(t) =
            Normalized::decode(DataType::Trade, wire::parse(&r.value).unwrap().payload).unwrap()
        else {
            panic!()
        };
        assert_eq!(t.exchange, "BINANCE");
        assert_eq!(r.headers["data_type"], "trade");
    }
}

const QUOTE_PROTO: &str = r#"syntax = "proto3";
package demo.v1;
message Header { string source = 1; }
message Quote {
  string exchange = 1;
  string symbol = 2;
  string bid = 3;
  int64 ts = 4;
  repeated string tags = 5;
}
"#;

#[test]
fn smoke_with_a_proto_and_json_lines_registers_and_produces_them() {
    let (cfg, prefix) = common::config_file("smokeproto");
    let topic = format!("{prefix}.quotes");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quote.proto"), QUOTE_PROTO).unwrap();
    let lines = [
        r#"{"exchange":"BINANCE","symbol":"BTC-USDT","bid":"58850.01","ts":"1700000000000001","tags":["a"]}"#,
        r#"{"exchange":"KRAKEN","symbol":"ETH-USD","bid":"2715.4600","ts":"1700000000000002"}"#,
    ];
    std::fs::write(dir.path().join("quotes.jsonl"), lines.join("\n")).unwrap();
    let out = tickflow(&[
        "smoke",
        "--config",
        cfg.path().to_str().unwrap(),
        "--topic",
        &topic,
        "--count",
        "4",
        "--proto",
        dir.path().join("quote.proto").to_str().unwrap(),
        "--message",
        "demo.v1.Quote",
        "--json",
        dir.path().join("quotes.jsonl").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary(&out)["acked"].as_u64(), Some(4));

    let fds = protox::compile(["quote.proto"], [dir.path()]).unwrap();
    let desc = DescriptorPool::from_file_descriptor_set(fds)
        .unwrap()
        .get_message_by_name("demo.v1.Quote")
        .unwrap();
    let got = common::consume(&common::kafka_addr(), &topic, 1, 4, Duration::from_secs(20));
    assert_eq!(got.len(), 4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let latest: serde_json::Value = rt.block_on(async {
        reqwest::get(format!(
            "{}/subjects/{topic}-value/versions/latest",
            common::registry_url()
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    });
    for (i, r) in got.iter().enumerate() {
        let frame = wire::parse(&r.value).unwrap();
        assert_eq!(i64::from(frame.schema_id), latest["id"].as_i64().unwrap());
        assert_eq!(
            frame.message_indexes,
            vec![1],
            "Quote is the second message of the file"
        );
        let msg = DynamicMessage::decode(desc.clone(), frame.payload).unwrap();
        let want: serde_json::Value = serde_json::from_str(lines[i % 2]).unwrap();
        assert_eq!(
            msg.get_field_by_name("symbol").unwrap().as_str(),
            want["symbol"].as_str()
        );
        assert_eq!(
            msg.get_field_by_name("bid").unwrap().as_str(),
            want["bid"].as_str()
        );
        assert_eq!(r.headers["exchange"], want["exchange"].as_str().unwrap());
    }
}

#[test]
fn a_bad_config_exits_2_naming_the_key() {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), "[producer]\noverflow = \"explode\"\n").unwrap();
    for cmd in [
        vec!["run", "--config"],
        vec!["check-config"],
        vec!["smoke", "--topic", "t", "--config"],
    ] {
        let mut args = cmd.clone();
        args.push(f.path().to_str().unwrap());
        let out = tickflow(&args);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("producer.overflow") && err.contains("explode"),
            "{err}"
        );
    }
    let out = tickflow(&["check-config", "config/default.toml"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("bootstrap_servers"));
    // The same through assert_cmd's assertions: exit code and stderr of a bad value.
    assert_cmd::Command::cargo_bin("tickflow")
        .unwrap()
        .args(["check-config", f.path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("producer.overflow"));
}

#[test]
fn schemas_check_passes_after_register_and_catches_a_breaking_change() {
    let (cfg, prefix) = common::config_file("schemas");
    let path = cfg.path().to_str().unwrap();
    let out = tickflow(&["schemas", "check", "--config", path]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not registered yet"));
    let out = tickflow(&["schemas", "register", "--config", path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One subject per value type: the nine market-data types and FeedEvent.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 10);
    let out = tickflow(&["schemas", "check", "--config", path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The registry's latest Trade has a field the local schema does not: removing it is breaking.
    // (A comment makes the text unique per run: the dev registry does not add a version for a
    // text it already stores under another subject.)
    let newer = DataType::Trade.proto_source().replace(
        "int64 receipt_time = 14;",
        &format!("int64 receipt_time = 14;\n  // {prefix}\n  string venue_flags = 15;"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registry =
        tickflow::schema::registry::Registry::new(&tickflow::config::SchemaRegistryConfig {
            url: common::registry_url(),
            ..Default::default()
        })
        .unwrap();
    rt.block_on(registry.register_proto(
        &format!("{prefix}.trade-value"),
        "tickflow.normalized.v2beta1.Trade",
        &newer,
    ))
    .unwrap();
    let out = tickflow(&["schemas", "check", "--config", path]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("BREAKING") && stdout.contains("venue_flags"),
        "{stdout}"
    );
}

#[actix_rt::test]
async fn metrics_move_and_readyz_follows_the_broker() {
    let port = common::free_port();
    let mut broker = common::start_tansu(port);
    let mut cfg = common::test_config("http");
    cfg.kafka.bootstrap_servers = format!("127.0.0.1:{port}");
    cfg.kafka.message_timeout = Duration::from_millis(3000);
    let handle = tickflow::supervisor::ProducerHandle::start(cfg.clone()).unwrap();
    let observed = tickflow::http::Observed {
        metrics: handle.metrics(),
        config: cfg.clone(),
        feeds: vec![],
        sinks: vec![],
        cluster: None,
    };
    let addr = tickflow::http::serve("127.0.0.1:0", observed)
        .await
        .unwrap();
    let get = |path: &'static str| async move {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(get("/healthz").await, (200, "ok\n".to_string()));
    let sample = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("tickflow_produced_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert_eq!(sample(&get("/metrics").await.1), 0.0);
    for n in 0..25 {
        handle
            .produce(tickflow::producer::ProduceEvent::typed(Normalized::Trade(
                common::trade(n),
            )))
            .await
            .unwrap();
    }
    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&text), 25.0, "{text}");
    assert!(text.contains("tickflow_produce_latency_seconds_bucket"));

    let (status, body) = get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    broker.0.kill().unwrap();
    broker.0.wait().unwrap();
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["broker"]["ok"], false);
    assert_eq!(v["registry"]["ok"], true);
    drop(broker);
    let _broker = common::start_tansu(port);
    let mut ready = false;
    for _ in 0..30 {
        if get("/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "ready again once the broker is back");
    handle.shutdown().await;
}

#[test]
fn the_embed_example_runs_against_the_dev_stack() {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")));
    let exe = format!("{target}/debug/examples/embed");
    assert!(
        std::path::Path::new(&exe).exists(),
        "{exe} is built by `cargo test`"
    );
    let (cfg, prefix) = common::config_file("embed");
    let out = Command::new(exe).arg(cfg.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5/5 acked"), "{stdout}");
    let got = common::consume(
        &common::kafka_addr(),
        &format!("{prefix}.trade"),
        1,
        5,
        Duration::from_secs(20),
    );
    assert_eq!(got.len(), 5);
}
