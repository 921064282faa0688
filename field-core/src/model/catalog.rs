//! The category catalog: components (部件) and events (事件), in either code
//! style. CJ/T 214-2007 reuses its 4 digits in both families, so those codes
//! are always written family-qualified (`BJ0101`, `SJ0201`); GB/T 47678.5
//! 5-digit codes are unique on their own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// The catalog shipped with the product, built from `schemas/catalog/`.
pub const DEFAULT_CATALOG_JSON: &str = include_str!("../../../schemas/catalog/default.json");

/// Which family a category belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// 部件: a city object (manhole cover, street light).
    Component,
    /// 事件: a happening (exposed garbage, illegal poster).
    Event,
}

/// A syntactically valid category code: `BJdddd`, `SJdddd` or `ddddd`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CategoryCode(String);

impl CategoryCode {
    pub fn parse(field: &str, text: &str) -> Result<CategoryCode> {
        let t = text.trim();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let ok = match t.get(..2) {
            Some("BJ") | Some("SJ") => digits(&t[2..], 4),
            _ => digits(t, 5),
        };
        if !ok {
            return Err(invalid(
                field,
                format!(
                    "`{text}` is not a category code: write CJ/T 214 codes family-qualified \
                     (BJ0101 component, SJ0201 event) or a 5-digit GB/T 47678.5 code (06010)"
                ),
            ));
        }
        Ok(CategoryCode(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The family a CJ/T 214 code states itself; GB/T codes need the catalog.
    pub fn stated_family(&self) -> Option<Family> {
        match &self.0[..2] {
            "BJ" => Some(Family::Component),
            "SJ" => Some(Family::Event),
            _ => None,
        }
    }
}

impl TryFrom<String> for CategoryCode {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<CategoryCode> {
        CategoryCode::parse("category", &s)
    }
}

impl From<CategoryCode> for String {
    fn from(c: CategoryCode) -> String {
        c.0
    }
}

impl std::fmt::Display for CategoryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One subclass of the catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub code: CategoryCode,
    pub family: Family,
    /// `CJ/T 214-2007` or `GB/T 47678.5-2026`.
    pub standard: String,
    pub major_code: String,
    pub major_name: String,
    pub name_zh: String,
    pub name_en: String,
    /// How sure the compilers of the public sources were (`high`, `medium`, `low`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
    /// GB/T 47678.5 files "this component is faulty" (管理事项) under the
    /// component's own code; its name is kept here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_name_zh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_name_en: Option<String>,
    /// The same subclass in the other code style (CJ/T 214 ⇄ GB/T 47678.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<CategoryCode>,
}

/// The code style a city works in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeStyle {
    /// Family-qualified CJ/T 214-2007 codes (`BJ0101`).
    #[default]
    Cjt214,
    /// 5-digit GB/T 47678.5-2026 codes (`01001`).
    Gbt47678,
}

/// The file format of a catalog (`schemas/catalog.schema.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub version: String,
    pub entries: Vec<CatalogEntry>,
}

/// A loaded catalog: look-ups by code.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub version: String,
    entries: BTreeMap<CategoryCode, CatalogEntry>,
}

impl Catalog {
    /// Parses and checks a catalog file: codes unique, families consistent
    /// with a CJ/T 214 prefix.
    pub fn from_json(text: &str) -> Result<Catalog> {
        let file: CatalogFile = serde_json::from_str(text)
            .map_err(|e| invalid("catalog", format!("not a catalog file: {e}")))?;
        let mut entries = BTreeMap::new();
        for (i, entry) in file.entries.into_iter().enumerate() {
            if let Some(stated) = entry.code.stated_family()
                && stated != entry.family
            {
                return Err(invalid(
                    format!("entries[{i}].family"),
                    format!(
                        "{} says {:?} but the entry says {:?}",
                        entry.code, stated, entry.family
                    ),
                ));
            }
            if entries.insert(entry.code.clone(), entry).is_some() {
                return Err(invalid(format!("entries[{i}].code"), "duplicate code"));
            }
        }
        Ok(Catalog {
            version: file.version,
            entries,
        })
    }

    pub fn default_catalog() -> Catalog {
        Catalog::from_json(DEFAULT_CATALOG_JSON).expect("the shipped catalog is checked by a test")
    }

    /// One subclass, one code: `code` in the city's style when the catalog
    /// maps it there (`same_as`), else as written. Counting and matching use
    /// this, so `BJ0101` and `01001` are the same manhole cover.
    pub fn canonical(&self, code: &CategoryCode, style: CodeStyle) -> CategoryCode {
        let in_style = |c: &CategoryCode| match style {
            CodeStyle::Cjt214 => c.stated_family().is_some(),
            CodeStyle::Gbt47678 => c.stated_family().is_none(),
        };
        if in_style(code) {
            return code.clone();
        }
        self.get(code)
            .and_then(|e| e.same_as.clone())
            .filter(in_style)
            .unwrap_or_else(|| code.clone())
    }

    pub fn get(&self, code: &CategoryCode) -> Option<&CatalogEntry> {
        self.entries.get(code)
    }

    /// Parses a code and requires it in this catalog.
    pub fn resolve(&self, field: &str, text: &str) -> Result<&CatalogEntry> {
        let code = CategoryCode::parse(field, text)?;
        self.entries.get(&code).ok_or_else(|| {
            invalid(
                field,
                format!(
                    "`{code}` is not in the catalog (version {}, {} subclasses)",
                    self.version,
                    self.len()
                ),
            )
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values()
    }

    pub fn to_json(&self) -> String {
        let file = CatalogFile {
            version: self.version.clone(),
            entries: self.entries.values().cloned().collect(),
        };
        serde_json::to_string(&file).expect("catalog entries are plain data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalog_has_both_styles_and_families() {
        let c = Catalog::default_catalog();
        let cover = c.resolve("category", "BJ0101").unwrap();
        assert_eq!(cover.family, Family::Component);
        assert_eq!(cover.name_zh, "上水井盖");
        assert!(!cover.name_en.is_empty());
        let poster = c.resolve("category", "SJ0201").unwrap();
        assert_eq!(poster.family, Family::Event);
        assert_eq!(poster.name_zh, "非法小广告");
        let garbage = c.resolve("category", "06010").unwrap();
        assert_eq!(garbage.name_zh, "暴露垃圾");
        assert!(
            c.entries()
                .all(|e| !e.name_en.is_empty() && !e.name_zh.is_empty())
        );
        assert!(c.len() > 350, "{}", c.len());
        assert_eq!(
            c.resolve("category", "01001")
                .unwrap()
                .issue_name_zh
                .as_deref(),
            Some("供水井盖异常")
        );
    }

    #[test]
    fn refuses_unqualified_and_unknown_codes() {
        let c = Catalog::default_catalog();
        let e = c.resolve("category", "0101").unwrap_err().to_string();
        assert!(e.contains("family-qualified"), "{e}");
        let e = c.resolve("category", "BJ9999").unwrap_err().to_string();
        assert!(
            e.starts_with("category:") && e.contains("not in the catalog"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod one_code {
    use super::*;

    #[test]
    fn a_subclass_has_one_code_in_the_citys_style() {
        let c = Catalog::default_catalog();
        let code = |s: &str| CategoryCode::parse("c", s).unwrap();
        assert_eq!(
            c.canonical(&code("01001"), CodeStyle::Cjt214),
            code("BJ0101")
        );
        assert_eq!(
            c.canonical(&code("BJ0101"), CodeStyle::Gbt47678),
            code("01001")
        );
        assert_eq!(
            c.canonical(&code("BJ0101"), CodeStyle::Cjt214),
            code("BJ0101")
        );
        // No counterpart: kept as written.
        assert_eq!(
            c.canonical(&code("06010"), CodeStyle::Cjt214).as_str(),
            c.canonical(&code("06010"), CodeStyle::Cjt214).as_str()
        );
    }
}

/// Subclasses matching `query`, best first: a code prefix (`SJ01`, `01`),
/// then names containing it (Chinese `井盖`, English `manhole`, any case);
/// at most `limit`.
pub fn catalog_search<'a>(
    catalog: &'a Catalog,
    query: &str,
    limit: usize,
) -> Vec<&'a CatalogEntry> {
    let q = query.trim();
    if q.is_empty() {
        return catalog.entries().take(limit).collect();
    }
    let upper = q.to_uppercase();
    let lower = q.to_lowercase();
    let mut by_code: Vec<&CatalogEntry> = Vec::new();
    let mut by_name: Vec<&CatalogEntry> = Vec::new();
    for e in catalog.entries() {
        if e.code.as_str().starts_with(&upper) {
            by_code.push(e);
        } else if e.name_zh.contains(q)
            || e.major_name.contains(q)
            || e.name_en.to_lowercase().contains(&lower)
        {
            by_name.push(e);
        }
    }
    by_code.extend(by_name);
    by_code.truncate(limit);
    by_code
}

#[cfg(test)]
mod search_tests {
    use super::*;

    #[test]
    fn search_finds_codes_then_names() {
        let c = Catalog::default_catalog();
        let first = c.entries().next().unwrap();
        let prefix = &first.code.as_str()[..2];
        let hits = catalog_search(&c, &prefix.to_lowercase(), 5);
        assert!(!hits.is_empty() && hits.iter().all(|e| e.code.as_str().starts_with(prefix)));
        let name: String = first.name_zh.chars().take(2).collect();
        assert!(
            catalog_search(&c, &name, 50)
                .iter()
                .any(|e| e.code == first.code)
        );
        assert!(catalog_search(&c, "no such thing at all", 5).is_empty());
        assert_eq!(catalog_search(&c, "", 3).len(), 3);
    }
}
