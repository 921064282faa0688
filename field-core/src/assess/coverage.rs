//! Coverage (覆盖率): for each assigned cell and day, patrol hours are cut
//! into consecutive windows of the cell's interval from the first patrol
//! minute (the last may be shorter). A window is covered when the track is
//! inside the cell at some moment in it: a point inside, or a segment
//! between two consecutive points at most `max_gap_s` apart that crosses the
//! cell — the moment is interpolated along the segment, so a crossing counts
//! for the window in which the track is inside. Points less accurate than
//! `max_accuracy_m` are ignored.

use geo::{BooleanOps, BoundingRect, Coord, Intersects, IsConvex, LineString, MultiLineString};
use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};
use serde::Serialize;

use super::rules::{AssessmentRules, PatrolDay};
use crate::model::{Cell, TrackPoint};

/// One window of one cell, covered or not, with the evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoverageWindow {
    pub cell: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub covered: bool,
    /// When the track was first seen inside the cell in this window.
    pub first_seen_ms: Option<i64>,
}

type CellTree = RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>;

/// A day's usable points (accuracy within the rule), in time order, each
/// with the index of the cell it lies in: located once, used by coverage
/// and off-post alike.
pub struct LocatedTrack<'a> {
    pub points: Vec<&'a TrackPoint>,
    /// The cell a point is in (the first listed when on a shared edge).
    pub cell_of: Vec<Option<usize>>,
    /// Points on an edge shared by cells: (point, every other cell it is in).
    pub also_in: Vec<(usize, usize)>,
    tree: CellTree,
    convex: Vec<bool>,
}

/// Locates `points` (any order) in `cells`. A cell's boundary belongs to
/// it, so a point exactly on an edge shared by two cells is inside both
/// (collectors walk the streets cells are cut along): `cell_of` names the
/// first listed, `also_in` the others.
pub fn locate<'a>(
    cells: &[Cell],
    points: &'a [TrackPoint],
    rules: &AssessmentRules,
) -> LocatedTrack<'a> {
    let tree: CellTree = RTree::bulk_load(
        cells
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let r = c.geometry.bounding_rect()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    i,
                ))
            })
            .collect(),
    );
    let mut usable: Vec<&TrackPoint> = points
        .iter()
        .filter(|p| p.accuracy_m.is_none_or(|a| a <= rules.max_accuracy_m))
        .collect();
    usable.sort_by_key(|p| p.at);
    let mut also_in = Vec::new();
    let cell_of = usable
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let q = AABB::from_point([p.pos.lon(), p.pos.lat()]);
            let mut inside: Vec<usize> = tree
                .locate_in_envelope_intersecting(&q)
                .map(|e| e.data)
                .filter(|&i| cells[i].geometry.intersects(&p.pos.to_point()))
                .collect();
            inside.sort_unstable();
            also_in.extend(inside.iter().skip(1).map(|&i| (k, i)));
            inside.first().copied()
        })
        .collect();
    let convex = cells
        .iter()
        .map(|c| {
            c.geometry.0.len() == 1
                && c.geometry.0[0].interiors().is_empty()
                && c.geometry.0[0].exterior().is_convex()
        })
        .collect();
    LocatedTrack {
        points: usable,
        cell_of,
        also_in,
        tree,
        convex,
    }
}

/// The windows of `cells` on `day`, marked from `points` (any order).
pub fn coverage(
    cells: &[Cell],
    day: &PatrolDay,
    points: &[TrackPoint],
    rules: &AssessmentRules,
) -> Vec<CoverageWindow> {
    coverage_of(cells, day, &locate(cells, points, rules), rules)
}

/// [`coverage`] of a track already located in the same `cells`.
pub fn coverage_of(
    cells: &[Cell],
    day: &PatrolDay,
    track: &LocatedTrack<'_>,
    rules: &AssessmentRules,
) -> Vec<CoverageWindow> {
    let mut windows: Vec<Vec<CoverageWindow>> = cells
        .iter()
        .map(|c| {
            let step = day.interval_ms(c.zone).max(1);
            let mut out = Vec::new();
            let mut t = day.start_ms;
            while t < day.end_ms {
                let end = (t + step).min(day.end_ms);
                out.push(CoverageWindow {
                    cell: c.code.to_string(),
                    start_ms: t,
                    end_ms: end,
                    covered: false,
                    first_seen_ms: None,
                });
                t = end;
            }
            out
        })
        .collect();
    let (tree, usable, cell_of, convex) =
        (&track.tree, &track.points, &track.cell_of, &track.convex);
    // Windows are cut at a fixed step from the first patrol minute, so the
    // first one a moment falls in is found by division, not by a scan.
    let steps: Vec<i64> = cells
        .iter()
        .map(|c| day.interval_ms(c.zone).max(1))
        .collect();
    let mut mark = |cell: usize, from: i64, to: i64| {
        let to = to.max(from + 1);
        let first = ((from - day.start_ms).max(0) / steps[cell]) as usize;
        let ws = &mut windows[cell];
        for w in ws.iter_mut().skip(first) {
            if w.start_ms >= to {
                break;
            }
            if from < w.end_ms {
                let seen = from.max(w.start_ms);
                w.covered = true;
                w.first_seen_ms = Some(w.first_seen_ms.map_or(seen, |s| s.min(seen)));
            }
        }
    };
    // A segment whose ends lie in the same convex cell lies inside it: its
    // whole time span counts for that cell. Only segments that change cell
    // (a few in a hundred on a real walk) are clipped against the cells
    // they cross.
    for (p, cell) in usable.iter().zip(cell_of) {
        if let Some(i) = cell {
            mark(*i, p.at.millis(), p.at.millis());
        }
    }
    for &(k, i) in &track.also_in {
        let t = usable[k].at.millis();
        mark(i, t, t);
    }
    let shared: std::collections::HashSet<usize> = track.also_in.iter().map(|(k, _)| *k).collect();
    for (k, pair) in usable.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        let (ta, tb) = (a.at.millis(), b.at.millis());
        if tb - ta > rules.max_gap_s * 1000 || tb <= ta {
            continue;
        }
        if let (Some(i), Some(j)) = (cell_of[k], cell_of[k + 1])
            && i == j
            && convex[i]
            && !shared.contains(&k)
            && !shared.contains(&(k + 1))
        {
            mark(i, ta, tb);
            continue;
        }
        if (a.pos.lon(), a.pos.lat()) == (b.pos.lon(), b.pos.lat()) {
            continue;
        }
        let (ca, cb) = (
            Coord {
                x: a.pos.lon(),
                y: a.pos.lat(),
            },
            Coord {
                x: b.pos.lon(),
                y: b.pos.lat(),
            },
        );
        let seg = MultiLineString::new(vec![LineString::new(vec![ca, cb])]);
        let q = AABB::from_corners(
            [ca.x.min(cb.x), ca.y.min(cb.y)],
            [ca.x.max(cb.x), ca.y.max(cb.y)],
        );
        let len2 = (cb.x - ca.x).powi(2) + (cb.y - ca.y).powi(2);
        for e in tree.locate_in_envelope_intersecting(&q) {
            let dt = (tb - ta) as f64;
            if convex[e.data] {
                if let Some((lo, hi)) = clip_convex(cells[e.data].geometry.0[0].exterior(), ca, cb)
                {
                    mark(
                        e.data,
                        ta + (lo * dt).round() as i64,
                        ta + (hi * dt).round() as i64,
                    );
                }
                continue;
            }
            for part in cells[e.data].geometry.clip(&seg, false) {
                // Where along the segment (0..1) the inside part starts and ends.
                let params: Vec<f64> = part
                    .0
                    .iter()
                    .map(|c| ((c.x - ca.x) * (cb.x - ca.x) + (c.y - ca.y) * (cb.y - ca.y)) / len2)
                    .collect();
                let lo = params
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
                    .clamp(0.0, 1.0);
                let hi = params
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
                    .clamp(0.0, 1.0);
                let dt = (tb - ta) as f64;
                mark(
                    e.data,
                    ta + (lo * dt).round() as i64,
                    ta + (hi * dt).round() as i64,
                );
            }
        }
    }
    windows.into_iter().flatten().collect()
}

/// The part of segment `a`→`b` inside a convex ring (counter-clockwise, as
/// `Cell::new` orients them), as parameters `0 ≤ lo ≤ hi ≤ 1` along the
/// segment: Cyrus–Beck clipping, one half-plane per edge. The general clip
/// of `geo` gives the same answer and serves concave cells; this is the hot
/// path of a city month.
fn clip_convex(ring: &LineString<f64>, a: Coord<f64>, b: Coord<f64>) -> Option<(f64, f64)> {
    let d = Coord {
        x: b.x - a.x,
        y: b.y - a.y,
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for edge in ring.lines() {
        let e = Coord {
            x: edge.end.x - edge.start.x,
            y: edge.end.y - edge.start.y,
        };
        // Inward normal of a counter-clockwise edge.
        let n = Coord { x: -e.y, y: e.x };
        let num = n.x * (edge.start.x - a.x) + n.y * (edge.start.y - a.y);
        let den = n.x * d.x + n.y * d.y;
        if den == 0.0 {
            if num > 0.0 {
                return None;
            }
            continue;
        }
        let t = num / den;
        if den > 0.0 {
            lo = lo.max(t);
        } else {
            hi = hi.min(t);
        }
        if lo > hi {
            return None;
        }
    }
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{BooleanOps, MultiLineString, Rect};

    /// Cyrus–Beck agrees with geo's general clip on random segments (to
    /// 1e-6 of the segment: the general clip snaps to a fixed grid).
    #[test]
    fn convex_clip_matches_the_general_clip() {
        let square = Rect::new((0.0, 0.0), (1.0, 1.0)).to_polygon();
        let ring = square.exterior().clone();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % 3000) as f64 / 1000.0 - 1.0
        };
        for _ in 0..2000 {
            let (a, b) = (
                Coord {
                    x: next(),
                    y: next(),
                },
                Coord {
                    x: next(),
                    y: next(),
                },
            );
            let len2 = (b.x - a.x).powi(2) + (b.y - a.y).powi(2);
            if len2 < 1e-9 {
                continue;
            }
            let general = square.clip(
                &MultiLineString::new(vec![LineString::new(vec![a, b])]),
                false,
            );
            let mut expected: Option<(f64, f64)> = None;
            for part in &general {
                for c in &part.0 {
                    let t = ((c.x - a.x) * (b.x - a.x) + (c.y - a.y) * (b.y - a.y)) / len2;
                    expected = Some(expected.map_or((t, t), |(l, h)| (l.min(t), h.max(t))));
                }
            }
            let got = clip_convex(&ring, a, b).filter(|(l, h)| h - l > 1e-6);
            let expected = expected.filter(|(l, h)| h - l > 1e-6);
            match (got, expected) {
                (Some(g), Some(e)) => assert!(
                    (g.0 - e.0).abs() < 1e-6 && (g.1 - e.1).abs() < 1e-6,
                    "{a:?} {b:?}: {g:?} vs {e:?}"
                ),
                (None, None) => {}
                (g, e) => panic!("{a:?} {b:?}: {g:?} vs {e:?}"),
            }
        }
    }

    /// A point exactly on the edge two cells share covers a window of each.
    #[test]
    fn a_point_on_a_shared_edge_is_inside_both_cells() {
        use crate::model::{Cell, CellCodePattern, LonLat, Timestamp, TrackPoint, Zone};
        let cell = |code: &str, x0: f64| {
            Cell::new(
                CellCodePattern::default().parse("code", code).unwrap(),
                Zone::Red,
                None,
                geo::MultiPolygon(vec![
                    Rect::new((x0, 30.0), (x0 + 0.001, 30.001)).to_polygon(),
                ]),
            )
        };
        let cells = vec![
            cell("330109001001001", 120.0),
            cell("330109001001002", 120.001),
        ];
        let rules = AssessmentRules::default();
        let day = rules
            .patrol_day(chrono::NaiveDate::from_ymd_opt(2026, 11, 10).unwrap())
            .unwrap();
        let at = Timestamp::from_millis("at", day.start_ms + 600_000).unwrap();
        let on_edge =
            TrackPoint::new(at, LonLat::new(120.001, 30.0005).unwrap(), Some(5.0), None).unwrap();
        let windows = coverage(&cells, &day, &[on_edge], &rules);
        let first: Vec<&CoverageWindow> = windows
            .iter()
            .filter(|w| w.start_ms == day.start_ms)
            .collect();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|w| w.covered), "{first:?}");
        assert_eq!(windows.iter().filter(|w| w.covered).count(), 2);
    }
}
