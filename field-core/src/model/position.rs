//! WGS84 positions. Serialized as `[lon, lat]` like GeoJSON.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// A WGS84 longitude/latitude pair in degrees, finite and in range.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "[f64; 2]", into = "[f64; 2]")]
pub struct LonLat {
    lon: f64,
    lat: f64,
}

impl LonLat {
    /// Checks both coordinates; errors name `lon` or `lat` and the reason.
    pub fn new(lon: f64, lat: f64) -> Result<LonLat> {
        check_coordinate("lon", lon, 180.0)?;
        check_coordinate("lat", lat, 90.0)?;
        Ok(LonLat { lon, lat })
    }

    pub fn lon(self) -> f64 {
        self.lon
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn to_point(self) -> geo::Point<f64> {
        geo::Point::new(self.lon, self.lat)
    }

    /// Geodesic distance in metres (WGS84 ellipsoid).
    pub fn distance_m(self, other: LonLat) -> f64 {
        use geo::{Distance, Geodesic};
        Geodesic.distance(self.to_point(), other.to_point())
    }
}

fn check_coordinate(field: &str, value: f64, limit: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(invalid(field, format!("{value} is not a finite number")));
    }
    if value.abs() > limit {
        return Err(invalid(
            field,
            format!("{value} is out of range (-{limit} to {limit} degrees)"),
        ));
    }
    Ok(())
}

impl TryFrom<[f64; 2]> for LonLat {
    type Error = crate::Error;
    fn try_from(v: [f64; 2]) -> Result<LonLat> {
        LonLat::new(v[0], v[1])
    }
}

impl From<LonLat> for [f64; 2] {
    fn from(p: LonLat) -> [f64; 2] {
        [p.lon, p.lat]
    }
}

impl std::fmt::Display for LonLat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.6},{:.6}", self.lon, self.lat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_out_of_range_and_nan() {
        let e = LonLat::new(120.0, 91.0).unwrap_err().to_string();
        assert!(e.starts_with("lat:"), "{e}");
        assert!(
            LonLat::new(f64::NAN, 30.0)
                .unwrap_err()
                .to_string()
                .contains("lon")
        );
        assert!(LonLat::new(120.0, f64::INFINITY).is_err());
        assert!(LonLat::new(-180.0, -90.0).is_ok());
    }

    #[test]
    fn deserialising_checks_too() {
        assert!(serde_json::from_str::<LonLat>("[120.0, 95.0]").is_err());
        let p: LonLat = serde_json::from_str("[120.5, 30.25]").unwrap();
        assert_eq!((p.lon(), p.lat()), (120.5, 30.25));
    }

    #[test]
    fn distance_is_geodesic_metres() {
        let a = LonLat::new(120.0, 30.0).unwrap();
        let b = LonLat::new(120.0, 30.001).unwrap();
        let d = a.distance_m(b);
        assert!((d - 110.85).abs() < 0.5, "{d}");
    }
}
