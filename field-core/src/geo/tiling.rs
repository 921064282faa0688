//! The tiling check: the cells of a city cover it fully, never overlap and
//! leave no holes. Every problem names the cells involved.
//!
//! Planar boolean operations in degrees find the shapes; areas are then
//! measured geodesically, and slivers below `tolerance_m2` (digitising
//! noise along shared edges) are ignored.

use geo::{
    Area, BooleanOps, BoundingRect, Distance, Euclidean, Intersects, MultiPolygon, Polygon,
    unary_union,
};
use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};

use crate::model::Cell;

/// Distance (degrees, ~1 cm) within which a cell counts as bordering a hole.
const NEAR_DEG: f64 = 1e-7;

/// Slivers smaller than this (m²) are digitising noise, not gaps or overlaps.
pub const DEFAULT_TOLERANCE_M2: f64 = 1.0;

/// One way a set of cells fails to tile.
#[derive(Clone, Debug, PartialEq)]
pub enum TilingProblem {
    Invalid { cell: String, reason: String },
    Overlap { a: String, b: String, area_m2: f64 },
    Gap { cells: Vec<String>, area_m2: f64 },
}

impl std::fmt::Display for TilingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TilingProblem::Invalid { cell, reason } => {
                write!(f, "cell {cell}: invalid polygon: {reason}")
            }
            TilingProblem::Overlap { a, b, area_m2 } => {
                write!(f, "cells {a} and {b} overlap by {area_m2:.1} m²")
            }
            TilingProblem::Gap { cells, area_m2 } => {
                write!(
                    f,
                    "a hole of {area_m2:.1} m² between cells {}",
                    cells.join(", ")
                )
            }
        }
    }
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

fn envelope(
    g: &impl BoundingRect<f64, Output = Option<geo::Rect<f64>>>,
) -> Option<Rectangle<[f64; 2]>> {
    g.bounding_rect()
        .map(|r| Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]))
}

/// The check gave up at its deadline (a grid too detailed to check in time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the grid could not be checked within {0:?}: simplify its cells")]
pub struct TimedOut(pub std::time::Duration);

/// Checks validity, overlaps and holes; returns every problem found.
pub fn check_tiling(cells: &[Cell], tolerance_m2: f64) -> Vec<TilingProblem> {
    match check_tiling_within(cells, tolerance_m2, None) {
        Ok(problems) => problems,
        Err(TimedOut(_)) => unreachable!("no deadline was set"),
    }
}

/// [`check_tiling`] that gives up after `budget`: every step is O(n log n)
/// in the vertices, and the work stops at the deadline instead of holding a
/// core (a server checks imports with one).
pub fn check_tiling_within(
    cells: &[Cell],
    tolerance_m2: f64,
    budget: Option<std::time::Duration>,
) -> Result<Vec<TilingProblem>, TimedOut> {
    let started = std::time::Instant::now();
    let mut alive = || budget.is_none_or(|b| started.elapsed() < b);
    let late = || TimedOut(budget.unwrap_or_default());
    let mut problems = Vec::new();
    for c in cells {
        if !alive() {
            return Err(late());
        }
        if let Err(e) = super::validity::check_geometry(&c.geometry, &mut alive) {
            if !alive() {
                return Err(late());
            }
            problems.push(TilingProblem::Invalid {
                cell: c.code.to_string(),
                reason: e.0,
            });
        } else if c.geometry.unsigned_area() == 0.0 {
            problems.push(TilingProblem::Invalid {
                cell: c.code.to_string(),
                reason: "has no area".into(),
            });
        }
    }
    if !problems.is_empty() {
        // Boolean operations on invalid polygons are meaningless.
        return Ok(problems);
    }
    let tree: RTree<Entry> = RTree::bulk_load(
        cells
            .iter()
            .enumerate()
            .filter_map(|(i, c)| envelope(&c.geometry).map(|r| GeomWithData::new(r, i)))
            .collect(),
    );
    problems.extend(overlaps(cells, &tree, tolerance_m2, &mut alive).ok_or_else(late)?);
    if !alive() {
        return Err(late());
    }
    problems.extend(holes(cells, &tree, tolerance_m2));
    Ok(problems)
}

/// `None` when `alive` said stop.
fn overlaps(
    cells: &[Cell],
    tree: &RTree<Entry>,
    tolerance_m2: f64,
    alive: &mut dyn FnMut() -> bool,
) -> Option<Vec<TilingProblem>> {
    let mut out = Vec::new();
    for (a, b) in tree.intersection_candidates_with_other_tree(tree) {
        if !alive() {
            return None;
        }
        let (i, j) = (a.data, b.data);
        if i >= j || !cells[i].geometry.intersects(&cells[j].geometry) {
            continue;
        }
        let shared = cells[i].geometry.intersection(&cells[j].geometry);
        let area_m2 = crate::model::cell::geodesic_area_m2(&shared);
        if area_m2 > tolerance_m2 {
            let (x, y) = ordered(&cells[i].code.to_string(), &cells[j].code.to_string());
            out.push(TilingProblem::Overlap {
                a: x,
                b: y,
                area_m2,
            });
        }
    }
    out.sort_by(|p, q| format!("{p}").cmp(&format!("{q}")));
    Some(out)
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.into(), b.into())
    } else {
        (b.into(), a.into())
    }
}

fn holes(cells: &[Cell], tree: &RTree<Entry>, tolerance_m2: f64) -> Vec<TilingProblem> {
    let union = unary_union(cells.iter().map(|c| &c.geometry));
    let mut out = Vec::new();
    for part in &union.0 {
        for ring in part.interiors() {
            let hole = Polygon::new(ring.clone(), vec![]);
            let area_m2 = crate::model::cell::geodesic_area_m2(&MultiPolygon(vec![hole.clone()]));
            if area_m2 <= tolerance_m2 {
                continue;
            }
            // Boolean ops snap coordinates, so "touches" is tested within
            // NEAR_DEG (~1 cm) rather than exactly.
            let mut around: Vec<String> = envelope(&hole)
                .map(|r| {
                    let (lo, hi) = (r.lower(), r.upper());
                    let q = AABB::from_corners(
                        [lo[0] - NEAR_DEG, lo[1] - NEAR_DEG],
                        [hi[0] + NEAR_DEG, hi[1] + NEAR_DEG],
                    );
                    tree.locate_in_envelope_intersecting(&q)
                        .filter(|e| Euclidean.distance(&cells[e.data].geometry, &hole) <= NEAR_DEG)
                        .map(|e| cells[e.data].code.to_string())
                        .collect()
                })
                .unwrap_or_default();
            around.sort();
            out.push(TilingProblem::Gap {
                cells: around,
                area_m2,
            });
        }
    }
    out
}

/// The union of all cells (the city's outline), e.g. for maps.
pub fn outline(cells: &[Cell]) -> MultiPolygon<f64> {
    unary_union(cells.iter().map(|c| &c.geometry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CellCodePattern, Zone};
    use geo::Rect;

    fn cell(code: &str, x0: f64, y0: f64, x1: f64, y1: f64) -> Cell {
        let code = CellCodePattern::default().parse("code", code).unwrap();
        Cell::new(
            code,
            Zone::Red,
            None,
            MultiPolygon(vec![Rect::new((x0, y0), (x1, y1)).to_polygon()]),
        )
    }

    #[test]
    fn a_clean_grid_has_no_problems() {
        let cells = vec![
            cell("330109001001001", 120.0, 30.0, 120.001, 30.001),
            cell("330109001001002", 120.001, 30.0, 120.002, 30.001),
        ];
        assert!(check_tiling(&cells, DEFAULT_TOLERANCE_M2).is_empty());
    }

    #[test]
    fn overlap_and_hole_name_their_cells() {
        let overlapping = vec![
            cell("330109001001001", 120.0, 30.0, 120.001, 30.001),
            cell("330109001001002", 120.0005, 30.0, 120.002, 30.001),
        ];
        let p = check_tiling(&overlapping, DEFAULT_TOLERANCE_M2);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].to_string()
                .contains("330109001001001 and 330109001001002 overlap"),
            "{}",
            p[0]
        );

        // A ring of 8 cells around an empty middle.
        let mut ring = Vec::new();
        for r in 0..3 {
            for c in 0..3 {
                if (r, c) != (1, 1) {
                    let (x, y) = (120.0 + c as f64 * 0.001, 30.0 + r as f64 * 0.001);
                    ring.push(cell(
                        &format!("33010900100100{}", r * 3 + c),
                        x,
                        y,
                        x + 0.001,
                        y + 0.001,
                    ));
                }
            }
        }
        let p = check_tiling(&ring, DEFAULT_TOLERANCE_M2);
        assert_eq!(p.len(), 1, "{p:?}");
        match &p[0] {
            TilingProblem::Gap { cells, area_m2 } => {
                assert_eq!(cells.len(), 8);
                assert!(*area_m2 > 10_000.0);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod detailed {
    use super::*;
    use crate::model::{CellCodePattern, Zone};
    use geo::{LineString, Polygon};

    /// Two cells sharing a zig-zag edge of `n` vertices.
    pub(crate) fn detailed_pair(n: usize) -> Vec<Cell> {
        let edge: Vec<(f64, f64)> = (0..=n)
            .map(|i| {
                let y = 30.0 + 0.01 * i as f64 / n as f64;
                let x = 120.005 + if i % 2 == 0 { 0.0 } else { 0.00001 };
                (x, y)
            })
            .collect();
        let mut left = vec![(120.0, 30.0)];
        left.extend(edge.iter().copied());
        left.push((120.0, 30.01));
        left.push((120.0, 30.0));
        let mut right: Vec<(f64, f64)> = edge.iter().rev().copied().collect();
        right.insert(0, (120.01, 30.01));
        right.push((120.01, 30.0));
        right.push((120.01, 30.01));
        let mk = |code: &str, pts: Vec<(f64, f64)>| {
            Cell::new(
                CellCodePattern::default().parse("code", code).unwrap(),
                Zone::Red,
                None,
                MultiPolygon(vec![Polygon::new(LineString::from(pts), vec![])]),
            )
        };
        vec![mk("330109001001001", left), mk("330109001001002", right)]
    }

    #[test]
    fn a_detailed_shared_edge_tiles_and_a_deadline_stops_the_check() {
        // 40,000 vertices took geo's quadratic validation over 30 s.
        let cells = detailed_pair(40_000);
        assert_eq!(check_tiling(&cells, DEFAULT_TOLERANCE_M2), vec![]);
        let stopped = check_tiling_within(
            &cells,
            DEFAULT_TOLERANCE_M2,
            Some(std::time::Duration::ZERO),
        );
        assert_eq!(stopped, Err(TimedOut(std::time::Duration::ZERO)));
    }
}
