//! Text or JSON, chosen once per run.

use field_i18n::{FluentValue, Lang};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

/// The language this run speaks (`--lang` / `FIELD_LANG`, Chinese by
/// default), set once by `main`. Code that runs without it (unit tests, the
/// benches' library use) speaks English.
static LANG: std::sync::OnceLock<Lang> = std::sync::OnceLock::new();

pub fn set_lang(l: Lang) {
    let _ = LANG.set(l);
}

pub fn lang() -> Lang {
    LANG.get().copied().unwrap_or(Lang::En)
}

/// A message of the run's language.
pub fn t(key: &str) -> String {
    lang().t(key)
}

/// A message with arguments in the run's language.
pub fn tr(key: &str, args: &[(&'static str, FluentValue<'static>)]) -> String {
    lang().tr(key, args)
}

/// A table's column head in the run's language (`LON,LAT` → `cli-col-lon-lat`);
/// a head with no message stays as written.
fn head(h: &str) -> String {
    let key = format!("cli-col-{}", h.to_lowercase().replace(['_', ',', ' '], "-"));
    let text = t(&key);
    if text == key { h.to_string() } else { text }
}

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as JSON under --json, else the text `human` renders.
    pub fn show<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            let text = printable(&human(value));
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
        Ok(())
    }
}

/// Left-aligned columns for human tables.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| head(h)).collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let headers = headers.as_slice();
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([headers.len()])
        .max()
        .unwrap_or(0);
    let mut widths = vec![0; columns];
    for r in rows
        .iter()
        .map(|r| r.iter().map(|c| c.width()).collect::<Vec<_>>())
        .chain([headers.iter().map(|h| h.width()).collect()])
    {
        for (i, w) in r.into_iter().enumerate() {
            widths[i] = widths[i].max(w);
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}{}", " ".repeat(widths[i] - c.width())))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

/// Text safe for a terminal: control characters a collector or a server
/// could have typed (escape sequences that move the cursor, rewrite the
/// title, clear the screen) are shown as `\u{..}` instead of obeyed.
/// Newlines and tabs stay.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        let shown = super::printable("井盖\u{1b}]0;owned\u{7}\u{1b}[2J\r\nnext\tline\u{9b}31m");
        assert!(
            !shown
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{shown}"
        );
        assert_eq!(
            shown,
            "井盖\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}\nnext\tline\\u{9b}31m"
        );
    }
}

/// An instant as a person in the city reads it: the city's wall clock,
/// to the second, with the zone's abbreviation (`2026-12-07 08:30:00 CST`).
pub fn city_time(t: field_core::model::Timestamp, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis())
        .map(|d| {
            d.with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|| t.to_string())
}
