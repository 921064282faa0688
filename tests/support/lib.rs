//! Helpers for end-to-end tests: build and locate the real binaries, run
//! them in throw-away homes, write real input files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace's binaries, built once per test run (cargo does not build
/// other packages' binaries for an integration test).
fn built_bins() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "field-cli",
                "-p",
                "sync-server",
                "--bins",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/e2e-… → target/<profile>/
        exe.parent()
            .and_then(Path::parent)
            .expect("target layout")
            .to_path_buf()
    })
}

/// The `field` binary (FIELD_BIN overrides).
pub fn field_bin() -> PathBuf {
    std::env::var_os("FIELD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| built_bins().join("field"))
}

/// The `sync-server` binary (SYNC_SERVER_BIN overrides).
pub fn server_bin() -> PathBuf {
    std::env::var_os("SYNC_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| built_bins().join("sync-server"))
}

/// A device home in a temp dir, and a way to run `field` against it.
pub struct Device {
    pub dir: tempfile::TempDir,
}

/// A finished `field` run.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Device {
    pub fn init(collector: &str) -> Device {
        let d = Device {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let r = d.run(&["init", "--collector", collector]);
        assert!(r.ok, "init failed: {}", r.stderr);
        d
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(field_bin());
        c.arg("--home").arg(self.home()).args(args);
        // The tests read the English words; a test of the Chinese ones
        // removes or sets FIELD_LANG itself.
        c.env_remove("FIELD_SERVER")
            .env_remove("FIELD_TOKEN")
            .env_remove("FIELD_HOME")
            .env("FIELD_LANG", "en");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("field runs").into()
    }

    /// Runs and requires success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert!(r.ok, "field {args:?} failed:\n{}", r.stderr);
        r
    }

    pub fn digest(&self) -> String {
        self.ok(&["digest", "--json"]).json()["digest"]
            .as_str()
            .expect("digest")
            .to_string()
    }

    pub fn change_count(&self) -> u64 {
        self.ok(&["digest", "--json"]).json()["changes"]
            .as_u64()
            .expect("changes")
    }

    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.home().join(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    /// `field case report` with one photo, at `at` (RFC 3339) or now;
    /// returns the new case's id.
    pub fn report(
        &self,
        (category, lon, lat): (&str, &str, &str),
        desc: &str,
        photo: &Path,
        at: Option<&str>,
    ) -> String {
        let photo = photo.to_str().expect("a UTF-8 test path");
        let mut args = vec![
            "case",
            "report",
            "--category",
            category,
            "--lon",
            lon,
            "--lat",
            lat,
            "--desc",
            desc,
            "--photo",
            photo,
        ];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        self.ok(&args).stdout.trim().to_string()
    }
}

/// A real PNG with distinct bytes per seed.
pub fn png(seed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 8, 8);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().expect("png header");
        let px: Vec<u8> = (0..192u32)
            .map(|i| (i.wrapping_mul(seed | 1)) as u8)
            .collect();
        w.write_image_data(&px).expect("png data");
    }
    out.extend_from_slice(&seed.to_le_bytes());
    out
}

/// The codes of [`grid_geojson`]'s cells, west→east, north→south.
pub const CELLS: [&str; 9] = [
    "330109001001001",
    "330109001001002",
    "330109001001003",
    "330109001001004",
    "330109001001005",
    "330109001001006",
    "330109001001007",
    "330109001001008",
    "330109001001009",
];

/// A 3×3 grid of ~100 m cells at Xiaoshan, codes 330109001001001..009,
/// as GeoJSON text; `overlap` shifts the last cell onto its neighbour.
pub fn grid_geojson(overlap: bool) -> String {
    let (w, n, d) = (120.26, 30.19, 0.001);
    let mut features = Vec::new();
    for r in 0..3 {
        for c in 0..3 {
            let i = r * 3 + c;
            let zone = ["red", "yellow", "blue"][i % 3];
            let shift = if overlap && i == 8 { d / 2.0 } else { 0.0 };
            let (x0, y0) = (w + c as f64 * d - shift, n - r as f64 * d);
            let (x1, y1) = (x0 + d, y0 - d);
            features.push(serde_json::json!({
                "type": "Feature",
                "properties": { "code": format!("330109001001{:03}", i + 1), "zone": zone },
                "geometry": { "type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] }
            }));
        }
    }
    serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string()
}

/// A GPX 1.1 track of `n` timed points walking east from the grid's corner.
pub fn gpx_track(n: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" creator=\"field-e2e\" xmlns=\"http://www.topografix.com/GPX/1/1\"><trk><trkseg>\n",
    );
    for i in 0..n {
        let t = 1_764_115_200 + i as i64 * 5; // 2025-11-26T00:00:00Z + 5 s steps
        let when = time_rfc3339(t);
        s.push_str(&format!(
            "<trkpt lat=\"{:.7}\" lon=\"{:.7}\"><time>{when}</time><hdop>1.0</hdop></trkpt>\n",
            30.1895 - (i % 500) as f64 * 1e-6,
            120.2605 + (i % 1000) as f64 * 2e-6
        ));
    }
    s.push_str("</trkseg></trk></gpx>\n");
    s
}

fn time_rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .expect("test times are in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub mod balancer;
pub mod proxy;
pub mod raw_http;
pub mod s3;
pub mod schemas;
pub mod server;

impl Device {
    /// The device's own token (after `field enroll`).
    pub fn token(&self) -> String {
        let conn = rusqlite::Connection::open(self.home().join("device.db")).expect("device db");
        let sync: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'sync'", [], |r| {
                r.get(0)
            })
            .expect("enrolled");
        let v: serde_json::Value = serde_json::from_str(&sync).expect("settings");
        v["token"].as_str().expect("token").to_string()
    }

    pub fn actor(&self) -> String {
        self.ok(&["digest", "--json"]);
        let conn = rusqlite::Connection::open(self.home().join("device.db")).expect("device db");
        conn.query_row("SELECT value FROM meta WHERE key = 'actor'", [], |r| {
            r.get(0)
        })
        .expect("actor")
    }

    pub fn status(&self) -> serde_json::Value {
        self.ok(&["status", "--json"]).json()
    }

    pub fn digests(&self) -> serde_json::Value {
        self.ok(&["digest", "--json"]).json()
    }
}

/// A real JPEG whose EXIF says it was taken at `datetime`
/// (`YYYY:MM:DD HH:MM:SS`, local time, as cameras write it).
pub fn jpeg_with_exif(seed: u8, datetime: &str) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 16) as u8, (y * 16) as u8, seed])
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .expect("jpeg");
    let jpeg = jpeg.into_inner();
    let field = exif::Field {
        tag: exif::Tag::DateTimeOriginal,
        ifd_num: exif::In::PRIMARY,
        value: exif::Value::Ascii(vec![datetime.as_bytes().to_vec()]),
    };
    let mut writer = exif::experimental::Writer::new();
    writer.push_field(&field);
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("exif");
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(tiff.into_inner());
    let len = (payload.len() + 2) as u16;
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1]);
    out.extend(len.to_be_bytes());
    out.extend(payload);
    out.extend(&jpeg[2..]);
    out
}

/// A raw push of `changes` (as a device, or a forger, would send them),
/// pulling nothing; the server's answer.
pub fn push(
    t: &mut field_core::sync::http::HttpTransport,
    changes: Vec<field_core::crdt::Change>,
) -> field_core::sync::protocol::SyncResponse {
    let req = field_core::sync::protocol::SyncRequest {
        device_time_ms: None,
        protocol: field_core::sync::protocol::PROTOCOL_VERSION,
        push: changes,
        pull: field_core::sync::protocol::PullRequest::default(),
    };
    t.call("POST", "/v1/sync", Some(&req))
        .expect("sync answers")
}

/// A fresh PostgreSQL database on the test cluster (`FIELD_PG_URL`, which
/// `scripts/test` starts), or `None` when there is none here — a failure
/// instead when the run requires it (`FIELD_PG_REQUIRED`).
pub fn pg_database() -> Option<String> {
    let Ok(admin) = std::env::var("FIELD_PG_URL") else {
        assert!(
            std::env::var_os("FIELD_PG_REQUIRED").is_none(),
            "FIELD_PG_REQUIRED is set but FIELD_PG_URL is not: start scripts/pg-cluster"
        );
        eprintln!("skipped: no PostgreSQL here (FIELD_PG_URL unset; scripts/test starts one)");
        return None;
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    Some(sync_server::storage::postgres::create_database(&admin, &name).expect("test database"))
}
