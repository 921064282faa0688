//! The part of the city grid a collector's handset holds: the cells of their
//! beat and every cell within [`NEIGHBOURHOOD_M`] of it, so a collector who
//! steps over the beat's edge still sees the cell they stand in. A city's
//! 30,000 cells are ~9 MB of GeoJSON; a beat and its neighbours a few
//! hundred cells. Staff and collectors without cells get the whole grid.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// How far around the beat's bounding box the handset's grid reaches.
pub const NEIGHBOURHOOD_M: f64 = 500.0;

/// Metres per degree of latitude (and of longitude at the equator).
const M_PER_DEGREE: f64 = 111_320.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    west: f64,
    south: f64,
    east: f64,
    north: f64,
}

impl BBox {
    fn empty() -> BBox {
        BBox {
            west: f64::INFINITY,
            south: f64::INFINITY,
            east: f64::NEG_INFINITY,
            north: f64::NEG_INFINITY,
        }
    }

    fn is_empty(&self) -> bool {
        self.west > self.east
    }

    fn add(&mut self, lon: f64, lat: f64) {
        self.west = self.west.min(lon);
        self.east = self.east.max(lon);
        self.south = self.south.min(lat);
        self.north = self.north.max(lat);
    }

    fn union(&mut self, o: &BBox) {
        if !o.is_empty() {
            self.add(o.west, o.south);
            self.add(o.east, o.north);
        }
    }

    fn grown_by(&self, metres: f64) -> BBox {
        let dlat = metres / M_PER_DEGREE;
        let mid = ((self.south + self.north) / 2.0)
            .to_radians()
            .cos()
            .max(0.01);
        let dlon = metres / (M_PER_DEGREE * mid);
        BBox {
            west: self.west - dlon,
            south: self.south - dlat,
            east: self.east + dlon,
            north: self.north + dlat,
        }
    }

    fn meets(&self, o: &BBox) -> bool {
        self.west <= o.east && o.west <= self.east && self.south <= o.north && o.south <= self.north
    }
}

/// The bounding box of every position in a GeoJSON geometry's coordinates.
fn bbox_of(geometry: &Value) -> BBox {
    fn walk(v: &Value, b: &mut BBox) {
        if let Some(a) = v.as_array() {
            match (
                a.first().and_then(Value::as_f64),
                a.get(1).and_then(Value::as_f64),
            ) {
                (Some(lon), Some(lat)) => b.add(lon, lat),
                _ => a.iter().for_each(|x| walk(x, b)),
            }
        }
    }
    let mut b = BBox::empty();
    walk(&geometry["coordinates"], &mut b);
    b
}

fn code_of(feature: &Value) -> Option<&str> {
    feature["properties"]["code"].as_str()
}

/// The version a handset holding `cells`' share of grid `version` holds:
/// another beat, or another grid, is another version.
pub fn version_for(version: &str, cells: &[String]) -> String {
    let mut sorted: Vec<&str> = cells.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut h = Sha256::new();
    for c in sorted {
        h.update(c.as_bytes());
        h.update([0]);
    }
    format!("{version}-{}", &hex::encode(h.finalize())[..8])
}

/// Each feature's bounding box, in the grid's order, for one grid version:
/// computed once per version and instance, not on every handset's pull.
#[derive(Default)]
pub struct BoxCache(std::sync::Mutex<Option<(String, std::sync::Arc<Vec<BBox>>)>>);

impl BoxCache {
    fn boxes(&self, version: &str, grid: &Value) -> std::sync::Arc<Vec<BBox>> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_ref() {
            Some((v, boxes)) if v == version => boxes.clone(),
            _ => {
                let boxes: std::sync::Arc<Vec<BBox>> = std::sync::Arc::new(
                    grid["features"]
                        .as_array()
                        .map(|fs| fs.iter().map(|f| bbox_of(&f["geometry"])).collect())
                        .unwrap_or_default(),
                );
                *held = Some((version.to_string(), boxes.clone()));
                boxes
            }
        }
    }
}

/// The features of `grid` (of `version`) within [`NEIGHBOURHOOD_M`] of
/// `cells`, as a FeatureCollection. None when none of `cells` is in the
/// grid (the caller sends the whole grid then).
pub fn share_of(cache: &BoxCache, version: &str, grid: &Value, cells: &[String]) -> Option<Value> {
    let features = grid["features"].as_array()?;
    let boxes = cache.boxes(version, grid);
    let mine: std::collections::HashSet<&str> = cells.iter().map(String::as_str).collect();
    let mut beat = BBox::empty();
    for (f, b) in features.iter().zip(boxes.iter()) {
        if code_of(f).is_some_and(|c| mine.contains(c)) {
            beat.union(b);
        }
    }
    if beat.is_empty() {
        return None;
    }
    let reach = beat.grown_by(NEIGHBOURHOOD_M);
    let kept: Vec<Value> = features
        .iter()
        .zip(boxes.iter())
        .filter(|(_, b)| !b.is_empty() && reach.meets(b))
        .map(|(f, _)| f.clone())
        .collect();
    Some(serde_json::json!({ "type": "FeatureCollection", "features": kept }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of `n` square cells 100 m wide at the equator, codes c0…c(n-1).
    fn row(n: usize) -> Value {
        let w = 100.0 / M_PER_DEGREE;
        let features: Vec<Value> = (0..n)
            .map(|i| {
                let x = i as f64 * w;
                serde_json::json!({
                    "type": "Feature",
                    "properties": { "code": format!("c{i}") },
                    "geometry": { "type": "Polygon", "coordinates": [[[x, 0.0], [x + w, 0.0], [x + w, w], [x, w], [x, 0.0]]] },
                })
            })
            .collect();
        serde_json::json!({ "type": "FeatureCollection", "features": features })
    }

    fn codes(v: &Value) -> Vec<String> {
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| code_of(f).unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_beat_gets_its_cells_and_the_neighbours_within_reach() {
        let grid = row(40);
        let share = share_of(&BoxCache::default(), "v", &grid, &["c20".into()]).unwrap();
        // 500 m either side of a 100 m cell: five neighbours each way, the
        // sixth touching the edge of reach.
        let got = codes(&share);
        assert!(got.contains(&"c20".to_string()));
        assert!(got.contains(&"c15".to_string()) && got.contains(&"c25".to_string()));
        assert!(!got.contains(&"c10".to_string()) && !got.contains(&"c30".to_string()));
        assert!(got.len() < 14, "{got:?}");
    }

    #[test]
    fn no_known_cell_means_no_share() {
        let cache = BoxCache::default();
        assert!(share_of(&cache, "v", &row(3), &["elsewhere".into()]).is_none());
        assert!(share_of(&cache, "v", &row(3), &[]).is_none());
    }

    #[test]
    fn the_version_follows_grid_and_beat_not_order() {
        let a = version_for("g1", &["b".into(), "a".into()]);
        assert_eq!(a, version_for("g1", &["a".into(), "b".into()]));
        assert_ne!(a, version_for("g2", &["a".into(), "b".into()]));
        assert_ne!(a, version_for("g1", &["a".into()]));
    }
}
