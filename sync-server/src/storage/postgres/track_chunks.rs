//! Track points in PostgreSQL as chunks: a run of one collector's points in
//! time order, at most [`MAX_CHUNK_SPAN_MS`] long, in one row of
//! `track_chunks (actor, first_seq, t_first, t_last, n, points)`.
//!
//! Why: a point a row cost the database ~28 µs of CPU to insert (the heap
//! and two B-trees keyed by a 16-byte actor) and ~250 bytes with its
//! indexes — a city's hundreds of millions of points a month. A chunk holds
//! ~2,000 points in ~20 bytes each. Reading stays a range scan on
//! (actor, time): a chunk starts no earlier than `MAX_CHUNK_SPAN_MS` before
//! any point it holds, so the chunks holding [from, to] are those with
//! `t_first` in [from − span, to] on the index `(actor, t_first)`.
//!
//! The encoding is exact (every f64 bit kept) so digests match the embedded
//! backend's: per point the sequence and time as zig-zag varint
//! differences, then longitude, latitude, accuracy and speed as varints of
//! their bits XOR the previous point's (neighbouring fixes share their high
//! bits), accuracy and speed behind a presence byte.

use field_core::model::{LonLat, Timestamp, TrackPoint};
use integer_encoding::{VarInt, VarIntReader};

/// Longest time one chunk spans.
pub const MAX_CHUNK_SPAN_MS: i64 = 3_600_000;
/// Most points in one chunk.
pub const MAX_CHUNK_POINTS: usize = 4096;
const FORMAT: u8 = 1;

#[derive(Debug, thiserror::Error)]
#[error("track chunk: {0}")]
pub struct ChunkError(String);

/// One row of `track_chunks`.
#[derive(Debug, PartialEq)]
pub struct Chunk {
    pub first_seq: i64,
    pub t_first: i64,
    pub t_last: i64,
    pub n: i32,
    pub points: Vec<u8>,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// `points` (sequence, point) of one actor in chunks, time order.
pub fn chunks_of(points: &[(u64, TrackPoint)]) -> Vec<Chunk> {
    let mut sorted: Vec<&(u64, TrackPoint)> = points.iter().collect();
    sorted.sort_by_key(|(seq, p)| (p.at.millis(), *seq));
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=sorted.len() {
        let ends = i == sorted.len()
            || i - start == MAX_CHUNK_POINTS
            || sorted[i].1.at.millis() - sorted[start].1.at.millis() > MAX_CHUNK_SPAN_MS;
        if ends {
            out.push(encode(&sorted[start..i]));
            start = i;
        }
    }
    out
}

fn encode(run: &[&(u64, TrackPoint)]) -> Chunk {
    let mut b = Vec::with_capacity(1 + run.len() * 24);
    b.push(FORMAT);
    b.extend((run.len() as u64).encode_var_vec());
    let (mut seq, mut t) = (0i64, 0i64);
    let mut bits = [0u64; 4];
    for (s, p) in run {
        let (s, at) = (*s as i64, p.at.millis());
        b.extend(zigzag(s.wrapping_sub(seq)).encode_var_vec());
        b.extend(zigzag(at.wrapping_sub(t)).encode_var_vec());
        (seq, t) = (s, at);
        let present = p.accuracy_m.is_some() as u8 | (p.speed_mps.is_some() as u8) << 1;
        b.push(present);
        let values = [
            Some(p.pos.lon()),
            Some(p.pos.lat()),
            p.accuracy_m,
            p.speed_mps,
        ];
        for (held, v) in bits.iter_mut().zip(values) {
            if let Some(v) = v {
                b.extend((v.to_bits() ^ *held).encode_var_vec());
                *held = v.to_bits();
            }
        }
    }
    Chunk {
        first_seq: run.iter().map(|(s, _)| *s as i64).min().unwrap_or(0),
        t_first: run.first().map_or(0, |(_, p)| p.at.millis()),
        t_last: run.last().map_or(0, |(_, p)| p.at.millis()),
        n: run.len() as i32,
        points: b,
    }
}

/// The (sequence, point) pairs of a chunk, in time order.
pub fn decode(bytes: &[u8]) -> Result<Vec<(u64, TrackPoint)>, ChunkError> {
    let bad = |e: &dyn std::fmt::Display| ChunkError(e.to_string());
    let mut r = bytes;
    let mut format = [0u8];
    std::io::Read::read_exact(&mut r, &mut format).map_err(|e| bad(&e))?;
    if format[0] != FORMAT {
        return Err(ChunkError(format!("format {} is not known", format[0])));
    }
    let n: u64 = r.read_varint().map_err(|e| bad(&e))?;
    if n > MAX_CHUNK_POINTS as u64 {
        return Err(ChunkError(format!(
            "{n} points, at most {MAX_CHUNK_POINTS}"
        )));
    }
    let mut out = Vec::with_capacity(n as usize);
    let (mut seq, mut t) = (0i64, 0i64);
    let mut bits = [0u64; 4];
    for _ in 0..n {
        seq = seq.wrapping_add(unzigzag(r.read_varint().map_err(|e| bad(&e))?));
        t = t.wrapping_add(unzigzag(r.read_varint().map_err(|e| bad(&e))?));
        let mut present = [0u8];
        std::io::Read::read_exact(&mut r, &mut present).map_err(|e| bad(&e))?;
        let mut values = [None; 4];
        for (i, (held, v)) in bits.iter_mut().zip(values.iter_mut()).enumerate() {
            let here = i < 2 || present[0] & (1 << (i - 2)) != 0;
            if here {
                let x: u64 = r.read_varint().map_err(|e| bad(&e))?;
                *held ^= x;
                *v = Some(f64::from_bits(*held));
            }
        }
        let [Some(lon), Some(lat), accuracy, speed] = values else {
            return Err(ChunkError("a point without a position".into()));
        };
        let point = TrackPoint::new(
            Timestamp::from_millis("t", t).map_err(|e| bad(&e))?,
            LonLat::new(lon, lat).map_err(|e| bad(&e))?,
            accuracy,
            speed,
        )
        .map_err(|e| bad(&e))?;
        out.push((seq as u64, point));
    }
    if !r.is_empty() {
        return Err(ChunkError(format!(
            "{} bytes after the last point",
            r.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn point(t: i64, lon: f64, lat: f64, acc: Option<f64>, speed: Option<f64>) -> TrackPoint {
        TrackPoint::new(
            Timestamp::from_millis("t", t).unwrap(),
            LonLat::new(lon, lat).unwrap(),
            acc,
            speed,
        )
        .unwrap()
    }

    proptest! {
        #[test]
        fn every_bit_comes_back(
            raw in prop::collection::vec(
                (0u64..1_000_000, 1_600_000_000_000i64..1_700_000_000_000, -180.0f64..180.0, -90.0f64..90.0,
                 prop::option::of(0.0f64..500.0), prop::option::of(0.0f64..60.0)),
                1..300)
        ) {
            let mut seen = std::collections::HashSet::new();
            let points: Vec<(u64, TrackPoint)> = raw
                .into_iter()
                .filter(|r| seen.insert(r.0))
                .map(|(s, t, lon, lat, a, v)| (s, point(t, lon, lat, a, v)))
                .collect();
            let mut back: Vec<(u64, TrackPoint)> = chunks_of(&points)
                .iter()
                .flat_map(|c| decode(&c.points).unwrap())
                .collect();
            let mut want = points.clone();
            back.sort_by_key(|(s, _)| *s);
            want.sort_by_key(|(s, _)| *s);
            prop_assert_eq!(back.len(), want.len());
            for ((s1, p1), (s2, p2)) in back.iter().zip(&want) {
                prop_assert_eq!(s1, s2);
                prop_assert_eq!(p1.at, p2.at);
                prop_assert_eq!(p1.pos.lon().to_bits(), p2.pos.lon().to_bits());
                prop_assert_eq!(p1.pos.lat().to_bits(), p2.pos.lat().to_bits());
                prop_assert_eq!(p1.accuracy_m.map(f64::to_bits), p2.accuracy_m.map(f64::to_bits));
                prop_assert_eq!(p1.speed_mps.map(f64::to_bits), p2.speed_mps.map(f64::to_bits));
            }
        }
    }

    #[test]
    fn chunks_are_time_ordered_and_bounded_in_span_and_size() {
        // A day every 5 s, sent out of order: 13 h → at least 13 chunks.
        let mut points: Vec<(u64, TrackPoint)> = (0..9360u64)
            .map(|i| {
                (
                    i,
                    point(
                        1_700_000_000_000 + i as i64 * 5000,
                        120.2 + i as f64 * 1e-6,
                        30.2,
                        Some(5.0),
                        None,
                    ),
                )
            })
            .collect();
        points.reverse();
        let chunks = chunks_of(&points);
        assert!(chunks.len() >= 13, "{}", chunks.len());
        let mut last = i64::MIN;
        for c in &chunks {
            assert!(c.t_last - c.t_first <= MAX_CHUNK_SPAN_MS);
            assert!(c.n as usize <= MAX_CHUNK_POINTS);
            assert!(c.t_first > last);
            last = c.t_last;
            let pts = decode(&c.points).unwrap();
            assert_eq!(pts.len(), c.n as usize);
            assert!(pts.windows(2).all(|w| w[0].1.at <= w[1].1.at));
        }
        let bytes: usize = chunks.iter().map(|c| c.points.len()).sum();
        assert!(bytes < 9360 * 16, "{} bytes a point", bytes / 9360);
    }

    #[test]
    fn damaged_chunks_are_refused_not_misread() {
        let c = &chunks_of(&[(1, point(1_700_000_000_000, 120.0, 30.0, None, None))])[0];
        assert!(decode(&c.points[..c.points.len() - 1]).is_err());
        let mut longer = c.points.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut other = c.points.clone();
        other[0] = 9;
        assert!(decode(&other).is_err());
        assert!(decode(&[]).is_err());
    }
}
