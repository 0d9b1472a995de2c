//! `tickflow smoke`: sends N ProduceEvents through the producer actors against any Kafka +
//! Confluent-compatible registry and reports acks, nacks and latency as one JSON line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde::Serialize;

use crate::config::Config;
use crate::producer::{Payload, ProduceEvent, RawSchema};
use crate::schema::v2beta1::{liquidation, trade};
use crate::schema::{self as s, DataType, Normalized};
use crate::supervisor::ProducerHandle;

/// Options of `tickflow smoke`.
#[derive(Debug, clap::Args)]
pub struct SmokeArgs {
    /// The TOML config file (broker, registry, producer settings).
    #[arg(long)]
    pub config: PathBuf,
    /// Topic to produce to.
    #[arg(long)]
    pub topic: String,
    /// How many events.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Events per second (unlimited when unset).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Events in flight at once.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Built-in normalized type with generated values (trade, level2_book, level2_delta,
    /// top_of_book, ticker, funding, open_interest, liquidation, candle).
    #[arg(long = "type", default_value = "trade", conflicts_with = "proto")]
    pub data_type: String,
    /// A self-contained .proto file; each `--json` line becomes one `--message`.
    #[arg(long, requires_all = ["message", "json"])]
    pub proto: Option<PathBuf>,
    /// Fully qualified message name in `--proto`.
    #[arg(long)]
    pub message: Option<String>,
    /// JSON lines, one message each (protobuf JSON mapping).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Exit 0 even when some events were nacked.
    #[arg(long)]
    pub allow_nacks: bool,
}

/// The summary printed on stdout.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Events sent.
    pub sent: u64,
    /// Acked.
    pub acked: u64,
    /// Nacked.
    pub nacked: u64,
    /// Nacks by reason.
    pub nack_reasons: BTreeMap<String, u64>,
    /// Ack latency percentiles, ms.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Throughput.
    pub events_per_s: f64,
}

/// A realistic generated record of `dt` number `n`.
pub fn generated(dt: DataType, n: u64) -> Normalized {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let (exchange, symbol) = (
        "BINANCE".to_string(),
        ["BTC-USDT", "ETH-USDT", "SOL-USDT"][(n % 3) as usize].to_string(),
    );
    let price = format!("{}.{:02}", 58_000 + (n % 1000), n % 100);
    let qty = format!("0.{:08}", (n * 7919) % 100_000_000);
    let lvl = |p: &str, q: &str| s::v2beta1::level2_book::PriceLevel {
        price: p.into(),
        quantity: q.into(),
    };
    match dt {
        DataType::Trade => Normalized::Trade(s::Trade {
            exchange,
            symbol,
            side: if n % 2 == 0 {
                trade::Side::Buy
            } else {
                trade::Side::Sell
            } as i32,
            trade_id: n.to_string(),
            price,
            amount: qty,
            timestamp: now,
            raw_id: n.to_string(),
            maker: Some(n % 2 == 1),
            event_time: Some(now),
            receipt_time: now,
            ..Default::default()
        }),
        DataType::Level2Book => Normalized::Level2Book(s::Level2Book {
            exchange,
            symbol,
            bids: vec![lvl(&price, &qty)],
            asks: vec![lvl("99999.99", "1")],
            last_update_id: Some(n as i64),
            receipt_time: now,
            ..Default::default()
        }),
        DataType::Level2Delta => Normalized::Level2Delta(s::Level2Delta {
            exchange,
            symbol,
            bids: vec![s::v2beta1::level2_delta::PriceLevel {
                price,
                quantity: qty,
            }],
            first_update_id: Some(n as i64),
            last_update_id: Some(n as i64),
            receipt_time: now,
            ..Default::default()
        }),
        DataType::TopOfBook => Normalized::TopOfBook(s::TopOfBook {
            exchange,
            symbol,
            bid_price: price.clone(),
            bid_size: qty.clone(),
            ask_price: price,
            ask_size: qty,
            update_id: Some(n as i64),
            receipt_time: now,
            ..Default::default()
        }),
        DataType::Ticker => Normalized::Ticker(s::Ticker {
            exchange,
            symbol,
            bid: price.clone(),
            ask: price.clone(),
            last: price.clone(),
            open: price.clone(),
            high: price.clone(),
            low: price,
            volume: qty.clone(),
            quote_volume: qty,
            receipt_time: now,
            ..Default::default()
        }),
        DataType::Funding => Normalized::Funding(s::Funding {
            exchange,
            symbol,
            mark_price: price,
            rate: "0.00010000".into(),
            next_funding_time: Some(now + 28_800_000_000),
            receipt_time: now,
            ..Default::default()
        }),
        DataType::OpenInterest => Normalized::OpenInterest(s::OpenInterest {
            exchange,
            symbol,
            open_interest: qty,
            timestamp: Some(now),
            receipt_time: now,
            ..Default::default()
        }),
        DataType::Liquidation => Normalized::Liquidation(s::Liquidation {
            exchange,
            symbol,
            side: liquidation::Side::Sell as i32,
            quantity: qty,
            price,
            id: n.to_string(),
            status: "FILLED".into(),
            timestamp: Some(now),
            receipt_time: now,
            ..Default::default()
        }),
        DataType::Candle => Normalized::Candle(s::Candle {
            exchange,
            symbol,
            start: now - 60_000_000,
            stop: now,
            interval: "1m".into(),
            trades: Some(n as i64),
            open: price.clone(),
            close: price.clone(),
            high: price.clone(),
            low: price,
            volume: qty,
            closed: true,
            receipt_time: now,
            ..Default::default()
        }),
        DataType::FeedEvent => Normalized::FeedEvent(s::FeedEvent {
            exchange,
            symbol,
            kind: s::v2beta1::feed_event::Kind::Gap as i32,
            reason: format!("smoke test event {n}"),
            expected_id: Some(n as i64),
            got_id: Some(n as i64 + 2),
            data_type: "level2_delta".into(),
            timestamp: now,
            action: "rest_refetch".into(),
            receipt_time: now,
            ..Default::default()
        }),
    }
}

/// Message indexes of `desc` in its file (`[i]` top level, `[i, j]` nested).
fn message_indexes(desc: &MessageDescriptor) -> Vec<i32> {
    let file = desc.parent_file_descriptor_proto();
    let name = desc.full_name();
    let prefix = if file.package().is_empty() {
        String::new()
    } else {
        format!("{}.", file.package())
    };
    fn find(
        msgs: &[prost_types::DescriptorProto],
        path: &str,
        want: &str,
        out: &mut Vec<i32>,
    ) -> bool {
        for (i, m) in msgs.iter().enumerate() {
            let full = format!("{path}{}", m.name());
            out.push(i as i32);
            if full == want || find(&m.nested_type, &format!("{full}."), want, out) {
                return true;
            }
            out.pop();
        }
        false
    }
    let mut out = Vec::new();
    find(&file.message_type, &prefix, name, &mut out);
    out
}

/// Builds the pre-encoded payloads from `--proto/--message/--json`.
fn dynamic_payloads(
    proto: &PathBuf,
    message: &str,
    json: &PathBuf,
) -> Result<Vec<Payload>, String> {
    let text = std::fs::read_to_string(proto).map_err(|e| format!("{}: {e}", proto.display()))?;
    let dir = proto.parent().unwrap_or(std::path::Path::new("."));
    let name = proto
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("bad --proto path")?;
    let fds = protox::compile([name], [dir]).map_err(|e| format!("{}: {e}", proto.display()))?;
    let pool = DescriptorPool::from_file_descriptor_set(fds).map_err(|e| e.to_string())?;
    let desc = pool
        .get_message_by_name(message)
        .ok_or_else(|| format!("no message {message} in {}", proto.display()))?;
    if !desc.parent_file_descriptor_proto().dependency.is_empty() {
        return Err(
            "the .proto must be self-contained (no imports) to register without references".into(),
        );
    }
    let schema = Arc::new(RawSchema {
        full_name: message.to_string(),
        proto: text,
        message_indexes: message_indexes(&desc),
    });
    let lines = std::fs::read_to_string(json).map_err(|e| format!("{}: {e}", json.display()))?;
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let mut de = serde_json::Deserializer::from_str(l);
            let msg = DynamicMessage::deserialize(desc.clone(), &mut de)
                .map_err(|e| format!("{}:{}: {e}", json.display(), i + 1))?;
            let field = |n: &str| {
                msg.get_field_by_name(n)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            };
            Ok(Payload::Encoded {
                schema: schema.clone(),
                bytes: prost::Message::encode_to_vec(&msg),
                exchange: field("exchange"),
                symbol: field("symbol"),
            })
        })
        .collect()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).map_or(0.0, |d| ms(*d))
}

/// Milliseconds rounded to the microsecond (what the clock resolves; no float noise).
fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}

/// Runs the smoke test inside an actix system; returns the summary.
pub async fn smoke(cfg: Config, args: &SmokeArgs) -> Result<Summary, String> {
    let payloads: Option<Vec<Payload>> = match (&args.proto, &args.message, &args.json) {
        (Some(p), Some(m), Some(j)) => Some(dynamic_payloads(p, m, j)?),
        _ => None,
    };
    let dt = DataType::parse(&args.data_type)
        .ok_or_else(|| format!("unknown --type {}", args.data_type))?;
    let handle = ProducerHandle::start(cfg).map_err(|e| e.to_string())?;
    let bar = ProgressBar::with_draw_target(Some(args.count), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {msg}") {
        bar.set_style(style);
    }
    let interval = args
        .rate
        .filter(|r| *r > 0)
        .map(|r| Duration::from_secs_f64(1.0 / r as f64));
    let start = Instant::now();
    let results: Vec<(Result<(), String>, Duration)> = stream::iter(0..args.count)
        .map(|n| {
            let payload = match &payloads {
                Some(p) if !p.is_empty() => p[(n % p.len() as u64) as usize].clone(),
                _ => Payload::Typed(Box::new(generated(dt, n))),
            };
            let event = ProduceEvent {
                topic: Some(args.topic.clone()),
                key: None,
                headers: Vec::new(),
                payload,
            };
            let (handle, bar) = (&handle, &bar);
            async move {
                if let Some(iv) = interval {
                    let due = start + iv.mul_f64(n as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t0 = Instant::now();
                let r = handle
                    .produce(event)
                    .await
                    .map(|_| ())
                    .map_err(|n| n.reason.kind().to_string());
                bar.inc(1);
                (r, t0.elapsed())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    handle.shutdown().await;
    let mut lat: Vec<Duration> = results
        .iter()
        .filter(|r| r.0.is_ok())
        .map(|r| r.1)
        .collect();
    lat.sort_unstable();
    let mut reasons = BTreeMap::new();
    for (r, _) in &results {
        if let Err(k) = r {
            *reasons.entry(k.clone()).or_insert(0) += 1;
        }
    }
    let acked = lat.len() as u64;
    Ok(Summary {
        sent: args.count,
        acked,
        nacked: args.count - acked,
        nack_reasons: reasons,
        p50_ms: pct(&lat, 0.50),
        p95_ms: pct(&lat, 0.95),
        p99_ms: pct(&lat, 0.99),
        max_ms: lat.last().map_or(0.0, |d| ms(*d)),
        events_per_s: args.count as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}
