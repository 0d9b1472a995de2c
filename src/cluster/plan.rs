//! The plan: every (venue, symbol, channel group) subscription of the config, which instance
//! or shard it belongs to (rendezvous hashing), and the feed actors that carry a set of them.
//!
//! The hash is written out here so that every build and every version agrees on it:
//! `score(key, node) = splitmix64(fnv1a64(key) XOR splitmix64(node))`, where `key` is
//! `venue \n channel-group \n symbol` (UTF-8), FNV-1a is the 64-bit variant (offset basis
//! `0xcbf29ce484222325`, prime `0x100000001b3`) and SplitMix64 is Vigna's generator step
//! (add `0x9e3779b97f4a7c15`, then the two multiply-xorshift rounds). A subscription belongs
//! to the node with the highest score (the lowest node on a tie). Going from n nodes to n+1
//! moves exactly the subscriptions whose best score is the new node's: about 1/(n+1) of them,
//! all to the new node.

use std::time::Duration;

use crate::config::{Config, FeedConfig};
use crate::venues::{self, Channel, Delivery};

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One step of SplitMix64 from state `x`.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The rendezvous score of `node` for a key whose FNV-1a hash is `key_hash`.
pub fn score(key_hash: u64, node: u32) -> u64 {
    splitmix64(key_hash ^ splitmix64(u64::from(node)))
}

/// The node of `0..nodes` that `key` belongs to (0 when `nodes` is 0).
pub fn owner(key: &str, nodes: u32) -> u32 {
    let h = fnv1a64(key.as_bytes());
    (0..nodes)
        .map(|n| (score(h, n), std::cmp::Reverse(n)))
        .max()
        .map_or(0, |(_, std::cmp::Reverse(n))| n)
}

/// One subscription: a symbol of a `[[feeds]]` entry on one of its venue's connection groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Index of its `[[feeds]]` entry.
    pub feed: usize,
    /// The venue.
    pub venue: String,
    /// The normalized symbol.
    pub symbol: String,
    /// The channel group (`Venue::connection_group`; empty for the venue's only group).
    pub group: &'static str,
    /// The symbol group (`Venue::symbol_group`).
    pub symbol_group: &'static str,
    /// The channels of the group (REST-polled ones ride with the first streamed group).
    pub channels: Vec<Channel>,
}

impl Subscription {
    /// The key the hash places: venue, channel group and symbol.
    pub fn key(&self) -> String {
        format!("{}\n{}\n{}", self.venue, self.group, self.symbol)
    }
}

/// A feed names a venue that is not registered (config validation catches it first).
#[derive(Debug, thiserror::Error)]
#[error("unknown venue {0:?}")]
pub struct UnknownVenue(pub String);

/// The channel groups of a feed entry, in config order: streamed channels by
/// `Venue::connection_group`, polled ones with the first group that streams something (a group
/// of polls alone would be a connection with nothing to subscribe).
fn channel_groups(venue: &dyn venues::Venue, f: &FeedConfig) -> Vec<(&'static str, Vec<Channel>)> {
    let mut groups: Vec<(&'static str, Vec<Channel>)> = Vec::new();
    let (streamed, polled): (Vec<Channel>, Vec<Channel>) = f
        .channels
        .iter()
        .copied()
        .partition(|c| venue.delivery(*c) == Delivery::Stream);
    for c in streamed {
        let g = venue.connection_group(c);
        match groups.iter_mut().find(|(name, _)| *name == g) {
            Some((_, cs)) => cs.push(c),
            None => groups.push((g, vec![c])),
        }
    }
    match groups.first_mut() {
        Some((_, cs)) => cs.extend(polled),
        None => groups.push(("", polled)),
    }
    groups
}

/// Every subscription of the config: feed entries in order, then channel groups, then symbols
/// in config order.
pub fn subscriptions(cfg: &Config) -> Result<Vec<Subscription>, UnknownVenue> {
    let mut out = Vec::new();
    for (i, f) in cfg.feeds.iter().enumerate() {
        let venue = venues::by_name(&f.venue).ok_or_else(|| UnknownVenue(f.venue.clone()))?;
        for (group, channels) in channel_groups(venue.as_ref(), f) {
            for s in &f.symbols {
                out.push(Subscription {
                    feed: i,
                    venue: f.venue.clone(),
                    symbol: s.clone(),
                    group,
                    symbol_group: venue.symbol_group(s),
                    channels: channels.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// One feed actor to start: one connection.
#[derive(Debug, Clone)]
pub struct FeedPlan {
    /// `venue[/group][/symbol group][symbols]`, for logs and `/status`.
    pub name: String,
    /// Its config: the entry's, with its symbols and channels.
    pub cfg: FeedConfig,
    /// How long it may stay disconnected before `/readyz` fails.
    pub budget: Duration,
}

/// The feed actors that carry `subs` (subscriptions of `cfg`, in [`subscriptions`] order): per
/// feed entry and channel group, the symbols split by symbol group (in config order) and
/// chunked by the venue's streams per connection.
pub fn feeds<'a>(
    cfg: &Config,
    subs: impl IntoIterator<Item = &'a Subscription>,
) -> Result<Vec<FeedPlan>, UnknownVenue> {
    // (feed entry, channel group) in first-seen order, with their subscriptions.
    let mut connections: Vec<((usize, &'static str), Vec<&Subscription>)> = Vec::new();
    for s in subs {
        match connections
            .iter_mut()
            .find(|(k, _)| *k == (s.feed, s.group))
        {
            Some((_, v)) => v.push(s),
            None => connections.push(((s.feed, s.group), vec![s])),
        }
    }
    let mut out = Vec::new();
    for ((feed, group), subs) in connections {
        let Some(f) = cfg.feeds.get(feed) else {
            continue;
        };
        let venue = venues::by_name(&f.venue).ok_or_else(|| UnknownVenue(f.venue.clone()))?;
        let channels = subs.first().map(|s| s.channels.clone()).unwrap_or_default();
        let streams_per_symbol = channels
            .iter()
            .filter(|c| venue.delivery(**c) == Delivery::Stream)
            .count()
            .max(1);
        let per_connection =
            (venue.limits().max_streams_per_connection / streams_per_symbol).max(1);
        // Symbols a venue serves on different endpoints (Bybit's categories) go to different
        // connections too (`Venue::symbol_group`), in config order.
        let mut by_symbol: Vec<(&str, Vec<String>)> = Vec::new();
        for s in subs {
            match by_symbol
                .iter_mut()
                .find(|(name, _)| *name == s.symbol_group)
            {
                Some((_, ss)) => ss.push(s.symbol.clone()),
                None => by_symbol.push((s.symbol_group, vec![s.symbol.clone()])),
            }
        }
        for (symbol_group, ss) in &by_symbol {
            for chunk in ss.chunks(per_connection) {
                let mut c = f.clone();
                c.symbols = chunk.to_vec();
                c.channels = channels.clone();
                let label = [group, *symbol_group]
                    .iter()
                    .filter(|g| !g.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/");
                let name = if label.is_empty() {
                    format!("{}[{}]", f.venue, c.symbols.join(","))
                } else {
                    format!("{}/{label}[{}]", f.venue, c.symbols.join(","))
                };
                out.push(FeedPlan {
                    name,
                    budget: f.stale_after + 2 * f.reconnect_max,
                    cfg: c,
                });
            }
        }
    }
    Ok(out)
}

/// The assignment `tickflow plan` prints: one line per subscription, `node venue group symbol
/// channels` separated by tabs (sorted by node, then config order), then per node a
/// `# <what> k: N subscriptions` line.
pub fn render(subs: &[Subscription], nodes: u32, what: &str) -> String {
    let mut rows: Vec<(u32, usize, &Subscription)> = subs
        .iter()
        .enumerate()
        .map(|(i, s)| (owner(&s.key(), nodes), i, s))
        .collect();
    rows.sort_by_key(|(n, i, _)| (*n, *i));
    let mut out = format!("# {what}\tvenue\tgroup\tsymbol\tchannels\n");
    for (n, _, s) in &rows {
        let channels: Vec<&str> = s.channels.iter().map(|c| c.as_str()).collect();
        let group = if s.group.is_empty() { "-" } else { s.group };
        out.push_str(&format!(
            "{n}\t{}\t{group}\t{}\t{}\n",
            s.venue,
            s.symbol,
            channels.join(",")
        ));
    }
    for n in 0..nodes {
        let count = rows.iter().filter(|(m, _, _)| *m == n).count();
        out.push_str(&format!("# {what} {n}: {count} subscriptions\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashes_are_the_published_ones() {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo): "" and "a", "foobar".
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // SplitMix64 seeded with 0: its first output (Vigna's reference, splitmix64.c).
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("binance\n\nSYM{i}-USDT")).collect()
    }

    #[test]
    fn every_key_has_exactly_one_owner_and_the_load_is_even() {
        let ks = keys(6_000);
        for nodes in [1u32, 2, 3, 5, 8] {
            let mut count = vec![0usize; nodes as usize];
            for k in &ks {
                let o = owner(k, nodes);
                assert!(o < nodes);
                count[o as usize] += 1;
            }
            assert_eq!(count.iter().sum::<usize>(), ks.len());
            let fair = ks.len() / nodes as usize;
            for c in &count {
                // Within 15 % of a fair share (binomial spread at 6 000 keys is ~2 %).
                assert!(c.abs_diff(fair) * 100 <= fair * 15, "{nodes}: {count:?}");
            }
        }
    }

    #[test]
    fn adding_a_node_moves_about_one_in_n_plus_one_and_only_to_the_new_node() {
        let ks = keys(6_000);
        for n in [1u32, 2, 3, 4, 7] {
            let mut moved = 0usize;
            for k in &ks {
                let (before, after) = (owner(k, n), owner(k, n + 1));
                if before != after {
                    assert_eq!(after, n, "a moved key goes to the new node");
                    moved += 1;
                }
            }
            let expected = ks.len() / (n as usize + 1);
            assert!(
                moved.abs_diff(expected) * 100 <= expected * 15,
                "{n}→{}: moved {moved}, expected about {expected}",
                n + 1
            );
        }
    }

    #[test]
    fn an_owner_is_stable_across_calls() {
        // Fixed by the documented hash: these never change between builds or versions.
        let k = "binance\n\nBTC-USDT";
        let o = owner(k, 3);
        assert_eq!(owner(k, 3), o);
        let h = fnv1a64(k.as_bytes());
        let want = (0..3u32).max_by_key(|n| score(h, *n)).unwrap_or(0);
        assert_eq!(o, want);
    }
}
