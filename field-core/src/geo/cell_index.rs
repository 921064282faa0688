//! Point-to-cell lookup. A point on a shared edge belongs to the cell with
//! the smallest code, so every replica resolves it the same way.

use geo::{BoundingRect, Intersects, Point};
use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};

use crate::model::{Cell, LonLat};

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// An immutable index of a grid's cells.
pub struct CellIndex {
    cells: Vec<Cell>,
    tree: RTree<Entry>,
}

impl CellIndex {
    pub fn new(mut cells: Vec<Cell>) -> CellIndex {
        cells.sort_by(|a, b| a.code.cmp(&b.code));
        let entries = cells
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let r = c.geometry.bounding_rect()?;
                let rect = Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
                Some(GeomWithData::new(rect, i))
            })
            .collect();
        CellIndex {
            cells,
            tree: RTree::bulk_load(entries),
        }
    }

    /// The cell containing `pos` (boundary included), smallest code first.
    pub fn locate(&self, pos: LonLat) -> Option<&Cell> {
        let p: Point<f64> = pos.to_point();
        let q = AABB::from_point([pos.lon(), pos.lat()]);
        self.tree
            .locate_in_envelope_intersecting(&q)
            .map(|e| e.data)
            .filter(|&i| self.cells[i].geometry.intersects(&p))
            .min()
            .map(|i| &self.cells[i])
    }

    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CellCodePattern, Zone};
    use geo::{MultiPolygon, Rect};

    pub(crate) fn square_grid(n: usize, size_deg: f64) -> Vec<Cell> {
        let pattern = CellCodePattern::default();
        let mut cells = Vec::new();
        for row in 0..n {
            for col in 0..n {
                let (x, y) = (120.0 + col as f64 * size_deg, 30.0 - row as f64 * size_deg);
                let poly = Rect::new((x, y - size_deg), (x + size_deg, y)).to_polygon();
                let code = pattern
                    .parse("code", &format!("330109001001{:03}", row * n + col))
                    .unwrap();
                cells.push(Cell::new(code, Zone::Blue, None, MultiPolygon(vec![poly])));
            }
        }
        cells
    }

    #[test]
    fn locates_inside_edges_and_outside() {
        let idx = CellIndex::new(square_grid(3, 0.001));
        let inside = idx.locate(LonLat::new(120.0015, 29.9985).unwrap()).unwrap();
        assert_eq!(inside.code.as_str(), "330109001001004");
        // On the shared edge of cells 000 and 001: the smaller code.
        let edge = idx.locate(LonLat::new(120.001, 29.9995).unwrap()).unwrap();
        assert_eq!(edge.code.as_str(), "330109001001000");
        assert!(idx.locate(LonLat::new(121.0, 29.9995).unwrap()).is_none());
    }

    #[test]
    fn area_is_geodesic() {
        let c = &square_grid(1, 0.001)[0];
        // 0.001° x 0.001° at 30°N: ~96.5 m x ~110.9 m.
        assert!((c.area_m2 - 10_700.0).abs() < 100.0, "{}", c.area_m2);
    }
}
