//! Cost as symbols grow (`make bench`): 10, 100 and 1 000 synthetic Binance spot symbols
//! (`support/synth.rs`: the recorded shapes, ids contiguous), depth diffs and trades, served by
//! the replay server in one child process through the whole service — feeds, books, producers
//! — in another, into the dev stack's broker. First every size is played at the same fixed
//! rate, so the service batches alike at every size; then as fast as possible, where the replay
//! server's own speed at each size sets the rate (a service fed more slowly spends more CPU per
//! message on wake-ups and smaller batches). Per size: messages, wall time, the service's CPU µs per
//! message at steady state (the frames between 20 % and 80 % of the run, once every book has
//! synced) and over the whole run (start-up and the 1 000 snapshots included), the broker's,
//! the service's peak RSS and its RSS per symbol beyond the smallest run's, and each size's
//! steady cost beside the smallest run's (same run). A fresh process per size: memory one size
//! freed is not counted at the next.
//!
//! `TICKFLOW_SCALE_FRAMES` sets the frames per size (default 120 000), `TICKFLOW_SCALE_RATES`
//! the rates in frames/s, one table each (default `20000,0`: a fixed 20 000 frames/s, then
//! as fast as possible), `TICKFLOW_SCALE_SIZES` the sizes (default `10,100,1000`), `TICKFLOW_SCALE_ROUNDS` the rounds
//! (default 3; sizes interleaved, each size's median round reported). The all-cores part plays
//! as fast as possible.
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
const SERVICE: &str = "TICKFLOW_SCALE_SERVICE";
/// The replay child's playing speed (0 = as fast as possible, 1 = the recording's own times).
const SPEED: &str = "TICKFLOW_SCALE_SPEED";

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

/// The dev stack broker's pid (`.dev/tansu.pid`, else the first process named `tansu`).
fn broker_pid() -> Option<String> {
    let run = std::env::var("TICKFLOW_RUN_DIR").unwrap_or_else(|_| ".dev".into());
    if let Ok(pid) = std::fs::read_to_string(format!("{run}/tansu.pid")) {
        return Some(pid.trim().to_string());
    }
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let comm = std::fs::read_to_string(p.path().join("comm")).ok()?;
        (comm.trim() == "tansu").then(|| p.file_name().to_string_lossy().into_owned())
    })
}

/// A `Vm…` figure of this process's status (`VmRSS`, `VmHWM`), KiB.
fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
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
            speed: std::env::var(SPEED)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
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
    steady_us_per_msg: f64,
    broker_us_per_msg: f64,
    peak_rss_kib: u64,
}

/// How the service child runs: its feed threads and how many `[[feeds]]` the symbols are
/// split over (one connection each at least).
#[derive(Debug, Clone, Copy)]
struct Layout {
    threads: usize,
    feeds: usize,
}

/// The service child: runs `symbols` symbols against the replay at `addr` until every frame
/// is read and answered; prints `frames wall_s cpu_s peak_rss_kib`.
async fn service(symbols: Vec<String>, total: u64, addr: String, stamp: String, at: Layout) {
    let n = symbols.len();
    let mut cfg = Config::load(std::path::Path::new("config/default.toml")).unwrap();
    cfg.producer.topic_prefix = format!("scale.{stamp}.{n}");
    cfg.http.enabled = false;
    cfg.run.feed_threads = Some(at.threads);
    let per_feed = n.div_ceil(at.feeds.max(1));
    cfg.feeds = symbols
        .chunks(per_feed)
        .map(|chunk| FeedConfig {
            venue: "binance".into(),
            symbols: chunk.to_vec(),
            channels: vec![Channel::Depth, Channel::Trade],
            ws_url: Some(format!("ws://{addr}")),
            rest_url: Some(format!("http://{addr}")),
            symbol_source: SymbolSource::Pinned,
            // The replay server is local: no venue budget to respect.
            rest_weight_per_minute: Some(100_000_000),
            snapshot_interval: Duration::from_millis(5),
            ..Default::default()
        })
        .collect();
    cfg.validate().unwrap();
    let cpu0 = cpu("self");
    let started = Instant::now();
    let service = Service::start(cfg).await.unwrap();
    let sum = |f: fn(&tickflow::feed::FeedStats) -> u64| -> u64 {
        service.feeds.iter().map(|x| f(&x.stats)).sum()
    };
    let (mut last, mut changed) = (0u64, Instant::now());
    // The steady window: CPU and frames read when 20 % and when 80 % of the frames were read.
    let (mut from, mut to) = (None, None);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let read = sum(|s| s.frames.load(Ordering::Relaxed));
        if from.is_none() && read * 5 >= total {
            from = Some((cpu("self"), read));
        }
        if to.is_none() && read * 5 >= total * 4 {
            to = Some((cpu("self"), read));
        }
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
    let cpu1 = cpu("self");
    assert_eq!(
        sum(|s| s.nacked.load(Ordering::Relaxed)),
        0,
        "{n} symbols: records nacked"
    );
    let steady_us = match (from, to) {
        (Some((c0, r0)), Some((c1, r1))) if r1 > r0 => (c1 - c0) * 1e6 / (r1 - r0) as f64,
        _ => f64::NAN,
    };
    println!(
        "RESULT {total} {} {} {} {steady_us}",
        wall.as_secs_f64(),
        cpu1 - cpu0,
        vm_kib("VmHWM")
    );
    service.shutdown().await;
}

/// One service run of `n` symbols, `frames` frames played at `rate` frames/s (0: as fast as
/// possible).
fn run(n: usize, frames: usize, rate: u64, stamp: u128, at: Layout) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let symbols = synth::symbols(n);
    let spacing_us = 1_000_000u64
        .checked_div(rate)
        .map_or(10, |s| s.max(1) as i64);
    let written =
        synth::binance_spot(dir.path(), &symbols, (frames / n).max(2), spacing_us).unwrap();
    let total = written.diffs + written.trades;
    let exe = std::env::current_exe().unwrap();
    let mut replay = Command::new(&exe)
        .env(CHILD, dir.path())
        .env(SPEED, if rate > 0 { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    BufReader::new(replay.stdout.take().unwrap())
        .read_line(&mut addr)
        .unwrap();
    let broker = broker_pid();
    let broker0 = broker.as_deref().map_or(0.0, cpu);
    let out = Command::new(&exe)
        .env(
            SERVICE,
            format!(
                "{n} {total} {} {stamp} {} {}",
                addr.trim(),
                at.threads,
                at.feeds
            ),
        )
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let broker1 = broker.as_deref().map_or(0.0, cpu);
    drop(replay.stdin.take());
    let _ = replay.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    let result: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{n} symbols: the service run said {text:?}"))
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let (wall, cpu_s, peak, steady) = (result[1], result[2], result[3] as u64, result[4]);
    Run {
        symbols: n,
        frames: total,
        wall: Duration::from_secs_f64(wall),
        cpu_us_per_msg: cpu_s * 1e6 / total as f64,
        steady_us_per_msg: steady,
        broker_us_per_msg: (broker1 - broker0) * 1e6 / total as f64,
        peak_rss_kib: peak,
    }
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(dir);
        return;
    }
    if let Ok(args) = std::env::var(SERVICE) {
        let a: Vec<&str> = args.split(' ').collect();
        let (n, total): (usize, u64) = (a[0].parse().unwrap(), a[1].parse().unwrap());
        let (addr, stamp) = (a[2].to_string(), a[3].to_string());
        let at = Layout {
            threads: a[4].parse().unwrap(),
            feeds: a[5].parse().unwrap(),
        };
        actix_rt::System::new().block_on(service(synth::symbols(n), total, addr, stamp, at));
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
    let rounds: usize = std::env::var("TICKFLOW_SCALE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // A fixed rate (every size batched alike), then as fast as possible.
    let rates: Vec<u64> = std::env::var("TICKFLOW_SCALE_RATES")
        .unwrap_or_else(|_| "20000,0".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for (k, rate) in rates.iter().enumerate() {
        scale(&sizes, frames, *rate, rounds, stamp + 100 * k as u128);
    }

    // All cores: the same service with its feed connections on the producers' thread (one
    // thread for the service's actors, as before `run.feed_threads`) and on two threads of
    // their own; 200 symbols over 4 `[[feeds]]` (4 connections), sizes interleaved per round.
    let layouts = [
        Layout {
            threads: 0,
            feeds: 4,
        },
        Layout {
            threads: 2,
            feeds: 4,
        },
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); layouts.len()];
    for round in 0..rounds.max(1) {
        for (i, at) in layouts.iter().enumerate() {
            let r = run(200, frames, 0, stamp + 1_000 + round as u128, *at);
            rates[i].push(r.frames as f64 / r.wall.as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let one = median(&mut rates[0]);
    let two = median(&mut rates[1]);
    println!(
        "\n=== all cores: 200 symbols over 4 connections, whole service (median of {rounds} rounds)"
    );
    println!("feeds on the producers' thread (1 thread): {one:>10.0} msgs/s");
    println!("feeds on 2 threads of their own:           {two:>10.0} msgs/s");
    println!("ratio 2 threads / 1 thread: {:.2}", two / one);
}

/// The scale table: each of `sizes` played `rounds` times at `rate` frames/s (0: as fast as
/// possible), sizes interleaved round after round (this machine's speed drifts by the minute);
/// each size's median round (by steady cost) is reported.
fn scale(sizes: &[usize], frames: usize, rate: u64, rounds: usize, stamp: u128) {
    let mut all: Vec<Vec<Run>> = sizes.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds.max(1) {
        for (i, n) in sizes.iter().enumerate() {
            let at = Layout {
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                feeds: 1,
            };
            let r = run(*n, frames, rate, stamp + round as u128, at);
            eprintln!(
                "round {round}: {n} symbols, {:.2} CPU µs/msg steady, {:.2} whole run",
                r.steady_us_per_msg, r.cpu_us_per_msg
            );
            all[i].push(r);
        }
    }
    let runs: Vec<Run> = all
        .into_iter()
        .map(|mut rs| {
            rs.sort_by(|a, b| a.steady_us_per_msg.total_cmp(&b.steady_us_per_msg));
            rs.swap_remove(rs.len() / 2)
        })
        .collect();
    let played = if rate > 0 {
        format!("played at {rate} frames/s")
    } else {
        "played as fast as possible".to_string()
    };
    println!(
        "\n=== scale: synthetic Binance spot depth + trades, {played}, replay → feeds → books → Kafka acks (median of {rounds} rounds)"
    );
    println!(
        "{:>8} {:>9} {:>8} {:>10} {:>11} {:>11} {:>14} {:>13} {:>14} {:>12}",
        "symbols",
        "messages",
        "wall s",
        "msgs/s",
        "steady µs",
        "whole µs",
        "broker µs/msg",
        "peak RSS MiB",
        "RSS/symbol KiB",
        "cost ratio"
    );
    let base = runs.first().map_or(1.0, |r| r.steady_us_per_msg);
    let (n0, rss0) = runs.first().map_or((0, 0), |r| (r.symbols, r.peak_rss_kib));
    for r in &runs {
        let per_symbol = if r.symbols > n0 {
            r.peak_rss_kib.saturating_sub(rss0) as f64 / (r.symbols - n0) as f64
        } else {
            f64::NAN
        };
        println!(
            "{:>8} {:>9} {:>8.2} {:>10.0} {:>11.2} {:>11.2} {:>14.2} {:>13.1} {:>14.1} {:>12.2}",
            r.symbols,
            r.frames,
            r.wall.as_secs_f64(),
            r.frames as f64 / r.wall.as_secs_f64(),
            r.steady_us_per_msg,
            r.cpu_us_per_msg,
            r.broker_us_per_msg,
            r.peak_rss_kib as f64 / 1024.0,
            per_symbol,
            r.steady_us_per_msg / base
        );
    }
    println!(
        "steady µs: CPU µs of the service process per frame read between 20 % and 80 % of the run; whole µs: over the whole run (start-up, subscriptions and snapshots included); cost ratio: steady µs at each size / at {n0} symbols (goal: within 1.2); RSS/symbol: (peak RSS − peak RSS at {n0} symbols) / the symbols beyond {n0}"
    );
}
