//! The compact binary form of a track batch, as it travels in the sync
//! protocol (version 2 and later) and in bundles: about 3–4 bytes a point
//! for a walk sampled every 5 s, against ~21 for the columnar JSON form.
//!
//! Packed form, version 1 (`PACKED_V1`), written as base64 in the change's
//! JSON under `packed`:
//!
//! ```text
//! byte 0      format version (1)
//! bytes 1…    raw DEFLATE of:
//!               varint  n               number of points
//!               zigzag  t0_ms
//!               n × zigzag  Δ dt_ms     (each dt minus the one before, the first minus 0:
//!                                        second differences of time)
//!               n × zigzag  Δ dlon_e7   (likewise: second differences of position)
//!               n × zigzag  Δ dlat_e7
//!               n × zigzag  Δ acc_dm    (first differences of the value; -1 = unknown)
//!               n × zigzag  Δ speed_cms
//! ```
//!
//! Varints are LEB128 (`integer-encoding`), signed ones zig-zag encoded.
//! Differences wrap in two's complement, so every batch — even a hostile
//! one — packs and unpacks to exactly itself; the points' validity is
//! checked afterwards by [`TrackBatch::decode`](super::TrackBatch::decode),
//! as for the JSON form. Walking at a steady pace makes the second
//! differences of time and position small, which is most of the gain; the
//! compressor takes the repeats.
//!
//! Pure: no I/O but in-memory buffers.

use std::io::Read;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use integer_encoding::{VarIntReader, VarIntWriter};

use super::change::MAX_POINTS_PER_CHANGE;
use crate::error::{Error, Result, invalid};

/// The packed format this build writes and the only one it reads.
pub const PACKED_V1: u8 = 1;

/// The columns of a batch, borrowed for packing.
pub struct Columns<'a> {
    pub t0_ms: i64,
    pub dt_ms: &'a [i64],
    pub dlon_e7: &'a [i64],
    pub dlat_e7: &'a [i64],
    pub acc_dm: &'a [i64],
    pub speed_cms: &'a [i64],
}

/// The columns of a batch, as unpacked: t0_ms, then dt_ms, dlon_e7,
/// dlat_e7, acc_dm, speed_cms (the order [`Columns`] names them).
pub type Unpacked = (i64, [Vec<i64>; 5]);

/// The most bytes a packed batch inflates to: a varint is at most 10
/// bytes, so a bomb is cut off here whatever it claims.
const MAX_INFLATED: u64 = (MAX_POINTS_PER_CHANGE as u64 * 5 + 2) * 10;

const FIELD: &str = "track.packed";

/// Packs a batch's columns. They must be of equal length (checked by the
/// caller: a batch with ragged columns is refused before it is packed).
pub fn pack(c: &Columns<'_>) -> Vec<u8> {
    let n = c.dt_ms.len();
    // The varints first, then one pass of the compressor (fed byte by byte
    // it costs a hundred times more).
    let mut raw = Vec::with_capacity(n * 8 + 16);
    // Writing into a Vec cannot fail.
    let mut put = |v: i64| {
        let _ = raw.write_varint(v);
    };
    // n is written as a signed varint too: one code path, same size for
    // batch sizes below 64.
    put(n as i64);
    put(c.t0_ms);
    // Every column as differences from the value before: the time and
    // position columns already hold deltas, so these are their second
    // differences; accuracy and speed hold values, so their first.
    for col in [c.dt_ms, c.dlon_e7, c.dlat_e7, c.acc_dm, c.speed_cms] {
        let mut prev = 0i64;
        for &v in col {
            put(v.wrapping_sub(prev));
            prev = v;
        }
    }
    let mut z = DeflateEncoder::new(vec![PACKED_V1], Compression::default());
    let _ = std::io::Write::write_all(&mut z, &raw);
    z.finish().unwrap_or_else(|_| vec![PACKED_V1])
}

/// Unpacks what [`pack`] wrote; errors name `track.packed` and the reason.
pub fn unpack(bytes: &[u8]) -> Result<Unpacked> {
    let (&version, body) = bytes.split_first().ok_or_else(|| invalid(FIELD, "empty"))?;
    if version != PACKED_V1 {
        return Err(invalid(
            FIELD,
            format!("format {version} is not one this build reads (it reads {PACKED_V1})"),
        ));
    }
    let mut r = DeflateDecoder::new(body).take(MAX_INFLATED + 1);
    let mut inflated = Vec::new();
    r.read_to_end(&mut inflated)
        .map_err(|e| invalid(FIELD, format!("not a DEFLATE stream: {e}")))?;
    if inflated.len() as u64 > MAX_INFLATED {
        return Err(invalid(FIELD, "inflates past the largest batch"));
    }
    let mut cur = std::io::Cursor::new(inflated.as_slice());
    let mut get = |what: &str| -> Result<i64> {
        cur.read_varint::<i64>()
            .map_err(|_| invalid(FIELD, format!("ends inside {what}")))
    };
    let n = get("the point count")?;
    if n < 0 || n as usize > MAX_POINTS_PER_CHANGE {
        return Err(invalid(
            FIELD,
            format!("{n} points in one batch (max {MAX_POINTS_PER_CHANGE})"),
        ));
    }
    let n = n as usize;
    let t0_ms = get("t0_ms")?;
    let mut columns: [Vec<i64>; 5] = Default::default();
    for (col, name) in
        columns
            .iter_mut()
            .zip(["dt_ms", "dlon_e7", "dlat_e7", "acc_dm", "speed_cms"])
    {
        col.reserve(n);
        let mut prev = 0i64;
        for _ in 0..n {
            let v = prev.wrapping_add(get(name)?);
            col.push(v);
            prev = v;
        }
    }
    if (cur.position() as usize) < cur.get_ref().len() {
        return Err(invalid(FIELD, "bytes after the last point"));
    }
    Ok((t0_ms, columns))
}

/// Base64 (standard alphabet, padded) of a packed batch, as JSON carries it.
pub fn to_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn from_base64(text: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| -> Error { invalid(FIELD, format!("not base64: {e}")) })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;
    use crate::crdt::{TrackBatch, TrackWire};
    use crate::model::{LonLat, Timestamp, TrackPoint};

    /// A walker at a steady pace along streets, turning now and then, with
    /// GPS noise of about a metre; accuracy and speed drift as a phone
    /// reports them.
    fn walk(n: usize, seed: u64) -> Vec<TrackPoint> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut lon, mut lat) = (120.26, 30.18);
        let (mut hx, mut hy) = (1.0, 0.0);
        let (mut acc, mut speed) = (5.0f64, 1.2f64);
        (0..n)
            .map(|i| {
                if rng.u8(0..50) == 0 {
                    (hx, hy) = [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)][rng.usize(0..4)];
                }
                lon += hx * 6.0 / 96_000.0;
                lat += hy * 6.0 / 111_000.0;
                if rng.u8(0..10) == 0 {
                    acc = (acc + [-0.5, 0.5][rng.usize(0..2)]).clamp(2.0, 15.0);
                }
                if rng.u8(0..5) == 0 {
                    speed = (speed + [-0.1, 0.1][rng.usize(0..2)]).clamp(0.0, 2.5);
                }
                TrackPoint::new(
                    Timestamp::from_millis("at", 1_764_000_000_000 + 5_000 * i as i64).unwrap(),
                    LonLat::new(
                        lon + (rng.f64() - 0.5) * 0.00002,
                        lat + (rng.f64() - 0.5) * 0.00002,
                    )
                    .unwrap(),
                    Some(acc),
                    Some(speed),
                )
                .unwrap()
            })
            .collect()
    }

    /// The packed form of three points, byte for byte. If this changes,
    /// the format changed: give it a new version byte and keep reading 1.
    #[test]
    fn golden_vector_v1() {
        let b = TrackBatch {
            first_seq: 7,
            t0_ms: 1_764_000_000_000,
            dt_ms: vec![0, 5_000, 5_000],
            dlon_e7: vec![1_202_612_345, 500, 510],
            dlat_e7: vec![301_801_234, -300, -290],
            acc_dm: vec![40, 40, -1],
            speed_cms: vec![120, 130, -1],
            wire: TrackWire::Packed,
        };
        let packed = pack(&b.columns_for_test());
        // DEFLATE stores so short an input: the varints can be read in it
        // (06 = 3 points, 80 a0 bf e9 d6 66 = t0, 00 90 4e 00 = Δdt …).
        let golden = "AQEpANb/BoCgv+nWZgCQTgDyofP6CIma8/oIFKT86J8C+4DpnwIUUABR8AEUhQI=";
        assert_eq!(to_base64(&packed), golden);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, format!(r#"{{"first_seq":7,"packed":"{golden}"}}"#));
        let back: TrackBatch = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.dt_ms, b.dt_ms);
    }

    #[test]
    fn a_five_second_walk_costs_at_most_six_bytes_a_point() {
        let points = walk(2000, 1);
        let b = TrackBatch::encode(1, &points);
        let json = serde_json::to_string(&b).unwrap();
        let per_point = json.len() as f64 / points.len() as f64;
        eprintln!("packed: {per_point:.2} B/point");
        assert!(per_point <= 6.0, "{per_point:.2} B/point");
        let columnar = serde_json::to_string(&b.clone().written_as(TrackWire::Columnar)).unwrap();
        assert!(
            json.len() * 3 < columnar.len(),
            "{} vs {}",
            json.len(),
            columnar.len()
        );
    }

    #[test]
    fn hostile_packed_forms_are_refused_by_name() {
        let refuse = |bytes: &[u8], why: &str| {
            let e = unpack(bytes).unwrap_err().to_string();
            assert!(e.contains("track.packed") && e.contains(why), "{e}");
        };
        refuse(&[], "empty");
        refuse(&[9, 1, 2], "format 9");
        refuse(&[PACKED_V1, 0xff, 0xff], "DEFLATE");
        // A batch claiming more points than a change may carry.
        let mut z = DeflateEncoder::new(vec![PACKED_V1], Compression::fast());
        z.write_varint(5_000i64).unwrap();
        refuse(&z.finish().unwrap(), "5000 points");
        // A bomb: a megabyte of zeros squeezed into a kilobyte.
        let mut z = DeflateEncoder::new(vec![PACKED_V1], Compression::best());
        z.write_all(&vec![0u8; 1 << 20]).unwrap();
        refuse(&z.finish().unwrap(), "inflates past");
        // Cut short, and too long.
        let good = pack(&TrackBatch::encode(1, &walk(10, 2)).columns_for_test());
        let (t0_ms, _) = unpack(&good).unwrap();
        let mut z = DeflateEncoder::new(vec![PACKED_V1], Compression::fast());
        z.write_varint(10i64).unwrap();
        z.write_varint(t0_ms).unwrap();
        refuse(&z.finish().unwrap(), "ends inside dt_ms");
        let mut inflated = Vec::new();
        DeflateDecoder::new(&good[1..])
            .read_to_end(&mut inflated)
            .unwrap();
        inflated.push(0);
        let mut z = DeflateEncoder::new(vec![PACKED_V1], Compression::fast());
        z.write_all(&inflated).unwrap();
        refuse(&z.finish().unwrap(), "after the last point");
        // In JSON: both forms at once, neither, bad base64.
        for text in [
            r#"{"first_seq":1,"packed":"AQ==","t0_ms":1}"#,
            r#"{"first_seq":1}"#,
            r#"{"first_seq":1,"packed":"***"}"#,
            r#"{"first_seq":1,"t0_ms":0,"dt_ms":[0],"dlon_e7":[],"dlat_e7":[0],"acc_dm":[0],"speed_cms":[0]}"#,
        ] {
            assert!(serde_json::from_str::<TrackBatch>(text).is_err(), "{text}");
        }
    }

    proptest! {
        /// Any columns, however hostile, pack and unpack to themselves, and
        /// the packed JSON reads back equal to the columnar JSON.
        #[test]
        fn packed_round_trips_against_the_json_form(
            t0 in any::<i64>(),
            rows in prop::collection::vec(any::<(i64, i64, i64, i64, i64)>(), 0..60),
            seq in any::<u64>(),
        ) {
            let b = TrackBatch {
                first_seq: seq,
                t0_ms: t0,
                dt_ms: rows.iter().map(|r| r.0).collect(),
                dlon_e7: rows.iter().map(|r| r.1).collect(),
                dlat_e7: rows.iter().map(|r| r.2).collect(),
                acc_dm: rows.iter().map(|r| r.3).collect(),
                speed_cms: rows.iter().map(|r| r.4).collect(),
                wire: TrackWire::Packed,
            };
            let packed: TrackBatch = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
            let columnar = b.clone().written_as(TrackWire::Columnar);
            let old: TrackBatch = serde_json::from_str(&serde_json::to_string(&columnar).unwrap()).unwrap();
            prop_assert_eq!(&packed, &b);
            prop_assert_eq!(&old, &b);
            prop_assert_eq!(packed.wire, TrackWire::Packed);
            prop_assert_eq!(old.wire, TrackWire::Columnar);
        }

        /// Real walks: the points decoded from the packed form are the
        /// points decoded from the columnar one.
        #[test]
        fn walks_decode_to_the_same_points(n in 1usize..400, seed in any::<u64>()) {
            let b = TrackBatch::encode(3, &walk(n, seed));
            let packed: TrackBatch = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
            let old: TrackBatch = serde_json::from_str(
                &serde_json::to_string(&b.clone().written_as(TrackWire::Columnar)).unwrap(),
            ).unwrap();
            prop_assert_eq!(packed.decode().unwrap(), old.decode().unwrap());
        }
    }
}
