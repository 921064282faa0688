//! The sync client's HTTP adapter (reqwest, blocking): one thin layer that
//! maps protocol calls to requests and HTTP failures to [`TransportError`].

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::{Transport, TransportError};
use super::protocol::{
    ChunkAck, EnrollRequest, EnrollResponse, ErrorBody, PhotosNeededRequest, PhotosNeededResponse,
    SyncRequest, SyncResponse,
};
use crate::model::PhotoHash;

/// A server reached over HTTP, with a bearer token once enrolled.
pub struct HttpTransport {
    base: String,
    token: Option<String>,
    client: reqwest::blocking::Client,
    /// Request and response body bytes, for the sync summary and benches.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// How long a busy server is waited for (503/429 answers retried after
    /// their `Retry-After`, with jitter) before the call fails.
    pub patience: Duration,
    /// Times a busy server made this transport wait.
    pub busy_waits: u64,
    /// The language asked of the server for what it writes for people
    /// (workbooks, messages): an `Accept-Language` on every request.
    pub language: Option<String>,
}

/// How one attempt failed: before the request left (safe to send again,
/// whatever it does), or after.
enum Failure {
    NotConnected(TransportError),
    Answered(TransportError),
}

impl Failure {
    fn into_error(self) -> TransportError {
        match self {
            Failure::NotConnected(e) | Failure::Answered(e) => e,
        }
    }
}

/// Quick retries of a request whose connection failed.
const UNREACHABLE_RETRIES: u32 = 3;

/// Patience with a busy server, by default.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(15 * 60);

/// Makes TLS (https servers) available to every reqwest client of the
/// process: rustls on ring, installed once (a second install is refused
/// harmlessly). Call before building a client of your own.
pub fn tls_ready() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How this process's clients reach servers: certificate authorities
/// trusted beside the system's, and whether plain HTTP to a server off this
/// machine is allowed (it is not by default: tokens would travel in clear).
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// A PEM file of extra CA certificates (a city's own CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// Allow `http://` to a non-loopback server.
    pub allow_plain_http: bool,
}

static CLIENT_TLS: std::sync::OnceLock<ClientTls> = std::sync::OnceLock::new();

/// Sets the process's [`ClientTls`] (once, before the first client; the
/// `field` command does it from `--ca-file` / `--allow-http`). Unset, it is
/// read from `FIELD_CA_FILE` and `FIELD_ALLOW_HTTP=1`.
pub fn set_client_tls(tls: ClientTls) {
    let _ = CLIENT_TLS.set(tls);
}

fn client_tls() -> &'static ClientTls {
    CLIENT_TLS.get_or_init(|| ClientTls {
        ca_file: std::env::var_os("FIELD_CA_FILE")
            .filter(|v| !v.is_empty())
            .map(Into::into),
        allow_plain_http: std::env::var("FIELD_ALLOW_HTTP").is_ok_and(|v| v == "1" || v == "true"),
    })
}

/// The base URL of a server given as `https://host[:port]`,
/// `http://host[:port]` or plain `host[:port]` (HTTPS, except to this
/// machine, where it is HTTP). Plain HTTP to another machine is refused
/// unless `allow_plain_http`.
pub fn server_base(given: &str, allow_plain_http: bool) -> Result<String, TransportError> {
    let refuse = |reason: &str| TransportError::Address {
        given: given.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = given.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(refuse("empty: expected https://HOST[:PORT] or HOST:PORT"));
    }
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
        None => (None, trimmed),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = host_of(authority);
    if host.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace) {
        return Err(refuse("expected https://HOST[:PORT] or HOST:PORT"));
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme = match scheme.as_deref() {
        Some("https") => "https",
        Some("http") => "http",
        Some(other) => {
            return Err(refuse(&format!(
                "scheme {other}:// is not http:// or https://"
            )));
        }
        None if loopback => "http",
        None => "https",
    };
    if scheme == "http" && !loopback && !allow_plain_http {
        return Err(refuse(
            "plain http:// to another machine would send the token in clear text: use https:// (or allow plain HTTP with --allow-http on a trusted network)",
        ));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// `host` of `host:port`, `[::1]:port` or `host`.
fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

/// JSON bodies at least this long go gzipped (the server takes
/// `Content-Encoding: gzip`; shorter ones are not worth the header).
pub const GZIP_FROM_BYTES: usize = 1024;

/// A request body as the transport sends it when gzipped (benches measure
/// the wire with it).
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, TransportError> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::new(6),
    );
    enc.write_all(bytes)
        .and_then(|_| enc.finish())
        .map_err(|e| TransportError::Unreachable(format!("compressing the request: {e}")))
}

/// A random fraction in [0, 1), for jitter.
fn jitter() -> f64 {
    let b = uuid::Uuid::new_v4().as_u64_pair().0;
    (b >> 11) as f64 / (1u64 << 53) as f64
}

impl HttpTransport {
    pub fn new(base: &str, token: Option<String>) -> Result<HttpTransport, TransportError> {
        HttpTransport::with_tls(base, token, client_tls())
    }

    /// [`HttpTransport::new`] with its TLS settings given.
    pub fn with_tls(
        base: &str,
        token: Option<String>,
        tls: &ClientTls,
    ) -> Result<HttpTransport, TransportError> {
        tls_ready();
        let base = server_base(base, tls.allow_plain_http)?;
        let mut builder = reqwest::blocking::Client::builder();
        if let Some(path) = &tls.ca_file {
            let pem = std::fs::read(path).map_err(|e| TransportError::Address {
                given: base.clone(),
                reason: format!("CA file {}: {e}", path.display()),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                TransportError::Address {
                    given: base.clone(),
                    reason: format!("CA file {}: {e}", path.display()),
                }
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            // Below the server's keep-alive (10 s by default): a pooled
            // connection is not reused just as the server closes it.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        Ok(HttpTransport {
            base,
            token,
            client,
            bytes_sent: 0,
            bytes_received: 0,
            patience: DEFAULT_PATIENCE,
            busy_waits: 0,
            language: None,
        })
    }

    /// The server's base URL, as understood (`https://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; a busy server (503 or 429) is asked again after
    /// the time it names plus up to as much again at random (so that
    /// devices turned away together do not return together), until
    /// `patience` runs out. Every call of the protocol is idempotent, so a
    /// retried one resumes where it was.
    fn send(
        &mut self,
        req: reqwest::blocking::RequestBuilder,
        sent: usize,
    ) -> Result<Vec<u8>, TransportError> {
        let req = match &self.language {
            Some(l) => req.header(reqwest::header::ACCEPT_LANGUAGE, l.as_str()),
            None => req,
        };
        let deadline = Instant::now() + self.patience;
        let mut cut = 0u32;
        loop {
            let Some(attempt) = req.try_clone() else {
                return self.send_once(req, sent).map_err(Failure::into_error);
            };
            match self.send_once(attempt, sent) {
                Err(Failure::Answered(TransportError::Busy { retry_after_ms })) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(TransportError::Busy { retry_after_ms });
                    }
                    let base = retry_after_ms.max(100) as f64;
                    let wait = Duration::from_millis((base * (1.0 + jitter())) as u64).min(left);
                    self.busy_waits += 1;
                    std::thread::sleep(wait);
                }
                // No connection (the request never left): a few quick tries
                // (a server restarting, a full accept queue), then give up —
                // a collector out of signal should hear so, not wait.
                Err(Failure::NotConnected(_)) if cut < UNREACHABLE_RETRIES => {
                    cut += 1;
                    let base = 250.0 * f64::from(1u32 << cut);
                    std::thread::sleep(Duration::from_millis((base * (1.0 + jitter())) as u64));
                }
                Err(Failure::NotConnected(e)) | Err(Failure::Answered(e)) => return Err(e),
                Ok(body) => return Ok(body),
            }
        }
    }

    fn send_once(
        &mut self,
        req: reqwest::blocking::RequestBuilder,
        sent: usize,
    ) -> Result<Vec<u8>, Failure> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().map_err(|e| {
            let connect = e.is_connect();
            // The causes say what went wrong (a certificate not trusted,
            // a refused connection); reqwest's own message does not.
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                let more = c.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                cause = c.source();
            }
            let e = TransportError::Unreachable(text);
            if connect {
                Failure::NotConnected(e)
            } else {
                Failure::Answered(e)
            }
        })?;
        let status = resp.status();
        let retry_after_ms = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| s.min(300) * 1000);
        let body = resp
            .bytes()
            .map_err(|e| Failure::Answered(TransportError::Unreachable(e.to_string())))?;
        self.bytes_sent += sent as u64;
        self.bytes_received += body.len() as u64;
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            return Err(Failure::Answered(TransportError::Busy {
                retry_after_ms: retry_after_ms.unwrap_or(1000),
            }));
        }
        if !status.is_success() {
            let reason = serde_json::from_slice::<ErrorBody>(&body)
                .map(|e| match e.field {
                    Some(f) => format!("{f}: {}", e.reason),
                    None => e.reason,
                })
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(Failure::Answered(TransportError::Refused {
                status: status.as_u16(),
                reason,
            }));
        }
        Ok(body.to_vec())
    }

    /// Sends `body` as JSON to `path` with `method` and parses the answer.
    pub fn call<B: Serialize, R: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, TransportError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        let mut sent = 0;
        if let Some(b) = body {
            let bytes =
                serde_json::to_vec(b).map_err(|e| TransportError::Unreachable(e.to_string()))?;
            req = req.header("content-type", "application/json");
            // A day of track (columnar deltas) shrinks to about a third:
            // gzip what is worth it, say so, and count what travels.
            let bytes = if bytes.len() >= GZIP_FROM_BYTES {
                req = req.header("content-encoding", "gzip");
                gzip(&bytes)?
            } else {
                bytes
            };
            sent = bytes.len();
            req = req.body(bytes);
        }
        let bytes = self.send(req, sent)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TransportError::Unreachable(format!("unreadable answer from {path}: {e}")))
    }

    /// Sends a raw body (a GeoJSON grid, a CSV) and parses the JSON answer.
    pub fn call_raw<R: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<R, TransportError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let sent = body.len();
        let req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        let bytes = self.send(req, sent)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TransportError::Unreachable(format!("unreadable answer from {path}: {e}")))
    }

    /// A GET whose answer is not JSON (a photo, an SVG map): the bytes.
    pub fn get_bytes(&mut self, path: &str) -> Result<Vec<u8>, TransportError> {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req, 0)
    }

    pub fn enroll(&mut self, req: &EnrollRequest) -> Result<EnrollResponse, TransportError> {
        self.call("POST", "/v1/enroll", Some(req))
    }
}

impl Transport for HttpTransport {
    fn successor(
        &mut self,
        req: &super::protocol::SuccessorRequest,
    ) -> Result<super::protocol::SuccessorResponse, TransportError> {
        self.call("POST", "/v1/devices/successor", Some(req))
    }

    fn sync(&mut self, req: &SyncRequest) -> Result<SyncResponse, TransportError> {
        self.call("POST", "/v1/sync", Some(req))
    }

    fn photos_needed(
        &mut self,
        req: &PhotosNeededRequest,
    ) -> Result<PhotosNeededResponse, TransportError> {
        self.call("POST", "/v1/photos/needed", Some(req))
    }

    fn upload_chunk(
        &mut self,
        hash: &PhotoHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<ChunkAck, TransportError> {
        let path = format!("/v1/photos/{hash}?offset={offset}&total={total}");
        self.call_raw("PUT", &path, "application/octet-stream", bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_address_is_read_as_an_operator_would_mean_it() {
        assert_eq!(
            server_base("center.example.cn:8443", false).unwrap(),
            "https://center.example.cn:8443"
        );
        assert_eq!(
            server_base("127.0.0.1:8080", false).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            server_base("localhost:8080/", false).unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            server_base("[::1]:8080", false).unwrap(),
            "http://[::1]:8080"
        );
        assert_eq!(
            server_base("HTTPS://center.example.cn", false).unwrap(),
            "https://center.example.cn"
        );
        assert!(
            matches!(server_base("http://10.1.2.3:8080", false), Err(TransportError::Address { reason, .. }) if reason.contains("clear text"))
        );
        assert_eq!(
            server_base("http://10.1.2.3:8080", true).unwrap(),
            "http://10.1.2.3:8080"
        );
        for bad in ["", "ftp://x", "user@host:1", "://", "a b:1"] {
            assert!(server_base(bad, false).is_err(), "{bad:?}");
        }
    }
}
