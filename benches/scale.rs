//! Cost as symbols grow (`make bench`): 10, 100 and 1 000 synthetic Binance spot symbols
//! (`support/synth.rs`: the recorded shapes, ids contiguous), depth diffs and trades, served by
//! the replay server in a child process (so its work is not counted) through the whole service
//! — feeds, books, producers — into the dev stack's broker. Per size: messages, wall time, CPU
//! µs per message of the service process and of the broker, peak RSS and RSS per symbol, and
//! each size's cost per message beside the 10-symbol run's (same run).
//!
//! `TICKFLOW_SCALE_FRAMES` sets the frames per size (default 120 000),
//! `TICKFLOW_SCALE_SIZES` the sizes (default `10,100,1000`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/synth.rs"]
mod synth;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tickflow::config::{Config, FeedConfig, SymbolSource};
use tickflow::replay::ReplayServerConfig;
use tickflow::service::Service;
use tickflow::venues::Channel;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD: &str = "TICKFLOW_SCALE_REPLAY";

/// CPU seconds of process `pid` ("self" for this one): utime + stime of all its threads.
fn cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, tail)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = tail.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// The broker's pid (the process named `tansu`), if one runs.
fn broker_pid() -> Option<String> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let comm = std::fs::read_to_string(p.path().join("comm")).ok()?;
        (comm.trim() == "tansu").then(|| p.file_name().to_string_lossy().into_owned())
    })
}

/// Resident set size of this process, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The child: serves the recording in `dir` until its stdin closes.
fn child(dir: String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let server = tickflow::venues::replay_server(ReplayServerConfig {
            venue: "binance".into(),
            fixtures: dir.into(),
            speed: 0.0,
            ..Default::default()
        })
        .await
        .unwrap();
        println!("{}", server.addr);
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
        })
        .await;
    });
}

struct Run {
    symbols: usize,
    frames: u64,
    wall: Duration,
    cpu_us_per_msg: f64,
    broker_us_per_msg: f64,
    peak_rss_kib: u64,
    rss_per_symbol_kib: f64,
}

async fn run(n: usize, frames: usize, stamp: u128) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let symbols = synth::symbols(n);
    let written = synth::binance_spot(dir.path(), &symbols, (frames / n).max(2), 10).unwrap();
    let total = written.diffs + written.trades;
    let mut replay = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    BufReader::new(replay.stdout.take().unwrap())
        .read_line(&mut addr)
        .unwrap();
    let addr = addr.trim().to_string();

    let mut cfg = Config::load(std::path::Path::new("config/default.toml")).unwrap();
    cfg.producer.topic_prefix = format!("scale.{stamp}.{n}");
    cfg.http.enabled = false;
    cfg.feeds = vec![FeedConfig {
        venue: "binance".into(),
        symbols: symbols.clone(),
        channels: vec![Channel::Depth, Channel::Trade],
        ws_url: Some(format!("ws://{addr}")),
        rest_url: Some(format!("http://{addr}")),
        symbol_source: SymbolSource::Pinned,
        // The replay server is local: no venue budget to respect.
        rest_weight_per_minute: Some(100_000_000),
        snapshot_interval: Duration::from_millis(5),
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let broker = broker_pid();
    let rss0 = rss_kib();
    let (cpu0, broker0) = (cpu("self"), broker.as_deref().map_or(0.0, cpu));
    let started = Instant::now();
    let service = Service::start(cfg).await.unwrap();
    let sum = |f: fn(&tickflow::feed::FeedStats) -> u64| -> u64 {
        service.feeds.iter().map(|x| f(&x.stats)).sum()
    };
    let (mut peak, mut last, mut changed) = (rss0, 0u64, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peak = peak.max(rss_kib());
        let read = sum(|s| s.frames.load(Ordering::Relaxed));
        let answered = sum(|s| s.acked.load(Ordering::Relaxed) + s.nacked.load(Ordering::Relaxed));
        if answered != last {
            (last, changed) = (answered, Instant::now());
        }
        if read >= total && changed.elapsed() >= Duration::from_millis(500) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{n} symbols: {read} of {total} frames read"
        );
    }
    let wall = changed.duration_since(started);
    let (cpu1, broker1) = (cpu("self"), broker.as_deref().map_or(0.0, cpu));
    let nacked = sum(|s| s.nacked.load(Ordering::Relaxed));
    assert_eq!(nacked, 0, "{n} symbols: records nacked");
    service.shutdown().await;
    drop(replay.stdin.take());
    let _ = replay.wait();
    Run {
        symbols: n,
        frames: total,
        wall,
        cpu_us_per_msg: (cpu1 - cpu0) * 1e6 / total as f64,
        broker_us_per_msg: (broker1 - broker0) * 1e6 / total as f64,
        peak_rss_kib: peak,
        rss_per_symbol_kib: peak.saturating_sub(rss0) as f64 / n as f64,
    }
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(dir);
        return;
    }
    let frames: usize = std::env::var("TICKFLOW_SCALE_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120_000);
    let sizes: Vec<usize> = std::env::var("TICKFLOW_SCALE_SIZES")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let runs: Vec<Run> = actix_rt::System::new().block_on(async {
        let mut runs = Vec::new();
        for n in &sizes {
            runs.push(run(*n, frames, stamp).await);
        }
        runs
    });
    println!(
        "\n=== scale: synthetic Binance spot depth + trades, replay → feeds → books → Kafka acks"
    );
    println!(
        "{:>8} {:>9} {:>8} {:>10} {:>13} {:>15} {:>13} {:>14} {:>12}",
        "symbols",
        "messages",
        "wall s",
        "msgs/s",
        "CPU µs/msg",
        "broker µs/msg",
        "peak RSS MiB",
        "RSS/symbol KiB",
        "cost ratio"
    );
    let base = runs.first().map_or(1.0, |r| r.cpu_us_per_msg);
    for r in &runs {
        println!(
            "{:>8} {:>9} {:>8.2} {:>10.0} {:>13.2} {:>15.2} {:>13.1} {:>14.1} {:>12.2}",
            r.symbols,
            r.frames,
            r.wall.as_secs_f64(),
            r.frames as f64 / r.wall.as_secs_f64(),
            r.cpu_us_per_msg,
            r.broker_us_per_msg,
            r.peak_rss_kib as f64 / 1024.0,
            r.rss_per_symbol_kib,
            r.cpu_us_per_msg / base
        );
    }
    println!(
        "cost ratio: CPU µs per message of this service process at each size / at {} symbols (goal: within 1.2)",
        sizes.first().copied().unwrap_or(0)
    );
}
