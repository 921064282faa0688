//! GPX 1.0 and 1.1 tracks (via the `gpx` crate) to track points.
//!
//! Every point of every track and segment is taken. A file with no track
//! points but timed waypoints (some loggers write fixes that way) yields the
//! waypoints. Routes are plans, not where anyone walked: never imported.
//! A point without a time cannot be placed in a patrol window, so a file
//! containing one is refused whole, naming the point.

use std::io::Read;

use crate::error::{Result, invalid};
use crate::model::{LonLat, Timestamp, TrackPoint};

/// User-equivalent range error of a consumer GNSS receiver, in metres:
/// horizontal accuracy ≈ HDOP × UERE. Used only when a GPX point has `hdop`.
pub const HDOP_UERE_M: f64 = 5.0;

/// Reads every track point of a GPX document, in file order.
pub fn read_gpx(reader: impl Read) -> Result<Vec<TrackPoint>> {
    let doc = gpx::read(std::io::BufReader::new(reader))
        .map_err(|e| invalid("gpx", format!("not a readable GPX file: {e}")))?;
    let mut located: Vec<(String, &gpx::Waypoint)> = Vec::new();
    for (t, track) in doc.tracks.iter().enumerate() {
        for (s, seg) in track.segments.iter().enumerate() {
            for (p, w) in seg.points.iter().enumerate() {
                located.push((
                    format!("track {} segment {} point {}", t + 1, s + 1, p + 1),
                    w,
                ));
            }
        }
    }
    if located.is_empty() {
        located = doc
            .waypoints
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("waypoint {}", i + 1), w))
            .collect();
    }
    if located.is_empty() {
        return Err(invalid(
            "gpx",
            "holds no track points and no waypoints (routes are plans, not patrols)",
        ));
    }
    let untimed = located.iter().filter(|(_, w)| w.time.is_none()).count();
    if let Some((where_, _)) = located.iter().find(|(_, w)| w.time.is_none()) {
        return Err(invalid(
            "gpx",
            format!(
                "{where_} has no <time> ({untimed} of {} points lack one): a patrol track needs \
                 the time of every fix, nothing was imported",
                located.len()
            ),
        ));
    }
    located
        .iter()
        .map(|(where_, w)| to_point(where_, w))
        .collect()
}

fn to_point(where_: &str, w: &gpx::Waypoint) -> Result<TrackPoint> {
    let p = w.point();
    let pos =
        LonLat::new(p.x(), p.y()).map_err(|e| invalid(format!("gpx {where_}"), e.to_string()))?;
    let time: time::OffsetDateTime = w.time.expect("untimed points were refused above").into();
    let ms = (time.unix_timestamp_nanos() / 1_000_000) as i64;
    let at = Timestamp::from_millis(&format!("gpx {where_} time"), ms)?;
    let accuracy = w
        .hdop
        .filter(|h| h.is_finite() && *h >= 0.0)
        .map(|h| h * HDOP_UERE_M);
    let speed = w.speed.filter(|s| s.is_finite() && *s >= 0.0);
    TrackPoint::new(at, pos, accuracy, speed)
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
    fn untimed_point_refuses_the_file_and_names_it() {
        let text = TIMED.replace("<time>2026-11-26T00:00:05Z</time>", "");
        let e = read_gpx(text.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("track 1 segment 1 point 2 has no <time>"), "{e}");
    }
}
