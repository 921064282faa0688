//! The review queue: cases listed for center staff, filtered and paged by
//! the storage's indexes, each with its fraud flags and likely duplicates.

use field_core::crdt::CaseView;
use field_core::model::{ActorId, Catalog, Status};
use field_core::store::CaseQuery;
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result, invalid};
use crate::storage::Principal;

/// A case as the review queue lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseRow {
    #[serde(flatten)]
    pub summary: field_core::store::CaseSummary,
    pub reporter: Option<ActorId>,
    /// The photos the case cites, in order (the first is its thumbnail).
    pub photo_hashes: Vec<field_core::model::PhotoHash>,
    /// Photos cited but not yet uploaded: the case is not complete.
    pub photos_pending: bool,
    /// Photos the reporting device can no longer read: they will not come.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos_lost: Vec<field_core::model::PhotoHash>,
    /// Fraud signals for the reviewer to judge, with evidence.
    pub flags: Vec<super::Flag>,
    /// Open cases of the same subclass close by.
    pub likely_duplicates: Vec<super::Duplicate>,
}

/// What a reviewer filters the queue by; empty strings mean "any".
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueFilter {
    #[serde(default)]
    pub status: Option<String>,
    /// A subclass code or its prefix (a major class).
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub cell: Option<String>,
    /// A case id or its first characters (the 8 a listing prints).
    #[serde(default)]
    pub id: Option<String>,
    /// The collector's name.
    #[serde(default)]
    pub collector: Option<String>,
    /// `any`, `conflict`, or one case flag kind (see [`FLAG_KINDS`]).
    #[serde(default)]
    pub flag: Option<String>,
    #[serde(default)]
    pub offset: usize,
    /// At most this many rows; `0`: all.
    #[serde(default)]
    pub limit: usize,
}

/// The flags a case can carry (a test case sent from outside its cells is
/// flagged on the shift marks, `Center::shifts`, not in this queue).
pub const FLAG_KINDS: [&str; 6] = [
    "reused_photo",
    "far_from_track",
    "exif_time",
    "outside_cells",
    "device_clock",
    "backdated",
];

/// One page of the queue and how many cases match in all.
#[derive(Clone, Debug, Serialize)]
pub struct QueuePage {
    pub total: usize,
    pub offset: usize,
    pub rows: Vec<CaseRow>,
}

fn given(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Cases read per step when a flag filter has to look at each case.
const FLAG_SCAN_CHUNK: usize = 1000;

impl Center {
    pub(super) fn row(&self, v: &CaseView, catalog: &Catalog) -> Result<CaseRow> {
        let flags = self.case_flags(v)?;
        self.row_with(v, catalog, flags)
    }

    fn row_with(
        &self,
        v: &CaseView,
        catalog: &Catalog,
        flags: Vec<super::Flag>,
    ) -> Result<CaseRow> {
        let mut missing = 0;
        let mut lost = Vec::new();
        for photo in &v.photos {
            if !self.storage.blob_exists(&photo.hash)? {
                if self.storage.photo_lost(&photo.hash)? {
                    lost.push(photo.hash.clone());
                } else {
                    missing += 1;
                }
            }
        }
        let mut summary = field_core::store::CaseSummary::of(v, catalog, missing);
        if summary.cell.is_none() {
            // Reported before the device had the grid: where the server put it.
            summary.cell = self.storage.case_cell(v.id)?;
        }
        Ok(CaseRow {
            summary,
            reporter: v.origin.as_ref().map(|o| o.reporter),
            photo_hashes: v.photos.iter().map(|p| p.hash.clone()).collect(),
            photos_pending: missing > 0,
            photos_lost: lost,
            flags,
            likely_duplicates: self.likely_duplicates(v)?,
        })
    }

    /// The review queue, newest report first. Status, category, cell,
    /// collector, conflicts and photo reuse are answered by the storage's
    /// indexes and only the page's cases are read; the other flags are
    /// evidence from tracks and photo metadata, so filtering by them
    /// computes the flags of every case the other filters keep.
    pub fn queue(&self, p: &Principal, f: &QueueFilter) -> Result<QueuePage> {
        self.require(p, Operation::ReadCases)?;
        let status = given(&f.status)
            .map(|s| Status::parse("status", &s))
            .transpose()?;
        let flag = given(&f.flag);
        if let Some(k) = flag.as_deref()
            && !matches!(k, "any" | "conflict")
            && !FLAG_KINDS.contains(&k)
        {
            return Err(invalid(
                "flag",
                format!(
                    "`{k}` is not a flag: any, conflict, {}",
                    FLAG_KINDS.join(", ")
                ),
            ));
        }
        let id_prefix = given(&f.id).map(|p| p.to_ascii_lowercase());
        if let Some(p) = id_prefix.as_deref()
            && (p.len() > 36 || !p.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        {
            return Err(invalid(
                "id",
                "a case id or its first characters: hex digits and hyphens, at most 36",
            ));
        }
        let mut q = CaseQuery {
            status,
            category_prefix: given(&f.category),
            id_prefix,
            cell: given(&f.cell),
            collector: given(&f.collector),
            conflict_only: flag.as_deref() == Some("conflict"),
            open_only: false,
            reported_between: None,
            // Photo reuse is answered by the index of cited photos; the
            // flags are still computed for the rows shown.
            sharing_a_photo: flag.as_deref() == Some("reused_photo"),
            after: None,
            skip_count: false,
            offset: f.offset,
            limit: f.limit,
        };
        let catalog = self.storage.catalog()?;
        let wanted = match flag.as_deref() {
            None | Some("conflict") | Some("reused_photo") => None,
            Some(k) => Some(k),
        };
        let Some(kind) = wanted else {
            let page = self.storage.case_page(&q)?;
            let rows = page
                .cases
                .iter()
                .map(|v| self.row(v, &catalog))
                .collect::<Result<_>>()?;
            return Ok(QueuePage {
                total: page.total,
                offset: f.offset,
                rows,
            });
        };
        // Flags are evidence computed from tracks, photos and other cases:
        // look at every candidate once, in order, resuming each chunk after
        // the last case seen; keep the page's matches, count them all.
        let limit = if f.limit == 0 { usize::MAX } else { f.limit };
        let (mut total, mut rows) = (0, Vec::new());
        q.offset = 0;
        q.limit = FLAG_SCAN_CHUNK;
        q.skip_count = true;
        loop {
            let chunk = self.storage.case_page(&q)?;
            for v in &chunk.cases {
                let flags = self.case_flags(v)?;
                if !flags.iter().any(|fl| kind == "any" || fl.kind == kind) {
                    continue;
                }
                if total >= f.offset && rows.len() < limit {
                    rows.push(self.row_with(v, &catalog, flags)?);
                }
                total += 1;
            }
            match chunk.cases.last() {
                Some(last) if chunk.cases.len() == FLAG_SCAN_CHUNK => {
                    let t = last.origin.as_ref().map_or(0, |o| o.reported_at.millis());
                    q.after = Some((t, last.id));
                }
                _ => break,
            }
        }
        Ok(QueuePage {
            total,
            offset: f.offset,
            rows,
        })
    }
}
