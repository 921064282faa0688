//! `field track export` and `field case export`: what the handset holds, as
//! files a GIS, a spreadsheet or a GPS tool opens — GeoJSON (flat
//! properties), CSV, GPX 1.1. Times in the city's zone, except in GPX,
//! whose `<time>` is UTC by the standard.

use anyhow::Result;
use chrono_tz::Tz;
use field_core::model::{LonLat, Timestamp};
use field_core::store::{CaseSummary, StoredPoint};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Geojson,
    Csv,
    Gpx,
}

impl Format {
    /// The format a file name asks for (`.geojson`/`.json`, `.csv`, `.gpx`).
    pub fn of_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "geojson" | "json" => Some(Format::Geojson),
            "csv" => Some(Format::Csv),
            "gpx" => Some(Format::Gpx),
            _ => None,
        }
    }
}

/// A case as exported: its summary and where it is.
pub struct CaseRow {
    pub summary: CaseSummary,
    pub pos: Option<LonLat>,
}

fn local(t: Timestamp, tz: Tz) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis())
        .map(|d| d.with_timezone(&tz).to_rfc3339())
        .unwrap_or_default()
}

fn collection(features: Vec<Value>) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec_pretty(
        &json!({ "type": "FeatureCollection", "features": features }),
    )?)
}

/// A GPX 1.1 document around `body`.
fn gpx(body: impl FnOnce(&mut Writer<Vec<u8>>) -> Result<()>) -> Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = BytesStart::new("gpx");
    root.push_attribute(("version", "1.1"));
    root.push_attribute(("creator", "field (digital city management)"));
    root.push_attribute(("xmlns", "http://www.topografix.com/GPX/1/1"));
    w.write_event(Event::Start(root))?;
    body(&mut w)?;
    w.write_event(Event::End(BytesEnd::new("gpx")))?;
    Ok(w.into_inner())
}

fn text(w: &mut Writer<Vec<u8>>, tag: &str, value: &str) -> Result<()> {
    w.write_event(Event::Start(BytesStart::new(tag)))?;
    w.write_event(Event::Text(BytesText::new(value)))?;
    w.write_event(Event::End(BytesEnd::new(tag)))?;
    Ok(())
}

fn point_start(tag: &str, pos: LonLat) -> BytesStart<'_> {
    let mut e = BytesStart::new(tag);
    e.push_attribute(("lat", format!("{:.7}", pos.lat()).as_str()));
    e.push_attribute(("lon", format!("{:.7}", pos.lon()).as_str()));
    e
}

/// Track points, every device's, in time order per device.
pub fn tracks(points: &[StoredPoint], format: Format, tz: Tz) -> Result<Vec<u8>> {
    match format {
        Format::Geojson => collection(
            points
                .iter()
                .map(|p| {
                    json!({
                        "type": "Feature",
                        "geometry": { "type": "Point", "coordinates": [p.point.pos.lon(), p.point.pos.lat()] },
                        "properties": {
                            "device": p.actor.to_string(), "seq": p.seq,
                            "time": local(p.point.at, tz),
                            "accuracy_m": p.point.accuracy_m, "speed_mps": p.point.speed_mps,
                        },
                    })
                })
                .collect(),
        ),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["device", "seq", "time", "lon", "lat", "accuracy_m", "speed_mps"])?;
            for p in points {
                let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
                w.write_record([
                    p.actor.to_string(),
                    p.seq.to_string(),
                    local(p.point.at, tz),
                    p.point.pos.lon().to_string(),
                    p.point.pos.lat().to_string(),
                    opt(p.point.accuracy_m),
                    opt(p.point.speed_mps),
                ])?;
            }
            Ok(w.into_inner()?)
        }
        Format::Gpx => gpx(|w| {
            for run in points.chunk_by(|a, b| a.actor == b.actor) {
                w.write_event(Event::Start(BytesStart::new("trk")))?;
                text(w, "name", &run[0].actor.to_string())?;
                w.write_event(Event::Start(BytesStart::new("trkseg")))?;
                for p in run {
                    w.write_event(Event::Start(point_start("trkpt", p.point.pos)))?;
                    text(w, "time", &p.point.at.to_rfc3339())?;
                    if let Some(a) = p.point.accuracy_m {
                        // GPX has no metres of accuracy; its closest is HDOP.
                        text(w, "desc", &format!("accuracy {a} m"))?;
                    }
                    w.write_event(Event::End(BytesEnd::new("trkpt")))?;
                }
                w.write_event(Event::End(BytesEnd::new("trkseg")))?;
                w.write_event(Event::End(BytesEnd::new("trk")))?;
            }
            Ok(())
        }),
    }
}

fn statuses(c: &CaseSummary) -> String {
    c.status
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("|")
}

/// Cases (a case with no position yet is left out of GeoJSON and GPX,
/// kept in CSV with empty coordinates).
pub fn cases(rows: &[CaseRow], format: Format, tz: Tz) -> Result<Vec<u8>> {
    let when = |c: &CaseSummary| c.reported_at.map(|t| local(t, tz)).unwrap_or_default();
    match format {
        Format::Geojson => collection(
            rows.iter()
                .filter_map(|r| {
                    let pos = r.pos?;
                    let c = &r.summary;
                    Some(json!({
                        "type": "Feature",
                        "geometry": { "type": "Point", "coordinates": [pos.lon(), pos.lat()] },
                        "properties": {
                            "id": c.id.to_string(), "status": statuses(c), "conflict": c.conflict,
                            "category": c.category, "category_name": c.category_name,
                            "cell": c.cell, "description": c.description,
                            "reported_at": when(c), "collector": c.collector, "photos": c.photos,
                        },
                    }))
                })
                .collect(),
        ),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "id",
                "status",
                "category",
                "category_name",
                "cell",
                "description",
                "reported_at",
                "collector",
                "photos",
                "lon",
                "lat",
            ])?;
            for r in rows {
                let c = &r.summary;
                w.write_record([
                    c.id.to_string(),
                    statuses(c),
                    c.category.clone().unwrap_or_default(),
                    c.category_name.clone().unwrap_or_default(),
                    c.cell.clone().unwrap_or_default(),
                    c.description.clone().unwrap_or_default(),
                    when(c),
                    c.collector.clone().unwrap_or_default(),
                    c.photos.to_string(),
                    r.pos.map(|p| p.lon().to_string()).unwrap_or_default(),
                    r.pos.map(|p| p.lat().to_string()).unwrap_or_default(),
                ])?;
            }
            Ok(w.into_inner()?)
        }
        Format::Gpx => gpx(|w| {
            for r in rows {
                let (Some(pos), c) = (r.pos, &r.summary) else {
                    continue;
                };
                w.write_event(Event::Start(point_start("wpt", pos)))?;
                if let Some(t) = c.reported_at {
                    text(w, "time", &t.to_rfc3339())?;
                }
                text(w, "name", &c.id.to_string())?;
                text(w, "desc", c.description.as_deref().unwrap_or(""))?;
                text(w, "type", c.category.as_deref().unwrap_or(""))?;
                w.write_event(Event::End(BytesEnd::new("wpt")))?;
            }
            Ok(())
        }),
    }
}
