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

/// A random fraction in [0, 1), for jitter.
fn jitter() -> f64 {
    let b = uuid::Uuid::new_v4().as_u64_pair().0;
    (b >> 11) as f64 / (1u64 << 53) as f64
}

impl HttpTransport {
    pub fn new(base: &str, token: Option<String>) -> Result<HttpTransport, TransportError> {
        tls_ready();
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            // Below the server's keep-alive (10 s by default): a pooled
            // connection is not reused just as the server closes it.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        Ok(HttpTransport {
            base: base.trim_end_matches('/').to_string(),
            token,
            client,
            bytes_sent: 0,
            bytes_received: 0,
            patience: DEFAULT_PATIENCE,
            busy_waits: 0,
        })
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
            let e = TransportError::Unreachable(e.to_string());
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
            sent = bytes.len();
            req = req.header("content-type", "application/json").body(bytes);
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
