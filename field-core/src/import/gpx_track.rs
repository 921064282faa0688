//! GPX 1.0 and 1.1 tracks to track points: a tolerant reader over
//! `quick-xml` (the `gpx` crate refuses standard files: `<magvar>`, GPX 1.0
//! `<course>` and `<url>`, a `<gpx>` without `version`, an empty `<fix>`).
//!
//! Every point of every track and segment is taken; elements we do not use
//! (elevation, names, extensions, `<course>`, `<magvar>`, …) are skipped
//! whatever they hold. A file with no track points but waypoints (some
//! loggers write fixes that way) yields the waypoints. Routes are plans,
//! not where anyone walked: never imported. A point without a usable time
//! or position cannot be placed in a patrol window: it is skipped and
//! reported with its line and why; a file where no point is usable is
//! refused whole. Entities are never expanded (no billion laughs); the
//! input is bounded in bytes and points.

use std::io::Read;

use quick_xml::events::Event;

use crate::error::{Result, invalid};
use crate::model::{LonLat, Timestamp, TrackPoint};

/// User-equivalent range error of a consumer GNSS receiver, in metres:
/// horizontal accuracy ≈ HDOP × UERE. Used only when a GPX point has `hdop`.
pub const HDOP_UERE_M: f64 = 5.0;
/// The largest GPX file read (a month of 1 s fixes is ~300 MB).
pub const MAX_GPX_BYTES: u64 = 512 * 1024 * 1024;
/// Most points one file may hold.
pub const MAX_GPX_POINTS: usize = 5_000_000;

/// A point left out of an import, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SkippedPoint {
    /// `line 12 (track 1 segment 1 point 2)`.
    pub point: String,
    pub reason: String,
}

/// What a GPX file held.
#[derive(Clone, Debug, Default)]
pub struct GpxRead {
    pub points: Vec<TrackPoint>,
    pub skipped: Vec<SkippedPoint>,
}

/// Reads the usable track points of a GPX document, in file order.
pub fn read_gpx(reader: impl Read) -> Result<Vec<TrackPoint>> {
    read_gpx_report(reader).map(|r| r.points)
}

/// Which value of a point is being read.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    Time,
    Hdop,
    Speed,
}

/// A point being read: where it is, and its raw values.
struct Pending {
    point: String,
    lat: Option<String>,
    lon: Option<String>,
    time: Option<String>,
    hdop: Option<String>,
    speed: Option<String>,
    /// An entity other than the five XML ones inside a value.
    bad_entity: bool,
}

fn unreadable(line: usize, why: impl std::fmt::Display) -> crate::Error {
    invalid(
        "gpx",
        format!("not a readable GPX file (line {line}): {why}"),
    )
}

/// Reads the usable points and reports the skipped ones.
pub fn read_gpx_report(reader: impl Read) -> Result<GpxRead> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_GPX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid("gpx", format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_GPX_BYTES {
        return Err(invalid(
            "gpx",
            format!("larger than {MAX_GPX_BYTES} bytes: split it by day"),
        ));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut r = quick_xml::Reader::from_reader(body);
    r.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let (mut line, mut seen) = (1usize, 0usize);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let (mut t, mut s, mut p, mut w) = (0usize, 0usize, 0usize, 0usize);
    let mut pending: Option<Pending> = None;
    let mut field: Option<Field> = None;
    let mut value = String::new();
    let mut tracks: Vec<Pending> = Vec::new();
    let mut waypoints: Vec<Pending> = Vec::new();
    let mut root = false;
    loop {
        let event = r.read_event_into(&mut buf);
        let pos = (r.buffer_position() as usize).min(body.len());
        line += body[seen..pos].iter().filter(|b| **b == b'\n').count();
        seen = pos;
        let event = event.map_err(|e| unreadable(line, e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.local_name().as_ref().to_vec();
                let parent = stack.last().map(Vec::as_slice);
                match (parent, name.as_slice()) {
                    (None, b"gpx") => root = true,
                    (None, other) => {
                        return Err(unreadable(
                            line,
                            format!(
                                "the root element is <{}>, not <gpx>",
                                String::from_utf8_lossy(other)
                            ),
                        ));
                    }
                    (Some(b"gpx"), b"trk") => {
                        t += 1;
                        s = 0;
                    }
                    (Some(b"trk"), b"trkseg") => {
                        s += 1;
                        p = 0;
                    }
                    (Some(b"trkseg"), b"trkpt") | (Some(b"gpx"), b"wpt") => {
                        let point = if name == b"trkpt" {
                            p += 1;
                            format!("line {line} (track {t} segment {s} point {p})")
                        } else {
                            w += 1;
                            format!("line {line} (waypoint {w})")
                        };
                        let attr = |key: &str| {
                            e.try_get_attribute(key).ok().flatten().and_then(|a| {
                                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .ok()
                                    .map(|v| v.trim().to_string())
                            })
                        };
                        let pt = Pending {
                            point,
                            lat: attr("lat"),
                            lon: attr("lon"),
                            time: None,
                            hdop: None,
                            speed: None,
                            bad_entity: false,
                        };
                        if tracks.len() + waypoints.len() >= MAX_GPX_POINTS {
                            return Err(invalid(
                                "gpx",
                                format!("more than {MAX_GPX_POINTS} points: split it by day"),
                            ));
                        }
                        if empty {
                            push_point(pt, name == b"trkpt", &mut tracks, &mut waypoints);
                        } else {
                            pending = Some(pt);
                        }
                    }
                    (Some(b"trkpt" | b"wpt"), b"time" | b"hdop" | b"speed")
                        if pending.is_some() =>
                    {
                        field = Some(match name.as_slice() {
                            b"time" => Field::Time,
                            b"hdop" => Field::Hdop,
                            _ => Field::Speed,
                        });
                        value.clear();
                        if empty {
                            field = None;
                        }
                    }
                    _ => {}
                }
                if !empty {
                    stack.push(name);
                }
            }
            Event::Text(ref e) if field.is_some() => {
                value.push_str(&e.decode().map_err(|err| unreadable(line, err))?);
            }
            Event::GeneralRef(ref e) if field.is_some() => {
                let name: &[u8] = e;
                match name {
                    b"amp" => value.push('&'),
                    b"lt" => value.push('<'),
                    b"gt" => value.push('>'),
                    b"quot" => value.push('"'),
                    b"apos" => value.push('\''),
                    _ => {
                        if let Some(pt) = pending.as_mut() {
                            pt.bad_entity = true;
                        }
                    }
                }
            }
            Event::End(ref e) => {
                let name = e.local_name().as_ref().to_vec();
                stack.pop();
                match name.as_slice() {
                    b"time" | b"hdop" | b"speed" if field.is_some() => {
                        if let Some(pt) = pending.as_mut() {
                            let v = Some(value.trim().to_string()).filter(|v| !v.is_empty());
                            match field {
                                Some(Field::Time) => pt.time = v,
                                Some(Field::Hdop) => pt.hdop = v,
                                Some(Field::Speed) => pt.speed = v,
                                None => {}
                            }
                        }
                        field = None;
                    }
                    b"trkpt" | b"wpt" => {
                        if let Some(pt) = pending.take() {
                            push_point(pt, name == b"trkpt", &mut tracks, &mut waypoints);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !root {
        return Err(unreadable(line, "no <gpx> element"));
    }
    let candidates = if tracks.is_empty() { waypoints } else { tracks };
    if candidates.is_empty() {
        return Err(invalid(
            "gpx",
            "holds no track points and no waypoints (routes are plans, not patrols)",
        ));
    }
    let total = candidates.len();
    let mut out = GpxRead::default();
    for pt in candidates {
        let point = pt.point.clone();
        match to_point(pt) {
            Ok(tp) => out.points.push(tp),
            Err(reason) => out.skipped.push(SkippedPoint { point, reason }),
        }
    }
    if out.points.is_empty() {
        let first = &out.skipped[0];
        let untimed = out.skipped.iter().filter(|s| s.reason == NO_TIME).count();
        return Err(invalid(
            "gpx",
            format!(
                "{} {} ({untimed} of {total} points have no <time>): no point can be placed in a patrol window, nothing was imported",
                first.point, first.reason
            ),
        ));
    }
    Ok(out)
}

const NO_TIME: &str = "has no <time>";

fn push_point(pt: Pending, track: bool, tracks: &mut Vec<Pending>, waypoints: &mut Vec<Pending>) {
    if track {
        tracks.push(pt);
    } else {
        waypoints.push(pt);
    }
}

/// A GPX time: RFC 3339, or without a zone (GPX times are UTC).
fn gpx_time(text: &str) -> std::result::Result<Timestamp, String> {
    let zoned = text.ends_with('Z')
        || text.ends_with('z')
        || text
            .rsplit_once('T')
            .is_some_and(|(_, clock)| clock.contains('+') || clock.contains('-'));
    let full = if zoned {
        text.to_string()
    } else {
        format!("{text}Z")
    };
    Timestamp::parse("time", &full).map_err(|e| format!("<time> {text:?}: {e}"))
}

fn number(what: &str, text: Option<&str>) -> std::result::Result<Option<f64>, String> {
    match text {
        None => Ok(None),
        Some(t) => t
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| format!("{what} {t:?} is not a number")),
    }
}

fn to_point(pt: Pending) -> std::result::Result<TrackPoint, String> {
    if pt.bad_entity {
        return Err("holds an entity other than the five of XML".into());
    }
    let lat = number("lat", pt.lat.as_deref())?.ok_or("has no lat")?;
    let lon = number("lon", pt.lon.as_deref())?.ok_or("has no lon")?;
    let pos = LonLat::new(lon, lat).map_err(|e| e.to_string())?;
    let at = gpx_time(pt.time.as_deref().ok_or(NO_TIME)?)?;
    // Optional values that do not read are dropped, not the point.
    let accuracy = number("hdop", pt.hdop.as_deref())
        .ok()
        .flatten()
        .filter(|h| *h >= 0.0)
        .map(|h| h * HDOP_UERE_M);
    let speed = number("speed", pt.speed.as_deref())
        .ok()
        .flatten()
        .filter(|s| *s >= 0.0);
    TrackPoint::new(at, pos, accuracy, speed).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMED: &str = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><trkseg>
  <trkpt lat="30.18" lon="120.26"><time>2026-11-26T00:00:00Z</time><hdop>1.2</hdop></trkpt>
  <trkpt lat="30.181" lon="120.261"><time>2026-11-26T00:00:05Z</time></trkpt>
 </trkseg></trk></gpx>"#;

    #[test]
    fn reads_points_time_and_accuracy_from_hdop() {
        let pts = read_gpx(TIMED.as_bytes()).unwrap();
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].accuracy_m, Some(6.0));
        assert_eq!(pts[1].accuracy_m, None);
        assert_eq!(pts[1].at.millis() - pts[0].at.millis(), 5000);
    }

    #[test]
    fn untimed_points_are_skipped_and_named_by_line() {
        let text = TIMED.replace("<time>2026-11-26T00:00:05Z</time>", "");
        let r = read_gpx_report(text.as_bytes()).unwrap();
        assert_eq!(r.points.len(), 1);
        assert_eq!(
            r.skipped,
            vec![SkippedPoint {
                point: "line 5 (track 1 segment 1 point 2)".into(),
                reason: "has no <time>".into()
            }]
        );
        let none = text.replace("<time>2026-11-26T00:00:00Z</time>", "");
        let e = read_gpx(none.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("line 4 (track 1 segment 1 point 1) has no <time> (2 of 2"),
            "{e}"
        );
    }

    #[test]
    fn standard_elements_the_gpx_crate_refuses_are_read() {
        // GPX 1.0 with <course>, <url>, <magvar>, an empty <fix>, no
        // version, a BOM, a zone-less time.
        let text = "\u{feff}<?xml version=\"1.0\"?>\n<gpx creator=\"logger\" xmlns=\"http://www.topografix.com/GPX/1/0\">\n<url>http://example.com</url>\n<trk><trkseg>\n<trkpt lat=\"30.18\" lon=\"120.26\"><time>2026-11-26T00:00:00</time><course>90.5</course><speed>1.5</speed><magvar>3.1</magvar><fix/></trkpt>\n<trkpt lat=\"30.181\" lon=\"120.261\"><time>2026-11-26T00:00:05.250+08:00</time><fix></fix></trkpt>\n</trkseg></trk>\n<rte><rtept lat=\"1\" lon=\"1\"><time>2026-11-26T00:00:00Z</time></rtept></rte>\n</gpx>";
        let r = read_gpx_report(text.as_bytes()).unwrap();
        assert_eq!(r.points.len(), 2, "{:?}", r.skipped);
        assert!(r.skipped.is_empty());
        assert_eq!(r.points[0].speed_mps, Some(1.5));
        assert_eq!(
            r.points[0].at.millis(),
            Timestamp::parse("t", "2026-11-26T00:00:00Z")
                .unwrap()
                .millis(),
            "a time without a zone is UTC"
        );
    }

    #[test]
    fn broken_files_are_refused_naming_the_line() {
        let e = read_gpx("<gpx><trk><trkseg>\n<trkpt lat=\"1\" lon=\"2\"></trk>".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a readable GPX file (line 2)"), "{e}");
        let e = read_gpx("<kml></kml>".as_bytes()).unwrap_err().to_string();
        assert!(e.contains("not <gpx>"), "{e}");
        let e = read_gpx("<gpx><rte><rtept lat=\"1\" lon=\"1\"/></rte></gpx>".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no track points"), "{e}");
    }
}
