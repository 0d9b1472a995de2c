//! `tickflow plan` and static sharding, without a broker: which instance carries each (venue,
//! symbol, channel group) subscription, checked against the documented hash written again
//! here, and the properties the assignment promises (no overlap, no hole, about 1/(n+1) moved
//! from n to n+1 instances, all to the new one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

const CONFIG: &str = r#"
[[feeds]]
venue = "binance_usdm"
symbols = ["BTC-USDT-PERP", "ETH-USDT-PERP"]
channels = ["depth", "agg_trade", "open_interest"]

[[feeds]]
venue = "kraken"
symbols = ["XMR-USD", "SC-EUR", "WAVES-EUR", "OMG-USD", "ADA-BTC", "KSM-BTC"]
channels = ["depth", "trade"]
"#;

/// The subscriptions of CONFIG, typed by hand: USD-M serves depth on `/public` and aggTrade on
/// `/market` (two channel groups); open interest is polled and rides with the first group.
const SUBSCRIPTIONS: [(&str, &str, &str, &str); 10] = [
    (
        "binance_usdm",
        "public",
        "BTC-USDT-PERP",
        "depth,open_interest",
    ),
    (
        "binance_usdm",
        "public",
        "ETH-USDT-PERP",
        "depth,open_interest",
    ),
    ("binance_usdm", "market", "BTC-USDT-PERP", "agg_trade"),
    ("binance_usdm", "market", "ETH-USDT-PERP", "agg_trade"),
    ("kraken", "-", "XMR-USD", "depth,trade"),
    ("kraken", "-", "SC-EUR", "depth,trade"),
    ("kraken", "-", "WAVES-EUR", "depth,trade"),
    ("kraken", "-", "OMG-USD", "depth,trade"),
    ("kraken", "-", "ADA-BTC", "depth,trade"),
    ("kraken", "-", "KSM-BTC", "depth,trade"),
];

/// The documented hash (docs/adr/0010-sharding.md), written again from its description.
fn owner(venue: &str, group: &str, symbol: &str, nodes: u32) -> u32 {
    let group = if group == "-" { "" } else { group };
    let key = format!("{venue}\n{group}\n{symbol}");
    let mut h: u64 = 14_695_981_039_346_656_037; // FNV-1a 64 offset basis
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(1_099_511_628_211); // FNV 64 prime
    }
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut best = (0u64, 0u32);
    for n in 0..nodes {
        let s = mix(h ^ mix(n as u64));
        if n == 0 || s > best.0 {
            best = (s, n);
        }
    }
    best.1
}

fn config_file() -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), CONFIG).unwrap();
    f
}

/// `tickflow plan` on CONFIG: (node, venue, group, symbol, channels) rows and the summary.
/// One row of `tickflow plan`: node, venue, group, symbol, channels.
type Row = (u32, String, String, String, String);

fn plan(args: &[&str]) -> (Vec<Row>, Vec<String>) {
    let f = config_file();
    let out = Command::cargo_bin("tickflow")
        .unwrap()
        .args(["plan", "--config"])
        .arg(f.path())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows = Vec::new();
    let mut summary = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            summary.push(line.to_string());
            continue;
        }
        let c: Vec<&str> = line.split('\t').collect();
        assert_eq!(c.len(), 5, "{line}");
        rows.push((
            c[0].parse().unwrap(),
            c[1].into(),
            c[2].into(),
            c[3].into(),
            c[4].into(),
        ));
    }
    (rows, summary)
}

#[test]
fn every_subscription_goes_to_exactly_one_instance_by_the_documented_hash() {
    let want: BTreeSet<(String, String, String, String)> = SUBSCRIPTIONS
        .iter()
        .map(|(v, g, s, c)| (v.to_string(), g.to_string(), s.to_string(), c.to_string()))
        .collect();
    for n in 1..=5u32 {
        let (rows, summary) = plan(&["--instances", &n.to_string()]);
        // No hole, no overlap: each subscription exactly once.
        assert_eq!(rows.len(), SUBSCRIPTIONS.len(), "{rows:?}");
        let got: BTreeSet<_> = rows
            .iter()
            .map(|(_, v, g, s, c)| (v.clone(), g.clone(), s.clone(), c.clone()))
            .collect();
        assert_eq!(got, want);
        for (node, v, g, s, _) in &rows {
            assert!(*node < n);
            assert_eq!(*node, owner(v, g, s, n), "{v} {g} {s} over {n}");
        }
        // One summary line per instance, with its count.
        assert_eq!(summary.len(), n as usize + 1, "{summary:?}");
        for k in 0..n {
            let count = rows.iter().filter(|r| r.0 == k).count();
            assert!(
                summary.contains(&format!("# instance {k}: {count} subscriptions")),
                "{summary:?}"
            );
        }
    }
}

#[test]
fn one_more_instance_moves_subscriptions_only_to_itself() {
    let node = |rows: &[Row]| -> BTreeMap<(String, String, String), u32> {
        rows.iter()
            .map(|(n, v, g, s, _)| ((v.clone(), g.clone(), s.clone()), *n))
            .collect()
    };
    for n in 1..=4u32 {
        let before = node(&plan(&["--instances", &n.to_string()]).0);
        let after = node(&plan(&["--instances", &(n + 1).to_string()]).0);
        for (k, b) in &before {
            let a = after[k];
            assert!(
                a == *b || a == n,
                "{k:?}: {b} → {a} going from {n} to {}",
                n + 1
            );
        }
    }
}

#[test]
fn shards_are_planned_like_instances() {
    let (rows, summary) = plan(&["--shards", "8"]);
    assert_eq!(rows.len(), SUBSCRIPTIONS.len());
    for (node, v, g, s, _) in &rows {
        assert_eq!(*node, owner(v, g, s, 8));
    }
    assert!(
        summary.iter().any(|l| l.starts_with("# shard 7: ")),
        "{summary:?}"
    );
}

#[test]
fn a_bad_cluster_section_is_refused_naming_its_key() {
    let cases = [
        (
            "[cluster]\ninstances = 3\ninstance = 3\n",
            "cluster.instance",
        ),
        ("[cluster]\ninstance = 1\n", "cluster.instances"),
        ("[cluster]\ninstances = 2\ngroup = \"g\"\n", "cluster.group"),
        ("[cluster]\ngroup = \"g\"\nshards = 0\n", "cluster.shards"),
    ];
    for (section, key) in cases {
        let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(f.path(), format!("{section}{CONFIG}")).unwrap();
        let out = Command::cargo_bin("tickflow")
            .unwrap()
            .arg("check-config")
            .arg(f.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{section}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("`{key}`")), "{section}: {err}");
    }
}

#[test]
fn the_feeds_of_n_instances_together_carry_every_subscription_once() {
    let cfg = tickflow::config::Config::from_toml_str(CONFIG).unwrap();
    let names = |plans: &[tickflow::cluster::plan::FeedPlan]| -> Vec<String> {
        plans.iter().map(|p| p.name.clone()).collect()
    };
    // One instance: the connections tickflow always opened for this config.
    let one = tickflow::service::instance_feeds(&cfg, 0, 1).unwrap();
    assert_eq!(
        names(&one),
        [
            "binance_usdm/public[BTC-USDT-PERP,ETH-USDT-PERP]",
            "binance_usdm/market[BTC-USDT-PERP,ETH-USDT-PERP]",
            "kraken[XMR-USD,SC-EUR,WAVES-EUR,OMG-USD,ADA-BTC,KSM-BTC]",
        ]
    );
    // (venue, channels, symbol) carried by a set of feeds, with how often.
    let carried = |plans: &[tickflow::cluster::plan::FeedPlan]| {
        let mut m: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for p in plans {
            let channels: Vec<&str> = p.cfg.channels.iter().map(|c| c.as_str()).collect();
            for s in &p.cfg.symbols {
                *m.entry((p.cfg.venue.clone(), channels.join(","), s.clone()))
                    .or_default() += 1;
            }
        }
        m
    };
    let want = carried(&one);
    assert_eq!(want.len(), SUBSCRIPTIONS.len());
    for n in 2..=4u32 {
        let mut all = Vec::new();
        for k in 0..n {
            let mine = tickflow::service::instance_feeds(&cfg, k, n).unwrap();
            // Each feed of instance k carries only subscriptions the hash gives to k.
            for p in &mine {
                let group = p
                    .name
                    .split_once('/')
                    .map_or("-", |(_, rest)| rest.split('[').next().unwrap_or("-"));
                for s in &p.cfg.symbols {
                    assert_eq!(owner(&p.cfg.venue, group, s, n), k, "{} over {n}", p.name);
                }
            }
            all.extend(mine);
        }
        assert_eq!(carried(&all), want, "over {n} instances");
    }
}
