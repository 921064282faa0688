//! GeoJSON grids: a FeatureCollection of Polygon or MultiPolygon features
//! with properties `code`, `zone` (`red`|`yellow`|`blue`) and optional
//! `name`. Coordinates must be WGS84 degrees.

use std::collections::BTreeSet;

use geo::MultiPolygon;
use geojson::{GeoJson, Geometry, GeometryValue};

use crate::error::{Result, invalid};
use crate::model::{Cell, CellCodePattern, LonLat, Zone};

/// Parses any GeoJSON object that *is* an area: a Polygon or MultiPolygon
/// geometry, or a Feature carrying one. Everything else is refused.
pub fn parse_polygonal(text: &str) -> Result<MultiPolygon<f64>> {
    let doc: GeoJson = text
        .parse()
        .map_err(|e| invalid("geojson", format!("not valid GeoJSON: {e}")))?;
    match doc {
        GeoJson::Geometry(g) => to_multipolygon("geometry", &g),
        GeoJson::Feature(f) => match &f.geometry {
            Some(g) => to_multipolygon("geometry", g),
            None => Err(invalid("geometry", "the feature has no geometry")),
        },
        GeoJson::FeatureCollection(_) => Err(invalid(
            "geojson",
            "a FeatureCollection is a grid, not one area",
        )),
    }
}

/// Every position must have a longitude and a latitude. Checked before the
/// conversion to geo types, which indexes positions without checking.
fn check_positions<'a>(
    field: &str,
    rings: impl IntoIterator<Item = &'a Vec<geojson::Position>>,
) -> Result<()> {
    for ring in rings {
        if let Some(p) = ring.iter().find(|p| p.as_slice().len() < 2) {
            return Err(invalid(
                field,
                format!(
                    "position {:?} needs at least a longitude and a latitude",
                    p.as_slice()
                ),
            ));
        }
    }
    Ok(())
}

fn to_multipolygon(field: &str, g: &Geometry) -> Result<MultiPolygon<f64>> {
    match &g.value {
        GeometryValue::Polygon { coordinates } => check_positions(field, coordinates)?,
        GeometryValue::MultiPolygon { coordinates } => {
            check_positions(field, coordinates.iter().flatten())?
        }
        _ => {}
    }
    let mp: MultiPolygon<f64> = match &g.value {
        GeometryValue::Polygon { .. } => {
            let p: geo::Polygon<f64> = g
                .try_into()
                .map_err(|e| invalid(field, format!("unreadable polygon: {e}")))?;
            MultiPolygon(vec![p])
        }
        GeometryValue::MultiPolygon { .. } => g
            .try_into()
            .map_err(|e| invalid(field, format!("unreadable multipolygon: {e}")))?,
        other => {
            return Err(invalid(
                field,
                format!(
                    "is a {}, a cell must be a Polygon or MultiPolygon",
                    other.type_name()
                ),
            ));
        }
    };
    for poly in &mp.0 {
        for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
            if ring.0.len() < 4 {
                return Err(invalid(field, "a ring needs at least 4 positions"));
            }
            for c in &ring.0 {
                LonLat::new(c.x, c.y).map_err(|e| {
                    invalid(
                        field,
                        format!("coordinates must be WGS84 lon/lat degrees: {e}"),
                    )
                })?;
            }
        }
    }
    if mp.0.is_empty() {
        return Err(invalid(field, "has no polygons"));
    }
    Ok(mp)
}

/// Most vertices one cell may have (a street-accurate cell has hundreds).
pub const MAX_VERTICES_PER_CELL: usize = 50_000;
/// Most vertices in a whole grid.
pub const MAX_VERTICES_PER_GRID: usize = 2_000_000;
/// Most cells in a grid.
pub const MAX_CELLS_PER_GRID: usize = 200_000;
/// Bytes of a cell's name.
pub const MAX_CELL_NAME_BYTES: usize = 256;

fn vertices(mp: &MultiPolygon<f64>) -> usize {
    mp.0.iter()
        .map(|p| p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>())
        .sum()
}

/// Parses a grid file into cells; the tiling check is separate
/// ([`crate::geo::check_tiling`]). Errors name the feature and property.
pub fn parse_grid(text: &str, pattern: &CellCodePattern) -> Result<Vec<Cell>> {
    let doc: GeoJson = text
        .parse()
        .map_err(|e| invalid("grid", format!("not valid GeoJSON: {e}")))?;
    let GeoJson::FeatureCollection(fc) = doc else {
        return Err(invalid("grid", "must be a FeatureCollection of cells"));
    };
    if fc.features.is_empty() {
        return Err(invalid(
            "grid.features",
            "is empty: a grid needs at least one cell",
        ));
    }
    if fc.features.len() > MAX_CELLS_PER_GRID {
        return Err(invalid(
            "grid.features",
            format!("{} cells, at most {MAX_CELLS_PER_GRID}", fc.features.len()),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut total = 0usize;
    let mut cells = Vec::with_capacity(fc.features.len());
    for (i, f) in fc.features.iter().enumerate() {
        let at = |name: &str| format!("features[{i}].{name}");
        let props = f
            .properties
            .as_ref()
            .ok_or_else(|| invalid(at("properties"), "missing: a cell needs `code` and `zone`"))?;
        let text_prop = |key: &str| -> Result<Option<&str>> {
            match props.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
                Some(other) => Err(invalid(
                    at(&format!("properties.{key}")),
                    format!("must be a string, found {other}"),
                )),
            }
        };
        let code_text =
            text_prop("code")?.ok_or_else(|| invalid(at("properties.code"), "missing"))?;
        let code = pattern.parse(&at("properties.code"), code_text)?;
        let zone_text =
            text_prop("zone")?.ok_or_else(|| invalid(at("properties.zone"), "missing"))?;
        let zone = Zone::parse(&at("properties.zone"), zone_text)?;
        let name = text_prop("name")?.map(str::to_string);
        if let Some(n) = &name {
            crate::model::limits::bounded(&at("properties.name"), n, MAX_CELL_NAME_BYTES)?;
        }
        let geometry = f
            .geometry
            .as_ref()
            .ok_or_else(|| invalid(at("geometry"), "missing"))
            .and_then(|g| to_multipolygon(&at("geometry"), g))?;
        let n = vertices(&geometry);
        if n > MAX_VERTICES_PER_CELL {
            return Err(invalid(
                at("geometry"),
                format!(
                    "cell {code} has {n} vertices, at most {MAX_VERTICES_PER_CELL}: simplify it"
                ),
            ));
        }
        total += n;
        if total > MAX_VERTICES_PER_GRID {
            return Err(invalid(
                "grid",
                format!("more than {MAX_VERTICES_PER_GRID} vertices in all: simplify the cells"),
            ));
        }
        if !seen.insert(code.clone()) {
            return Err(invalid(
                at("properties.code"),
                format!("{code} appears twice"),
            ));
        }
        cells.push(Cell::new(code, zone, name, geometry));
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(props: &str) -> String {
        format!(
            r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{props},
            "geometry":{{"type":"Polygon","coordinates":[[[120,30],[120.001,30],[120.001,30.001],[120,30.001],[120,30]]]}}}}]}}"#
        )
    }

    #[test]
    fn reads_a_cell() {
        let cells = parse_grid(
            &grid(r#"{"code":"330109001001001","zone":"red","name":"A"}"#),
            &CellCodePattern::default(),
        )
        .unwrap();
        assert_eq!(cells[0].zone, Zone::Red);
        assert_eq!(cells[0].name.as_deref(), Some("A"));
    }

    #[test]
    fn errors_name_feature_and_property() {
        let p = CellCodePattern::default();
        let e = parse_grid(&grid(r#"{"code":"330109001001001","zone":"green"}"#), &p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("features[0].properties.zone:"), "{e}");
        let e = parse_grid(&grid(r#"{"code":"12","zone":"red"}"#), &p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("features[0].properties.code:"), "{e}");
        let e = parse_grid(&grid(r#"{"code":330109001001001,"zone":"red"}"#), &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be a string"), "{e}");
    }

    #[test]
    fn refuses_projected_coordinates() {
        let text = grid(r#"{"code":"330109001001001","zone":"red"}"#)
            .replace("[[[120,30]", "[[[500000,3300000]");
        assert!(parse_grid(&text, &CellCodePattern::default()).is_err());
    }
}
