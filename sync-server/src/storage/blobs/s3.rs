//! Objects in an S3-compatible bucket, through the `object_store` crate:
//! `--blobs s3://BUCKET?endpoint=URL&region=R`, credentials from the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally
//! `AWS_SESSION_TOKEN`). A PUT of an object is atomic in S3, so a reader
//! sees a whole blob or none. The storage layer is synchronous (it runs on
//! blocking threads), so the async client runs on a small runtime of its
//! own.

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::objects::{ObjectMeta, Objects};
use crate::storage::{Result, StorageError};

/// Where a bucket is, as `--blobs` names it.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketUrl {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: String,
    /// A key prefix inside the bucket (`s3://photos/city-a`).
    pub prefix: String,
}

fn bad(reason: impl Into<String>) -> StorageError {
    StorageError::Invalid {
        field: "blobs".into(),
        reason: reason.into(),
    }
}

impl BucketUrl {
    /// Parses `s3://bucket[/prefix][?endpoint=…&region=…]`.
    pub fn parse(text: &str) -> Result<BucketUrl> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad(format!("`{text}` is not an s3:// address")))?;
        let (place, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = place.split_once('/').unwrap_or((place, ""));
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
            return Err(bad(format!(
                "`{bucket}` is not a bucket name (3–63 of a-z, 0-9, '-', '.')"
            )));
        }
        let mut url = BucketUrl {
            bucket: bucket.to_string(),
            endpoint: None,
            region: "us-east-1".into(),
            prefix: prefix.trim_matches('/').to_string(),
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "endpoint" => {
                    if !(v.starts_with("http://") || v.starts_with("https://")) {
                        return Err(bad(format!("endpoint `{v}` is not an http(s) URL")));
                    }
                    url.endpoint = Some(v.trim_end_matches('/').to_string());
                }
                "region" => url.region = v.to_string(),
                other => {
                    return Err(bad(format!(
                        "unknown parameter `{other}` (endpoint, region)"
                    )));
                }
            }
        }
        Ok(url)
    }
}

pub struct S3Objects {
    store: AmazonS3,
    url: BucketUrl,
    /// Always `Some` until dropped (then shut down without blocking, which
    /// an async caller's thread would not allow).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for S3Objects {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl S3Objects {
    /// Connects to the bucket (credentials from the environment) and checks
    /// it answers.
    pub fn open(url: BucketUrl) -> Result<S3Objects> {
        S3Objects::open_with(url, None)
    }

    /// [`S3Objects::open`] with credentials given (key id, secret) instead
    /// of read from the environment.
    pub fn open_with(url: BucketUrl, credentials: Option<(&str, &str)>) -> Result<S3Objects> {
        // One process-wide TLS provider for https endpoints (ring); a second
        // install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_region(&url.region);
        match credentials {
            Some((key, secret)) => {
                b = b.with_access_key_id(key).with_secret_access_key(secret);
            }
            // Without keys the client would ask a cloud's instance metadata
            // service, which a city's own servers do not have: say what to set.
            None if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
                && std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_none()
                && std::env::var_os("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_none() =>
            {
                return Err(bad(format!(
                    "s3://{}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                    url.bucket
                )));
            }
            None => {}
        }
        // A bucket that does not answer fails a request within a minute
        // (a few retries), not after the client's default three.
        b = b
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(60),
                ..Default::default()
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_connect_timeout(std::time::Duration::from_secs(5))
                    .with_timeout(std::time::Duration::from_secs(60)),
            );
        if let Some(e) = &url.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        let store = b
            .build()
            .map_err(|e| bad(format!("cannot use s3://{}: {e}", url.bucket)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-blobs")
            .enable_all()
            .build()?;
        let s = S3Objects {
            store,
            url,
            runtime: Some(runtime),
        };
        // Fail at start, not at the first upload, when the bucket is wrong.
        s.list("partial/")
            .map_err(|e| bad(format!("s3://{} does not answer: {e}", s.url.bucket)))?;
        Ok(s)
    }

    /// Runs an S3 call to completion on this store's runtime. Called from
    /// blocking threads (the storage layer's), never from async code.
    fn run<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match &self.runtime {
            Some(rt) => rt.block_on(f),
            None => Err(bad("the S3 client is shut down")),
        }
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.url.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.url.prefix))
        }
    }

    fn key_of(&self, path: &ObjectPath) -> String {
        let p = path.as_ref();
        if self.url.prefix.is_empty() {
            p.to_string()
        } else {
            p.strip_prefix(&format!("{}/", self.url.prefix))
                .unwrap_or(p)
                .to_string()
        }
    }
}

fn failed(e: object_store::Error) -> StorageError {
    StorageError::Io(std::io::Error::other(e.to_string()))
}

impl Objects for S3Objects {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(key);
        self.run(async {
            match self.store.get(&path).await {
                Ok(r) => Ok(Some(r.bytes().await.map_err(failed)?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(failed(e)),
            }
        })
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key);
        self.run(async {
            match self.store.head(&path).await {
                Ok(m) => Ok(Some(m.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(failed(e)),
            }
        })
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(key);
        let payload = PutPayload::from(bytes.to_vec());
        self.run(async {
            self.store.put(&path, payload).await.map_err(failed)?;
            Ok(())
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let trimmed = prefix.trim_end_matches('/');
        let path = if trimmed.is_empty() && self.url.prefix.is_empty() {
            None
        } else if trimmed.is_empty() {
            Some(ObjectPath::from(self.url.prefix.as_str()))
        } else {
            Some(self.path(trimmed))
        };
        let mut out: Vec<ObjectMeta> = self.run(async {
            self.store
                .list(path.as_ref())
                .map_ok(|m| ObjectMeta {
                    key: self.key_of(&m.location),
                    size: m.size,
                    modified_ms: m.last_modified.timestamp_millis(),
                })
                .try_collect()
                .await
                .map_err(failed)
        })?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        self.run(async {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(failed(e)),
            }
        })
    }

    fn describe(&self) -> String {
        match (&self.url.endpoint, self.url.prefix.is_empty()) {
            (Some(e), true) => format!("s3://{} at {e}", self.url.bucket),
            (Some(e), false) => format!("s3://{}/{} at {e}", self.url.bucket, self.url.prefix),
            (None, true) => format!("s3://{}", self.url.bucket),
            (None, false) => format!("s3://{}/{}", self.url.bucket, self.url.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_address_is_read_or_refused_by_name() {
        let u =
            BucketUrl::parse("s3://city-photos/hz?endpoint=http://127.0.0.1:9000&region=cn-east-1")
                .unwrap();
        assert_eq!(
            u,
            BucketUrl {
                bucket: "city-photos".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: "cn-east-1".into(),
                prefix: "hz".into(),
            }
        );
        for bad in [
            "/srv/blobs",
            "s3://",
            "s3://UPPER",
            "s3://ok-bucket?endpoint=ftp://x",
            "s3://ok-bucket?colour=blue",
        ] {
            let e = BucketUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("blobs"), "{bad}: {e}");
        }
    }
}
