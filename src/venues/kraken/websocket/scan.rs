//! A purpose-built scanner for Kraken v1's book update frames,
//! `[channelID,{"a":[["price","volume","time"(,"r")],…]}(,{"b":[…],"c":"checksum"}),"book-N","PAIR"]`,
//! on the shared strict-JSON cursor (`venues::scan`). On anything else — a snapshot (`as`/`bs`), another
//! channel, a number where Kraken writes a string, whitespace, a key seen twice, a decimal or a
//! time the strict checks refuse — it declines (`None`) and the frame takes the `serde_json`
//! path ([`super::v1::parse_frame_general`]), which stays the authority: what the scanner
//! yields is what that path yields for the same text (`fuzz/fuzz_targets/kraken_scanner.rs`
//! checks this on arbitrary input).

use crate::book::Levels;
use crate::schema::borrowed::LevelKey;
use crate::venues::scan::{set, Cursor};

/// A v1 book update the scanner read: its levels checked and keyed for the book.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookUpdate<'a> {
    /// Venue pair (`XBT/USD`).
    pub pair: &'a str,
    /// Updated asks, payload after payload.
    pub asks: Levels,
    /// Updated bids, payload after payload.
    pub bids: Levels,
    /// The last payload's checksum.
    pub checksum: Option<u32>,
    /// The latest level time, µs (0 without levels).
    pub latest_us: i64,
}

/// Scans a whole v1 frame: a book update of channel `book` or `book-N`, or `None`.
pub fn scan_book_update(text: &str) -> Option<BookUpdate<'_>> {
    let mut c = Cursor::new(text);
    c.eat(b'[')?;
    c.int()?;
    c.eat(b',')?;
    let mut u = BookUpdate::default();
    let mut payloads = 0;
    while c.peek()? == b'{' {
        payload(&mut c, &mut u)?;
        c.eat(b',')?;
        payloads += 1;
    }
    let name = c.string()?;
    c.eat(b',')?;
    u.pair = c.string()?;
    c.eat(b']')?;
    (payloads > 0 && c.at_end() && (name == "book" || name.starts_with("book-"))).then_some(u)
}

/// One update payload: `a`, `b` and `c`, each at most once.
fn payload(c: &mut Cursor<'_>, u: &mut BookUpdate<'_>) -> Option<()> {
    let (mut asks, mut bids, mut checksum) = (None, None, None);
    c.members(|c, key| match key {
        (b'a', 0) => set(&mut asks, levels(c, &mut u.asks, &mut u.latest_us)?),
        (b'b', 0) => set(&mut bids, levels(c, &mut u.bids, &mut u.latest_us)?),
        (b'c', 0) => set(&mut checksum, c.string()?.parse::<u32>().ok()?),
        _ => None,
    })?;
    if checksum.is_some() {
        u.checksum = checksum;
    }
    Some(())
}

/// `[["price","volume","time"(,"r")],…]` appended to `into`, each decimal checked and keyed as
/// it is read; the latest level time raised into `latest`.
fn levels(c: &mut Cursor<'_>, into: &mut Levels, latest: &mut i64) -> Option<()> {
    c.eat(b'[')?;
    if c.eat(b']').is_some() {
        return Some(());
    }
    loop {
        c.eat(b'[')?;
        let (price, key, _) = c.decimal()?;
        c.eat(b',')?;
        let (quantity, _, zero) = c.decimal()?;
        c.eat(b',')?;
        *latest = (*latest).max(c.secs()?);
        // A republished level (`"r"`) carries a fourth element.
        if c.eat(b',').is_some() {
            c.string()?;
        }
        c.eat(b']')?;
        into.push_keyed(price, quantity, LevelKey { price: key, zero });
        match c.peek()? {
            b',' => c.bump(),
            b']' => {
                c.bump();
                return Some(());
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(l: &Levels) -> Vec<(&str, &str)> {
        l.iter().collect()
    }

    #[test]
    fn recorded_updates_scan_to_their_fields() {
        // Recorded (tests/fixtures/kraken/kraken_book_update.jsonl), values typed from it.
        let u = scan_book_update(r#"[992,{"b":[["354.15000000","5.00000000","1618678133.365913"]],"c":"2583817756"},"book-1000","XMR/USD"]"#).unwrap();
        assert_eq!(u.pair, "XMR/USD");
        assert_eq!(owned(&u.bids), [("354.15000000", "5.00000000")]);
        assert!(u.asks.is_empty());
        assert_eq!(u.checksum, Some(2_583_817_756));
        assert_eq!(u.latest_us, 1_618_678_133_365_913);
        // Kraken's documented two-payload update: asks in one object, bids and the checksum in
        // the next; the republished level's "r".
        let u = scan_book_update(r#"[1234,{"a":[["5541.30000","2.50700000","1534614248.456738","r"],["5542.50000","0.40100000","1534614248.456743"]]},{"b":[["5541.30000","0.00000000","1534614335.345903"]],"c":"974942666"},"book-10","XBT/USD"]"#).unwrap();
        assert_eq!(
            owned(&u.asks),
            [("5541.30000", "2.50700000"), ("5542.50000", "0.40100000")]
        );
        assert_eq!(owned(&u.bids), [("5541.30000", "0.00000000")]);
        assert_eq!(u.checksum, Some(974_942_666));
        assert_eq!(u.latest_us, 1_534_614_335_345_903);
    }

    #[test]
    fn anything_else_is_declined() {
        for text in [
            // A snapshot.
            r#"[0,{"as":[["5541.30000","2.50700000","1534614248.123678"]],"bs":[]},"book-10","XBT/USD"]"#,
            // Another channel.
            r#"[0,{"b":[["1.0","1.0","1.0"]]},"spread","XBT/USD"]"#,
            // Whitespace, a number for a decimal, a key twice, a bad checksum, a bad time.
            r#"[0, {"b":[["1.0","1.0","1.0"]]},"book-10","XBT/USD"]"#,
            r#"[0,{"b":[[1.0,"1.0","1.0"]]},"book-10","XBT/USD"]"#,
            r#"[0,{"b":[],"b":[]},"book-10","XBT/USD"]"#,
            r#"[0,{"b":[],"c":"x"},"book-10","XBT/USD"]"#,
            r#"[0,{"b":[["1.0","1.0","-1"]]},"book-10","XBT/USD"]"#,
            // A fifth element, no payload, trailing text.
            r#"[0,{"b":[["1.0","1.0","1.0","r","x"]]},"book-10","XBT/USD"]"#,
            r#"[0,"book-10","XBT/USD"]"#,
            r#"[0,{"b":[]},"book-10","XBT/USD"] "#,
        ] {
            assert_eq!(scan_book_update(text), None, "{text}");
        }
    }

    /// Every recorded v1 frame, and every recorded update with one byte removed or changed at
    /// each position, parses to the same events (or the same error) with the scanner as with
    /// `serde_json` alone; every recorded update is scanned.
    #[test]
    fn the_scanner_path_equals_the_serde_path_on_recorded_frames_and_their_mutations() {
        use crate::venues::kraken::websocket::v1::{parse_frame, parse_frame_general};
        use crate::venues::SymbolMap;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kraken/");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}{f}")).unwrap();
        let updates = read("kraken_book_update.jsonl");
        let mut frames: Vec<String> = updates.lines().map(str::to_string).collect();
        let recorded_updates = frames.len();
        for f in [
            "kraken_book_snapshot.jsonl",
            "kraken_trade.jsonl",
            "kraken_ticker.jsonl",
        ] {
            frames.extend(read(f).lines().map(str::to_string));
        }
        for line in updates.lines().step_by(97) {
            for i in 0..line.len() {
                for edit in [None, Some(b'"'), Some(b','), Some(b'9'), Some(b'.')] {
                    let mut b = line.as_bytes().to_vec();
                    match edit {
                        None => drop(b.remove(i)),
                        Some(c) => b[i] = c,
                    }
                    if let Ok(t) = String::from_utf8(b) {
                        frames.push(t);
                    }
                }
            }
        }
        let pairs: Vec<String> = frames
            .iter()
            .filter_map(|f| f.rsplit_once(",\"").map(|(_, p)| p.trim_end_matches("\"]")))
            .map(str::to_string)
            .collect();
        let map = SymbolMap::new(pairs.iter().map(|p| (p.clone(), p.replace('/', "-"))));
        let mut scanned = 0;
        for (n, text) in frames.iter().enumerate() {
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            let a = parse_frame(text, 7, &map, &mut fast);
            let b = parse_frame_general(text, 7, &map, &mut general);
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{text}");
            assert_eq!(fast, general, "{text}");
            if scan_book_update(text).is_some() {
                scanned += 1;
                // Accepted, or a pair a mutation made unknown.
                assert!(
                    a.is_ok() || matches!(a, Err(crate::venues::ParseError::UnknownSymbol(_))),
                    "{text}"
                );
            } else {
                assert!(
                    n >= recorded_updates,
                    "a recorded update was not scanned: {text}"
                );
            }
        }
        assert!(
            scanned > recorded_updates,
            "mutations the scanner still accepts were compared"
        );
    }
}
