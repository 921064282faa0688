//! Parsers for files collectors and the center bring in: GPX tracks and
//! GeoJSON grids. They turn text into domain types or say precisely why not;
//! they never write anything.

pub mod geojson_grid;
pub mod gpx_track;

pub use geojson_grid::{parse_grid, parse_polygonal};
pub use gpx_track::{GpxRead, HDOP_UERE_M, SkippedPoint, read_gpx, read_gpx_report};
