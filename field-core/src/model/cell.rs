//! Unit grid cells (单元网格): a validated code, a zone colour, a polygon and
//! its geodesic area.

use geo::MultiPolygon;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// The default cell code pattern: 15 digits (CJ/T 213-2005 practice:
/// county 6 + street 3 + community 3 + serial 3).
pub const DEFAULT_CELL_CODE_PATTERN: &str = r"^\d{15}$";

/// The city's configured cell code pattern.
#[derive(Clone, Debug)]
pub struct CellCodePattern {
    source: String,
    regex: regex_lite::Regex,
}

impl CellCodePattern {
    pub fn new(pattern: &str) -> Result<CellCodePattern> {
        let regex = regex_lite::Regex::new(pattern)
            .map_err(|e| invalid("cell_code_pattern", format!("`{pattern}`: {e}")))?;
        Ok(CellCodePattern {
            source: pattern.to_string(),
            regex,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn parse(&self, field: &str, text: &str) -> Result<CellCode> {
        if self.regex.is_match(text) {
            Ok(CellCode(text.to_string()))
        } else {
            Err(invalid(
                field,
                format!(
                    "`{text}` does not match the cell code pattern {}",
                    self.source
                ),
            ))
        }
    }
}

impl Default for CellCodePattern {
    fn default() -> Self {
        CellCodePattern::new(DEFAULT_CELL_CODE_PATTERN).expect("constant pattern compiles")
    }
}

/// A cell code that matched the city's pattern when it entered the system.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CellCode(String);

impl CellCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For codes read back from our own store, already checked on entry.
    pub(crate) fn trusted(code: String) -> CellCode {
        CellCode(code)
    }
}

impl std::fmt::Display for CellCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How busy a cell is, which sets how often it must be patrolled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    Red,
    Yellow,
    Blue,
}

impl Zone {
    pub fn parse(field: &str, text: &str) -> Result<Zone> {
        match text {
            "red" => Ok(Zone::Red),
            "yellow" => Ok(Zone::Yellow),
            "blue" => Ok(Zone::Blue),
            other => Err(invalid(
                field,
                format!("`{other}` is not a zone colour (red, yellow or blue)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Red => "red",
            Zone::Yellow => "yellow",
            Zone::Blue => "blue",
        }
    }
}

/// A grid cell with its geometry.
#[derive(Clone, Debug)]
pub struct Cell {
    pub code: CellCode,
    pub zone: Zone,
    pub name: Option<String>,
    pub geometry: MultiPolygon<f64>,
    /// Geodesic area on the WGS84 ellipsoid, in m².
    pub area_m2: f64,
}

impl Cell {
    /// Normalises ring orientation (exterior counter-clockwise) and
    /// measures the area.
    pub fn new(
        code: CellCode,
        zone: Zone,
        name: Option<String>,
        geometry: MultiPolygon<f64>,
    ) -> Cell {
        use geo::orient::{Direction, Orient};
        let geometry = geometry.orient(Direction::Default);
        let area_m2 = geodesic_area_m2(&geometry);
        Cell {
            code,
            zone,
            name,
            geometry,
            area_m2,
        }
    }
}

/// Geodesic area in m² on the WGS84 ellipsoid. Orients rings first: on an
/// ellipsoid a clockwise exterior ring encloses the rest of the Earth.
pub fn geodesic_area_m2(g: &MultiPolygon<f64>) -> f64 {
    use geo::GeodesicArea;
    use geo::orient::{Direction, Orient};
    g.orient(Direction::Default).geodesic_area_unsigned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_does_not_depend_on_ring_orientation() {
        let ccw = geo::Rect::new((120.0, 30.0), (120.001, 30.001)).to_polygon();
        let mut cw = ccw.clone();
        cw.exterior_mut(|r| r.0.reverse());
        let a = geodesic_area_m2(&MultiPolygon(vec![ccw]));
        let b = geodesic_area_m2(&MultiPolygon(vec![cw]));
        assert!(
            (a - b).abs() < 1e-6 && (a - 10_700.0).abs() < 100.0,
            "{a} {b}"
        );
    }
}
