//! The coverage map of a collector's day as SVG: assigned cells coloured by
//! the share of their windows covered, the day's track drawn over them.
//! Reviewers would rather look than read.

use chrono::NaiveDate;
use field_core::assess::coverage;
use field_core::geo::tiling::outline;
use geo::{BoundingRect, CoordsIter};

use super::{Center, Result, ServiceError};
use crate::storage::{Principal, Role};

const SIZE: f64 = 800.0;
const MARGIN: f64 = 20.0;

/// Red (nothing covered) through amber to green (everything covered).
fn colour(share: f64) -> String {
    let s = share.clamp(0.0, 1.0);
    let (r, g) = if s < 0.5 {
        (220.0, 60.0 + 340.0 * s)
    } else {
        (220.0 - 340.0 * (s - 0.5), 230.0)
    };
    format!("rgb({:.0},{:.0},70)", r, g)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Center {
    pub fn coverage_map(&self, p: &Principal, collector: &str, day: &str) -> Result<String> {
        self.require_staff(p)?;
        let day: NaiveDate = day
            .parse()
            .map_err(|_| super::invalid("day", format!("`{day}` is not YYYY-MM-DD")))?;
        let user = self
            .storage
            .users()?
            .into_iter()
            .find(|u| u.role == Role::Collector && (u.id == collector || u.name == collector))
            .ok_or_else(|| ServiceError::NotFound(format!("collector {collector}")))?;
        let cfg = self.city_config()?.config;
        let patrol = cfg.patrol.patrol_day(day)?;
        let grid = match self.storage.grid()? {
            Some((_, g)) => field_core::import::parse_grid(&g.to_string(), &Default::default())?,
            None => Vec::new(),
        };
        let cells: Vec<_> = grid
            .into_iter()
            .filter(|c| user.cells.iter().any(|x| x == c.code.as_str()))
            .collect();
        if cells.is_empty() {
            return Err(super::invalid(
                "collector",
                "has no assigned cells in the grid",
            ));
        }
        let mut points = Vec::new();
        for d in self.storage.devices_of(&user.id)? {
            points.extend(
                self.storage
                    .track_between(d.actor, patrol.start_ms, patrol.end_ms)?,
            );
        }
        points.sort_by_key(|p| p.at);
        let windows = coverage(&cells, &patrol, &points, &cfg.patrol);
        let bounds = outline(&cells)
            .bounding_rect()
            .ok_or_else(|| ServiceError::Internal("empty outline".into()))?;
        let k = bounds.min().y.to_radians().cos();
        let (w, h) = (
            (bounds.max().x - bounds.min().x) * k,
            bounds.max().y - bounds.min().y,
        );
        let scale = (SIZE - 2.0 * MARGIN) / w.max(h).max(1e-9);
        let xy = |lon: f64, lat: f64| {
            (
                MARGIN + (lon - bounds.min().x) * k * scale,
                MARGIN + (bounds.max().y - lat) * scale,
            )
        };
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {SIZE} {SIZE}\" width=\"{SIZE}\" height=\"{SIZE}\" font-family=\"sans-serif\" font-size=\"10\">\n<title>{} {}</title>\n",
            escape(&user.name),
            day
        );
        for c in &cells {
            let mine: Vec<_> = windows
                .iter()
                .filter(|w| w.cell == c.code.as_str())
                .collect();
            let share = mine.iter().filter(|w| w.covered).count() as f64 / mine.len().max(1) as f64;
            for poly in &c.geometry.0 {
                let pts: Vec<String> = poly
                    .exterior()
                    .coords_iter()
                    .map(|co| xy(co.x, co.y))
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                svg.push_str(&format!(
                    "<polygon class=\"cell\" data-cell=\"{}\" data-covered=\"{:.3}\" points=\"{}\" fill=\"{}\" fill-opacity=\"0.6\" stroke=\"#333\" stroke-width=\"1\"><title>{} {} {}/{} windows</title></polygon>\n",
                    c.code,
                    share,
                    pts.join(" "),
                    colour(share),
                    c.code,
                    c.zone.as_str(),
                    mine.iter().filter(|w| w.covered).count(),
                    mine.len()
                ));
            }
        }
        if !points.is_empty() {
            let line: Vec<String> = points
                .iter()
                .map(|p| xy(p.pos.lon(), p.pos.lat()))
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            svg.push_str(&format!("<polyline class=\"track\" points=\"{}\" fill=\"none\" stroke=\"#1f4fd8\" stroke-width=\"1.5\"/>\n", line.join(" ")));
        }
        let covered = windows.iter().filter(|w| w.covered).count();
        svg.push_str(&format!(
            "<text x=\"{MARGIN}\" y=\"{:.0}\">{} · {} · coverage {}/{} windows · {} track points</text>\n</svg>\n",
            SIZE - 5.0,
            escape(&user.name),
            day,
            covered,
            windows.len(),
            points.len()
        ));
        Ok(svg)
    }
}
