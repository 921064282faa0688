//! Generated cities and patrol days for the demo and the benchmarks:
//! a rectangular grid of ~100 m cells with realistic codes and zone colours,
//! walks along the streets between cells, and real PNG photos.

use field_core::model::{LonLat, Timestamp, TrackPoint};
use serde_json::json;

/// Metres per degree of latitude (WGS84 mean, good to 0.5% for sizing).
const M_PER_DEG_LAT: f64 = 111_320.0;

/// A rectangular grid anchored at its north-west corner.
#[derive(Clone, Copy, Debug)]
pub struct GridSpec {
    pub west: f64,
    pub north: f64,
    pub rows: usize,
    pub cols: usize,
    pub cell_m: f64,
}

impl GridSpec {
    /// An 8×8 grid of 100 m cells in Xiaoshan, Hangzhou.
    pub fn demo() -> GridSpec {
        GridSpec {
            west: 120.2600,
            north: 30.1880,
            rows: 8,
            cols: 8,
            cell_m: 100.0,
        }
    }

    pub fn dlat(&self) -> f64 {
        self.cell_m / M_PER_DEG_LAT
    }

    pub fn dlon(&self) -> f64 {
        self.cell_m / (M_PER_DEG_LAT * self.north.to_radians().cos())
    }

    /// Intersection (row line r, column line c) of the street grid.
    pub fn node(&self, r: usize, c: usize) -> (f64, f64) {
        (
            self.west + c as f64 * self.dlon(),
            self.north - r as f64 * self.dlat(),
        )
    }

    /// 15-digit code: county 330109 (Xiaoshan), street 001, community 001
    /// then (for large grids) more communities, serial west→east, north→south.
    pub fn code(&self, r: usize, c: usize) -> String {
        let n = r * self.cols + c;
        format!("330109001{:03}{:03}", n / 999 + 1, n % 999 + 1)
    }

    /// Red along the main street (middle row and column), yellow beside it, blue elsewhere.
    pub fn zone(&self, r: usize, c: usize) -> &'static str {
        let (mr, mc) = (self.rows / 2, self.cols / 2);
        let d = r.abs_diff(mr).min(c.abs_diff(mc));
        match d {
            0 => "red",
            1 => "yellow",
            _ => "blue",
        }
    }

    pub fn to_geojson(self) -> String {
        let mut features = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            for c in 0..self.cols {
                let (x0, y0) = self.node(r, c);
                let (x1, y1) = self.node(r + 1, c + 1);
                features.push(json!({
                    "type": "Feature",
                    "properties": { "code": self.code(r, c), "zone": self.zone(r, c), "name": format!("R{}C{}", r + 1, c + 1) },
                    "geometry": { "type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] }
                }));
            }
        }
        json!({ "type": "FeatureCollection", "features": features }).to_string()
    }
}

/// A collector walking the streets between cells at about 1.2 m/s, one fix
/// every `every_s` seconds, with GPS noise; about one fix in 200 is a bad
/// one (80 m accuracy) as under tall buildings.
pub fn patrol_walk(
    grid: &GridSpec,
    from: Timestamp,
    to: Timestamp,
    every_s: i64,
    rng: &mut fastrand::Rng,
) -> Vec<TrackPoint> {
    let (mut r, mut c) = (rng.usize(0..=grid.rows), rng.usize(0..=grid.cols));
    let (mut x, mut y) = grid.node(r, c);
    let (mut tx, mut ty) = (x, y);
    let step_m = 1.2 * every_s as f64;
    let mut out = Vec::new();
    let mut t = from.millis();
    while t <= to.millis() {
        let (dx_m, dy_m) = (
            (tx - x) * grid.dlon().recip() * grid.cell_m,
            (ty - y) * grid.dlat().recip() * grid.cell_m,
        );
        let dist = (dx_m * dx_m + dy_m * dy_m).sqrt();
        if dist < step_m {
            (x, y) = (tx, ty);
            // Next intersection: one street segment in a random direction.
            let moves = [(0i64, 1i64), (0, -1), (1, 0), (-1, 0)];
            loop {
                let (dr, dc) = moves[rng.usize(0..4)];
                let (nr, nc) = (r as i64 + dr, c as i64 + dc);
                if (0..=grid.rows as i64).contains(&nr) && (0..=grid.cols as i64).contains(&nc) {
                    (r, c) = (nr as usize, nc as usize);
                    break;
                }
            }
            (tx, ty) = grid.node(r, c);
        } else {
            x += (tx - x) * step_m / dist;
            y += (ty - y) * step_m / dist;
        }
        let bad = rng.usize(0..200) == 0;
        let accuracy = if bad { 80.0 } else { 3.0 + rng.f64() * 9.0 };
        let noise_m = accuracy.min(10.0) * 0.3;
        let nx = x + (rng.f64() - 0.5) * noise_m / (M_PER_DEG_LAT * grid.north.to_radians().cos());
        let ny = y + (rng.f64() - 0.5) * noise_m / M_PER_DEG_LAT;
        if let (Ok(at), Ok(pos)) = (Timestamp::from_millis("at", t), LonLat::new(nx, ny))
            && let Ok(p) =
                TrackPoint::new(at, pos, Some((accuracy * 10.0).round() / 10.0), Some(1.2))
        {
            out.push(p);
        }
        t += every_s * 1000;
    }
    out
}

/// A small real PNG (a gradient with a seed-dependent colour): distinct
/// seeds give distinct bytes and hashes.
pub fn photo(seed: u64) -> Vec<u8> {
    let (w, h) = (64u32, 48u32);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            data.push((x * 4) as u8 ^ (seed as u8));
            data.push((y * 5) as u8 ^ ((seed >> 8) as u8));
            data.push((seed.wrapping_mul(2_654_435_761) >> 16) as u8);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("in-memory PNG header");
        writer.write_image_data(&data).expect("in-memory PNG data");
    }
    out
}

/// A photo-sized PNG of noise (incompressible, like a JPEG's entropy):
/// `side`×`side` RGB, about 3·side² bytes.
pub fn noise_photo(seed: u64, side: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let data: Vec<u8> = (0..side * side * 3).map(|_| rng.u8(..)).collect();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("in-memory PNG header");
        writer.write_image_data(&data).expect("in-memory PNG data");
    }
    out
}
