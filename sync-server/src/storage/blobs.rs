//! Photos as content-addressed files: `blobs/ab/abcdef…` once complete,
//! `blobs/partial/<hash>` while an upload is under way. A complete blob is
//! renamed into place only after its bytes hash to its name and read as an
//! image, so a half or forged upload is never served.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use field_core::model::PhotoHash;
use field_core::model::photo::{MAX_PHOTO_BYTES, inspect_photo};
use field_core::sync::protocol::ChunkAck;

use super::{Result, StorageError};

pub struct BlobDir {
    root: PathBuf,
    /// Chunk writes and the final check-and-rename of one photo, one at a
    /// time (locks striped by hash): two uploads of the same photo must not
    /// interleave their appends; different photos go in parallel.
    writes: [std::sync::Mutex<()>; 64],
    decodes: DecodeGate,
}

/// How long an interrupted upload is kept for the device to resume.
pub const PARTIAL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Image decodes at once: each may take up to [`DECODE_BUDGET_BYTES`].
pub const MAX_CONCURRENT_DECODES: usize = 2;
/// Memory one decode may allocate.
pub const DECODE_BUDGET_BYTES: u64 = 256 * 1024 * 1024;

/// A counting gate (a blocking semaphore) for the decoding threads.
#[derive(Default)]
struct DecodeGate {
    busy: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

impl DecodeGate {
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= MAX_CONCURRENT_DECODES {
            busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
        drop(busy);
        struct Release<'a>(&'a DecodeGate);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let mut busy = self.0.busy.lock().unwrap_or_else(|p| p.into_inner());
                *busy -= 1;
                self.0.freed.notify_one();
            }
        }
        let _release = Release(self);
        f()
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> StorageError {
    StorageError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl BlobDir {
    pub fn open(root: &Path) -> Result<BlobDir> {
        fs::create_dir_all(root.join("partial"))?;
        // Uploads abandoned for a week are not coming back.
        let stale = std::time::SystemTime::now() - PARTIAL_LIFETIME;
        for entry in fs::read_dir(root.join("partial"))?.flatten() {
            if entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < stale)
            {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(BlobDir {
            root: root.to_path_buf(),
            writes: std::array::from_fn(|_| std::sync::Mutex::new(())),
            decodes: DecodeGate::default(),
        })
    }

    fn final_path(&self, hash: &PhotoHash) -> PathBuf {
        let h = hash.as_str();
        self.root.join(&h[..2]).join(h)
    }

    fn partial_path(&self, hash: &PhotoHash) -> PathBuf {
        self.root.join("partial").join(hash.as_str())
    }

    pub fn exists(&self, hash: &PhotoHash) -> bool {
        self.final_path(hash).is_file()
    }

    pub fn received(&self, hash: &PhotoHash) -> u64 {
        if self.exists(hash) {
            return fs::metadata(self.final_path(hash))
                .map(|m| m.len())
                .unwrap_or(0);
        }
        fs::metadata(self.partial_path(hash))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Appends a chunk at `offset`. A chunk at an offset other than what is
    /// held is answered with what is held (the client resumes from there).
    pub fn append(
        &self,
        hash: &PhotoHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<ChunkAck> {
        let stripe = &self.writes[hash.as_str().as_bytes()[0] as usize % self.writes.len()];
        let _one_writer = stripe.lock().unwrap_or_else(|p| p.into_inner());
        if total == 0 || total > MAX_PHOTO_BYTES as u64 {
            return Err(invalid(
                "total",
                format!("{total} bytes: a photo is 1 byte to {MAX_PHOTO_BYTES} bytes"),
            ));
        }
        if self.exists(hash) {
            return Ok(ChunkAck {
                received: total,
                complete: true,
            });
        }
        let partial = self.partial_path(hash);
        let held = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if offset != held {
            return Ok(ChunkAck {
                received: held,
                complete: false,
            });
        }
        if offset + bytes.len() as u64 > total {
            return Err(invalid(
                "offset",
                format!("chunk ends past the declared total of {total} bytes"),
            ));
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        let received = offset + bytes.len() as u64;
        if received < total {
            return Ok(ChunkAck {
                received,
                complete: false,
            });
        }
        let data = fs::read(&partial)?;
        if PhotoHash::of(&data) != *hash {
            fs::remove_file(&partial)?;
            return Err(invalid(
                "photo",
                format!("bytes do not hash to {hash}; upload discarded"),
            ));
        }
        if let Err(e) = inspect_photo("photo", &data) {
            fs::remove_file(&partial)?;
            return Err(invalid("photo", e.to_string()));
        }
        let dest = self.final_path(hash);
        fs::create_dir_all(dest.parent().expect("blob paths have a parent"))?;
        fs::rename(&partial, &dest)?;
        Ok(ChunkAck {
            received,
            complete: true,
        })
    }

    /// A complete blob's bytes, verified against its name.
    pub fn read(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        let data = fs::read(self.final_path(hash))
            .map_err(|_| StorageError::NotFound(format!("photo {hash}")))?;
        if PhotoHash::of(&data) != *hash {
            return Err(StorageError::Core(field_core::Error::Corrupt(format!(
                "photo {hash} no longer matches its hash"
            ))));
        }
        Ok(data)
    }
}

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 256;

impl BlobDir {
    /// A JPEG thumbnail of a complete photo, made once and kept beside it.
    /// Decoding is bounded: a header over the pixel budget is refused before
    /// any decode, each decode may allocate at most [`DECODE_BUDGET_BYTES`],
    /// and at most [`MAX_CONCURRENT_DECODES`] run at once (the queue page
    /// asks for fifty thumbnails at a time).
    pub fn thumbnail(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        let path = self.root.join("thumbs").join(format!("{hash}.jpg"));
        if let Ok(bytes) = fs::read(&path) {
            return Ok(bytes);
        }
        let original = self.read(hash)?;
        inspect_photo("photo", &original).map_err(|e| invalid("photo", e.to_string()))?;
        self.decodes.run(|| {
            // Made by another request while this one waited its turn.
            if let Ok(bytes) = fs::read(&path) {
                return Ok(bytes);
            }
            let mut reader = image::ImageReader::new(std::io::Cursor::new(&original))
                .with_guessed_format()
                .map_err(|e| invalid("photo", format!("cannot read {hash}: {e}")))?;
            let mut limits = image::Limits::default();
            limits.max_alloc = Some(DECODE_BUDGET_BYTES);
            reader.limits(limits);
            let image = reader
                .decode()
                .map_err(|e| invalid("photo", format!("cannot decode {hash}: {e}")))?;
            let thumb = image.thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8();
            drop(image);
            let mut out = std::io::Cursor::new(Vec::new());
            thumb
                .write_to(&mut out, image::ImageFormat::Jpeg)
                .map_err(|e| {
                    invalid("photo", format!("cannot encode a thumbnail of {hash}: {e}"))
                })?;
            let bytes = out.into_inner();
            fs::create_dir_all(self.root.join("thumbs"))?;
            let tmp = path.with_extension(format!("{}.part", uuid::Uuid::new_v4()));
            fs::write(&tmp, &bytes)?;
            fs::rename(&tmp, &path)?;
            Ok(bytes)
        })
    }
}

/// The EXIF capture time of a photo, as written in the file.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExifTime {
    /// `DateTimeOriginal` (or `DateTime`), `YYYY:MM:DD HH:MM:SS`, local.
    pub datetime: Option<String>,
    /// `OffsetTimeOriginal` when the camera wrote one (`+08:00`).
    pub offset: Option<String>,
}

fn ascii(field: Option<&exif::Field>) -> Option<String> {
    match &field?.value {
        exif::Value::Ascii(parts) => parts
            .first()
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .filter(|s| !s.is_empty()),
        _ => None,
    }
}

impl BlobDir {
    /// Reads the photo's EXIF capture time once and keeps it beside the blob.
    pub fn exif_time(&self, hash: &PhotoHash) -> Result<ExifTime> {
        let path = self.root.join("exif").join(format!("{hash}.json"));
        if let Ok(text) = fs::read_to_string(&path)
            && let Ok(t) = serde_json::from_str(&text)
        {
            return Ok(t);
        }
        let bytes = self.read(hash)?;
        let found = exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(&bytes))
            .map(|e| ExifTime {
                datetime: ascii(e.get_field(exif::Tag::DateTimeOriginal, exif::In::PRIMARY))
                    .or_else(|| ascii(e.get_field(exif::Tag::DateTime, exif::In::PRIMARY))),
                offset: ascii(e.get_field(exif::Tag::OffsetTimeOriginal, exif::In::PRIMARY)),
            })
            .unwrap_or_default();
        fs::create_dir_all(self.root.join("exif"))?;
        let tmp = path.with_extension(format!("{}.part", uuid::Uuid::new_v4()));
        fs::write(&tmp, serde_json::to_vec(&found).unwrap_or_default())?;
        fs::rename(&tmp, &path)?;
        Ok(found)
    }
}
