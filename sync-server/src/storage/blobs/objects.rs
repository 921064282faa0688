//! Where blob bytes live: named objects, put whole and atomically, listed by
//! prefix. Two homes: a directory on the server's disk (the embedded
//! default) and an S3-compatible bucket (`s3.rs`). What a photo is —
//! content addressing, resumable uploads, verification, thumbnails — is
//! `Blobs` above, the same for both.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::super::{Result, StorageError};

/// An object as a listing shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Last written, ms since the epoch.
    pub modified_ms: i64,
}

/// A flat namespace of objects keyed by `/`-separated names.
pub trait Objects: Send + Sync {
    /// The object's bytes, or `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// The object's size, or `None` when there is none.
    fn size(&self, key: &str) -> Result<Option<u64>>;
    /// Writes the whole object: readers see all of it or none of it.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// Every object whose key starts with `prefix` (a `…/` folder), by key.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;
    /// Removes the object; a missing one is not an error.
    fn delete(&self, key: &str) -> Result<()>;
    /// Where the objects are, for messages (`/srv/city/blobs`, `s3://photos`).
    fn describe(&self) -> String;
}

/// Objects as files under a directory: a put writes a temporary file beside
/// the target, syncs it and renames it into place.
pub struct DirObjects {
    root: PathBuf,
}

impl DirObjects {
    pub fn open(root: &Path) -> Result<DirObjects> {
        fs::create_dir_all(root)?;
        Ok(DirObjects {
            root: root.to_path_buf(),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        // Keys are ours (hashes, offsets), never a client's path; still, no
        // key leaves the root.
        if key.is_empty()
            || key
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(StorageError::Invalid {
                field: "key".into(),
                reason: format!("`{key}` is not an object key"),
            });
        }
        Ok(self.root.join(key))
    }
}

fn modified_ms(m: &fs::Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Objects for DirObjects {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.path(key)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        match fs::metadata(self.path(key)?) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{}.part", uuid::Uuid::new_v4()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        drop(f);
        fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let dir = self.root.join(prefix.trim_end_matches('/'));
        let mut out = Vec::new();
        let mut pending = vec![dir];
        while let Some(d) = pending.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for entry in entries.flatten() {
                let meta = entry.metadata()?;
                let path = entry.path();
                if meta.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = rel.to_string_lossy().replace('\\', "/");
                // Temporary files of puts under way are not objects.
                if rel
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                {
                    continue;
                }
                out.push(ObjectMeta {
                    key,
                    size: meta.len(),
                    modified_ms: modified_ms(&meta),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        // Folders emptied by it go too (a finished upload's `partial/<hash>/`),
        // up to the first that is not empty; top-level folders stay.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d.parent().is_none_or(|p| p == self.root) || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
