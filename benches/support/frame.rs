//! What the producer does with each record a bench makes, measured with it: the Confluent
//! header, then the record's protobuf bytes. Shared by the per-venue benches.
#![allow(dead_code)]

use criterion::black_box;
use tickflow::producer::{Payload, ProduceEvent};
use tickflow::schema::wire;
use tickflow::venues::VenueEvent;

/// Frames every record in `out` (trades, tickers: encoded or typed), draining it.
pub fn events(out: &mut Vec<VenueEvent>, buf: &mut Vec<u8>) {
    for ev in out.drain(..) {
        buf.clear();
        wire::write_header(buf, 1, &[0]);
        match ev {
            VenueEvent::Encoded(e) => buf.extend_from_slice(&e.bytes),
            VenueEvent::Record(r) => r.encode_into(buf),
            other => panic!("not a record: {other:?}"),
        }
        black_box(buf.len());
    }
}

/// Frames every record a book keeper gave (deltas, full books, feed events).
pub fn records(records: Vec<ProduceEvent>, buf: &mut Vec<u8>) {
    for r in records {
        buf.clear();
        wire::write_header(buf, 1, &[0]);
        match r.payload {
            Payload::Normalized(e) => buf.extend_from_slice(&e.bytes),
            Payload::Typed(n) => n.encode_into(buf),
            Payload::Encoded { .. } => panic!("not a book record"),
        }
        black_box(buf.len());
    }
}
