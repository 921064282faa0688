//! External findings from a CSV file (`source,category,lon,lat,at[,note]`,
//! a header row first) to the typed rows the center takes. Every row is
//! checked here so an error names the file's row and column.

use std::io::Read;

use anyhow::{Result, anyhow};
use sync_server::service::NewFinding;

/// Most rows one file may hold (the server takes as many per import).
pub const MAX_ROWS: usize = sync_server::service::MAX_FINDINGS_PER_IMPORT;

pub fn read(reader: impl Read) -> Result<Vec<NewFinding>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let mut rows = Vec::new();
    for (i, record) in reader
        .deserialize::<std::collections::BTreeMap<String, String>>()
        .enumerate()
    {
        let line = i + 2;
        if rows.len() == MAX_ROWS {
            return Err(anyhow!("more than {MAX_ROWS} rows: split the file"));
        }
        let r = record.map_err(|e| anyhow!("row {line}: {e}"))?;
        let text = |k: &str| -> Result<String> {
            r.get(k)
                .map(|v| v.trim().to_string())
                .ok_or_else(|| anyhow!("row {line}: missing column {k}"))
        };
        let num = |k: &str| -> Result<f64> {
            text(k)?
                .parse()
                .map_err(|_| anyhow!("row {line}: {k} is not a number"))
        };
        let source =
            serde_json::from_value(serde_json::Value::String(text("source")?)).map_err(|_| {
                anyhow!(
                    "row {line}: source must be center_check, citizen, industry, media or leader"
                )
            })?;
        rows.push(NewFinding {
            source,
            category: text("category")?,
            lon: num("lon")?,
            lat: num("lat")?,
            at: text("at")?,
            note: r
                .get("note")
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "source,category,lon,lat,at,note\ncitizen,BJ0101,120.2605,30.1895,2025-11-26T09:00:00+08:00,井盖\nmedia,SJ0201,120.261,30.189,2025-11-26T10:00:00+08:00,\n";

    #[test]
    fn reads_rows_and_names_the_row_of_a_bad_value() {
        let rows = read(GOOD.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].note.as_deref(), Some("井盖"));
        assert_eq!(rows[1].note, None);
        let bad = GOOD.replace("30.189,", "north,");
        let e = read(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("row 3") && e.contains("lat"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any bytes: rows or a clear error naming a row or the file, never a panic.
        #[test]
        fn any_bytes_are_read_or_refused_clearly(
            cut in 0usize..200,
            at in 0usize..200,
            junk in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut bytes = GOOD.as_bytes().to_vec();
            let at = at % bytes.len();
            bytes.splice(at..(at + cut % 20).min(bytes.len()), junk);
            if let Err(e) = read(&bytes[..]) {
                let e = e.to_string();
                prop_assert!(e.contains("row") || e.contains("CSV") || e.contains("column"), "{e}");
            }
        }
    }
}
