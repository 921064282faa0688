//! Photos are content-addressed: a photo *is* its SHA-256. Bytes are checked
//! to be a real, non-empty image before anything refers to them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, invalid};

/// Largest photo accepted (a 12 MP JPEG is 3-8 MB).
pub const MAX_PHOTO_BYTES: usize = 25 * 1024 * 1024;

/// Lower-case hex SHA-256 of a photo's bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhotoHash(String);

impl PhotoHash {
    pub fn of(bytes: &[u8]) -> PhotoHash {
        PhotoHash(hex::encode(Sha256::digest(bytes)))
    }

    pub fn parse(field: &str, text: &str) -> Result<PhotoHash> {
        let t = text.trim().to_ascii_lowercase();
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(PhotoHash(t))
        } else {
            Err(invalid(
                field,
                format!("`{text}` is not a SHA-256 hex digest (64 hex digits)"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhotoHash {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<PhotoHash> {
        PhotoHash::parse("photo", &s)
    }
}

impl From<PhotoHash> for String {
    fn from(h: PhotoHash) -> String {
        h.0
    }
}

impl std::fmt::Display for PhotoHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the device knows of a photo after checking its bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotoInfo {
    pub hash: PhotoHash,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// Checks that `bytes` are a non-empty JPEG, PNG, WebP or HEIF image with
/// readable dimensions, and names it.
/// Most pixels a photo may have: a 64-megapixel phone camera fits, a
/// decompression bomb (a tiny file claiming 13000×13000) does not.
pub const MAX_PHOTO_PIXELS: u64 = 64_000_000;

/// Refuses the first bytes of an upload whose image header already claims
/// more than [`MAX_PHOTO_PIXELS`] (a decompression bomb is a few hundred
/// bytes): checked before anything is stored. Headers not yet readable
/// from these bytes pass; the whole photo is inspected when complete.
pub fn check_header_pixels(field: &str, first_bytes: &[u8]) -> Result<()> {
    if let Ok(size) = imagesize::blob_size(first_bytes) {
        let pixels = size.width as u64 * size.height as u64;
        if pixels > MAX_PHOTO_PIXELS {
            return Err(invalid(
                field,
                format!(
                    "{}×{} pixels is over the limit of {} megapixels",
                    size.width,
                    size.height,
                    MAX_PHOTO_PIXELS / 1_000_000
                ),
            ));
        }
    }
    Ok(())
}

pub fn inspect_photo(field: &str, bytes: &[u8]) -> Result<PhotoInfo> {
    use imagesize::ImageType;
    if bytes.is_empty() {
        return Err(invalid(field, "file is empty (0 bytes)"));
    }
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(invalid(
            field,
            format!(
                "{} bytes is over the {} MiB limit",
                bytes.len(),
                MAX_PHOTO_BYTES >> 20
            ),
        ));
    }
    let not_image = || invalid(field, "not an image (JPEG, PNG, WebP or HEIF expected)");
    let mime = match imagesize::image_type(bytes).map_err(|_| not_image())? {
        ImageType::Jpeg => "image/jpeg",
        ImageType::Png => "image/png",
        ImageType::Webp => "image/webp",
        ImageType::Heif(_) => "image/heif",
        _ => return Err(not_image()),
    };
    let size = imagesize::blob_size(bytes)
        .map_err(|e| invalid(field, format!("image header is unreadable: {e}")))?;
    if size.width == 0 || size.height == 0 {
        return Err(invalid(field, "image has no pixels (0 width or height)"));
    }
    let pixels = size.width as u64 * size.height as u64;
    if pixels > MAX_PHOTO_PIXELS {
        return Err(invalid(
            field,
            format!(
                "{}×{} pixels is over the limit of {} megapixels",
                size.width,
                size.height,
                MAX_PHOTO_PIXELS / 1_000_000
            ),
        ));
    }
    Ok(PhotoInfo {
        hash: PhotoHash::of(bytes),
        mime: mime.to_string(),
        width: size.width as u32,
        height: size.height as u32,
        bytes: bytes.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_non_images() {
        assert!(
            inspect_photo("photo", b"")
                .unwrap_err()
                .to_string()
                .contains("0 bytes")
        );
        let e = inspect_photo("photo", b"hello, this is text")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an image"), "{e}");
    }

    #[test]
    fn hash_parse_normalises_case() {
        let h = PhotoHash::of(b"x");
        assert_eq!(
            PhotoHash::parse("h", &h.as_str().to_uppercase()).unwrap(),
            h
        );
        assert!(PhotoHash::parse("h", "abc").is_err());
    }
}
