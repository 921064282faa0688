//! Online backups of the embedded store and their restore.
//!
//! A backup is a directory: `changes.db` and `center.db` copied with
//! SQLite's backup API from one consistent cut (both files' read snapshots
//! opened while writers are held for an instant, then copied while devices
//! keep syncing), the photos (each hash-checked), `admin.token`, and
//! `manifest.json` with every file's SHA-256. It is written under a
//! temporary name and renamed when complete, so a half-made backup never
//! looks like one.
//!
//! On PostgreSQL the records are a `pg_dump` (custom format) restored with
//! `pg_restore`; the photos and manifest are the same.
//!
//! A restore checks the manifest, refuses a non-empty data directory
//! unless forced, copies the files in, and gives the server a new restore
//! epoch: devices that synced after the backup see it change and send
//! again what the restored server lacks.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::blobs::Blobs;
use super::sqlite::SqliteStorage;
use super::{Records, Result, StorageError};

/// The database files of the embedded store, in the order they are cut.
pub const DATABASE_FILES: [&str; 2] = ["changes.db", "center.db"];
const MANIFEST: &str = "manifest.json";
const MANIFEST_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// `manifest.json` of a backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// `sqlite` (the embedded store's files) or `postgres` (a `pg_dump`).
    #[serde(default = "sqlite")]
    pub backend: String,
    pub created_ms: i64,
    /// The restore epoch of the server backed up.
    pub epoch: String,
    pub files: Vec<BackupFile>,
    /// Photos copied (each named by its hash and checked against it).
    pub photos: usize,
    pub photo_bytes: u64,
}

/// What a restore did.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreSummary {
    pub files: usize,
    pub photos: usize,
    /// The restored server's new epoch (devices compare it).
    pub epoch: String,
}

fn sqlite() -> String {
    "sqlite".into()
}

/// The PostgreSQL dump's file name in a backup.
pub const DATABASE_DUMP: &str = "database.dump";

fn invalid(field: &str, reason: impl Into<String>) -> StorageError {
    StorageError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

impl SqliteStorage {
    /// Takes an online backup into `to` (which must not exist, or be an
    /// empty directory), while the server keeps serving.
    pub fn online_backup(&self, data: &Path, to: &Path, now_ms: i64) -> Result<Manifest> {
        into_new_dir(to, |tmp| self.backup_into(data, tmp, now_ms))
    }

    fn backup_into(&self, data: &Path, tmp: &Path, now_ms: i64) -> Result<Manifest> {
        // One cut of both files, even against writers in another process:
        // a fence holds the write lock of each file (writers wait) while
        // the readers open their snapshots, then lets go; the copy is made
        // from the snapshots while devices keep syncing (WAL).
        let readers: Vec<Connection> = DATABASE_FILES
            .iter()
            .map(|f| {
                Connection::open_with_flags(
                    data.join(f),
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
            })
            .collect::<rusqlite::Result<_>>()?;
        {
            let fences: Vec<Connection> = DATABASE_FILES
                .iter()
                .map(|f| {
                    let c = Connection::open(data.join(f))?;
                    c.busy_timeout(std::time::Duration::from_secs(30))?;
                    c.execute_batch("BEGIN IMMEDIATE")?;
                    Ok(c)
                })
                .collect::<rusqlite::Result<_>>()?;
            for r in &readers {
                r.execute_batch("BEGIN")?;
                r.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |_| Ok(()))?;
            }
            for f in fences {
                f.execute_batch("ROLLBACK")?;
            }
        }
        let mut files = Vec::new();
        for (name, reader) in DATABASE_FILES.iter().zip(&readers) {
            let path = tmp.join(name);
            let mut out = Connection::open(&path)?;
            {
                let backup = rusqlite::backup::Backup::new(reader, &mut out)?;
                // All pages in one step: the reader's snapshot, unchanged by
                // writers meanwhile (WAL), is what is copied.
                backup.step(-1)?;
            }
            out.execute_batch("PRAGMA journal_mode = DELETE")?;
            drop(out);
            let (bytes, sha256) = sha256_file(&path)?;
            files.push(BackupFile {
                path: name.to_string(),
                bytes,
                sha256,
            });
        }
        for r in readers {
            let _ = r.execute_batch("COMMIT");
        }
        let token = data.join("admin.token");
        if token.is_file() {
            std::fs::copy(&token, tmp.join("admin.token"))?;
            let (bytes, sha256) = sha256_file(&tmp.join("admin.token"))?;
            files.push(BackupFile {
                path: "admin.token".into(),
                bytes,
                sha256,
            });
        }
        // Photos after the cut: every photo the copied records name was
        // complete before it, so it is here (later ones are extra, harmless).
        let copied =
            super::blobs::HasBlobs::blobs(self).copy_to(&Blobs::in_dir(&tmp.join("blobs"))?)?;
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            backend: sqlite(),
            created_ms: now_ms,
            epoch: self.restore_epoch()?,
            files,
            photos: copied.photos,
            photo_bytes: copied.bytes_copied,
        };
        write_manifest(tmp, &manifest)?;
        Ok(manifest)
    }
}
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let path = dir.join(MANIFEST);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(manifest).unwrap_or_default(),
    )?;
    std::fs::File::open(&path)?.sync_all()?;
    sync_dir(dir)
}

/// Makes a backup in a temporary sibling of `to`, renamed into place once
/// `fill` succeeded (removed when it failed): a half-made backup never
/// looks like one.
fn into_new_dir(to: &Path, fill: impl FnOnce(&Path) -> Result<Manifest>) -> Result<Manifest> {
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        return Err(invalid(
            "--to",
            format!(
                "{} is not empty: a backup goes into a new directory",
                to.display()
            ),
        ));
    }
    let parent = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = to
        .file_name()
        .ok_or_else(|| invalid("--to", "names no directory"))?
        .to_string_lossy()
        .to_string();
    let tmp = parent.join(format!(".{name}.partial-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&tmp)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
    }
    match fill(&tmp) {
        Ok(manifest) => {
            if to.exists() {
                std::fs::remove_dir(to)?;
            }
            std::fs::rename(&tmp, to)?;
            sync_dir(parent)?;
            Ok(manifest)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// A PostgreSQL tool (`pg_dump`, `pg_restore`): on the PATH, or in
/// Debian's versioned directory.
fn pg_tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    on_path
        .or_else(|| {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .flatten()
                .map(|e| e.path().join("bin").join(name))
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            found.pop()
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run_tool(tool: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
    let out = std::process::Command::new(pg_tool(tool))
        .args(args)
        .output()
        .map_err(|e| {
            invalid(
                tool,
                format!("cannot run ({e}): install the PostgreSQL client tools"),
            )
        })?;
    if !out.status.success() {
        return Err(invalid(
            tool,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// An online backup of a PostgreSQL city: `pg_dump` (one consistent
/// snapshot; writers go on undisturbed) and the photos, with a manifest.
pub fn postgres_backup(
    url: &str,
    photos: &Blobs,
    epoch: &str,
    to: &Path,
    now_ms: i64,
) -> Result<Manifest> {
    into_new_dir(to, |tmp| {
        let dump = tmp.join(DATABASE_DUMP);
        run_tool(
            "pg_dump",
            &[
                "--format=custom".as_ref(),
                "--no-owner".as_ref(),
                "--file".as_ref(),
                dump.as_os_str(),
                url.as_ref(),
            ],
        )?;
        let (bytes, sha256) = sha256_file(&dump)?;
        let copied = photos.copy_to(&Blobs::in_dir(&tmp.join("blobs"))?)?;
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            backend: "postgres".into(),
            created_ms: now_ms,
            epoch: epoch.to_string(),
            files: vec![BackupFile {
                path: DATABASE_DUMP.into(),
                bytes,
                sha256,
            }],
            photos: copied.photos,
            photo_bytes: copied.bytes_copied,
        };
        write_manifest(tmp, &manifest)?;
        Ok(manifest)
    })
}

/// Restores a PostgreSQL backup into the database `url` (which must hold
/// no city unless `force`: then its tables are replaced), photos into
/// `photos`. The caller gives the restored city a new epoch.
pub fn postgres_restore(
    from: &Path,
    url: &str,
    photos: &Blobs,
    has_city: bool,
    force: bool,
) -> Result<RestoreSummary> {
    let manifest = verify(from)?;
    if manifest.backend != "postgres" {
        return Err(invalid(
            "--from",
            format!(
                "a backup of the {} store: restore it without --database",
                manifest.backend
            ),
        ));
    }
    if has_city && !force {
        return Err(invalid(
            "--database",
            "the database already holds a city: restore into an empty database, or pass --force to replace it",
        ));
    }
    let dump = from.join(DATABASE_DUMP);
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["--no-owner".as_ref(), "--dbname".as_ref(), url.as_ref()];
    if has_city {
        args.push("--clean".as_ref());
        args.push("--if-exists".as_ref());
    }
    args.push(dump.as_os_str());
    run_tool("pg_restore", &args)?;
    let copied = Blobs::in_dir(&from.join("blobs"))?.copy_to(photos)?;
    Ok(RestoreSummary {
        files: manifest.files.len(),
        photos: copied.photos,
        epoch: String::new(),
    })
}

/// Reads and checks a backup: every file's digest, every photo's hash.
pub fn verify(from: &Path) -> Result<Manifest> {
    let text = std::fs::read_to_string(from.join(MANIFEST)).map_err(|e| {
        invalid(
            "--from",
            format!("{}: no readable manifest.json ({e})", from.display()),
        )
    })?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| invalid("manifest.json", e.to_string()))?;
    if manifest.version != MANIFEST_VERSION {
        return Err(invalid(
            "manifest.json",
            format!(
                "version {} (this build reads {MANIFEST_VERSION})",
                manifest.version
            ),
        ));
    }
    for f in &manifest.files {
        if f.path.contains('/') || f.path.contains("..") {
            return Err(invalid(
                "manifest.json",
                format!("{:?} is not a file name", f.path),
            ));
        }
        let (bytes, sha256) = sha256_file(&from.join(&f.path))
            .map_err(|e| invalid(&f.path, format!("unreadable: {e}")))?;
        if bytes != f.bytes || sha256 != f.sha256 {
            return Err(invalid(
                &f.path,
                "its SHA-256 differs from the manifest's: the backup is damaged",
            ));
        }
    }
    let required: &[&str] = if manifest.backend == "postgres" {
        &[DATABASE_DUMP]
    } else {
        &DATABASE_FILES
    };
    for name in required {
        if !manifest.files.iter().any(|f| f.path == *name) {
            return Err(invalid("manifest.json", format!("{name} is missing")));
        }
    }
    let photos = Blobs::in_dir(&from.join("blobs"))?;
    let hashes = photos.hashes()?;
    if hashes.len() < manifest.photos {
        return Err(invalid(
            "blobs",
            format!(
                "{} photos, the manifest says {}",
                hashes.len(),
                manifest.photos
            ),
        ));
    }
    for h in &hashes {
        photos.read(h)?;
    }
    Ok(manifest)
}

/// Restores the backup in `from` into the data directory `data` (which
/// must be empty unless `force`), photos into `blobs` (default DATA/blobs),
/// and gives the restored server a new epoch.
pub fn restore(
    from: &Path,
    data: &Path,
    blobs: Option<Blobs>,
    force: bool,
) -> Result<RestoreSummary> {
    let manifest = verify(from)?;
    let occupied: Vec<PathBuf> = match std::fs::read_dir(data) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != "server.lock"))
            .collect(),
        Err(_) => Vec::new(),
    };
    if !occupied.is_empty() && !force {
        return Err(invalid(
            "--data",
            format!(
                "{} is not empty ({} entries): restore into an empty directory, or pass --force to replace what is there",
                data.display(),
                occupied.len()
            ),
        ));
    }
    std::fs::create_dir_all(data)?;
    for p in &occupied {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let ours = DATABASE_FILES
            .iter()
            .any(|f| name == *f || name == format!("{f}-wal") || name == format!("{f}-shm"))
            || name == "admin.token";
        if ours {
            std::fs::remove_file(p)?;
        }
    }
    // Files land under a temporary name, then are renamed into place.
    for f in &manifest.files {
        let tmp = data.join(format!(".{}.restoring", f.path));
        std::fs::copy(from.join(&f.path), &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, data.join(&f.path))?;
    }
    sync_dir(data)?;
    let target = match blobs {
        Some(b) => b,
        None => Blobs::in_dir(&data.join("blobs"))?,
    };
    let copied = Blobs::in_dir(&from.join("blobs"))?.copy_to(&target)?;
    let storage = SqliteStorage::open_with(data, Box::new(field_core::crdt::SystemClock), target)?;
    let epoch = uuid::Uuid::new_v4().simple().to_string();
    storage.set_restore_epoch(&epoch)?;
    Ok(RestoreSummary {
        files: manifest.files.len(),
        photos: copied.photos,
        epoch,
    })
}
