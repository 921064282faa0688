//! Server configuration, one TOML file (every key documented in
//! `docs/configuration.md`): flags, then environment, then the file, then
//! defaults. Every key can be set from the environment as
//! `SYNC_SERVER_<SECTION>_<KEY>` (`SYNC_SERVER_LIMITS_MAX_BODY_BYTES`,
//! `SYNC_SERVER_TLS_CERT`, top-level keys as `SYNC_SERVER_LISTEN`).
//! A refused configuration names the key and the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Limits the server enforces on every request.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body of any JSON endpoint, in bytes.
    pub max_body_bytes: usize,
    /// Most changes one push may carry.
    pub max_changes_per_push: usize,
    /// Largest photo chunk, in bytes.
    pub max_chunk_bytes: usize,
    /// A client must send a request's headers within this (also the
    /// longest an idle keep-alive connection stays open), in seconds.
    pub header_timeout_s: u64,
    /// A request body must arrive within this, in seconds.
    pub body_timeout_s: u64,
    /// A handler must answer within this, in seconds (then 408/503).
    pub request_timeout_s: u64,
    /// Open connections at once; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Photo bytes one device may upload per day (UTC).
    pub max_photo_bytes_per_device_day: u64,
    /// Device requests (syncs, photo uploads) served at once; more wait.
    pub max_concurrent_syncs: usize,
    /// Device requests that may wait for a turn; past this a request is
    /// turned away at once with 503 and `Retry-After`.
    pub max_waiting_syncs: usize,
    /// The longest a device request waits for its turn before 503, in seconds.
    pub admission_wait_s: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_changes_per_push: field_core::sync::protocol::MAX_CHANGES_PER_PUSH,
            max_chunk_bytes: 1024 * 1024,
            header_timeout_s: 10,
            body_timeout_s: 60,
            request_timeout_s: 120,
            max_connections: 4096,
            max_photo_bytes_per_device_day: 2 * 1024 * 1024 * 1024,
            max_concurrent_syncs: 8,
            max_waiting_syncs: 256,
            admission_wait_s: 30,
        }
    }
}

/// What the review queue flags, and the city's time zone (EXIF times carry
/// no zone; patrol hours are local).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewRules {
    /// IANA name, e.g. `Asia/Shanghai`.
    pub timezone: String,
    /// A new case this close to an open case of the same subclass is a likely duplicate.
    pub duplicate_radius_m: f64,
    /// A case further than this from the reporter's track at report time is flagged.
    pub track_distance_m: f64,
    /// Track points this close in time to the report locate the reporter.
    pub track_window_s: i64,
    /// A photo whose EXIF time is further than this from the report time is flagged.
    pub exif_minutes: i64,
    /// A report from a device whose clock was further than this from the
    /// server's when it arrived is flagged (`device_clock`).
    pub clock_skew_minutes: i64,
    /// A report claiming a time further than this before its device wrote
    /// it is flagged (`backdated`).
    pub backdate_minutes: i64,
}

impl Default for ReviewRules {
    fn default() -> ReviewRules {
        ReviewRules {
            timezone: "Asia/Shanghai".into(),
            duplicate_radius_m: 30.0,
            track_distance_m: 200.0,
            track_window_s: 300,
            exif_minutes: 30,
            clock_skew_minutes: 30,
            backdate_minutes: 60,
        }
    }
}

/// TLS terminated by the server itself: PEM files, re-read on SIGHUP.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain (PEM), leaf first.
    pub cert: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// A reverse proxy in front of the server: only requests from `trusted`
/// addresses have their forwarding headers believed.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Proxy {
    /// Proxy addresses (IPs) whose forwarding headers are believed.
    pub trusted: Vec<std::net::IpAddr>,
    /// The scheme the client used (`https` makes the console cookie Secure).
    pub proto_header: String,
    /// The host the client asked for (the console's same-origin check).
    pub host_header: String,
    /// The client's address (logs): the last entry the proxy appended.
    pub for_header: String,
}

impl Default for Proxy {
    fn default() -> Proxy {
        Proxy {
            trusted: Vec::new(),
            proto_header: "x-forwarded-proto".into(),
            host_header: "x-forwarded-host".into(),
            for_header: "x-forwarded-for".into(),
        }
    }
}

/// The Prometheus endpoint.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// A separate address serving only `/metrics`, without a token (bind it
    /// to a private interface). Without it, `/metrics` on the main listener
    /// asks for `token` (or the admin token) as a bearer.
    pub listen: Option<SocketAddr>,
    /// The bearer token a scraper presents on the main listener. Secret.
    pub token: Option<String>,
}

/// Log output.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `text` (for a terminal) or `json` (one object per line, for a collector).
    pub format: String,
    /// A `tracing` filter: `info`, `sync_server=debug,info`, …
    /// (`RUST_LOG` wins when set).
    pub level: String,
}

impl Default for Log {
    fn default() -> Log {
        Log {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// The server's own schedule, in the city's local time (`review.timezone`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Jobs {
    /// Run the scheduler at all (off: only the manual commands).
    pub enabled: bool,
    /// The nightly roll-up of the finished day, `HH:MM` local.
    pub nightly_at: String,
    /// Expiry of partial uploads and old console sessions, `HH:MM` local.
    pub expire_at: String,
    /// An online backup, `HH:MM` local (embedded backend only); off when empty.
    pub backup_at: String,
    /// Where scheduled backups go (one sub-directory per run).
    pub backup_dir: Option<PathBuf>,
    /// Scheduled backups kept; older ones are deleted after a good run.
    pub backup_keep: usize,
    /// How often the scheduler looks at the clock, in seconds.
    pub tick_s: u64,
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs {
            enabled: true,
            nightly_at: "02:00".into(),
            expire_at: "03:30".into(),
            backup_at: String::new(),
            backup_dir: None,
            backup_keep: 7,
            tick_s: 30,
        }
    }
}

/// The whole configuration: the TOML file's shape.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory: the embedded store, photos (unless `blobs`), the admin token.
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// `sqlite` (the embedded default: files in `data`) or `postgres://…`. Secret (password).
    pub database: String,
    /// Where photos live: a directory (default DATA/blobs) or
    /// `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`.
    pub blobs: Option<String>,
    /// The address browsers use (`https://center.example.cn`), when a proxy
    /// rewrites `Host`: the console's same-origin check compares with it.
    pub public_url: Option<String>,
    pub tls: Tls,
    pub proxy: Proxy,
    pub metrics: Metrics,
    pub log: Log,
    pub jobs: Jobs,
    pub limits: Limits,
    pub review: ReviewRules,
}

impl Default for FileConfig {
    fn default() -> FileConfig {
        FileConfig {
            data: PathBuf::from("server-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: "sqlite".into(),
            blobs: None,
            public_url: None,
            tls: Tls::default(),
            proxy: Proxy::default(),
            metrics: Metrics::default(),
            log: Log::default(),
            jobs: Jobs::default(),
            limits: Limits::default(),
            review: ReviewRules::default(),
        }
    }
}

/// A configuration refused: the key (`limits.max_body_bytes`, or the
/// environment variable) and why.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

fn refuse(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Environment variables that are not settings (the file's path, the
/// test harness's binary).
const NOT_SETTINGS: &[&str] = &["SYNC_SERVER_CONFIG", "SYNC_SERVER_BIN"];
const ENV_PREFIX: &str = "SYNC_SERVER_";

impl FileConfig {
    /// The file (if any) with the environment `env` laid over it, checked.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<FileConfig, ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| refuse(p.display().to_string(), format!("cannot read: {e}")))?;
                text.parse::<toml::Table>().map_err(|e| {
                    refuse(
                        p.display().to_string(),
                        format!("not TOML: {}", e.message()),
                    )
                })?
            }
            None => toml::Table::new(),
        };
        let shape = toml::Table::try_from(FileConfig::example())
            .map_err(|e| refuse("(defaults)", e.to_string()))?;
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !NOT_SETTINGS.contains(&k.as_str()))
            .collect();
        env.sort();
        for (var, value) in env {
            overlay(&mut table, &shape, &var, &value)?;
        }
        let config: FileConfig = FileConfig::deserialize(toml::Value::Table(table))
            .map_err(|e| refuse(key_of_error(&e), e.message().to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Every key set (options included), for the key list and the
    /// environment's types.
    fn example() -> FileConfig {
        let mut c = FileConfig {
            blobs: Some("s3://bucket?endpoint=http://127.0.0.1:9000&region=local".into()),
            public_url: Some("https://center.example.cn".into()),
            ..FileConfig::default()
        };
        c.tls.cert = Some("cert.pem".into());
        c.tls.key = Some("key.pem".into());
        c.metrics.listen = Some(SocketAddr::from(([127, 0, 0, 1], 9100)));
        c.metrics.token = Some("secret".into());
        c.jobs.backup_dir = Some("backups".into());
        c
    }

    /// What a valid file cannot say through its types alone.
    fn check(&self) -> Result<(), ConfigError> {
        if !(self.database == "sqlite"
            || self.database.starts_with("postgres://")
            || self.database.starts_with("postgresql://"))
        {
            return Err(refuse("database", "neither `sqlite` nor a postgres:// URL"));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(refuse("public_url", "must start with https:// or http://"));
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return Err(refuse("tls.key", "tls.cert is set but not the key")),
            (None, Some(_)) => {
                return Err(refuse("tls.cert", "tls.key is set but not the certificate"));
            }
            (Some(c), Some(k)) => {
                for (key, p) in [("tls.cert", c), ("tls.key", k)] {
                    if !p.is_file() {
                        return Err(refuse(
                            key,
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
            }
            _ => {}
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(refuse("log.format", "must be `text` or `json`"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(refuse("log.level", "not a tracing filter (try `info`)"));
        }
        if self.review.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(refuse(
                "review.timezone",
                format!(
                    "{:?} is not an IANA time zone (e.g. Asia/Shanghai)",
                    self.review.timezone
                ),
            ));
        }
        for (key, at) in [
            ("jobs.nightly_at", &self.jobs.nightly_at),
            ("jobs.expire_at", &self.jobs.expire_at),
        ] {
            local_time(at).map_err(|r| refuse(key, r))?;
        }
        if !self.jobs.backup_at.is_empty() {
            local_time(&self.jobs.backup_at).map_err(|r| refuse("jobs.backup_at", r))?;
            if self.jobs.backup_dir.is_none() {
                return Err(refuse(
                    "jobs.backup_dir",
                    "jobs.backup_at is set: say where backups go",
                ));
            }
            if self.database != "sqlite" {
                return Err(refuse(
                    "jobs.backup_at",
                    "scheduled backups are of the embedded store; back PostgreSQL up with its own tools (docs/deploy.md)",
                ));
            }
        }
        if self.jobs.backup_keep == 0 {
            return Err(refuse("jobs.backup_keep", "must keep at least one backup"));
        }
        if self.jobs.tick_s == 0 {
            return Err(refuse("jobs.tick_s", "must be at least 1"));
        }
        let l = &self.limits;
        for (key, v) in [
            ("limits.max_body_bytes", l.max_body_bytes as u64),
            ("limits.max_changes_per_push", l.max_changes_per_push as u64),
            ("limits.max_chunk_bytes", l.max_chunk_bytes as u64),
            ("limits.header_timeout_s", l.header_timeout_s),
            ("limits.body_timeout_s", l.body_timeout_s),
            ("limits.request_timeout_s", l.request_timeout_s),
            ("limits.max_connections", l.max_connections as u64),
            ("limits.max_concurrent_syncs", l.max_concurrent_syncs as u64),
        ] {
            if v == 0 {
                return Err(refuse(key, "must be greater than 0"));
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets masked (the database
    /// URL's password too).
    pub fn masked_toml(&self) -> String {
        let mut c = self.clone();
        if c.metrics.token.is_some() {
            c.metrics.token = Some("********".into());
        }
        c.database = mask_url_password(&c.database);
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// Every key with its environment variable, for `config keys`.
    pub fn keys() -> Vec<(String, String)> {
        let shape = toml::Table::try_from(FileConfig::example()).unwrap_or_default();
        let mut out = Vec::new();
        for (k, v) in &shape {
            match v {
                toml::Value::Table(t) => {
                    for sub in t.keys() {
                        out.push((format!("{k}.{sub}"), env_name(&[k, sub])));
                    }
                }
                _ => out.push((k.clone(), env_name(&[k]))),
            }
        }
        out
    }
}

/// `SYNC_SERVER_LIMITS_MAX_BODY_BYTES` for `limits.max_body_bytes`.
fn env_name(path: &[&str]) -> String {
    format!("{ENV_PREFIX}{}", path.join("_").to_ascii_uppercase())
}

/// Sets the key `var` names in `table`, typed as the same key of `shape`.
fn overlay(
    table: &mut toml::Table,
    shape: &toml::Table,
    var: &str,
    value: &str,
) -> Result<(), ConfigError> {
    for (k, v) in shape {
        if let toml::Value::Table(section) = v {
            for (sub, example) in section {
                if env_name(&[k, sub]) == var {
                    let parsed = typed(example, value).map_err(|r| refuse(var, r))?;
                    let entry = table
                        .entry(k.clone())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    let Some(t) = entry.as_table_mut() else {
                        return Err(refuse(k.clone(), "must be a table"));
                    };
                    t.insert(sub.clone(), parsed);
                    return Ok(());
                }
            }
            if var.starts_with(&format!("{}_", env_name(&[k]))) {
                return Err(refuse(var, format!("no such setting in [{k}]")));
            }
        } else if env_name(&[k]) == var {
            let parsed = typed(v, value).map_err(|r| refuse(var, r))?;
            table.insert(k.clone(), parsed);
            return Ok(());
        }
    }
    // Not a setting's name (another program's variable): left alone.
    Ok(())
}

/// `value` as the TOML type of `example`.
fn typed(example: &toml::Value, value: &str) -> Result<toml::Value, String> {
    Ok(match example {
        toml::Value::Integer(_) => toml::Value::Integer(
            value
                .trim()
                .parse()
                .map_err(|_| format!("{value:?} is not an integer"))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            value
                .trim()
                .parse()
                .map_err(|_| format!("{value:?} is not a number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(match value.trim() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(format!("{value:?} is not true or false")),
        }),
        toml::Value::Array(_) => {
            let items = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect();
            toml::Value::Array(items)
        }
        _ => toml::Value::String(value.to_string()),
    })
}

/// The dotted key a deserialisation error is about, when toml says.
fn key_of_error(e: &toml::de::Error) -> String {
    let m = e.message();
    // "unknown field `x`, expected …" names the field; the path is not kept
    // by a Value deserialiser, so say what we know.
    match m.split('`').nth(1) {
        Some(field) if m.starts_with("unknown field") => field.to_string(),
        _ => "(file)".into(),
    }
}

/// `HH:MM` → a local time of day.
pub fn local_time(at: &str) -> Result<chrono::NaiveTime, String> {
    chrono::NaiveTime::parse_from_str(at, "%H:%M")
        .map_err(|_| format!("{at:?} is not a time of day HH:MM (24-hour)"))
}

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_environment_overrides_the_file_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_body_bytes = 100\nmax_chunk_bytes = 7\n",
        )
        .unwrap();
        let c = FileConfig::load(
            Some(&f),
            env(&[
                ("SYNC_SERVER_LIMITS_MAX_BODY_BYTES", "2048"),
                ("SYNC_SERVER_JOBS_ENABLED", "false"),
                ("SYNC_SERVER_PROXY_TRUSTED", "10.0.0.1, 10.0.0.2"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.limits.max_body_bytes, 2048);
        assert_eq!(c.limits.max_chunk_bytes, 7, "the file's other keys stay");
        assert_eq!(c.listen.port(), 9000);
        assert!(!c.jobs.enabled);
        assert_eq!(c.proxy.trusted.len(), 2);
    }

    #[test]
    fn a_refusal_names_the_key_and_the_reason() {
        let e = FileConfig::load(None, env(&[("SYNC_SERVER_LIMITS_MAX_BODY_BYTES", "lots")]))
            .unwrap_err();
        assert_eq!(e.key, "SYNC_SERVER_LIMITS_MAX_BODY_BYTES");
        assert!(e.reason.contains("not an integer"), "{e}");
        let e =
            FileConfig::load(None, env(&[("SYNC_SERVER_LIMITS_MAX_BODYBYTES", "1")])).unwrap_err();
        assert!(e.reason.contains("no such setting"), "{e}");
        let e = FileConfig::load(
            None,
            env(&[("SYNC_SERVER_REVIEW_TIMEZONE", "Mars/Olympus")]),
        )
        .unwrap_err();
        assert_eq!(e.key, "review.timezone");
        let e =
            FileConfig::load(None, env(&[("SYNC_SERVER_JOBS_NIGHTLY_AT", "25:00")])).unwrap_err();
        assert_eq!(e.key, "jobs.nightly_at");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[limits]\nmax_bodybytes = 1\n").unwrap();
        let e = FileConfig::load(Some(&f), env(&[])).unwrap_err();
        assert_eq!(e.key, "max_bodybytes", "{e}");
        std::fs::write(
            &f,
            "[tls]\ncert = \"/nonexistent.pem\"\nkey = \"/nonexistent.key\"\n",
        )
        .unwrap();
        let e = FileConfig::load(Some(&f), env(&[])).unwrap_err();
        assert_eq!(e.key, "tls.cert", "{e}");
    }

    #[test]
    fn secrets_are_masked_when_printed() {
        let c = FileConfig::load(
            None,
            env(&[
                ("SYNC_SERVER_DATABASE", "postgres://center:hunter2@db/city"),
                ("SYNC_SERVER_METRICS_TOKEN", "scrape-secret"),
            ]),
        )
        .unwrap();
        let printed = c.masked_toml();
        assert!(
            !printed.contains("hunter2") && !printed.contains("scrape-secret"),
            "{printed}"
        );
        assert!(
            printed.contains("postgres://center:********@db/city"),
            "{printed}"
        );
        assert!(
            FileConfig::keys()
                .iter()
                .any(|(k, e)| k == "limits.max_body_bytes"
                    && e == "SYNC_SERVER_LIMITS_MAX_BODY_BYTES")
        );
    }
}
