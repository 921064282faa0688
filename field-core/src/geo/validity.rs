//! Whether a cell's polygons are valid, in O(n log n): every ring's segments
//! go into an R-tree and only segments whose boxes meet are compared. (geo's
//! own `Validation` compares every pair of segments: 40,000 vertices took
//! half a minute; a detailed city would stall the server.)
//!
//! Checked: finite coordinates; rings of at least three distinct points; no
//! ring crossing or touching itself (beyond the shared vertex of neighbouring
//! segments); rings of one polygon not crossing each other; every hole inside
//! its exterior.

use geo::line_intersection::{LineIntersection, line_intersection};
use geo::{Contains, Coord, Line, MultiPolygon, Polygon};
use rstar::{RTree, primitives::GeomWithData, primitives::Rectangle};

/// A segment: (polygon, ring, index within the ring).
type Seg = GeomWithData<Rectangle<[f64; 2]>, (usize, usize, usize)>;

/// Why a cell's geometry is invalid, in words a GIS person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

fn rings(p: &Polygon<f64>) -> impl Iterator<Item = &geo::LineString<f64>> {
    std::iter::once(p.exterior()).chain(p.interiors())
}

/// Checks one cell's geometry; `check` is polled between segments and may
/// stop the work (a deadline) by answering `false`.
pub fn check_geometry(
    mp: &MultiPolygon<f64>,
    check: &mut dyn FnMut() -> bool,
) -> Result<(), Invalid> {
    let mut segments = Vec::new();
    let mut lines: Vec<Vec<Vec<Line<f64>>>> = Vec::new();
    for (pi, p) in mp.0.iter().enumerate() {
        let mut per_ring = Vec::new();
        for (ri, ring) in rings(p).enumerate() {
            if ring.0.iter().any(|c| !c.x.is_finite() || !c.y.is_finite()) {
                return Err(Invalid(format!(
                    "polygon {pi} ring {ri} has a coordinate that is not a finite number"
                )));
            }
            let mut distinct: Vec<(u64, u64)> = ring
                .0
                .iter()
                .map(|c| (c.x.to_bits(), c.y.to_bits()))
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() < 3 {
                return Err(Invalid(format!(
                    "polygon {pi} ring {ri} has fewer than 3 distinct points"
                )));
            }
            // Repeated consecutive points are allowed; they make no segment.
            let segs: Vec<Line<f64>> = ring.lines().filter(|l| l.start != l.end).collect();
            for (si, l) in segs.iter().enumerate() {
                let rect = Rectangle::from_corners(
                    [l.start.x.min(l.end.x), l.start.y.min(l.end.y)],
                    [l.start.x.max(l.end.x), l.start.y.max(l.end.y)],
                );
                segments.push(GeomWithData::new(rect, (pi, ri, si)));
            }
            per_ring.push(segs);
        }
        lines.push(per_ring);
    }
    let tree: RTree<Seg> = RTree::bulk_load(segments);
    for (n, (a, b)) in tree
        .intersection_candidates_with_other_tree(&tree)
        .enumerate()
    {
        if n % 4096 == 0 && !check() {
            return Err(Invalid("the check ran out of time".into()));
        }
        let (ka, kb) = (a.data, b.data);
        if ka >= kb || ka.0 != kb.0 {
            // Each pair once; parts of a multipolygon are compared by the
            // overlap check like separate cells.
            continue;
        }
        let (la, lb) = (lines[ka.0][ka.1][ka.2], lines[kb.0][kb.1][kb.2]);
        let Some(hit) = line_intersection(la, lb) else {
            continue;
        };
        if ka.1 == kb.1 {
            let len = lines[ka.0][ka.1].len();
            let neighbours = kb.2 == ka.2 + 1 || (ka.2 == 0 && kb.2 == len - 1);
            if neighbours && let LineIntersection::SinglePoint { intersection, .. } = hit {
                let shared = if kb.2 == ka.2 + 1 { la.end } else { la.start };
                if same(intersection, shared) {
                    continue;
                }
            }
            return Err(Invalid(format!(
                "polygon {} ring {} intersects itself near ({:.7}, {:.7})",
                ka.0,
                ka.1,
                point(&hit).x,
                point(&hit).y
            )));
        }
        return Err(Invalid(format!(
            "polygon {} rings {} and {} cross near ({:.7}, {:.7})",
            ka.0,
            ka.1,
            kb.1,
            point(&hit).x,
            point(&hit).y
        )));
    }
    for (pi, p) in mp.0.iter().enumerate() {
        let outer = Polygon::new(p.exterior().clone(), vec![]);
        for (hi, hole) in p.interiors().iter().enumerate() {
            if let Some(c) = hole.0.first()
                && !outer.contains(&geo::Point::from(*c))
            {
                return Err(Invalid(format!(
                    "polygon {pi} hole {hi} lies outside its exterior"
                )));
            }
        }
    }
    Ok(())
}

fn same(a: Coord<f64>, b: Coord<f64>) -> bool {
    (a.x - b.x).abs() <= 1e-12 && (a.y - b.y).abs() <= 1e-12
}

fn point(hit: &LineIntersection<f64>) -> Coord<f64> {
    match hit {
        LineIntersection::SinglePoint { intersection, .. } => *intersection,
        LineIntersection::Collinear { intersection } => intersection.start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, polygon};

    fn ok(mp: &MultiPolygon<f64>) -> Result<(), Invalid> {
        check_geometry(mp, &mut || true)
    }

    #[test]
    fn squares_and_holes_are_valid_bowties_and_stray_holes_are_not() {
        let square =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0)];
        assert!(ok(&MultiPolygon(vec![square.clone()])).is_ok());
        let with_hole = Polygon::new(
            square.exterior().clone(),
            vec![LineString::from(vec![
                (0.2, 0.2),
                (0.4, 0.2),
                (0.4, 0.4),
                (0.2, 0.2),
            ])],
        );
        assert!(ok(&MultiPolygon(vec![with_hole])).is_ok());
        let bowtie =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 1.0, y: 0.0), (x: 0.0, y: 1.0)];
        let e = ok(&MultiPolygon(vec![bowtie])).unwrap_err();
        assert!(e.0.contains("intersects itself"), "{e:?}");
        let stray = Polygon::new(
            square.exterior().clone(),
            vec![LineString::from(vec![
                (2.0, 2.0),
                (3.0, 2.0),
                (3.0, 3.0),
                (2.0, 2.0),
            ])],
        );
        assert!(
            ok(&MultiPolygon(vec![stray]))
                .unwrap_err()
                .0
                .contains("outside")
        );
        let crossing = Polygon::new(
            square.exterior().clone(),
            vec![LineString::from(vec![
                (0.5, 0.5),
                (1.5, 0.5),
                (0.5, 0.7),
                (0.5, 0.5),
            ])],
        );
        assert!(
            ok(&MultiPolygon(vec![crossing]))
                .unwrap_err()
                .0
                .contains("cross")
        );
        let spike = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 2.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0)];
        assert!(ok(&MultiPolygon(vec![spike])).is_err());
    }

    #[test]
    /// Whatever geo's quadratic check refuses, ours refuses too (ours is
    /// stricter on zero-width spikes, which geo lets through).
    fn refuses_whatever_geo_refuses_on_random_polygons() {
        use geo::Validation;
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            let n = rng.usize(3..8);
            let pts: Vec<(f64, f64)> = (0..n)
                .map(|_| (rng.u8(0..6) as f64, rng.u8(0..6) as f64))
                .collect();
            let p = Polygon::new(LineString::from(pts), vec![]);
            let mp = MultiPolygon(vec![p]);
            if !mp.is_valid() {
                assert!(ok(&mp).is_err(), "{mp:?}: geo refuses, ours accepts");
            }
        }
    }
}
