//! A real S3-protocol server for tests: `s3s-fs` (an S3 server over a
//! directory, SigV4-checked), installed by `scripts/test` into its cache.
//! Each test gets its own process, port, directory and bucket.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "field-test-key";
pub const SECRET_KEY: &str = "field-test-secret-0123456789";

pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
    pub root: tempfile::TempDir,
}

/// Where `s3s-fs` is: FIELD_S3FS, the test script's cache, or the PATH.
fn program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FIELD_S3FS") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let cached = home.join(".cache/field-ci/s3s-fs/bin/s3s-fs");
    if cached.is_file() {
        return Some(cached);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    })
}

impl S3Server {
    /// Starts a server with one empty bucket; `None` (the test says
    /// SKIPPED) when s3s-fs is not installed, unless FIELD_S3_REQUIRED is
    /// set (as `scripts/test` does): then it fails.
    pub fn start(bucket: &str) -> Option<S3Server> {
        let Some(bin) = program() else {
            assert!(
                std::env::var_os("FIELD_S3_REQUIRED").is_none(),
                "s3s-fs is needed: scripts/test installs it (cargo install s3s-fs)"
            );
            eprintln!("SKIPPED: no s3s-fs (run scripts/test to install it)");
            return None;
        };
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join(bucket)).expect("bucket dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_string(),
            root,
        };
        // Ready when it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// The `--blobs` address of the bucket.
    pub fn url(&self) -> String {
        format!(
            "s3://{}?endpoint={}&region=us-east-1",
            self.bucket, self.endpoint
        )
    }

    /// The credentials, as a server reads them from its environment.
    pub fn env(&self) -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
    }

    /// Files the bucket holds, as keys.
    pub fn keys(&self) -> Vec<String> {
        let base = self.root.path().join(&self.bucket);
        let mut out = Vec::new();
        let mut pending = vec![base.clone()];
        while let Some(d) = pending.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    pending.push(p);
                } else if let Ok(rel) = p.strip_prefix(&base) {
                    out.push(rel.to_string_lossy().to_string());
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
