//! Photos as content-addressed objects: `ab/abcdef…` once complete;
//! while an upload is under way, its chunks as `partial/<hash>/<offset>`,
//! assembled and checked when the last arrives. A complete blob is written
//! only after its bytes hash to its name and read as an image, so a half
//! or forged upload is never served. Thumbnails (`thumbs/<hash>.jpg`) and
//! EXIF times (`exif/<hash>.json`) are made once and kept beside them.
//! Where the objects live — a directory, an S3 bucket — is [`Objects`].

pub mod objects;
pub mod s3;

use std::sync::Arc;

use field_core::model::PhotoHash;
use field_core::model::photo::{MAX_PHOTO_BYTES, inspect_photo};
use field_core::sync::protocol::ChunkAck;

pub use objects::{DirObjects, ObjectMeta, Objects};

use super::{Result, StorageError};

pub struct Blobs {
    objects: Arc<dyn Objects>,
    /// Chunk writes and the final check of one photo, one at a time in this
    /// process (locks striped by hash): two uploads of the same photo must
    /// not interleave. Across instances a chunk is keyed by its offset and
    /// a blob by its hash, so the same bytes written twice are one object.
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

fn final_key(hash: &PhotoHash) -> String {
    let h = hash.as_str();
    format!("{}/{h}", &h[..2])
}

fn partial_prefix(hash: &PhotoHash) -> String {
    format!("partial/{hash}/")
}

fn chunk_key(hash: &PhotoHash, offset: u64) -> String {
    // Zero-padded: keys sort as offsets do.
    format!("partial/{hash}/{offset:020}")
}

/// The chunks of a partial upload that follow on from byte 0, in order.
fn contiguous(chunks: &[ObjectMeta]) -> (u64, Vec<&ObjectMeta>) {
    let mut held = 0u64;
    let mut run = Vec::new();
    for c in chunks {
        let offset = c.key.rsplit('/').next().and_then(|o| o.parse::<u64>().ok());
        if offset == Some(held) {
            held += c.size;
            run.push(c);
        } else if offset.is_some_and(|o| o > held) {
            break;
        }
    }
    (held, run)
}

impl Blobs {
    /// Blobs in `objects`; uploads abandoned past [`PARTIAL_LIFETIME`] are
    /// removed (they are not coming back).
    pub fn open(objects: Arc<dyn Objects>) -> Result<Blobs> {
        Blobs::expire(
            objects.as_ref(),
            field_core::crdt::Clock::now_ms(&field_core::crdt::SystemClock) as i64,
        )?;
        Ok(Blobs {
            objects,
            writes: std::array::from_fn(|_| std::sync::Mutex::new(())),
            decodes: DecodeGate::default(),
        })
    }

    /// Blobs in a directory of the server's disk.
    pub fn in_dir(root: &std::path::Path) -> Result<Blobs> {
        // Interrupted uploads of the earlier layout (one file per photo):
        // the device resumes from what the server now says it holds.
        if let Ok(entries) = std::fs::read_dir(root.join("partial")) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Blobs::open(Arc::new(DirObjects::open(root)?))
    }

    /// Removes partial chunks last written before `now_ms` − lifetime.
    pub fn expire(objects: &dyn Objects, now_ms: i64) -> Result<usize> {
        let stale = now_ms - PARTIAL_LIFETIME.as_millis() as i64;
        let mut removed = 0;
        for o in objects.list("partial/")? {
            if o.modified_ms < stale {
                objects.delete(&o.key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub fn describe(&self) -> String {
        self.objects.describe()
    }

    pub fn exists(&self, hash: &PhotoHash) -> Result<bool> {
        Ok(self.objects.size(&final_key(hash))?.is_some())
    }

    /// Bytes held: the whole photo once complete, else the partial upload's
    /// contiguous run from byte 0.
    pub fn received(&self, hash: &PhotoHash) -> Result<u64> {
        if let Some(n) = self.objects.size(&final_key(hash))? {
            return Ok(n);
        }
        Ok(contiguous(&self.objects.list(&partial_prefix(hash))?).0)
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
        if self.exists(hash)? {
            return Ok(ChunkAck {
                received: total,
                complete: true,
            });
        }
        let held = contiguous(&self.objects.list(&partial_prefix(hash))?).0;
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
        if offset == 0 && bytes.len() as u64 == total {
            // The whole photo in one chunk (most are): checked and kept
            // without staging it as a partial upload first.
            if PhotoHash::of(bytes) != *hash {
                return Err(invalid(
                    "photo",
                    format!("bytes do not hash to {hash}; upload discarded"),
                ));
            }
            inspect_photo("photo", bytes).map_err(|e| invalid("photo", e.to_string()))?;
            self.objects.put(&final_key(hash), bytes)?;
            return Ok(ChunkAck {
                received: total,
                complete: true,
            });
        }
        if !bytes.is_empty() {
            self.objects.put(&chunk_key(hash, offset), bytes)?;
        }
        let received = offset + bytes.len() as u64;
        if received < total {
            return Ok(ChunkAck {
                received,
                complete: false,
            });
        }
        // The last chunk: assemble, check, keep.
        let chunks = self.objects.list(&partial_prefix(hash))?;
        let (_, run) = contiguous(&chunks);
        let mut data = Vec::with_capacity(total as usize);
        for c in run {
            match self.objects.get(&c.key)? {
                Some(b) => data.extend_from_slice(&b),
                None => break,
            }
        }
        data.truncate(total as usize);
        let discard = |why: String| -> Result<ChunkAck> {
            for c in &chunks {
                self.objects.delete(&c.key)?;
            }
            Err(invalid("photo", why))
        };
        if data.len() as u64 != total || PhotoHash::of(&data) != *hash {
            return discard(format!("bytes do not hash to {hash}; upload discarded"));
        }
        if let Err(e) = inspect_photo("photo", &data) {
            return discard(e.to_string());
        }
        self.objects.put(&final_key(hash), &data)?;
        for c in &chunks {
            self.objects.delete(&c.key)?;
        }
        Ok(ChunkAck {
            received,
            complete: true,
        })
    }

    /// A complete blob's bytes, verified against its name.
    pub fn read(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        let data = self
            .objects
            .get(&final_key(hash))?
            .ok_or_else(|| StorageError::NotFound(format!("photo {hash}")))?;
        if PhotoHash::of(&data) != *hash {
            return Err(StorageError::Core(field_core::Error::Corrupt(format!(
                "photo {hash} no longer matches its hash"
            ))));
        }
        Ok(data)
    }

    /// Writes a complete blob read elsewhere (a city moved between
    /// backends), after checking it against its name.
    pub fn put_verified(&self, hash: &PhotoHash, data: &[u8]) -> Result<()> {
        if PhotoHash::of(data) != *hash {
            return Err(invalid("photo", format!("bytes do not hash to {hash}")));
        }
        self.objects.put(&final_key(hash), data)
    }

    /// Every complete blob's hash.
    pub fn hashes(&self) -> Result<Vec<PhotoHash>> {
        Ok(self
            .objects
            .list("")?
            .into_iter()
            .filter_map(|o| {
                let (dir, name) = o.key.split_once('/')?;
                (dir.len() == 2 && !name.contains('/'))
                    .then(|| PhotoHash::parse("hash", name).ok())
                    .flatten()
            })
            .collect())
    }
}

/// What copying a city's photos to another home did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CopySummary {
    /// Complete photos at the source.
    pub photos: usize,
    /// Copied now.
    pub copied: usize,
    /// Already at the target, with the right bytes.
    pub already_there: usize,
    pub bytes_copied: u64,
    /// Every source photo read back from the target and hash-checked.
    pub verified: usize,
}

impl Blobs {
    /// Copies every complete photo to `to` (what is already there with the
    /// right bytes stays), then reads each back from `to` and checks it
    /// against its hash. Thumbnails and EXIF times are not copied: `to`
    /// makes them again when asked. Safe to run again after an interruption.
    pub fn copy_to(&self, to: &Blobs) -> Result<CopySummary> {
        let mut sum = CopySummary::default();
        let hashes = self.hashes()?;
        sum.photos = hashes.len();
        for h in &hashes {
            if to.exists(h)? && to.read(h).is_ok() {
                sum.already_there += 1;
                continue;
            }
            let data = self.read(h)?;
            to.put_verified(h, &data)?;
            sum.copied += 1;
            sum.bytes_copied += data.len() as u64;
        }
        for h in &hashes {
            to.read(h)?;
            sum.verified += 1;
        }
        Ok(sum)
    }
}

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 256;

impl Blobs {
    /// A JPEG thumbnail of a complete photo, made once and kept beside it.
    /// Decoding is bounded: a header over the pixel budget is refused before
    /// any decode, each decode may allocate at most [`DECODE_BUDGET_BYTES`],
    /// and at most [`MAX_CONCURRENT_DECODES`] run at once (the queue page
    /// asks for fifty thumbnails at a time).
    pub fn thumbnail(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        let key = format!("thumbs/{hash}.jpg");
        if let Some(bytes) = self.objects.get(&key)? {
            return Ok(bytes);
        }
        let original = self.read(hash)?;
        inspect_photo("photo", &original).map_err(|e| invalid("photo", e.to_string()))?;
        self.decodes.run(|| {
            // Made by another request while this one waited its turn.
            if let Some(bytes) = self.objects.get(&key)? {
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
            self.objects.put(&key, &bytes)?;
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

impl Blobs {
    /// Reads the photo's EXIF capture time once and keeps it beside the blob.
    pub fn exif_time(&self, hash: &PhotoHash) -> Result<ExifTime> {
        let key = format!("exif/{hash}.json");
        if let Some(text) = self.objects.get(&key)?
            && let Ok(t) = serde_json::from_slice(&text)
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
        self.objects
            .put(&key, &serde_json::to_vec(&found).unwrap_or_default())?;
        Ok(found)
    }
}

/// A backend whose photos are a [`Blobs`]: it is a [`super::BlobStore`].
pub trait HasBlobs {
    fn blobs(&self) -> &Blobs;
}

impl<T: HasBlobs + Send + Sync> super::BlobStore for T {
    fn blob_exists(&self, hash: &PhotoHash) -> Result<bool> {
        self.blobs().exists(hash)
    }

    fn blob_received(&self, hash: &PhotoHash) -> Result<u64> {
        self.blobs().received(hash)
    }

    fn blob_append(
        &self,
        hash: &PhotoHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<ChunkAck> {
        self.blobs().append(hash, offset, total, bytes)
    }

    fn blob_read(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        self.blobs().read(hash)
    }

    fn blob_thumbnail(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        self.blobs().thumbnail(hash)
    }

    fn blob_exif_time(&self, hash: &PhotoHash) -> Result<ExifTime> {
        self.blobs().exif_time(hash)
    }

    fn blobs_ready(&self) -> Result<()> {
        // A HEAD of a key that need not exist: the store must answer.
        self.blobs().objects.size("ready-probe").map(|_| ())
    }

    fn blobs_expire(&self, now_ms: i64) -> Result<usize> {
        Blobs::expire(self.blobs().objects.as_ref(), now_ms)
    }
}
