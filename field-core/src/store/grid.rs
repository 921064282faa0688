//! The grid held on the device: replaced whole on import, after the tiling
//! check, and indexed lazily for point-to-cell lookups.

use std::collections::BTreeMap;

use rusqlite::{TransactionBehavior, params};
use serde::Serialize;

use super::Store;
use crate::error::{Error, Result};
use crate::geo::{CellIndex, check_tiling, tiling::DEFAULT_TOLERANCE_M2};
use crate::import::parse_polygonal;
use crate::model::{Cell, CellCode, LonLat, Zone};

/// What a grid import produced.
#[derive(Clone, Debug, Serialize)]
pub struct GridSummary {
    pub cells: usize,
    pub area_m2: f64,
    pub by_zone: BTreeMap<String, usize>,
}

impl Store {
    /// Checks that `cells` tile, then replaces the device's grid with them in
    /// one transaction. A grid that does not tile is refused whole, listing
    /// every problem by cell code.
    pub fn import_grid(&mut self, cells: Vec<Cell>) -> Result<GridSummary> {
        check_grid(&cells)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM cells", [])?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO cells (code, zone, name, area_m2, geometry) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for c in &cells {
                let geometry = geojson::Geometry::from(&c.geometry).to_string();
                stmt.execute(params![
                    c.code.as_str(),
                    c.zone.as_str(),
                    c.name,
                    c.area_m2,
                    geometry
                ])?;
            }
        }
        tx.commit()?;
        let mut by_zone = BTreeMap::new();
        for c in &cells {
            *by_zone.entry(c.zone.as_str().to_string()).or_insert(0) += 1;
        }
        let summary = GridSummary {
            cells: cells.len(),
            area_m2: cells.iter().map(|c| c.area_m2).sum(),
            by_zone,
        };
        self.cell_index = Some(CellIndex::new(cells));
        Ok(summary)
    }

    /// The device's cells, by code.
    pub fn cells(&self) -> Result<Vec<Cell>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT code, zone, name, geometry FROM cells ORDER BY code")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (code, zone, name, geometry) = row?;
            out.push(stored_cell(code, &zone, name, &geometry)?);
        }
        Ok(out)
    }

    /// The cell containing `pos`, if the device has a grid and one does.
    pub fn locate_cell(&mut self, pos: LonLat) -> Result<Option<CellCode>> {
        self.load_cell_index()?;
        let index = self.cell_index.as_ref().expect("just built");
        Ok(index.locate(pos).map(|c| c.code.clone()))
    }

    /// Builds the cell index once per open store (and after a grid import).
    pub(super) fn load_cell_index(&mut self) -> Result<()> {
        if self.cell_index.is_none() {
            self.cell_index = Some(CellIndex::new(self.cells()?));
        }
        Ok(())
    }
}

/// A cell as a replica stored it (checked when it was imported): its code,
/// zone, name and GeoJSON geometry.
pub fn stored_cell(code: String, zone: &str, name: Option<String>, geometry: &str) -> Result<Cell> {
    let corrupt = |e: Error| Error::Corrupt(format!("cell {code}: {e}"));
    let zone = Zone::parse("zone", zone).map_err(corrupt)?;
    let geometry = parse_polygonal(geometry).map_err(corrupt)?;
    Ok(Cell::new(CellCode::trusted(code), zone, name, geometry))
}

/// Checks that `cells` tile the city: a grid that does not is refused
/// whole, listing every problem by cell code.
pub fn check_grid(cells: &[Cell]) -> Result<()> {
    let problems = check_tiling(cells, DEFAULT_TOLERANCE_M2);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Tiling(
            problems.iter().map(|p| p.to_string()).collect(),
        ))
    }
}

/// A grid as a GeoJSON FeatureCollection, for devices to pull.
pub fn grid_geojson_of(cells: &[Cell]) -> Result<serde_json::Value> {
    let mut features = Vec::new();
    for c in cells {
        features.push(serde_json::json!({
            "type": "Feature",
            "properties": { "code": c.code, "zone": c.zone, "name": c.name },
            "geometry": serde_json::to_value(geojson::Geometry::from(&c.geometry))?,
        }));
    }
    Ok(serde_json::json!({ "type": "FeatureCollection", "features": features }))
}
