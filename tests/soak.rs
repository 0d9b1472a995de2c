//! Soak: the whole pipeline (replay → feeds → books → producers → the real broker) at a fixed
//! rate for a long time, with many symbols. Every 10 s it samples this process's RSS, the
//! producer queue depths, the open venue connections and the Ack rate; after the warm-up RSS
//! stays within ±5 % of its median, the queues stay within their capacity, the rate keeps up
//! with what is sent, and nothing is nacked. It writes the samples as CSV and a PNG (RSS, queue
//! depth and rate over time).
//!
//! `make test` runs 3 minutes in a debug build; `make soak` runs 60 minutes in release and
//! writes `docs/soak.png`. `TICKFLOW_SOAK_MINUTES`, `TICKFLOW_SOAK_RATE` (frames per second,
//! default 2 000), `TICKFLOW_SOAK_SYMBOLS` (default 200) and `TICKFLOW_SOAK_PNG` (default
//! `target/soak.png`) change it. The replay server runs in this process too: its memory is the
//! recording (constant), so it moves no trend.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../benches/support/synth.rs"]
mod synth;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use plotters::prelude::*;
use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::replay::ReplayServerConfig;
use tickflow::service::Service;
use tickflow::venues::Channel;

/// One sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Seconds since the service started.
    t: f64,
    rss_mib: f64,
    queue_depth: f64,
    connections: f64,
    /// Acks per second since the previous sample.
    rate: f64,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Length of the recording, played again and again (ids and times continue across loops).
const RECORDING: Duration = Duration::from_secs(30);
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

#[actix_rt::test]
async fn rss_queues_and_rate_stay_flat_at_a_fixed_rate() {
    common::init_logs();
    let minutes: f64 = env("TICKFLOW_SOAK_MINUTES", 3.0);
    let rate: usize = env("TICKFLOW_SOAK_RATE", 2_000);
    let n: usize = env("TICKFLOW_SOAK_SYMBOLS", 200);
    let png: String = env("TICKFLOW_SOAK_PNG", "target/soak.png".to_string());
    let run_for = Duration::from_secs_f64(minutes * 60.0);
    // Warm-up: books synced, allocator and rdkafka buffers grown.
    let warm_up = Duration::from_secs(60).min(run_for / 3);

    let dir = tempfile::tempdir().unwrap();
    let symbols = synth::symbols(n);
    let per_symbol = rate * RECORDING.as_secs() as usize / n;
    let written =
        synth::binance_spot(dir.path(), &symbols, per_symbol, 1_000_000 / rate as i64).unwrap();
    let loops = (run_for.as_secs_f64() / RECORDING.as_secs_f64()).ceil() as u32 + 1;
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "binance".into(),
        fixtures: dir.path().into(),
        speed: 1.0,
        loops,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("soak");
    cfg.feeds = vec![FeedConfig {
        venue: "binance".into(),
        symbols: symbols.clone(),
        channels: vec![Channel::Depth, Channel::Trade],
        ws_url: Some(format!("ws://{}", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        symbol_source: SymbolSource::Pinned,
        rest_weight_per_minute: Some(100_000_000),
        snapshot_interval: Duration::from_millis(5),
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let capacity = cfg.producer.queue_capacity as f64;
    let per_connection = tickflow::venues::by_name("binance")
        .unwrap()
        .limits()
        .max_streams_per_connection
        / 2;
    let connections = n.div_ceil(per_connection);
    let service = Service::start(cfg).await.unwrap();
    let metrics = service.producer.metrics();
    let answered = |s: &Service| -> (u64, u64) {
        s.feeds.iter().fold((0, 0), |(a, n), f| {
            (
                a + f.stats.acked.load(Ordering::Relaxed),
                n + f.stats.nacked.load(Ordering::Relaxed),
            )
        })
    };
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let (mut last_acked, mut last_at) = (0u64, started);
    while started.elapsed() < run_for {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let (acked, nacked) = answered(&service);
        assert_eq!(nacked, 0, "records nacked");
        let now = Instant::now();
        let s = Sample {
            t: started.elapsed().as_secs_f64(),
            rss_mib: rss_mib(),
            queue_depth: metrics.sample("tickflow_queue_depth"),
            connections: metrics.sample("tickflow_feed_connected"),
            rate: (acked - last_acked) as f64 / now.duration_since(last_at).as_secs_f64(),
        };
        println!(
            "t={:>6.0}s rss={:>7.1} MiB queue={:>5} connections={} acks/s={:>7.0}",
            s.t, s.rss_mib, s.queue_depth, s.connections, s.rate
        );
        samples.push(s);
        (last_acked, last_at) = (acked, now);
    }
    service.shutdown().await;

    write_csv(&png, &samples);
    match plot(&png, &samples, rate as f64) {
        Ok(()) => println!("plot written to {png}"),
        Err(e) => println!("no plot: {e}"),
    }

    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t >= warm_up.as_secs_f64())
        .collect();
    assert!(steady.len() >= 3, "too short to judge: {samples:?}");
    let mut rss: Vec<f64> = steady.iter().map(|s| s.rss_mib).collect();
    rss.sort_by(f64::total_cmp);
    let median = rss[rss.len() / 2];
    for s in &steady {
        assert!(
            (s.rss_mib - median).abs() <= 0.05 * median,
            "RSS {:.1} MiB at {:.0} s is more than 5 % from the steady median {median:.1} MiB: {samples:?}",
            s.rss_mib,
            s.t
        );
        assert!(
            s.queue_depth <= capacity,
            "queue depth {} over its capacity {capacity}",
            s.queue_depth
        );
        // Every venue connection stays open (two streams per symbol, the venue's streams per
        // connection).
        assert_eq!(s.connections, connections as f64, "{samples:?}");
        // The service keeps up: Acks at the rate frames are sent (records per frame ≥ 1).
        assert!(
            s.rate >= 0.9 * rate as f64,
            "{:.0} acks/s at {:.0} s, below the {rate} frames/s sent",
            s.rate,
            s.t
        );
    }
    println!(
        "soak: {n} symbols, {rate} frames/s ({} diffs + {} trades per loop of {RECORDING:?}), {:.1} min; steady RSS median {median:.1} MiB, range {:.1}–{:.1}",
        written.diffs,
        written.trades,
        minutes,
        rss[0],
        rss[rss.len() - 1]
    );
}

fn write_csv(png: &str, samples: &[Sample]) {
    let mut csv = String::from("t_s,rss_mib,queue_depth,connections,acks_per_s\n");
    for s in samples {
        csv.push_str(&format!(
            "{:.1},{:.2},{},{},{:.1}\n",
            s.t, s.rss_mib, s.queue_depth, s.connections, s.rate
        ));
    }
    let path = std::path::Path::new(png).with_extension("csv");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&path, csv).unwrap();
}

/// A panel: its caption, the sampled value it draws, its colour.
type Panel = (&'static str, fn(&Sample) -> f64, RGBColor);

/// Three panels, one above the other: RSS (MiB), producer queue depth, Acks per second.
fn plot(png: &str, samples: &[Sample], rate: f64) -> Result<(), Box<dyn std::error::Error>> {
    let font = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok())
    .ok_or("no DejaVuSans.ttf font found for the labels")?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| "the font does not load")?;
    let root = BitMapBackend::new(png, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let t_max = samples.last().map_or(1.0, |s| s.t).max(1.0);
    let series: [Panel; 3] = [
        ("RSS (MiB)", |s| s.rss_mib, BLUE),
        ("producer queue depth (records)", |s| s.queue_depth, RED),
        ("Acks per second", |s| s.rate, GREEN),
    ];
    for (area, (name, value, color)) in panels.iter().zip(series) {
        let top = samples
            .iter()
            .map(value)
            .fold(if name.starts_with("Acks") { rate } else { 1.0 }, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..t_max, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(LineSeries::new(
            samples.iter().map(|s| (s.t, value(s))),
            &color,
        ))?;
    }
    root.present()?;
    Ok(())
}
