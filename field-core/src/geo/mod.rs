//! Geometry the device needs: which cell a point falls in (an R-tree over
//! cell bounding boxes, then an exact point-in-polygon test), and whether a
//! set of cells tiles the city.

pub mod cell_index;
pub mod tiling;
pub mod validity;

pub use cell_index::CellIndex;
pub use tiling::{TilingProblem, check_tiling};
