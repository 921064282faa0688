//! Byte bounds on every text and list a change may carry. Every replica
//! checks them before merging (`Change::check_bounds`), so an oversize field
//! is refused the same way on a device, in a bundle and at the server.

use crate::error::{Result, invalid};

/// A case description (2,000 characters of Chinese fit in 6,000 bytes).
pub const MAX_DESCRIPTION_BYTES: usize = 8 * 1024;
/// A note on a decision, a task or an answer.
pub const MAX_NOTE_BYTES: usize = 4 * 1024;
/// A name: collector, department, survey id, free-text reject reason.
pub const MAX_NAME_BYTES: usize = 256;
/// Photos one change may add, remove or cite.
pub const MAX_PHOTOS_PER_CHANGE: usize = 32;
/// Actors in a context carried by a change.
pub const MAX_CONTEXT_ENTRIES: usize = 10_000;

/// Refuses `text` longer than `max` bytes, naming the field.
pub fn bounded(field: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes, at most {max}", text.len()),
        ));
    }
    Ok(())
}

pub fn bounded_opt(field: &str, text: Option<&str>, max: usize) -> Result<()> {
    text.map_or(Ok(()), |t| bounded(field, t, max))
}

pub fn bounded_len(field: &str, n: usize, max: usize) -> Result<()> {
    if n > max {
        return Err(invalid(field, format!("has {n} entries, at most {max}")));
    }
    Ok(())
}
