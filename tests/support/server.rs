//! A real `sync-server` process on 127.0.0.1 with a free port and its own
//! data directory; killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use field_core::sync::http::HttpTransport;
use serde_json::Value;

use crate::{Device, server_bin};

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh data directory.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let mut s = Server::start_on(&data, "127.0.0.1:0");
        s._dir = Some(dir);
        s
    }

    /// Starts a server on a fresh data directory with a TOML configuration.
    pub fn start_with_config(toml: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("server.toml");
        std::fs::write(&config, toml).expect("config written");
        let data = dir.path().join("data");
        let mut s = Server::spawn(
            &data,
            "127.0.0.1:0",
            &["--config", config.to_str().expect("utf-8")],
            &[],
        );
        s._dir = Some(dir);
        s
    }

    /// Starts a server on `data`, listening on `listen`; returns once it
    /// has printed the address it listens on.
    pub fn start_on(data: &Path, listen: &str) -> Server {
        Server::spawn(data, listen, &[], &[])
    }

    /// Starts a server on `data` whose photos live in the bucket of `s3`.
    pub fn start_with_bucket(data: &Path, s3: &super::s3::S3Server) -> Server {
        let url = s3.url();
        Server::spawn(data, "127.0.0.1:0", &["--blobs", &url], &s3.env())
    }

    /// Starts a server on `data` with more flags and environment.
    pub fn start_with(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(data, "127.0.0.1:0", extra, env)
    }

    /// Starts a server on `data` whose log (at `info`, every line) goes to
    /// the file `log`.
    pub fn start_logged(data: &Path, log: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_logging(data, "127.0.0.1:0", extra, env, Some(log))
    }

    fn spawn(data: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_logging(data, listen, extra, env, None)
    }

    fn spawn_logging(
        data: &Path,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Server {
        let stderr = match log {
            Some(p) => Stdio::from(std::fs::File::create(p).expect("log file")),
            None => Stdio::null(),
        };
        let mut child = Command::new(server_bin())
            .args([
                "--data",
                data.to_str().expect("utf-8 path"),
                "--listen",
                listen,
            ])
            .args(extra)
            .env("RUST_LOG", if log.is_some() { "info" } else { "warn" })
            // The scheduler would run a nightly roll-up at start between
            // 02:00 and 08:00 city time: tests run jobs when they mean to.
            .env("SYNC_SERVER_JOBS_ENABLED", "false")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("sync-server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("address line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            url,
            data: data.to_path_buf(),
            _dir: None,
        }
    }

    /// `127.0.0.1:PORT`, for a proxy in front.
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string()
    }

    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in url")
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_string()
    }

    /// An HTTP client with the admin token.
    pub fn admin(&self) -> HttpTransport {
        HttpTransport::new(&self.url, Some(self.admin_token())).expect("client")
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    pub fn import_grid(&self, geojson: &str) {
        let _: Value = self
            .admin()
            .call_raw(
                "PUT",
                "/v1/center/grid",
                "application/geo+json",
                geojson.as_bytes().to_vec(),
            )
            .expect("grid import");
    }

    /// Adds a user and returns its one-time enrolment code. A collector is
    /// assigned their cells from 2025-01-01: the tests replay past days.
    pub fn add_user(&self, name: &str, role: &str, cells: &[&str]) -> String {
        let body =
            serde_json::json!({ "name": name, "role": role, "cells": cells, "from": "2025-01-01" });
        let r: Value = self
            .admin()
            .call("POST", "/v1/center/users", Some(&body))
            .expect("add user");
        r["enrolment_code"].as_str().expect("code").to_string()
    }

    /// Another one-time code for an existing user (a second handset).
    pub fn new_code(&self, name: &str) -> String {
        let r: Value = self
            .admin()
            .call::<(), Value>("POST", &format!("/v1/center/users/{name}/codes"), None)
            .expect("code");
        r["enrolment_code"].as_str().expect("code").to_string()
    }

    /// A new device enrolled with a one-time code.
    pub fn enrolled_device(&self, code: &str) -> Device {
        let d = Device::init("pending");
        d.ok(&["enroll", "--server", &self.url, "--code", code]);
        d
    }

    pub fn digest(&self) -> Value {
        self.admin()
            .call::<(), Value>("GET", "/v1/center/digest", None)
            .expect("digest")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
