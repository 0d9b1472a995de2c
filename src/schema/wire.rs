//! The Confluent wire format: magic byte `0`, 4-byte big-endian schema id, the protobuf
//! message-index array, then the payload.

use thiserror::Error;

/// The Confluent magic byte.
pub const MAGIC: u8 = 0;

/// Why a framed buffer could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// Fewer than the 5 header bytes.
    #[error("frame too short: {0} bytes")]
    TooShort(usize),
    /// First byte is not the Confluent magic byte.
    #[error("bad magic byte {0:#04x}")]
    BadMagic(u8),
    /// The message-index varints are truncated or too long.
    #[error("malformed message-index array")]
    BadIndexes,
}

/// A parsed Confluent frame, borrowing its payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Registry schema id.
    pub schema_id: u32,
    /// Message indexes into the schema file (`[0]` = first message).
    pub message_indexes: Vec<i32>,
    /// The protobuf payload.
    pub payload: &'a [u8],
}

fn put_zigzag(buf: &mut Vec<u8>, v: i32) {
    let mut z = ((v << 1) ^ (v >> 31)) as u32;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

fn get_zigzag(buf: &[u8], pos: &mut usize) -> Result<i32, WireError> {
    let mut z: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *buf.get(*pos).ok_or(WireError::BadIndexes)?;
        *pos += 1;
        z |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(((z >> 1) as i32) ^ -((z & 1) as i32));
        }
    }
    Err(WireError::BadIndexes)
}

/// Writes the frame header (magic, schema id, message indexes) into `buf`.
/// `[0]` (the first message of the file) is written as the single byte `0`.
pub fn write_header(buf: &mut Vec<u8>, schema_id: u32, message_indexes: &[i32]) {
    buf.push(MAGIC);
    buf.extend_from_slice(&schema_id.to_be_bytes());
    if message_indexes == [0] {
        buf.push(0);
        return;
    }
    put_zigzag(buf, message_indexes.len() as i32);
    for &i in message_indexes {
        put_zigzag(buf, i);
    }
}

/// Frames `payload` for the first message of a schema (`[0]`).
pub fn frame(schema_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(payload.len() + 6);
    write_header(&mut buf, schema_id, &[0]);
    buf.extend_from_slice(payload);
    buf
}

/// Parses a Confluent-framed protobuf value.
pub fn parse(buf: &[u8]) -> Result<Frame<'_>, WireError> {
    if buf.len() < 6 {
        return Err(WireError::TooShort(buf.len()));
    }
    if buf[0] != MAGIC {
        return Err(WireError::BadMagic(buf[0]));
    }
    let schema_id = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let mut pos = 5;
    let count = get_zigzag(buf, &mut pos)?;
    let message_indexes = if count == 0 {
        vec![0]
    } else {
        if count < 0 || count as usize > buf.len() {
            return Err(WireError::BadIndexes);
        }
        (0..count)
            .map(|_| get_zigzag(buf, &mut pos))
            .collect::<Result<_, _>>()?
    };
    Ok(Frame {
        schema_id,
        message_indexes,
        payload: &buf[pos..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_message_is_a_single_zero_byte() {
        assert_eq!(frame(1, &[0xAA, 0xBB]), vec![0, 0, 0, 0, 1, 0, 0xAA, 0xBB]);
    }

    #[test]
    fn schema_id_is_big_endian() {
        let f = frame(0x0102_0304, &[]);
        assert_eq!(&f[..6], &[0, 1, 2, 3, 4, 0]);
    }

    #[test]
    fn nested_indexes_are_zigzag_varints() {
        let mut buf = Vec::new();
        write_header(&mut buf, 7, &[1, 0]);
        // count 2 -> 4, 1 -> 2, 0 -> 0
        assert_eq!(buf, vec![0, 0, 0, 0, 7, 4, 2, 0]);
        let mut buf = Vec::new();
        write_header(&mut buf, 7, &[70]);
        // count 1 -> 2; 70 -> 140 = 0x8c 0x01
        assert_eq!(buf, vec![0, 0, 0, 0, 7, 2, 0x8c, 0x01]);
    }

    #[test]
    fn parse_round_trips() {
        let mut buf = Vec::new();
        write_header(&mut buf, 42, &[3, 1]);
        buf.extend_from_slice(b"xyz");
        let f = parse(&buf).unwrap();
        assert_eq!(f.schema_id, 42);
        assert_eq!(f.message_indexes, vec![3, 1]);
        assert_eq!(f.payload, b"xyz");
        let framed = frame(9, b"p");
        let f = parse(&framed).unwrap();
        assert_eq!(f.message_indexes, vec![0]);
        assert_eq!(f.payload, b"p");
    }

    #[test]
    fn parse_rejects_garbage() {
        assert_eq!(parse(&[0, 0, 0]), Err(WireError::TooShort(3)));
        assert_eq!(parse(&[1, 0, 0, 0, 1, 0]), Err(WireError::BadMagic(1)));
        assert_eq!(parse(&[0, 0, 0, 0, 1, 0x80]), Err(WireError::BadIndexes));
    }
}
