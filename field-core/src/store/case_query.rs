//! Reading cases at a city's scale: a filtered, paged listing and the
//! look-ups the review queue's evidence needs, all answered from the
//! projections beside each merged state (indexes, not a scan of states).

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::Store;
use crate::crdt::{CaseState, CaseView};
use crate::error::{Error, Result};
use crate::model::{CaseId, LonLat, PhotoHash, Status};

/// Which reported cases to list, newest report first.
#[derive(Clone, Debug, Default)]
pub struct CaseQuery {
    /// Cases holding this status (one of the values when in conflict).
    pub status: Option<Status>,
    /// Subclass codes starting with this (a major class, a subclass).
    pub category_prefix: Option<String>,
    /// Case ids starting with this (the 8 characters a listing prints).
    pub id_prefix: Option<String>,
    pub cell: Option<String>,
    /// The collector's name as the report carries it.
    pub collector: Option<String>,
    /// Only cases with concurrent decisions to resolve.
    pub conflict_only: bool,
    /// Only cases that are neither closed nor rejected.
    pub open_only: bool,
    /// Only cases reported in `[from, to)` (UTC ms).
    pub reported_between: Option<(i64, i64)>,
    /// Only cases citing a photo another case cites too.
    pub sharing_a_photo: bool,
    /// Only cases after this one in the listing's order (report time, id):
    /// a scan resumes where its last page ended instead of skipping rows.
    pub after: Option<(i64, CaseId)>,
    /// Leave `CasePage::total` at 0 rather than counting the matches.
    pub skip_count: bool,
    pub offset: usize,
    /// At most this many; `0` means all.
    pub limit: usize,
}

/// One page of a listing, with how many cases match in all.
#[derive(Clone, Debug)]
pub struct CasePage {
    pub total: usize,
    pub cases: Vec<CaseView>,
}

impl CaseQuery {
    /// The WHERE clause and its parameters. Equalities compare with `+?`:
    /// a bare `?` beside the ORDER BY makes SQLite re-prepare the cached
    /// statement at every binding (see `Store::track_between`).
    fn clause(&self) -> (String, Vec<Value>) {
        let mut sql = String::from("reported_at IS NOT NULL");
        let mut args: Vec<Value> = Vec::new();
        if let Some(s) = self.status {
            sql.push_str(" AND ('|' || status || '|') LIKE ?");
            args.push(Value::Text(format!("%|{}|%", s.as_str())));
        }
        if let Some(prefix) = self.category_prefix.as_deref().filter(|p| !p.is_empty()) {
            // A range on the index, not a LIKE: codes are ASCII digits and letters.
            sql.push_str(" AND category >= ? AND category < ?");
            args.push(Value::Text(prefix.to_string()));
            args.push(Value::Text(format!("{prefix}\u{10FFFF}")));
        }
        if let Some(prefix) = self.id_prefix.as_deref().filter(|p| !p.is_empty()) {
            sql.push_str(" AND id >= ? AND id < ?");
            args.push(Value::Text(prefix.to_string()));
            args.push(Value::Text(format!("{prefix}\u{10FFFF}")));
        }
        if let Some(cell) = &self.cell {
            sql.push_str(" AND cell = +?");
            args.push(Value::Text(cell.clone()));
        }
        if let Some(c) = &self.collector {
            sql.push_str(" AND collector = +?");
            args.push(Value::Text(c.clone()));
        }
        if let Some((from, to)) = self.reported_between {
            sql.push_str(" AND reported_at >= ? AND reported_at < ?");
            args.push(Value::Integer(from));
            args.push(Value::Integer(to));
        }
        if self.sharing_a_photo {
            sql.push_str(
                " AND id IN (SELECT case_id FROM case_photos WHERE hash IN
                   (SELECT hash FROM case_photos GROUP BY hash HAVING count(*) > 1))",
            );
        }
        if let Some((t, id)) = &self.after {
            sql.push_str(" AND (reported_at, id) < (?, ?)");
            args.push(Value::Integer(*t));
            args.push(Value::Text(id.to_string()));
        }
        if self.conflict_only {
            sql.push_str(" AND conflict = 1");
        }
        if self.open_only {
            sql.push_str(" AND NOT (('|' || status || '|') LIKE '%|closed|%' OR ('|' || status || '|') LIKE '%|rejected|%')");
        }
        (sql, args)
    }
}

fn decode(id: String, bytes: &[u8]) -> Result<CaseView> {
    let case = CaseId::parse("case", &id).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(CaseState::from_cbor(bytes)?.view(case))
}

impl Store {
    /// One page of reported cases matching `q`, newest report first (ties by
    /// id), and the number matching in all. Only the page's states are decoded.
    pub fn case_page(&self, q: &CaseQuery) -> Result<CasePage> {
        let (clause, mut args) = q.clause();
        let total: i64 = if q.skip_count {
            0
        } else {
            self.conn.query_row(
                &format!("SELECT count(*) FROM cases WHERE {clause}"),
                params_from_iter(args.iter()),
                |r| r.get(0),
            )?
        };
        let limit = if q.limit == 0 { -1 } else { q.limit as i64 };
        args.push(Value::Integer(limit));
        args.push(Value::Integer(q.offset as i64));
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, state FROM cases WHERE {clause}
             ORDER BY reported_at DESC, id DESC LIMIT ? OFFSET ?"
        ))?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut cases = Vec::new();
        for row in rows {
            let (id, bytes) = row?;
            cases.push(decode(id, &bytes)?);
        }
        Ok(CasePage {
            total: total as usize,
            cases,
        })
    }

    /// The cell a case lies in as this replica located it: the report's own
    /// cell, or the one found from its position with the grid held when it
    /// was applied (a report made before its device had the grid has none).
    pub fn case_cell(&self, id: CaseId) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .prepare_cached("SELECT cell FROM cases WHERE id = ?1")?
            .query_row([id.to_string()], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    /// Every case citing a photo.
    pub fn cases_citing(&self, hash: &PhotoHash) -> Result<Vec<CaseId>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT case_id FROM case_photos WHERE hash = +?1 ORDER BY case_id")?;
        let ids = stmt.query_map([hash.as_str()], |r| r.get::<_, String>(0))?;
        ids.map(|id| CaseId::parse("case", &id?).map_err(|e| Error::Corrupt(e.to_string())))
            .collect()
    }

    /// Open cases (neither closed nor rejected) of a subclass within
    /// `radius_m` of `pos`, nearest first, with their distance in metres.
    pub fn open_cases_near(
        &self,
        category: &str,
        pos: LonLat,
        radius_m: f64,
    ) -> Result<Vec<(CaseId, f64)>> {
        // A box a little larger than the circle, on the (category, lat) index.
        let dlat = radius_m / 111_000.0 * 1.1;
        let dlon = dlat / pos.lat().to_radians().cos().max(0.01);
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, lon, lat FROM cases
             WHERE category = ?1 AND lat BETWEEN ?2 AND ?3 AND lon BETWEEN ?4 AND ?5
               AND NOT (('|' || status || '|') LIKE '%|closed|%' OR ('|' || status || '|') LIKE '%|rejected|%')",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![
                category,
                pos.lat() - dlat,
                pos.lat() + dlat,
                pos.lon() - dlon,
                pos.lon() + dlon
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, f64>(2)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, lon, lat) = row?;
            let Ok(other) = LonLat::new(lon, lat) else {
                continue;
            };
            let d = pos.distance_m(other);
            if d <= radius_m {
                let id = CaseId::parse("case", &id).map_err(|e| Error::Corrupt(e.to_string()))?;
                out.push((id, d));
            }
        }
        out.sort_by(|a, b| a.1.total_cmp(&b.1));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewCase;

    fn png(v: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 1, 1);
        enc.set_color(png::ColorType::Grayscale);
        enc.write_header()
            .expect("header")
            .write_image_data(&[v])
            .expect("pixels");
        out
    }

    fn report(store: &mut Store, category: &str, lon: f64, desc: &str) -> CaseId {
        let at = 1_764_000_000_000 + desc.len() as i64 * 60_000;
        store
            .report_case(NewCase {
                category: category.into(),
                pos: LonLat::new(lon, 30.0).expect("position"),
                description: desc.into(),
                photos: vec![png(desc.len() as u8)],
                at: Some(crate::model::Timestamp::from_millis("at", at).expect("at")),
                quick_fix_after: None,
                survey: None,
            })
            .expect("report")
    }

    #[test]
    fn pages_filter_and_find_neighbours_from_projections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::init(&dir.path().join("d.db"), "zhang").expect("init");
        let a = report(&mut store, "BJ0101", 120.0, "a");
        let b = report(&mut store, "BJ0102", 120.0002, "bb");
        let c = report(&mut store, "SJ0101", 120.0, "ccc");
        let all = store.case_page(&CaseQuery::default()).expect("all");
        assert_eq!(all.total, 3);
        // Newest first.
        assert_eq!(
            all.cases.iter().map(|v| v.id).collect::<Vec<_>>(),
            vec![c, b, a]
        );
        let q = CaseQuery {
            category_prefix: Some("BJ01".into()),
            limit: 1,
            offset: 1,
            ..Default::default()
        };
        let page = store.case_page(&q).expect("page");
        assert_eq!((page.total, page.cases.len(), page.cases[0].id), (2, 1, a));
        // Resuming after the newest gives the rest, in order, uncounted.
        let newest = &all.cases[0];
        let t = newest.origin.as_ref().expect("origin").reported_at.millis();
        let rest = store
            .case_page(&CaseQuery {
                after: Some((t, newest.id)),
                skip_count: true,
                ..Default::default()
            })
            .expect("rest");
        assert_eq!(rest.total, 0);
        assert_eq!(
            rest.cases.iter().map(|v| v.id).collect::<Vec<_>>(),
            vec![b, a]
        );
        let near = store
            .open_cases_near("BJ0101", LonLat::new(120.0, 30.0).expect("pos"), 30.0)
            .expect("near");
        // b (~19 m east) is another subclass, c another class.
        assert_eq!(near.iter().map(|n| n.0).collect::<Vec<_>>(), vec![a]);
        let near_b = store
            .open_cases_near("BJ0102", LonLat::new(120.0, 30.0).expect("pos"), 30.0)
            .expect("near b");
        assert_eq!(near_b.len(), 1);
        assert!(near_b[0].1 > 15.0 && near_b[0].1 < 25.0, "{near_b:?}");
        let too_far = store
            .open_cases_near("BJ0102", LonLat::new(120.0, 30.0).expect("pos"), 15.0)
            .expect("too far");
        assert!(too_far.is_empty());
        let hash = store.case(a).expect("a").photos[0].hash.clone();
        assert_eq!(store.cases_citing(&hash).expect("citing"), vec![a]);
        let by_name = CaseQuery {
            collector: Some("zhang".into()),
            status: Some(Status::Reported),
            ..Default::default()
        };
        assert_eq!(store.case_page(&by_name).expect("by name").total, 3);
        let none = CaseQuery {
            status: Some(Status::Closed),
            ..Default::default()
        };
        assert_eq!(store.case_page(&none).expect("closed").total, 0);
    }

    #[test]
    fn a_store_from_before_the_projections_gets_them_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.db");
        let mut store = Store::init(&path, "zhang").expect("init");
        let a = report(&mut store, "BJ0101", 120.0, "a");
        let hash = store.case(a).expect("a").photos[0].hash.clone();
        drop(store);
        // What a store written before version 5 holds: no projections.
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "UPDATE cases SET collector = NULL, lon = NULL, lat = NULL;
             DELETE FROM case_photos;
             DELETE FROM meta WHERE key = 'case_projection';",
        )
        .expect("wiped");
        drop(conn);
        let store = Store::open(&path).expect("reopen");
        let q = CaseQuery {
            collector: Some("zhang".into()),
            ..Default::default()
        };
        assert_eq!(store.case_page(&q).expect("page").total, 1);
        assert_eq!(store.cases_citing(&hash).expect("citing"), vec![a]);
        let near = store
            .open_cases_near("BJ0101", LonLat::new(120.0, 30.0).expect("pos"), 5.0)
            .expect("near");
        assert_eq!(near.len(), 1);
    }
}
